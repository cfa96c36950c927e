"""Issue 13 item 8: a validation teaches the issuer's layout; the next document of that issuer is read with it.

Through the real path: the worker's extraction service reads a real invoice (the corpus's plumber, rwd09),
a person validates it through the validation service (the one the dashboard and the API call), then the
worker reads the issuer's next invoice (rwd10). On SQLite and PostgreSQL (``session`` fixture).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.documents import issuer_profiles
from core.documents import review as documents
from core.errors import ServiceError
from core.models import InboundMessage
from core.models_profiles import IssuerProfile, IssuerProfileKey
from tests.corpus import CORPUS
from tests.test_extraction_pipeline import extract, new_document

REAL = CORPUS / "realworld"
pytestmark = pytest.mark.skipif(not (REAL / "rwd09.pdf").exists(), reason=f"the shared corpus is not at {REAL}")

FIRST = {  # rwd09, as MANIFEST.tsv gives it: what the reviewer confirms
    "doc_type": "invoice", "number": "INV03051", "issue_date": "2018-10-18", "due_date": "2018-12-17",
    "amount": "1536.52", "net_amount": "1436.00", "tax_amount": "100.52", "currency": "USD",
    "issuer": "Stanford Plumbing & Heating", "client": "Christopher Rodriguez",
}
SECOND = {  # rwd10: the same issuer's next invoice
    "doc_type": "invoice", "number": "INV08664", "issue_date": date(2018, 11, 19), "due_date": date(2019, 1, 18),
    "amount": Decimal("866.16"), "net_amount": Decimal("802.00"), "tax_amount": Decimal("64.16"), "currency": "USD",
    "issuer": "Stanford Plumbing & Heating", "client": "Dominic Carter",
}


def read(session, storage, tenant_id: int, name: str):
    doc = new_document(session, storage, tenant_id, (REAL / name).read_bytes(), "application/pdf", name)
    return extract(session, storage, doc)


def validate(session, tenant, doc, data=FIRST):
    invoice = documents.validate_document(session, tenant.tenant.id, doc.id, dict(data), tenant.admin.id)
    session.commit()
    return invoice


def values(doc) -> dict:
    return {name: getattr(doc, name) for name in SECOND}


def test_the_second_document_of_an_issuer_is_read_from_memory(session, storage, tenant):
    before = read(session, storage, tenant.tenant.id, "rwd10.pdf")  # no profile yet: the generic reading
    assert before.extraction_details.get("issuer_profile") is None
    assert values(before) != SECOND  # the generic extractor misses the net and tax of this layout

    validate(session, tenant, read(session, storage, tenant.tenant.id, "rwd09.pdf"))
    profile = session.scalars(select(IssuerProfile)).one()
    assert profile.tenant_id == tenant.tenant.id and profile.name == "Stanford Plumbing & Heating"

    documents.discard_document(session, tenant.tenant.id, before.id)  # its twin would be a duplicate
    session.commit()
    after = read(session, storage, tenant.tenant.id, "rwd10.pdf")
    assert values(after) == SECOND
    assert after.extraction_details["issuer_profile"]["id"] == profile.id
    assert after.extraction_details["issuer_profile"]["matched_by"] == "name"
    for name in ("number", "net_amount", "tax_amount", "client", "issue_date", "due_date"):
        assert after.field_info[name]["source"] == "memory", name
        assert after.field_info[name]["confidence"] >= 0.85, name


def test_a_profile_serves_its_tenant_only(session, storage, tenant, other_tenant):
    validate(session, tenant, read(session, storage, tenant.tenant.id, "rwd09.pdf"))
    theirs = read(session, storage, other_tenant.tenant.id, "rwd10.pdf")
    assert theirs.extraction_details.get("issuer_profile") is None
    assert all(info.get("source") != "memory" for info in theirs.field_info.values())
    assert theirs.net_amount is None  # what only the other tenant's memory knows how to read


def test_no_profile_is_learned_when_the_issuer_cannot_be_identified(session, storage, tenant):
    doc = read(session, storage, tenant.tenant.id, "rwd09.pdf")  # no VAT id, no IBAN, no sender
    validate(session, tenant, doc, FIRST | {"issuer": ""})
    assert session.scalar(select(func.count()).select_from(IssuerProfile)) == 0


def test_learning_again_from_the_same_validation_changes_nothing(session, storage, tenant):
    doc = read(session, storage, tenant.tenant.id, "rwd09.pdf")
    invoice = validate(session, tenant, doc)
    profile = session.scalars(select(IssuerProfile)).one()
    data, keys = dict(profile.data), session.scalar(select(func.count()).select_from(IssuerProfileKey))
    with pytest.raises(ServiceError):
        validate(session, tenant, doc)
    again = issuer_profiles.learn_from_validation(session, doc, invoice)
    session.commit()
    assert again is not None and again.id == profile.id
    assert again.data == data and again.documents == 1
    assert session.scalar(select(func.count()).select_from(IssuerProfileKey)) == keys


def test_the_issuer_is_recognised_by_the_domain_that_sends_its_invoices(session, storage, tenant):
    def mailed(name: str, sender: str):
        message = InboundMessage(tenant_id=tenant.tenant.id, recipient=tenant.address, sender=sender,
                                 raw_key=f"raw/{name}", raw_sha256="0" * 64, raw_size=1)
        session.add(message)
        session.flush()
        doc = new_document(session, storage, tenant.tenant.id, (REAL / name).read_bytes(), "application/pdf", name)
        doc.message_id = message.id
        session.commit()
        return extract(session, storage, doc)

    # The person names the issuer differently from its letterhead: only the sending domain ties the two.
    validate(session, tenant, mailed("rwd09.pdf", "Billing <billing@plumbingstanford.example>"),
             FIRST | {"issuer": "Stanford P&H (plumber)"})
    keys = set(session.execute(select(IssuerProfileKey.kind, IssuerProfileKey.value)).all())
    assert ("domain", "plumbingstanford.example") in keys

    after = mailed("rwd10.pdf", "Accounts <accounts@plumbingstanford.example>")
    assert after.extraction_details["issuer_profile"]["matched_by"] == "domain"
    assert after.issuer == "Stanford P&H (plumber)"
    assert after.field_info["issuer"].get("inferred") is True  # not printed: a person is asked to check it
    assert after.field_info["issuer"]["confidence"] < 0.8
    assert (after.net_amount, after.client) == (SECOND["net_amount"], SECOND["client"])

    public = mailed("rwd11.pdf", "someone@gmail.com")  # a public provider's domain recognises nobody
    assert public.extraction_details.get("issuer_profile") is None


def test_the_learning_figure_does_not_fall_on_the_text_pdfs_of_the_corpus():
    """A floor on bench/learning.py's figure (its text-layer documents; the OCR ones take a minute)."""
    from bench import learning

    truth = learning.load_truth()
    manifest = (REAL / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    text_pdfs = {line.split("\t")[0].rsplit(".", 1)[0] for line in manifest[1:] if "\tpdf-text\t" in line}
    texts = {name: learning.read_text(truth[name]["_file"][0]) for name in sorted(text_pdfs)}
    pairs = [p for p in learning.build_pairs({n: truth[n] for n in texts}, texts) if p.same_issuer]
    for pair in pairs:
        learning.run_pair(pair)
    scored = sum(len(p.scored) for p in pairs)
    before = sum(sum(p.results["before"].values()) for p in pairs)
    after = sum(sum(p.results["after_mail"].values()) for p in pairs)
    assert scored > 150 and len(pairs) >= 25
    assert after / scored >= 0.98, (after, scored)
    assert after > before


def test_a_key_alone_does_not_impose_a_profile_on_another_layout(session, storage, tenant):
    """The same sending domain (a colleague forwarding, a billing platform) on another issuer's invoice:
    neither the profile's issuer name nor its labels are on the page, so it is not used."""
    message = InboundMessage(tenant_id=tenant.tenant.id, recipient=tenant.address, sender="ap@forwarder.example",
                             raw_key="raw/1", raw_sha256="0" * 64, raw_size=1)
    session.add(message)
    session.flush()
    first = new_document(session, storage, tenant.tenant.id, (REAL / "rwd09.pdf").read_bytes(), "application/pdf",
                         "rwd09.pdf")
    first.message_id = message.id
    session.commit()
    validate(session, tenant, extract(session, storage, first))

    other = new_document(session, storage, tenant.tenant.id, (REAL / "rwd24.pdf").read_bytes(), "application/pdf",
                         "rwd24.pdf")
    other.message_id = message.id
    other.part_index = 1
    session.commit()
    other = extract(session, storage, other)
    assert other.extraction_details.get("issuer_profile") is None
    assert other.issuer != "Stanford Plumbing & Heating"
    assert all(info.get("source") != "memory" for info in other.field_info.values())



def test_issuers_sent_by_one_forwarder_keep_their_own_profiles(session, storage, tenant):
    """Review fix-limits 5: a shared sending domain (a forwarder, a billing platform) matched the first
    issuer's profile at learning, so every issuer sent that way was merged into it. Learning reuses a profile
    only for a VAT id, an IBAN or the same name; the shared domain then recognises nobody, and the second
    issuer's next document is read with its own profile, found by the name on the page."""
    message = InboundMessage(tenant_id=tenant.tenant.id, recipient=tenant.address, sender="ap@forwarder.example",
                             raw_key="raw/1", raw_sha256="0" * 64, raw_size=1)
    session.add(message)
    session.flush()

    def forwarded(name: str, part: int):
        doc = new_document(session, storage, tenant.tenant.id, (REAL / name).read_bytes(), "application/pdf", name)
        doc.message_id, doc.part_index = message.id, part
        session.commit()
        return extract(session, storage, doc)

    adventure = {"doc_type": "invoice", "number": "3427435437", "issue_date": "2017-05-02",
                 "due_date": "2017-06-01", "amount": "1002.00", "currency": "USD", "issuer": "AdventureWorks",
                 "client": "Contoso"}
    validate(session, tenant, forwarded("rwd24.pdf", 0), adventure)
    validate(session, tenant, forwarded("rwd09.pdf", 1))  # another issuer, the same forwarder

    profiles = session.scalars(select(IssuerProfile).order_by(IssuerProfile.id)).all()
    assert [p.name for p in profiles] == ["AdventureWorks", "Stanford Plumbing & Heating"]
    names = {p.id: {k.value for k in p.keys if k.kind == "name"} for p in profiles}
    assert names == {profiles[0].id: {"adventureworks"}, profiles[1].id: {"stanford plumbing & heating"}}

    after = forwarded("rwd10.pdf", 2)  # Stanford's next invoice, through the same forwarder
    assert after.extraction_details["issuer_profile"]["id"] == profiles[1].id
    assert values(after) == SECOND


# The pure part (core.extraction.memory) ------------------------------------------------------------------

LAYOUT = """ACME Tools Ltd                                         INVOICE
Bill to                                   Invoice No:     {number}
{client}                                  Date:           {issued}
                                          Total due:      {amount} EUR
"""


def _doc(number: str, client: str, issued: str, amount: str) -> str:
    return LAYOUT.format(number=number, client=client, issued=issued, amount=amount)


def test_memory_reads_at_the_learned_places_and_leaves_template_fields_alone():
    from core.extraction import memory
    from core.extraction.result import Extraction

    truth = {"number": "AT-1001", "client": "Globex", "issue_date": date(2026, 3, 5), "amount": Decimal("120.00"),
             "currency": "EUR", "issuer": "ACME Tools Ltd"}
    profile = memory.learn(_doc("AT-1001", "Globex", "03/05/2026", "120.00"), truth, document="1")
    assert profile["date_order"] == "mdy"  # 03/05 was read as March 5 by the person: month first
    second = _doc("AT-1002", "Initech", "04/07/2026", "75.50")
    result = Extraction()
    result.set("number", "FROM-TEMPLATE", "invoice2data:acme", 0.99)
    memory.apply(profile, second, result, keep={"number"})
    assert result.fields["number"] == "FROM-TEMPLATE"  # a template's value wins
    assert result.fields["client"] == "Initech" and result.field_info["client"]["source"] == "memory"
    assert result.fields["issue_date"] == date(2026, 4, 7)  # the issuer's month-first order
    assert result.fields["amount"] == Decimal("75.50")


def test_a_profile_stays_small_whatever_it_learns():
    from core.extraction import memory

    profile: dict = {}
    for i in range(60):
        text = _doc(f"AT-{i}", f"Client {i} " + "x" * 500, "03/05/2026", "120.00") * 20
        profile = memory.learn(text, {"number": f"AT-{i}", "client": f"Client {i} " + "x" * 500,
                                      "issuer": f"Wrong {i}"},
                               extracted={"client": f"misread {i}", "issuer": f"ACME {i}"}, previous=profile,
                               document=str(i))
    assert len(profile["documents"]) == memory.MAX_DOCUMENTS
    for entry in profile["fields"].values():
        assert len(entry["anchors"]) <= memory.MAX_ANCHORS
        assert len(entry.get("corrections", {})) <= memory.MAX_CORRECTIONS
        assert all(len(a.get("label", "")) <= memory.MAX_LABEL for a in entry["anchors"])
    assert len(str(profile)) < 20_000


def test_a_validation_through_the_api_teaches_the_profile_too(app, session, storage, tenant):
    from tests.test_api import Api

    api = Api(app.test_client(), tenant.token)
    first = read(session, storage, tenant.tenant.id, "rwd09.pdf")
    body = {("type" if name == "doc_type" else name): value for name, value in FIRST.items()}  # the API's names
    response = api.post(f"/documents/{first.id}/validate", json=body)
    assert response.status_code == 200, response.get_json()
    session.expire_all()
    profile = session.scalars(select(IssuerProfile)).one()
    assert profile.tenant_id == tenant.tenant.id and profile.documents == 1
    assert values(read(session, storage, tenant.tenant.id, "rwd10.pdf")) == SECOND
