"""What French and English cost when rendering: pages in each language, and the per-value formatters.

    .venv/bin/python bench/i18n_render.py [--requests 100]

In-process (Flask test client, SQLite in a temporary directory, the real migrations): one tenant with 50
confirmed invoices and 50 documents pending verification, so that the list pages show 50 rows (each with
a translated status badge, an amount and dates). Times each page with ``Accept-Language: en`` then ``fr``
(p50/p95 over N requests after 3 warm-ups), then the formatters per call: ``format_money`` and
``format_date`` as the ``money``/``dmy`` filters call them, and ``translate`` (``|tr``) for a known label,
a stored reason recognised from its ``{name}`` template, the same reason rendered from its stored code
(``reason_text``, the ``|reason`` filter), and unknown text.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402

from core.config import Settings  # noqa: E402
from core.documents.review import find_or_create_client  # noqa: E402
from core.fields import number_key  # noqa: E402
from core.inbound import senders  # noqa: E402
from core.models import Document, DocumentStatus, Invoice, Role, StoredFile  # noqa: E402
from core.tenancy import accounts  # noqa: E402
from dashboard import i18n  # noqa: E402
from dashboard.app import MIGRATIONS_DIR, create_app  # noqa: E402
from dashboard.extensions import db  # noqa: E402

PASSWORD = "bench password 2026"
PAGES = ["/invoices", "/pending", "/clients", "/analytics", "/settings"]
LANGUAGES = {"en": "en-GB,en;q=0.9", "fr": "fr-FR,fr;q=0.9"}


def seed(app, rows: int) -> str:  # noqa: ANN001
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision="heads")
        session = db.session
        tenant, _address = accounts.create_tenant(session, "Bench SAS")
        user = accounts.create_user(session, "bench@example.com", PASSWORD, tenant, Role.ADMIN)
        for i in range(rows):
            stored = StoredFile(tenant_id=tenant.id, sha256=f"{i:064x}", size=1000, content_type="application/pdf",
                                storage_key=f"bench/{i}")
            session.add(stored)
            session.flush()
            client = find_or_create_client(session, tenant.id, f"Client {i % 10}")
            session.add(Invoice(tenant_id=tenant.id, direction="receivable", doc_type="invoice",
                                number=f"FA-{i:05d}", number_key=number_key(f"FA-{i:05d}"), client_id=client.id,
                                file_id=stored.id, amount=Decimal("1234.56") + i, currency="EUR",
                                issue_date=date(2026, 1, 5), due_date=date(2026, 2, 5), issuer="Bench SAS"))
            session.add(Document(tenant_id=tenant.id, part_index=i, file_id=stored.id, filename=f"scan-{i}.pdf",
                                 status=DocumentStatus.PENDING.value, amount=Decimal("99.90"), currency="EUR",
                                 number=f"P-{i}", field_info={}))
        session.commit()
        return user.email


def timed(call, n: int) -> tuple[float, float]:  # noqa: ANN001
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rows", type=int, default=50)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-i18n-"))
    settings = replace(Settings.from_env(), var_dir=workdir, database_url=f"sqlite:///{workdir / 'bench.db'}",
                       storage_dir=workdir / "storage", secret_key="bench")
    app = create_app(settings)
    email = seed(app, args.rows)
    client = app.test_client()
    token_page = client.get("/login").get_data(as_text=True)
    token = token_page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 302

    print(f"| page ({args.rows} rows) | en p50 ms | en p95 ms | fr p50 ms | fr p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for path in PAGES:
        cells = []
        for header in LANGUAGES.values():
            def get(path: str = path, header: str = header) -> None:
                assert client.get(path, headers={"Accept-Language": header}).status_code == 200
            for _ in range(3):
                get()
            cells += timed(get, args.requests)
        print(f"| {path} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")

    reason = senders.NOT_ALLOWED_REASON.format(sender="anne@example.com")
    coded = SimpleNamespace(reason=reason, reason_code=senders.NOT_ALLOWED_REASON,
                            reason_params={"sender": "anne@example.com"})
    print("\n| formatter, per call | en µs | fr µs |")
    print("|---|---:|---:|")
    calls = {
        "format_money(1234.56, EUR)": lambda: i18n.format_money(Decimal("1234.56"), "EUR"),
        "format_date(date)": lambda: i18n.format_date(date(2026, 11, 24)),
        "translate(known label)": lambda: i18n.translate("Partially paid"),
        "translate(stored {name} reason)": lambda: i18n.translate(reason),
        # Issue 16 step 5: the same reason stored as code + parameters (core/reasons.py), no regex scan.
        "reason_text(stored code + params)": lambda: i18n.reason_text(coded),
        "translate(unknown text)": lambda: i18n.translate("Dupont Conseil SARL, facture de novembre"),
    }
    for name, call in calls.items():
        cells = []
        for header in LANGUAGES.values():
            with app.test_request_context("/", headers={"Accept-Language": header}):  # its own app context
                call()
                start = time.perf_counter()
                for _ in range(10_000):
                    call()
                cells.append((time.perf_counter() - start) * 100)  # µs per call over 10,000
        print(f"| {name} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
