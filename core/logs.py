"""Log set-up shared by the processes: text by default, one JSON object per line with ``LOG_FORMAT=json``.

A JSON line carries the message or document id it concerns: given with ``extra={"message_id": ...}`` /
``extra={"document_id": ...}``, or else taken from the RQ job running now (its id is deterministic:
``ingest-message-<id>``, ``extract-document-<id>``). Never the contents of a message or a file.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from core.config import env

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JOB_ID = re.compile(r"^(ingest-message|extract-document)-(\d+)$")
_ID_FIELDS = {"ingest-message": "message_id", "extract-document": "document_id"}


def _current_job_id() -> str | None:
    try:
        from rq import get_current_job

        job = get_current_job()
    except Exception:  # outside a worker, or no Redis: no job to name
        return None
    return job.id if job is not None else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("message_id", "document_id", "tenant_id"):
            if (value := getattr(record, field, None)) is not None:
                line[field] = value
        job_id = _current_job_id()
        if job_id is not None:
            line["job_id"] = job_id
            if (found := _JOB_ID.match(job_id)) and _ID_FIELDS[found.group(1)] not in line:
                line[_ID_FIELDS[found.group(1)]] = int(found.group(2))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: int = logging.INFO) -> None:
    """Set up the root logger once for this process, as ``LOG_FORMAT`` (text or json) asks."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        json_logs = (env("LOG_FORMAT") or "text").strip().lower() == "json"
        handler.setFormatter(JsonFormatter() if json_logs else logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
    root.setLevel(level)
