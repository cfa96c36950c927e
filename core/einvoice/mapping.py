"""An ``EInvoice`` as our invoice fields (``core.fields.FIELDS``), each marked as read exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.einvoice.model import EInvoice


def to_fields(einv: EInvoice) -> dict[str, Any]:
    """Our fields, plus ``field_info`` ({"source": "einvoice:<format>", "confidence": 1.0} per field found).

    Our first users issue these invoices (receivables), so the buyer is the client and the seller the
    issuer. Our model stores a credit note's amounts as positive numbers with doc_type credit_note; a
    corrected (384) or self-billed (389) invoice with a negative total is money going back too, so it
    is stored the same way although its type code does not make it a credit note.
    """
    credit = einv.is_credit_note or (einv.grand_total is not None and einv.grand_total < 0)
    fields: dict[str, Any] = {
        "doc_type": "credit_note" if credit else "invoice",
        "number": einv.number,
        "title": None,
        "client": einv.buyer_name,
        "issuer": einv.seller_name,
        "amount": _signed(einv.grand_total, credit),
        "net_amount": _signed(einv.net_total, credit),
        "tax_amount": _signed(einv.tax_total, credit),
        "currency": einv.currency,
        "issue_date": einv.issue_date,
        "due_date": einv.due_date,
    }
    info = {"source": einv.source, "confidence": 1.0}
    fields["field_info"] = {name: dict(info) for name, value in fields.items() if value is not None}
    return fields


def _signed(value: Decimal | None, credit: bool) -> Decimal | None:
    # A credit note's amounts are stored positive, whichever sign the document wrote them with.
    return abs(value) if credit and value is not None else value
