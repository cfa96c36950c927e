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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rq import Retry

from core.config import Settings

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
