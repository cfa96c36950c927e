"""The blueprint object and the JSON error response shared by the API modules."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Blueprint, Response, jsonify
from sqlalchemy.orm import Session

from dashboard.extensions import csrf, db

PREFIX = "/api/v1"

bp = Blueprint("api", __name__, url_prefix=PREFIX)
# Bearer tokens only, never cookies: a forged cross-site request carries no credential to abuse.
csrf.exempt(bp)


class ApiError(Exception):
    """A request the API refuses, with the HTTP status and the message to send back."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields


def json_error(
    status: int, message: str, fields: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
) -> Response:
    body: dict[str, object] = {"error": message}
    if fields is not None:
        body["fields"] = dict(fields)
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def dbs() -> Session:
    """The request's SQLAlchemy session (Flask-SQLAlchemy removes it when the request ends)."""
    return db.session()
