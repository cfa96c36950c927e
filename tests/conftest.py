"""Shared fixtures.

- ``db_url``: every database test runs on SQLite and, when ``TEST_DATABASE_URL`` names a PostgreSQL
  server (CI sets it), on PostgreSQL too. The schema comes from the Alembic migrations.
- ``redis_proc`` / ``redis_url``: a real redis-server started for the test session.
- ``settings``, ``app``, ``session``, ``storage``, ``tenant``: the usual objects, wired to the above.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import Base, make_engine, make_session_factory
from core.files.storage import FileStorage
from core.models import InboundAddress, Role, Tenant, User
from core.tenancy import accounts
from dashboard.app import MIGRATIONS_DIR, create_app
from mailgate.smtp import build_controller
from tests.dovecot import IMAP_PASSWORD, DovecotServer
from tests.services import (
    RedisProcess,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    postgres_admin_url,
)

INBOUND_DOMAIN = "in.example.test"
# Sender authentication (core.mail.senderauth) asks DNS about every message; the suite asks no DNS server
# (workers started by tests inherit this). tests/test_senderauth.py injects its own lookup.
os.environ.setdefault("SENDER_AUTH_DNS", "off")
# A tenant's mailbox may only reach global addresses unless the operator allows a network
# (core.inbound.mailboxes): the suite's Dovecot listens on loopback, so the suite allows loopback.
os.environ.setdefault("IMAP_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
PASSWORD = "correct horse battery"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI the shared corpora must be there: a missing one fails the run instead of skipping tests."""
    from tests.corpus import CORPUS, missing_folders

    gone = missing_folders()
    if gone and os.environ.get("CI"):
        raise pytest.UsageError(f"CI=true but the shared corpus is incomplete at {CORPUS}: missing "
                                + ", ".join(str(p) for p in gone) + " (set INBOX_CORPUS or mount ../shared)")


def _migrate(settings: Settings) -> None:
    app = create_app(settings)
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision="heads")
        from dashboard.extensions import db

        if db.engine.dialect.name == "sqlite":  # fold the WAL into the file so that copies are complete
            with db.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.engine.dispose()


def _base_settings(var_dir: Path, database_url: str, redis_url: str) -> Settings:
    return Settings(
        var_dir=var_dir,
        database_url=database_url,
        redis_url=redis_url,
        storage_dir=var_dir / "storage",
        inbound_domain=INBOUND_DOMAIN,
        smtp_host="127.0.0.1",
        smtp_port=0,
        port=0,
        secret_key="test-secret-key-not-for-production",
        max_message_bytes=25 * 1024 * 1024,
        queue_name="inbox-test",
    )


# Redis ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path_factory.mktemp("redis"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def redis_url(redis_proc: RedisProcess) -> str:
    if redis_proc.process is None:  # a test stopped it and failed before starting it again
        redis_proc.start()
    redis.Redis.from_url(redis_proc.url).flushall()
    return redis_proc.url


# Databases -----------------------------------------------------------------------------------


@dataclass
class MigratedDatabase:
    kind: str
    url: str  # for SQLite: a migrated template file copied for each test


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedDatabase]:
    workdir = tmp_path_factory.mktemp(f"db-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'template.db'}"
        _migrate(_base_settings(workdir, url, "redis://127.0.0.1:1/0"))
        yield MigratedDatabase("sqlite", url)
        return
    admin_url = postgres_admin_url()
    if admin_url is None:
        if os.environ.get("CI"):  # .ci/run sets it (scripts/test-services.sh): never skip there
            pytest.fail("TEST_DATABASE_URL is not set: run the tests through `make test`")
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL variant needs a server (`make test` sets it)")
    url = create_postgres_database(admin_url)
    _migrate(_base_settings(workdir, url, "redis://127.0.0.1:1/0"))
    yield MigratedDatabase("postgresql", url)
    drop_postgres_database(admin_url, url)


@pytest.fixture
def db_url(migrated_db: MigratedDatabase, tmp_path: Path) -> str:
    """A clean, migrated database for this test."""
    if migrated_db.kind == "sqlite":
        template = Path(migrated_db.url[len("sqlite:///") :])
        target = tmp_path / "inbox.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    engine = create_engine(migrated_db.url.replace("postgresql://", "postgresql+psycopg://", 1))
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return migrated_db.url


# Application objects -------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, db_url: str, redis_url: str) -> Settings:
    return _base_settings(tmp_path / "var", db_url, redis_url)


@pytest.fixture
def storage(settings: Settings) -> FileStorage:
    return FileStorage(settings.storage_dir)


@pytest.fixture
def session_factory(settings: Settings):
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def session(session_factory) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings, TESTING=True)
    yield application
    from dashboard.extensions import db

    with application.app_context():
        db.engine.dispose()


@dataclass
class TenantFixture:
    tenant: Tenant
    address: str
    admin: User
    token: str
    password: str = PASSWORD


def make_tenant(session: Session, name: str, email: str, role: Role = Role.ADMIN) -> TenantFixture:
    tenant, address = accounts.create_tenant(session, name)
    user = accounts.create_user(session, email, PASSWORD, tenant, role)
    token = accounts.create_token(session, user, tenant)
    session.commit()
    return TenantFixture(tenant, accounts.address_of(address, INBOUND_DOMAIN), user, token)


@pytest.fixture
def tenant(session: Session) -> TenantFixture:
    return make_tenant(session, "Acme SAS", "admin@acme.example")


@pytest.fixture
def other_tenant(session: Session) -> TenantFixture:
    return make_tenant(session, "Globex SARL", "admin@globex.example")


# Real servers ---------------------------------------------------------------------------------


@pytest.fixture
def smtp_port(settings: Settings) -> Iterator[int]:
    """The SMTP gateway in this process, on a free loopback port."""
    port = free_port()
    controller = build_controller(settings, hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    # Dovecot's mail processes run as "nobody" when the tests run as root: pytest's tmp_path (0700)
    # is not reachable for them, so the server gets its own world-traversable directory.
    workdir = Path(tempfile.mkdtemp(prefix="inbox-dovecot-"))
    workdir.chmod(0o755)
    server = DovecotServer(workdir, users={"inbox": IMAP_PASSWORD})
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


__all__ = ["InboundAddress", "TenantFixture", "make_tenant", "replace"]
