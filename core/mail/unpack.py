"""Take the PDF and image files out of a raw email.

Real mail is messy: PDFs come as ``application/octet-stream``, inside forwarded messages (several levels of
``message/rfc822``), inline inside ``multipart/signed``, with RFC 2231 or (illegally) unquoted encoded-word
file names, bad base64, unknown charsets. So this module walks *every* part itself (``iter_attachments()``
misses most of these), decides by content type *and* by the first bytes, and never raises: a malformed
message yields what could be found plus a reason a person can read.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser

from core.i18n import N_
from core.mail import parsed
from core.mail.archives import ZIP_TYPES, expand_zip, is_zip
from core.mail.images import is_document_image
from core.mail.tnef import expand_tnef, is_tnef
from core.reasons import Reason, reason

logger = logging.getLogger(__name__)

MAX_PARTS = 100  # MIME parts examined per message (a mail bomb is not worth more)
MAX_TOTAL_BYTES = 50 * 1024 * 1024  # decoded bytes taken per message
MAX_DEPTH = 12  # nesting of multiparts and forwarded messages
MAX_FILENAME_CHARS = 150
MAX_XML_BYTES = 5 * 1024 * 1024  # an e-invoice XML is a few hundred KB at most

NO_ATTACHMENT_REASON = N_("No PDF or image attachment found in this email")
ONLY_LOGOS_REASON = N_("Only small images (logos, signatures, icons) were found in this email; no invoice to import")
# The same with the notes on what was not taken ({notes}: a list of reasons, core/reasons.py).
NO_ATTACHMENT_NOTES_REASON = N_("No PDF or image attachment found in this email ({notes})")
LEFT_OUT_REASON = N_("Some files were left out: {notes}.")
UNREADABLE_EMAIL_REASON = N_("The email could not be read ({error}).")
FIRST_PARTS_NOTE = N_("only the first {count} parts of this email were examined")
TOO_LARGE_NOTE = N_("files beyond {size} MB in total were not imported")
EMPTY_ARCHIVE_NOTE = N_("the archive {archive} holds no PDF, image or e-invoice")

PDF = "application/pdf"
XML = "application/xml"  # a structured e-invoice (CII / UBL) sent as its own file
_LOGO = "logo"  # an image too small to be an invoice page: skipped
IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff", "image/gif", "image/webp", "image/heic")
# ISO base media "ftyp" brands of HEIF images (iPhone photos); read with pillow-heif at extraction.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_PDF_ALIASES = {PDF, "application/x-pdf", "application/acrobat", "applications/vnd.pdf", "text/pdf", "text/x-pdf"}
_GENERIC_TYPES = {"application/octet-stream", "application/binary", "application/unknown", "application/download",
                  "application/force-download", "binary/octet-stream"}
_EXTENSIONS = {PDF: ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif", "image/gif": ".gif",
               "image/webp": ".webp", "image/heic": ".heic", XML: ".xml"}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # what the bytes are (sniffed), not only what the sender declared
    data: bytes
    part_index: int = 0  # position of the part in a depth-first walk: stable for the same raw bytes


@dataclass(frozen=True)
class Unpacked:
    attachments: list[Attachment] = field(default_factory=list)
    reason: str | None = None  # why nothing (or not everything) was taken; None when all went well


def sniff(data: bytes) -> str | None:
    """The content type the first bytes prove, for the types we take; None otherwise."""
    if b"%PDF-" in data[:1024]:  # some producers put junk (or a BOM) before the header
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return None


def unpack(raw: bytes | parsed.ReceivedEmail, *, max_parts: int = MAX_PARTS,
           max_total_bytes: int = MAX_TOTAL_BYTES) -> Unpacked:
    """The PDF and image files of ``raw``, in message order, with a reason when something was left out."""
    email = parsed.ReceivedEmail.of(raw)  # max_parts bounds what is examined below, not the parse
    try:
        message = email.message  # the bank statement import read the same tree just before
    except Exception as exc:  # the parser is lenient; this is the last line of defence
        logger.warning("unparseable message: %s", type(exc).__name__)
        return Unpacked([], reason(UNREADABLE_EMAIL_REASON, error=type(exc).__name__))

    attachments: list[Attachment] = []
    notes: list[Reason] = []
    logos = 0
    total = 0
    for index, part in enumerate(_walk(message)):
        if index >= max_parts:
            notes.append(reason(FIRST_PARTS_NOTE, count=max_parts))
            break
        try:
            taken = _take(part, index, len(attachments) + 1)
        except Exception as exc:  # one broken part must not hide the others
            logger.info("part %d skipped: %s", index, type(exc).__name__)
            continue
        logos += taken.logos
        notes.extend(note for note in taken.notes if note not in notes)
        for found in taken.attachments:
            if total + len(found.data) > max_total_bytes:
                note = reason(TOO_LARGE_NOTE, size=f"{max_total_bytes / (1024 * 1024):g}")
                if note not in notes:
                    notes.append(note)
                continue
            total += len(found.data)
            attachments.append(found)

    if not attachments:
        if notes:
            return Unpacked([], reason(NO_ATTACHMENT_NOTES_REASON, notes=notes))
        return Unpacked([], ONLY_LOGOS_REASON if logos else NO_ATTACHMENT_REASON)
    return Unpacked(attachments, reason(LEFT_OUT_REASON, notes=notes) if notes else None)


# Walking -------------------------------------------------------------------------------------


def _walk(message: Message) -> Iterator[Message]:
    """Every part, depth first, including the insides of forwarded messages, without recursion."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        yield part
        if depth >= MAX_DEPTH:
            continue
        children = _children(part)
        stack.extend((child, depth + 1) for child in reversed(children))


