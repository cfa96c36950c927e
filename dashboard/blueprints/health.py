"""Operations endpoints, for load balancers and Prometheus rather than people (no login, no session).

- ``GET /healthz``: the process is alive (200, nothing checked).
- ``GET /readyz``: database, Redis and storage reachable and the schema at the code's migrations head;
  200, or 503 naming what is wrong (``core.health``).
- ``GET /metrics``: Prometheus text format (``core.metrics``): this process's series, or every process's of
  the host in multiprocess mode, plus the state read now (messages and documents by status, queue depth,
  oldest job's age). Counts only: no label names a tenant. With ``METRICS_TOKEN`` set, a scrape must send
  ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.orm import Session

from core import health, metrics
from core.config import env
from dashboard.context import bulk_queue, queue, storage
from dashboard.extensions import db
from worker.policy import BULK, MAIL
from worker.queue import queues_of

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    problems = health.readiness(db.engine, queue().connection, storage())
    ready = not any(problems.values())
    body = {"status": "ready" if ready else "not ready",
            "checks": {name: problem or "ok" for name, problem in problems.items()}}
    return jsonify(body), 200 if ready else 503


@bp.get("/metrics")
def metrics_endpoint() -> Response | tuple[str, int]:
    token = (env("METRICS_TOKEN") or "")
    if token and not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return "metrics need their bearer token\n", 401
    registry = current_app.extensions.get("inbox.metrics")
    if registry is None:  # built once; its collector reads the state during each scrape (this request)
        state = metrics.StateCollector(lambda: Session(db.engine),
                                       lambda: {MAIL: [queue()], BULK: queues_of(bulk_queue())})
        registry = current_app.extensions.setdefault("inbox.metrics", metrics.registry_for_scrape(state))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
