"""The RQ jobs. ``worker.queue`` enqueues them by dotted path (``worker.jobs.ingest_message``), keep the names.

Each job opens a session on the process-wide engine, calls a service from ``core.documents.processing``,
commits, and only then enqueues follow-up work (so the next job sees committed rows). Jobs are safe to run
twice: the services are idempotent and job ids are deterministic.

Settings come from the environment (``Settings.from_env()``), unless the worker installed its own with
``configure()`` before forking. The engine is created lazily and disposed in forked children, whose
connections must never be shared with the parent.

Failures: the services turn what a person can act on into a visible state and return normally. What they
raise (database down, disk full) is re-raised so that RQ retries with backoff (``worker.queue``); on the
last attempt the message or document is marked failed with a reason first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from redis import Redis
from rq import Queue, get_current_job
from rq.timeouts import BaseTimeoutException
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, configure_mappers, sessionmaker

from core import metrics
from core.config import Settings
from core.db import make_engine, make_session_factory, session_scope
from core.documents import processing
from core.documents import templates as extraction_templates
from core.files import make_storage
from core.files.storage import FileStorage
from core.models import Document, InboundMessage
from worker.policy import BULK
from worker.queue import connect, enqueue_extract, get_queue

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_settings: Settings | None = None
_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None
_redis: Redis | None = None
_files: FileStorage | None = None


def configure(settings: Settings | None) -> None:
    """Use ``settings`` in this process from now on (None: read the environment again)."""
    global _settings
    reset()
    with _lock:
        _settings = settings


def reset() -> None:
    """Drop the engine and the Redis connection (they are created again on next use)."""
    global _engine, _factory, _redis, _files
    with _lock:
        if _engine is not None:
            _engine.dispose()
        if _redis is not None:
            _redis.close()
        _engine = _factory = _redis = _files = None


def _after_fork_in_child() -> None:
    # The parent's pooled connections belong to the parent: forget them without closing them.
    global _engine, _factory, _redis, _files
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = _factory = _redis = _files = None  # an object store's client is not shared across a fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def current_settings() -> Settings:
    global _settings
    with _lock:
        if _settings is None:
            _settings = Settings.from_env()
        return _settings


def _session_factory() -> sessionmaker[Session]:
    global _engine, _factory
    settings = current_settings()
    with _lock:
        if _factory is None:
            _engine = make_engine(settings.database_url)  # hides SQL parameters from error logs
            _factory = make_session_factory(_engine)
        return _factory


def _storage() -> FileStorage:
    """One per process (an object store's client is costly to make); made again after a fork."""
    global _files
    settings = current_settings()  # before taking the lock: current_settings takes it too
    with _lock:
        if _files is None:
            _files = make_storage(settings)
        return _files


def _connection() -> Redis:
    global _redis
    settings = current_settings()
    with _lock:
        if _redis is None:
            _redis = connect(settings)
        return _redis


TEMPLATE_REFRESH_SECONDS = 30.0
_templates_checked = 0.0  # time.monotonic() of the last compilation of every company's templates


def warm_up() -> None:
    """In the worker's parent: configure the ORM and initialise the engine's dialect once, so that every
    forked job skips that work (~0.2 s each); no connection is kept for the children to inherit."""
    global _templates_checked
    try:
        configure_mappers()
        factory = _session_factory()
        with factory() as session:
            session.execute(select(InboundMessage.id).limit(1))
            # Companies' own extraction templates, compiled once here: forked jobs find them compiled and only
            # compile again a company's templates changed since (see templates_for_extraction).
            extraction_templates.preload_all(session)
        _templates_checked = time.monotonic()  # just compiled: the first job need not look again
    except Exception as exc:  # the database may not be up yet: jobs retry on their own
        logger.warning("database warm-up failed: %s", type(exc).__name__)
    finally:
        if _engine is not None:
            _engine.dispose()


def refresh_templates(now: float | None = None) -> None:
    """In the worker's parent, between jobs, at most every ``TEMPLATE_REFRESH_SECONDS``: compile the companies'
    templates saved since the last look, so that forked jobs inherit them compiled (a job that runs before
    compiles the changed company's templates itself). No connection is kept for the children to inherit."""
    global _templates_checked
    now = time.monotonic() if now is None else now
    if now - _templates_checked < TEMPLATE_REFRESH_SECONDS:
        return
    _templates_checked = now
    try:
        with _session_factory()() as session:
            extraction_templates.preload_all(session)
    except Exception as exc:  # an optimisation only: the jobs check the templates themselves
        logger.warning("template refresh failed: %s", type(exc).__name__)
    finally:
        if _engine is not None:
            _engine.dispose()


def _last_attempt() -> bool:
    """True unless RQ will run this job again (outside RQ there is no retry)."""
    job = get_current_job()
    return job is None or not (job.retries_left or 0) > 0


def _record(action: Callable[[Session], None]) -> None:
    """Best effort: write a failure state in its own transaction (the database may be what failed)."""
    try:
        with session_scope(_session_factory()) as session:
            action(session)
    except Exception:
        logger.exception("could not record the failure")


# The jobs ------------------------------------------------------------------------------------

# Most emails carry one invoice: extracting the first document in the ingest job itself saves a whole
# job (fork, connections, RQ bookkeeping) per email; further documents get jobs of their own.
INLINE_EXTRACTIONS = 1
# What RQ raises in a job whose time limit is up.
TIME_LIMIT_ERRORS = (BaseTimeoutException,)


def ingest_message(message_id: int) -> list[int]:
    """Unpack a stored message into documents, then queue one extraction per new document."""
    with metrics.observe_job("ingest_message"):
        return _ingest_message(message_id)


def _ingest_message(message_id: int) -> list[int]:
    try:
        with session_scope(_session_factory()) as session:
            document_ids = processing.ingest_message(session, _storage(), message_id)
        queue = get_queue(current_settings(), _connection())
        bulk = get_queue(current_settings(), _connection(), BULK)  # a message's further documents
        for document_id in document_ids[INLINE_EXTRACTIONS:]:
            enqueue_extract(bulk, document_id)
    except Exception as exc:
        if _last_attempt():
            reason = processing.transient_reason(exc, "this email")
            _record(lambda session: processing.record_message_failure(session, message_id, reason))
        raise
    logger.info("message %s ingested: %d document(s) to extract", message_id, len(document_ids))
    for document_id in document_ids[:INLINE_EXTRACTIONS]:
        _extract_inline(queue, document_id)
    return document_ids


def _extract_inline(queue: Queue, document_id: int) -> None:
    """Extract in the ingest job itself; if that fails for a passing reason, leave it to its own job."""
    try:
        _extract(document_id)
    except Exception:
        logger.warning("document %s: inline extraction failed, queued on its own", document_id, exc_info=True)
        enqueue_extract(queue, document_id)


def _extract(document_id: int) -> None:
    """Extract one document in its own transaction; counted and timed by its source once committed."""
    started = time.perf_counter()
    with session_scope(_session_factory()) as session:
        extracted = processing.extract_document(session, _storage(), document_id, TIME_LIMIT_ERRORS)
        source = session.get(Document, document_id).extraction_source if extracted else None
    if extracted:
        metrics.observe_extraction(source, time.perf_counter() - started)


def extract_document(document_id: int) -> None:
    """Extract the fields of a document and route it to review (or to failed, with a reason)."""
    with metrics.observe_job("extract_document"):
        _extract_document(document_id)


def _extract_document(document_id: int) -> None:
    try:
        _extract(document_id)
    except Exception as exc:
        if _last_attempt():
            reason = processing.transient_reason(exc, "this file")
            _record(lambda session: processing.record_document_failure(session, document_id, reason))
        raise


def rematch_invoice(invoice_id: int) -> None:
    """Match waiting bank transactions against a newly validated invoice (issue 17 item 5). Safe to run
    twice: matched transactions are skipped; a deleted invoice leaves nothing to do."""
    from core.banking.reconciliation import match_new_invoice
    from core.models import Invoice

    with metrics.observe_job("rematch_invoice"), session_scope(_session_factory()) as session:
        invoice = session.get(Invoice, invoice_id)
        if invoice is None:
            return
        summary = match_new_invoice(session, invoice)
    logger.info("invoice %s: %d payment(s) applied, %d suggested", invoice_id, summary.applied, summary.suggested)
