"""The company itself is never taken as its own client (issue 13, item 3): by its legal name (read exactly or
a little wrong) and its VAT number, on the worker's real path and the real database."""

from __future__ import annotations

from core.models import Client
from core.receivables.clients import prefill_client
from tests.invoicegen import make_invoice_pdf
from tests.test_extraction_pipeline import extract, new_document

OUR_VAT = "FR40303265045"


def _identity(session, tenant, legal_name: str = "Dupont Conseil SARL") -> None:
    tenant.tenant.legal_name, tenant.tenant.vat_number = legal_name, OUR_VAT
    session.commit()


def test_our_name_read_as_the_client_makes_the_document_a_purchase(session, storage, tenant):
    # A document addressed to us (our name read slightly wrong as its client) is a supplier invoice
    # (issue 18: the direction is decided first); the parties are not turned round.
    _identity(session, tenant)
    session.add(Client(tenant_id=tenant.tenant.id, name="Kunden AG", normalized_name="kunden ag"))
    session.commit()
    pdf = make_invoice_pdf(issuer="Kunden AG", client="Dupont Conseill S.A.R.L.")
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, pdf, "application/pdf", "f.pdf"))
    assert doc.direction == "payable", (doc.direction, doc.field_info.get("direction"))
    assert doc.issuer == "Kunden AG"


def test_our_name_is_never_proposed_as_a_new_client(session, tenant):
    _identity(session, tenant)
    fields = {"client": "DUPONT CONSEIL", "issuer": "DUPONT CONSEIL SARL"}
    info = {"client": {"source": "generic", "confidence": 0.85}, "issuer": {"source": "generic", "confidence": 0.6}}
    assert prefill_client(session, tenant.tenant.id, fields, info, []) is None
    assert "client" not in fields and "client" not in info  # left for the reviewer to enter


def test_our_vat_number_names_no_client(session, tenant):
    _identity(session, tenant)
    # A client record that carries our VAT number by mistake, and another with its own.
    session.add(Client(tenant_id=tenant.tenant.id, name="Wrong Record", normalized_name="wrong record", vat_id=OUR_VAT))
    session.add(Client(tenant_id=tenant.tenant.id, name="Kunden AG", normalized_name="kunden ag",
                       vat_id="DE136695976"))
    session.commit()
    fields = {"client": "Somebody Else GmbH"}
    info = {"client": {"source": "generic", "confidence": 0.85}}
    assert prefill_client(session, tenant.tenant.id, dict(fields), dict(info), ["FR 40 303 265 045"]) is None
    match = prefill_client(session, tenant.tenant.id, fields, info, [OUR_VAT, "DE136695976"])
    assert match is not None and match.name == "Kunden AG" and match.method == "vat_id"


def test_without_a_legal_name_the_display_name_decides_nothing(session, tenant):
    # The tenant is "Acme SAS" by its display name only: a client of that name is still matched as before.
    session.add(Client(tenant_id=tenant.tenant.id, name="ACME S.A.S.", normalized_name="acme s.a.s."))
    session.commit()
    fields = {"client": "Acme SAS", "issuer": "Dupont Conseil SARL"}
    info = {"client": {"source": "generic", "confidence": 0.85}}
    match = prefill_client(session, tenant.tenant.id, fields, info, [])
    assert match is not None and fields["client"] == "ACME S.A.S." and fields["issuer"] == "Dupont Conseil SARL"
