"""Property-based fuzzing (Hypothesis) of what reads attacker-controlled bytes: email unpacking, e-invoice
XML, PDF text and field extraction, forwarding-mail recognition.

The property everywhere: any input either gives a result that keeps our invariants or raises the one
documented error that the pipeline turns into a visible reason; nothing else escapes. CI runs the short
profile; the long one is documented in docs/reliability.md:

    HYPOTHESIS_PROFILE=long .venv/bin/pytest -q tests/fuzz
"""

from __future__ import annotations

import os
import random
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.einvoice.model import EInvoiceError
from core.einvoice.reader import read_einvoice
from core.extraction import extract_pdf
from core.extraction.generic import extract_fields
from core.extraction.text import PdfUnreadable
from core.mail.authresults import parse_header
from core.mail.unpack import MAX_PARTS, MAX_TOTAL_BYTES, unpack
from core.mail.verification import recognize
from tests.invoicegen import make_invoice_pdf

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

pytestmark = [
    pytest.mark.timeout(900),
    # EmailMessage draws its MIME boundaries from `random`: harmless here, Hypothesis warns about it.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

# File names as mailers and attackers write them: traversal, NUL, control characters, very long, unicode.
NAMES = st.one_of(
    st.text(min_size=0, max_size=300),
    st.sampled_from(["../../etc/passwd", "..\\..\\boot.ini", "a\x00b.pdf", "/abs/path.pdf", "CON.pdf",
                     "<script>alert(1)</script>.pdf", "facture\u202egnp.pdf", "." * 300, "  .pdf  "]),
)
CONTENT_TYPES = st.sampled_from(["application/pdf", "application/octet-stream", "image/png", "image/jpeg",
                                 "text/xml", "application/zip", "application/ms-tnef", "message/rfc822",
                                 "text/plain", "application/x-garbage"])
CHARSETS = st.sampled_from(["utf-8", "latin-1", "x-unknown-charset", "utf-7", "", "windows-1252\"; foo="])


def _check_unpacked(raw: bytes) -> None:
    result = unpack(raw)
    assert len(result.attachments) <= MAX_PARTS
    assert sum(len(a.data) for a in result.attachments) <= MAX_TOTAL_BYTES
    for attachment in result.attachments:
        name = attachment.filename
        assert name and "/" not in name and "\\" not in name and "\x00" not in name and not name.startswith(".")
        assert len(name) <= 255
    if not result.attachments:
        assert result.reason, "nothing taken must say why"


@given(st.binary(max_size=4096))
def test_unpack_arbitrary_bytes(raw: bytes) -> None:
    _check_unpacked(raw)


@st.composite
def emails(draw: st.DrawFn, depth: int = 0) -> bytes:
    message = EmailMessage()
    message["From"] = draw(st.sampled_from(["a@b.example", "=?utf-8?q?=C3=A9?= <x@y.example>", "", "<>"]))
    message["Subject"] = draw(st.text(max_size=80).map(lambda s: "".join(c for c in s if c.isprintable())))
    message.set_content(draw(st.text(max_size=200)))
    names: list[bytes] = []
    for index in range(draw(st.integers(0, 3))):
        content_type = draw(CONTENT_TYPES)
        maintype, _, subtype = content_type.partition("/")
        if content_type == "message/rfc822" and depth < 3:
            inner = draw(emails(depth=depth + 1))
            message.add_attachment(inner, maintype="application", subtype="octet-stream", filename="fwd.eml")
            continue
        payload = draw(st.one_of(st.binary(max_size=2048), st.just(b"%PDF-1.4\n" + draw(st.binary(max_size=512)))))
        # The name goes in raw afterwards (8-bit, unescaped), as broken mailers write it.
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=f"NAME{index}.bin")
        names.append(draw(NAMES).encode("utf-8", "surrogatepass"))
    raw = message.as_bytes(policy=SMTP)
    for index, name in enumerate(names):
        raw = raw.replace(f"NAME{index}.bin".encode(), name)
    # Then what broken mailers do to it: a charset nobody knows, a cut-off end, a stray byte.
    charset = draw(CHARSETS)
    raw = raw.replace(b"charset=\"utf-8\"", f"charset=\"{charset}\"".encode(), 1)
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@given(emails())
def test_unpack_structured_emails(raw: bytes) -> None:
    _check_unpacked(raw)


@given(st.binary(max_size=4096))
def test_forwarding_recognition_never_crashes(raw: bytes) -> None:
    confirmation = recognize(raw)
    assert confirmation is None or confirmation.code is None or len(confirmation.code) < 100


@given(st.text(max_size=500))
def test_authentication_results_parser_never_crashes(value: str) -> None:
    parsed = parse_header(value)
    assert parsed is None or isinstance(parsed, dict)


XML_PIECES = st.sampled_from([
    b"<?xml version='1.0'?>", b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>", b"&e;",
    b"<rsm:CrossIndustryInvoice xmlns:rsm='urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100'>",
    b"</rsm:CrossIndustryInvoice>", b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'>",
    b"</Invoice>", b"<cbc:ID>", b"</cbc:ID>", b"<ram:TypeCode>381</ram:TypeCode>", b"\x00", b"\xff\xfe",
    b"<a>" * 50, b"1 234,56", b"<![CDATA[", b"]]>",
])


@given(st.lists(st.one_of(XML_PIECES, st.binary(max_size=64)), max_size=30).map(b"".join))
def test_einvoice_reader_raises_only_its_own_error(data: bytes) -> None:
    try:
        result = read_einvoice(data, "fuzz.xml")
    except EInvoiceError as exc:
        assert str(exc), "an e-invoice error must say why"
        return
    assert result is None or result.number is not None


@given(st.text(max_size=2000))
def test_generic_extractor_on_any_text(text: str) -> None:
    result = extract_fields(text)
    for name, value in result.fields.items():
        if name in {"total", "net", "tax"}:
            assert isinstance(value, Decimal)
        if name in {"issue_date", "due_date"}:
            assert isinstance(value, date)


_PDF = make_invoice_pdf(number="FZ-1", net=Decimal("10.00"), tax=Decimal("2.00"))


@settings(max_examples=int(os.environ.get("FUZZ_PDF_EXAMPLES", "40")))
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.booleans())
def test_pdf_extraction_on_damaged_pdfs(seed: int, flips: int, truncate: bool) -> None:
    rng = random.Random(seed)
    data = bytearray(_PDF)
    for _ in range(flips):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if truncate:
        del data[rng.randrange(len(data)):]
    try:
        result = extract_pdf(bytes(data), ocr=False)
    except PdfUnreadable as exc:
        assert str(exc)
        return
    assert result.pages >= 0
