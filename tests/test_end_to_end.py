"""A forwarded invoice travels SMTP → queue → extraction → review → validated, on real components:
a real SMTP socket, a real redis-server, a real ``inbox worker`` process, the real database."""

from __future__ import annotations

import smtplib
from datetime import date
from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from tests.invoicegen import make_email, make_invoice_pdf
from tests.services import run_worker_burst

INVOICE = dict(
    number="FA-2026-0042",
    issuer="Dupont Conseil SARL",
    client="Acme SAS",
    issue_date=date(2026, 11, 23),
    due_date=date(2026, 12, 23),
    net=Decimal("1000.00"),
    tax=Decimal("200.00"),
    currency="EUR",
)


def send(port: int, to: str, pdf: bytes, filename: str = "facture.pdf") -> None:
    raw = make_email(to, pdf, filename=filename)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        refused = client.sendmail("compta@dupont-conseil.example", [to], raw)
    assert refused == {}


def api(client: FlaskClient, token: str, method: str, path: str, **kwargs):
    response = client.open(f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    return response


def pending(client: FlaskClient, token: str) -> list[dict]:
    response = api(client, token, "GET", "/documents?status=pending")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def test_invoice_by_smtp_reaches_review_and_is_validated(settings, app, tenant, smtp_port):
    pdf = make_invoice_pdf(**INVOICE)
    send(smtp_port, tenant.address, pdf)
    run_worker_burst(settings)

    client = app.test_client()
    messages = api(client, tenant.token, "GET", "/messages").get_json()["items"]
    assert [m["status"] for m in messages] == ["processed"]
    docs = pending(client, tenant.token)
    assert len(docs) == 1
    doc = docs[0]
    assert doc["filename"] == "facture.pdf"
    assert doc["type"] == "invoice"
    assert doc["number"] == "FA-2026-0042"
    assert doc["client"] == "Acme SAS"
    assert doc["issuer"] == "Dupont Conseil SARL"
    assert (doc["amount"], doc["net_amount"], doc["tax_amount"]) == ("1200.00", "1000.00", "200.00")
    assert doc["currency"] == "EUR"
    assert (doc["issue_date"], doc["due_date"]) == ("2026-11-23", "2026-12-23")

    file_response = api(client, tenant.token, "GET", f"/documents/{doc['id']}/file")
    assert file_response.status_code == 200 and file_response.data == pdf

    # The reviewer corrects the title and confirms.
    validated = api(
        client, tenant.token, "POST", f"/documents/{doc['id']}/validate", json={"title": "Conseil novembre"}
    )
    assert validated.status_code == 200, validated.get_data(as_text=True)
    invoices = api(client, tenant.token, "GET", "/invoices").get_json()["items"]
    assert [(i["number"], i["title"], i["amount"]) for i in invoices] == [
        ("FA-2026-0042", "Conseil novembre", "1200.00")
    ]
    assert pending(client, tenant.token) == []


@pytest.mark.parametrize("action", ["link", "replace", "discard"])
def test_invoice_sent_again_is_a_duplicate_and_each_decision_applies(settings, app, tenant, smtp_port, action):
    client = app.test_client()
    first_pdf = make_invoice_pdf(**INVOICE)
    send(smtp_port, tenant.address, first_pdf)
    run_worker_burst(settings)
    first = pending(client, tenant.token)[0]
    invoice = api(client, tenant.token, "POST", f"/documents/{first['id']}/validate", json={}).get_json()

    # Same number, different bytes (a re-issued copy): recognised by its number.
    second_pdf = make_invoice_pdf(**INVOICE, layout=1)
    assert second_pdf != first_pdf
    send(smtp_port, tenant.address, second_pdf, filename="facture-copie.pdf")
    run_worker_burst(settings)
    duplicates = api(client, tenant.token, "GET", "/documents?status=duplicate").get_json()["items"]
    assert len(duplicates) == 1
    dup = duplicates[0]
    assert dup["duplicate_of"] == invoice["id"]
    assert "It seems this invoice has already been imported" in dup["reason"]

    decided = api(client, tenant.token, "POST", f"/documents/{dup['id']}/duplicate", json={"action": action})
    assert decided.status_code == 200, decided.get_data(as_text=True)
    after = api(client, tenant.token, "GET", f"/invoices/{invoice['id']}").get_json()
    doc_after = api(client, tenant.token, "GET", f"/documents/{dup['id']}").get_json()
    if action == "discard":
        assert doc_after["status"] == "discarded"
        assert after["file_id"] == invoice["file_id"] and after["attachments"] == []
    elif action == "link":
        assert doc_after["status"] == "validated"
        assert after["file_id"] == invoice["file_id"] and len(after["attachments"]) == 1
    else:
        assert doc_after["status"] == "validated"
        assert after["file_id"] != invoice["file_id"]
        replaced = api(client, tenant.token, "GET", f"/documents/{dup['id']}/file")
        assert replaced.data == second_pdf
    assert len(api(client, tenant.token, "GET", "/invoices").get_json()["items"]) == 1


def test_byte_identical_file_is_recognised_by_its_hash(settings, app, tenant, smtp_port):
    client = app.test_client()
    pdf = make_invoice_pdf(**INVOICE)
    send(smtp_port, tenant.address, pdf)
    run_worker_burst(settings)
    first = pending(client, tenant.token)[0]
    api(client, tenant.token, "POST", f"/documents/{first['id']}/validate", json={"number": "FA-2026-0042"})
    send(smtp_port, tenant.address, pdf, filename="renvoi.pdf")
    run_worker_burst(settings)
    dup = api(client, tenant.token, "GET", "/documents?status=duplicate").get_json()["items"]
    assert len(dup) == 1 and "same file" in dup[0]["reason"]
