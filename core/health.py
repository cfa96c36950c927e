"""Readiness: can this process do its work now? Each check answers None (fine) or what is wrong.

Used by the web process's ``/readyz``; a load balancer or an orchestrator stops sending traffic to a
process that is not ready. Checks are cheap (one round trip each) and never raise.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from redis import Redis
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.files.storage import FileStorage

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
PROBE_PREFIX = "health"


def expected_heads() -> set[str]:
    """The head revision(s) of the migrations shipped with this code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(config).get_heads())


def check_database(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"database unreachable ({type(exc).__name__})"
    return None


def check_migrations(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            current = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    except Exception as exc:
        return f"cannot read the schema version ({type(exc).__name__}): run the migrations"
    expected = expected_heads()
    if current != expected:
        return (f"schema at {', '.join(sorted(current)) or 'nothing'}, code expects {', '.join(sorted(expected))}: "
                "run the migrations")
    return None


def check_redis(connection: Redis) -> str | None:
    try:
        connection.ping()
    except Exception as exc:
        return f"Redis unreachable ({type(exc).__name__})"
    return None


def check_storage(storage: FileStorage) -> str | None:
    """Write, read back and delete a small object: what storing a message needs."""
    key = f"{PROBE_PREFIX}/probe-{secrets.token_hex(8)}"
    data = secrets.token_bytes(16)
    try:
        storage.write(key, data)
        try:
            if storage.read(key) != data:
                return "storage returned other bytes than were written"
        finally:
            storage.delete(key)
    except Exception as exc:
        return f"storage unusable ({type(exc).__name__})"
    return None


def readiness(engine: Engine, connection: Redis, storage: FileStorage) -> dict[str, str | None]:
    checks: dict[str, Callable[[], str | None]] = {
        "database": lambda: check_database(engine),
        "migrations": lambda: check_migrations(engine),
        "redis": lambda: check_redis(connection),
        "storage": lambda: check_storage(storage),
    }
    return {name: check() for name, check in checks.items()}