def _children(part: Message) -> list[Message]:
    try:
        payload = part.get_payload()
    except Exception:
        return []
    encoded = str(part.get("Content-Transfer-Encoding", "")).strip().lower() in ("base64", "quoted-printable")
    if isinstance(payload, list) and not (encoded and _content_type(part) == "message/rfc822"):
        return [p for p in payload if isinstance(p, Message)]  # multipart/*, and message/rfc822 holding its message
    if _content_type(part) == "message/rfc822":
        # Some mailers base64-encode a forwarded message, which the parser then leaves as text.
        inner = _decoded(part) if not encoded else _decoded_forward(part)
        if inner:
            try:
                return [BytesParser(policy=policy.default).parsebytes(inner)]
            except Exception:
                return []
    return []


def _decoded_forward(part: Message) -> bytes:
    """A base64 / quoted-printable forwarded message: the parser took the encoded text for a message."""
    import base64
    import quopri

    try:
        raw = part.as_bytes(policy=policy.compat32)
        body = raw.split(b"\n\n", 1)[-1] if b"\r\n\r\n" not in raw else raw.split(b"\r\n\r\n", 1)[-1]
        if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
            return base64.b64decode(b"".join(body.split()), validate=False)
        return quopri.decodestring(body)
    except Exception:
        return b""


# One part ------------------------------------------------------------------------------------


@dataclass
class _Taken:
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[Reason] = field(default_factory=list)
    logos: int = 0


def _take(part: Message, index: int, ordinal: int) -> _Taken:
    taken = _Taken()
    declared = _content_type(part)
    if declared.startswith(("multipart/", "message/")):
        return taken
    name = _filename(part)
    if declared.startswith("text/") and name is None:
        return taken  # a body, not a file
    data = _decoded(part)
    if not data:
        return taken
    if is_zip(data) and (declared in ZIP_TYPES or declared in _GENERIC_TYPES or _has_ext(name, ".zip")):
        archive_name = sanitize_filename(name, "", ordinal)
        expanded = expand_zip(data, archive_name)
        taken.notes.extend(expanded.notes)
        _add_members(taken, expanded.files, index, ordinal)
        if not taken.attachments and not expanded.notes:
            taken.notes.append(reason(EMPTY_ARCHIVE_NOTE, archive=archive_name))
        return taken
    if is_tnef(data):  # winmail.dat, whatever its declared type
        files, notes = expand_tnef(data)
        taken.notes.extend(notes)
        _add_members(taken, files, index, ordinal)
        return taken
    kind = classify(data, declared, name)
    if kind == _LOGO:
        taken.logos += 1
    elif kind is not None:
        taken.attachments.append(Attachment(sanitize_filename(name, kind, ordinal), kind, data, index))
    return taken


