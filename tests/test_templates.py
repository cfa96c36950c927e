"""Per-tenant invoice2data templates (issue #4): validation, the editor's draft and test, extraction with a
company's own templates (and never another company's), the dashboard pages and the API twins."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal

import pytest
import yaml
from flask import Flask
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.orm import Session

from core.documents import templates as svc
from core.errors import NotFound
from core.extraction import templated
from core.extraction.result import CHECK_BELOW
from core.files.storage import FileStorage
from core.models import Document, DocumentStatus, Role
from core.tenancy import accounts
from tests.conftest import TenantFixture
from tests.test_dashboard import csrf_token, login
from tests.test_extraction_pipeline import extract, new_document

VAT = "FR 40 303 265 045"  # a valid French VAT id (check digits), printed with spaces as many issuers do
ISSUER = "Transports Mérovingiens"


def make_new_layout_pdf(number: str = "PC-77-1042", issue: date = date(2026, 10, 7),
                        total: Decimal = Decimal("3456.78"), issuer: str = ISSUER, vat: str = VAT) -> bytes:
    """An issuer's layout the generic reader does not understand: "Réf. pièce", "Établie le" with a dotted
    date, the total as "Somme due 3.456,78 EUR"; the issuer's VAT id in the letterhead."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    canvas.setFont("Helvetica-Bold", 13)
    canvas.drawString(50, 800, issuer.upper())
    canvas.setFont("Helvetica", 9)
    canvas.drawString(50, 786, f"TVA intracom. {vat}")
    canvas.drawString(50, 774, "Zone artisanale des Forges - 21000 Dijon")
    canvas.setFont("Helvetica", 10)
    canvas.drawString(330, 740, "Réf. pièce")
    canvas.drawString(430, 740, number)
    canvas.drawString(330, 726, "Établie le")
    canvas.drawString(430, 726, issue.strftime("%d.%m.%Y"))
    canvas.drawString(50, 690, "Acheminement de marchandises, lot 14")
    whole, cents = f"{total:.2f}".split(".")
    canvas.drawString(330, 600, "Somme due")
    canvas.drawString(430, 600, f"{int(whole):,}".replace(",", ".") + f",{cents} EUR")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


GOOD = r"""
issuer: Transports Mérovingiens
keywords:
  - "FR 40 303 265 045"
fields:
  invoice_number: Réf\.\s+pièce\s*(\S+)
  date: Établie\s+le\s*(\d{1,2}\.\d{1,2}\.\d{4})
  amount: Somme\s+due\s*(\d[\d .,]{0,20}\d)
options:
  currency: EUR
  date_formats: ["%d.%m.%Y"]
  decimal_separator: ","
"""


def problems_of(source: str) -> list[str]:
    with pytest.raises(svc.TemplateInvalid) as refused:
        svc.parse_source(source)
    assert refused.value.problems and refused.value.errors["source"]
    return refused.value.problems


# Validation (no database) ----------------------------------------------------------------------


def test_a_good_template_is_accepted_and_compiles():
    data = svc.parse_source(GOOD)
    assert data["issuer"] == ISSUER and data["keywords"] == [VAT]
    template = svc.compile_source(GOOD, "t")
    assert template["keywords"] == [VAT] and template.get(templated.PLAIN_KEYWORDS) is True


def test_yaml_syntax_error_says_where():
    (problem,) = problems_of("issuer: X\nkeywords: [a\nfields: {}\n")
    assert "not valid YAML" in problem and "line" in problem


def test_every_problem_gets_its_own_message():
    problems = problems_of("keywords: []\nfields:\n  amount: (a\n  colour: x\nunknown: 1\n")
    text = " | ".join(problems)
    assert "Unknown key(s) unknown" in text
    assert "issuer: the issuer's name is required" in text
    assert "keywords:" in text
    assert "date, invoice_number missing" in text
    assert "fields.amount: the regex does not compile" in text
    assert len(problems) >= 5


