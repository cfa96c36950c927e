"""The RQ policy, in one place: queues and their priority, the time limit, retries, how long RQ keeps jobs.

Every enqueue (``worker.queue``) and every worker (``worker.main``) reads it from here.

Fairness: two queues, taken in order by every worker (RQ's default strategy: the first queue with a job).

- ``mail`` (named ``QUEUE_NAME``): what arrives one e-mail at a time, a sender waiting on the other side
  (the SMTP gateway's deliveries, the sweep's re-queues, a released quarantined message).
- ``bulk`` (``QUEUE_NAME``-bulk): what arrives by the hundred: uploads and API imports, IMAP mailboxes
  (a first poll may bring years of mail), retries from the dead-letter page, and the extraction of a
  message's second and further documents.

So an import of 5,000 documents by one company never stands in front of another company's e-mail: a
worker finishes the bulk job it is running, then takes the e-mail (bench/fairness.py, docs/benchmarks.md).

Fairness between companies inside ``bulk``: one FIFO list would put company B's single upload behind
company A's 5,000. So ``bulk`` is RQ queues, not one: ``BULK_SHARDS`` shards ``QUEUE_NAME-bulk-<n>``, a
company's bulk jobs on shard ``tenant id % BULK_SHARDS`` (``worker.queue`` routes them), plus the plain
``QUEUE_NAME-bulk`` for a job whose company is not known (and jobs queued before the shards). A worker
listens to ``mail`` first, then the bulk queues in a rotating order (``rotate_bulk``): after taking a job
from one, that one goes to the back. So B's job waits for one job per busy shard, not for A's backlog.
Two companies on one shard share it first-come first-served (sequential tenant ids: the first
``BULK_SHARDS`` companies never do). Plain RQ throughout: job ids, retries, registries, the sweep unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rq import Retry

from core.config import Settings, env

MAIL = "mail"
BULK = "bulk"
PRIORITIES = (MAIL, BULK)  # a worker takes from the first queue that has a job

# Transient failures (database locked, Redis hiccup) are retried with backoff; the jobs themselves
# turn permanent failures (a corrupt PDF) into a visible state instead of raising.
RETRY_INTERVALS = (10, 60, 300)
RESULT_TTL = 3600  # seconds RQ keeps a finished job (its id then still says "done" to a second enqueue)
FAILURE_TTL = 7 * 24 * 3600  # seconds RQ keeps a failed job, for the dead-letter page


@dataclass(frozen=True)
class JobPolicy:
    timeout: int  # JOB_TIMEOUT: the hard time limit of every job, in seconds

    def enqueue_options(self) -> dict[str, Any]:
        """Keyword arguments of ``Queue.enqueue``."""
        return {"job_timeout": self.timeout, **self._kept()}

    def prepare_options(self) -> dict[str, Any]:
        """Keyword arguments of ``Queue.prepare_data`` (``enqueue_many``), which names the limit ``timeout``."""
        return {"timeout": self.timeout, **self._kept()}

    @staticmethod
    def _kept() -> dict[str, Any]:
        return {"result_ttl": RESULT_TTL, "failure_ttl": FAILURE_TTL,
                "retry": Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS))}


def job_policy(settings: Settings) -> JobPolicy:
    if settings.job_timeout <= 0:
        raise ValueError(f"JOB_TIMEOUT must be a positive number of seconds, not {settings.job_timeout}")
    return JobPolicy(timeout=settings.job_timeout)


def queue_name(settings: Settings, priority: str = MAIL) -> str:
    if priority not in PRIORITIES:
        raise ValueError(f"unknown queue priority {priority!r}")
    return settings.queue_name if priority == MAIL else f"{settings.queue_name}-{priority}"


# Bulk shards (fairness between companies, see the module's docstring). 32 keeps every BLPOP and metrics
# scrape small (34 keys) while the first 32 companies never share a shard. 0: one bulk queue, as before.
DEFAULT_BULK_SHARDS = 32
MAX_BULK_SHARDS = 1024


def bulk_shards(settings: Settings) -> int:
    """``BULK_SHARDS`` (settings' extra, else the environment): how many per-company bulk queues."""
    raw = settings.extra.get("BULK_SHARDS") or env("BULK_SHARDS") or str(DEFAULT_BULK_SHARDS)
    try:
        shards = int(raw.strip())
    except ValueError:
        shards = -1
    if not 0 <= shards <= MAX_BULK_SHARDS:  # a typo fails at start-up rather than silently unfair
        raise ValueError(f"BULK_SHARDS must be a whole number from 0 to {MAX_BULK_SHARDS}, not {raw!r}")
    return shards


def bulk_shard_name(settings: Settings, shard: int) -> str:
    return f"{queue_name(settings, BULK)}-{shard}"


def shard_of(tenant_id: int, shards: int) -> int:
    return tenant_id % shards


def is_bulk_shard(settings: Settings, name: str) -> bool:
    """A shard's name, configured now or by a former ``BULK_SHARDS`` (workers still drain those)."""
    return re.fullmatch(re.escape(queue_name(settings, BULK)) + r"-\d+", name) is not None


def rotate_bulk(order: list[str], served: str, bulk: set[str]) -> list[str]:
    """The listening order after a job was taken from ``served``: a bulk queue goes behind the other bulk
    queues; the others (``mail``) keep their places in front. Redis' BLPOP takes from the first non-empty
    key in this order, so busy companies are served in turn."""
    if served not in bulk or served not in order:
        return order
    front = [name for name in order if name not in bulk]
    rest = [name for name in order if name in bulk and name != served]
    return front + rest + [served]
