"""Recovery after Redis loses its data: the time from Redis answering again to the last message final.

    .venv/bin/python bench/faults.py [--messages 300] [--workers 2] [--sweep-interval 30]
        [--fault flushall|restart] [--database postgresql|sqlite] [--keep]

The scenario (``tests/reliability/recovery.py``): ``--messages`` invoice e-mails over SMTP into the real
``inbox smtp`` gateway while no worker runs, so every one is ``queued``; then ``--workers`` ``inbox worker``
processes start and, as soon as they run jobs, Redis loses everything (``FLUSHALL``, or a restart of a
redis-server without persistence). Recovery is the production path only: the gateway's periodic sweep
(``--sweep-interval``, the production default ``SMTP_SWEEP_INTERVAL`` is 30 s) and the workers.
``--database postgresql`` runs a private PostgreSQL cluster (``initdb``; the shared server is not touched).
Prints the recovery time and the counts: accepted, lost, doubled, failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.db import make_engine, make_session_factory, session_scope  # noqa: E402
from core.tenancy import accounts  # noqa: E402
from tests.conftest import _base_settings, _migrate  # noqa: E402
from tests.reliability.pgcluster import PostgresCluster  # noqa: E402
from tests.reliability.recovery import FAULTS, run_redis_loss  # noqa: E402
from tests.services import RedisProcess  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sweep-interval", type=float, default=30.0)
    parser.add_argument("--fault", choices=FAULTS, default="flushall")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and its logs")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="inbox-faults-"))
    cluster = PostgresCluster() if args.database == "postgresql" else None
    redis_proc = RedisProcess(workdir / "redis")
    try:
        if cluster is not None:
            cluster.init()
        database_url = cluster.url if cluster else f"sqlite:///{workdir / 'inbox.db'}"
        redis_proc.start()
        settings = _base_settings(workdir / "var", database_url, redis_proc.url)
        settings.storage_dir.mkdir(parents=True)
        _migrate(settings)
        engine = make_engine(database_url)
        with session_scope(make_session_factory(engine)) as session:
            tenant, address = accounts.create_tenant(session, "Bench Recovery SA")
            session.flush()
            tenant_id, recipient = tenant.id, accounts.address_of(address, settings.inbound_domain)
        engine.dispose()
        logs = workdir / "logs"
        logs.mkdir()
        print(f"database={args.database} messages={args.messages} workers={args.workers} "
              f"sweep_interval={args.sweep_interval:g}s fault={args.fault}")
        run = run_redis_loss(settings, redis_proc, tenant_id, recipient, logs, messages=args.messages,
                             workers=args.workers, sweep_interval=args.sweep_interval, fault=args.fault)
        print(run.summary())
        ok = run.recovery_seconds is not None and not (run.lost or run.doubled or run.failed)
        return 0 if ok else 1
    finally:
        redis_proc.stop()
        if cluster is not None:
            cluster.destroy()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
