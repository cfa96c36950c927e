"""Fairness: one company imports 5,000 documents; another company's single e-mail must not wait for it.

    .venv/bin/python bench/fairness.py [--documents 5000] [--workers 2] [--priority bulk|mail]
        [--database postgresql|sqlite] [--wait 120]

The scenario (``tests/fairness.py``): company A's import of ``--documents`` one-PDF messages, queued as an
import queues them (``--priority bulk``, the policy of ``worker/policy.py``), or on the e-mail queue
(``--priority mail``: every job on one queue, as before the policy had two: the comparison). ``--workers``
real ``inbox worker`` processes start on it; 3 s later company B's e-mail arrives over SMTP at the real
gateway. Prints the time from B's 250 to B's document pending, and A's backlog then.
``--database postgresql`` runs a private PostgreSQL cluster (``initdb``; the shared server is not touched).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import _base_settings, _migrate  # noqa: E402
from tests.fairness import run_fairness  # noqa: E402
from tests.reliability.pgcluster import PostgresCluster  # noqa: E402
from tests.services import RedisProcess  # noqa: E402
from worker.policy import PRIORITIES  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--priority", choices=PRIORITIES, default="bulk")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--wait", type=float, default=120.0, help="longest wait for the e-mail, in seconds")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="inbox-fairness-"))
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
        logs = workdir / "logs"
        logs.mkdir()
        print(f"database={args.database} documents={args.documents} workers={args.workers} "
              f"priority={args.priority}")
        run = run_fairness(settings, logs, documents=args.documents, workers=args.workers,
                           priority=args.priority, wait=args.wait)
        print(run.summary())
        return 0 if run.email_seconds is not None else 1
    finally:
        redis_proc.stop()
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
