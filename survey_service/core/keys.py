"""Project credentials: key generation, hashing, and secrets encrypted at rest under per-purpose keys."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def key_from_authorization(header: str) -> str | None:
    """The secret key of an Authorization header: `Bearer sk_…`, or HTTP Basic with the key as user name.

    Shared by both server APIs (/api/v1 and Delighted's /v1), so neither view package imports the other.
    """
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


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


# Each kind of secret at rest has its own key: a leak or misuse of one purpose's key exposes nothing else.
IDENTITY_SECRET = "identity-secret"
WEBHOOK_SECRET = "webhook-secret"
SOURCE_SECRET = "source-secret"  # an event source's signing secret (services verify HMACs with it)
SUPPRESSED_EMAIL = "suppressed-email"


def purpose_key(app_secret: str, purpose: str) -> bytes:
    """32 bytes derived from SECRET_KEY for one purpose (HKDF-SHA256, info = the purpose)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        app_secret.encode()
    )


def _fernet(app_secret: str, purpose: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(purpose_key(app_secret, purpose)))


def _legacy_fernet(app_secret: str) -> Fernet:
    """The derivation used before per-purpose keys (one SHA-256, shared by every purpose): read only."""
    digest = hashlib.sha256(b"survey-service identity secret\x00" + app_secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _ring(app_secret: str, fallbacks: list[str] | None, purpose: str) -> MultiFernet:
    """Every key a stored ciphertext may be under, the current one first, legacy derivations last."""
    secrets_ = [app_secret, *(fallbacks or [])]
    return MultiFernet([*(_fernet(k, purpose) for k in secrets_), *(_legacy_fernet(k) for k in secrets_)])


def encrypt_secret(plain: str, app_secret: str, *, purpose: str) -> str:
    """Encrypt a secret under the purpose's key derived from the app's SECRET_KEY."""
    return _fernet(app_secret, purpose).encrypt(plain.encode()).decode()


def decrypt_secret(token: str, app_secret: str, fallbacks: list[str] | None = None, *, purpose: str) -> str:
    """Decrypt a secret under the purpose's key of SECRET_KEY, of a fallback key, or a legacy derivation."""
    try:
        return _ring(app_secret, fallbacks, purpose).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError(f"the {purpose} cannot be decrypted with SECRET_KEY or its fallbacks") from exc


def reencrypt_secret(
    token: str, app_secret: str, fallbacks: list[str] | None = None, *, purpose: str
) -> str | None:
    """The ciphertext under the current purpose key, or None when it already is; raises ValueError."""
    try:
        _fernet(app_secret, purpose).decrypt(token.encode())
        return None
    except InvalidToken:
        pass
    return encrypt_secret(
        decrypt_secret(token, app_secret, fallbacks, purpose=purpose), app_secret, purpose=purpose
    )


def keyed_hash(value: str, app_secret: str, purpose: str) -> str:
    """Hex HMAC-SHA256 of a value under the purpose's key: matchable, but no guessing without SECRET_KEY."""
    return hmac.new(purpose_key(app_secret, purpose), value.encode(), hashlib.sha256).hexdigest()


def user_hash(identity_secret: str, user_id: str) -> str:
    """The hex HMAC-SHA256 of a user id, as the product's server computes it for the widget."""
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user_hash(identity_secret: str, user_id: str, given: str) -> bool:
    """Check a widget user_hash in constant time."""
    if not given.isascii():
        return False  # compare_digest refuses non-ASCII str (TypeError); a hex digest never has any
    return hmac.compare_digest(user_hash(identity_secret, user_id), given.lower())
