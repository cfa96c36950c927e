"""Sender authentication on receipt: SPF, DKIM and DMARC verdicts for one message (domain code, no transport).

``evaluate`` checks the message itself: DKIM signatures with dkimpy, SPF of the SMTP client with pyspf, and
DMARC (RFC 7489) here: the policy record of the ``From`` domain (or of its organizational domain, from the
Public Suffix List shipped by ``publicsuffixlist``) and whether a passing SPF or DKIM domain is aligned
with it. ``from_upstream`` instead takes the verdicts of a receiving server the operator trusts (its
``Authentication-Results``). Both return a ``Verdicts``, stored as JSON on the message.

DNS goes through a ``Lookup``: ``(name, rdtype, timeout) -> [answers as text]``, ``[]`` when nothing exists,
``DnsTempError`` when the answer could not be had. The default is dnspython with a TTL-honouring cache; tests
inject their own. One evaluation has a total time budget: past it every further question is a temporary
error, so a slow DNS server costs at most the budget and yields ``temperror`` verdicts, never a crash.
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from email.message import Message
from email.utils import getaddresses
from typing import Any

import dkim
import dns.exception
import dns.nameserver
import dns.resolver
import spf

from core.config import env
from core.mail.authresults import MAX_HEADERS, header_properties, parse_header
from core.mail.parsed import ReceivedEmail

log = logging.getLogger(__name__)

Lookup = Callable[[str, str, float], list[str]]

DNS_BUDGET_ENV = "SENDER_AUTH_DNS_BUDGET"  # seconds of DNS per message, default 2
DNS_ENV = "SENDER_AUTH_DNS"  # "system" (default), "off" (every lookup a temperror), or "ip[:port],..."
TRUSTED_RELAYS_ENV = "TRUSTED_RELAYS"  # IPs/CIDRs of MTAs in front of us whose Authentication-Results count
DEFAULT_BUDGET = 2.0
MAX_SIGNATURES = 5  # DKIM signatures verified per message; more is an attack on our CPU, not mail
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy")
POLICIES = ("none", "quarantine", "reject")


class DnsTempError(Exception):
    """A DNS answer could not be had (timeout, SERVFAIL, budget spent): a temporary error."""


@dataclass
class Verdicts:
    """What is stored on a message. ``None`` for a check that was not made (SPF without an SMTP client)."""

    source: str  # "evaluated" (by us) | "upstream" (a trusted server's Authentication-Results)
    spf: str | None = None
    spf_domain: str | None = None  # the MAIL FROM domain (HELO for the null sender)
    dkim: str = "none"  # the best signature: pass > temperror > fail > permerror > none
    dkim_domains: list[str] = field(default_factory=list)  # d= of the signatures that pass
    signatures: list[dict[str, str]] = field(default_factory=list)  # {"d", "s", "result"} per signature
    dmarc: str = "none"  # pass | fail | none (no policy) | temperror | permerror
    from_domain: str | None = None
    dmarc_policy: str | None = None  # the domain's policy that applies (p or sp, lowered when pct < 100)
    aligned: bool = False  # an SPF or DKIM pass aligned with the From domain
    authserv_id: str | None = None  # upstream only: whose verdicts these are

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Verdicts | None:
        if not data or "source" not in data:
            return None
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def dkim_pass_for(self, domains: Iterable[str]) -> bool:
        """True when a signature of one of ``domains`` (or of a subdomain) passed."""
        wanted = tuple(d.lower() for d in domains)
        return any(_domain_in(d, wanted) for d in self.dkim_domains)


# DNS -----------------------------------------------------------------------------------------------


class SystemLookup:
    """dnspython with the system's (or given) name servers; its LRU cache keeps answers for their TTL."""

    def __init__(self, nameservers: list[str] | None = None, cache_size: int = 4096) -> None:
        self.resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self.resolver.nameservers = [dns.nameserver.Do53Nameserver(*_host_port(item)) for item in nameservers]
        self.resolver.cache = dns.resolver.LRUCache(cache_size)

    def __call__(self, name: str, rdtype: str, timeout: float) -> list[str]:
        try:
            answer = self.resolver.resolve(name, rdtype, lifetime=timeout, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration) as exc:
            raise DnsTempError(type(exc).__name__) from exc
        except dns.exception.DNSException as exc:  # a name too long, a malformed answer: nothing usable
            log.debug("DNS %s %s: %s", name, rdtype, exc)
            return []
        return [_rdata_text(rdata, rdtype) for rdata in answer]


def _rdata_text(rdata: Any, rdtype: str) -> str:
    if rdtype == "TXT":
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    if rdtype == "MX":
        return f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True)}"
    if rdtype == "PTR":
        return rdata.target.to_text(omit_final_dot=True)
    return rdata.to_text()


