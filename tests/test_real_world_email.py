"""Real-world email: odd file names, wrong types, logos, forwards, zips, winmail.dat, e-invoice XML, repeats.

Every message is built here (the zip bomb in memory, the TNEF file by a small writer below: tnefparse
only reads). The last test sends every corpus message through the real pipeline: stored, ingested,
extracted, each ending in a state with a reason.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import intake
from core.mail import archives
from core.mail.authresults import authentication_results, parse_header
from core.mail.images import ImageTooLarge, image_size, is_document_image
from core.mail.unpack import NO_ATTACHMENT_REASON, ONLY_LOGOS_REASON, PDF, XML, unpack
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus
from tests.conftest import TenantFixture
from tests.corpus import CORPUS as SHARED
from tests.invoicegen import make_email, make_image, make_invoice_pdf

PDF_BYTES = make_invoice_pdf()
TO = "abc-def@in.example.test"
CORPUS = SHARED / "eml"
# The two e-mails of tests/fixtures/ run on every clone, the shared corpus's where it is present.
FIXTURE_FILES = sorted((Path(__file__).resolve().parent / "fixtures" / "eml").glob("*.eml"))
CORPUS_FILES = FIXTURE_FILES + sorted(CORPUS.glob("*.eml")) + sorted((CORPUS / "mime").glob("*.eml"))
# Where MANIFEST.txt (and the mail-parser README) say a PDF is present: a document must be created.
CORPUS_PDFS = {
    "01_mikel_attachment_pdf.eml", "02_mikel_attachment_pdf_lf.eml", "03_mikel_attachment_pdf_non_ascii.eml",
    "04_mikel_attachment_message_rfc822.eml", "07_mikel_attachment_with_base64_encoded_name.eml",
    "32_mikel_raw_email7_smime_signed_pdf.eml", "mailparser_mail_test_10.eml", "mailparser_mail_test_2.eml",
    "mailparser_mail_test_7.eml",
}

UBL_INVOICE = b"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:ID>FA-2026-0099</cbc:ID><cbc:IssueDate>2026-11-20</cbc:IssueDate>
 <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode><cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
 <cac:AccountingSupplierParty><cac:Party><cac:PartyName><cbc:Name>Dupont Conseil</cbc:Name></cac:PartyName>
  </cac:Party></cac:AccountingSupplierParty>
 <cac:AccountingCustomerParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Acme SAS</cbc:RegistrationName>
  </cac:PartyLegalEntity></cac:Party></cac:AccountingCustomerParty>
 <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">20.00</cbc:TaxAmount></cac:TaxTotal>
 <cac:LegalMonetaryTotal><cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
  <cbc:TaxInclusiveAmount currencyID="EUR">120.00</cbc:TaxInclusiveAmount>
  <cbc:PayableAmount currencyID="EUR">120.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
</Invoice>
"""


