"""``inbox start``: the whole service on the embedded defaults, in one terminal.

Runs what the Procfile runs (web, smtp, worker, imap) as child processes, plus a private redis-server on a
unix socket under ``var/`` when REDIS_URL is not given. Production runs the Procfile's processes
under a real supervisor instead; this module only exists so that a newcomer needs one command.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import click
import redis

from core.config import Settings

if TYPE_CHECKING:
    from dashboard.devoauth import OAuthTestServer

DEMO_TENANT = "Démo SAS"
DEMO_EMAIL = "demo@example.com"


def start_embedded_redis(settings: Settings) -> subprocess.Popen[bytes] | None:
    """A redis-server listening only on ``var/redis.sock``; None when one already answers there."""
    sock = settings.var_dir / "redis.sock"
    client = redis.Redis(unix_socket_path=str(sock))
    try:
        client.ping()
        return None
    except redis.ConnectionError:
        pass
    binary = shutil.which("redis-server")
    if binary is None:
        raise click.ClickException("redis-server is not installed (scripts/bootstrap.sh installs it)")
    data = settings.var_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--dir", str(data),
         "--appendonly", "yes", "--save", "60 1"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor only, which stops us last
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException("the embedded redis-server did not start") from None
            time.sleep(0.1)


def ensure_demo(settings: Settings) -> dict[str, str]:
    """Create the demo tenant, user and token on first run; their secrets are kept in var/demo.env."""
    path = settings.var_dir / "demo.env"
    if path.exists():
        return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    from core.tenancy import accounts
    from dashboard.app import create_app
    from dashboard.extensions import db

    app = create_app(settings)
    password = secrets.token_urlsafe(12)
    with app.app_context():
        tenant, address = accounts.create_tenant(db.session, DEMO_TENANT)
        user = accounts.create_user(db.session, DEMO_EMAIL, password, tenant, "admin", reset_password=True)
        token = accounts.create_token(db.session, user, tenant)
        db.session.commit()
        demo = {
            "address": accounts.address_of(address, settings.inbound_domain),
            "email": DEMO_EMAIL,
            "password": password,
            "token": token,
        }
        db.engine.dispose()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(f"{k}={v}\n" for k, v in demo.items())
    return demo


def start_local_oauth(settings: Settings, env: dict[str, str]) -> dict[str, OAuthTestServer]:
    """No Google (or Microsoft) app configured: "Connect Gmail" ("Connect Microsoft 365") leads to a local
    provider (dashboard/devoauth.py) served by this supervisor, so that the whole connection can be tried
    without registering an app; ``env`` (the started processes') gets its OAUTH_<PROVIDER>_* settings. A
    configured app is left alone. Returns the providers started, by name."""
    from dashboard.devoauth import demo_environment, start_for_demo

    started: dict[str, OAuthTestServer] = {}
    for name in ("google", "microsoft"):
        app = settings.oauth_app(name)
        if app is None or app.configured:
            continue
        started[name] = start_for_demo(name)
        env.update(demo_environment(started[name], name))
    return started


def run_stack(settings: Settings) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, VAR_DIR=str(settings.var_dir), REDIS_URL=settings.redis_url,
               SECRET_KEY=settings.secret_key, DATABASE_URL=settings.database_url)
    # The demo lets visitors create their own account and company (issue 17); SIGNUP_ENABLED=0 turns it off.
    env.setdefault("SIGNUP_ENABLED", "1")
    providers = start_local_oauth(settings, env)
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    if settings.redis_is_embedded and (proc := start_embedded_redis(settings)) is not None:
        children.append(("redis", proc))

    inbox = [sys.executable, "-m", "dashboard.cli"]
    subprocess.run([*inbox, "db", "upgrade", "heads"], env=env, check=True, capture_output=True)
    demo = ensure_demo(settings)
    gunicorn = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{settings.port}", "--workers", "2",
                "--access-logfile", "-", "dashboard.wsgi:app"]
    processes = (("web", gunicorn), ("smtp", [*inbox, "smtp"]), ("worker", [*inbox, "worker"]),
                 ("imap", [*inbox, "imap"]))
    for name, command in processes:
        # Own sessions: Ctrl-C in the terminal reaches this supervisor only, which then stops the
        # children in order (redis last) instead of all of them dying at once.
        children.append((name, subprocess.Popen(command, env=env, start_new_session=True)))

    url = f"http://127.0.0.1:{settings.port}/"
    signup = "on" if env["SIGNUP_ENABLED"].lower() in ("1", "true", "yes", "on") else "off"
    outgoing = ("through MAIL_RELAY_URL" if env.get("MAIL_RELAY_URL")
                else "kept in the outbox (Settings → Members → Outbox; password resets: inbox outbox)")
    connect = "; ".join(
        f"Connect {label} leads to a local test provider at {providers[name].url} (tokens for the address you "
        "type; no IMAP server behind it, no mail is read)" if name in providers
        else f"Connect {label} uses OAUTH_{name.upper()}_CLIENT_ID's app"
        for name, label in (("google", "Gmail"), ("microsoft", "Microsoft 365")))
    click.echo(
        f"""
invoice-inbox is running.
  Dashboard:        {url}
  Demo login:       {demo['email']} / {demo['password']}
  Inbound address:  {demo['address']}
  API token:        {demo['token']}
  Sign-up:          {signup} (SIGNUP_ENABLED)
  Outgoing mail:    {outgoing}
  Mailboxes:        {connect}
  Send an invoice:  swaks --server {settings.smtp_host}:{settings.smtp_port} --to {demo['address']} \\
                      --attach @facture.pdf
Press Ctrl-C to stop.
""",
        err=True,
    )
    try:
        _supervise(children)
    finally:
        for provider in providers.values():
            provider.close()


def _supervise(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Wait until Ctrl-C/SIGTERM or until a child dies; then stop all children gracefully."""
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    failed = None
    while not stopping and failed is None:
        time.sleep(0.5)
        failed = next((name for name, proc in children if proc.poll() is not None), None)
    if failed:
        click.echo(f"{failed} stopped unexpectedly; stopping the others", err=True)
    # Stop in reverse order so that redis outlives the processes using it.
    for _name, proc in reversed(children):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if failed:
        raise SystemExit(1)



