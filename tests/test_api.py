"""The JSON API (/api/v1) through the Flask test client, on a real migrated database and real storage."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select

from core.documents import review as documents
from core.files.storage import FileStorage, sha256_hex
from core.inbound import intake
from core.models import (
    ApiToken,
    Document,
    DocumentStatus,
    InboundMessage,
    Invoice,
    MessageStatus,
    Role,
    StoredFile,
    utcnow,
)
from core.tenancy import accounts
from tests.conftest import PASSWORD

FIELDS: dict[str, Any] = {
    "doc_type": "invoice",
    "number": "FA-2026-001",
    "title": "Consulting, January",
    "client": "Client SA",
    "issuer": "Acme SAS",
    "amount": Decimal("1200.00"),
    "net_amount": Decimal("1000.00"),
    "tax_amount": Decimal("200.00"),
    "currency": "EUR",
    "issue_date": date(2026, 1, 15),
    "due_date": date(2026, 2, 14),
}


# Helpers -------------------------------------------------------------------------------------


class Api:
    """The test client with one bearer token."""

    def __init__(self, client, token: str) -> None:
        self.client, self.token = client, token

    def request(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)


def pdf_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=1)
    canvas.drawString(72, 750, text)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def store_file(session, storage: FileStorage, tenant_id: int, data: bytes, content_type: str) -> StoredFile:
    digest = sha256_hex(data)
    key = FileStorage.file_key(tenant_id, digest)
    storage.write(key, data)
    stored = StoredFile(tenant_id=tenant_id, sha256=digest, size=len(data), content_type=content_type, storage_key=key)
    session.add(stored)
    session.flush()
    return stored


def add_document(
    session,
    storage: FileStorage,
    tenant_id: int,
    *,
    filename: str = "facture.pdf",
    status: DocumentStatus = DocumentStatus.PENDING,
    message_id: int | None = None,
    content_type: str = "application/pdf",
    data: bytes | None = None,
    **fields: Any,
) -> Document:
    """A document as the worker leaves it: its file stored, its fields extracted (``FIELDS`` overridden)."""
    values = FIELDS | fields
    data = data if data is not None else pdf_bytes(f"{tenant_id} {values['number']} {filename}")
    stored = store_file(session, storage, tenant_id, data, content_type)
    doc = Document(
        tenant_id=tenant_id,
        message_id=message_id,
        file_id=stored.id,
        filename=filename,
        status=status.value,
        extraction_source="test",
        field_info={"number": {"source": "text", "confidence": 0.9}},
        **values,
    )
    session.add(doc)
    session.commit()
    return doc


def add_user(session, tenant, email: str, role: Role) -> str:
    """A token of a new user with ``role`` in ``tenant``."""
    user = accounts.create_user(session, email, PASSWORD, tenant.tenant, role)
    token = accounts.create_token(session, user, tenant.tenant)
    session.commit()
    return token


def refreshed(session) -> None:
    """Forget what this session read: the app wrote through its own connection meanwhile."""
    session.rollback()


# Fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client, tenant) -> Api:
    return Api(client, tenant.token)


@pytest.fixture
def other_api(client, other_tenant) -> Api:
    return Api(client, other_tenant.token)


@pytest.fixture
def doc(session, storage, tenant) -> Document:
    return add_document(session, storage, tenant.tenant.id)


@pytest.fixture
def duplicate(session, storage, tenant, api) -> tuple[Document, Document, int]:
    """(original A, validated; B with the same number, put in duplicate by the extraction service; A's invoice id)."""
    original = add_document(session, storage, tenant.tenant.id, filename="a.pdf")
    invoice_id = api.post(f"/documents/{original.id}/validate").get_json()["id"]
    refreshed(session)
    again = add_document(session, storage, tenant.tenant.id, filename="b.pdf", status=DocumentStatus.EXTRACTING)
    documents.finish_extraction(session, again, {"number": " fa-2026-001", "doc_type": "invoice"}, {}, "test")
    session.commit()
    assert again.status == DocumentStatus.DUPLICATE.value and again.duplicate_of_id == invoice_id
    return original, again, invoice_id


# Authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="}, {"Authorization": "Token x"}],
)
def test_missing_token_is_401_with_bearer_challenge(client, tenant, headers):
    resp = client.get("/api/v1/tenant", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert resp.is_json and "error" in resp.get_json()


def test_invalid_token_is_401(client, tenant):
    resp = Api(client, tenant.token + "x").get("/tenant")
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert resp.get_json() == {"error": "the token is invalid or revoked"}


def test_revoked_token_and_inactive_user_are_401(session, client, tenant):
    assert Api(client, tenant.token).get("/tenant").status_code == 200
    token = session.scalars(select(ApiToken)).one()
    token.revoked_at = utcnow()
    session.commit()
    assert Api(client, tenant.token).get("/tenant").status_code == 401

    other = add_user(session, tenant, "former@acme.example", Role.MEMBER)
    user = accounts.find_user(session, "former@acme.example")
    user.is_active = False
    session.commit()
    assert Api(client, other).get("/tenant").status_code == 401


def test_scheme_is_case_insensitive_and_last_used_at_is_recorded(session, client, tenant):
    assert session.scalars(select(ApiToken)).one().last_used_at is None
    resp = client.get("/api/v1/tenant", headers={"Authorization": f"bearer {tenant.token}"})
    assert resp.status_code == 200
    refreshed(session)
    assert session.scalars(select(ApiToken)).one().last_used_at is not None


def test_session_cookie_does_not_authenticate(client, tenant):
    # What Flask-Login keeps in the session cookie of a signed-in browser.
    with client.session_transaction() as cookie_session:
        cookie_session["_user_id"] = str(tenant.admin.id)
        cookie_session["_fresh"] = True
    resp = client.get("/api/v1/tenant")
    assert resp.status_code == 401
    resp = client.post("/api/v1/documents/1/validate", json={})
    assert resp.status_code == 401


def test_posts_need_no_csrf_token(app, api, doc):
    assert app.config.get("WTF_CSRF_ENABLED", True)  # CSRF is on for the dashboard ...
    resp = api.post(f"/documents/{doc.id}/validate", json={})  # ... yet the API, exempt, needs no token
    assert resp.status_code == 200, resp.get_json()


# Tenant --------------------------------------------------------------------------------------


def test_tenant(api, tenant):
    assert api.get("/tenant").get_json() == {
        "id": tenant.tenant.id,
        "name": "Acme SAS",
        "inbound_address": tenant.address,
        # Issue 18: the company's identity and approval policy, empty until set (PUT /tenant).
        "legal_name": None, "country": None, "siren": None, "vat_number": None, "iban": None,
        "approval_mode": "none", "approval_threshold": None,
        # Calendar fiscal years by default; DATEV's numbers empty until set.
        "fiscal_year_end": "12-31", "datev_consultant_number": None, "datev_client_number": None,
    }


def test_tenant_is_the_tokens_tenant(other_api, other_tenant):
    assert other_api.get("/tenant").get_json()["name"] == "Globex SARL"


# Messages ------------------------------------------------------------------------------------


def _message(session, storage, tenant, subject: str, status: MessageStatus) -> InboundMessage:
    raw = f"From: Dupont <billing@dupont.example>\r\nSubject: {subject}\r\n\r\nHello\r\n".encode()
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    message.status = status.value
    session.commit()
    return message


def test_messages_list_with_documents_and_status_filter(session, storage, api, other_api, tenant):
    processed = _message(session, storage, tenant, "Facture FA-2026-001", MessageStatus.PROCESSED)
    doc = add_document(session, storage, tenant.tenant.id, message_id=processed.id)
    waiting = _message(session, storage, tenant, "Relance", MessageStatus.RECEIVED)

    body = api.get("/messages").get_json()
    assert body["total"] == 2 and [m["id"] for m in body["items"]] == [waiting.id, processed.id]
    item = body["items"][1]
    assert item == {
        "id": processed.id,
        "status": "processed",
        "reason": None,
        "reason_code": None,  # reasons as data (core/reasons.py)
        "reason_params": None,
        "sender": "Dupont <billing@dupont.example>",
        "recipient": tenant.address,
        "subject": "Facture FA-2026-001",
        "received_at": item["received_at"],
        "source": "smtp",
        "to_retiring_address": False,
        "documents": [doc.id],
    }
    assert datetime.fromisoformat(item["received_at"]).utcoffset() is not None

    filtered = api.get("/messages?status=received").get_json()
    assert [m["id"] for m in filtered["items"]] == [waiting.id]
    assert api.get("/messages?status=lost").status_code == 400
    assert other_api.get("/messages").get_json()["items"] == []


# Documents -----------------------------------------------------------------------------------


def test_document_serialization(api, doc):
    body = api.get(f"/documents/{doc.id}").get_json()
    assert body == {
        "id": doc.id,
        "status": "pending",
        "reason": None,
        "reason_code": None,
        "reason_params": None,
        "filename": "facture.pdf",
        "type": "invoice",
        "number": "FA-2026-001",
        "title": "Consulting, January",
        "client": "Client SA",
        "direction": "receivable",  # issue 18
        "issuer": "Acme SAS",
        "amount": "1200.00",
        "net_amount": "1000.00",
        "tax_amount": "200.00",
        "currency": "EUR",
        "issue_date": "2026-01-15",
        "due_date": "2026-02-14",
        "extraction_source": "test",
        "field_info": {"number": {"source": "text", "confidence": 0.9, "check": False}},  # issue 13: check flag
        "duplicate_of": None,
        "invoice_id": None,
        "message_id": None,
        "source_id": None,  # issue 4: not cut from a PDF holding several invoices
        "source_pages": None,
        "created_at": body["created_at"],
    }
    assert datetime.fromisoformat(body["created_at"]).utcoffset() is not None


def test_empty_fields_are_null(session, storage, api, tenant):
    bare = add_document(session, storage, tenant.tenant.id, amount=None, net_amount=None, due_date=None)
    body = api.get(f"/documents/{bare.id}").get_json()
    assert body["amount"] is None and body["net_amount"] is None and body["due_date"] is None


def test_documents_list_all_statuses_and_filter(session, storage, api, other_api, tenant):
    pending = add_document(session, storage, tenant.tenant.id, number="FA-1")
    failed = add_document(session, storage, tenant.tenant.id, number="FA-2", status=DocumentStatus.FAILED)
    discarded = add_document(session, storage, tenant.tenant.id, number="FA-3", status=DocumentStatus.DISCARDED)

    body = api.get("/documents").get_json()
    assert {d["id"] for d in body["items"]} == {pending.id, failed.id, discarded.id}
    assert body["items"][0]["amount"] == "1200.00"
    assert [d["id"] for d in api.get("/documents?status=failed").get_json()["items"]] == [failed.id]
    assert api.get("/documents?status=").get_json()["total"] == 3  # an empty filter is no filter
    assert api.get("/documents?status=validated").get_json()["items"] == []

    resp = api.get("/documents?status=bogus")
    assert resp.status_code == 400 and "status must be one of" in resp.get_json()["error"]
    assert other_api.get("/documents").get_json()["total"] == 0


def test_document_file_is_the_stored_bytes(session, storage, api, tenant):
    data = pdf_bytes("the original bytes")
    doc = add_document(session, storage, tenant.tenant.id, filename="Facture été 2026.pdf", data=data)
    resp = api.get(f"/documents/{doc.id}/file")
    assert resp.status_code == 200
    assert resp.data == data
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"Facture ete 2026.pdf\"; filename*=UTF-8''Facture%20%C3%A9t%C3%A9%202026.pdf"
    )


