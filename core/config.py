"""Configuration from environment variables, each with an embedded default.

Nothing needs to be configured to start: the defaults put every piece of state under ``./var``.

Every variable the application reads is declared once in ``VARIABLES`` (name, section, default, meaning)
and read through ``env()``, here or in the section that uses it (the SMTP limits, the IMAP poller, sender
authentication...); reading an undeclared name is an error. The README's configuration table is generated
from ``VARIABLES`` (``python -m core.config``) and a test keeps the two equal, so the table is never out of
date and no module reads the environment behind the operator's back.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Variable:
    name: str
    section: str
    default: str  # as the README shows it
    meaning: str


_CORE, _WEB, _SMTP, _IMAP, _OAUTH, _AUTH, _WORKER, _OPS, _MAILOUT, _LIMITS, _DEV = (
    "Storage and services", "Web", "SMTP gateway", "IMAP poller", "Mailboxes connected by OAuth2",
    "Sender authentication", "Worker", "Metrics and logs", "Outgoing mail", "Quotas and retention",
    "Development and tests",
)

VARIABLES: tuple[Variable, ...] = (
    Variable("DATABASE_URL", _CORE, "`sqlite:///var/inbox.db`",
             "SQLAlchemy URL; `postgresql://user@host/db` uses psycopg 3"),
    Variable("REDIS_URL", _CORE, "`unix://var/redis.sock`",
             "Redis for the RQ queue; when unset, `inbox start` runs its own `redis-server` on that socket"),
    Variable("STORAGE_DIR", _CORE, "`var/storage`", "raw messages and files (content-addressed per tenant)"),
    Variable("STORAGE_URL", _CORE, "unset",
             "`s3://bucket/prefix`: raw messages and files on an S3-compatible object store instead of "
             "`STORAGE_DIR` (the `250` waits for the store's acknowledgement; downloads stream)"),
    Variable("S3_ENDPOINT_URL", _CORE, "unset (AWS)", "the object store's endpoint (MinIO, SeaweedFS, Ceph, ...)"),
    Variable("S3_REGION", _CORE, "unset", "the object store's region"),
    Variable("S3_ACCESS_KEY_ID", _CORE, "unset",
             "credentials; unset: boto3's own lookup (`AWS_ACCESS_KEY_ID`, an instance role, ...)"),
    Variable("S3_SECRET_ACCESS_KEY", _CORE, "unset", "the secret of `S3_ACCESS_KEY_ID`"),
    Variable("VAR_DIR", _CORE, "`./var`", "where the embedded defaults keep their state"),
    Variable("SECRET_KEY", _CORE, "generated once into `var/secret_key`",
             "signs sessions and CSRF tokens; set it when running several web hosts"),
    Variable("MAILBOX_KEY", _CORE, "derived from `SECRET_KEY`",
             "encrypts stored mailbox passwords and tokens; `new,old` to rotate (docs/imap.md)"),
    Variable("INBOUND_DOMAIN", _CORE, "`inbox.localhost`",
             "the domain of the tenants' addresses (point its MX at the SMTP gateway)"),
    Variable("MAX_MESSAGE_BYTES", _CORE, "`26214400` (25 MB)",
             "largest message accepted (advertised with SMTP `SIZE`)"),
    Variable("PORT", _WEB, "`8000`", "web port (as Procfile hosts expect)"),
    Variable("COOKIE_SECURE", _WEB, "`0`", "set to `1` behind HTTPS so that session cookies are `Secure`"),
    Variable("TRUSTED_PROXY_HOPS", _WEB, "`0`",
             "how many reverse proxies in front of the web app append `X-Forwarded-For`/`-Proto`; 0 ignores "
             "those headers (the login throttle then keys on the socket's address)"),
    Variable("SMTP_HOST", _SMTP, "`127.0.0.1`", "address the SMTP gateway listens on (`0.0.0.0` in production)"),
    Variable("SMTP_PORT", _SMTP, "`2525`", "port of the SMTP gateway"),
    Variable("SMTP_TLS_CERT", _SMTP, "unset", "PEM certificate: STARTTLS is offered only with one"),
    Variable("SMTP_TLS_KEY", _SMTP, "unset", "its PEM private key"),
    Variable("SMTP_REQUIRE_TLS", _SMTP, "`0`", "`1` refuses mail before STARTTLS (not on a public MX: RFC 3207)"),
    Variable("SMTP_MAX_RECIPIENTS", _SMTP, "`50`", "recipients per message"),
    Variable("SMTP_MAX_CONNECTIONS", _SMTP, "`100`", "connections at once, then `421`"),
    Variable("SMTP_MAX_CONNECTIONS_PER_IP", _SMTP, "`20`", "connections per client IP or IPv6 /64"),
    Variable("SMTP_TIMEOUT", _SMTP, "`300`", "seconds between commands"),
    Variable("SMTP_DATA_IDLE_TIMEOUT", _SMTP, "`180`", "seconds without a byte during DATA"),
    Variable("SMTP_DATA_MIN_RATE", _SMTP, "`20000`",
             "B/s: a DATA transfer may take `SMTP_TIMEOUT` + expected size / this rate"),
    Variable("SMTP_MAX_REFUSED_RCPTS", _SMTP, "`10`",
             "refused recipients per client per `SMTP_REFUSED_WINDOW`, then `421` and the connection closed"),
    Variable("SMTP_REFUSED_WINDOW", _SMTP, "`600`", "seconds of that window"),
    Variable("SMTP_LIMIT_EXEMPT", _SMTP, "unset", "IPs/networks the per-client limits skip (an MX relay of yours)"),
    Variable("SMTP_RECIPIENT_CACHE_SECONDS", _SMTP, "`10`",
             "how long each gateway remembers an accepted address (0: ask the database at every RCPT)"),
    Variable("SMTP_SWEEP_INTERVAL", _SMTP, "`30`", "seconds between the gateway's sweeps of unqueued messages"),
    Variable("SMTP_SHUTDOWN_GRACE", _SMTP, "`8`", "seconds the gateway lets sessions finish on SIGTERM"),
    Variable("IMAP_POLL_INTERVAL", _IMAP, "`60`", "seconds between polls of a mailbox without IDLE"),
    Variable("IMAP_IDLE_TIMEOUT", _IMAP, "`1500`", "seconds an IDLE waits before it is renewed"),
    Variable("IMAP_BACKOFF_BASE", _IMAP, "`2`", "first retry delay after a failure, in seconds"),
    Variable("IMAP_BACKOFF_MAX", _IMAP, "`300`", "the cap of that delay"),
    Variable("IMAP_RELOAD_INTERVAL", _IMAP, "`30`", "how often mailbox settings changes are picked up"),
    Variable("IMAP_TIMEOUT", _IMAP, "`60`", "socket timeout of IMAP commands"),
    Variable("IMAP_SHUTDOWN_GRACE", _IMAP, "`8`", "seconds the poller lets imports finish on SIGTERM"),
    Variable("IMAP_CA_FILE", _IMAP, "unset", "a private CA's PEM file, trusted besides the system's"),
    Variable("IMAP_CATCH_ALL", _IMAP, "unset",
             "operator catch-all mailboxes routed by recipient: `imaps://user:pass@host/INBOX`, space-separated"),
    Variable("IMAP_ALLOWED_NETWORKS", _IMAP, "unset",
             "comma-separated networks a company's mailbox may reach besides public addresses (e.g. "
             "`10.1.2.0/24`); private, loopback, link-local and metadata addresses are refused otherwise"),
    Variable("IMAP_OAUTH_TOKEN_URL", _IMAP, "unset", "overrides the providers' OAuth2 token endpoint"),
    Variable("OAUTH_REDIRECT_URL", _OAUTH, "from the request",
             "the callback registered at both providers: `https://<host>/settings/mailboxes/oauth/callback`"),
    Variable("OAUTH_GOOGLE_CLIENT_ID", _OAUTH, "unset",
             "the Google app behind *Connect Gmail* (unset: no button); docs/mailboxes-oauth.md"),
    Variable("OAUTH_GOOGLE_CLIENT_SECRET", _OAUTH, "unset", "that app's secret (unset: a public client, PKCE alone)"),
    Variable("OAUTH_GOOGLE_AUTHORIZE_URL", _OAUTH, "Google's", "the provider's authorization endpoint"),
    Variable("OAUTH_GOOGLE_TOKEN_URL", _OAUTH, "Google's", "the provider's token endpoint"),
    Variable("OAUTH_GOOGLE_SCOPES", _OAUTH, "Google's", "the scopes asked for, space-separated"),
    Variable("OAUTH_GOOGLE_IMAP_HOST", _OAUTH, "Google's", "the IMAP server of connected mailboxes"),
    Variable("OAUTH_GOOGLE_IMAP_PORT", _OAUTH, "`993`", "its port"),
    Variable("OAUTH_GOOGLE_IMAP_SECURITY", _OAUTH, "`ssl`", "`ssl` or `starttls`"),
    Variable("OAUTH_MICROSOFT_CLIENT_ID", _OAUTH, "unset",
             "the Microsoft Entra app behind *Connect Microsoft 365* (unset: no button); docs/mailboxes-oauth.md"),
    Variable("OAUTH_MICROSOFT_CLIENT_SECRET", _OAUTH, "unset",
             "that app's secret (unset: a public client, PKCE alone)"),
    Variable("OAUTH_MICROSOFT_AUTHORIZE_URL", _OAUTH, "Microsoft's", "the provider's authorization endpoint"),
    Variable("OAUTH_MICROSOFT_TOKEN_URL", _OAUTH, "Microsoft's", "the provider's token endpoint"),
    Variable("OAUTH_MICROSOFT_SCOPES", _OAUTH, "Microsoft's", "the scopes asked for, space-separated"),
    Variable("OAUTH_MICROSOFT_IMAP_HOST", _OAUTH, "Microsoft's", "the IMAP server of connected mailboxes"),
    Variable("OAUTH_MICROSOFT_IMAP_PORT", _OAUTH, "`993`", "its port"),
    Variable("OAUTH_MICROSOFT_IMAP_SECURITY", _OAUTH, "`ssl`", "`ssl` or `starttls`"),
    Variable("MICROSOFT_TENANT", _IMAP, "`common`",
             "the Microsoft directory (tenant id or domain) of OAuth2 mailboxes"),
    Variable("SENDER_AUTH_DNS", _AUTH, "`system`",
             "`system`: the machine's resolvers; `ip[:port],...`: those; `off`: no lookups (every verdict "
             "`temperror`; the test suite uses it)"),
    Variable("SENDER_AUTH_DNS_BUDGET", _AUTH, "`2`",
             "seconds of DNS per message, all questions together; answers are cached for their TTL"),
    Variable("TRUSTED_RELAYS", _AUTH, "empty",
             "IPs/networks of MTAs in front of the gateway: their `Authentication-Results` are taken instead "
             "of checking"),
    Variable("TRUSTED_AUTHSERV_IDS", _AUTH, "empty",
             "authserv-ids whose `Authentication-Results` are believed (a trusted relay's; the provider of an "
             "IMAP mailbox, e.g. `mx.google.com`)"),
    Variable("QUEUE_NAME", _WORKER, "`inbox`",
             "RQ queue of e-mail deliveries; `QUEUE_NAME-bulk` holds imports, uploads, IMAP and retries, taken "
             "only when no e-mail waits (`worker/policy.py`)"),
    Variable("JOB_TIMEOUT", _WORKER, "`300`",
             "hard time limit of every processing job, in seconds (`worker/policy.py`: with the retries)"),
    Variable("BULK_SHARDS", _WORKER, "`32`",
             "per-company bulk queues (`QUEUE_NAME-bulk-<company % n>`) served in turn, so one company's import "
             "does not hold up another's upload; `0`: one shared bulk queue"),
    Variable("WORKER_CLASS", _WORKER, "`simple`",
             "`simple`: jobs run in the worker process (about 3× less CPU per email than forking); `fork`: each "
             "job in a forked child, isolated from crashes in PDF libraries (see `worker/main.py`)"),
    Variable("SMTP_METRICS_PORT", _OPS, "`0` (off)", "the SMTP gateway serves its Prometheus metrics on this port"),
    Variable("WORKER_METRICS_PORT", _OPS, "`0` (off)",
             "a worker serves its Prometheus metrics on this port (one worker per port)"),
    Variable("METRICS_HOST", _OPS, "`127.0.0.1`", "address those metrics ports listen on"),
    Variable("METRICS_TOKEN", _OPS, "unset",
             "when set, the web process's `/metrics` needs `Authorization: Bearer <token>`"),
    Variable("PROMETHEUS_MULTIPROC_DIR", _OPS, "unset",
             "an empty directory shared by every process of a host: the web `/metrics` then serves all of them "
             "(needed for `WORKER_CLASS=fork`)"),
    Variable("LOG_FORMAT", _OPS, "`text`",
             "`json`: one JSON object per log line, with the `message_id` / `document_id` it concerns"),
    Variable("MAIL_RELAY_URL", _MAILOUT, "unset",
             "outgoing mail (invitations, password resets): `smtp://[user:pass@]host:port` (STARTTLS when "
             "offered) or `smtps://...`; unset: kept in the outbox (*Settings → Members → Outbox*; `inbox outbox`)"),
    Variable("MAIL_FROM", _MAILOUT, "`invoice-inbox <no-reply@localhost>`", "the `From` of those mails"),
    Variable("MAIL_RELAY_CA_FILE", _MAILOUT, "unset", "a PEM file of CAs to trust for the relay's certificate"),
    Variable("PUBLIC_URL", _MAILOUT, "unset",
             "the address links in mails point to (e.g. `https://inbox.example.com`); unset: the request's"),
    Variable("SIGNUP_ENABLED", _WEB, "`0` (`1` in `make start`)",
             "anyone may create an account and a company from the login page; off: people join by invitation"),
    Variable("TENANT_MAX_MESSAGES_PER_HOUR", _LIMITS, "`1000`",
             "per-company limit on e-mails and uploads an hour (SMTP `452`, API `429`); 0 turns it off"),
    Variable("TENANT_MAX_STORAGE_MB", _LIMITS, "`20480`",
             "per-company storage limit (SMTP `552`, API `429`); 0 turns it off"),
    Variable("RAW_RETENTION_DAYS", _LIMITS, "`0` (keep)",
             "`inbox purge-raw` (daily from cron) deletes processed/ignored raw e-mails older than this; their "
             "files, documents and invoices stay"),
    Variable("INBOX_COUNT_QUERIES", _DEV, "`0`",
             "`1`: each response says its SQL statements (`X-Query-Count`; benchmarks)"),
)
_DECLARED = {v.name for v in VARIABLES}


def env(name: str, default: str | None = None) -> str | None:
    """The environment variable ``name``, which must be declared in ``VARIABLES``."""
    if name not in _DECLARED:
        raise KeyError(f"{name} is not a declared setting: add it to core.config.VARIABLES (and the README)")
    return os.environ.get(name, default)


def markdown_table() -> str:
    """The README's configuration table, grouped by section (sections in order of first appearance)."""
    lines = ["| variable | default | meaning |", "| --- | --- | --- |"]
    sections = list(dict.fromkeys(v.section for v in VARIABLES))
    for section in sections:
        lines.append(f"| **{section}** | | |")
        lines.extend(f"| `{v.name}` | {v.default} | {v.meaning} |" for v in VARIABLES if v.section == section)
    return "\n".join(lines)


