"""SQL statements per request, for benchmarks: ``X-Query-Count`` when ``INBOX_COUNT_QUERIES=1``.

Off by default (nothing is registered): the header would tell an outsider about our queries, and the
event costs a little on every statement.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, has_request_context
from sqlalchemy import event

from core.config import env

ENV_VAR = "INBOX_COUNT_QUERIES"
HEADER = "X-Query-Count"


def enabled() -> bool:
    return (env(ENV_VAR) or "") == "1"


def _count(*_args: Any) -> None:
    if has_request_context():
        g.query_count = g.get("query_count", 0) + 1


def _header(response: Response) -> Response:
    response.headers[HEADER] = str(g.get("query_count", 0))
    return response


def install(app: Flask) -> None:
    """Count the statements of each request on the app's engine (idempotent; no-op unless enabled)."""
    if not enabled() or app.extensions.get("inbox.querycount"):
        return
    from dashboard.extensions import db

    app.extensions["inbox.querycount"] = True
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", _count)
    app.after_request(_header)
