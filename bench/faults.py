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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import add_world_arguments, bench_world, create_tenant  # noqa: E402
from tests.reliability.recovery import FAULTS, run_redis_loss  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--sweep-interval", type=float, default=30.0)
    parser.add_argument("--fault", choices=FAULTS, default="flushall")
    add_world_arguments(parser)
    args = parser.parse_args()

    with bench_world(args.database, "inbox-faults-", keep=args.keep) as world:
        tenant_id, recipient = create_tenant(world.settings, "Bench Recovery SA")
        print(f"database={args.database} messages={args.messages} workers={args.workers} "
              f"sweep_interval={args.sweep_interval:g}s fault={args.fault}")
        run = run_redis_loss(world.settings, world.redis, tenant_id, recipient, world.logs,
                             messages=args.messages, workers=args.workers, sweep_interval=args.sweep_interval,
                             fault=args.fault)
        print(run.summary())
        ok = run.recovery_seconds is not None and not (run.lost or run.doubled or run.failed)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
