"""Domain services: the operations that the dashboard, the API, the mail gateway and the worker share.

Every function takes an explicit SQLAlchemy ``Session`` and, where data belongs to a tenant, the tenant id,
so that tenant isolation is part of every query's signature.
"""


class ServiceError(Exception):
    """An operation a person asked for cannot be done; the message says why."""


class NotFound(ServiceError):
    """The object does not exist *for this tenant* (never says whether it exists elsewhere)."""


class ValidationFailed(ServiceError):
    """Field errors keyed by field name, shown next to each field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# Registers the flush listener that keeps the receivables summaries in step (issue 5's performance goal).
from core.services import summaries  # noqa: E402,F401
