"""Bank statements, transactions, matches, rules and treasury over /api/v1, with tenant isolation."""

from __future__ import annotations

import io
from datetime import date

from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from core.models import Role
from tests.bankhelpers import csv_row, make_invoice, statement_csv
from tests.conftest import make_tenant
from tests.corpus import CORPUS as SHARED

CORPUS = SHARED / "bank"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _upload(client, token: str, data: bytes, name: str = "umsaetze.csv", **form: str):
    return client.post(
        "/api/v1/bank-statements",
        headers=_auth(token),
        data={"file": (io.BytesIO(data), name), **form},
        content_type="multipart/form-data",
    )


def test_upload_match_and_decide_over_the_api(
    app, session: Session, storage: FileStorage, tenant, other_tenant
) -> None:
    tid = tenant.tenant.id
    paid = make_invoice(session, storage, tid, "FA-2026-0001", "1200.00", "Dupont SARL")
    wrong = make_invoice(session, storage, tid, "FA-2026-0002", "800.00", "Durand SA")
    session.commit()
    client = app.test_client()
    data = statement_csv(
        csv_row(date(2026, 2, 3), "Facture FA-2026-0001", "1.200,00", "Dupont"),
        csv_row(date(2026, 2, 4), "FA-2026-0002", "500,00", "Durand SA"),
    )
    response = _upload(client, tenant.token, data)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["created"], body["applied"], body["suggested"]) == (2, 1, 1)
    # Uploading the same file again creates nothing.
    assert _upload(client, tenant.token, data).get_json()["created"] == 0

    listed = client.get("/api/v1/transactions", headers=_auth(tenant.token)).get_json()
    assert listed["total"] == 2
    by_status = {item["status"]: item for item in listed["items"]}
    assert set(by_status) == {"matched", "suggested"}
    assert by_status["matched"]["matches"][0]["invoice_number"] == "FA-2026-0001"
    assert client.get("/api/v1/transactions?status=bogus", headers=_auth(tenant.token)).status_code == 400

    invoices = client.get("/api/v1/invoices?status=paid", headers=_auth(tenant.token)).get_json()["items"]
    assert [i["id"] for i in invoices] == [paid.id]
    assert invoices[0]["amount_paid"] == "1200.00" and invoices[0]["paid_at"] == "2026-02-03"
    assert invoices[0]["matches"][0]["state"] == "applied"

    suggestion = by_status["suggested"]["matches"][0]
    # Another tenant sees none of it and can decide nothing.
    other = _auth(other_tenant.token)
    assert client.get("/api/v1/transactions", headers=other).get_json()["total"] == 0
    assert client.post(f"/api/v1/matches/{suggestion['id']}/accept", headers=other).status_code == 404
    assert client.get(f"/api/v1/transactions/{suggestion['transaction_id']}", headers=other).status_code == 404

    accepted = client.post(f"/api/v1/matches/{suggestion['id']}/accept", headers=_auth(tenant.token))
    assert accepted.status_code == 200 and accepted.get_json()["state"] == "applied"
    again = client.post(f"/api/v1/matches/{suggestion['id']}/accept", headers=_auth(tenant.token))
    assert again.status_code == 409
    partial = client.get("/api/v1/invoices?status=partially_paid", headers=_auth(tenant.token)).get_json()
    assert [i["id"] for i in partial["items"]] == [wrong.id]

    undone = client.post(f"/api/v1/matches/{suggestion['id']}/undo", headers=_auth(tenant.token))
    assert undone.status_code == 200 and undone.get_json()["undone_at"]
    split = client.post(
        f"/api/v1/transactions/{suggestion['transaction_id']}/split",
        headers=_auth(tenant.token),
        json={"parts": [{"invoice_id": wrong.id, "amount": "900.00"}]},
    )
    assert split.status_code == 422  # more than the transaction
    split = client.post(
        f"/api/v1/transactions/{suggestion['transaction_id']}/split",
        headers=_auth(tenant.token),
        json={"parts": [{"invoice_id": wrong.id, "amount": "500.00"}]},
    )
    assert split.status_code == 200 and split.get_json()["status"] == "matched"


def test_rules_treasury_and_read_only_roles(app, session: Session, tenant) -> None:
    client = app.test_client()
    response = _upload(client, tenant.token, (CORPUS / "mt940_jejik_rabobank-iban.sta").read_bytes(), "r.sta")
    assert response.status_code == 201
    rule = client.post(
        "/api/v1/matching-rules", headers=_auth(tenant.token), json={"text_pattern": "x", "category": ["no"]}
    )
    assert rule.status_code == 422
    rule = client.post(
        "/api/v1/matching-rules", headers=_auth(tenant.token),
        json={"name": "Everything out", "max_amount": "0", "category": "Expenses"},
    )  # fmt: skip
    assert rule.status_code == 201
    txs = client.get("/api/v1/transactions?status=ignored", headers=_auth(tenant.token)).get_json()
    assert txs["total"] >= 1 and all(t["category"] == "Expenses" for t in txs["items"])
    treasury = client.get("/api/v1/treasury", headers=_auth(tenant.token)).get_json()
    assert treasury["positions"][0]["balance"] == "930.00"

    support = make_tenant(session, "Support view", "support@op.example", Role.SUPPORT)
    # A support token of another tenant: read-only, and it sees only its own tenant.
    assert _upload(client, support.token, b"x").status_code == 403
    assert client.get("/api/v1/bank-accounts", headers=_auth(support.token)).get_json()["total"] == 0
    assert client.get("/api/v1/bank-accounts", headers=_auth(tenant.token)).get_json()["total"] == 1
    assert _upload(client, tenant.token, b"not a statement at all", "x.txt").status_code == 409
    missing = client.post("/api/v1/bank-statements", headers=_auth(tenant.token), data={})
    assert missing.status_code == 400