def test_document_file_name_and_type_are_made_safe(session, storage, api, tenant):
    # A sender chose the name: a quote, a separator, a path and a right-to-left override hiding ".exe".
    doc = add_document(
        session, storage, tenant.tenant.id, filename='../x/a"b;c\u202eexe.pdf', content_type="not a type"
    )
    resp = api.get(f"/documents/{doc.id}/file")
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"a_b_cexe.pdf\"; filename*=UTF-8''a%22b%3Bcexe.pdf"
    )
    html = add_document(session, storage, tenant.tenant.id, number="FA-9", filename="x.html", content_type="text/html")
    resp = api.get(f"/documents/{html.id}/file")
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in resp.headers["Content-Security-Policy"]


# Tenant isolation ----------------------------------------------------------------------------


def test_other_tenants_objects_are_404_like_missing_ones(session, storage, api, other_api, tenant, duplicate):
    original, again, invoice_id = duplicate
    routes = [
        ("GET", f"/documents/{again.id}", f"/documents/{10**6}"),
        ("GET", f"/documents/{again.id}/file", f"/documents/{10**6}/file"),
        ("POST", f"/documents/{again.id}/validate", f"/documents/{10**6}/validate"),
        ("POST", f"/documents/{again.id}/duplicate", f"/documents/{10**6}/duplicate"),
        ("GET", f"/invoices/{invoice_id}", f"/invoices/{10**6}"),
    ]
    for method, path, missing in routes:
        body = {"action": "link"} if path.endswith("duplicate") else {}
        foreign = other_api.request(method, path, json=body)
        absent = other_api.request(method, missing, json=body)
        assert foreign.status_code == absent.status_code == 404, path
        assert foreign.get_json() == absent.get_json(), path

    # Nothing changed for the owner.
    refreshed(session)
    assert session.get(Document, again.id).status == DocumentStatus.DUPLICATE.value
    for path in ("/documents", "/invoices", "/messages"):
        assert other_api.get(path).get_json()["items"] == [], path


