"""The real-world corpus the way a user sends it (issue 13): e-mailed, queued, extracted, read back by the API.

    .venv/bin/python bench/realworld_mail.py [--json] [--files N]

Every file of ``realworld/`` is attached to its own e-mail and sent over SMTP to a tenant's address on the
real gateway (``mailgate.smtp``, a loopback socket); a real ``inbox worker`` process takes the jobs from a
real redis-server; the fields are read back through the JSON API (``GET /api/v1/messages`` and
``/api/v1/documents/<id>`` with a bearer token) once every message and document is final, and scored with
``bench/realworld.py``'s scoring (imported). The report gives the figures per field next to the in-process
bench's (``realworld.run``) and every field on which the two paths differ.

The environment is built as the tests build theirs (``tests/conftest.py``, ``tests/services.py``): a
temporary directory, a migrated SQLite database, a private redis-server. ``tests/test_realworld_mail.py``
calls ``mail_corpus`` with its own fixtures instead.

Not scored through the API: the issuer's VAT id (a document has no such field; ``bench/realworld.py``
scores what the extractor found, which the product keeps only for client matching).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import smtplib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import realworld  # noqa: E402
from tests.invoicegen import make_email  # noqa: E402
from tests.services import process_env  # noqa: E402

# What the API calls a field -> what bench/realworld.py's reads call it (the extractor's names).
API_NAMES = {"type": "doc_type"}
TYPED = {"amount": Decimal, "net_amount": Decimal, "tax_amount": Decimal,
         "issue_date": date.fromisoformat, "due_date": date.fromisoformat}
SCORED_THROUGH_API = tuple(n for n in realworld.FIELDS if n != "issuer_vat")
FINAL_MESSAGES = {"processed", "failed", "ignored", "quarantined"}
SENDER = "Comptabilité <compta@bench.example>"  # the user forwarding the invoices


@dataclass
class Mailed:
    """One corpus file after the mailed path: its message and the documents made of it."""

    file: str
    message: dict[str, Any] = field(default_factory=dict)
    documents: list[dict[str, Any]] = field(default_factory=list)

    def visible_state(self) -> str | None:
        """Why this file is not in a state a person can act on, or None when it is."""
        if self.message.get("status") == "failed":
            return None if self.message.get("reason") else "message failed without a reason"
        if self.message.get("status") != "processed":
            return f"message {self.message.get('status')!r}"
        if not self.documents:
            return "processed message without a document"
        for doc in self.documents:
            if doc["status"] == "failed" and not doc["reason"]:
                return f"document {doc['id']} failed without a reason"
            if doc["status"] not in ("pending", "failed", "duplicate"):
                return f"document {doc['id']} is {doc['status']!r}"
        return None


def send_file(port: int, to: str, path: Path) -> None:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    raw = make_email(to, path.read_bytes(), filename=path.name, subject=f"Invoice {path.name}", sender=SENDER,
                     content_type=content_type, body="Forwarded invoice.\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        refused = client.sendmail("compta@bench.example", [to], raw)
    if refused:
        raise RuntimeError(f"{path.name}: refused by the gateway: {refused}")


def _get(client: Any, token: str, path: str) -> Any:
    response = client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.get_data(as_text=True)[:200]}")
    return response.get_json()


def _all(client: Any, token: str, path: str) -> list[dict[str, Any]]:
    """Every item of a paginated API list."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = _get(client, token, f"{path}{'&' if '?' in path else '?'}page={page}&per_page=100")
        items += body["items"]
        if len(body["items"]) < 100:
            return items
        page += 1


def wait_until_final(client: Any, token: str, expected: int, timeout: float, worker: subprocess.Popen[bytes]
                     ) -> list[dict[str, Any]]:
    """The tenant's messages once ``expected`` of them are final and no document is still extracting."""
    deadline = time.monotonic() + timeout
    while True:
        messages = _all(client, token, "/messages")
        final = [m for m in messages if m["status"] in FINAL_MESSAGES]
        if len(final) >= expected:
            extracting = _all(client, token, "/documents?status=extracting")
            if not extracting:
                return messages
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}) with {len(final)}/{expected} messages final")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(final)}/{expected} messages final after {timeout:.0f} s")
        time.sleep(0.5)


