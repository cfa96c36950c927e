"""Real services for the tests: a private redis-server per test session, and databases.

Nothing here is a fake: Redis is the real binary on a free loopback port (so a test may stop and
restart it), SQLite is a file, PostgreSQL is the server named by ``TEST_DATABASE_URL``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """A redis-server child process on loopback that a test can stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def postgres_admin_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL") or None


def create_postgres_database(admin_url: str) -> str:
    """A fresh, uniquely named database on the test server; returns its URL."""
    name = f"inbox_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = make_url(admin_url).set(drivername="postgresql+psycopg")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, db_url: str) -> None:
    name = make_url(db_url).database
    engine = create_engine(make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def process_env(settings) -> dict[str, str]:  # noqa: ANN001 - core.config.Settings
    """The environment under which a child process (worker, smtp, web) sees the test's settings."""
    return dict(
        os.environ,
        VAR_DIR=str(settings.var_dir),
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        STORAGE_DIR=str(settings.storage_dir),
        INBOUND_DOMAIN=settings.inbound_domain,
        SECRET_KEY=settings.secret_key,
        QUEUE_NAME=settings.queue_name,
        MAX_MESSAGE_BYTES=str(settings.max_message_bytes),
    )


def run_worker_burst(settings, timeout: float = 120) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    """Run a real ``inbox worker --burst`` process until the queue is empty."""
    import sys

    return subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "worker", "--burst"],
        env=process_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
