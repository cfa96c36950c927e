"""The JSON API under ``/api/v1``: bearer tokens, every query scoped to the token's tenant.

The modules below register themselves on ``bp`` when imported: ``auth`` (who is calling), ``errors``
(JSON errors everywhere under the prefix) and ``views`` (the endpoints).
"""

from dashboard.api import accounting as _accounting  # noqa: F401  (issue 18: entries, chart, FEC, exports)
from dashboard.api import addresses as _addresses  # noqa: F401  (issue 8: inbound addresses, rotation)
from dashboard.api import analytics as _receivables  # noqa: F401  (issue 5: analytics, clients)
from dashboard.api import assign as _assign  # noqa: F401  (issue 17: assign PDFs to invoices)
from dashboard.api import auth, errors, forwarding, views  # noqa: F401  (registration by import)
from dashboard.api import bank as _bank  # noqa: F401  (issue 6: statements, transactions, matches)
from dashboard.api import deadletter as _deadletter  # noqa: F401  (issue 7: failed items, retry)
from dashboard.api import mailboxes as _mailboxes  # noqa: F401  (IMAP mailboxes)
from dashboard.api import openapi as _openapi  # noqa: F401  (issue 17: GET /openapi.json, no token)
from dashboard.api import payables as _payables  # noqa: F401  (issue 18: suppliers, approval, payment runs)
from dashboard.api import people as _people  # noqa: F401  (issue 17: users, invitations, companies)
from dashboard.api import splitting as _splitting  # noqa: F401  (issue 4: page groups of a split PDF)
from dashboard.api import templates as _templates  # noqa: F401  (issue 4: per-tenant extraction templates)
from dashboard.api import tokens as _tokens  # noqa: F401  (issue 14: list and revoke bearer tokens)
from dashboard.api import uploads as _uploads  # noqa: F401  (issue 5 part 2: uploads, message progress)
from dashboard.api.base import bp

__all__ = ["bp"]
