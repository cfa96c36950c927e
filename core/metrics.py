"""Prometheus metrics, every series prefixed ``inbox_``; no label ever carries tenant data.

Two kinds:

- Events counted by the process where they happen (``prometheus_client`` counters and histograms): SMTP
  replies and sessions in the gateway, job outcomes and durations and extractions in the workers. Each
  process serves its own on a port of its own (``SMTP_METRICS_PORT``, ``WORKER_METRICS_PORT``), or, with
  ``PROMETHEUS_MULTIPROC_DIR`` set for every process of a host, the web process serves them all
  (prometheus_client's multiprocess mode; needed for ``WORKER_CLASS=fork``, whose jobs run in children).
- State read at scrape time by the web process (``StateCollector``): messages and documents by status,
  queue depth and the age of the oldest waiting job. Only the web process registers it, so that a
  scrape of every process does not count the same rows several times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import env
from core.models import Document, InboundMessage

log = logging.getLogger(__name__)

# Events --------------------------------------------------------------------------------------

SMTP_MESSAGES = Counter("inbox_smtp_messages", "Messages answered at the end of DATA, by reply code", ["code"])
SMTP_RECIPIENTS = Counter("inbox_smtp_recipients", "RCPT TO answers, by reply code", ["code"])
SMTP_SESSIONS = Counter("inbox_smtp_sessions", "SMTP sessions opened (refused over the connection caps too)")
SMTP_SESSIONS_OPEN = Gauge("inbox_smtp_sessions_open", "SMTP sessions open now", multiprocess_mode="livesum")
JOBS = Counter("inbox_jobs", "Jobs run by the workers, by job and outcome (succeeded, failed)", ["job", "outcome"])
JOB_SECONDS = Histogram("inbox_job_duration_seconds", "Time a job ran, by job", ["job"],
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
EXTRACTIONS = Counter("inbox_extractions", "Documents extracted, by extraction source", ["source"])
EXTRACTION_SECONDS = Histogram("inbox_extraction_seconds", "Time to extract one document, by source", ["source"],
                               buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))

# Extraction sources name a supplier after the colon ("invoice2data:<issuer>"): only the kind is a label.
SOURCE_KINDS = frozenset({"invoice2data", "ocr+invoice2data", "generic", "ocr+generic", "einvoice", "none"})


def source_kind(source: str | None) -> str:
    kind = (source or "none").split(":", 1)[0]
    return kind if kind in SOURCE_KINDS else "other"


def reply_code(status: str | bytes) -> str:
    """The three-digit code of an SMTP reply ("250 2.0.0 OK" -> "250"); anything else is "other"."""
    text = status.decode("ascii", "replace") if isinstance(status, bytes) else status
    code = text[:3]
    return code if len(code) == 3 and code.isdigit() else "other"


@contextmanager
def observe_job(job: str) -> Iterator[None]:
    """Count the job's outcome and time it (``job``: the job function's name, never its arguments)."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "succeeded"
    finally:
        JOBS.labels(job, outcome).inc()
        JOB_SECONDS.labels(job).observe(time.perf_counter() - started)


def observe_extraction(source: str | None, seconds: float) -> None:
    kind = source_kind(source)
    EXTRACTIONS.labels(kind).inc()
    EXTRACTION_SECONDS.labels(kind).observe(seconds)


# State, read at scrape time --------------------------------------------------------------------


class StateCollector(Collector):
    """Messages and documents by status (all tenants together), each queue's depth and oldest job's age."""

    def __init__(self, session_factory: Callable[[], Session], queues: Callable[[], dict[str, list[Queue]]]) -> None:
        self._session_factory = session_factory
        # priority ("mail", "bulk") -> the queues it is made of (bulk: the per-company shards, worker.policy)
        self._queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily("inbox_messages", "Stored messages, by status", labels=["status"])
        documents = GaugeMetricFamily("inbox_documents", "Documents, by status", labels=["status"])
        try:
            with self._session_factory() as session:
                for status, count in session.execute(
                    select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
                ):
                    messages.add_metric([status], count)
                for status, count in session.execute(select(Document.status, func.count()).group_by(Document.status)):
                    documents.add_metric([status], count)
        except Exception as exc:  # a scrape must answer: /readyz says what is down
            log.warning("metrics: database unreachable (%s)", type(exc).__name__)
        yield messages
        yield documents
        depth = GaugeMetricFamily("inbox_queue_jobs", "Jobs waiting in a queue, by queue", labels=["queue"])
        oldest = GaugeMetricFamily("inbox_queue_oldest_job_age_seconds",
                                   "How long a queue's oldest waiting job has waited (0: none)", labels=["queue"])
        try:
            for priority, members in self._queues().items():  # a priority's shards are summed
                depth.add_metric([priority], sum(each.count for each in members))
                oldest.add_metric([priority], max(oldest_job_age(each.connection, each) for each in members))
        except Exception as exc:
            log.warning("metrics: Redis unreachable (%s)", type(exc).__name__)
        yield depth
        yield oldest


def oldest_job_age(connection: Redis, queue: Queue, now: float | None = None) -> float:
    """Seconds since the job at the head of the queue was enqueued (RQ pushes at the tail)."""
    head = connection.lindex(queue.key, 0)
    if head is None:
        return 0.0
    enqueued = connection.hget(Job.key_for(head.decode()), "enqueued_at")
    if not enqueued:
        return 0.0
    from rq.utils import str_to_date

    when = str_to_date(enqueued).timestamp()
    return max(0.0, (time.time() if now is None else now) - when)


# Serving -----------------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return env("PROMETHEUS_MULTIPROC_DIR") or None


def registry_for_scrape(state: Collector | None = None) -> CollectorRegistry:
    """What a scrape of this process answers: its own metrics (or, in multiprocess mode, every process's
    of this host) plus ``state`` when given."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    if state is not None:
        registry.register(state)
    return registry


class _ProcessMetrics(Collector):
    """The default registry's metrics (ours and the process/platform collectors), re-exported."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve this process's metrics on ``host:port`` in a daemon thread (port 0 or unset: not at all)."""
    if port:
        start_http_server(port, addr=host, registry=registry_for_scrape())
        log.info("metrics on http://%s:%d/metrics", host, port)