def test_bad_regexes_are_refused_with_the_reason():
    nested = GOOD.replace(r"Somme\s+due\s*(\d[\d .,]{0,20}\d)", r"Somme\s+due\s*((?:\d+\s?)+)")
    assert any("exponential" in p for p in problems_of(nested))
    two_groups = GOOD.replace(r"Réf\.\s+pièce\s*(\S+)", r"(Réf)\.\s+pièce\s*(\S+)")
    assert any("several capturing groups" in p for p in problems_of(two_groups))
    assert svc.regex_problem(r"Total\s*(\d+)") is None
    for slow in (r"(?:a|ab)+c", r"(\d{1,3} ?)+x", ".*" * 7 + "x"):
        assert svc.regex_problem(slow), slow
    for fine in (r"(\d{1,3}(?:[ .]\d{3})*,\d{2})", r"(?:EUR|€)\s*(\d+)", r"Réf\.\s+pièce\s*(\S+)"):
        assert svc.regex_problem(fine) is None, fine
    assert any("exponential" in p for p in problems_of(GOOD.replace(r"(\S+)", r"((?:\S|xy)+)")))


def test_keywords_must_be_plain_texts_of_some_length():
    assert any("keywords" in p for p in problems_of(GOOD.replace('  - "FR 40 303 265 045"', "  - 12")))
    assert any("at least one keyword of 3" in p for p in problems_of(GOOD.replace('"FR 40 303 265 045"', "FR")))
    assert any("keywords" in p for p in problems_of(GOOD.replace('keywords:\n  - "FR 40 303 265 045"',
                                                                 "keywords: []")))


def test_oversize_empty_and_non_mapping_sources_are_refused():
    big = GOOD + "# " + "x" * svc.MAX_SOURCE_BYTES + "\n"
    assert "at most 64 KB" in problems_of(big)[0]
    assert problems_of("   ") == ["The template is empty."]
    assert "must be a mapping" in problems_of("- a\n- b\n")[0]


def test_yaml_aliases_and_tags_are_refused():
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
             "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    assert "aliases" in problems_of(laughs)[0]
    assert "not valid YAML" in problems_of("issuer: !!python/object/apply:os.system [echo hi]\n")[0]


def test_deep_nesting_is_refused_cleanly():
    assert problems_of("[" * 20000 + "]" * 20000)  # a clean refusal, not a RecursionError


# The service on a database ----------------------------------------------------------------------


def test_create_update_delete_and_isolation(session: Session, tenant: TenantFixture, other_tenant: TenantFixture):
    tid = tenant.tenant.id
    template = svc.create_template(session, tid, "  Mérovingiens ", GOOD, tenant.admin)
    session.commit()
    assert (template.name, template.issuer, template.version, template.enabled) == ("Mérovingiens", ISSUER, 1, True)
    assert template.created_by == tenant.admin.email
    with pytest.raises(svc.TemplateInvalid) as taken:
        svc.create_template(session, tid, "Mérovingiens", GOOD, tenant.admin)
    assert "already has this name" in taken.value.errors["name"]
    with pytest.raises(svc.TemplateInvalid):
        svc.update_template(session, tid, template.id, source="issuer: [broken")
    session.rollback()
    updated = svc.update_template(session, tid, template.id, enabled=False)
    session.commit()
    assert updated.version == 2 and updated.enabled is False
    # Another company never sees, changes or deletes it.
    other = other_tenant.tenant.id
    assert svc.list_templates(session, other) == []
    for action in (lambda: svc.get_template(session, other, template.id),
                   lambda: svc.update_template(session, other, template.id, enabled=True),
                   lambda: svc.delete_template(session, other, template.id)):
        with pytest.raises(NotFound):
            action()
    svc.delete_template(session, tid, template.id)
    session.commit()
    assert svc.list_templates(session, tid) == []


