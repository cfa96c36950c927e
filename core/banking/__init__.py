"""Bank statement parsing: CAMT.052/053/054, MT940/MT942, OFX and CSV exports -> ``Statement``.

Pure: bytes in, dataclasses out; no database, no Flask.
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
