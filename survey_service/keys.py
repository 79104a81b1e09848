"""Project credentials: key generation, hashing, and the identity secret encrypted at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def new_secret_key() -> str:
    """A fresh server API key, shown once and stored only as a hash."""
    return "sk_" + secrets.token_urlsafe(32)


def new_public_key() -> str:
    """A fresh widget key: public by design, it identifies the project in browsers."""
    return "pk_" + secrets.token_urlsafe(18)


def new_identity_secret() -> str:
    """A fresh secret the product's server uses to sign user ids for the widget."""
    return secrets.token_hex(32)


def hash_key(key: str) -> str:
    """SHA-256 of an API key: keys carry 256 bits of entropy, so a fast hash is the right tool."""
    return hashlib.sha256(key.encode()).hexdigest()


def _fernet(app_secret: str) -> Fernet:
    digest = hashlib.sha256(b"survey-service identity secret\x00" + app_secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(plain: str, app_secret: str) -> str:
    """Encrypt a project secret with a key derived from the app's SECRET_KEY."""
    return _fernet(app_secret).encrypt(plain.encode()).decode()


def decrypt_secret(token: str, app_secret: str, fallbacks: list[str] | None = None) -> str:
    """Decrypt a project secret, accepting the current SECRET_KEY or any fallback key."""
    ring = MultiFernet([_fernet(k) for k in [app_secret, *(fallbacks or [])]])
    try:
        return ring.decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("the identity secret cannot be decrypted with SECRET_KEY or its fallbacks") from exc


def user_hash(identity_secret: str, user_id: str) -> str:
    """The hex HMAC-SHA256 of a user id, as the product's server computes it for the widget."""
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(identity_secret: str, user_id: str, given: str) -> bool:
    """Check a widget user_hash in constant time."""
    if not given.isascii():
        return False  # compare_digest refuses non-ASCII str (TypeError); a hex digest never has any
    return hmac.compare_digest(user_hash(identity_secret, user_id), given.lower())