def test_a_saved_template_is_used_by_the_next_extraction(session: Session, storage: FileStorage,
                                                         tenant: TenantFixture, other_tenant: TenantFixture):
    tid = tenant.tenant.id
    before = extract(session, storage, new_document(session, storage, tid, make_new_layout_pdf(),
                                                    "application/pdf", "a.pdf"))
    assert before.amount is None  # the generic reader cannot read this layout's total
    # Its one date may be guessed as the issue date, never shown as sure.
    assert before.issue_date is None or before.field_info["issue_date"]["confidence"] < CHECK_BELOW

    svc.create_template(session, tid, "Mérovingiens", GOOD, tenant.admin)
    session.commit()
    pdf = make_new_layout_pdf(number="PC-77-2001", issue=date(2026, 11, 2), total=Decimal("12345.60"))
    after = extract(session, storage, new_document(session, storage, tid, pdf, "application/pdf", "b.pdf"))
    assert after.status == DocumentStatus.PENDING.value
    assert (after.number, after.issue_date, after.amount, after.currency) == (
        "PC-77-2001", date(2026, 11, 2), Decimal("12345.60"), "EUR")
    assert after.extraction_source == f"invoice2data:{ISSUER}"
    assert after.extraction_details["template"] == "tenant:Mérovingiens"
    assert after.field_info["amount"]["confidence"] == templated.TEMPLATE_CONFIDENCE

    # The same layout sent to another company: its reader never uses this company's template.
    theirs = extract(session, storage, new_document(session, storage, other_tenant.tenant.id, pdf,
                                                    "application/pdf", "b.pdf"))
    assert theirs.amount is None and theirs.extraction_details.get("template") is None


def test_worker_cache_compiles_once_and_picks_up_a_save(session: Session, tenant: TenantFixture):
    tid = tenant.tenant.id
    assert svc.templates_for_extraction(session, tid) is None  # no template: the shared list and its index
    template = svc.create_template(session, tid, "Mérovingiens", GOOD, tenant.admin)
    session.commit()
    first = svc.templates_for_extraction(session, tid)
    assert first is not None and first.own == 1 and first[0]["template_name"] == "tenant:Mérovingiens"
    assert len(first) == 1 + len(templated.load_templates())
    assert svc.templates_for_extraction(session, tid) is first  # compiled once while nothing changes
    assert templated.template_index(first) is first.index
    svc.update_template(session, tid, template.id, source=GOOD.replace("Somme", "Montant"))
    session.commit()
    second = svc.templates_for_extraction(session, tid)
    assert second is not first and "Montant" in str(second[0]["fields"]["amount"])  # no restart needed
    svc.update_template(session, tid, template.id, enabled=False)
    session.commit()
    assert svc.templates_for_extraction(session, tid).own == 0  # a disabled template is not used


def test_tenant_templates_come_before_the_shared_ones(session: Session, tenant: TenantFixture):
    """A template of the company matching the same text as a bundled one wins (it is tried first)."""
    tid = tenant.tenant.id
    shared = templated.load_templates()
    akretion = next(t for t in shared if t["template_name"] == "com.akretion.fr.yml")
    text = "Akretion France 792 377 731\nFacture FA123 Total TTC : 100,00 € 01/02/2026"
    assert templated.apply_templates(text).name == "com.akretion.fr.yml"
    ours = (f"issuer: Ours\nkeywords: ['{akretion['keywords'][0]}']\n"
            "fields: {invoice_number: 'Facture (\\w+)', date: '(\\d{2}/\\d{2}/\\d{4})', "
            "amount: 'TTC : (\\d+,\\d{2})'}\noptions: {decimal_separator: ',', date_formats: ['%d/%m/%Y']}\n")
    svc.create_template(session, tid, "Ours", ours, tenant.admin)
    session.commit()
    match = templated.apply_templates(text, svc.templates_for_extraction(session, tid))
    assert match.name == "tenant:Ours" and match.extraction.fields["amount"] == Decimal("100.00")


def test_draft_from_a_document_reads_it_and_others_of_the_layout(session: Session, storage: FileStorage,
                                                                 tenant: TenantFixture):
    tid = tenant.tenant.id
    doc = extract(session, storage, new_document(session, storage, tid, make_new_layout_pdf(),
                                                 "application/pdf", "a.pdf"))
    # The reviewer confirms what the generic reader missed.
    doc.issuer, doc.issue_date, doc.amount = ISSUER, date(2026, 10, 7), Decimal("3456.78")
    session.commit()
    draft = svc.draft_from_document(session, storage, tid, doc.id)
    data = yaml.safe_load(draft)
    assert data["issuer"] == ISSUER and VAT in data["keywords"]
    assert data["fields"]["invoice_number"].startswith(r"Réf\.\s+pièce")
    assert data["options"]["date_formats"] == ["%d.%m.%Y"] and data["options"]["decimal_separator"] == ","
    new_document(session, storage, tid, make_new_layout_pdf(number="PC-9", total=Decimal("7.00")),
                           "application/pdf", "sibling.pdf")
    unrelated = new_document(session, storage, tid, make_new_layout_pdf(vat="FR 83 404 833 048"),
                             "application/pdf", "other-issuer.pdf")
    report = svc.try_on_documents(session, storage, tid, draft, doc.id)
    assert report.document.fields["number"] == "PC-77-1042"
    assert report.document.fields["amount"] == "3456.78" and report.document.fields["issue_date"] == "2026-10-07"
    by_name = {trial.filename: trial for trial in report.others}
    assert by_name["sibling.pdf"].fields["number"] == "PC-9" and by_name["sibling.pdf"].fields["amount"] == "7.00"
    assert by_name["other-issuer.pdf"].matched is False and not by_name["other-issuer.pdf"].fields
    assert report.matching_others == 1 and unrelated.id in {t.document_id for t in report.others}
    with pytest.raises(NotFound):
        svc.draft_from_document(session, storage, tid + 1000, doc.id)


