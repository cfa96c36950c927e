"""Who sees which validated invoices: the one access policy used by the dashboard and the API.

With the tenant's *restrict access* setting on, a member sees validated invoices (and their clients,
files and analytics) only for the clients assigned to them; admins, accountants and the operator's support
staff see everything. Who keeps the books (posts, reverses, exports, edits the chart of accounts) is
``can_keep_books``: admins and accountants, the one rule the dashboard and the API both ask. Documents
under review are not restricted: every member can still import and validate every document.

Everything that shows an invoice goes through here (issue 14, finding 1): a validated document follows
its invoice, a bank match follows its invoice, a bank transaction is shown only when every invoice it is
matched to is visible (its text names the payer), the treasury and the CSV exports count visible invoices
only, and a stored file is visible only through a visible document or invoice. Each ``*_clause`` is a
WHERE clause, so listings, exports and single reads share one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, exists, or_, select, true
from sqlalchemy.orm import Session

from core.errors import NotFound, ServiceError
from core.i18n import N_
from core.mail.verification import redact_codes
from core.models import (
    BankTransaction,
    Client,
    ClientAssignment,
    Document,
    Invoice,
    InvoiceFile,
    Match,
    MatchState,
    Membership,
    Role,
    Tenant,
)

# Who may post, reverse, export and edit the chart of accounts. An accountant is otherwise a member who is
# never restricted to assigned clients: people, company settings and IBAN confirmations stay the admins'.
BOOKKEEPER_ROLES = frozenset({Role.ADMIN.value, Role.ACCOUNTANT.value})


class HasRole(Protocol):
    @property
    def role(self) -> str: ...


def can_keep_books(who: HasRole) -> bool:
    """Whether this membership (or viewer) may post and reverse entries, export the books (FEC, DATEV, CSV,
    EBP), close a year and edit the chart of accounts."""
    return str(who.role) in BOOKKEEPER_ROLES


@dataclass(frozen=True)
class Viewer:
    """Plain values (no ORM objects), so a commit that expires the session costs no reload."""

    tenant_id: int
    user_id: int
    role: str
    restricted: bool  # True when this person sees only their assigned clients

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    @property
    def sees_codes(self) -> bool:
        """Forwarding confirmation codes are for the company's admins and its support staff only."""
        return self.role in (Role.ADMIN.value, Role.SUPPORT.value)


def viewer_for(session: Session, tenant_id: int, user_id: int) -> Viewer:
    """The policy for ``user_id`` in ``tenant_id``; NotFound when they are not a member."""
    member = session.scalars(
        select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    ).first()
    tenant = session.get(Tenant, tenant_id)
    if member is None or tenant is None:
        raise NotFound("no such membership")
    return viewer_of(member, tenant)


def viewer_of(member: Membership, tenant: Tenant) -> Viewer:
    """The policy of a membership already loaded with its tenant (``viewer_for`` without the queries)."""
    restricted = bool(tenant.restrict_access) and member.role == Role.MEMBER.value
    return Viewer(tenant_id=member.tenant_id, user_id=member.user_id, role=member.role, restricted=restricted)


def _assigned(viewer: Viewer) -> Select[Any]:
    return select(ClientAssignment.client_id).where(
        ClientAssignment.tenant_id == viewer.tenant_id, ClientAssignment.user_id == viewer.user_id
    )


def client_clause(viewer: Viewer, client_id: Any) -> ColumnElement[bool]:
    """A WHERE clause on a client-id column: true for every client this viewer may see."""
    if not viewer.restricted:
        return true()
    return client_id.in_(_assigned(viewer))


def invoice_clause(viewer: Viewer) -> ColumnElement[bool]:
    return client_clause(viewer, Invoice.client_id)


def scope_invoices(stmt: Select[Any], viewer: Viewer) -> Select[Any]:
    """``stmt`` (a select over Invoice) limited to what the viewer may see."""
    return stmt.where(invoice_clause(viewer)) if viewer.restricted else stmt


def scope_clients(stmt: Select[Any], viewer: Viewer) -> Select[Any]:
    return stmt.where(client_clause(viewer, Client.id)) if viewer.restricted else stmt