def _host_port(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [::1]:5353
        host, _, port = item[1:].partition("]:")
        return host.rstrip("]"), int(port or 53)
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, int(port)
    return item, 53


def _off(name: str, rdtype: str, timeout: float) -> list[str]:
    raise DnsTempError("DNS lookups are switched off (SENDER_AUTH_DNS=off)")


_default: Lookup | None = None
_default_lock = threading.Lock()


def default_lookup() -> Lookup:
    """The process-wide lookup from ``SENDER_AUTH_DNS`` (made once: its cache is shared)."""
    global _default
    with _default_lock:
        if _default is None:
            setting = (env(DNS_ENV) or "system").strip().lower()
            if setting == "off":
                _default = _off
            elif setting in ("", "system"):
                _default = SystemLookup()
            else:
                _default = SystemLookup([part for part in setting.split(",") if part.strip()])
        return _default


class Budget:
    """One message's DNS: a deadline shared by all its questions, and their answers for this message."""

    def __init__(self, lookup: Lookup, seconds: float) -> None:
        self.lookup = lookup
        self.deadline = time.monotonic() + seconds
        self.answers: dict[tuple[str, str], list[str]] = {}

    def __call__(self, name: str, rdtype: str) -> list[str]:
        key = (name.lower().rstrip("."), rdtype)
        if key in self.answers:
            return self.answers[key]
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DnsTempError("DNS time budget spent")
        answers = self.lookup(key[0], rdtype, left)
        self.answers[key] = answers
        return answers


def budget_seconds() -> float:
    try:
        return max(0.1, float(env(DNS_BUDGET_ENV) or DEFAULT_BUDGET))
    except ValueError:
        return DEFAULT_BUDGET


# pyspf asks its module-level DNSLookup; this one answers from the Budget of the evaluation running in
# this thread (a context variable), so that concurrent evaluations each use their own lookup and deadline.
_spf_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("spf_budget", default=None)


def _spf_dns(name: str, qtype: str, strict: Any = True, timeout: float = 20) -> list[tuple[tuple[str, str], Any]]:
    budget = _spf_budget.get()
    if budget is None:  # pyspf used outside ``evaluate``: nothing to answer with
        raise spf.TempError("DNS: no lookup configured")
    try:
        answers = budget(name, qtype)
    except DnsTempError as exc:
        raise spf.TempError(f"DNS {exc}") from exc
    out: list[tuple[tuple[str, str], Any]] = []
    for text in answers:
        if qtype in ("TXT", "SPF"):
            out.append(((name, qtype), [text.encode("utf-8")]))
        elif qtype == "MX":
            pref, _, host = text.partition(" ")
            out.append(((name, qtype), (int(pref or 0), host)))
        else:
            out.append(((name, qtype), text))
    return out


spf.DNSLookup = _spf_dns


# Helpers --------------------------------------------------------------------------------------------

def organizational_domain(domain: str) -> str:
    """``mail.example.co.uk`` -> ``example.co.uk`` (RFC 7489 3.2); the domain itself when unknown."""
    from core.mail.psl import PSL  # parsed on first use (the worker preloads it before forking)

    domain = domain.lower().rstrip(".")
    return PSL.privatesuffix(domain) or domain


def _domain_in(domain: str, wanted: tuple[str, ...]) -> bool:
    domain = domain.lower().rstrip(".")
    return any(domain == w or domain.endswith("." + w) for w in wanted)


def _headers(email: bytes | ReceivedEmail) -> Message:
    """The header block only (``ReceivedEmail.headers``): the parser would otherwise read the whole body."""
    return ReceivedEmail.of(email).headers


def from_domain(headers: Message) -> str | None:
    """The domain of the one ``From`` address (RFC 7489 6.6.1); None when there is none or several."""
    values = headers.get_all("From") or []
    if len(values) != 1:
        return None
    try:
        addresses = [addr for _name, addr in getaddresses([str(values[0])]) if "@" in addr]
    except Exception:
        return None
    if len(addresses) != 1:
        return None
    domain = addresses[0].rpartition("@")[2].strip().lower().rstrip(".")
    return domain[:253] or None


def _domain_of(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    return address.rpartition("@")[2].strip().lower().rstrip(">").rstrip(".")[:253] or None


def parse_networks(value: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def trusted_relay(peer: str | None, networks: Iterable[Any] | None = None) -> bool:
    """True when ``peer`` is one of the MTAs declared in ``TRUSTED_RELAYS``."""
    nets = tuple(networks) if networks is not None else parse_networks(env(TRUSTED_RELAYS_ENV))
    if not peer or not nets:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in nets)


# DKIM ------------------------------------------------------------------------------------------------

_RANK = {"pass": 5, "temperror": 4, "fail": 3, "permerror": 2, "policy": 2, "neutral": 1, "none": 0}


def check_dkim(raw: bytes, budget: Budget, headers: Message) -> list[dict[str, str]]:
    """One ``{"d", "s", "result"}`` per signature (at most MAX_SIGNATURES); ``headers``: ``raw``'s."""
    count = min(len(headers.get_all("DKIM-Signature") or []), MAX_SIGNATURES)
    results = []
    for idx in range(count):
        state = {"temp": False, "missing": False}

        def dnsfunc(name: bytes, timeout: float = 5, state: dict[str, bool] = state) -> bytes | None:
            try:
                answers = budget(name.decode("ascii", errors="replace"), "TXT")
            except DnsTempError as exc:
                state["temp"] = True
                raise dkim.DnsTimeoutError(str(exc)) from exc
            if not answers:
                state["missing"] = True
                return None
            return answers[0].encode("utf-8")

        signer = None
        try:
            signer = dkim.DKIM(raw, minkey=1024, timeout=5)
            ok = signer.verify(idx=idx, dnsfunc=dnsfunc)
            result = "pass" if ok else "temperror" if state["temp"] else "permerror" if state["missing"] else "fail"
        except dkim.ValidationError as exc:
            # A body that changed on the way is a failed signature; a signature missing what RFC 6376
            # requires (or expired, or for a tag we cannot check) is a permanent error.
            result = "fail" if "body hash mismatch" in str(exc) else "permerror"
        except dkim.DKIMException:  # a malformed signature or key (RFC 6376 6.1.1: permerror)
            result = "permerror"
        except Exception:  # dkimpy on input it did not expect: a verdict, never a crash
            log.warning("DKIM verification raised", exc_info=True)
            result = "permerror"
        fields = getattr(signer, "signature_fields", None) or {}
        results.append({
            "d": _text(fields.get(b"d"))[:253].lower(),
            "s": _text(fields.get(b"s"))[:63],
            "result": result,
        })
    return results


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    return "" if value is None else str(value)


def _best(results: Iterable[str]) -> str:
    return max(results, key=lambda r: _RANK.get(r, 0), default="none")


# SPF -----------------------------------------------------------------------------------------------


def check_spf(ip: str, mail_from: str, helo: str, budget: Budget) -> tuple[str, str | None]:
    """(result, the domain checked): MAIL FROM's domain, or HELO's for the null sender (RFC 7208 2.4)."""
    helo = (helo or "").strip()[:253]
    mail_from = (mail_from or "").strip()
    domain = _domain_of(mail_from) or (helo.lower() if helo else None)
    token = _spf_budget.set(budget)
    try:
        left = max(0.1, budget.deadline - time.monotonic())
        result, _explanation = spf.check2(i=ip, s=mail_from, h=helo or "unknown", querytime=left)
    except Exception:  # pyspf on odd input: a verdict, never a crash
        log.warning("SPF check raised", exc_info=True)
        result = "permerror"
    finally:
        _spf_budget.reset(token)
    result = str(result).lower()
    return (result if result in RESULTS else "permerror"), domain


# DMARC ---------------------------------------------------------------------------------------------

_TAG = re.compile(r"^\s*([A-Za-z]+)\s*=\s*(.*?)\s*$")


def _dmarc_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        match = _TAG.match(part)
        if match:
            tags.setdefault(match.group(1).lower(), match.group(2))
    return tags


def _dmarc_record(budget: Budget, domain: str) -> dict[str, str] | None:
    """The one ``v=DMARC1`` record at ``_dmarc.<domain>``; None when there is none or several (6.6.3)."""
    records = [t for t in budget(f"_dmarc.{domain}", "TXT") if t.strip().lower().startswith("v=dmarc1")]
    if len(records) != 1:
        return None
    tags = _dmarc_tags(records[0])
    if tags.get("v", "").upper() != "DMARC1":
        return None
    return tags


def _policy(tags: dict[str, str], subdomain: bool) -> str:
    p = tags.get("p", "").lower()
    if p not in POLICIES:
        p = "none"  # an invalid p= is treated as monitoring only (6.6.3, a record with rua and no valid p)
    if subdomain and tags.get("sp", "").lower() in POLICIES:
        p = tags["sp"].lower()
    try:
        pct = int(tags.get("pct", "100"))
    except ValueError:
        pct = 100
    if pct < 100 and p != "none":
        # RFC 7489 6.6.4: mail not sampled gets the next policy down. Applying the lower one to all keeps
        # our decision deterministic and never harsher than the domain owner asked.
        p = "quarantine" if p == "reject" else "none"
    return p


def _aligned(domain: str | None, author: str, strict: bool) -> bool:
    if not domain:
        return False
    domain = domain.lower().rstrip(".")
    if strict:
        return domain == author
    return organizational_domain(domain) == organizational_domain(author)


def check_dmarc(verdicts: Verdicts, author: str | None, budget: Budget) -> None:
    """Fill the DMARC fields of ``verdicts`` from its SPF and DKIM results."""
    verdicts.from_domain = author
    if author is None:
        verdicts.dmarc = "permerror"  # no single From domain to check (none, several, unreadable)
        return
    org = organizational_domain(author)
    try:
        tags = _dmarc_record(budget, author)
        if tags is None and org != author:
            tags = _dmarc_record(budget, org)
            subdomain = True
        else:
            subdomain = False
    except DnsTempError:
        verdicts.dmarc = "temperror"
        return
    spf_ok = verdicts.spf == "pass" and _aligned(verdicts.spf_domain, author, tags is not None and
                                                 tags.get("aspf", "r").lower() == "s")
    dkim_ok = any(
        sig["result"] == "pass" and _aligned(sig["d"], author, tags is not None and
                                             tags.get("adkim", "r").lower() == "s")
        for sig in verdicts.signatures
    )
    verdicts.aligned = spf_ok or dkim_ok
    if tags is None:
        verdicts.dmarc = "none"
        return
    verdicts.dmarc_policy = _policy(tags, subdomain)
    if verdicts.aligned:
        verdicts.dmarc = "pass"
    elif verdicts.spf == "temperror" or any(sig["result"] == "temperror" for sig in verdicts.signatures):
        verdicts.dmarc = "temperror"  # a passing check may have been lost to DNS: never a fail for that
    else:
        verdicts.dmarc = "fail"


# Entry points --------------------------------------------------------------------------------------


def evaluate(
    raw: bytes | ReceivedEmail,
    *,
    ip: str | None,
    mail_from: str | None,
    helo: str | None,
    lookup: Lookup | None = None,
    budget: float | None = None,
) -> Verdicts:
    """Our own SPF (when the SMTP client ``ip`` is known), DKIM and DMARC verdicts for ``raw``."""
    dns_budget = Budget(lookup or default_lookup(), budget_seconds() if budget is None else budget)
    verdicts = Verdicts(source="evaluated")
    if ip:
        verdicts.spf, verdicts.spf_domain = check_spf(ip, mail_from or "", helo or "", dns_budget)
    try:
        headers = _headers(raw)
    except Exception:
        headers = Message()
    raw_bytes = ReceivedEmail.of(raw).raw
    verdicts.signatures = check_dkim(raw_bytes, dns_budget, headers) if headers.get("DKIM-Signature") else []
    verdicts.dkim = _best(sig["result"] for sig in verdicts.signatures)
    verdicts.dkim_domains = sorted({sig["d"] for sig in verdicts.signatures if sig["result"] == "pass" and sig["d"]})
    check_dmarc(verdicts, from_domain(headers), dns_budget)
    return verdicts


def from_upstream(raw: bytes | ReceivedEmail, trusted_ids: Iterable[str] | None) -> Verdicts | None:
    """The verdicts of the topmost ``Authentication-Results`` whose authserv-id is trusted.

    ``trusted_ids`` None: the topmost header, whoever wrote it (only for a relay declared trusted by IP,
    which adds its header on top of what the sender wrote). None when no such header exists.
    """
    try:
        values = [str(v) for v in (_headers(raw).get_all("Authentication-Results") or [])][:MAX_HEADERS]
    except Exception:
        return None
    wanted = None if trusted_ids is None else {t.strip().lower() for t in trusted_ids if t.strip()}
    for value in values:
        parsed = parse_header(value)
        if not parsed or not any(m in parsed for m in ("spf", "dkim", "dmarc")):
            continue
        if wanted is not None and parsed["authserv_id"].lower() not in wanted:
            continue
        props = header_properties(value)
        return Verdicts(
            source="upstream",
            authserv_id=parsed["authserv_id"],
            spf=parsed.get("spf"),
            spf_domain=_domain_of(props.smtp_mailfrom),
            dkim=parsed.get("dkim", "none"),
            dkim_domains=props.dkim_pass_domains[:MAX_SIGNATURES],
            dmarc=parsed.get("dmarc", "none"),
            from_domain=props.header_from,
            dmarc_policy=props.dmarc_policy,
            aligned=parsed.get("dmarc") == "pass",
        )
    return None