def _add_members(taken: _Taken, files: list[tuple[str, bytes]], index: int, ordinal: int) -> None:
    """Files from inside an archive get part indexes of their own: (part + 1) * 1000 + position."""
    for position, (member, content) in enumerate(files[:999], start=1):
        kind = classify(content, "application/octet-stream", member)
        if kind == _LOGO:
            taken.logos += 1
        elif kind is not None:
            filename = sanitize_filename(member, kind, ordinal + len(taken.attachments))
            taken.attachments.append(Attachment(filename, kind, content, (index + 1) * 1000 + position))


def classify(data: bytes, declared: str, name: str | None) -> str | None:
    """PDF, an image type, ``XML`` (an e-invoice), ``"logo"`` (a small image, skipped) or None (not ours)."""
    kind = sniff(data)
    if kind is None and (declared in _PDF_ALIASES or (declared in _GENERIC_TYPES and _has_ext(name, ".pdf"))):
        # Declared a PDF but does not look like one: take it anyway, so that a person sees
        # "the PDF could not be read" rather than the file silently disappearing.
        kind = PDF
    if kind is None and is_einvoice_xml(data, name):
        return XML
    if kind is None:
        return None
    if kind != PDF and not is_document_image(data):
        return _LOGO
    return kind


def is_einvoice_xml(data: bytes, name: str | None = None) -> bool:
    """A CII or UBL invoice XML, or one that claims to be and is broken (extraction then says why)."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<") or len(data) > MAX_XML_BYTES:
        return False
    from core.einvoice import EInvoiceError, read_einvoice

    try:
        return read_einvoice(data, name or "") is not None
    except EInvoiceError:
        return True
    except Exception as exc:  # some other XML the reader chokes on: not an invoice for us
        logger.info("XML attachment not read: %s", type(exc).__name__)
        return False


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"


def _decoded(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


_PARAM_RE = {
    name: re.compile(rf"(?:^|;)\s*{name}\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^;]*)", re.IGNORECASE)
    for name in ("filename", "name")
}


def _filename(part: Message) -> str | None:
    """The sender's file name: RFC 2231, encoded words (quoted or not), raw UTF-8; None when absent."""
    try:
        parsed = part.get_filename()
    except Exception:
        parsed = None
    raw = _raw_param(part, "content-disposition", "filename") or _raw_param(part, "content-type", "name")
    if raw is None:
        return parsed or None
    quoted = raw.startswith('"')
    unquoted = raw.strip('"').strip()
    decoded = _decode_words(unquoted)
    if not parsed:
        return decoded or None  # e.g. filename==?utf-8?B?...?= (illegal, but sent by real mailers)
    if not quoted and decoded.startswith(parsed) and len(decoded) > len(parsed):
        return decoded  # filename=This is a test.pdf: the parser stops at the first space
    return parsed


def _raw_param(part: Message, header: str, param: str) -> str | None:
    try:
        values = [str(v) for k, v in part.raw_items() if k.lower() == header]
    except Exception:
        return None
    for value in values:
        unfolded = re.sub(r"\r?\n[ \t]+", " ", value)
        match = _PARAM_RE[param].search(unfolded)
        if match and match.group(1).strip():
            return match.group(1).strip()
    return None


def _decode_words(text: str) -> str:
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


def _has_ext(name: str | None, ext: str) -> bool:
    return bool(name) and name.lower().rstrip(" .").endswith(ext)  # type: ignore[union-attr]


def sanitize_filename(name: str | None, content_type: str, ordinal: int = 1) -> str:
    """A safe, bounded file name: last path component, no control characters, extension kept.

    Falls back to ``attachment-<ordinal>.<ext>`` when nothing usable is left.
    """
    ext_for_type = _EXTENSIONS.get(content_type, "")
    cleaned = ""
    if name:
        text = unicodedata.normalize("NFC", name).replace("\ufffd", "_")
        text = re.split(r"[/\\]", text)[-1]  # "C:\Users\me\facture.pdf" -> "facture.pdf"
        # Control, format (bidi overrides that disguise extensions) and surrogate characters go.
        text = "".join(" " if unicodedata.category(c)[0] in ("C", "Z") else c for c in text)
        cleaned = " ".join(text.split()).strip(" .")
    if not cleaned:
        return f"attachment-{ordinal}{ext_for_type}"
    stem, ext = os.path.splitext(cleaned)
    if len(ext) > 10 or not stem:
        stem, ext = cleaned, ""
    stem = stem[: MAX_FILENAME_CHARS - len(ext)].rstrip(" .") or f"attachment-{ordinal}"
    return stem + ext
