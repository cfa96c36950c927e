"""Pre-accounting (issue 18, part A): what a validated document becomes in the books.

Owns the chart of accounts and journals per tenant (seeded from PCG, SKR03 or SKR04), the journal entries
built from invoices, credit notes and bank settlements, their life (to process -> ready to post -> posted,
frozen, corrected by reversal), the per-counterparty defaults learned at posting, and the exports (FEC,
DATEV, CSV), streamed.

Beancount-style layering: ``ledger`` is a small pure core where an entry is a value and every invariant
(balanced to the cent, accounts exist and are active, period open, VAT account matches its rate) is checked
in one place; ``build`` turns invoice facts into entries (pure); ``models`` persists them; ``entries``,
``rules`` and ``exports`` are the services the transports call.
"""
