"""Unpacking real and hand-made messages: every PDF is found, nothing raises."""

from __future__ import annotations

import base64
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from core.mail.unpack import NO_ATTACHMENT_REASON, PDF, sanitize_filename, sniff, unpack
from tests.corpus import CORPUS as SHARED
from tests.invoicegen import corrupt_pdf, make_email, make_image, make_invoice_pdf

CORPUS = SHARED / "eml"
CORPUS_FILES = sorted(CORPUS.glob("*.eml")) + sorted((CORPUS / "mime").glob("*.eml"))
# The messages MANIFEST.txt says carry a PDF (04: inside a forwarded message, 07: an unquoted encoded-word
# name, 32: inline inside S/MIME), with the name each must get.
CORPUS_PDFS = {
    "01_mikel_attachment_pdf.eml": "broken.pdf",
    "02_mikel_attachment_pdf_lf.eml": "broken.pdf",
    "03_mikel_attachment_pdf_non_ascii.eml": "broken.pdf",
    "04_mikel_attachment_message_rfc822.eml": "broken.pdf",
    "07_mikel_attachment_with_base64_encoded_name.eml": "This is a test.pdf",
    "32_mikel_raw_email7_smime_signed_pdf.eml": "test.pdf",
    "mailparser_mail_test_10.eml": "Move To Eight ZWEP6227F.pdf",  # application/octet-stream
    "mailparser_mail_test_2.eml": "Bollettino.pdf",
    "mailparser_mail_test_7.eml": "20170609091403417.pdf",
}

PDF_BYTES = make_invoice_pdf()
TO = "abc-def@in.example.test"


def forward(raw: bytes, levels: int) -> bytes:
    """``raw`` forwarded ``levels`` times, each time as a message/rfc822 attachment."""
    for level in range(levels):
        outer = EmailMessage()
        outer["From"] = f"relay{level}@example.test"
        outer["To"] = TO
        outer["Subject"] = f"Fwd: level {level}"
        outer.set_content("See the forwarded message.")
        outer.add_attachment(BytesParser(policy=policy.default).parsebytes(raw))
        raw = outer.as_bytes()
    return raw


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not mounted")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_message_never_raises_and_its_pdf_is_found(path: Path):
    result = unpack(path.read_bytes())
    assert result.attachments or result.reason
    names = [a.filename for a in result.attachments if a.content_type == PDF]
    if path.name in CORPUS_PDFS:
        assert CORPUS_PDFS[path.name] in names
    for att in result.attachments:
        assert att.data and "/" not in att.filename and len(att.filename) <= 150


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not mounted")
def test_corpus_zip_disguised_as_pdf_is_opened_and_explained():
    # The ".pdf" with a 200-character Polish name is a zip holding a zip holding a JavaScript dropper:
    # the bytes decide, the archive is opened (one nested level) and the reason names it, bounded.
    result = unpack((CORPUS / "mailparser_mail_test_11.eml").read_bytes())
    assert result.attachments == []
    assert "holds no PDF, image or e-invoice" in result.reason
    assert "Prokuratura Rejonowa Warszawa-Śródmieście" in result.reason and len(result.reason) < 400


def test_pdf_in_a_forwarded_message_three_levels_deep():
    raw = forward(make_email(TO, PDF_BYTES, filename="facture-novembre.pdf"), levels=3)
    result = unpack(raw)
    assert [(a.filename, a.content_type, a.data) for a in result.attachments] == [
        ("facture-novembre.pdf", PDF, PDF_BYTES)
    ]
    assert result.reason is None


def test_octet_stream_pdf_is_recognised_by_its_first_bytes():
    raw = make_email(TO, PDF_BYTES, filename="scan0001", content_type="application/octet-stream")
    [att] = unpack(raw).attachments
    assert att.content_type == PDF and att.filename == "scan0001" and att.data == PDF_BYTES


def test_pdf_declared_as_pdf_but_damaged_is_still_taken():
    # So that a person sees "could not be read" rather than the file silently disappearing.
    raw = make_email(TO, b"this is not a pdf at all", filename="facture.pdf")
    [att] = unpack(raw).attachments
    assert att.content_type == PDF


def test_rfc2231_file_name_is_decoded():
    raw = make_email(TO, PDF_BYTES, filename="Facture n°42 – Société Générale.pdf")
    assert b"filename*0*=utf-8''" in raw  # RFC 2231, with continuations
    [att] = unpack(raw).attachments
    assert att.filename == "Facture n°42 – Société Générale.pdf"


def test_encoded_word_file_names_quoted_and_unquoted_are_decoded():
    word = "=?utf-8?B?" + base64.b64encode("Récapitulatif été.pdf".encode()).decode() + "?="
    payload = base64.encodebytes(PDF_BYTES).decode()
    for header_value in (f'"{word}"', word):  # quoted (tolerated) and unquoted (illegal, but sent)
        raw = (
            "From: a@example.test\r\nTo: b@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            f"--b\r\nContent-Type: application/pdf; name={header_value}\r\n"
            f"Content-Disposition: attachment; filename={header_value}\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{payload}\r\n--b--\r\n"
        ).encode()
        [att] = unpack(raw).attachments
        assert att.filename == "Récapitulatif été.pdf", header_value


