"""Reconciliation engine: bank transactions against open invoices and credit notes.

Pure: plain dataclasses in, scored proposals out; no database, no Flask. Every lookup goes through
dict indexes (number tokens, amounts, clients), so the cost grows with the number of transactions,
never with transactions x invoices. ``core.banking.reconciliation`` persists what it proposes.
"""

from core.banking.reconcile.engine import (
    AUTO_THRESHOLD,
    SUGGEST_THRESHOLD,
    Allocation,
    BankTx,
    ClientInfo,
    Matcher,
    OpenItem,
    Proposal,
    expected_sign,
)

__all__ = [
    "AUTO_THRESHOLD",
    "SUGGEST_THRESHOLD",
    "Allocation",
    "BankTx",
    "ClientInfo",
    "Matcher",
    "OpenItem",
    "Proposal",
    "expected_sign",
]