def as_read(file: str, docs: list[dict[str, Any]]) -> realworld.Read:
    """The first document of a file as bench/realworld.py's ``Read`` (typed values, the extractor's names)."""
    read = realworld.Read(file, "", 1)
    if not docs:
        read.error = "no document"
        return read
    doc = docs[0]
    for name in SCORED_THROUGH_API:
        value = doc.get(name)
        if value is not None and name in TYPED:
            value = TYPED[name](value)
        read.fields[API_NAMES.get(name, name)] = value
    read.info = {k: v for k, v in (doc.get("field_info") or {}).items() if isinstance(v, dict)}
    return read


def mail_corpus(settings: Any, smtp_port: int, address: str, client: Any, token: str,
                rows: list[dict[str, str]], timeout: float = 600) -> tuple[list[Mailed], float]:
    """Send ``rows``' files to ``address``, run a worker until all is final; each file's outcome and the
    seconds from the first e-mail to the last final document."""
    started = time.monotonic()
    for row in rows:
        send_file(smtp_port, address, realworld.REALWORLD / row["file"])
    # The worker's log goes to a file: a pipe nobody reads while waiting would fill and block the worker.
    log_path = Path(settings.var_dir) / "realworld-mail-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "worker"], env=process_env(settings),
                                  stdout=log, stderr=subprocess.STDOUT)
        try:
            messages = wait_until_final(client, token, len(rows), timeout, worker)
            seconds = time.monotonic() - started
        except (RuntimeError, TimeoutError) as exc:
            tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; the worker's log ends with:\n{tail}") from exc
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    by_subject = {m["subject"]: m for m in messages}
    outcomes = []
    for row in rows:
        message = by_subject.get(f"Invoice {row['file']}", {})
        docs = [_get(client, token, f"/documents/{doc_id}") for doc_id in message.get("documents", [])]
        outcomes.append(Mailed(row["file"], message, docs))
    return outcomes, seconds


def report(rows: list[dict[str, str]], outcomes: list[Mailed]) -> dict[str, Any]:
    """Scored as bench/realworld.py scores (its ``score``), over the fields the API shows."""
    reads = {m.file: as_read(m.file, m.documents) for m in outcomes}
    result = realworld.score(rows, reads)
    right_unflagged, shown = realworld.unflagged(result.judged)
    return {
        "files": len(rows),
        "per_field": {n: {"right": result.right.get(n, 0), "scored": result.scored.get(n, 0)}
                      for n in SCORED_THROUGH_API},
        "key": result.share(realworld.KEY_FIELDS),
        "all": result.share(realworld.MAIN_FIELDS),
        "unflagged": (right_unflagged, shown),
        "misses": [m for m in result.misses if m["field"] in SCORED_THROUGH_API],
        "documents": {m.file: len(m.documents) for m in outcomes},
        "states": {m.file: [(d["status"], d["reason"]) for d in m.documents] or [(m.message.get("status"),
                                                                                m.message.get("reason"))]
                   for m in outcomes},
        "not_visible": {m.file: why for m in outcomes if (why := m.visible_state())},
    }


