"""Errors that a domain operation raises when a person's request cannot be done.

Transports map them once: the dashboard's error boundary flashes them, the API answers 404 / 422 / 409.
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