def visible_client_ids(session: Session, viewer: Viewer) -> set[int] | None:
    """The ids of the clients this viewer may see, or None for "all of them"."""
    if not viewer.restricted:
        return None
    return set(session.scalars(_assigned(viewer)))


def can_see_invoice(session: Session, viewer: Viewer, invoice: Invoice) -> bool:
    if invoice.tenant_id != viewer.tenant_id:
        return False
    if not viewer.restricted:
        return True
    ids = visible_client_ids(session, viewer) or set()
    return invoice.client_id in ids


def check_invoice(session: Session, viewer: Viewer, invoice: Invoice) -> Invoice:
    """The invoice, or NotFound (the same answer as for another tenant's: nothing is revealed)."""
    if not can_see_invoice(session, viewer, invoice):
        raise NotFound("no such invoice")
    return invoice


def shown_duplicate_of(session: Session, viewer: Viewer, document: Document) -> int | None:
    """The id of the invoice a duplicate document repeats, or None when the viewer may not see it."""
    if document.duplicate_of_id is None or not viewer.restricted:
        return document.duplicate_of_id
    invoice = session.get(Invoice, document.duplicate_of_id)
    return document.duplicate_of_id if invoice is not None and can_see_invoice(session, viewer, invoice) else None


def check_client(session: Session, viewer: Viewer, client: Client) -> Client:
    if client.tenant_id != viewer.tenant_id:
        raise NotFound("no such client")
    if viewer.restricted and client.id not in (visible_client_ids(session, viewer) or set()):
        raise NotFound("no such client")
    return client


def _visible_invoice_ids(viewer: Viewer) -> Select[Any]:
    return select(Invoice.id).where(Invoice.tenant_id == viewer.tenant_id, invoice_clause(viewer))


def document_clause(viewer: Viewer) -> ColumnElement[bool]:
    """Documents under review are every member's; a validated one is seen with its invoice only."""
    if not viewer.restricted:
        return true()
    return or_(Document.invoice_id.is_(None), Document.invoice_id.in_(_visible_invoice_ids(viewer)))


def scope_documents(stmt: Select[Any], viewer: Viewer) -> Select[Any]:
    return stmt.where(document_clause(viewer)) if viewer.restricted else stmt


def check_document(session: Session, viewer: Viewer, document: Document) -> Document:
    """The document, or NotFound when it is another tenant's or holds an invoice the viewer may not see."""
    if document.tenant_id != viewer.tenant_id:
        raise NotFound("no such document")
    if viewer.restricted and document.invoice_id is not None:
        invoice = session.get(Invoice, document.invoice_id)
        if invoice is not None and not can_see_invoice(session, viewer, invoice):
            raise NotFound("no such document")
    return document


DocumentFilter = Callable[[list[Document]], list[Document]]


def document_filter(session: Session, viewer: Viewer) -> DocumentFilter:
    """A function keeping, of already loaded documents (a message's), those this viewer may see; the
    visible invoices are read once, on first need, for a whole page of messages."""
    shown: set[int] | None = None

    def keep(documents: list[Document]) -> list[Document]:
        nonlocal shown
        if not viewer.restricted or all(doc.invoice_id is None for doc in documents):
            return documents
        if shown is None:
            shown = set(session.scalars(_visible_invoice_ids(viewer)))
        return [doc for doc in documents if doc.invoice_id is None or doc.invoice_id in shown]

    return keep


def match_clause(viewer: Viewer) -> ColumnElement[bool]:
    return Match.invoice_id.in_(_visible_invoice_ids(viewer)) if viewer.restricted else true()


def scope_matches(stmt: Select[Any], viewer: Viewer) -> Select[Any]:
    return stmt.where(match_clause(viewer)) if viewer.restricted else stmt


def check_match(session: Session, viewer: Viewer, match: Match) -> Match:
    if match.tenant_id != viewer.tenant_id:
        raise NotFound("no such match")
    if viewer.restricted and match.invoice_id not in set(session.scalars(_visible_invoice_ids(viewer))):
        raise NotFound("no such match")
    return match


