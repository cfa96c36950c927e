"""Banking: statements in, transactions matched to invoices.

- Parsing (pure: bytes in, dataclasses out): ``statements`` detects the format; ``camt`` (CAMT.052/053/054),
  ``swift`` (MT940/MT942), ``ofx``, ``csv_import`` (bank CSV exports and their column mappings).
- ``transactions``: bank accounts by IBAN, importing a statement, transactions deduplicated by fingerprint.
- ``reconcile``: the pure matching engine; ``reconciliation``: running it, applying and undoing matches,
  matching rules, the treasury view.
"""

from core.banking.csv_import import DKB_GIRO, KNOWN_LAYOUTS, SPARKASSE_CAMT, SPARKASSE_MT940, CsvMapping
from core.banking.models import Statement, StatementError, StatementKind, Transaction
from core.banking.statements import detect_format, guess_csv_mapping, parse_statement

__all__ = [
    "DKB_GIRO",
    "KNOWN_LAYOUTS",
    "SPARKASSE_CAMT",
    "SPARKASSE_MT940",
    "CsvMapping",
    "Statement",
    "StatementError",
    "StatementKind",
    "Transaction",
    "detect_format",
    "guess_csv_mapping",
    "parse_statement",
]