def test_unquoted_file_name_with_spaces_is_kept_whole():
    payload = base64.encodebytes(PDF_BYTES).decode()
    raw = (
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=Facture novembre 2026.pdf\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{payload}\r\n--b--\r\n"
    ).encode()
    [att] = unpack(raw).attachments
    assert att.filename == "Facture novembre 2026.pdf"


def test_pdf_inline_in_multipart_signed_is_found():
    inner = EmailMessage()
    inner.set_content("Signed body")
    inner.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="signed.pdf",
                         disposition="inline")
    signed = EmailMessage()
    signed["From"], signed["To"], signed["Subject"] = "a@example.test", TO, "signed"
    signed.set_type("multipart/signed")
    signed.set_param("protocol", "application/pkcs7-signature")
    signed.attach(inner)
    signature = EmailMessage()
    signature.set_content(b"\x30\x82fake-signature", maintype="application", subtype="pkcs7-signature",
                          filename="smime.p7s")
    signed.attach(signature)
    [att] = unpack(signed.as_bytes()).attachments
    assert att.filename == "signed.pdf" and att.data == PDF_BYTES


def test_message_without_attachment_gives_the_reason():
    result = unpack(make_email(TO, None))
    assert result.attachments == [] and result.reason == NO_ATTACHMENT_REASON


def test_small_images_are_signature_logos_and_large_ones_are_taken():
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.test", TO, "photo"
    message.set_content("Photo of the receipt")
    logo = make_image(8, 8)
    photo = make_image(400, 400)
    assert len(logo) < 10 * 1024 < len(photo)
    message.add_attachment(logo, maintype="image", subtype="png", filename="logo.png")
    message.add_attachment(photo, maintype="application", subtype="octet-stream", filename="IMG_0001")
    [att] = unpack(message.as_bytes()).attachments
    assert (att.filename, att.content_type) == ("IMG_0001", "image/png")


def test_missing_name_gets_a_generated_one_and_part_indexes_are_stable():
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.test", TO, "two files"
    message.set_content("two")
    message.add_attachment(PDF_BYTES, maintype="application", subtype="pdf")
    message.add_attachment(corrupt_pdf(), maintype="application", subtype="octet-stream")
    raw = message.as_bytes()
    first, second = unpack(raw).attachments
    assert (first.filename, second.filename) == ("attachment-1.pdf", "attachment-2.pdf")
    assert [a.part_index for a in unpack(raw).attachments] == [first.part_index, second.part_index]
    assert first.part_index != second.part_index


def test_parts_beyond_the_limit_are_not_examined():
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.test", TO, "many"
    message.set_content("many")
    for i in range(10):
        message.add_attachment(b"not interesting %d" % i, maintype="application", subtype="octet-stream",
                               filename=f"f{i}.bin")
    message.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="late.pdf")
    result = unpack(message.as_bytes(), max_parts=5)
    assert result.attachments == []
    assert result.reason.startswith(NO_ATTACHMENT_REASON) and "first 5 parts" in result.reason
    assert [a.filename for a in unpack(message.as_bytes()).attachments] == ["late.pdf"]


def test_total_size_is_bounded():
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.test", TO, "big"
    message.set_content("big")
    for i in range(3):
        message.add_attachment(PDF_BYTES + b"%" * i, maintype="application", subtype="pdf", filename=f"{i}.pdf")
    result = unpack(message.as_bytes(), max_total_bytes=2 * len(PDF_BYTES) + 10)
    assert [a.filename for a in result.attachments] == ["0.pdf", "1.pdf"]
    assert result.reason and "not imported" in result.reason


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff" * 100, b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n", b"From:\r\n\r\n%PDF-"],
    ids=["empty", "binary", "bad-boundary", "headers-only"],
)
def test_garbage_never_raises(raw: bytes):
    result = unpack(raw)
    assert isinstance(result.attachments, list)


def test_sniffing_and_sanitising():
    assert sniff(b"junk\n%PDF-1.4") == PDF and sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg" and sniff(b"II*\x00") == "image/tiff"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp" and sniff(b"GIF89a") == "image/gif"
    assert sniff(b"PK\x03\x04") is None
    assert sanitize_filename("..\\..\\C:\\Windows\\facture.pdf", PDF) == "facture.pdf"
    assert sanitize_filename("a\x00b\u202ecod.pdf", PDF) == "a b cod.pdf"  # no NUL, no bidi override
    assert sanitize_filename("   ", PDF, 3) == "attachment-3.pdf"
    long = sanitize_filename("x" * 400 + ".pdf", PDF)
    assert len(long) == 150 and long.endswith(".pdf")


def test_one_received_email_is_parsed_once_for_every_reader() -> None:
    """Issue 16: the ingest job's readers share one ReceivedEmail; its MIME tree is built once, on first use,
    and nothing is kept once the job lets go of it (no thread-local cache)."""
    from core.banking.transactions import _mail_parts
    from core.mail import parsed
    from core.mail.verification import recognize

    raw = make_email("abc@in.example.test", make_invoice_pdf())
    email = parsed.ReceivedEmail(raw)
    assert email._message is None  # the header block is enough for the first readers
    assert recognize(email) is None and email._message is None  # not from a provider: no body parse
    tree = email.message
    assert [name for name, _ in _mail_parts(email)] == ["facture.pdf"]
    assert [a.filename for a in unpack(email).attachments] == ["facture.pdf"]
    assert email.message is tree  # parsed once
    assert parsed.ReceivedEmail(raw).message is not tree  # another job parses its own
    assert not hasattr(parsed, "forget")