# The dashboard's bank pages (real browser-less client, CSRF on) -------------------------------------


def test_dashboard_upload_with_csrf_decide_rules_treasury_exports(
    app, session: Session, storage: FileStorage, tenant, other_tenant
) -> None:
    from tests.test_dashboard import csrf_token, login

    tid = tenant.tenant.id
    make_invoice(session, storage, tid, "FA-2026-0009", "100.00", "Dupont SARL", due_date=date(2026, 3, 1))
    wrong = make_invoice(session, storage, tid, "=HYPERLINK(1)", "90.00", "=cmd|' /C calc'!A0")
    session.commit()
    client = app.test_client()
    login(client, tenant.admin.email)
    page = client.get("/bank")
    assert page.status_code == 200
    data = statement_csv(
        csv_row(date(2026, 2, 3), "FA-2026-0009", "100,00", "<script>alert(1)</script>"),
        csv_row(date(2026, 2, 4), "=HYPERLINK(1)", "50,00", "x"),
    )
    forged = client.post(
        "/bank/upload", data={"file": (io.BytesIO(data), "s.csv"), "csrf_token": "forged"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert forged.status_code == 400
    response = client.post(
        "/bank/upload", data={"file": (io.BytesIO(data), "s.csv"), "csrf_token": csrf_token(page)},
        content_type="multipart/form-data", follow_redirects=True,
    )  # fmt: skip
    html = response.get_data(as_text=True)
    assert "2 new transaction(s)" in html and "1 matched automatically" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html

    suggestions = client.get("/bank/suggestions")
    session.refresh(wrong)
    match = next(m for m in wrong.matches if m.state == "suggested")
    accepted = client.post(
        f"/bank/matches/{match.id}/accept", data={"csrf_token": csrf_token(suggestions), "next": "//evil.example"}
    )
    assert accepted.status_code == 302 and "evil" not in accepted.headers["Location"]
    session.refresh(wrong)
    assert wrong.status == "partially_paid"

    rules = client.get("/bank/rules")
    client.post("/bank/rules", data={"csrf_token": csrf_token(rules), "text_pattern": "frais", "category": "Fees"})
    assert "Fees" in client.get("/bank/rules").get_data(as_text=True)
    assert client.get("/bank/treasury").status_code == 200

    export = client.get("/bank/export/matches.csv?style=excel-fr")
    text = export.data.decode("utf-8")
    assert export.data.startswith("\ufeff".encode()) and ";" in text.splitlines()[0]
    assert "'=HYPERLINK(1)" in text and "100,00" in text
    invoices_csv = client.get("/bank/export/invoices.csv").data.decode("utf-8")
    assert "\"'=cmd|' /C calc'!A0\"" in invoices_csv or "'=cmd|' /C calc'!A0" in invoices_csv
    assert "90.00" in invoices_csv

    # Another tenant's user gets 404 on this tenant's objects.
    other = app.test_client()
    login(other, other_tenant.admin.email)
    assert other.get(f"/bank/transactions/{match.transaction_id}").status_code == 404
    page = other.get("/bank")
    assert other.post(f"/bank/matches/{match.id}/undo", data={"csrf_token": csrf_token(page)}).status_code == 404


def test_dashboard_account_csv_mapping_then_upload(app, session: Session, tenant) -> None:
    from core.banking import transactions as bank
    from tests.test_dashboard import csrf_token, login

    account = bank.find_or_create_account(session, tenant.tenant.id, "FR7630006000011234567890189", name="BNP")
    session.commit()
    client = app.test_client()
    login(client, tenant.admin.email)
    page = client.get(f"/bank/accounts/{account.id}")
    assert page.status_code == 200
    data = b"Date,Libelle,Montant\n2026-03-01,Cotisation,\"-12.00\"\n"
    index = client.get("/bank")
    refused = client.post(
        "/bank/upload", data={"file": (io.BytesIO(data), "bnp.csv"), "account_id": str(account.id),
                              "csrf_token": csrf_token(index)},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert refused.status_code == 302 and refused.headers["Location"].endswith(f"/bank/accounts/{account.id}")
    saved = client.post(
        f"/bank/accounts/{account.id}",
        data={"csrf_token": csrf_token(page), "booking_date": "Date", "amount": "Montant", "remittance": "Libelle",
              "delimiter": ",", "decimal_comma": "0", "date_formats": "%Y-%m-%d"},
        follow_redirects=True,
    )  # fmt: skip
    assert "CSV mapping saved" in saved.get_data(as_text=True)
    assert 'value="Montant"' in saved.get_data(as_text=True)
    done = client.post(
        "/bank/upload", data={"file": (io.BytesIO(data), "bnp.csv"), "account_id": str(account.id),
                              "csrf_token": csrf_token(index)},
        content_type="multipart/form-data", follow_redirects=True,
    )  # fmt: skip
    assert "1 new transaction(s)" in done.get_data(as_text=True)
    # Another tenant cannot see or change the account.
    other = make_tenant(session, "Other", "other@x.example")
    intruder = app.test_client()
    login(intruder, other.admin.email)
    assert intruder.get(f"/bank/accounts/{account.id}").status_code == 404