def transaction_clause(viewer: Viewer) -> ColumnElement[bool]:
    """A restricted member sees a transaction matched (applied or suggested) to a visible invoice and to
    no hidden one, even a rejected pairing: the payer's name and remittance text belong to the client."""
    if not viewer.restricted:
        return true()
    visible = _visible_invoice_ids(viewer)
    matched = select(Match.transaction_id).where(
        Match.tenant_id == viewer.tenant_id, Match.state != MatchState.REJECTED.value, Match.invoice_id.in_(visible)
    )
    hidden = select(Match.transaction_id).where(Match.tenant_id == viewer.tenant_id, Match.invoice_id.not_in(visible))
    return BankTransaction.id.in_(matched) & BankTransaction.id.not_in(hidden)


def scope_transactions(stmt: Select[Any], viewer: Viewer) -> Select[Any]:
    return stmt.where(transaction_clause(viewer)) if viewer.restricted else stmt


def check_transaction(session: Session, viewer: Viewer, transaction: BankTransaction) -> BankTransaction:
    if transaction.tenant_id != viewer.tenant_id:
        raise NotFound("no such transaction")
    if viewer.restricted:
        found = select(BankTransaction.id).where(BankTransaction.id == transaction.id, transaction_clause(viewer))
        if session.scalar(found) is None:
            raise NotFound("no such transaction")
    return transaction


def can_see_file(session: Session, viewer: Viewer, file_id: int) -> bool:
    """A stored file is visible when a visible document holds it (under review, or validated into a
    visible invoice) or when a visible invoice holds it as its original or an attachment."""
    if not viewer.restricted:
        return True
    by_document = exists().where(
        Document.tenant_id == viewer.tenant_id, Document.file_id == file_id, document_clause(viewer)
    )
    attached = select(InvoiceFile.invoice_id).where(InvoiceFile.file_id == file_id)
    by_invoice = exists().where(
        Invoice.tenant_id == viewer.tenant_id,
        or_(Invoice.file_id == file_id, Invoice.id.in_(attached)),
        invoice_clause(viewer),
    )
    return bool(session.scalar(select(or_(by_document, by_invoice))))


def shown_subject(viewer: Viewer, subject: str | None) -> str:
    """An email's subject as this viewer may read it: forwarding confirmation codes only for admins and
    support (issue 14, finding 6)."""
    return (subject or "") if viewer.sees_codes else redact_codes(subject or "")


# Assignments (admin) -------------------------------------------------------------------------


def require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise ServiceError(N_("only an admin can do this"))


def _check_member_and_client(session: Session, viewer: Viewer, user_id: int, client_id: int) -> None:
    """An admin acting on a member and a client of their own tenant; NotFound for anyone else's."""
    require_admin(viewer)
    member = session.scalars(
        select(Membership).where(Membership.tenant_id == viewer.tenant_id, Membership.user_id == user_id)
    ).first()
    client = session.get(Client, client_id)
    if member is None or client is None or client.tenant_id != viewer.tenant_id:
        raise NotFound("no such member or client")


def _assignment(viewer: Viewer, user_id: int, client_id: int) -> Select[tuple[ClientAssignment]]:
    return select(ClientAssignment).where(ClientAssignment.tenant_id == viewer.tenant_id,
                                          ClientAssignment.user_id == user_id, ClientAssignment.client_id == client_id)


def assign_client(session: Session, viewer: Viewer, user_id: int, client_id: int) -> ClientAssignment:
    """Give a member access to a client (idempotent)."""
    _check_member_and_client(session, viewer, user_id, client_id)
    found = session.scalars(_assignment(viewer, user_id, client_id)).first()
    if found is None:
        found = ClientAssignment(tenant_id=viewer.tenant_id, user_id=user_id, client_id=client_id)
        session.add(found)
        session.flush()
    return found


def unassign_client(session: Session, viewer: Viewer, user_id: int, client_id: int) -> None:
    _check_member_and_client(session, viewer, user_id, client_id)
    for row in session.scalars(_assignment(viewer, user_id, client_id)):
        session.delete(row)
    session.flush()


def set_restrict_access(session: Session, viewer: Viewer, enabled: bool) -> Tenant:
    require_admin(viewer)
    tenant = session.get(Tenant, viewer.tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    tenant.restrict_access = enabled
    session.flush()
    return tenant
