"""The worker process: RQ's operational policy lives here, in one place.

- One RQ worker on ``settings.queue_name``. ``WORKER_CLASS`` chooses how a job runs (``WORKER_CLASSES``):
  ``simple`` (the default), RQ's ``SimpleWorker``: in the worker process itself, no fork per job: an email
  costs ~40 ms of CPU instead of ~125 ms with a fork per job (docs/benchmarks.md, SMTP ingest).
  ``fork``, RQ's ``Worker``: each job in a forked child, so that a crash or a leak in a PDF library dies
  with the child. The price of ``simple``: a crash in native code (a segfault in a PDF library) or the
  OOM killer takes the whole worker down: run it under a supervisor that restarts it (systemd
  ``Restart=always``, a Procfile host; ``inbox start`` does not restart, it stops the whole stack). RQ
  gives the abandoned job its remaining retries once its heartbeat expires, and the sweep re-queues a
  message whose job was lost. Memory a job leaks stays in the process until the worker restarts.
- Queues, job timeouts (``JOB_TIMEOUT``) and retries: ``worker.policy``, read by every enqueue (``worker.queue``).
  A worker listens to ``mail`` first, then to every bulk queue (the per-company shards) in a rotating order
  (``_FairBulk``), so that one company's import does not hold up another company's upload.
  Both classes enforce the time limit
  with SIGALRM in the main thread (RQ's ``UnixSignalDeathPenalty``): a job over it fails and is retried.
- Templates and other read-only data are loaded before the first job (with ``fork``: in the parent,
  before the first fork), so every job starts warm instead of reloading ~200 invoice2data templates.
- SIGTERM or Ctrl+C: warm shutdown (RQ finishes the running job, then exits); a second signal is a cold
  shutdown. Under systemd use ``KillMode=mixed`` so that SIGTERM reaches the parent only.
- ``with_scheduler``: the scheduler moves retries whose backoff has elapsed back to the queue.
- Logs at INFO name jobs and ids only, never the contents of a message or a file.
"""

from __future__ import annotations

import importlib
import logging
import signal
import time
from typing import Any

import redis
from rq import SimpleWorker, Worker
from rq.worker import BaseWorker

from core import extraction, logs, metrics
from core.config import Settings, env
from worker import jobs, policy
from worker.queue import connect, is_bulk_queue, worker_queues

logger = logging.getLogger(__name__)

def configure_logging(level: int = logging.INFO) -> None:
    logs.configure(level)  # LOG_FORMAT=json: one JSON object per line, with the job's message or document id
    extraction.quiet_libraries()  # pdfminer would log whole documents at DEBUG


# Modules the jobs import on first use. Imported in the parent, they are inherited by every forked job
# instead of being imported again by each one (measured: ~1.5 s of imports on a job's first run).
PRELOAD = (
    "core.banking.transactions",
    "core.banking.reconciliation",
    "core.inbound.senders",
    "core.inbound.forwarding",
    "core.banking",
    "core.einvoice",
    "core.mail.authresults",
    "core.mail.senderauth",
    "core.mail.psl",  # the Public Suffix List, parsed once here rather than in every job
    "core.mail.images",
    "core.mail.tnef",
    "tnefparse",
    "PIL.Image",
    "pypdfium2",
    "pypdf.filters",
    "invoice2data.input.pdftotext",
    "invoice2data.extract",
    "encodings.idna",
    "encodings.cp1252",
    "encodings.latin_1",
    "encodings.utf_16",
    "encodings.utf_16_le",
)


def preload() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional format's library missing only costs its job the import
            logger.warning("could not preload %s", name)


# How long the thread that listens for RQ's commands (stop, kill a job) may take to notice a stop. RQ asks for
# 60 s, and since redis-py 8 stopping that thread waits for it: every shutdown (and every --burst run) took
# up to a minute longer. One second costs one Redis poll a second per worker.
PUBSUB_POLL_SECONDS = 1.0


class _PromptCommands:
    """Subscribe to RQ's command channel with a short poll, so that a worker stops in about a second."""

    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_POLL_SECONDS, daemon=True,
            exception_handler=getattr(self, "_pubsub_exception_handler", None),
        )


