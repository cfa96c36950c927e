"""Configuration from environment variables, each with an embedded default.

Nothing needs to be configured to start: the defaults put every piece of state under ``./var``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _var_dir() -> Path:
    return Path(os.environ.get("VAR_DIR", "var")).resolve()


def _secret_key(var_dir: Path) -> str:
    """A stable SECRET_KEY for the embedded setup: generated once and kept under var/."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class OAuthApp:
    """An OAuth2 app registered at a mail provider, through which companies connect their mailboxes
    ("Connect Gmail", "Connect Microsoft 365"): the provider's endpoints, the app's credentials, the
    scopes asked for, and the IMAP server the connected mailbox is read on. Every field is a setting so
    that the tests (and a provider's regional or sovereign cloud) can point them elsewhere."""

    provider: str  # "google" | "microsoft"
    authorize_url: str
    token_url: str
    scopes: str  # space-separated
    imap_host: str
    imap_port: int = 993
    imap_security: str = "ssl"
    client_id: str = ""  # empty: the "Connect" button is not offered for this provider
    client_secret: str = ""  # empty: a public client (PKCE alone)

    @property
    def configured(self) -> bool:
        return bool(self.client_id)

    def __repr__(self) -> str:  # the client secret never reaches a log line
        return f"OAuthApp({self.provider}, client_id={self.client_id!r})"

    @classmethod
    def from_env(cls, provider: str) -> OAuthApp:
        defaults = OAUTH_DEFAULTS[provider]
        prefix = f"OAUTH_{provider.upper()}_"
        tenant = os.environ.get("MICROSOFT_TENANT", "common")

        def env(name: str, default: str = "") -> str:
            return os.environ.get(prefix + name, "").strip() or default

        return cls(
            provider=provider,
            authorize_url=env("AUTHORIZE_URL", defaults["authorize_url"].format(tenant=tenant)),
            # IMAP_OAUTH_TOKEN_URL: the older name of this setting (both providers), still honoured.
            token_url=env("TOKEN_URL", os.environ.get("IMAP_OAUTH_TOKEN_URL", "").strip()
                          or defaults["token_url"].format(tenant=tenant)),
            scopes=env("SCOPES", defaults["scopes"]),
            imap_host=env("IMAP_HOST", defaults["imap_host"]),
            imap_port=int(env("IMAP_PORT", "993")),
            imap_security=env("IMAP_SECURITY", "ssl"),
            client_id=env("CLIENT_ID"),
            client_secret=os.environ.get(prefix + "CLIENT_SECRET", ""),
        )


# "openid email" (Google) / "openid profile email" (Microsoft) add an ID token naming the account that consented:
# it becomes the mailbox's IMAP user name. offline_access (Microsoft) / access_type=offline (Google) bring
# the refresh token. "common" works for any work/school account; MICROSOFT_TENANT pins a directory.
OAUTH_DEFAULTS: dict[str, dict[str, str]] = {
    "google": {
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "scopes": "openid email https://mail.google.com/",
        "imap_host": "imap.gmail.com",
    },
    "microsoft": {
        "authorize_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        "token_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "scopes": "openid profile email offline_access https://outlook.office.com/IMAP.AccessAsUser.All",
        "imap_host": "outlook.office365.com",
    },
}


def _oauth_app(provider: str) -> OAuthApp:
    return OAuthApp.from_env(provider)