def _var_dir() -> Path:
    return Path(env("VAR_DIR", "var") or "var").resolve()


def _secret_key(var_dir: Path) -> str:
    """A stable SECRET_KEY for the embedded setup: generated once and kept under var/."""
    if key := env("SECRET_KEY"):
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
    return int(env(name) or default)


def _str(name: str, default: str = "") -> str:
    value = env(name)
    return default if value is None else value


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
        tenant = env("MICROSOFT_TENANT") or "common"

        def app_env(name: str, default: str = "") -> str:
            return (env(prefix + name) or "").strip() or default

        return cls(
            provider=provider,
            authorize_url=app_env("AUTHORIZE_URL", defaults["authorize_url"].format(tenant=tenant)),
            # IMAP_OAUTH_TOKEN_URL: the older name of this setting (both providers), still honoured.
            token_url=app_env("TOKEN_URL", (env("IMAP_OAUTH_TOKEN_URL") or "").strip()
                              or defaults["token_url"].format(tenant=tenant)),
            scopes=app_env("SCOPES", defaults["scopes"]),
            imap_host=app_env("IMAP_HOST", defaults["imap_host"]),
            imap_port=int(app_env("IMAP_PORT", "993")),
            imap_security=app_env("IMAP_SECURITY", "ssl"),
            client_id=app_env("CLIENT_ID"),
            client_secret=env(prefix + "CLIENT_SECRET") or "",
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
    value = _str(name).strip()
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
        return env("REDIS_URL") is None

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = _var_dir()
        return cls(
            var_dir=var_dir,
            database_url=_str("DATABASE_URL", f"sqlite:///{var_dir / 'inbox.db'}"),
            redis_url=_str("REDIS_URL", f"unix://{var_dir / 'redis.sock'}"),
            storage_dir=Path(_str("STORAGE_DIR", str(var_dir / "storage"))).resolve(),
            inbound_domain=_str("INBOUND_DOMAIN", "inbox.localhost").lower(),
            smtp_host=_str("SMTP_HOST", "127.0.0.1"),
            smtp_port=_int("SMTP_PORT", 2525),
            port=_int("PORT", 8000),
            secret_key=_secret_key(var_dir),
            max_message_bytes=_int("MAX_MESSAGE_BYTES", 25 * 1024 * 1024),
            queue_name=_str("QUEUE_NAME", "inbox"),
            job_timeout=_int("JOB_TIMEOUT", 300),
            smtp_tls_cert=_path("SMTP_TLS_CERT"),
            smtp_tls_key=_path("SMTP_TLS_KEY"),
            smtp_require_tls=_str("SMTP_REQUIRE_TLS", "").lower() in {"1", "true", "yes", "on"},
            proxy_hops=_int("TRUSTED_PROXY_HOPS", 0),
            tenant_max_messages_per_hour=_int("TENANT_MAX_MESSAGES_PER_HOUR", 1000),
            tenant_max_storage_mb=_int("TENANT_MAX_STORAGE_MB", 20 * 1024),
            metrics_host=_str("METRICS_HOST", "127.0.0.1"),
            smtp_metrics_port=_int("SMTP_METRICS_PORT", 0),
            worker_metrics_port=_int("WORKER_METRICS_PORT", 0),
            storage_url=_str("STORAGE_URL", "").strip(),
            raw_retention_days=_int("RAW_RETENTION_DAYS", 0),
            s3_endpoint_url=_str("S3_ENDPOINT_URL", "").strip(),
            s3_region=_str("S3_REGION", "").strip(),
            s3_access_key_id=_str("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=_str("S3_SECRET_ACCESS_KEY", ""),
            oauth_redirect_url=_str("OAUTH_REDIRECT_URL").strip(),
            mail_relay_url=_str("MAIL_RELAY_URL").strip(),
            mail_from=_str("MAIL_FROM").strip() or "invoice-inbox <no-reply@localhost>",
            signup_enabled=_str("SIGNUP_ENABLED").lower() in {"1", "true", "yes", "on"},
            public_url=_str("PUBLIC_URL").strip().rstrip("/"),
        )


def normalize_database_url(url: str) -> str:
    """Accept the usual ``postgres://`` / ``postgresql://`` spellings and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


if __name__ == "__main__":  # python -m core.config: the README's configuration table
    print(markdown_table())
