"""Model objects as JSON: amounts as decimal strings, dates and datetimes in ISO 8601 (with offset)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import selectinload

from core.extraction.result import with_check_flags
from core.models import Document, InboundMessage, Invoice, InvoiceFields, Match, Tenant
from core.tenancy import access
from dashboard.api.auth import api_viewer
from dashboard.api.base import dbs
from dashboard.i18n import shown_reason

CENT = Decimal("0.01")


def money(value: Decimal | None) -> str | None:
    # Quantized here too: a value just set by a service is not yet re-read through the Money type.
    return None if value is None else format(value.quantize(CENT), "f")


def iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _fields(obj: InvoiceFields) -> dict[str, Any]:
    """The invoice fields common to documents and invoices (``client`` differs and is added by each)."""
    return {
        "type": obj.doc_type,
        "number": obj.number,
        "title": obj.title,
        "issuer": obj.issuer,
        "amount": money(obj.amount),
        "net_amount": money(obj.net_amount),
        "tax_amount": money(obj.tax_amount),
        "currency": obj.currency,
        "issue_date": iso(obj.issue_date),
        "due_date": iso(obj.due_date),
    }


def tenant_json(tenant: Tenant, inbound_address: str | None) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "inbound_address": inbound_address,
            # Issue 18: the company's identity (what decides a document's direction) and approval policy.
            "legal_name": tenant.legal_name, "country": tenant.country, "siren": tenant.siren,
            "vat_number": tenant.vat_number, "iban": tenant.iban, "approval_mode": tenant.approval_mode,
            "approval_threshold": money(tenant.approval_threshold), "fiscal_year_end": tenant.fiscal_year_end,
            "datev_consultant_number": tenant.datev_consultant_number,
            "datev_client_number": tenant.datev_client_number}


def message_json(message: InboundMessage, subject: str) -> dict[str, Any]:
    """``subject`` as the caller may read it (``access.shown_subject``)."""
    return {
        "id": message.id,
        "status": message.status,
        "reason": shown_reason(message),  # in the request's language (Accept-Language), English by default
        "reason_code": message.reason_code,  # the reason as data (core/reasons.py)
        "reason_params": message.reason_params,
        "sender": message.sender,
        "recipient": message.recipient,
        "subject": subject,
        "received_at": iso(message.received_at),
        "source": message.source,
        "to_retiring_address": message.to_retiring_address,  # address rotation: update the forwarding rule
        "documents": [doc.id for doc in message.documents],
    }


def document_json(doc: Document) -> dict[str, Any]:
    """The document as the calling token's user may see it: the id of a duplicate's original only when
    that invoice is theirs to see."""
    duplicate_of = access.shown_duplicate_of(dbs(), api_viewer(), doc)
    return {
        "id": doc.id,
        "status": doc.status,
        "reason": shown_reason(doc),  # in the request's language (Accept-Language), English by default
        "reason_code": doc.reason_code,
        "reason_params": doc.reason_params,
        "filename": doc.filename,
        **_fields(doc),
        "client": doc.client,
        "direction": doc.direction,  # issue 18; field_info["direction"] says why, or that a person must pick
        "extraction_source": doc.extraction_source,
        "field_info": with_check_flags(doc.field_info or {}),  # "check": true where a person should look
        "duplicate_of": duplicate_of,
        "invoice_id": doc.invoice_id,
        "message_id": doc.message_id,
        "source_id": doc.source_id,  # issue 4: cut from a PDF holding several invoices (GET /sources/<id>/groups)
        "source_pages": doc.source_pages,
        "created_at": iso(doc.created_at),
    }


# What invoice_json reads, loaded with the invoices (a constant number of queries per page).
INVOICE_JSON_LOAD = (
    selectinload(Invoice.client),
    selectinload(Invoice.attachments),
    selectinload(Invoice.matches).selectinload(Match.transaction),
)


def invoice_json(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        **_fields(invoice),
        "client": invoice.client.name if invoice.client is not None else None,
        "client_id": invoice.client_id,
        "direction": invoice.direction,  # payable: client/client_id name the supplier
        "status": invoice.status,
        "amount_paid": money(invoice.amount_paid),
        "paid_at": iso(invoice.paid_at),  # issue 6
        "matches": [_invoice_match(m) for m in invoice.matches if m.state != "rejected"],
        "file_id": invoice.file_id,
        "attachments": [attachment.file_id for attachment in invoice.attachments],
        "document_id": invoice.document_id,
        "created_at": iso(invoice.created_at),
    }


def _invoice_match(match: Any) -> dict[str, Any]:
    """A bank match as seen from its invoice (issue 6: reconciliation)."""
    return {
        "id": match.id,
        "transaction_id": match.transaction_id,
        "state": match.state,
        "amount": money(match.amount),
        "write_off": money(match.write_off),
        "score": match.score,
        "booking_date": iso(match.transaction.booking_date),
    }
