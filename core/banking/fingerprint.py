"""Stable transaction fingerprints, so an overlapping statement imported again adds nothing twice.

A fingerprint is derived from the account and either the bank's own unique transaction id
(CAMT AcctSvcrRef, OFX FITID) or, where there is none or it is not trustworthy (MT940's
``//`` reference is optional and some banks repeat it), from booking date, amount, currency,
counterparty and remittance text. The occurrence index among rows with the same key inside one
statement is always part of it: two identical coffee purchases on the same day stay two.

Limit: identical rows are told apart by their order only, so a re-export that starts *between*
two fully identical rows of the same day would shift their indexes. Nothing in the data can
distinguish them, so this is the best any importer can do.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace

from core.banking.models import Statement, Transaction

_SEP = "\x1f"  # unit separator: cannot occur in any field, so "a|b","c" != "a","b|c"


def _amount_key(tx: Transaction) -> str:
    # 8.850 and 8.85 are the same amount; normalise before hashing.
    return format(tx.amount.normalize(), "f")


def _key(account: str, tx: Transaction, trust_bank_reference: bool) -> tuple[str, ...]:
    if trust_bank_reference and tx.bank_reference:
        return (account, "ref", tx.bank_reference)
    return (
        account,
        "row",
        tx.booking_date.isoformat(),
        _amount_key(tx),
        tx.currency or "",
        (tx.counterparty_name or "").casefold(),
        tx.counterparty_iban or "",
        tx.remittance.casefold(),
        tx.bank_reference or "",
    )


def assign_fingerprints(statement: Statement, trust_bank_reference: bool) -> None:
    """Fill ``fingerprint`` of every transaction of ``statement`` in place."""
    account = statement.account_iban or statement.account_id or ""
    seen: Counter[tuple[str, ...]] = Counter()
    result: list[Transaction] = []
    for tx in statement.transactions:
        key = _key(account, tx, trust_bank_reference)
        occurrence = seen[key]
        seen[key] += 1
        digest = hashlib.sha256(_SEP.join((*key, str(occurrence))).encode()).hexdigest()
        result.append(replace(tx, fingerprint=digest[:40]))
    statement.transactions = result
