"""Receivables: what clients owe, followed until paid.

- ``invoices``: balances per client, expected cash movements, an invoice's lifecycle (attach, delete).
- ``clients``: which existing client an extracted invoice is for.
- ``summaries``: maintained per-client and per-day totals (tables in ``core.models_summaries``), kept equal
  to the invoices by a flush listener that importing this package registers.
- ``analytics``: amount due, overdue, ageing, DSO, expected cash-in.
"""

# Registers the flush listener that keeps the receivables summaries in step (issue 5's performance goal).
from core.receivables import summaries  # noqa: E402,F401
