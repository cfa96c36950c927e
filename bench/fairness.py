"""Fairness: company A imports 5,000 documents; how long do company B's e-mail and B's upload wait?

    .venv/bin/python bench/fairness.py [--documents 5000] [--workers 2] [--priority bulk|mail]
        [--shards 0,32] [--database postgresql|sqlite] [--wait 120] [--keep]

The scenario (``tests/fairness.py``): company A's import of ``--documents`` one-PDF messages, queued as an
import queues them (``--priority bulk``, the policy of ``worker/policy.py``), or on the e-mail queue
(``--priority mail``: every job on one queue, as before the policy had two: that comparison). ``--workers``
real ``inbox worker`` processes start on it; 3 s later company B's e-mail arrives over SMTP at the real
gateway (measured: B's 250 to B's document pending), then B uploads one PDF through the API, bulk work like
A's import (measured: the 202 to that document pending).

``--shards`` runs the scenario once per ``BULK_SHARDS`` value, each in a fresh world (database, Redis):
the default compares 0 (one bulk queue for every company, as before the per-company shards) with the
default number of shards, in the same run. ``--database postgresql`` runs a private PostgreSQL cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import add_world_arguments, bench_world  # noqa: E402
from tests.fairness import FairnessRun, run_fairness  # noqa: E402
from worker.policy import DEFAULT_BULK_SHARDS, PRIORITIES  # noqa: E402


def _pace(run: FairnessRun, wait: float) -> str:
    """When B's upload was not done within the wait: how far A's import got meanwhile, and at that pace
    when the upload's turn would have come."""
    done = run.backlog_at_upload - run.backlog_at_upload_done
    if run.upload_seconds is not None or done <= 0:
        return ""
    return (f"  (upload not done after {wait:g} s: {done} of A's documents done meanwhile; at that pace "
            f"its turn comes after ~{run.backlog_at_upload * wait / done:.0f} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=5000)
    parser.add_argument("--priority", choices=PRIORITIES, default="bulk")
    parser.add_argument("--shards", default=f"0,{DEFAULT_BULK_SHARDS}",
                        help="comma-separated BULK_SHARDS values, one run each (0: one bulk queue)")
    parser.add_argument("--wait", type=float, default=120.0, help="longest wait for each of B's items, in seconds")
    add_world_arguments(parser)
    args = parser.parse_args()

    ok = True
    for shards in (int(value) for value in args.shards.split(",")):
        with bench_world(args.database, "inbox-fairness-", keep=args.keep) as world:
            print(f"database={args.database} documents={args.documents} workers={args.workers} "
                  f"priority={args.priority} BULK_SHARDS={shards}", flush=True)
            run = run_fairness(world.settings, world.logs, documents=args.documents, workers=args.workers,
                               priority=args.priority, bulk_shards=shards, wait=args.wait)
            print(run.summary() + _pace(run, args.wait), flush=True)
            ok = ok and run.email_seconds is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