# Dashboard -------------------------------------------------------------------------------------


def _client(app: Flask, email: str, password: str):
    client = app.test_client()
    assert login(client, email, password).status_code == 302
    return client


def test_dashboard_create_from_document_test_save_and_isolation(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture
):
    tid = tenant.tenant.id
    doc = extract(session, storage, new_document(session, storage, tid, make_new_layout_pdf(),
                                                 "application/pdf", "a.pdf"))
    doc.issuer, doc.issue_date, doc.amount = ISSUER, date(2026, 10, 7), Decimal("3456.78")
    session.commit()
    client = _client(app, tenant.admin.email, tenant.password)
    review = client.get(f"/documents/{doc.id}").get_data(as_text=True)
    assert f'href="/documents/{doc.id}/template"' in review
    page = client.get(f"/documents/{doc.id}/template")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "FR 40 303 265 045" in body and "PC-77-1042" in body  # the draft, tried on the document
    token = csrf_token(page)
    source = re.search(r'<textarea[^>]*name="source"[^>]*>(.*?)</textarea>', body, re.S).group(1)
    import html

    source = html.unescape(source)
    tested = client.post("/settings/templates/new", data={"csrf_token": token, "action": "test", "name": "Mérov",
                                                          "source": source, "document_id": str(doc.id)})
    assert tested.status_code == 200 and "3456.78" in tested.get_data(as_text=True)
    bad = client.post("/settings/templates/new", data={"csrf_token": token, "action": "save", "name": "Mérov",
                                                       "source": source.replace("keywords:", "keyword:")})
    assert bad.status_code == 422 and "Unknown key(s) keyword" in bad.get_data(as_text=True)
    assert client.post("/settings/templates/new", data={"action": "save", "name": "x", "source": source}
                       ).status_code == 400  # no CSRF token
    saved = client.post("/settings/templates/new", data={"csrf_token": token, "action": "save", "name": "Mérov",
                                                         "source": source, "enabled": "on"})
    assert saved.status_code == 302
    (template,) = svc.list_templates(session, tid)
    assert saved.headers["Location"].endswith(f"/settings/templates/{template.id}")
    assert "Mérov" in client.get("/settings/templates").get_data(as_text=True)

    intruder = _client(app, other_tenant.admin.email, other_tenant.password)
    other_token = csrf_token(intruder.get("/settings/templates"))
    assert "Mérov" not in intruder.get("/settings/templates").get_data(as_text=True)
    assert intruder.get(f"/settings/templates/{template.id}").status_code == 404
    assert intruder.get(f"/documents/{doc.id}/template").status_code == 404
    assert intruder.post(f"/settings/templates/{template.id}/delete", data={"csrf_token": other_token}
                         ).status_code == 404
    assert intruder.post("/settings/templates/new", data={"csrf_token": other_token, "action": "test",
                                                          "source": source, "document_id": str(doc.id)}
                         ).status_code == 404

    deleted = client.post(f"/settings/templates/{template.id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302 and svc.list_templates(session, tid) == []


def test_support_staff_read_templates_but_cannot_change_them(app: Flask, session: Session, tenant: TenantFixture):
    template = svc.create_template(session, tenant.tenant.id, "Mérov", GOOD, tenant.admin)
    accounts.create_user(session, "staff@operator.example", tenant.password, tenant.tenant, Role.SUPPORT)
    session.commit()
    support = _client(app, "staff@operator.example", tenant.password)
    page = support.get(f"/settings/templates/{template.id}")
    assert page.status_code == 200 and "readonly" in page.get_data(as_text=True)
    token = csrf_token(page)
    assert support.post(f"/settings/templates/{template.id}", data={"csrf_token": token, "action": "save",
                                                                    "name": "x", "source": GOOD}).status_code == 403
    assert support.post(f"/settings/templates/{template.id}/delete", data={"csrf_token": token}).status_code == 403


# API -------------------------------------------------------------------------------------------


def test_api_twins(app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture,
                   other_tenant: TenantFixture):
    client = app.test_client()
    ours, theirs = ({"Authorization": f"Bearer {t.token}"} for t in (tenant, other_tenant))
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, make_new_layout_pdf(),
                                                 "application/pdf", "a.pdf"))
    doc.issuer, doc.issue_date, doc.amount = ISSUER, date(2026, 10, 7), Decimal("3456.78")
    session.commit()

    draft = client.get(f"/api/v1/documents/{doc.id}/template-draft", headers=ours)
    assert draft.status_code == 200 and VAT in draft.get_json()["source"]
    assert client.get(f"/api/v1/documents/{doc.id}/template-draft", headers=theirs).status_code == 404

    tested = client.post("/api/v1/templates/test", headers=ours,
                         json={"source": GOOD, "document_id": doc.id, "others": 5})
    assert tested.status_code == 200
    assert tested.get_json()["document"]["fields"]["amount"] == "3456.78"
    assert client.post("/api/v1/templates/test", headers=theirs,
                       json={"source": GOOD, "document_id": doc.id}).status_code == 404

    refused = client.post("/api/v1/templates", headers=ours, json={"name": "x", "source": "issuer: X\n"})
    assert refused.status_code == 422
    assert any("keywords" in p for p in refused.get_json()["problems"])
    assert client.post("/api/v1/templates", headers=ours, json={"name": "x", "source": GOOD, "colour": 1}
                       ).status_code == 422
    created = client.post("/api/v1/templates", headers=ours, json={"name": "Mérov", "source": GOOD})
    assert created.status_code == 201
    template_id = created.get_json()["id"]
    assert [t["name"] for t in client.get("/api/v1/templates", headers=ours).get_json()["items"]] == ["Mérov"]
    assert client.get("/api/v1/templates", headers=theirs).get_json()["items"] == []
    assert client.get(f"/api/v1/templates/{template_id}", headers=ours).get_json()["source"] == GOOD
    for method in ("GET", "PATCH", "DELETE"):
        assert client.open(f"/api/v1/templates/{template_id}", method=method, headers=theirs,
                           json={"enabled": False}).status_code == 404, method
    patched = client.patch(f"/api/v1/templates/{template_id}", headers=ours, json={"enabled": False})
    assert patched.status_code == 200 and patched.get_json()["enabled"] is False
    assert patched.get_json()["version"] == 2
    assert client.delete(f"/api/v1/templates/{template_id}", headers=ours).status_code == 204
    assert client.get(f"/api/v1/templates/{template_id}", headers=ours).status_code == 404
    assert session.query(Document).count() == 1


def test_worker_parent_compiles_templates_before_forking(settings, session: Session, tenant: TenantFixture):
    """``refresh_templates`` (run by the worker's parent before each fork, rate-limited) leaves the company's
    templates compiled in the parent, so the forked job finds them in the cache."""
    from worker import jobs

    svc.create_template(session, tenant.tenant.id, "Mérov", GOOD, tenant.admin)
    session.commit()
    templated.forget_tenant(tenant.tenant.id)
    jobs.configure(settings)
    try:
        jobs.refresh_templates(now=jobs._templates_checked + jobs.TEMPLATE_REFRESH_SECONDS + 1)
        cached = templated._tenants[tenant.tenant.id][1]
        assert cached.own == 1
        assert svc.templates_for_extraction(session, tenant.tenant.id) is cached  # the job: no recompilation
        templated.forget_tenant(tenant.tenant.id)
        jobs.refresh_templates(now=jobs._templates_checked + 1)  # too soon: nothing done
        assert tenant.tenant.id not in templated._tenants
    finally:
        jobs.configure(None)
