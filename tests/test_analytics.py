"""Analytics on known data: amount due, overdue, ageing buckets and their edges, DSO, weekly cash-in."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from core.receivables import analytics
from tests.conftest import TenantFixture
from tests.test_clients import TODAY, admin_viewer, client, confirm, known_book, pay  # noqa: F401 (fixture)
from tests.test_dashboard import text

D = Decimal


def test_summary_on_known_data(session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    known_book(session, storage, tenant)
    result = analytics.summary(session, admin_viewer(session, tenant), currency="EUR", today=TODAY)
    # Unpaid: 1000 (due in 10 days), 500 - 200 paid (5 days late), 2000 (40 days late); USD and paid ones excluded.
    assert (result.amount_due, result.overdue) == (D("3300.00"), D("2300.00"))
    assert [(b.label, b.amount) for b in result.ageing] == [
        ("Not due", D("1000.00")), ("1–30 days", D("300.00")), ("31–60 days", D("2000.00")),
        ("61–90 days", D("0.00")), ("> 90 days", D("0.00"))]
    # DSO = 3300 / (1000 + 500 issued in the last 90 days) x 90
    assert result.invoiced_window == D("1500.00") and result.dso_days == 198.0
    # Cash-in: 1000 due in 10 days falls in the second week; what was due before today is apart.
    assert len(result.weeks) == 12 and result.weeks[0].start == TODAY
    assert [w.amount for w in result.weeks] == [D("0.00"), D("1000.00")] + [D("0.00")] * 10
    assert result.expected_overdue == D("2300.00")


def test_ageing_bucket_edges(session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    for days, amount in ((0, "1.00"), (1, "2.00"), (30, "4.00"), (31, "8.00"), (60, "16.00"), (61, "32.00"),
                         (90, "64.00"), (91, "128.00"), (400, "256.00")):
        confirm(session, storage, tenant.tenant.id, tenant.admin, f"E-{days}", "Edge", amount,
                issue=TODAY - timedelta(days=500), due=TODAY - timedelta(days=days))
    result = analytics.summary(session, admin_viewer(session, tenant), currency="EUR", today=TODAY)
    assert [b.amount for b in result.ageing] == [D("1.00"), D("6.00"), D("24.00"), D("96.00"), D("384.00")]
    assert result.dso_days is None  # nothing issued in the last 90 days


def test_payments_landing_later_update_every_number(session: Session, storage: FileStorage,
                                                    tenant: TenantFixture) -> None:
    invoice = confirm(session, storage, tenant.tenant.id, tenant.admin, "P-1", "Payer", "1000.00",
                      issue=TODAY - timedelta(days=10), due=TODAY + timedelta(days=20))
    viewer = admin_viewer(session, tenant)
    before = analytics.summary(session, viewer, currency="EUR", today=TODAY)
    assert before.amount_due == D("1000.00") and before.weeks[2].amount == D("1000.00")
    pay(session, invoice, "400.00")
    partly = analytics.summary(session, viewer, currency="EUR", today=TODAY)
    assert partly.amount_due == D("600.00") and partly.weeks[2].amount == D("600.00")
    pay(session, invoice, "1000.00", paid_at=TODAY)
    settled = analytics.summary(session, viewer, currency="EUR", today=TODAY)
    assert settled.amount_due == D("0.00") and sum(w.amount for w in settled.weeks) == D("0.00")


def test_analytics_page_and_api_agree(client: FlaskClient, app: Flask, session: Session,  # noqa: F811
                                      storage: FileStorage, tenant: TenantFixture) -> None:
    known_book(session, storage, tenant)
    page = text(client.get("/analytics"))
    assert 'id="kpi-due">€3,300.00' in page and 'id="kpi-overdue">€2,300.00' in page
    assert 'id="kpi-dso">198.0 days' in page
    assert page.count("<rect ") == 5 + 12  # two SVG charts, no script
    ageing = page.split('id="ageing-table"')[1].split("</table>")[0]
    assert re.search(r"31–60 days</th><td class=\"num\">€2,000.00", ageing)
    assert "<script>" not in page.split("<body")[1]

    app.config["INBOX_TODAY"] = TODAY.isoformat()
    response = app.test_client().get("/api/v1/analytics", headers={"Authorization": f"Bearer {tenant.token}"})
    body = response.get_json()
    assert response.status_code == 200
    assert (body["currency"], body["amount_due"], body["overdue"], body["dso_days"]) == ("EUR", "3300.00",
                                                                                           "2300.00", 198.0)
    assert [b["amount"] for b in body["ageing"]] == ["1000.00", "300.00", "2000.00", "0.00", "0.00"]
    assert body["expected_cash_in_weeks"][1] == {"week_start": "2026-12-01", "week_end": "2026-12-07",
                                                 "amount": "1000.00"}
    usd = app.test_client().get("/api/v1/analytics?currency=usd", headers={"Authorization": f"Bearer {tenant.token}"})
    assert usd.get_json()["amount_due"] == "999.00"
    bad = app.test_client().get("/api/v1/analytics?currency=EURO", headers={"Authorization": f"Bearer {tenant.token}"})
    assert bad.status_code == 400
