"""Every route of the app, walked from its URL map: a new route cannot escape these checks.

- unauthenticated: the HTML side redirects to the login page, the API answers 401 (except ALLOW_ANONYMOUS);
- every route taking an object id, asked for tenant A's real object by a user of tenant B (session) and,
  under /api/v1, with tenant B's token: 404 (403 only where ``EXISTENCE_NOT_SECRET`` says so);
- every GET route, listings included, API included, read by tenant B (session and token): no response
  body holds tenant A's marker data (invoice numbers, client name, sender, file bytes);
- a restricted member of A (session and token) on every route: no response body holds the data of the
  client not assigned to them, and every route taking that client's invoice, client, file, transaction
  or match answers 404, whatever the method (issue 14, finding 1).

Ids come from real objects built in tenant A. A route argument that ``OBJECT_FOR`` does not know fails
the test: whoever adds a route must say here which object it takes.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from core.accounting import books as booksvc
from core.accounting import entries as entrysvc
from core.documents import review as docs
from core.files.records import store_file
from core.files.storage import FileStorage
from core.inbound import intake
from core.models import (
    ApiToken,
    BankAccount,
    BankTransaction,
    Client,
    Document,
    DocumentSource,
    DocumentStatus,
    Invoice,
    InvoiceFile,
    Mailbox,
    Match,
    MatchingRule,
    Role,
    SenderRule,
    StoredFile,
    Tenant,
    utcnow,
)
from core.models_templates import ExtractionTemplate
from core.payables.models import PaymentRun, PaymentRunItem
from core.tenancy import accounts
from core.tenancy.people_models import Invitation
from dashboard.api.base import PREFIX as API_PREFIX
from tests.bankhelpers import make_invoice
from tests.conftest import TenantFixture
from tests.invoicegen import make_email, make_invoice_pdf
from tests.test_dashboard import COMPLETE, csrf_token, login

# Reachable without logging in: the login page itself, its language switcher (sets the session's language
# only), the static files, the API's OpenAPI document (describes the routes, holds no data) and the
# operations endpoints for load balancers and Prometheus (no tenant data: tests/test_health.py).
ALLOW_ANONYMOUS = {"auth.login", "static", "locale.switch", "api.openapi_document", "health.healthz",
                   "health.readyz", "health.metrics_endpoint",
                   # Issue 17: what a person without a session must reach: an invitation's link, the password
                   # reset (asking and using the link), the login's second step and sign-up (404 unless the
                   # operator allows it). Each works from a secret token or shows nothing of a company.
                   "account.accept_invitation", "account.forgot_password", "account.reset_password",
                   "account.login_code", "account.signup"}
# The operator's support console: a tenant's user is refused it as a whole (403), which tells nothing.
EXISTENCE_NOT_SECRET = {"support.tenant_overview", "support.tenant_codes", "support.tenant_imports",
                        "support.tenant_message"}
# Route argument -> the key of the object of tenant A it takes (per endpoint where a name is ambiguous).
OBJECT_FOR = {
    "doc_id": "document", "document_id": "document", "message_id": "message", "file_id": "file",
    "invoice_id": "invoice", "client_id": "client", "account_id": "bank_account",
    "transaction_id": "transaction", "match_id": "match", "mailbox_id": "mailbox", "user_id": "user",
    "tenant_ref": "tenant",
    "template_id": "extraction_template",
    "source_id": "source",  # issue 4: a PDF split into several documents
    "token_id": "api_token",  # issue 14: tokens listed and revoked
    "invitation_id": "invitation",  # issue 17: invitations withdrawn
    "entry_id": "journal_entry", "ledger_account_id": "ledger_account",  # issue 18: accounting
    "supplier_id": "supplier", "run_id": "payment_run",  # issue 18: suppliers and payment runs
}
OBJECT_FOR_ENDPOINT = {
    ("bank.delete_rule", "rule_id"): "matching_rule", ("api.delete_rule", "rule_id"): "matching_rule",
    ("senders.remove", "rule_id"): "sender_rule",
}
# Arguments that are not ids: valid values (each one is walked), so that the id is what decides.
CONSTANT_ARGS: dict[str, tuple[object, ...]] = {
    "decision": ("accept",), "kind": ("invoices", "payments", "matches"), "filename": ("app.css",), "page": (0,),
    "provider": ("google", "microsoft"),  # issue 17: "Connect Gmail" / "Connect Microsoft 365"
}
# Refused to members as a whole (403, "admins only"), which tells nothing about the object.
ADMIN_ONLY = {"members.unassign"}
# Query strings without which a route shows nothing: the world's keys, filled like arguments.
QUERY_FOR = {"imports.status": "ids={message}"}
NEVER_EXISTED = 2_000_000_000
ISO_TEMPLATE = ("issuer: Iso\nkeywords: [Iso SARL]\n"
                "fields: {amount: 'T (\\d+)', date: 'D (\\S+)', invoice_number: 'N (\\S+)'}\n")
# What a restricted member must not reach for a client not assigned to them (the world's transaction and
# match belong to that client's invoice).
RESTRICTED_ARGS = {"invoice_id", "client_id", "file_id", "transaction_id", "match_id", "entry_id", "supplier_id",
                   "run_id"}
# Tenant A's data that tenant B must never read, and the part of it a restricted member of A must not.
HIDDEN_NUMBER, HIDDEN_CLIENT = "ISO-2", "Client Isol"  # ASCII: JSON escapes the "é" of "Isolé"
TENANT_MARKERS = ("ISO-1", HIDDEN_NUMBER, HIDDEN_CLIENT, "dupont-conseil.example", "billing@acme.example")


@dataclass
class World:
    ids: dict[str, int]
    restricted_email: str
    restricted_token: str
    hidden_file: bytes  # the bytes of the invoice of the client not assigned to the restricted member


def build_world(session: Session, storage: FileStorage, a: TenantFixture) -> World:
    tid = a.tenant.id
    raw = make_email(a.address, make_invoice_pdf())
    message = intake.store_message(session, storage, tid, raw, recipient=a.address)
    pdf = store_file(session, storage, tid, make_invoice_pdf(number="ISO-1"), "application/pdf")
    doc = Document(tenant_id=tid, message_id=message.id, part_index=1, file_id=pdf.id, filename="iso.pdf",
                   status=DocumentStatus.PENDING.value, field_info={}, number="ISO-1")
    session.add(doc)
    invoice = make_invoice(session, storage, tid, "ISO-2", "120.00", "Client Isolé SARL")
    account = BankAccount(tenant_id=tid, iban="FR7630006000011234567890189")
    session.add(account)
    session.flush()
    transaction = BankTransaction(tenant_id=tid, account_id=account.id, fingerprint="iso-1",
                                  booking_date=date(2026, 1, 10), amount=Decimal("120.00"))
    session.add(transaction)
    session.flush()
    match = Match(tenant_id=tid, transaction_id=transaction.id, invoice_id=invoice.id, amount=Decimal("120.00"))
    rule = MatchingRule(tenant_id=tid, name="Fees", category="fees")
    sender_rule = SenderRule(tenant_id=tid, pattern="billing@example.com")
    mailbox = Mailbox(tenant_id=tid, host="imap.example.com", username="billing@acme.example")
    session.add_all([match, rule, sender_rule, mailbox])
    source = DocumentSource(tenant_id=tid, message_id=message.id, part_index=0, file_id=pdf.id, filename="lot.pdf",
                            page_count=1, detection={})
    session.add(source)
    template = ExtractionTemplate(tenant_id=tid, name="Iso", issuer="Iso", source=ISO_TEMPLATE)
    session.add(template)
    # Issue 18: the hidden client's invoice's draft entry (its label names the client) and an account.
    entry = entrysvc.draft_for_invoice(session, invoice)
    ledger_account = booksvc.accounts(session, tid)[0]
    # Issue 18: a supplier (its name holds the hidden client's marker), its payable and a payment run paying it.
    supplier = Client(tenant_id=tid, name="Client Isolé Fournitures", normalized_name="client isole fournitures",
                      role="supplier", iban="DE89370400440532013000")
    session.add(supplier)
    session.flush()
    payable = Invoice(tenant_id=tid, direction="payable", doc_type="invoice", number="ISO-2P", number_key="ISO-2P",
                      client_id=supplier.id, file_id=pdf.id, amount=Decimal("50.00"), currency="EUR",
                      issue_date=date(2026, 1, 5), due_date=date(2026, 2, 5))
    session.add(payable)
    session.flush()
    run = PaymentRun(tenant_id=tid, due_by=date(2026, 2, 5), execution_date=date(2026, 2, 5), currency="EUR",
                     debtor_iban="FR7630006000011234567890189", total_cents=5000, count=1,
                     xml="<Document>ISO-2P Client Isolé Fournitures</Document>")
    session.add(run)
    session.flush()
    session.add(PaymentRunItem(tenant_id=tid, run_id=run.id, invoice_id=payable.id, supplier_name=supplier.name,
                               iban=supplier.iban, amount_cents=5000, end_to_end_id="ISO-2P"))
    # A restricted member of A: restrict access on, no client assigned.
    restricted = accounts.create_user(session, "restricted@acme.example", a.password, a.tenant, Role.MEMBER)
    restricted_token = accounts.create_token(session, restricted, a.tenant)
    session.get(Tenant, tid).restrict_access = True
    invitation = Invitation(tenant_id=tid, email="invited@acme.example", role="member", token_hash="0" * 64,
                            expires_at=utcnow() + timedelta(days=7))
    session.add(invitation)
    session.flush()
    session.commit()
    token_row = session.scalars(select(ApiToken).where(ApiToken.prefix == a.token[:8])).one()
    hidden_file = storage.read(session.get(StoredFile, invoice.file_id).storage_key)
    return World(
        ids={"document": doc.id, "message": message.id, "file": invoice.file_id, "invoice": invoice.id,
             "client": invoice.client_id, "bank_account": account.id, "transaction": transaction.id,
             "match": match.id, "matching_rule": rule.id, "sender_rule": sender_rule.id, "mailbox": mailbox.id,
             "user": a.admin.id, "tenant": tid, "extraction_template": template.id,
             "source": source.id, "api_token": token_row.id, "invitation": invitation.id, "journal_entry": entry.id,
             "ledger_account": ledger_account.id, "supplier": supplier.id, "payment_run": run.id},
        restricted_email=restricted.email,
        restricted_token=restricted_token,
        hidden_file=hidden_file,
    )


def urls_for_rule(rule: Rule, world: World, missing: bool = False) -> list[str]:
    """The rule's URL for tenant A's objects, once per value of each constant argument (e.g. every export)."""
    values: dict[str, Any] = {}
    variants: list[tuple[str, tuple[object, ...]]] = []
    for name in rule.arguments:
        if name in CONSTANT_ARGS:
            variants.append((name, CONSTANT_ARGS[name]))
            continue
        key = OBJECT_FOR_ENDPOINT.get((rule.endpoint, name)) or OBJECT_FOR.get(name)
        assert key is not None, f"{rule.endpoint} ({rule.rule}): add its argument {name!r} to OBJECT_FOR"
        values[name] = NEVER_EXISTED if missing and name in rule._converters and type(
            rule._converters[name]).__name__ == "IntegerConverter" else world.ids[key]
    query = QUERY_FOR.get(rule.endpoint, "").format(**world.ids)
    urls = []
    for chosen in itertools.product(*(choices for _, choices in variants)):
        filled = values | {name: value for (name, _), value in zip(variants, chosen, strict=True)}
        path = re.sub(r"<(?:[^:<>]+:)?([a-z_]+)>", lambda found, f=filled: str(f[found.group(1)]), rule.rule)
        urls.append(f"{path}?{query}" if query else path)
    return urls


def url_for_rule(rule: Rule, world: World, missing: bool = False) -> str:
    return urls_for_rule(rule, world, missing)[0]


def takes_id(rule: Rule) -> bool:
    return any(type(rule._converters[name]).__name__ == "IntegerConverter" for name in rule.arguments)


def methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


def send(client: FlaskClient, method: str, url: str, token: str | None = None,
         csrf: str | None = None) -> int:
    return respond(client, method, url, token, csrf).status_code


def respond(client: FlaskClient, method: str, url: str, token: str | None = None,
            csrf: str | None = None) -> TestResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = {"csrf_token": csrf} if csrf and method != "GET" else None
    return client.open(url, method=method, headers=headers, data=data)


def leaked(body: bytes, markers: tuple[str, ...], file_bytes: bytes) -> list[str]:
    found = [marker for marker in markers if marker.encode() in body]
    return found + (["the invoice's file bytes"] if file_bytes in body else [])


def logged_in(app: Flask, email: str, password: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    assert login(client, email, password).status_code == 302
    return client, csrf_token(client.get("/imports"))


def test_every_route_is_isolated(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    world = build_world(session, storage, tenant)
    rules = sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
    assert len(rules) > 50  # the map was really walked
    failures: list[str] = []

    anonymous = app.test_client()
    intruder, intruder_csrf = logged_in(app, other_tenant.admin.email, other_tenant.password)
    checked_ids = read_bodies = 0

    for rule in rules:
        is_api = rule.rule.startswith(API_PREFIX + "/")  # /api/docs is a dashboard page
        for url in urls_for_rule(rule, world):
            for method in methods(rule):
                where = f"{method} {url} ({rule.endpoint})"
                if rule.endpoint not in ALLOW_ANONYMOUS:
                    # A fresh CSRF token each time (POST /logout clears the session), so that the login check
                    # is what answers, not the CSRF check.
                    data = None if method == "GET" else {"csrf_token": csrf_token(anonymous.get("/login"))}
                    response = anonymous.open(url, method=method, data=data)
                    if is_api:
                        if response.status_code != 401:
                            failures.append(f"{where} anonymous: {response.status_code}, expected 401")
                    elif response.status_code != 302 or "/login" not in response.headers.get("Location", ""):
                        failures.append(f"{where} anonymous: {response.status_code}, expected a redirect to login")
                if method == "GET" and rule.endpoint != "auth.logout":
                    # Every page and listing of tenant B, session and token: nothing of tenant A in the body.
                    for who, response in (("B's session", respond(intruder, method, url)),
                                          ("B's token", respond(app.test_client(), method, url,
                                                                token=other_tenant.token))):
                        read_bodies += 1
                        found = leaked(response.get_data(), (*TENANT_MARKERS, tenant.address), world.hidden_file)
                        if found:
                            failures.append(f"{where} with {who}: {response.status_code} shows {found}")
                if not takes_id(rule):
                    continue
                checked_ids += 1
                allowed = {404, 403} if rule.endpoint in EXISTENCE_NOT_SECRET else {404}
                if is_api:
                    who, ask = "with another tenant's token", lambda u, m=method: send(
                        app.test_client(), m, u, token=other_tenant.token)
                else:
                    who, ask = "as another tenant's user", lambda u, m=method: send(
                        intruder, m, u, csrf=intruder_csrf)
                status = ask(url)
                if status not in allowed:
                    never = ask(url_for_rule(rule, world, missing=True))
                    failures.append(f"{where} {who}: {status} (an id that never existed: {never})")
    assert checked_ids > 30 and read_bodies > 100
    assert not failures, "\n".join(failures)


def test_restricted_member_reads_nothing_of_an_unassigned_client_on_any_route(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    """Issue 14, finding 1: every route, API included, every listing, export, file and analytics route."""
    world = build_world(session, storage, tenant)
    member, member_csrf = logged_in(app, world.restricted_email, tenant.password)
    failures: list[str] = []
    read_bodies = refused = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in ALLOW_ANONYMOUS or rule.endpoint == "auth.logout":
            continue
        is_api = rule.rule.startswith(API_PREFIX + "/")  # /api/docs is a dashboard page
        hidden_object = bool(set(rule.arguments) & RESTRICTED_ARGS)
        for url in urls_for_rule(rule, world):
            for method in methods(rule):
                if method != "GET" and not hidden_object:
                    continue  # the member's own writes are theirs to make; reads are what is checked
                where = f"{method} {url} ({rule.endpoint})"
                if is_api:
                    response = respond(app.test_client(), method, url, token=world.restricted_token)
                else:
                    response = respond(member, method, url, csrf=member_csrf)
                read_bodies += 1
                found = leaked(response.get_data(), (HIDDEN_NUMBER, HIDDEN_CLIENT), world.hidden_file)
                if found:
                    failures.append(f"{where}: {response.status_code} shows {found}")
                if hidden_object:
                    refused += 1
                    if response.status_code not in ({403, 404} if rule.endpoint in ADMIN_ONLY else {404}):
                        failures.append(f"{where}: {response.status_code}, expected 404")
    assert read_bodies > 60 and refused > 15
    assert not failures, "\n".join(failures)


def test_isolation_checks_can_fail(app: Flask, session: Session, storage: FileStorage,
                                   tenant: TenantFixture) -> None:
    """The owner gets their own objects: a 404 above is isolation, not a wrong id."""
    world = build_world(session, storage, tenant)
    owner, _ = logged_in(app, tenant.admin.email, tenant.password)
    for path in (f"/documents/{world.ids['document']}", f"/invoices/{world.ids['invoice']}",
                 f"/clients/{world.ids['client']}", f"/files/{world.ids['file']}",
                 f"/bank/transactions/{world.ids['transaction']}", f"/sources/{world.ids['source']}/pages/0.png"):
        assert owner.get(path).status_code == 200, path
    api = app.test_client()
    for path in (f"/api/v1/messages/{world.ids['message']}", f"/api/v1/invoices/{world.ids['invoice']}",
                 f"/api/v1/transactions/{world.ids['transaction']}"):
        assert api.get(path, headers={"Authorization": f"Bearer {tenant.token}"}).status_code == 200, path


def _document_writes_aimed_at(session: Session, tid: int, hidden: Invoice) -> dict[str, int]:
    """Fresh documents under review (so that one route's write does not change what the next one meets):
    one complete, ready to be validated, and one that extraction flagged as a duplicate of ``hidden``."""
    ready = Document(tenant_id=tid, file_id=hidden.file_id, filename="mine.pdf", status=DocumentStatus.PENDING.value,
                     field_info={})
    duplicate = Document(tenant_id=tid, file_id=hidden.file_id, filename="copy.pdf", number=HIDDEN_NUMBER,
                         status=DocumentStatus.DUPLICATE.value, duplicate_of_id=hidden.id, field_info={})
    session.add_all([ready, duplicate])
    session.flush()
    docs.update_fields(session, tid, ready.id, COMPLETE | {"number": "MINE-1"})
    session.commit()
    return {"ready": ready.id, "duplicate": duplicate.id}


def test_restricted_member_cannot_write_to_a_hidden_invoice_through_a_document(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    """Review finding (fix-scope 1): every write route taking a document, posted by the restricted member
    with the hidden invoice's number or a link/replace decision: the hidden invoice keeps its file, gains
    no attachment, and no answer gives its id."""
    world = build_world(session, storage, tenant)
    hidden = session.get(Invoice, world.ids["invoice"])
    kept = (hidden.file_id, hidden.document_id)
    member, member_csrf = logged_in(app, world.restricted_email, tenant.password)
    failures: list[str] = []
    sent = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        document_arg = next((name for name in rule.arguments if OBJECT_FOR.get(name) == "document"), None)
        if document_arg is None:
            continue
        is_api = rule.rule.startswith(API_PREFIX + "/")
        for method in (m for m in methods(rule) if m != "GET"):
            for action in ("confirm", "link", "replace"):
                for which in ("ready", "duplicate"):
                    ids = _document_writes_aimed_at(session, tenant.tenant.id, hidden)
                    url = re.sub(r"<(?:[^:<>]+:)?([a-z_]+)>", str(ids[which]), rule.rule)
                    if is_api:
                        body = {"number": HIDDEN_NUMBER} if action == "confirm" else {"action": action}
                        response = app.test_client().open(url, method=method, json=body, headers={
                            "Authorization": f"Bearer {world.restricted_token}"})
                    else:
                        response = member.open(url, method=method, data={
                            "csrf_token": member_csrf, "action": action, "number": HIDDEN_NUMBER})
                    sent += 1
                    answer = response.get_data(as_text=True)
                    payload = response.get_json(silent=True) or {}
                    if f"/invoices/{hidden.id}" in answer or payload.get("duplicate_of") == hidden.id:
                        failures.append(f"{method} {url} ({rule.endpoint}, {action}): gives the hidden id")
    session.expire_all()
    again = session.get(Invoice, hidden.id)
    assert sent > 20
    assert (again.file_id, again.document_id) == kept, "the hidden invoice's file was replaced"
    assert session.scalars(select(InvoiceFile).where(InvoiceFile.invoice_id == hidden.id)).all() == []
    assert not failures, "\n".join(failures)