# Pagination ----------------------------------------------------------------------------------


def test_pagination(session, storage, api, tenant):
    created = [add_document(session, storage, tenant.tenant.id, number=f"FA-{i}").id for i in range(5)]
    newest_first = sorted(created, reverse=True)

    body = api.get("/documents?per_page=2").get_json()
    assert {k: body[k] for k in ("page", "per_page", "total", "pages")} == {
        "page": 1, "per_page": 2, "total": 5, "pages": 3
    }
    assert [d["id"] for d in body["items"]] == newest_first[:2]
    assert [d["id"] for d in api.get("/documents?per_page=2&page=3").get_json()["items"]] == newest_first[4:]
    beyond = api.get("/documents?per_page=2&page=4").get_json()
    assert beyond["items"] == [] and beyond["total"] == 5

    default = api.get("/documents").get_json()
    assert default["per_page"] == 50 and default["pages"] == 1 and len(default["items"]) == 5
    assert api.get("/documents?per_page=200").get_json()["per_page"] == 200


def test_empty_list_has_one_page(api):
    assert api.get("/invoices").get_json() == {"items": [], "page": 1, "per_page": 50, "total": 0, "pages": 1}


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "page=1.5", "page=", "page=1_0", "page=%D9%A1", "page=" + "9" * 30,
     "per_page=0", "per_page=201", "per_page=-5", "per_page=x"],
)
def test_bad_page_values_are_400(api, query):
    for path in ("/documents", "/messages", "/invoices"):
        resp = api.get(f"{path}?{query}")
        assert resp.status_code == 400, (path, query)
        assert "must be an integer" in resp.get_json()["error"]


