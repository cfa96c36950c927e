"""The worker process: RQ's operational policy lives here, in one place.

- One RQ ``Worker`` on ``settings.queue_name``; each job runs in a forked child (a crash or a leak in a PDF
  library dies with the child). Job timeouts and retries are set when enqueueing (``core.queue``).
- Templates and other read-only data are loaded in the parent before the first fork, so every job
  starts warm instead of reloading ~200 invoice2data templates.
- SIGTERM or Ctrl+C: warm shutdown (RQ finishes the running job, then exits); a second signal is a cold
  shutdown. Under systemd use ``KillMode=mixed`` so that SIGTERM reaches the parent only.
- ``with_scheduler``: the scheduler moves retries whose backoff has elapsed back to the queue.
- Logs at INFO name jobs and ids only, never the contents of a message or a file.
"""

from __future__ import annotations

import importlib
import logging
import signal

from rq import Worker

from core import extraction
from core.config import Settings
from core.queue import connect, get_queue
from worker import jobs

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    root.setLevel(level)
    extraction.quiet_libraries()  # pdfminer would log whole documents at DEBUG


# Modules the jobs import on first use. Imported in the parent, they are inherited by every forked job
# instead of being imported again by each one (measured: ~1.5 s of imports on a job's first run).
PRELOAD = (
    "core.services.bank",
    "core.services.reconciliation",
    "core.services.senders",
    "core.services.forwarding",
    "core.banking",
    "core.einvoice",
    "core.mail.authresults",
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


def build_worker(settings: Settings) -> Worker:
    connection = connect(settings)
    return Worker([get_queue(settings, connection)], connection=connection)


def run(settings: Settings, burst: bool = False, with_scheduler: bool = True) -> bool:
    """Work on the queue until stopped (or, with ``burst``, until it is empty). True if a job ran."""
    configure_logging()
    jobs.configure(settings)  # the jobs of this worker use its settings, not whatever the environment says
    extraction.warm_up()
    preload()
    jobs.warm_up()
    worker = build_worker(settings)
    logger.info("worker %s listening on queue %r", worker.name, settings.queue_name)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
    finally:
        for sig, handler in previous.items():  # RQ installed its own; give the caller's back
            signal.signal(sig, handler)
        jobs.configure(None)
