"""/healthz, /readyz and /metrics over real HTTP; the gateway's and a worker's metrics after real work."""

from __future__ import annotations

import json
import re
import smtplib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text
from werkzeug.serving import make_server

from core.db import make_engine
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import Document, InboundMessage
from tests.conftest import INBOUND_DOMAIN
from tests.invoicegen import make_email, make_invoice_pdf
from tests.reliability.faults import Process, smtp_env, wait_for_port, wait_until
from tests.services import free_port, process_env
from tests.test_smtp import open_queue
from worker.queue import enqueue_ingest

SUPPLIER = "Fournisseur Secret SARL"


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sample(body: str, name: str, labels: str = "") -> float | None:
    """The value of one series in Prometheus text format (``labels``: as printed, e.g. 'code="250"')."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" ([0-9.e+-]+)$"
    found = re.search(pattern, body, re.MULTILINE)
    return float(found.group(1)) if found else None


def test_healthz_answers_while_alive(live_server):
    assert get(f"{live_server}/healthz") == (200, '{"status":"ok"}\n')


def test_readyz_checks_database_redis_storage_and_migrations(live_server):
    status, body = get(f"{live_server}/readyz")
    assert status == 200, body
    assert '"database":"ok"' in body and '"redis":"ok"' in body and '"storage":"ok"' in body
    assert '"migrations":"ok"' in body


def test_readyz_is_503_naming_redis_when_it_is_down(live_server, redis_proc):
    redis_proc.stop()
    try:
        status, body = get(f"{live_server}/readyz")
    finally:
        redis_proc.start()
    assert status == 503 and "Redis unreachable" in body and '"database":"ok"' in body


def test_readyz_is_503_when_the_schema_is_behind_the_code(live_server, settings):
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '8ed59764d296'"))  # the initial schema
        status, body = get(f"{live_server}/readyz")
    finally:
        engine.dispose()
    assert status == 503 and "run the migrations" in body and "8ed59764d296" in body


def test_readyz_is_503_when_storage_refuses_writes(live_server, settings):
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    (settings.storage_dir / "health").write_text("a file where the probe needs a directory")
    status, body = get(f"{live_server}/readyz")
    assert status == 503 and "storage unusable" in body


def test_metrics_report_state_without_tenant_data(live_server, settings, session_factory, tenant):
    storage = FileStorage(settings.storage_dir)
    with session_factory() as session:
        raw = make_email(tenant.address, make_invoice_pdf(number="MET-1", issuer=SUPPLIER))
        message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
        session.commit()
        message_id = message.id
    with open_queue(settings) as queue:
        enqueue_ingest(queue, message_id)
    status, body = get(f"{live_server}/metrics")
    assert status == 200
    assert sample(body, "inbox_messages", 'status="received"') == 1.0
    assert sample(body, "inbox_queue_jobs", 'queue="mail"') == 1.0
    assert sample(body, "inbox_queue_jobs", 'queue="bulk"') == 0.0
    age = sample(body, "inbox_queue_oldest_job_age_seconds", 'queue="mail"')
    assert age is not None and 0 <= age < 60
    assert tenant.tenant.name not in body and tenant.address not in body and SUPPLIER not in body


def test_metrics_need_the_bearer_token_when_one_is_set(live_server, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-token")
    assert get(f"{live_server}/metrics")[0] == 401
    assert get(f"{live_server}/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    status, body = get(f"{live_server}/metrics", {"Authorization": "Bearer s3cret-token"})
    assert status == 200 and "inbox_queue_jobs" in body


def test_gateway_and_worker_serve_their_metrics_after_real_work(settings, session_factory, tenant, tmp_path: Path):
    """A real ``inbox smtp`` and ``inbox worker``, each on its own metrics port: an accepted and a refused
    delivery over SMTP, then the worker's job and extraction, counted, with no tenant data in labels."""
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    smtp_port, smtp_metrics, worker_metrics = free_port(), free_port(), free_port()
    smtp = Process("smtp", dict(smtp_env(settings, smtp_port), SMTP_METRICS_PORT=str(smtp_metrics),
                                LOG_FORMAT="json"), tmp_path / "smtp.log")
    worker = Process("worker", dict(process_env(settings), WORKER_METRICS_PORT=str(worker_metrics),
                                    LOG_FORMAT="json"), tmp_path / "worker.log")
    pdf = make_invoice_pdf(number="MET-2", issuer=SUPPLIER, issue_date=date(2026, 11, 2), net=Decimal("100.00"))
    try:
        smtp.start()
        wait_for_port(smtp_port)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.sendmail("billing@supplier.example", [tenant.address], make_email(tenant.address, pdf))
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail("billing@supplier.example", [f"nobody-here@{INBOUND_DOMAIN}"], b"Subject: x\r\n\r\nx")
        status, body = get(f"http://127.0.0.1:{smtp_metrics}/metrics")
        assert status == 200
        assert sample(body, "inbox_smtp_messages_total", 'code="250"') == 1.0
        assert (sample(body, "inbox_smtp_recipients_total", 'code="550"') or 0) >= 1.0
        assert sample(body, "inbox_smtp_recipients_total", 'code="250"') == 1.0
        assert (sample(body, "inbox_smtp_sessions_total") or 0) >= 1.0

        worker.start()

        def processed() -> bool:
            with session_factory() as session:
                return session.query(Document).filter(Document.status == "pending").count() == 1

        assert wait_until(processed, timeout=120, step=0.2), (tmp_path / "worker.log").read_text()[-2000:]
        status, body = get(f"http://127.0.0.1:{worker_metrics}/metrics")
        assert status == 200
        assert sample(body, "inbox_jobs_total", 'job="ingest_message",outcome="succeeded"') == 1.0
        assert sample(body, "inbox_job_duration_seconds_count", 'job="ingest_message"') == 1.0
        extracted = re.findall(r'^inbox_extractions_total\{source="([^"]+)"\} 1\.0$', body, re.MULTILINE)
        assert len(extracted) == 1 and extracted[0] in {"invoice2data", "generic"}, extracted
        for served in (body, get(f"http://127.0.0.1:{smtp_metrics}/metrics")[1]):
            assert SUPPLIER not in served and tenant.address not in served and tenant.tenant.name not in served
    finally:
        smtp.terminate()
        worker.terminate()
    with session_factory() as session:
        [message] = session.query(InboundMessage).all()
        [document] = session.query(Document).all()
    # LOG_FORMAT=json: every line one JSON object; the job's lines name the message or document they concern.
    lines = [json.loads(line) for name in ("smtp.log", "worker.log")
             for line in (tmp_path / name).read_text().splitlines() if line.strip()]
    ingested = [line for line in lines if "ingested" in line["message"]]
    assert ingested and all(line["message_id"] == message.id for line in ingested), ingested
    assert any(line["logger"].startswith("rq.") for line in lines)  # RQ's own lines are JSON too
    assert document.message_id == message.id


def test_multiprocess_mode_the_web_serves_the_gateways_metrics(app, settings, tenant, tmp_path: Path, monkeypatch):
    """PROMETHEUS_MULTIPROC_DIR shared by the processes of a host: the web /metrics answers for the gateway."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    smtp_port = free_port()
    smtp = Process("smtp", dict(smtp_env(settings, smtp_port), PROMETHEUS_MULTIPROC_DIR=str(shared)),
                   tmp_path / "smtp.log")
    try:
        smtp.start()
        wait_for_port(smtp_port)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.sendmail("billing@supplier.example", [tenant.address], make_email(tenant.address, b"%PDF-1.4"))
    finally:
        smtp.terminate()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    response = app.test_client().get("/metrics")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert sample(body, "inbox_smtp_messages_total", 'code="250"') == 1.0
    assert sample(body, "inbox_queue_jobs", 'queue="mail"') == 1.0  # the state is still read by the web process