# Validation ----------------------------------------------------------------------------------


def test_validate_with_overrides(session, api, doc):
    resp = api.post(
        f"/documents/{doc.id}/validate",
        json={"type": "invoice", "number": "FA-2026-009", "client": "Nouveau Client", "amount": 1200,
              "due_date": "2026-03-01", "title": None},
    )
    assert resp.status_code == 200, resp.get_json()
    invoice = resp.get_json()
    assert invoice == {
        "id": invoice["id"],
        "type": "invoice",
        "number": "FA-2026-009",
        "title": None,
        "client": "Nouveau Client",
        "client_id": invoice["client_id"],
        "direction": "receivable",  # issue 18
        "issuer": "Acme SAS",
        "amount": "1200.00",
        "net_amount": "1000.00",
        "tax_amount": "200.00",
        "currency": "EUR",
        "issue_date": "2026-01-15",
        "due_date": "2026-03-01",
        "status": "open",
        "amount_paid": "0.00",
        "paid_at": None,  # issue 6
        "matches": [],  # issue 6
        "file_id": doc.file_id,
        "attachments": [],
        "document_id": doc.id,
        "created_at": invoice["created_at"],
    }
    assert isinstance(invoice["client_id"], int)
    assert api.get(f"/invoices/{invoice['id']}").get_json() == invoice

    document = api.get(f"/documents/{doc.id}").get_json()
    assert document["status"] == "validated" and document["invoice_id"] == invoice["id"]
    assert document["number"] == "FA-2026-009"


