"""Object storage (STORAGE_URL=s3://...) against a real S3 server (SeaweedFS), never a mock.

The gateway's 250 only after the store acknowledged the write; 451 and nothing half-stored while the
store is away; the worker reads from it; the dashboard streams a file out of it.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from core.config import Settings
from core.db import session_scope
from core.files import make_storage
from core.files.storage import StorageError
from core.files.storage_s3 import S3Storage
from core.models import Document, InboundMessage
from tests.invoicegen import make_email, make_invoice_pdf
from tests.s3server import SeaweedS3
from tests.services import process_env
from tests.test_dashboard import login
from tests.test_smtp import running_server

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_settings(settings: Settings, s3: SeaweedS3) -> Settings:
    if s3.process is None:  # a previous test stopped it
        s3.start()
    env = s3.env()
    return replace(settings, storage_url=env["STORAGE_URL"], s3_endpoint_url=env["S3_ENDPOINT_URL"],
                   s3_region=env["S3_REGION"], s3_access_key_id=env["S3_ACCESS_KEY_ID"],
                   s3_secret_access_key=env["S3_SECRET_ACCESS_KEY"])


def test_object_storage_round_trip(s3_settings: Settings, s3: SeaweedS3):
    storage = make_storage(s3_settings)
    assert isinstance(storage, S3Storage)
    key = storage.file_key(7, "ab" * 32)
    storage.write(key, b"%PDF-1.7 bytes")
    assert storage.read(key) == b"%PDF-1.7 bytes" and storage.exists(key)
    assert f"inbox/{key}" in s3.keys("inbox/files/7/")  # content-addressed per tenant, under the URL's prefix
    assert b"".join(storage.open_stream(key)) == b"%PDF-1.7 bytes"
    storage.delete(key)
    assert not storage.exists(key)
    with pytest.raises(FileNotFoundError):
        storage.read(key)
    with pytest.raises(ValueError):
        storage.write("files/../../other-bucket/x", b"x")


def _deliver(port: int, recipient: str, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("billing@supplier.example")
        client.rcpt(recipient)
        return client.data(raw)


def test_mail_is_stored_on_s3_extracted_and_downloaded_streamed(
    s3_settings, s3, session_factory, tenant, app, tmp_path
):
    pdf = make_invoice_pdf(number="S3-0001")
    with running_server(s3_settings) as server:
        code, _ = _deliver(server.port, tenant.address, make_email(tenant.address, pdf))
        assert code == 250
        with session_factory() as session:
            [message] = session.scalars(select(InboundMessage)).all()
        # Acknowledged only once stored: the raw message is in the bucket, nothing on the local disk.
        assert s3.keys(f"inbox/{message.raw_key}") == [f"inbox/{message.raw_key}"]
        assert not (s3_settings.storage_dir / message.raw_key).exists()
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.run([sys.executable, "-m", "dashboard.cli", "worker", "--burst"],
                                env=dict(process_env(s3_settings), **s3.env()), stdout=out, stderr=subprocess.STDOUT,
                                timeout=120, check=False)
    assert worker.returncode == 0, log.read_text()[-3000:]
    with session_factory() as session:
        [document] = session.scalars(select(Document)).all()
        assert document.status == "pending" and document.number == "S3-0001"
        file_key = document.file.storage_key
    assert s3.keys(f"inbox/{file_key}") == [f"inbox/{file_key}"]

    s3_app = app  # the dashboard on the same database, its storage the bucket
    s3_app.extensions["inbox.storage"] = make_storage(s3_settings)
    client = s3_app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    response = client.get(f"/documents/{document.id}/file")
    assert response.status_code == 200 and response.is_streamed
    assert response.get_data() == pdf and response.headers["Content-Length"] == str(len(pdf))
    assert response.headers["Content-Type"] == "application/pdf"


def test_store_stopped_mid_delivery_answers_451_and_nothing_is_lost(s3_settings, s3, session_factory, tenant):
    raw = make_email(tenant.address, make_invoice_pdf(number="S3-0451"))
    with running_server(s3_settings) as server:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            client.ehlo()
            assert client.mail("billing@supplier.example")[0] == 250
            assert client.rcpt(tenant.address)[0] == 250
            s3.stop()  # the object store goes away in the middle of the delivery
            code, reply = client.data(raw)
        assert code == 451, reply  # temporary: the sender's MTA keeps the message and retries
        with session_factory() as session:
            assert session.scalars(select(InboundMessage)).all() == []  # nothing half-stored
        s3.start()
        code, _ = _deliver(server.port, tenant.address, raw)  # the MTA's retry
        assert code == 250
    with session_scope(session_factory) as session:
        [message] = session.scalars(select(InboundMessage)).all()
        assert make_storage(s3_settings).read(message.raw_key) == raw


def test_readyz_says_when_the_object_store_is_away(s3_settings, s3):
    from core.health import check_storage

    storage = make_storage(s3_settings)
    assert check_storage(storage) is None
    s3.stop()
    try:
        assert check_storage(storage) == "storage unusable (StorageError)"
        with pytest.raises(StorageError):
            storage.read("anything")
    finally:
        s3.start()