def differences(mailed: dict[str, Any], in_process: dict[str, Any]) -> list[dict[str, str]]:
    """The (file, field) pairs right on one path and wrong on the other."""
    def wrong(rep: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {(m["file"], m["field"]): m["got"] for m in rep["misses"] if m["field"] in SCORED_THROUGH_API}

    a, b = wrong(mailed), wrong(in_process)
    return [{"file": f, "field": n, "mailed": a.get((f, n), "(right)"), "in_process": b.get((f, n), "(right)")}
            for f, n in sorted(set(a) ^ set(b) | {k for k in set(a) & set(b) if a[k] != b[k]})]


def markdown(mailed: dict[str, Any], in_process: dict[str, Any] | None, seconds: float) -> str:
    pct = realworld._pct  # noqa: SLF001 - the bench's own formatting, not copied
    out = [f"{mailed['files']} files mailed; all final after {seconds:.1f} s.", "",
           "| field | mailed (SMTP → worker → API) | in process (bench/realworld.py) |", "|---|---|---|"]
    for name, counts in mailed["per_field"].items():
        other = in_process["per_field"][name] if in_process else None
        out.append(f"| {name} | {pct((counts['right'], counts['scored']))} | "
                   f"{pct((other['right'], other['scored'])) if other else '-'} |")
    for key, title in (("key", "**key fields**"), ("all", "**all fields** (the issue's eight)"),
                       ("unflagged", "right among fields shown without a check flag")):
        out.append(f"| {title} | {pct(mailed[key])} | {pct(in_process[key]) if in_process else '-'} |")
    split = {f: n for f, n in mailed["documents"].items() if n != 1}
    out += ["", f"Documents per file other than one: {split or 'none'}.",
            f"Files not in a visible state: {mailed['not_visible'] or 'none'}."]
    states: dict[str, int] = {}
    for pairs in mailed["states"].values():
        for status, _reason in pairs:
            states[status] = states.get(status, 0) + 1
    out.append(f"States: {states}.")
    if in_process is not None:
        diff = differences(mailed, in_process)
        out += ["", f"Fields on which the two paths differ ({len(diff)}):", ""]
        if diff:
            out += ["| file | field | mailed | in process |", "|---|---|---|---|"]
            out += [f"| {d['file']} | {d['field']} | {d['mailed'][:60]} | {d['in_process'][:60]} |" for d in diff]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--files", type=int, default=0, help="mail only the first N files (0: all)")
    parser.add_argument("--no-compare", action="store_true", help="leave out the in-process bench")
    args = parser.parse_args()
    if not realworld.REALWORLD.is_dir():
        print(f"the real-world corpus is not at {realworld.REALWORLD} (set INBOX_CORPUS)", file=sys.stderr)
        return 2
    import os

    os.environ.setdefault("SENDER_AUTH_DNS", "off")  # no DNS here: as the test suite runs
    from mailgate.smtp import build_controller
    from tests.conftest import _base_settings, _migrate, make_tenant
    from tests.services import RedisProcess, free_port

    rows = realworld.manifest()[: args.files or None]
    with tempfile.TemporaryDirectory(prefix="inbox-realworld-mail-") as tmp:
        var = Path(tmp)
        redis_server = RedisProcess(var / "redis")
        redis_server.start()
        try:
            settings = _base_settings(var / "var", f"sqlite:///{var / 'inbox.db'}", redis_server.url)
            _migrate(settings)
            from core.db import make_engine, make_session_factory
            from dashboard.app import create_app

            engine = make_engine(settings.database_url)
            with make_session_factory(engine)() as session:
                tenant = make_tenant(session, "Realworld Bench", "bench@bench.example")
            engine.dispose()
            port = free_port()
            controller = build_controller(settings, hostname="127.0.0.1", port=port)
            controller.start()
            try:
                client = create_app(settings, TESTING=True).test_client()
                outcomes, seconds = mail_corpus(settings, port, tenant.address, client, tenant.token, rows)
            finally:
                controller.stop()
        finally:
            redis_server.stop()
    mailed = report(rows, outcomes)
    in_process = None if args.no_compare or args.files else realworld.run()
    if args.json:
        print(json.dumps({"mailed": mailed, "seconds": seconds, "in_process": in_process,
                          "differences": differences(mailed, in_process) if in_process else None},
                         indent=1, default=str))
    else:
        print(markdown(mailed, in_process, seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