def test_validate_a_credit_note_needs_no_due_date(api, doc):
    resp = api.post(f"/documents/{doc.id}/validate", json={"type": "credit_note", "due_date": None})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["type"] == "credit_note" and resp.get_json()["due_date"] is None


def test_validate_errors_are_422_by_field_and_change_nothing(session, api, doc):
    resp = api.post(
        f"/documents/{doc.id}/validate",
        json={"type": "bill", "amount": "12,3,4", "currency": "XXX", "client": "", "issue_date": "15/01/2026"},
    )
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["error"] == "validation failed"
    assert set(body["fields"]) == {"type", "amount", "currency", "client", "issue_date"}
    assert body["fields"]["client"] == "required"

    refreshed(session)
    assert session.get(Document, doc.id).status == DocumentStatus.PENDING.value
    assert session.scalars(select(Invoice)).all() == []


def test_validate_checks_consistency(api, doc):
    resp = api.post(f"/documents/{doc.id}/validate", json={"amount": "1300.00", "due_date": "2026-01-01"})
    assert resp.status_code == 422
    assert set(resp.get_json()["fields"]) == {"amount", "due_date"}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"doc_type": "invoice"}, "doc_type"), ({"amout": "1"}, "amout"), ({"number": {"a": 1}}, "number"),
     ({"amount": True}, "amount"), ({"client": ["x"]}, "client")],
)
def test_validate_refuses_unknown_fields_and_non_scalars(session, api, doc, body, field):
    resp = api.post(f"/documents/{doc.id}/validate", json=body)
    assert resp.status_code == 422
    assert list(resp.get_json()["fields"]) == [field]
    refreshed(session)
    assert session.get(Document, doc.id).status == DocumentStatus.PENDING.value


def test_validate_twice_is_409_and_a_new_number_is_refused(api, doc):
    assert api.post(f"/documents/{doc.id}/validate").status_code == 200
    again = api.post(f"/documents/{doc.id}/validate", json={})
    assert again.status_code == 409 and again.get_json() == {"error": "this document is already validated"}
    renumber = api.post(f"/documents/{doc.id}/validate", json={"number": "FA-NEW"})
    assert renumber.status_code == 422 and "number" in renumber.get_json()["fields"]