def message_with(*parts: tuple[bytes, str, str], sender: str = "compta@dupont.example") -> bytes:
    """A message with a text body and ``(data, content type, file name)`` attachments."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, TO, "Facture"
    message["Message-ID"] = "<rw-1@dupont.example>"
    message.set_content("Bonjour, ci-joint.")
    for data, content_type, name in parts:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes(policy=policy.SMTP)


def raw_mime(attachment_headers: str, payload: bytes, *, body_charset: str = "utf-8") -> bytes:
    """A hand-written multipart message, for headers no library would write (illegal but real)."""
    import base64

    encoded = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    return (
        "From: a@example.test\r\nTo: " + TO + "\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        f"--XX\r\nContent-Type: text/plain; charset={body_charset}\r\n\r\nCaf\xe9 ok\r\n"
        f"--XX\r\n{attachment_headers}\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--XX--\r\n"
    ).encode("latin-1")


def zip_of(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


# File names and types ------------------------------------------------------------------------------


def test_rfc2231_name_with_a_broken_byte_on_an_octet_stream_pdf():
    headers = ("Content-Type: application/octet-stream\r\n"
               "Content-Disposition: attachment; filename*=iso-8859-1''Facture%20n%B0%2042%FF.pdf")
    [att] = unpack(raw_mime(headers, PDF_BYTES)).attachments
    assert att.content_type == PDF and att.data == PDF_BYTES
    assert att.filename.startswith("Facture n°") and att.filename.endswith(".pdf")


def test_rfc2231_continuations_and_utf8():
    headers = ("Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n"
               " filename*0*=utf-8''Facture%20%C3%A9t%C3%A9%20;\r\n filename*1*=2026.pdf")
    [att] = unpack(raw_mime(headers, PDF_BYTES)).attachments
    assert att.filename == "Facture été 2026.pdf"


def test_encoded_word_name_with_an_invalid_utf8_byte_is_kept_readable():
    headers = 'Content-Type: application/pdf; name="=?utf-8?Q?Facture_=C3=A9t=FF.pdf?="'
    [att] = unpack(raw_mime(headers, PDF_BYTES)).attachments
    assert att.content_type == PDF and att.filename.endswith(".pdf") and "/" not in att.filename


@pytest.mark.parametrize("declared", ["image/jpeg", "text/plain", "application/msword", "application/octet-stream"])
def test_pdf_with_a_wrong_type_is_recognised_by_its_bytes(declared: str):
    [att] = unpack(message_with((PDF_BYTES, declared, "scan0001.bin"))).attachments
    assert att.content_type == PDF and att.data == PDF_BYTES


def test_unknown_body_charset_does_not_hide_the_pdf():
    headers = 'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="f.pdf"'
    raw = raw_mime(headers, PDF_BYTES, body_charset="fakescii")
    [att] = unpack(raw).attachments
    assert att.filename == "f.pdf"


# Images: invoices versus logos ---------------------------------------------------------------------


def _flat_png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (255, 255, 255)).save(out, format="PNG")
    return out.getvalue()


def _png_header_claiming(width: int, height: int, pad: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + b"\x00" * pad
    return data + struct.pack(">I", pad) + idat + struct.pack(">I", zlib.crc32(idat))


def test_logo_by_bytes_and_by_pixels_is_skipped_photo_is_kept():
    photo = make_image(400, 400)  # noisy: large in bytes and in pixels
    wide_banner = make_image(600, 120)  # > 10 KB, but 120 px high: a signature banner
    tiny_bytes = _flat_png(1200, 1200)  # many pixels, under 10 KB: a blank image
    assert len(tiny_bytes) < 10 * 1024 < len(wide_banner)
    assert is_document_image(photo) and not is_document_image(wide_banner) and not is_document_image(tiny_bytes)
    raw = message_with((wide_banner, "image/png", "logo.png"), (tiny_bytes, "image/png", "blank.png"),
                       (photo, "image/png", "IMG_2041.png"))
    assert [a.filename for a in unpack(raw).attachments] == ["IMG_2041.png"]


def test_only_logos_says_so():
    raw = message_with((make_image(600, 120), "image/png", "logo.png"))
    result = unpack(raw)
    assert result.attachments == [] and result.reason == ONLY_LOGOS_REASON


def test_decompression_bomb_header_is_read_not_decoded_and_kept_for_a_visible_refusal():
    bomb = _png_header_claiming(200_000, 200_000, pad=20 * 1024)
    with pytest.raises(ImageTooLarge):
        image_size(bomb)
    # Kept as a file (OCR then refuses it with a reason a person sees), never decoded while unpacking.
    [att] = unpack(message_with((bomb, "image/png", "bomb.png"))).attachments
    assert att.content_type == "image/png"


# Forwarded messages --------------------------------------------------------------------------------


def test_pdf_forwarded_five_levels_deep_some_levels_base64_encoded():
    raw = make_email(TO, PDF_BYTES, filename="facture-octobre.pdf")
    for level in range(5):
        outer = EmailMessage()
        outer["From"], outer["To"], outer["Subject"] = f"relay{level}@example.test", TO, f"Fwd: {level}"
        outer.set_content("Forwarded.")
        if level % 2:  # some mailers base64 the forwarded message, which parsers leave as text
            outer.add_attachment(raw, maintype="application", subtype="octet-stream", filename="fwd.eml")
            outer.get_payload()[-1].replace_header("Content-Type", "message/rfc822")
        else:
            outer.add_attachment(BytesParser(policy=policy.default).parsebytes(raw))
        raw = outer.as_bytes(policy=policy.SMTP)
    result = unpack(raw)
    assert [(a.filename, a.data) for a in result.attachments] == [("facture-octobre.pdf", PDF_BYTES)]


# Zip attachments -----------------------------------------------------------------------------------


def test_zip_with_pdfs_nested_zip_and_traversal_names():
    inner = zip_of({"sub/facture-3.pdf": PDF_BYTES + b"%3"})
    deeper = zip_of({"too-deep.zip": zip_of({"facture-9.pdf": PDF_BYTES + b"%9"})})
    archive = zip_of({
        "../../etc/facture-1.pdf": PDF_BYTES + b"%1",
        "C:\\Users\\compta\\facture-2.pdf": PDF_BYTES + b"%2",
        "readme.txt": b"hello",
        "inner.zip": inner,
        "deeper.zip": deeper,
    })
    result = unpack(message_with((archive, "application/zip", "factures.zip")))
    names = [a.filename for a in result.attachments]
    assert names == ["facture-1.pdf", "facture-2.pdf", "facture-3.pdf"]
    assert all(a.content_type == PDF for a in result.attachments)
    assert len({a.part_index for a in result.attachments}) == 3
    assert "nested deeper" in (result.reason or "")
    assert unpack(message_with((archive, "application/zip", "factures.zip"))).attachments == result.attachments


def test_zip_bomb_ends_as_a_reason():
    bomb = zip_of({"facture.pdf": b"%PDF-1.4\n" + b"\x00" * (64 * 1024 * 1024)})
    assert len(bomb) < 200 * 1024
    result = unpack(message_with((bomb, "application/zip", "factures.zip"), (PDF_BYTES, "application/pdf", "ok.pdf")))
    assert [a.filename for a in result.attachments] == ["ok.pdf"]
    assert "zip bomb" in result.reason


def test_zip_total_size_is_bounded_even_when_headers_lie():
    # Stored (no compression, ratio 1) files whose total exceeds the budget: the rest is left out.
    archive = zip_of({f"f{i}.pdf": PDF_BYTES + b"\x00" * (300 * 1024) for i in range(5)}, zipfile.ZIP_STORED)
    expanded = archives.expand_zip(archive, "big.zip", max_total=1024 * 1024)
    assert 1 <= len(expanded.files) < 5 and any("expands beyond" in n for n in expanded.notes)


def test_zip_with_too_many_files_and_a_corrupt_zip():
    many = zip_of({f"f{i}.txt": b"x" for i in range(archives.MAX_MEMBERS + 5)})
    assert any("first 50 files" in n for n in archives.expand_zip(many, "many.zip").notes)
    result = unpack(message_with((b"PK\x03\x04" + b"garbage" * 50, "application/zip", "broken.zip")))
    assert result.attachments == [] and "could not be opened" in result.reason


# winmail.dat (TNEF) ---------------------------------------------------------------------------------


def _tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)


def make_tnef(files: dict[str, bytes]) -> bytes:
    """A minimal TNEF stream (MS-OXTNEF): signature, key, then per file RendData, Title and Data attributes."""
    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += _tnef_object(1, 0x9006, 0x0009, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += _tnef_object(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))  # attOemCodepage
    for name, data in files.items():
        out += _tnef_object(2, 0x9002, 0x0006, b"\x01\x00" + b"\x00" * 12)  # attAttachRendData: a new file
        out += _tnef_object(2, 0x8010, 0x0001, name.encode("cp1252") + b"\x00")  # attAttachTitle
        out += _tnef_object(2, 0x800F, 0x0006, data)  # attAttachData
    return out


def test_winmail_dat_files_are_taken():
    tnef = make_tnef({"Facture 42.pdf": PDF_BYTES, "image001.png": make_image(40, 40)})
    result = unpack(message_with((tnef, "application/ms-tnef", "winmail.dat")))
    assert [(a.filename, a.content_type, a.data) for a in result.attachments] == [("Facture 42.pdf", PDF, PDF_BYTES)]


def test_truncated_or_crafted_winmail_dat_is_a_reason_not_a_crash():
    tnef = make_tnef({"Facture.pdf": PDF_BYTES})
    result = unpack(message_with((tnef[:-4000], "application/ms-tnef", "winmail.dat")))
    assert result.reason  # whatever the library made of it, nothing raised and the email has a reason
    crafted = struct.pack("<IH", 0x223E9F78, 1) + _tnef_object(1, 0x8004, 1, b"") * 5000
    result = unpack(message_with((crafted, "application/ms-tnef", "winmail.dat")))
    assert result.attachments == [] and "too many parts" in result.reason


# XML e-invoices ------------------------------------------------------------------------------------


def test_xml_einvoice_is_kept_and_other_xml_is_not():
    raw = message_with((UBL_INVOICE, "application/xml", "FA-2026-0099.xml"),
                       (b"<?xml version='1.0'?><note>hello</note>", "text/xml", "note.xml"))
    [att] = unpack(raw).attachments
    assert (att.filename, att.content_type, att.data) == ("FA-2026-0099.xml", XML, UBL_INVOICE)


def test_xml_einvoice_inside_a_zip():
    raw = message_with((zip_of({"xrechnung.xml": UBL_INVOICE}), "application/zip", "rechnung.zip"))
    [att] = unpack(raw).attachments
    assert att.content_type == XML and att.filename == "xrechnung.xml"


# Authentication-Results ----------------------------------------------------------------------------


def test_authentication_results_parsed_per_rfc_8601():
    parsed = parse_header(
        'mx.google.com; dkim=fail (bad sig) header.i=@a.example header.s=s1; dkim=pass header.i=@b.example;'
        ' spf=softfail (google.com: domain of x@a.example does not designate 1.2.3.4) smtp.mailfrom=x@a.example;'
        ' dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=a.example; arc=none'
    )
    assert parsed == {"authserv_id": "mx.google.com", "dkim": "pass", "spf": "softfail", "dmarc": "pass",
                      "arc": "none"}
    assert parse_header("example.org 1; none") == {"authserv_id": "example.org"}
    assert parse_header("") is None
    huge = "x.example; " + "; ".join(["spf=pass"] * 100000)
    assert parse_header(huge)["spf"] == "pass"  # bounded: read, not exhausted


def test_topmost_authentication_results_header_wins():
    raw = (b"Authentication-Results: mx.near.example; spf=fail smtp.mailfrom=a.example\r\n"
           b"Authentication-Results: mx.far.example; spf=pass smtp.mailfrom=a.example\r\n"
           b"From: a@a.example\r\n\r\nbody\r\n")
    headers = BytesParser(policy=policy.compat32).parsebytes(raw)
    assert authentication_results(headers) == {"authserv_id": "mx.near.example", "spf": "fail", "headers": 2}


# Through the real pipeline -------------------------------------------------------------------------


def _run(session: Session, storage: FileStorage, tenant_id: int, raw: bytes,
         envelope_sender: str = "bounce@x.test") -> InboundMessage:
    message = intake.store_message(session, storage, tenant_id, raw, recipient=TO, envelope_sender=envelope_sender)
    session.commit()
    for doc_id in processing.ingest_message(session, storage, message.id):
        processing.extract_document(session, storage, doc_id)
    session.commit()
    session.refresh(message)
    return message


def test_zip_and_xml_and_winmail_become_documents(session: Session, storage: FileStorage, tenant: TenantFixture):
    raw = message_with(
        (zip_of({"facture.pdf": PDF_BYTES}), "application/x-zip-compressed", "factures.zip"),
        (UBL_INVOICE, "application/xml", "FA-2026-0099.xml"),
        (make_tnef({"avoir.pdf": make_invoice_pdf(number="AV-1")}), "application/ms-tnef", "winmail.dat"),
    )
    message = _run(session, storage, tenant.tenant.id, raw)
    assert message.status == MessageStatus.PROCESSED.value
    docs = {d.filename: d for d in message.documents}
    assert set(docs) == {"facture.pdf", "FA-2026-0099.xml", "avoir.pdf"}
    assert docs["FA-2026-0099.xml"].file.content_type == XML
    for doc in docs.values():
        assert doc.status != DocumentStatus.EXTRACTING.value
        assert doc.status != DocumentStatus.FAILED.value or doc.reason


def test_same_message_id_twice_is_imported_once(session: Session, storage: FileStorage, tenant: TenantFixture,
                                                 other_tenant: TenantFixture):
    raw = make_email(TO, PDF_BYTES)
    first = _run(session, storage, tenant.tenant.id, raw)
    again = _run(session, storage, tenant.tenant.id, b"Received: from relay2.example\r\n" + raw)
    assert first.status == MessageStatus.PROCESSED.value and len(first.documents) == 1
    assert again.status == MessageStatus.IGNORED.value and again.documents == []
    assert again.reason == f"Already received (same Message-ID as message {first.id})"
    assert again.duplicate_of_message_id == first.id
    # Running the job again changes nothing; another tenant receiving the same email imports it.
    processing.ingest_message(session, storage, again.id)
    processing.ingest_message(session, storage, first.id)
    session.commit()
    assert (first.status, again.status) == (MessageStatus.PROCESSED.value, MessageStatus.IGNORED.value)
    elsewhere = _run(session, storage, other_tenant.tenant.id, raw)
    assert elsewhere.status == MessageStatus.PROCESSED.value
    # The same Message-ID from another sender is not a repeat (some mailers reuse ids).
    other_sender = raw.replace(b"compta@dupont-conseil.example", b"someone@else.example")
    assert _run(session, storage, tenant.tenant.id, other_sender).status == MessageStatus.PROCESSED.value


def test_identical_bytes_without_message_id_are_imported_once(session: Session, storage: FileStorage,
                                                             tenant: TenantFixture):
    raw = b"\r\n".join(line for line in make_email(TO, PDF_BYTES).split(b"\r\n")
                       if not line.startswith(b"Message-ID"))
    first = _run(session, storage, tenant.tenant.id, raw)
    again = _run(session, storage, tenant.tenant.id, raw)
    assert again.status == MessageStatus.IGNORED.value
    assert again.reason == f"Already received (identical to message {first.id})"
    docs = session.scalars(select(Document).where(Document.tenant_id == tenant.tenant.id)).all()
    assert len(docs) == 1


def test_authentication_results_and_envelope_are_recorded(session: Session, storage: FileStorage,
                                                          tenant: TenantFixture):
    raw = (b"Return-Path: <bounces+42@mailer.dupont.example>\r\n"
           b"Authentication-Results: mx.google.com; dkim=pass header.i=@dupont.example; spf=pass; dmarc=pass\r\n"
           + make_email(TO, PDF_BYTES))
    message = _run(session, storage, tenant.tenant.id, raw)
    assert message.auth_results == {"authserv_id": "mx.google.com", "dkim": "pass", "spf": "pass",
                                    "dmarc": "pass", "headers": 1}
    assert message.envelope_sender == "bounce@x.test"  # what our SMTP server was told wins
    # Without an SMTP envelope (e.g. an IMAP mailbox), the Return-Path header recorded by the last MTA.
    fetched = _run(session, storage, tenant.tenant.id, raw.replace(b"dkim=pass", b"dkim=none"), envelope_sender="")
    assert fetched.envelope_sender == "bounces+42@mailer.dupont.example"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not mounted")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: ("fixture:" if p in FIXTURE_FILES else "") + p.name)
def test_every_corpus_message_goes_through_the_real_pipeline(path: Path, session: Session, storage: FileStorage,
                                                             tenant: TenantFixture):
    message = _run(session, storage, tenant.tenant.id, path.read_bytes())
    where = f"{path.name}: {message.status} {message.reason!r}"
    assert message.status in (MessageStatus.PROCESSED.value, MessageStatus.IGNORED.value), where
    if message.status == MessageStatus.IGNORED.value:
        assert message.reason, where
        assert message.reason.startswith((NO_ATTACHMENT_REASON, ONLY_LOGOS_REASON, "Already received")), where
    for doc in message.documents:
        assert doc.status not in (DocumentStatus.EXTRACTING.value,), where
        assert doc.status != DocumentStatus.FAILED.value or doc.reason, where
    if path.name in CORPUS_PDFS:
        assert any(d.file.content_type == PDF for d in message.documents), where


def test_decompression_bomb_image_ends_with_a_reason(session: Session, storage: FileStorage, tenant: TenantFixture):
    raw = message_with((_png_header_claiming(200_000, 200_000, pad=20 * 1024), "image/png", "bomb.png"))
    message = _run(session, storage, tenant.tenant.id, raw)
    [doc] = message.documents
    assert doc.status in (DocumentStatus.FAILED.value, DocumentStatus.PENDING.value) and doc.reason
