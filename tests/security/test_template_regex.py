"""Finding 3 of issue #14: template regexes froze processes.

The validator refuses nested repeats whose bounds multiply beyond a limit, and every regex invoice2data
runs for a template has a hard time limit (core.extraction.regexguard), which releases the GIL: the
template trial over HTTP answers within 15 s, and the same server answers other requests meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from core.documents import templates as svc
from core.extraction import templated
from core.extraction.text import read_pdf
from core.files.storage import FileStorage
from tests.conftest import TenantFixture
from tests.invoicegen import make_invoice_pdf
from tests.test_extraction_pipeline import extract, new_document
from tests.test_templates import GOOD, make_new_layout_pdf

BRIEF = r"(?:[\s\S]{0,100}){0,100}"  # the pattern of the finding: held a gunicorn worker for 30 s
# Valid for the validator (no nested variable repeat), catastrophic all the same: only a time limit helps.
SLOW = r"(?:[^#@]|[^#@]{2}){0,60}[#@]"


def with_amount(pattern: str) -> str:
    return GOOD.replace(r"amount: Somme\s+due\s*(\d[\d .,]{0,20}\d)", f"amount: '{pattern}'")


def test_validator_refuses_nested_repeats_that_multiply() -> None:
    assert "ways to split a text" in (svc.regex_problem(BRIEF) or "")
    assert svc.regex_problem(r"(?:[^#@]{0,30}){0,30}[#@]") is not None
    with pytest.raises(svc.TemplateInvalid) as refused:
        svc.parse_source(with_amount(BRIEF))
    assert any("fields.amount" in p for p in refused.value.problems)
    for fine in (r"(?:\d{3})+", r"(?:\d{1,3}[ .]){0,4}\d{1,3}", r"Somme\s+due\s*(\d[\d .,]{0,20}\d)"):
        assert svc.regex_problem(fine) is None, fine
    assert svc.regex_problem(SLOW) is None  # what the time limit below is for


def test_a_slow_template_regex_is_stopped_in_the_extraction() -> None:
    text = read_pdf(make_new_layout_pdf()).best
    template = svc.compile_source(with_amount(SLOW), "slow")
    started = time.monotonic()
    trial = templated.try_template(template, text)
    elapsed = time.monotonic() - started
    assert trial.matched and "took too long" in (trial.error or "")
    assert elapsed < templated.TEMPLATE_SECONDS + 5, elapsed
    started = time.monotonic()
    assert templated.apply_templates(text, [template]) is None  # skipped, the worker goes on
    assert time.monotonic() - started < templated.TEMPLATE_SECONDS + 5
    # A good template still reads its fields through the same guarded engine.
    good = templated.try_template(svc.compile_source(GOOD, "good"), text)
    assert good.extraction is not None and str(good.extraction.fields["amount"]) == "3456.78"


@pytest.fixture
def threaded_server(app: Flask) -> Iterator[str]:
    """The app served by werkzeug's threaded server (one process: a regex holding the GIL stalls it all)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=30)


def test_template_trial_answers_within_15_s_and_the_api_answers_meanwhile(
    threaded_server: str, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    doc = extract(session, storage, new_document(session, storage, tenant.tenant.id, make_new_layout_pdf(),
                                                 "application/pdf", "a.pdf"))
    headers = {"Authorization": f"Bearer {tenant.token}"}
    url = f"{threaded_server}/api/v1/templates/test"
    started = time.monotonic()
    refused = requests.post(url, headers=headers, json={"source": with_amount(BRIEF), "document_id": doc.id},
                            timeout=15)
    assert refused.status_code == 422 and time.monotonic() - started < 15

    answers: dict[str, object] = {}

    def trial() -> None:
        began = time.monotonic()
        answers["response"] = requests.post(url, headers=headers, timeout=15,
                                            json={"source": with_amount(SLOW), "document_id": doc.id})
        answers["seconds"] = time.monotonic() - began

    worker = threading.Thread(target=trial)
    worker.start()
    time.sleep(0.5)  # the trial is matching now
    slowest = 0.0
    while worker.is_alive():
        began = time.monotonic()
        assert requests.get(f"{threaded_server}/api/v1/tenant", headers=headers, timeout=5).status_code == 200
        slowest = max(slowest, time.monotonic() - began)
        time.sleep(0.2)
    worker.join()
    response = answers["response"]
    assert response.status_code == 200 and answers["seconds"] < 15
    assert "took too long" in response.json()["document"]["error"]
    assert slowest < 2.0, f"a request waited {slowest:.1f} s behind the template trial"
    print(f"\ntemplate trial answered in {answers['seconds']:.1f} s; slowest parallel request {slowest:.2f} s")


SLOW_ON_DUPONT = f"""
issuer: Dupont Conseil SARL
keywords:
  - "Dupont Conseil"
fields:
  invoice_number: 'Facture\\s+N°\\s*:\\s*(\\S+)'
  amount: '{SLOW}'
  date: 'Date\\s*:\\s*(\\d{{2}}/\\d{{2}}/\\d{{4}})'
options:
  currency: EUR
  date_formats: ["%d/%m/%Y"]
"""


def test_many_slow_templates_cost_a_document_at_most_the_total_bound(
    session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    """Review fix-limits 3: each template has its own 5 s, so 25 templates whose keyword is on the invoice
    would cost ~25 s per text read (and up to 3 texts are tried); the whole document has ``TOTAL_SECONDS``,
    then the generic extractor reads it and the reviewer is told why no template did."""
    tid = tenant.tenant.id
    for i in range(25):
        svc.create_template(session, tid, f"slow {i}", SLOW_ON_DUPONT, None)
    session.commit()
    doc = new_document(session, storage, tid, make_invoice_pdf(), "application/pdf", "slow.pdf")
    started = time.monotonic()
    doc = extract(session, storage, doc)
    elapsed = time.monotonic() - started
    assert elapsed < templated.TOTAL_SECONDS + 5, f"extraction took {elapsed:.1f} s"
    # The generic extractor's fields, and a note the reviewer can act on.
    assert doc.number == "FA-2026-0042" and doc.amount == Decimal("1200.00")
    assert doc.extraction_source == "generic"
    assert templated.TEMPLATES_OUT_OF_TIME in (doc.extraction_details or {}).get("notes", [])
    print(f"\n25 slow templates: extraction ended in {elapsed:.1f} s")
