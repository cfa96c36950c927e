"""What an e-invoice says, as typed values: the result of ``read_einvoice``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import NamedTuple


class EInvoiceError(ValueError):
    """The bytes are (or claim to be) an e-invoice that cannot be read; ``reason`` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VatLine(NamedTuple):
    """One row of the VAT breakdown (BG-23). ``category`` is None where the format has none (ZUGFeRD 1.0)."""

    category: str | None
    rate: Decimal
    base: Decimal
    tax: Decimal


class InvoiceLine(NamedTuple):
    """One invoice line (BG-25); ``unit_price`` is the net price as stated (per its base quantity).
    ``vat_rate`` / ``vat_category`` are the line's VAT (BT-152 / BT-151, UNCL5305: S, Z, E, AE, K...): what
    the accounting needs to put each line under its row of the VAT breakdown."""

    description: str | None
    quantity: Decimal | None
    unit_price: Decimal | None
    net_amount: Decimal | None
    vat_rate: Decimal | None = None
    vat_category: str | None = None


class AllowanceCharge(NamedTuple):
    """A document-level allowance (BG-20) or charge (BG-21): outside the lines, inside the VAT breakdown's
    net (BR-CO-13: net = lines - allowances + charges)."""

    charge: bool
    amount: Decimal
    reason: str | None
    vat_rate: Decimal | None
    vat_category: str | None


@dataclass
class EInvoice:
    """A structured invoice, read exactly: amounts are Decimals with the signs the document gives."""

    format: str  # "factur-x" (CII in a PDF), "cii", "zugferd-1", "ubl"
    profile: str | None  # BT-24 guideline id, as found
    number: str | None
    type_code: str | None
    is_credit_note: bool
    issue_date: date | None
    due_date: date | None
    currency: str | None
    seller_name: str | None
    seller_vat_id: str | None
    buyer_name: str | None
    buyer_vat_id: str | None
    net_total: Decimal | None  # BT-109
    tax_total: Decimal | None  # BT-110, in the invoice currency
    grand_total: Decimal | None  # BT-112
    amount_due: Decimal | None  # BT-115
    vat_breakdown: list[VatLine] = field(default_factory=list)
    lines: list[InvoiceLine] = field(default_factory=list)
    allowances_charges: list[AllowanceCharge] = field(default_factory=list)
    iban: str | None = None
    payment_reference: str | None = None
    attachment: str | None = None  # name of the file embedded in the PDF, None for a standalone XML
    warnings: list[str] = field(default_factory=list)

    @property
    def level(self) -> str | None:
        return profile_level(self.profile)

    @property
    def source(self) -> str:
        return f"einvoice:{self.format}"


# Parts of a guideline id that name the level. Spellings differ ("#compliant#", ":compliant:", "2p0",
# "1p0", XRechnung 2.x or 3.0), so ids are split into parts and the most specific (last) part wins.
_LEVEL_PARTS = {
    "minimum": "minimum",
    "basicwl": "basicwl",
    "basic-wl": "basicwl",
    "basic": "basic",
    "comfort": "en16931",  # ZUGFeRD 1.0's name for the full profile
    "en16931": "en16931",
    "extended": "extended",
}


def profile_level(profile: str | None) -> str | None:
    """``minimum``, ``basicwl``, ``basic``, ``en16931``, ``extended`` or ``xrechnung`` from a guideline id."""
    if not profile:
        return None
    level = None
    for part in re.split(r"[#:\s]+", profile.lower()):
        if part.startswith("xrechnung"):
            level = "xrechnung"
        elif part in _LEVEL_PARTS:
            level = _LEVEL_PARTS[part]
    return level
