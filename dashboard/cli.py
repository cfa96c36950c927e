"""``inbox``: the application's Flask CLI (``inbox db upgrade``, ``inbox tenant create``, ...)."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import FlaskGroup, with_appcontext

from core.errors import ServiceError
from core.inbound import addresses
from core.models import Role
from core.receivables import summaries
from core.tenancy import accounts
from dashboard.app import create_app
from dashboard.context import settings
from dashboard.extensions import db


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def cli() -> None:
    """invoice-inbox: turn invoices sent by email into verified records."""


def main() -> None:
    cli(prog_name="inbox")


def _fail(exc: ServiceError) -> None:
    raise click.ClickException(str(exc))


@cli.group()
def tenant() -> None:
    """Tenants (companies) and their inbound addresses."""


@tenant.command("create")
@click.argument("name")
@with_appcontext
def tenant_create(name: str) -> None:
    """Create a tenant and print its inbound address."""
    try:
        _tenant, address = accounts.create_tenant(db.session, name)
    except ServiceError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(accounts.address_of(address, settings().inbound_domain))


@tenant.command("rotate-address")
@click.argument("tenant_ref")
@click.option("--grace-days", default=30, show_default=True, type=click.IntRange(0, 365),
              help="Days the old address keeps working (0: refused at once).")
@with_appcontext
def tenant_rotate_address(tenant_ref: str, grace_days: int) -> None:
    """Issue a new inbound address (e.g. the old one leaked) and print it; audited like the dashboard's."""
    try:
        target = accounts.find_tenant(db.session, tenant_ref, settings().inbound_domain)
        rotation = addresses.rotate(db.session, target.id, grace_days=grace_days)
    except ServiceError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(accounts.address_of(rotation.new, settings().inbound_domain))


@tenant.command("export")
@click.argument("tenant_ref")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="The archive to write (default: tenant-<id>-export.zip in the current directory).")
@with_appcontext
def tenant_export(tenant_ref: str, output: str | None) -> None:
    """Write one archive with the tenant's messages, files, invoices, entries and settings (docs/tenant-export.md)."""
    from core import tenant_data
    from dashboard.context import storage

    try:
        target = accounts.find_tenant(db.session, tenant_ref, settings().inbound_domain)
    except ServiceError as exc:
        _fail(exc)
    path = output or f"tenant-{target.id}-export.zip"
    with open(path, "xb") as out:  # never overwrite an earlier export
        manifest = tenant_data.export_tenant(db.session, storage(), target.id, out)
    rows = sum(manifest["tables"].values())
    click.echo(f"{path}: {rows} rows in {len(manifest['tables'])} tables, {manifest['files']} stored files")


