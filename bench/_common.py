"""What the benchmarks that run the whole system share: a private world of real services for one run.

``bench_world`` gives a work directory, a private redis-server, a database (a private PostgreSQL cluster
made by ``initdb``, the shared server untouched, or an SQLite file) migrated to the code's head, the
settings that point at them and a logs directory; everything is stopped and removed at the end (unless
``keep``). Used by ``bench/fairness.py`` and ``bench/faults.py``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.db import make_engine, make_session_factory, session_scope
from core.tenancy import accounts
from tests.conftest import _base_settings, _migrate
from tests.reliability.pgcluster import PostgresCluster
from tests.services import RedisProcess

DATABASES = ("postgresql", "sqlite")


@dataclass
class BenchWorld:
    workdir: Path
    settings: Settings
    redis: RedisProcess
    logs: Path


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every such benchmark takes: ``--workers``, ``--database``, ``--keep``."""
    parser.add_argument("--workers", type=int, default=2, help="real `inbox worker` processes")
    parser.add_argument("--database", choices=DATABASES, default="postgresql")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and its logs")


@contextmanager
def bench_world(database: str, prefix: str, keep: bool = False) -> Iterator[BenchWorld]:
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = PostgresCluster() if database == "postgresql" else None
    redis_proc = RedisProcess(workdir / "redis")
    try:
        if cluster is not None:
            cluster.init()
        database_url = cluster.url if cluster else f"sqlite:///{workdir / 'inbox.db'}"
        redis_proc.start()
        settings = _base_settings(workdir / "var", database_url, redis_proc.url)
        settings.storage_dir.mkdir(parents=True)
        _migrate(settings)
        logs = workdir / "logs"
        logs.mkdir()
        yield BenchWorld(workdir, settings, redis_proc, logs)
    finally:
        redis_proc.stop()
        if cluster is not None:
            cluster.destroy()
        if keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def create_tenant(settings: Settings, name: str) -> tuple[int, str]:
    """A company: its id and its inbound address."""
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            tenant, address = accounts.create_tenant(session, name)
            session.flush()
            return tenant.id, accounts.address_of(address, settings.inbound_domain)
    finally:
        engine.dispose()