def test_validate_a_number_already_used_is_409_with_the_duplicate_choice(session, storage, api, tenant, doc):
    invoice_id = api.post(f"/documents/{doc.id}/validate").get_json()["id"]
    twin = add_document(session, storage, tenant.tenant.id, filename="other.pdf", number="FA-OTHER")
    resp = api.post(f"/documents/{twin.id}/validate", json={"number": "fa-2026-001 ", "title": "Typed title"})
    body = resp.get_json()
    assert resp.status_code == 409 and body["choices"] == ["link", "replace", "discard"]
    assert body["duplicate_of"] == invoice_id and "FA-2026-001" in body["error"]
    assert body["document"]["status"] == "duplicate" and body["document"]["title"] == "Typed title"
    refreshed(session)
    session.expire_all()
    assert session.get(Document, twin.id).number == "fa-2026-001"  # what the caller typed is kept
    assert api.post(f"/documents/{twin.id}/validate").status_code == 409  # waiting for the choice now
    linked = api.post(f"/documents/{twin.id}/duplicate", json={"action": "link"})
    assert linked.status_code == 200 and linked.get_json()["invoice_id"] == invoice_id
    files = api.get(f"/invoices/{invoice_id}").get_json()
    assert files["attachments"] == [session.get(Document, twin.id).file_id]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [({"data": "{not json", "content_type": "application/json"}, 400),
     ({"json": ["a", "list"]}, 400),
     ({"data": "number=1", "content_type": "application/x-www-form-urlencoded"}, 415)],
)
def test_malformed_bodies(api, doc, kwargs, status):
    resp = api.post(f"/documents/{doc.id}/validate", **kwargs)
    assert resp.status_code == status and resp.is_json and "error" in resp.get_json()


# Duplicates ----------------------------------------------------------------------------------


def test_duplicate_is_listed_with_its_original(api, duplicate):
    _original, again, invoice_id = duplicate
    body = api.get(f"/documents/{again.id}").get_json()
    assert body["status"] == "duplicate" and body["duplicate_of"] == invoice_id
    assert "already been imported" in body["reason"]
    # The reason as data: its catalogue template and the original's number (core/reasons.py).
    assert body["reason_code"].startswith("It seems this invoice has already been imported")
    assert body["reason"] == body["reason_code"].format(**(body["reason_params"] or {}))
    assert [d["id"] for d in api.get("/documents?status=duplicate").get_json()["items"]] == [again.id]


