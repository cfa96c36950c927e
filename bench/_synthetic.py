"""What the benchmarks on synthetic data share: a fresh migrated database, one tenant with an admin and a
placeholder file for the invoices to point at, and the statistics a real database would have after a bulk load.

Used by ``bench/payables.py`` and ``bench/receivables.py``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

from flask_migrate import upgrade
from sqlalchemy.orm import Session

from core.config import Settings
from core.db import make_engine, make_session_factory
from core.models import StoredFile, Tenant, User
from core.tenancy import accounts
from core.tenancy.access import Viewer, viewer_for
from dashboard.app import MIGRATIONS_DIR, create_app

BENCH_EMAIL = "bench@example.test"


def migrated_database(url: str | None) -> str:
    """``url`` (an SQLite file in a new temporary folder when None) migrated to the code's heads."""
    url = url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    with create_app(replace(Settings.from_env(), database_url=url)).app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision="heads")
    return url


def open_session(url: str) -> Session:
    return make_session_factory(make_engine(url))()


def bench_tenant(session: Session) -> tuple[Tenant, User, StoredFile]:
    """The tenant "Bench", its admin and one stored file (flushed) that every synthetic invoice can cite."""
    tenant, _address = accounts.create_tenant(session, "Bench")
    user = accounts.create_user(session, BENCH_EMAIL, "bench password 123", tenant, "admin")
    stored = StoredFile(tenant_id=tenant.id, sha256="0" * 64, size=1, content_type="application/pdf",
                        storage_key="none")
    session.add(stored)
    session.flush()
    return tenant, user, stored


def commit_filled(session: Session) -> None:
    """Commit the bulk load, then on PostgreSQL gather the statistics autovacuum would some time after it
    (``BENCH_NO_ANALYZE=1`` measures before they exist)."""
    session.commit()
    if session.get_bind().dialect.name == "postgresql" and not os.environ.get("BENCH_NO_ANALYZE"):
        session.connection().exec_driver_sql("ANALYZE")
        session.commit()


def bench_viewer(url: str, tenant_id: int, user_id: int) -> tuple[Session, Viewer]:
    """A new session on ``url`` and the bench admin seen as a viewer, for the timed reads."""
    session = open_session(url)
    return session, viewer_for(session, tenant_id, user_id)
