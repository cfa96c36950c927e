"""Upstream ``Authentication-Results`` (RFC 8601): the SPF, DKIM and DMARC verdicts, parsed and bounded.

These headers are *claims* written by the mail servers the message went through (for mail forwarded to
us, the forwarding provider's view of the original sender). The topmost one was added last, closest to
us, so it is the one recorded; anyone can write such a header into a message, which is why they are shown
as information next to the sender, never used to accept or refuse mail on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from typing import Any

MAX_HEADERS = 5  # Authentication-Results headers looked at
MAX_HEADER_CHARS = 4000
MAX_RESULTS = 20  # resinfo entries read from one header
METHODS = ("spf", "dkim", "dmarc", "arc")
RESULTS = frozenset(
    ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy", "hardfail", "bestguesspass")
)
_RESINFO = re.compile(r"^\s*([A-Za-z0-9_-]+)(?:/\d+)?\s*=\s*([A-Za-z]+)")


def _strip_comments(text: str) -> str:
    """Remove (nested) CFWS comments and keep quoted strings intact."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(char)
            continue
        if char == "\\":
            escaped = True
            if depth == 0:
                out.append(char)
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == '"' and depth == 0:
            quoted = True
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _split_semicolons(text: str) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_header(value: str) -> dict[str, Any] | None:
    """``{"authserv_id": ..., "spf": "pass", "dkim": "fail", ...}`` or None when it is not one."""
    text = " ".join(_strip_comments(str(value)[:MAX_HEADER_CHARS]).split())
    parts = _split_semicolons(text)
    head = parts[0].strip().split()
    if not head:
        return None
    found: dict[str, Any] = {"authserv_id": head[0][:255]}
    for entry in parts[1 : 1 + MAX_RESULTS]:
        match = _RESINFO.match(entry)
        if not match:
            continue
        method, result = match.group(1).lower(), match.group(2).lower()
        if method not in METHODS or result not in RESULTS:
            continue
        # Several DKIM signatures: one that passes is enough (RFC 6376 evaluates each on its own).
        if method not in found or (result == "pass" and found[method] != "pass"):
            found[method] = result
    return found


def authentication_results(headers: Message) -> dict[str, Any] | None:
    """The verdicts of the topmost ``Authentication-Results`` header that has any; None when none does."""
    try:
        values = headers.get_all("Authentication-Results") or []
    except Exception:
        return None
    for value in values[:MAX_HEADERS]:
        parsed = parse_header(str(value))
        if parsed and any(method in parsed for method in METHODS):
            parsed["headers"] = len(values)
            return parsed
    return None


_HEADER_D = re.compile(r"\bdkim\s*=\s*pass\b[^;]*?\bheader\.(d|i)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)
_SMTP_MAILFROM = re.compile(r"\bsmtp\.mailfrom\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)
_HEADER_FROM = re.compile(r"\bheader\.from\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)
# "dmarc=fail (p=REJECT sp=NONE dis=NONE)" (comments) or "policy.dmarc=reject" (RFC 8601 ptype policy)
_UPSTREAM_POLICY = re.compile(r"\bdmarc\s*=\s*\w+[^;]*?\b(?:p|policy\.dmarc)\s*=\s*(none|quarantine|reject)\b",
                              re.IGNORECASE)


@dataclass(frozen=True)
class HeaderProperties:
    """What a trusted relay's header says besides the verdicts: the domains of passing DKIM signatures,
    the SPF-checked envelope sender, the ``From`` domain and the DMARC policy it found."""

    dkim_pass_domains: list[str]
    smtp_mailfrom: str | None
    header_from: str | None
    dmarc_policy: str | None


def header_properties(value: str) -> HeaderProperties:
    text = " ".join(str(value)[:MAX_HEADER_CHARS].split())
    domains = []
    for match in _HEADER_D.finditer(text):
        found = match.group(2).lower()
        domains.append(found.rpartition("@")[2] if match.group(1).lower() == "i" else found)
    mailfrom = _SMTP_MAILFROM.search(text)
    author = _HEADER_FROM.search(text)
    policy = _UPSTREAM_POLICY.search(text)
    return HeaderProperties(
        dkim_pass_domains=sorted(set(domains)),
        smtp_mailfrom=mailfrom.group(1) if mailfrom else None,
        header_from=author.group(1).lower()[:253] if author else None,
        dmarc_policy=policy.group(1).lower() if policy else None,
    )
