"""Issue 18: a configurable fiscal year end (Settings → Company, ``PUT /api/v1/tenant`` ``fiscal_year_end``)
used for EcritureNum's numbering, the closed period, the FEC (year, file name) and the exports page. Real
services on SQLite and PostgreSQL; the FEC goes through ``tests/fecchecker.py``."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core.accounting import entries as entrysvc
from core.accounting import fec, fiscal
from core.accounting.ledger import FiscalCalendar
from core.accounting.models import FiscalYear, JournalEntry
from core.errors import ValidationFailed
from core.models import AuditEvent, Tenant
from tests.fecchecker import check_fec
from tests.test_accounting import validate, vat
from tests.test_payables import api

SIREN = "732829320"


def test_calendar_names_a_fiscal_year_by_the_year_it_ends_in() -> None:
    march = FiscalCalendar(3, 31)
    assert [march.year_of(day) for day in (date(2026, 3, 31), date(2026, 4, 1), date(2027, 3, 31))] == [
        2026, 2027, 2027]
    assert (march.opening(2027), march.closing(2027)) == (date(2026, 4, 1), date(2027, 3, 31))
    assert FiscalCalendar().year_of(date(2026, 12, 31)) == 2026 and FiscalCalendar().opening(2026) == date(2026, 1, 1)
    assert FiscalCalendar.of("06-30") == FiscalCalendar(6, 30) and FiscalCalendar.of(None) == FiscalCalendar()


def _post(session, storage, fx, number: str, day: date) -> JournalEntry:
    _, entry = validate(session, storage, fx, number, "120.00", breakdown=[vat("20", "100.00", "20.00")], issue=day)
    return entrysvc.post_entry(session, fx.tenant.id, entry.id, fx.admin.id, today=day)


def test_a_company_closing_on_31_march_numbers_and_exports_its_fiscal_years(session, storage, tenant):
    tid = tenant.tenant.id
    assert session.get(Tenant, tid).fiscal_year_end == "12-31"  # the default: calendar years
    session.get(Tenant, tid).siren = SIREN
    fiscal.set_year_end(session, tid, "03-31", tenant.admin)
    session.commit()
    before = _post(session, storage, tenant, "Y-0", date(2026, 3, 20))  # fiscal year 2026 (to 31 March 2026)
    days = [date(2026, 4, 1), date(2026, 7, 14), date(2026, 12, 31), date(2027, 1, 2), date(2027, 3, 31)]
    posted = [_post(session, storage, tenant, f"Y-{i}", day) for i, day in enumerate(days, start=1)]
    after = _post(session, storage, tenant, "Y-9", date(2027, 4, 1))  # fiscal year 2028: numbering restarts
    session.commit()
    assert (before.fiscal_year, before.number) == (2026, 1)
    assert [(e.fiscal_year, e.number) for e in posted] == [(2027, n) for n in range(1, 6)]
    assert (after.fiscal_year, after.number) == (2028, 1)

    name = fec.filename(session, tid, 2027)
    assert name == f"{SIREN}FEC20270331.txt"
    data = b"".join(fec.stream(session, tid, 2027))
    assert check_fec(name, data, date(2026, 4, 1), date(2027, 3, 31)) == []
    rows = [line.split("\t") for line in data.decode().split("\r\n")[1:] if line]
    assert sorted({row[3] for row in rows}) == ["20260401", "20260714", "20261231", "20270102", "20270331"]
    assert sorted({int(row[2]) for row in rows}) == [1, 2, 3, 4, 5]
    # The checker would catch an entry of the next fiscal year in this file.
    assert check_fec(name, b"".join(fec.stream(session, tid, 2028)), date(2026, 4, 1), date(2027, 3, 31))

    # Closing fiscal year 2027 closes April 2026 - March 2027, not the calendar year.
    entrysvc.close_year(session, tid, 2027)
    session.commit()
    _, late = validate(session, storage, tenant, "Y-10", "120.00", breakdown=[vat("20", "100.00", "20.00")],
                       issue=date(2026, 5, 5))
    with pytest.raises(ValidationFailed, match="fiscal year 2027 is closed"):
        entrysvc.post_entry(session, tid, late.id, tenant.admin.id)
    session.rollback()
    entrysvc.update_entry(session, tid, late.id, {"entry_date": "2027-04-02"})
    assert entrysvc.post_entry(session, tid, late.id, tenant.admin.id).number == 2  # fiscal year 2028
    session.commit()
    assert session.scalars(select(FiscalYear.closed).where(FiscalYear.tenant_id == tid,
                                                            FiscalYear.year == 2027)).one() is True


def test_closing_waits_for_the_drafts_of_the_fiscal_year(session, storage, tenant):
    tid = tenant.tenant.id
    fiscal.set_year_end(session, tid, "03-31")
    validate(session, storage, tenant, "W-1", "120.00", breakdown=[vat("20", "100.00", "20.00")],
             issue=date(2026, 11, 3))
    with pytest.raises(ValidationFailed, match=r"fiscal year 2027 \(2026-04-01 to 2027-03-31\)"):
        entrysvc.close_year(session, tid, 2027)
    entrysvc.close_year(session, tid, 2026)  # April 2025 - March 2026 has nothing waiting


def test_the_year_end_is_checked_and_cannot_move_posted_entries(session, storage, tenant):
    tid = tenant.tenant.id
    for bad, reason in (("13-01", "MM-DD"), ("04-31", "MM-DD"), ("3-31", "MM-DD"), ("31/03", "MM-DD"),
                        ("02-29", "02-28"), (331, "MM-DD")):
        with pytest.raises(ValidationFailed, match=reason) as caught:
            fiscal.set_year_end(session, tid, bad)
        assert set(caught.value.errors) == {"fiscal_year_end"}
    # Entries posted in January-March 2026 stay in fiscal year 2026 with a 31 March year end: allowed.
    _post(session, storage, tenant, "M-1", date(2026, 2, 10))
    fiscal.set_year_end(session, tid, "03-31", tenant.admin)
    session.commit()
    assert session.get(Tenant, tid).fiscal_year_end == "03-31"
    _post(session, storage, tenant, "M-2", date(2026, 6, 10))  # fiscal year 2027
    session.commit()
    # Back to calendar years would move the June entry from fiscal year 2027 to 2026: refused, nothing written.
    with pytest.raises(ValidationFailed, match=r"1 posted entries \(fiscal year 2027, e.g. 2026-06-10\) would "
                                               r"move to fiscal year 2026") as caught:
        fiscal.set_year_end(session, tid, "12-31")
    assert "year boundary" in caught.value.errors["fiscal_year_end"]
    session.rollback()
    assert session.get(Tenant, tid).fiscal_year_end == "03-31"
    changes = [e.detail["changes"] for e in session.scalars(select(AuditEvent).where(
        AuditEvent.tenant_id == tid, AuditEvent.action == "settings.company"))]
    assert {"fiscal_year_end": ["12-31", "03-31"]} in changes


def test_api_and_settings_page_set_the_year_end_and_the_exports_follow_it(app, session, storage, tenant):
    from tests.test_dashboard import login, post, text

    client = app.test_client()
    tid = tenant.tenant.id
    got = api(client, tenant.token, "PUT", "/tenant", json={"fiscal_year_end": "06-30"})
    assert got.status_code == 200 and got.get_json()["fiscal_year_end"] == "06-30"
    refused = api(client, tenant.token, "PUT", "/tenant", json={"fiscal_year_end": "06-31", "siren": "123456789"})
    assert refused.status_code == 422 and set(refused.get_json()["fields"]) == {"fiscal_year_end", "siren"}
    assert api(client, tenant.token, "GET", "/tenant").get_json()["fiscal_year_end"] == "06-30"
    cleared = api(client, tenant.token, "PUT", "/tenant", json={"fiscal_year_end": None})
    assert cleared.get_json()["fiscal_year_end"] == "12-31"

    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    page = text(web.get("/settings/company"))
    assert 'name="fiscal_year_end"' in page and 'value="12-31"' in page
    form = {"legal_name": "Acme SAS", "approval_mode": "none", "fiscal_year_end": "09-30"}
    assert post(web, "/settings/company", form, page="/settings/company").status_code == 302
    session.expire_all()
    assert session.get(Tenant, tid).fiscal_year_end == "09-30"
    wrong = post(web, "/settings/company", {"approval_mode": "none", "fiscal_year_end": "9/30"},
                 page="/settings/company")
    assert wrong.status_code == 422 and "MM-DD" in text(wrong)
    calendar = FiscalCalendar(9, 30)
    year = calendar.year_of(date.today())
    exports = text(web.get("/accounting/exports"))
    assert f'name="year" value="{year}"' in exports
    assert f'name="from" value="{calendar.opening(year).isoformat()}"' in exports
    assert f'name="to" value="{calendar.closing(year).isoformat()}"' in exports
    session.get(Tenant, tid).siren = SIREN
    session.get(Tenant, tid).datev_consultant_number, session.get(Tenant, tid).datev_client_number = "29098", "55003"
    session.commit()
    download = web.get(f"/accounting/fec?year={year}")
    assert f'filename="{SIREN}FEC{year}0930.txt"' in download.headers["Content-Disposition"]
    datev = web.get("/accounting/export?format=datev").data.split(b"\r\n")[0].decode("cp1252")
    assert f";{calendar.opening(year):%Y%m%d};" in datev  # WJ-Beginn: the fiscal year's first day