class _FairBulk:
    """After a job from a bulk queue, that queue goes behind the other bulk queues (``policy.rotate_bulk``):
    the companies with bulk work waiting take turns instead of first-come first-served. RQ calls
    ``reorder_queues`` after every dequeue; its own round robin would also rotate ``mail`` out of first place."""

    inbox_bulk: set[str] = set()

    def reorder_queues(self, reference_queue: Any) -> None:
        by_name = {queue.name: queue for queue in self._ordered_queues}
        order = policy.rotate_bulk(list(by_name), reference_queue.name, self.inbox_bulk)
        self._ordered_queues = [by_name[name] for name in order]


class InboxWorker(_FairBulk, _PromptCommands, Worker):
    """RQ's forking worker. Before each fork, the parent refreshes the companies' compiled extraction
    templates (rate-limited, see ``jobs.refresh_templates``), so that forked jobs inherit them compiled."""

    def execute_job(self, job: Any, queue: Any) -> Any:
        jobs.refresh_templates()
        return super().execute_job(job, queue)


class InboxSimpleWorker(_FairBulk, _PromptCommands, SimpleWorker):
    """RQ's non-forking worker: jobs run in this process, where compiled templates stay between jobs and a
    job compiles the ones its company changed (``core.extraction`` checks), so no refresh in between."""


# WORKER_CLASS values. The default is the one that meets the end-to-end goal: one worker keeps a stream of
# 10 emails/s under 3 s from the 250 to "pending" (docs/benchmarks.md, SMTP ingest).
WORKER_CLASSES: dict[str, type[BaseWorker]] = {"simple": InboxSimpleWorker, "fork": InboxWorker}
DEFAULT_WORKER_CLASS = "simple"
MAINTENANCE_INTERVAL = 60  # seconds


def worker_class(settings: Settings) -> type[BaseWorker]:
    name = settings.extra.get("WORKER_CLASS") or env("WORKER_CLASS") or DEFAULT_WORKER_CLASS
    try:
        return WORKER_CLASSES[name.strip().lower()]
    except KeyError:  # a typo fails at start-up rather than running a different worker silently
        raise ValueError(f"WORKER_CLASS must be one of {', '.join(WORKER_CLASSES)}, not {name!r}") from None


def build_worker(settings: Settings) -> BaseWorker:
    cls = worker_class(settings)
    connection = connect(settings)
    # RQ re-queues a job abandoned by a dead worker (SIGKILL, OOM) when a worker's maintenance next runs,
    # once the job's heartbeat has expired (~90 s): every minute rather than RQ's default ten.
    # Queues in priority order (worker.policy): an e-mail waiting never stands behind a bulk import.
    queues = worker_queues(settings, connection)
    worker = cls(queues, connection=connection, maintenance_interval=MAINTENANCE_INTERVAL)
    worker.inbox_bulk = {q.name for q in queues if is_bulk_queue(settings, q.name)}  # type: ignore[attr-defined]
    return worker


def run(settings: Settings, burst: bool = False, with_scheduler: bool = True) -> bool:
    """Work on the queue until stopped (or, with ``burst``, until it is empty). True if a job ran."""
    configure_logging()
    metrics.serve(settings.worker_metrics_port, settings.metrics_host)
    jobs.configure(settings)  # the jobs of this worker use its settings, not whatever the environment says
    extraction.warm_up()
    preload()
    jobs.warm_up()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _work_through_outages(settings, burst, with_scheduler)
    finally:
        for sig, handler in previous.items():  # RQ installed its own; give the caller's back
            signal.signal(sig, handler)
        jobs.configure(None)


def _work_through_outages(settings: Settings, burst: bool, with_scheduler: bool) -> bool:
    """Run a worker; when Redis goes away (restart, failover) wait for it and start a new one.

    RQ itself retries only while waiting for a job; an outage at start-up or between jobs raises. A worker
    that exits then would leave the queue undrained until someone restarts it.
    """
    pause = 1.0
    while True:
        try:
            worker = build_worker(settings)
            logger.info("worker %s (%s) listening on queues %s", worker.name, type(worker).__name__,
                        ", ".join(worker.queue_names()))
            return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            if burst:
                raise
            logger.warning("Redis unreachable (%s): trying again in %.0f s", exc, pause)
            time.sleep(pause)
            pause = min(pause * 2, 30.0)
