"""Exact reading of structured e-invoices: Factur-X / ZUGFeRD 1.0–2.x / XRechnung (CII or UBL) and UBL 2.1.

A pure module (no database, no Flask)::

    einv = read_einvoice(data, filename)   # EInvoice | None; raises EInvoiceError for a broken one
    fields = to_fields(einv)               # our invoice fields + "field_info"
"""

from core.einvoice.mapping import to_fields
from core.einvoice.model import EInvoice, EInvoiceError, InvoiceLine, VatLine, profile_level
from core.einvoice.reader import read_einvoice

__all__ = [
    "EInvoice",
    "EInvoiceError",
    "InvoiceLine",
    "VatLine",
    "profile_level",
    "read_einvoice",
    "to_fields",
]
