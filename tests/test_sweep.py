"""The sweep: messages stored but not queued get queued, once; the SMTP server runs it on its own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from rq import Queue

from core.db import session_scope
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import InboundMessage, utcnow
from tests.test_smtp import (  # noqa: F401 (_enabled_loggers is an autouse fixture)
    RAW,
    _enabled_loggers,
    _wait_for,
    connect,
    job_exists,
    open_queue,
    running_server,
)
from worker import sweep
from worker.queue import enqueue_ingest
from worker.sweep import sweep_once


@pytest.fixture
def queue(settings) -> Iterator[Queue]:
    with open_queue(settings) as opened:
        yield opened


def store_received(settings, session_factory, tenant, age: timedelta = timedelta(minutes=5)) -> int:
    """A message stored and committed as the SMTP handler does, ``age`` ago, but never queued."""
    with session_scope(session_factory) as session:
        message = intake.store_message(
            session, FileStorage(settings.storage_dir), tenant.tenant.id, RAW, recipient=tenant.address
        )
        message.received_at = utcnow() - age
    return message.id


def status_of(session_factory, message_id: int) -> str:
    with session_factory() as session:
        return session.get(InboundMessage, message_id).status


def test_sweep_queues_a_received_message_once(settings, session_factory, tenant, redis_url, queue):
    message_id = store_received(settings, session_factory, tenant)
    assert sweep_once(settings, session_factory, queue) == 1
    assert status_of(session_factory, message_id) == "queued" and job_exists(redis_url, message_id)
    assert sweep_once(settings, session_factory, queue) == 0
    assert queue.job_ids == [f"ingest-message-{message_id}"]  # one job, not two


def test_sweep_leaves_a_just_received_message_to_its_receiver(settings, session_factory, tenant, queue):
    message_id = store_received(settings, session_factory, tenant, age=timedelta(seconds=5))
    assert sweep_once(settings, session_factory, queue) == 0  # the SMTP handler is queueing it
    assert sweep_once(settings, session_factory, queue, received_grace=timedelta(seconds=1)) == 1
    assert status_of(session_factory, message_id) == "queued"


def test_sweep_requeues_a_stale_message_without_duplicating_a_waiting_job(
    settings, session_factory, tenant, redis_url, queue
):
    message_id = store_received(settings, session_factory, tenant)
    sweep_once(settings, session_factory, queue)
    with session_scope(session_factory) as session:  # queued long ago, never processed
        session.get(InboundMessage, message_id).queued_at = utcnow() - timedelta(hours=1)
    assert sweep_once(settings, session_factory, queue) == 1
    assert queue.job_ids == [f"ingest-message-{message_id}"]  # the waiting job was left alone
    queue.connection.flushall()  # the job got lost: the sweep brings it back
    assert sweep_once(settings, session_factory, queue) == 1
    assert job_exists(redis_url, message_id)


def test_sweep_with_redis_down_raises_and_changes_nothing(settings, session_factory, tenant, redis_proc, queue):
    message_id = store_received(settings, session_factory, tenant)
    redis_proc.stop()
    try:
        with pytest.raises(redis.ConnectionError):
            sweep_once(settings, session_factory, queue)
        assert status_of(session_factory, message_id) == "received"
    finally:
        redis_proc.start()


def test_sweep_main_runs_one_sweep(settings, session_factory, tenant, redis_url):
    message_id = store_received(settings, session_factory, tenant)
    assert sweep.main(settings) == 1
    assert status_of(session_factory, message_id) == "queued" and job_exists(redis_url, message_id)


def test_server_sweeps_at_start_up(settings, session_factory, tenant, redis_url):
    message_id = store_received(settings, session_factory, tenant)
    with running_server(settings):  # periodic runs are an hour apart: this is the start-up run
        _wait_for(lambda: status_of(session_factory, message_id) == "queued")
    assert job_exists(redis_url, message_id)


def test_server_survives_failing_sweeps_and_catches_up(
    settings, session_factory, tenant, redis_proc, redis_url, caplog
):
    caplog.set_level(logging.INFO)
    with running_server(settings, sweep_interval=0.1) as server:
        redis_proc.stop()
        try:
            message_id = store_received(settings, session_factory, tenant)
            _wait_for(lambda: "sweep failed" in caplog.text)
            with connect(server) as smtp:  # still serving
                assert smtp.noop()[0] == 250
            assert status_of(session_factory, message_id) == "received"
        finally:
            redis_proc.start()
        _wait_for(lambda: status_of(session_factory, message_id) == "queued")
    assert job_exists(redis_url, message_id)


def test_a_queued_message_whose_job_vanished_is_queued_again_at_once(
    settings, session_factory, tenant, redis_url, queue
):
    message_id = store_received(settings, session_factory, tenant)
    assert sweep_once(settings, session_factory, queue) == 1  # queued just now: far from stale
    queue.connection.flushall()  # Redis lost its data
    assert sweep_once(settings, session_factory, queue) == 1  # no 15-minute wait
    assert job_exists(redis_url, message_id) and queue.job_ids == [f"ingest-message-{message_id}"]
    assert sweep_once(settings, session_factory, queue) == 0  # its job exists: left alone


def test_racing_enqueuers_create_one_job(settings, session_factory, tenant, queue):
    """Two sweeps (two gateways) or a sweep and a person's retry at once: one queue entry, never two."""
    message_id = store_received(settings, session_factory, tenant)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: enqueue_ingest(queue, message_id), range(32)))
    assert queue.job_ids == [f"ingest-message-{message_id}"]