@tenant.command("delete")
@click.argument("tenant_ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@with_appcontext
def tenant_delete(tenant_ref: str, yes: bool) -> None:
    """Erase the tenant: its stored files, every row, and accounts left without a company. Irreversible."""
    from core import tenant_data
    from dashboard.context import storage

    try:
        target = accounts.find_tenant(db.session, tenant_ref, settings().inbound_domain)
    except ServiceError as exc:
        _fail(exc)
    name, tenant_id = target.name, target.id
    if not yes:
        click.confirm(f"Erase {name!r} (tenant {tenant_id}) and all its data? This cannot be undone "
                      f"(export it first: inbox tenant export {tenant_id})", abort=True)
    removed = tenant_data.delete_tenant(db.session, storage(), tenant_id)
    db.session.commit()
    click.echo(f"Erased {name!r} (tenant {tenant_id}):")
    for what, count in removed.items():
        click.echo(f"  {what}: {count}")


@cli.group()
def user() -> None:
    """Users and their roles in tenants."""


@user.command("create")
@click.argument("email")
@click.option("--tenant", "tenant_ref", required=True, help="The tenant's inbound address or id.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.MEMBER.value)
@click.option("--reset", is_flag=True, help="The user exists: replace their password with the one given.")
@click.password_option(prompt="Password", help="Prompted for when not given.")
@with_appcontext
def user_create(email: str, tenant_ref: str, role: str, reset: bool, password: str) -> None:
    """Create a user, or add an existing one to a tenant (their current password, or --reset to change it)."""
    try:
        target = accounts.find_tenant(db.session, tenant_ref, settings().inbound_domain)
        created = accounts.create_user(db.session, email, password, target, role, reset_password=reset)
    except ServiceError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"{created.email} is {role} of {target.name}" + (" (password reset)" if reset else ""))


@cli.group()
def token() -> None:
    """API bearer tokens."""


@token.command("create")
@click.argument("email")
@click.option("--tenant", "tenant_ref", default=None, help="The tenant (default: the user's first).")
@click.option("--label", default="", help="What the token is for (shown in lists).")
@click.option("--expires-days", type=click.IntRange(1, accounts.MAX_TOKEN_DAYS), default=None,
              help="Days until the token stops working (default: until revoked).")
@with_appcontext
def token_create(email: str, tenant_ref: str | None, label: str, expires_days: int | None) -> None:
    """Create an API token, valid in one tenant only; it is printed once, alone on the last line."""
    try:
        found = accounts.find_user(db.session, email)
        target = accounts.find_tenant(db.session, tenant_ref, settings().inbound_domain) if tenant_ref else None
        value = accounts.create_token(db.session, found, target, label=label, expires_in_days=expires_days)
    except ServiceError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(value)


@token.command("list")
@click.option("--tenant", "tenant_ref", required=True, help="The tenant's inbound address or id.")
@click.option("--email", default=None, help="Only this user's tokens.")
@with_appcontext
def token_list(tenant_ref: str, email: str | None) -> None:
    """The tenant's tokens: id, prefix, user, state, expiry, last use, label (never the token itself)."""
    try:
        target = accounts.find_tenant(db.session, tenant_ref, settings().inbound_domain)
        user_id = accounts.find_user(db.session, email).id if email else None
    except ServiceError as exc:
        _fail(exc)
    for row in db.session.scalars(accounts.tokens_query(target.id, user_id)):
        click.echo("\t".join([str(row.id), row.prefix, row.user.email, accounts.token_state(row),
                              f"expires={_when(row.expires_at)}", f"last_used={_when(row.last_used_at)}", row.label]))


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


@token.command("revoke")
@click.argument("token_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--tenant", "tenant_ref", required=True, help="The tenant's inbound address or id.")
@with_appcontext
def token_revoke(token_id: int, tenant_ref: str) -> None:
    """Revoke a token of the tenant (by the id ``inbox token list`` shows); revoking twice is harmless."""
    try:
        target = accounts.find_tenant(db.session, tenant_ref, settings().inbound_domain)
        row = accounts.revoke_token(db.session, target.id, token_id)
    except ServiceError as exc:
        _fail(exc)
    db.session.commit()
    click.echo(f"token {row.id} ({row.prefix}…) revoked")


@cli.group("summaries")
def summaries_group() -> None:
    """Receivables summaries (client balances, amounts by date): derived data kept with the invoices."""


@summaries_group.command("rebuild")
@click.option("--tenant", "tenant_ref", default=None, help="The tenant's inbound address or id (default: all).")
@with_appcontext
def summaries_rebuild(tenant_ref: str | None) -> None:
    """Recompute the summaries from the invoices and cash movements (repair; safe to repeat)."""
    try:
        target = accounts.find_tenant(db.session, tenant_ref, settings().inbound_domain) if tenant_ref else None
    except ServiceError as exc:
        _fail(exc)
    clients, days = summaries.rebuild(db.session.connection(), target.id if target else None)
    db.session.commit()
    click.echo(f"{clients} client summaries and {days} dated amounts rebuilt"
               + (f" for {target.name}" if target else ""))


@cli.command("outbox")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="How many, newest first.")
@click.option("--kind", type=click.Choice(["invitation", "password_reset"]), default=None, help="Only this kind.")
@with_appcontext
def outbox_command(limit: int, kind: str | None) -> None:
    """Print the mail the application sent or kept (no MAIL_RELAY_URL): invitations and password resets.

    Password reset mails are shown to no company's admin (a link to someone else's account): the operator
    reads them here when no relay is configured (issue 17)."""
    from sqlalchemy import select

    from core.outbound.models import OutboxMessage

    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(OutboxMessage.kind == kind)
    for row in db.session.scalars(stmt):
        click.echo(f"--- #{row.id} {_when(row.created_at)} {row.kind} to {row.recipient} [{row.state}]"
                   + (f" {row.error}" if row.error else ""))
        click.echo(f"Subject: {row.subject}\n\n{row.body}\n")


@cli.command("purge-raw")
@click.option("--days", type=click.IntRange(1, 36500), default=None,
              help="Delete raw e-mails older than this (default: RAW_RETENTION_DAYS).")
@with_appcontext
def purge_raw_command(days: int | None) -> None:
    """Apply the raw e-mail retention: delete finished raw e-mails, keep their files and invoices (cron it daily)."""
    from datetime import timedelta

    from core import tenant_data
    from dashboard.context import storage

    days = days or settings().raw_retention_days
    if not days:
        click.echo("RAW_RETENTION_DAYS is 0: raw e-mails are kept; nothing deleted")
        return
    purged = tenant_data.purge_raw_messages(db.session, storage(), timedelta(days=days))
    click.echo(f"{purged} raw e-mail(s) older than {days} days deleted; their files and invoices are kept")


# The processes of the Procfile ---------------------------------------------------------------


@cli.command("smtp")
def smtp_command() -> None:
    """Run the SMTP gateway in the foreground."""
    from core.config import Settings
    from mailgate.smtp import main as smtp_main

    smtp_main(Settings.from_env())


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
def worker_command(burst: bool) -> None:
    """Run an RQ worker for the processing jobs."""
    from core.config import Settings
    from worker.main import run

    run(Settings.from_env(), burst=burst)


@cli.command("sweep")
def sweep_command() -> None:
    """Queue stored messages that have no job (e.g. received while Redis was down)."""
    from core.config import Settings
    from worker.sweep import main as sweep_main

    click.echo(f"{sweep_main(Settings.from_env())} message(s) queued")


@cli.command("start")
def start_command() -> None:
    """Start everything on the embedded defaults: migrations, demo data, web, smtp, worker, Redis."""
    from core.config import Settings
    from dashboard.devstack import run_stack

    run_stack(Settings.from_env())


@cli.command("imap")
@click.option(
    "--catch-all", "catch_all", multiple=True, metavar="URL",
    help="An operator mailbox routed to tenants by recipient: imaps://user:password@host/INBOX "
    "(repeatable; IMAP_CATCH_ALL in the environment keeps the password off the command line).",
)
def imap_command(catch_all: tuple[str, ...]) -> None:
    """Run the IMAP poller for every enabled mailbox until SIGTERM."""
    from core.config import Settings
    from mailgate.imap import main as imap_main

    imap_main(Settings.from_env(), list(catch_all))


if __name__ == "__main__":
    main()
