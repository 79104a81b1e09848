"""Configuration: the only module that reads the environment."""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_INSTANCE = Path(__file__).resolve().parent.parent / "instance"


class ConfigError(RuntimeError):
    """Raised when the environment cannot produce a working configuration."""


def _instance_dir() -> Path:
    path = Path(os.environ.get("INSTANCE_PATH", DEFAULT_INSTANCE)).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


# Production keys: at least this long, with at least this many different characters (a repeated
# word or a short password is refused; `python -c "import secrets; print(secrets.token_urlsafe(48))"`).
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_DISTINCT = 10
DEFAULT_HSTS_MAX_AGE = 365 * 24 * 3600


def check_secret_strength(name: str, key: str) -> None:
    """Refuse a production signing key that is short or repetitive enough to be guessed."""
    placeholder = "changeme" in re.sub(r"[^a-z]", "", key.lower())  # .env.example's, copied unchanged
    if placeholder or len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < MIN_SECRET_KEY_DISTINCT:
        raise ConfigError(
            f"{name} is too weak for SURVEY_ENV=production: use at least {MIN_SECRET_KEY_LENGTH} random "
            f"characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )


def _secret_key(instance: Path, production: bool) -> str:
    """Return SECRET_KEY, or the development key generated once into instance/."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        if production:
            check_secret_strength("SECRET_KEY", key)
        return key
    if production:
        raise ConfigError("SECRET_KEY must be set when SURVEY_ENV=production")
    key_file = instance / "secret_key"
    try:
        # O_EXCL: several gunicorn workers may start at once; exactly one writes the key.
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return key_file.read_text().strip()


def _database_url(instance: Path) -> str:
    url = os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{instance / 'survey.db'}"
    # SQLAlchemy needs the psycopg 3 driver named; accept the usual postgres:// spellings.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, fit for logs and console output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


RATE_UNITS = {"s": 1.0, "second": 1.0, "m": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/|per)\s*([a-z]+)\s*$")


def parse_rate(name: str, text: str) -> float | None:
    """A send rate ('14/s', '100 per second', '600/m', '50000/h') in sends per second; '' or '0': None."""
    if text.strip() in ("", "0"):
        return None
    match = _RATE.match(text.lower())
    if not match or match.group(2) not in RATE_UNITS or float(match.group(1)) <= 0:
        raise ConfigError(f"{name} takes a rate such as 14/s, 600/m or 50000/h (0: no limit), not {text!r}")
    return float(match.group(1)) / RATE_UNITS[match.group(2)]


def parse_domain_rates(name: str, text: str) -> dict[str, float]:
    """'gmail.com=20/s, outlook.com=10/s' as {domain: sends per second}."""
    rates: dict[str, float] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        domain, sep, rate = item.partition("=")
        parsed = parse_rate(name, rate) if sep and domain.strip() else None
        if parsed is None:
            raise ConfigError(f"{name} takes domain=rate pairs such as gmail.com=20/s, not {item.strip()!r}")
        rates[domain.strip().lower()] = parsed
    return rates


def _positive_int(name: str, default: str) -> int:
    text = os.environ.get(name, default).strip() or default
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name} takes a whole number of at least 1, not {text!r}")
    return int(text)


def _intervals(text: str) -> list[int] | None:
    """EMAIL_RETRY_INTERVALS as a list of seconds; None when unset."""
    values = [int(part) for part in text.split(",") if part.strip()]
    if any(v < 0 for v in values):
        raise ConfigError("EMAIL_RETRY_INTERVALS takes non-negative seconds, e.g. 60,300,1800")
    return values or None


def _ports(text: str) -> frozenset[int] | None:
    """WEBHOOK_ALLOWED_PORTS as a set of ports; "any" (or "*") allows every port."""
    if text.strip().lower() in ("any", "*"):
        return None
    why = "WEBHOOK_ALLOWED_PORTS takes ports, e.g. 80,443 (or any)"
    try:
        ports = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(why) from None
    if not ports or not all(0 < port < 65536 for port in ports):
        raise ConfigError(why)
    return ports


# PostgreSQL connections a process keeps (at most; opened on demand) and may open beyond them for a while.
DEFAULT_POOL_SIZE = 16
DEFAULT_POOL_OVERFLOW = 4

# Where `survey-service start` (`make run`) serves when neither PORT, --port nor BASE_URL says otherwise.
DEFAULT_PORT = 5000


def _port() -> int | None:
    """PORT, the port `survey-service start` serves on; None when unset."""
    raw = os.environ.get("PORT", "").strip()
    if not raw:
        return None
    value = int(raw) if raw.isdigit() else 0
    if not 0 < value < 65536:
        raise ConfigError(f"PORT takes a TCP port from 1 to 65535, got {raw!r}")
    return value


def _positive_seconds(name: str, default: str) -> float:
    """A duration setting in seconds that must be above zero."""
    try:
        value = float(os.environ.get(name, "").strip() or default)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{name} takes a number of seconds above 0, e.g. {default}")
    return value


def _non_negative_int(name: str, default: int) -> int:
    """An integer setting that must be 0 or more; a clear error otherwise."""
    raw = os.environ.get(name, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more, got {value}")
    return value


def _work_mem(name: str, default: str) -> str | None:
    """A PostgreSQL memory size such as 256MB (kB, MB or GB); 0 keeps the server's own setting."""
    raw = os.environ.get(name, "").strip() or default
    if raw == "0":
        return None
    if not re.fullmatch(r"[1-9][0-9]{0,6}(kB|MB|GB)", raw):
        raise ConfigError(
            f"{name} takes a PostgreSQL memory size such as 256MB or 1GB (0: the server's), not {raw!r}"
        )
    return raw


# A verdict never outlives this: eligibility changes reach the person within 10 minutes.
MAX_WIDGET_VERDICT_TTL = 600


def _verdict_ttl() -> int:
    """WIDGET_VERDICT_TTL in seconds, from 0 (off) to MAX_WIDGET_VERDICT_TTL (the default)."""
    value = _non_negative_int("WIDGET_VERDICT_TTL", MAX_WIDGET_VERDICT_TTL)
    if value > MAX_WIDGET_VERDICT_TTL:
        raise ConfigError(f"WIDGET_VERDICT_TTL is at most {MAX_WIDGET_VERDICT_TTL} seconds, got {value}")
    return value


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from the environment and optional overrides."""
    overrides = overrides or {}
    instance = Path(overrides.get("INSTANCE_PATH") or _instance_dir())
    production = os.environ.get("SURVEY_ENV", "development") == "production"
    secret = overrides.get("SECRET_KEY") or _secret_key(instance, production)
    fallbacks = [k.strip() for k in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip()]
    if production:  # an old key still verifies signatures: a weak one forges them as well as a new one
        for fallback in fallbacks:
            check_secret_strength("SECRET_KEY_FALLBACKS", fallback)
    db_url = overrides.get("SQLALCHEMY_DATABASE_URI") or _database_url(instance)
    # Recycle connections instead of pinging each checkout: the ping is a round trip per request.
    engine_options: dict[str, Any] = {"pool_recycle": 300}
    if db_url.startswith("postgresql"):
        # Keep as many connections as a process's threads use at once (gunicorn's gthread worker runs 8):
        # SQLAlchemy's default of 5 kept, the rest as overflow, had every request past the fifth open a
        # new PostgreSQL connection (a server process forked and authenticated) and close it again.
        # Connections are opened on demand: a process keeps only its peak of concurrent use.
        engine_options["pool_size"] = _positive_int("DATABASE_POOL_SIZE", str(DEFAULT_POOL_SIZE))
        engine_options["max_overflow"] = _non_negative_int("DATABASE_POOL_OVERFLOW", DEFAULT_POOL_OVERFLOW)
    if db_url.startswith("postgresql") and "connect_timeout" not in db_url:
        # An unreachable database answers 503 within seconds instead of hanging the request.
        engine_options["connect_args"] = {"connect_timeout": 5}
    if db_url.startswith("sqlite"):
        # WAL + a busy timeout let the web and worker processes share the embedded file.
        engine_options = {"connect_args": {"timeout": 30}}
    port = _port()
    explicit_base = os.environ.get("BASE_URL", "").strip().rstrip("/")
    config: dict[str, Any] = {
        "INSTANCE_PATH": str(instance),
        "SURVEY_ENV": "production" if production else "development",
        "SECRET_KEY": secret,
        "SECRET_KEY_FALLBACKS": fallbacks,
        "SQLALCHEMY_DATABASE_URI": db_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        "REDIS_URL": os.environ.get("REDIS_URL", "").strip() or None,
        # Unset, BASE_URL follows the port `start` serves on (PORT or --port; 5000 by default).
        "PORT": port,
        "BASE_URL": explicit_base or f"http://127.0.0.1:{port or DEFAULT_PORT}",
        "BASE_URL_FOLLOWS_PORT": not explicit_base,
        "SMTP_URL": os.environ.get("SMTP_URL", "").strip() or None,
        "MAIL_FROM": os.environ.get("MAIL_FROM", "surveys@localhost"),
        # Email channel: the optional open pixel (off: image proxies prefetch), public page limits.
        "EMAIL_OPEN_TRACKING": os.environ.get("EMAIL_OPEN_TRACKING", "").lower() in ("1", "true", "yes"),
        "PUBLIC_RATE_LIMIT": os.environ.get("PUBLIC_RATE_LIMIT", "60 per minute;600 per hour"),
        "MAX_CONTENT_LENGTH": 64 * 1024,
        # Per client address on /api/widget/*: generous, as many users can share one office IP.
        "WIDGET_RATE_LIMIT": os.environ.get("WIDGET_RATE_LIMIT", "300 per minute"),
        # The longest the widget keeps a "not now" verdict before asking again: how late a new in-app
        # request or a settings change may reach a person (0: no verdicts, every page view asks).
        "WIDGET_VERDICT_TTL": _verdict_ttl(),
        # /demo signs a fresh user id for the demo project: on by default only outside production.
        "DEMO_PAGE": os.environ.get("DEMO_PAGE", "" if production else "1").lower() in ("1", "true", "yes"),
        # Emails first; webhooks on their own queue, so a slow receiver never delays a survey email.
        "RQ_QUEUES": ["default", "webhooks"],
        # How long a worker may hold a claimed send before the relay assumes it died and retries.
        "SEND_CLAIM_TIMEOUT": int(os.environ.get("SEND_CLAIM_TIMEOUT", "150")),
        # Bulk sends: requests claimed per batch, how long one job keeps claiming batches, and the
        # send rates the operator's provider allows (shared by every worker; unset: no limit).
        "SEND_BATCH_SIZE": _positive_int("SEND_BATCH_SIZE", "100"),
        "SEND_DRAIN_SECONDS": _positive_int("SEND_DRAIN_SECONDS", "20"),
        "SEND_RATE_LIMIT": parse_rate("SEND_RATE_LIMIT", os.environ.get("SEND_RATE_LIMIT", "")),
        "SEND_DOMAIN_RATE_LIMIT": parse_rate(
            "SEND_DOMAIN_RATE_LIMIT", os.environ.get("SEND_DOMAIN_RATE_LIMIT", "")
        ),
        "SEND_DOMAIN_RATE_LIMITS": parse_domain_rates(
            "SEND_DOMAIN_RATE_LIMITS", os.environ.get("SEND_DOMAIN_RATE_LIMITS", "")
        ),
        # Seconds between RQ retries of a failed send, comma-separated (unset: 60, 300, 1800, 7200).
        "EMAIL_RETRY_INTERVALS": _intervals(os.environ.get("EMAIL_RETRY_INTERVALS", "")),
        # /v1/ Delighted-compatible API: requests per project and window (0 turns limiting off).
        "DELIGHTED_RATE_LIMIT": int(os.environ.get("DELIGHTED_RATE_LIMIT", "1000")),
        "DELIGHTED_RATE_WINDOW": int(os.environ.get("DELIGHTED_RATE_WINDOW", "60")),
        # flask-smorest / OpenAPI
        "API_TITLE": "Survey service API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "JSON_SORT_KEYS": False,
        # Dashboard sessions: signed cookies, not readable by scripts, sent only same-site.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        "WTF_CSRF_TIME_LIMIT": 12 * 3600,
        # Report figures with fewer responses than this are flagged too_few_responses.
        "REPORT_MIN_RESPONSES": int(os.environ.get("REPORT_MIN_RESPONSES", "30")),
        # Webhook targets must be public addresses unless this is set (e.g. an intranet receiver).
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": os.environ.get("WEBHOOK_ALLOW_PRIVATE_TARGETS", "").lower()
        in ("1", "true", "yes"),
        "WEBHOOK_TIMEOUT": 5.0,
        # Webhook receivers: the ports a target may use, the wall-clock seconds one delivery may take
        # (each socket wait is also capped by WEBHOOK_TIMEOUT), and the alert rules a project may have.
        "WEBHOOK_ALLOWED_PORTS": _ports(os.environ.get("WEBHOOK_ALLOWED_PORTS", "").strip() or "80,443"),
        "WEBHOOK_DEADLINE_SECONDS": _positive_seconds("WEBHOOK_DEADLINE_SECONDS", "10"),
        "MAX_ALERT_RULES": _non_negative_int("MAX_ALERT_RULES", 20),
        # Proxies in front of the app whose X-Forwarded-For/-Proto are believed (0: none, use the peer).
        "TRUSTED_PROXY_HOPS": _non_negative_int("TRUSTED_PROXY_HOPS", 0),
        # Sign-in throttling (services/login_limits.py): free failures per (email, address) and per address,
        # then delays doubling from the first up to the maximum.
        "LOGIN_FAILURES_BEFORE_DELAY": _non_negative_int("LOGIN_FAILURES_BEFORE_DELAY", 5),
        "LOGIN_ADDRESS_FAILURES_BEFORE_DELAY": _non_negative_int("LOGIN_ADDRESS_FAILURES_BEFORE_DELAY", 30),
        "LOGIN_FIRST_DELAY_SECONDS": _non_negative_int("LOGIN_FIRST_DELAY_SECONDS", 2),
        "LOGIN_MAX_DELAY_SECONDS": _non_negative_int("LOGIN_MAX_DELAY_SECONDS", 15 * 60),
        # Survey, unsubscribe and open-pixel pages: requests per link (any address), and per address for
        # links that do not verify.
        "PUBLIC_LINK_RATE_LIMIT": os.environ.get("PUBLIC_LINK_RATE_LIMIT", "30 per minute;300 per hour"),
        # Comments older than this many days are blanked by `survey-service anonymise-comments`.
        "COMMENT_RETENTION_DAYS": int(os.environ.get("COMMENT_RETENTION_DAYS", "0")) or None,
        # /api/v1 per project and window (0 turns a limit off); exports and reports cost more.
        "API_RATE_LIMIT": _non_negative_int("API_RATE_LIMIT", 600),
        "API_EXPORT_RATE_LIMIT": _non_negative_int("API_EXPORT_RATE_LIMIT", 60),
        "API_RATE_WINDOW": _non_negative_int("API_RATE_WINDOW", 60),
        # Deliveries to one event source's URL per window (0 turns it off); counted per source, never per
        # address (providers send from many, shared addresses).
        "SOURCE_RATE_LIMIT": _non_negative_int("SOURCE_RATE_LIMIT", 1200),
        "SOURCE_RATE_WINDOW": _non_negative_int("SOURCE_RATE_WINDOW", 60),
        # Seconds a worker keeps the project of a secret key, its alert rules and its trigger rules before
        # reading them again (core/hot_cache): the bound for a change made in another process to reach it.
        "HOT_CACHE_SECONDS": _non_negative_int("HOT_CACHE_SECONDS", 5),
        # PostgreSQL's work_mem for an export's own transaction: its sort and join of every answer spill to
        # disk at the server's usual 4MB (bench/README.md, "Reporting at 10M responses").
        "EXPORT_WORK_MEM": _work_mem("EXPORT_WORK_MEM", "256MB"),
    }
    config.update(overrides)
    https = str(config["BASE_URL"]).startswith("https://")
    # Production is served over HTTPS whatever BASE_URL says: the session cookie never travels in clear.
    config.setdefault("SESSION_COOKIE_SECURE", production or https)
    hsts_max_age = int(os.environ.get("HSTS_MAX_AGE", str(DEFAULT_HSTS_MAX_AGE)))
    config.setdefault(
        "STRICT_TRANSPORT_SECURITY",
        f"max-age={hsts_max_age}" if (production or https) and hsts_max_age > 0 else None,
    )
    return config
