"""Recognising the verification emails that mail providers send when someone sets up forwarding.

When a finance team asks Gmail (or Outlook / Microsoft 365) to forward invoices to the tenant's inbound
address, the provider first sends a confirmation code or link *to that address*: only we receive it. This
module reads such an email (pure: bytes in, a ``Confirmation`` or None out) so that the code can be shown
to the tenant's admins and to support, and the email is never mistaken for an invoice.

Anyone can send an email that looks like Google's: the result records the upstream ``Authentication-Results``
verdicts as they are, and ``authenticated`` is only True when a header written by a *trusted* receiving
server (``trusted_authserv_ids``) says ``dkim=pass`` for the provider's domain. The worker also verifies DKIM
itself on receipt (``core.mail.senderauth``; ``core.inbound.forwarding.authenticated`` combines both); an
unverified code is shown with a warning and its link is never clickable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import urlsplit

from core.i18n import N_
from core.mail import parsed

GMAIL = "gmail"
MICROSOFT = "microsoft"
PROVIDER_LABELS = {GMAIL: "Gmail", MICROSOFT: N_("Microsoft (Outlook / Microsoft 365)")}
# The domain whose DKIM signature makes the email authentic, per provider (subdomains count too).
DKIM_DOMAINS = {GMAIL: ("google.com",), MICROSOFT: ("microsoft.com", "microsoftonline.com", "outlook.com")}

GMAIL_SENDER = "forwarding-noreply@google.com"
MICROSOFT_SENDER_DOMAINS = ("microsoft.com", "microsoftonline.com", "outlook.com")

# Limits: these emails are a few kilobytes; a far larger email is not one (and is not parsed twice).
MAX_RAW_BYTES = 512 * 1024
MAX_PARTS = 20
MAX_TEXT_CHARS = 200_000
MAX_LINK_CHARS = 2048
MAX_AUTH_RESULTS_CHARS = 4000
MAX_ADDRESS_CHARS = 320

# "(#123456789) Gmail Forwarding Confirmation", "(n° 123456789) Confirmation de transfert Gmail",
# "(Nr. 123456789) ...": a parenthesis at the start, a short label, nine digits.
_GMAIL_SUBJECT_CODE = re.compile(r"^\s*\(\s*[^()\d]{0,12}?(\d{9})\s*\)")
_NINE_DIGITS = re.compile(r"(?<![\d])(\d{9})(?![\d])")
# A code after a "code" label, in the languages the dashboard's users are likely to read.
_CODE_LABEL = r"(?:code|código|codice|kode|kod|код|コード|代码|代碼)"
_LABELLED_GMAIL_CODE = re.compile(_CODE_LABEL + r"[^\d\n]{0,40}?(\d{9})(?!\d)", re.IGNORECASE)
_LABELLED_MS_CODE = re.compile(_CODE_LABEL + r"[^\d\n]{0,60}?(?<!\d)(\d{4,10})(?!\d)", re.IGNORECASE)
_URL = re.compile(r"https://[^\s<>\"'()\[\]]+", re.IGNORECASE)
# Addresses, including Microsoft's masked ones ("jo*****@contoso.com").
_EMAIL = re.compile(r"[A-Za-z0-9._%+*\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")

GMAIL_LINK_HOSTS = frozenset({"mail-settings.google.com", "mail.google.com"})
MICROSOFT_LINK_SUFFIXES = (".live.com", ".microsoft.com", ".microsoftonline.com", ".outlook.com", ".office.com")
_MS_VERIFY_WORDS = re.compile(
    r"verif|security code|code de sécurité|confirm|bestätig|überprüf|verific|forward|transf",
    re.IGNORECASE,
)


REDACTED_CODE = "•••"


def redact_codes(text: str) -> str:
    """``text`` (an email's subject) with the confirmation codes a provider puts there hidden: Gmail's
    "(#123456789) ..." and any "code ... 123456". For the people who may not see codes (members)."""
    text = _GMAIL_SUBJECT_CODE.sub(lambda m: m.group(0).replace(m.group(1), REDACTED_CODE), text)
    for labelled in (_LABELLED_GMAIL_CODE, _LABELLED_MS_CODE):
        text = labelled.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + REDACTED_CODE, text)
    return text


@dataclass(frozen=True)
class AuthResult:
    """One ``dkim=`` verdict of one ``Authentication-Results`` header, as the header says it."""

    authserv_id: str
    result: str  # pass, fail, none, neutral, ...
    domain: str  # header.d (or the domain of header.i), lower-case; "" when absent


@dataclass(frozen=True)
class Confirmation:
    provider: str  # GMAIL or MICROSOFT
    code: str | None
    link: str | None  # only a link on the provider's own https hosts, else None
    requester: str | None  # the address that asked to forward to us
    sender: str
    subject: str
    sent_at: datetime | None
    auth_results_raw: str  # every Authentication-Results header, verbatim (bounded)
    auth_results: tuple[AuthResult, ...] = field(default=())

    def authenticated(self, trusted_authserv_ids: Iterable[str]) -> bool | None:
        """True: a trusted server saw a DKIM pass for the provider; False: a trusted server checked and saw
        none; None: no trusted server's verdict at all (nothing is known)."""
        trusted = {t.strip().lower() for t in trusted_authserv_ids if t.strip()}
        verdicts = [r for r in self.auth_results if r.authserv_id in trusted]
        if not verdicts:
            return None
        return any(r.result == "pass" and _domain_matches(r.domain, DKIM_DOMAINS[self.provider]) for r in verdicts)


def recognize(raw: bytes | parsed.ReceivedEmail) -> Confirmation | None:
    """The confirmation carried by ``raw``, or None when it is not one (never raises on bad input)."""
    email = parsed.ReceivedEmail.of(raw)
    if len(email.raw) > MAX_RAW_BYTES:
        return None
    try:
        # The header block alone settles the common case (not from a provider) without parsing the body.
        headers = BytesParser(policy=policy.default).parsebytes(email.header_block, headersonly=True)
        if not _is_provider_sender(_from_address(headers)):
            return None
        return _recognize(email.message)
    except Exception:  # a malformed email is simply "not a confirmation"; the normal pipeline explains it
        return None


def _recognize(message: EmailMessage) -> Confirmation | None:
    sender = _from_address(message)
    if not sender:
        return None
    subject = " ".join(str(message.get("Subject", "") or "").split())[:998]
    if sender == GMAIL_SENDER:
        return _gmail(message, sender, subject)
    domain = sender.rpartition("@")[2]
    if _domain_matches(domain, MICROSOFT_SENDER_DOMAINS):
        return _microsoft(message, sender, subject)
    return None


def _is_provider_sender(sender: str) -> bool:
    return sender == GMAIL_SENDER or _domain_matches(sender.rpartition("@")[2], MICROSOFT_SENDER_DOMAINS)


def _gmail(message: EmailMessage, sender: str, subject: str) -> Confirmation | None:
    text, hrefs = _body_text(message)
    found = _GMAIL_SUBJECT_CODE.match(subject)
    code = found.group(1) if found else _gmail_code_in_body(text)
    link = _first_link(hrefs + _URL.findall(text), _is_gmail_link)
    if code is None and link is None:
        return None
    requester = _last_address(subject, exclude=message) or _first_address(text, exclude=message)
    return _confirmation(message, GMAIL, code, link, requester, sender, subject)


def _microsoft(message: EmailMessage, sender: str, subject: str) -> Confirmation | None:
    text, hrefs = _body_text(message)
    if not _MS_VERIFY_WORDS.search(subject) and not _MS_VERIFY_WORDS.search(text[:5000]):
        return None  # a newsletter or a bill from Microsoft: not ours to hide
    found = _LABELLED_MS_CODE.search(text)
    code = found.group(1) if found else None
    link = _first_link(hrefs + _URL.findall(text), _is_microsoft_verify_link)
    if code is None and link is None:
        return None
    requester = _first_address(text, exclude=message)
    return _confirmation(message, MICROSOFT, code, link, requester, sender, subject)


def _confirmation(
    message: EmailMessage, provider: str, code: str | None, link: str | None, requester: str | None,
    sender: str, subject: str,
) -> Confirmation:
    raw_headers = [str(v) for v in message.get_all("Authentication-Results", [])]
    return Confirmation(
        provider=provider,
        code=code,
        link=link,
        requester=requester[:MAX_ADDRESS_CHARS] if requester else None,
        sender=sender[:MAX_ADDRESS_CHARS],
        subject=subject,
        sent_at=_date(message),
        auth_results_raw="\n".join(" ".join(h.split()) for h in raw_headers)[:MAX_AUTH_RESULTS_CHARS],
        auth_results=tuple(r for h in raw_headers for r in parse_authentication_results(h)),
    )


# Codes, links, addresses ---------------------------------------------------------------------


def _gmail_code_in_body(text: str) -> str | None:
    labelled = _LABELLED_GMAIL_CODE.search(text)
    if labelled:
        return labelled.group(1)
    # No label we know (another language): the nine-digit number the body repeats most.
    counts: dict[str, int] = {}
    for number in _NINE_DIGITS.findall(text):
        counts[number] = counts.get(number, 0) + 1
    return max(counts, key=lambda n: counts[n]) if counts else None


def _clean_url(url: str) -> str:
    return url.rstrip(".,;:!?>")


def _first_link(candidates: Iterable[str], accept: object) -> str | None:
    for candidate in candidates:
        url = _clean_url(candidate.strip())
        if len(url) <= MAX_LINK_CHARS and accept(url):  # type: ignore[operator]
            return url
    return None


def _is_gmail_link(url: str) -> bool:
    """Only the "confirm" link (``/mail/vf-``), never the "cancel" one (``/mail/uf-``)."""
    parts = _split(url)
    return parts is not None and parts[0] in GMAIL_LINK_HOSTS and parts[1].startswith("/mail/vf-")


def _is_microsoft_verify_link(url: str) -> bool:
    parts = _split(url)
    if parts is None:
        return False
    host, path = parts
    if not any(host.endswith(suffix) for suffix in MICROSOFT_LINK_SUFFIXES):
        return False
    # Privacy statements, logos and unsubscribe links are on the same hosts: keep only verification ones.
    return bool(re.search(r"verif|confirm|proof|validate", path + "?" + url.partition("?")[2], re.IGNORECASE))


def _split(url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not parts.hostname or parts.username or parts.password or parts.port:
        return None
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return None
    return parts.hostname.lower(), parts.path


def _own_addresses(message: EmailMessage) -> set[str]:
    """Our side of the exchange (the recipient) and the provider's senders: never "the requester"."""
    values = [str(message.get(h, "") or "") for h in ("To", "Delivered-To", "X-Original-To", "From")]
    return {addr.lower() for _name, addr in getaddresses(values) if addr}


def _is_provider_address(address: str) -> bool:
    domain = address.rpartition("@")[2].lower()
    return _domain_matches(domain, ("google.com", *MICROSOFT_SENDER_DOMAINS))


def _last_address(text: str, exclude: EmailMessage) -> str | None:
    own = _own_addresses(exclude)
    found = [a for a in _EMAIL.findall(text) if a.lower() not in own and not _is_provider_address(a)]
    return found[-1] if found else None


def _first_address(text: str, exclude: EmailMessage) -> str | None:
    own = _own_addresses(exclude)
    for address in _EMAIL.findall(text):
        if address.lower() not in own and not _is_provider_address(address):
            return address
    return None


def _from_address(message: EmailMessage) -> str:
    try:
        pairs = getaddresses([str(message.get("From", "") or "")])
    except Exception:
        return ""
    addresses = [addr.strip().lower() for _name, addr in pairs if "@" in addr]
    return addresses[0] if len(addresses) == 1 else ""  # several From addresses: not a provider's mail


def _date(message: EmailMessage) -> datetime | None:
    value = message.get("Date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _domain_matches(domain: str, wanted: Iterable[str]) -> bool:
    domain = domain.lower().rstrip(".")
    return any(domain == w or domain.endswith("." + w) for w in wanted)


# Authentication-Results (RFC 8601) -----------------------------------------------------------

_RESINFO = re.compile(r"\bdkim\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_HEADER_D = re.compile(r"\bheader\.(d|i)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


def parse_authentication_results(header: str) -> list[AuthResult]:
    """The ``dkim=`` verdicts of one header, tagged with the header's authserv-id (its first token)."""
    text = re.sub(r"\([^()]*\)", " ", " ".join(header.split()))  # comments say nothing binding
    authserv_id, _sep, rest = text.partition(";")
    authserv_id = authserv_id.strip().split(" ")[0].lower() if authserv_id.strip() else ""
    results = []
    for found in _RESINFO.finditer(rest):
        props = _HEADER_D.search(found.group(2))
        domain = ""
        if props:
            value = props.group(2).lower()
            domain = value.rpartition("@")[2] if props.group(1).lower() == "i" else value
        results.append(AuthResult(authserv_id, found.group(1).lower(), domain))
    return results


# Bodies --------------------------------------------------------------------------------------


class _TextAndLinks(HTMLParser):
    """Visible text of an HTML part (scripts and styles left out) and its link targets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hrefs: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self._skip += 1
        if tag == "a":
            self.hrefs.extend(value for name, value in attrs if name == "href" and value)
        if tag in ("br", "p", "div", "tr", "li", "td", "table", "h1", "h2", "h3"):
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title") and self._skip:
            self._skip -= 1
        if tag in ("p", "div", "tr", "li", "td", "h1", "h2", "h3"):
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def _body_text(message: EmailMessage) -> tuple[str, list[str]]:
    """The text of the text/plain and text/html parts (bounded), and the hrefs of the HTML parts."""
    texts: list[str] = []
    hrefs: list[str] = []
    size = 0
    for part in _text_parts(message):
        content = _decoded_text(part)[: MAX_TEXT_CHARS - size]
        size += len(content)
        if part.get_content_type() == "text/html":
            parser = _TextAndLinks()
            parser.feed(content)
            parser.close()
            texts.append("".join(parser.chunks))
            hrefs.extend(parser.hrefs)
        else:
            texts.append(content)
        if size >= MAX_TEXT_CHARS:
            break
    return "\n".join(texts), hrefs


def _text_parts(message: Message) -> Iterator[Message]:
    count = 0
    for part in message.walk():
        count += 1
        if count > MAX_PARTS * 3:
            return
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        if part.get_content_type() in ("text/plain", "text/html"):
            yield part


def _decoded_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")