def test_duplicate_link(api, duplicate):
    original, again, invoice_id = duplicate
    resp = api.post(f"/documents/{again.id}/duplicate", json={"action": "link"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "validated" and resp.get_json()["invoice_id"] == invoice_id
    invoice = api.get(f"/invoices/{invoice_id}").get_json()
    assert invoice["file_id"] == original.file_id and invoice["attachments"] == [again.file_id]
    assert invoice["document_id"] == original.id


def test_duplicate_replace(api, duplicate):
    original, again, invoice_id = duplicate
    resp = api.post(f"/documents/{again.id}/duplicate", json={"action": "replace"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "validated"
    invoice = api.get(f"/invoices/{invoice_id}").get_json()
    assert invoice["file_id"] == again.file_id and invoice["document_id"] == again.id
    assert invoice["attachments"] == [original.file_id]  # the replaced file is kept


def test_duplicate_discard(api, duplicate):
    original, again, invoice_id = duplicate
    resp = api.post(f"/documents/{again.id}/duplicate", json={"action": "discard"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "discarded" and resp.get_json()["invoice_id"] is None
    invoice = api.get(f"/invoices/{invoice_id}").get_json()
    assert invoice["file_id"] == original.file_id and invoice["attachments"] == []
    again_twice = api.post(f"/documents/{again.id}/duplicate", json={"action": "discard"})
    assert again_twice.status_code == 409


@pytest.mark.parametrize("body", [{"action": "merge"}, {}, {"action": None}, None])
def test_duplicate_needs_a_known_action(api, duplicate, body):
    _original, again, _invoice_id = duplicate
    kwargs = {} if body is None else {"json": body}  # None: no body at all
    resp = api.post(f"/documents/{again.id}/duplicate", **kwargs)
    assert resp.status_code == 400 and "action" in resp.get_json()["error"]


def test_duplicate_decision_on_a_pending_document_is_409(api, doc):
    resp = api.post(f"/documents/{doc.id}/duplicate", json={"action": "link"})
    assert resp.status_code == 409
    assert resp.get_json() == {"error": "this document is not waiting for a duplicate decision"}


# Invoices ------------------------------------------------------------------------------------


def test_invoices_list_and_filters(session, storage, api, other_api, tenant):
    invoice_doc = add_document(session, storage, tenant.tenant.id, number="FA-1")
    credit_doc = add_document(session, storage, tenant.tenant.id, number="AV-1", doc_type="credit_note")
    invoice_id = api.post(f"/documents/{invoice_doc.id}/validate").get_json()["id"]
    credit_id = api.post(f"/documents/{credit_doc.id}/validate").get_json()["id"]

    body = api.get("/invoices").get_json()
    assert {i["id"] for i in body["items"]} == {invoice_id, credit_id} and body["total"] == 2
    assert all(isinstance(i["amount"], str) for i in body["items"])
    assert [i["id"] for i in api.get("/invoices?type=credit_note").get_json()["items"]] == [credit_id]
    assert [i["id"] for i in api.get("/invoices?type=invoice&status=open").get_json()["items"]] == [invoice_id]
    assert api.get("/invoices?status=paid").get_json()["items"] == []
    assert api.get("/invoices?type=receipt").status_code == 400
    assert api.get("/invoices?status=late").status_code == 400
    assert other_api.get("/invoices").get_json()["total"] == 0


# Roles ---------------------------------------------------------------------------------------


def test_support_role_reads_but_cannot_write(session, storage, client, tenant, duplicate):
    _original, again, invoice_id = duplicate
    support = Api(client, add_user(session, tenant, "support@operator.example", Role.SUPPORT))
    pending = add_document(session, storage, tenant.tenant.id, number="FA-7")

    for path in ("/tenant", "/documents", "/messages", "/invoices", f"/documents/{again.id}",
                 f"/documents/{again.id}/file", f"/invoices/{invoice_id}"):
        assert support.get(path).status_code == 200, path
    validate = support.post(f"/documents/{pending.id}/validate", json={})
    assert validate.status_code == 403 and validate.get_json() == {"error": "the support role is read-only"}
    assert support.post(f"/documents/{again.id}/duplicate", json={"action": "discard"}).status_code == 403

    refreshed(session)
    assert session.get(Document, pending.id).status == DocumentStatus.PENDING.value
    assert session.get(Document, again.id).status == DocumentStatus.DUPLICATE.value


def test_member_role_may_validate(session, client, tenant, doc):
    member = Api(client, add_user(session, tenant, "member@acme.example", Role.MEMBER))
    resp = member.post(f"/documents/{doc.id}/validate")
    assert resp.status_code == 200, resp.get_json()


# Errors are JSON -----------------------------------------------------------------------------


def test_unknown_path_and_wrong_method_are_json(client, api):
    for resp in (client.get("/api/v1/nope"), client.get("/api/v1"), api.get("/documents/abc")):
        assert resp.status_code == 404 and resp.is_json and "error" in resp.get_json()
    resp = api.request("DELETE", "/documents/1")
    assert resp.status_code == 405 and resp.is_json
    assert "GET" in resp.headers["Allow"]
    resp = api.get("/documents/1/validate")
    assert resp.status_code == 405 and resp.is_json


def test_out_of_range_id_is_404(api):
    resp = api.get(f"/documents/{2**63}")
    assert resp.status_code == 404 and resp.is_json


def test_too_large_body_is_413_json(app, api, doc):
    app.config["MAX_CONTENT_LENGTH"] = 64
    resp = api.post(f"/documents/{doc.id}/validate", json={"title": "x" * 200})
    assert resp.status_code == 413 and resp.is_json and "error" in resp.get_json()


def test_server_error_is_json_and_says_nothing(app, storage, api, doc):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production instead of raising into the test
    storage.delete(doc.file.storage_key)  # the stored bytes went missing
    resp = api.get(f"/documents/{doc.id}/file")
    assert resp.status_code == 500
    assert resp.get_json() == {"error": "internal server error"}