def _path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).resolve() if value else None


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database_url: str
    redis_url: str
    storage_dir: Path
    inbound_domain: str
    smtp_host: str
    smtp_port: int
    port: int
    secret_key: str
    max_message_bytes: int
    queue_name: str = "inbox"
    job_timeout: int = 300
    extra: dict[str, str] = field(default_factory=dict)
    # SMTP STARTTLS: offered only when a certificate is configured (PEM files).
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    smtp_require_tls: bool = False  # refuse mail before STARTTLS (only with a certificate)
    # How many reverse proxies in front of the web app append X-Forwarded-For/-Proto: the client address
    # is taken that many hops from the end (ProxyFix). 0 (direct): the headers are ignored, never trusted.
    proxy_hops: int = 0
    # Per-company quotas (core.tenancy.quotas); 0 turns one off.
    tenant_max_messages_per_hour: int = 1000
    tenant_max_storage_mb: int = 20 * 1024
    # Prometheus metrics of the SMTP gateway and of a worker, each on a port of its own (0: not served;
    # several workers on one host: PROMETHEUS_MULTIPROC_DIR instead, the web process's /metrics serves all).
    metrics_host: str = "127.0.0.1"
    # STORAGE_URL=s3://bucket/prefix: files on an S3-compatible object store instead of storage_dir.
    storage_url: str = ""
    raw_retention_days: int = 0  # RAW_RETENTION_DAYS: raw e-mails older than this are deleted (0: kept)
    s3_endpoint_url: str = ""  # e.g. http://minio:9000 (empty: AWS)
    s3_region: str = ""
    s3_access_key_id: str = ""  # empty: boto3's own lookup (AWS_ACCESS_KEY_ID, instance role, ...)
    s3_secret_access_key: str = ""
    smtp_metrics_port: int = 0
    worker_metrics_port: int = 0
    # OAuth2 apps for "Connect Gmail" / "Connect Microsoft 365" (OAUTH_GOOGLE_* / OAUTH_MICROSOFT_*).
    oauth_google: OAuthApp = field(default_factory=lambda: _oauth_app("google"))
    oauth_microsoft: OAuthApp = field(default_factory=lambda: _oauth_app("microsoft"))
    # The callback URL registered at the providers; empty: derived from the request (url_for, _external).
    oauth_redirect_url: str = ""

    def oauth_app(self, provider: str) -> OAuthApp | None:
        return {"google": self.oauth_google, "microsoft": self.oauth_microsoft}.get(provider)

    # Issue 17: outgoing mail (invitations, password resets). smtp://[user:pass@]host:port (STARTTLS when the
    # relay offers it), smtps://... (TLS from the start); empty: kept in the outbox table, read on the dashboard.
    mail_relay_url: str = ""
    mail_from: str = "invoice-inbox <no-reply@localhost>"
    # Anyone may create an account and a company from the login page (off: invitations only).
    signup_enabled: bool = False
    # The address links in e-mails point to (empty: the address of the request that sent them).
    public_url: str = ""

    @property
    def redis_is_embedded(self) -> bool:
        """True when REDIS_URL was not given: the start command runs its own redis-server."""
        return "REDIS_URL" not in os.environ

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = _var_dir()
        return cls(
            var_dir=var_dir,
            database_url=os.environ.get("DATABASE_URL", f"sqlite:///{var_dir / 'inbox.db'}"),
            redis_url=os.environ.get("REDIS_URL", f"unix://{var_dir / 'redis.sock'}"),
            storage_dir=Path(os.environ.get("STORAGE_DIR", var_dir / "storage")).resolve(),
            inbound_domain=os.environ.get("INBOUND_DOMAIN", "inbox.localhost").lower(),
            smtp_host=os.environ.get("SMTP_HOST", "127.0.0.1"),
            smtp_port=_int("SMTP_PORT", 2525),
            port=_int("PORT", 8000),
            secret_key=_secret_key(var_dir),
            max_message_bytes=_int("MAX_MESSAGE_BYTES", 25 * 1024 * 1024),
            queue_name=os.environ.get("QUEUE_NAME", "inbox"),
            job_timeout=_int("JOB_TIMEOUT", 300),
            smtp_tls_cert=_path("SMTP_TLS_CERT"),
            smtp_tls_key=_path("SMTP_TLS_KEY"),
            smtp_require_tls=os.environ.get("SMTP_REQUIRE_TLS", "").lower() in {"1", "true", "yes", "on"},
            proxy_hops=_int("TRUSTED_PROXY_HOPS", 0),
            tenant_max_messages_per_hour=_int("TENANT_MAX_MESSAGES_PER_HOUR", 1000),
            tenant_max_storage_mb=_int("TENANT_MAX_STORAGE_MB", 20 * 1024),
            metrics_host=os.environ.get("METRICS_HOST", "127.0.0.1"),
            smtp_metrics_port=_int("SMTP_METRICS_PORT", 0),
            worker_metrics_port=_int("WORKER_METRICS_PORT", 0),
            storage_url=os.environ.get("STORAGE_URL", "").strip(),
            raw_retention_days=_int("RAW_RETENTION_DAYS", 0),
            s3_endpoint_url=os.environ.get("S3_ENDPOINT_URL", "").strip(),
            s3_region=os.environ.get("S3_REGION", "").strip(),
            s3_access_key_id=os.environ.get("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=os.environ.get("S3_SECRET_ACCESS_KEY", ""),
            oauth_redirect_url=os.environ.get("OAUTH_REDIRECT_URL", "").strip(),

            mail_relay_url=os.environ.get("MAIL_RELAY_URL", "").strip(),
            mail_from=os.environ.get("MAIL_FROM", "").strip() or "invoice-inbox <no-reply@localhost>",
            signup_enabled=os.environ.get("SIGNUP_ENABLED", "").lower() in {"1", "true", "yes", "on"},
            public_url=os.environ.get("PUBLIC_URL", "").strip().rstrip("/"),
        )


def normalize_database_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` spellings and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url
