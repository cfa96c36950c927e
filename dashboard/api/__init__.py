"""The JSON API under ``/api/v1``: bearer tokens, every query scoped to the token's tenant.

The modules below register themselves on ``bp`` when imported: ``auth`` (who is calling), ``errors``
(JSON errors everywhere under the prefix) and ``views`` (the endpoints).
"""

from dashboard.api import auth, errors, views  # noqa: F401  (registration by import)
from dashboard.api.base import bp

__all__ = ["bp"]
