"""Issuer profiles: learned when a person validates a document, used first when the next one of that issuer
is read (issue #13 item 8). The layout logic is in ``core.extraction.memory``; this module stores profiles,
recognises the issuer of a document and holds the two hooks:

- ``read_with_profile`` (the worker, after the generic extraction and templates): keeps the text the
  document was read from, finds the issuer's profile and lets it read the fields first;
- ``learn_from_validation`` (``documents.validate_document``, used by the dashboard and the API).

An issuer is recognised, in order of trust, by a VAT number or an IBAN printed on the document (checked by
their check digits), the domain of the address that sent it, or its normalised name. A key that several
profiles share (the tenant's own VAT number printed on every supplier's invoice, a forwarding colleague's
domain) tells nothing and is ignored. Every query is scoped to the tenant: a profile serves one tenant only.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from email.utils import parseaddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.extraction import memory
from core.extraction.generic import check_totals
from core.extraction.identifiers import Identifiers, find_identifiers, normalize_vat_id
from core.extraction.result import Extraction
from core.fields import FIELDS
from core.models import Client, Document, Invoice, Tenant
from core.models_profiles import DocumentReading, IssuerProfile, IssuerProfileKey
from core.receivables.clients import normalize_name

logger = logging.getLogger(__name__)

MAX_TEXT = 100_000  # characters of a document's text kept for learning
MAX_KEYS = 24  # keys per profile (the most recent kept)
MAX_NAMES = 20_000  # profile names compared with a document's text
MIN_NAME = 3  # shorter normalised names recognise nothing
WEIGHTS = {"vat": 8, "iban": 4, "domain": 2, "name": 1}
# Mail providers anyone can use: their domain says nothing about who sent an invoice.
PUBLIC_MAIL = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.fr", "live.com", "live.fr", "msn.com",
    "yahoo.com", "yahoo.fr", "icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "gmx.fr", "web.de",
    "t-online.de", "orange.fr", "wanadoo.fr", "free.fr", "laposte.net", "sfr.fr", "protonmail.com", "proton.me",
})


def sender_domain(doc: Document) -> str | None:
    """The domain of the address the document's message came from, unless it is a public mail provider."""
    message = doc.message
    if message is None or not message.sender:
        return None
    address = parseaddr(message.sender)[1].lower()
    domain = address.rpartition("@")[2].strip().rstrip(".")
    if not domain or "@" not in address or domain in PUBLIC_MAIL:
        return None
    return domain[:320]


def _name_key(name: str | None) -> str | None:
    key = normalize_name(name or "")[:320]
    return key if len(key) >= MIN_NAME else None


def _keys(ids: Identifiers, domain: str | None, name: str | None) -> list[tuple[str, str]]:
    keys = [("vat", v) for v in ids.vat_ids] + [("iban", v) for v in ids.ibans]
    if domain:
        keys.append(("domain", domain))
    if (key := _name_key(name)) is not None:
        keys.append(("name", key))
    return keys


def find_profile(session: Session, tenant_id: int, keys: list[tuple[str, str]], text: str = "") -> tuple[
        IssuerProfile, str] | None:
    """The tenant's profile these keys (and names printed in ``text``) point to, and the strongest key kind."""
    hits: dict[tuple[str, str], set[int]] = defaultdict(set)
    exact = [value for kind, value in keys if kind != "name"]
    if exact:
        rows = session.execute(
            select(IssuerProfileKey.kind, IssuerProfileKey.value, IssuerProfileKey.profile_id).where(
                IssuerProfileKey.tenant_id == tenant_id, IssuerProfileKey.kind.in_(("vat", "iban", "domain")),
                IssuerProfileKey.value.in_(exact))
        ).all()
        wanted = set(keys)
        for kind, value, profile_id in rows:
            if (kind, value) in wanted:
                hits[(kind, value)].add(profile_id)
    names = {value for kind, value in keys if kind == "name"}
    printed = f" {normalize_name(text[:MAX_TEXT])} " if text else ""
    rows = session.execute(
        select(IssuerProfileKey.value, IssuerProfileKey.profile_id)
        .where(IssuerProfileKey.tenant_id == tenant_id, IssuerProfileKey.kind == "name")
        .limit(MAX_NAMES)
    ).all()
    for value, profile_id in rows:
        if value in names or (printed and f" {value} " in printed):
            hits[("name", value)].add(profile_id)
    scores: dict[int, int] = defaultdict(int)
    best_kind: dict[int, str] = {}
    for (kind, _value), profiles in hits.items():
        if len(profiles) != 1:
            continue  # shared by several issuers: tells them apart no more
        profile_id = next(iter(profiles))
        scores[profile_id] += WEIGHTS[kind]
        if WEIGHTS[kind] > WEIGHTS.get(best_kind.get(profile_id, ""), 0):
            best_kind[profile_id] = kind
    if not scores:
        return None
    top = max(scores.values())
    leaders = [pid for pid, score in scores.items() if score == top]
    if len(leaders) != 1:
        return None  # two issuers equally likely: read without a profile rather than with the wrong one
    profile = session.get(IssuerProfile, leaders[0])
    if profile is None or profile.tenant_id != tenant_id:
        return None
    return profile, best_kind[leaders[0]]


# Reading -----------------------------------------------------------------------------------------


def read_with_profile(session: Session, doc: Document, text: str, result: Extraction) -> dict[str, Any] | None:
    """Read ``text`` with the profile of its issuer, if the tenant has one, into ``result``; keep the text for
    learning at validation. Returns what to record in the document's extraction details."""
    ids = find_identifiers(text)
    domain = sender_domain(doc)
    keys = _keys(ids, domain, result.fields.get("issuer"))
    match = find_profile(session, doc.tenant_id, keys, text)
    details = None
    if match is not None and not confirmed(match[0].data or {}, text, match[1]):
        logger.info("document %s: issuer profile %s found by %s, but neither its layout nor its name is on the page",
                    doc.id, match[0].id, match[1])
        match = None
    if match is not None:
        profile, matched_by = match
        # Template fields win: a template written for this issuer is the more exact reader.
        keep = {name for name, info in result.field_info.items() if "invoice2data" in str(info.get("source", ""))}
        try:
            changed = memory.apply(profile.data or {}, text, result, issuer_known=True, keep=keep)
            check_totals(result)
        except Exception:  # a profile that cannot be applied must not cost the generic reading
            logger.exception("document %s: issuer profile %s could not be applied", doc.id, profile.id)
            changed = []
        details = {"id": profile.id, "name": profile.name, "matched_by": matched_by, "fields": sorted(set(changed))}
    _keep_reading(session, doc, text, result, match[0].id if match else None)
    return details


MIN_AGREEMENT = 0.5  # share of the profile's labels the page must show when the issuer's name is not on it


def confirmed(data: dict[str, Any], text: str, matched_by: str) -> bool:
    """The page confirms what the key said: the issuer's name is printed on it, or its usual labels are. A
    profile that learned no label (its first document was an unreadable scan) only infers, flagged for a
    check, and only for a key stronger than a name."""
    if memory.issuer_printed(data, text):
        return True
    share = memory.agreement(data, text)
    return matched_by != "name" if share is None else share >= MIN_AGREEMENT


def _keep_reading(session: Session, doc: Document, text: str, result: Extraction, profile_id: int | None) -> None:
    reading = session.get(DocumentReading, doc.id)
    extracted = {name: str(value) for name, value in result.fields.items() if name in FIELDS}
    if reading is None:
        reading = DocumentReading(document_id=doc.id, tenant_id=doc.tenant_id)
        session.add(reading)
    reading.text, reading.extracted, reading.profile_id = text[:MAX_TEXT], extracted, profile_id


# Learning ----------------------------------------------------------------------------------------


def learn_from_validation(session: Session, doc: Document, invoice: Invoice) -> IssuerProfile | None:
    """Update (or create) the profile of the validated document's issuer. None when there is nothing to learn
    from (no text kept: an e-invoice, a document typed by hand) or the issuer cannot be identified.

    Learning twice from the same document changes nothing more than once.
    """
    reading = session.get(DocumentReading, doc.id)
    if reading is None or reading.tenant_id != doc.tenant_id or not reading.text.strip():
        return None
    truth = {name: getattr(doc, name) for name in FIELDS}
    ids = find_identifiers(reading.text)
    client_vat = None
    if invoice.direction == "payable":  # issue 18: the buyer is the company itself, the client row the issuer
        tenant = session.get(Tenant, doc.tenant_id)
        client_vat = normalize_vat_id(tenant.vat_number) if tenant is not None and tenant.vat_number else None
    elif invoice.client_id is not None:
        client = session.get(Client, invoice.client_id)
        client_vat = normalize_vat_id(client.vat_id) if client is not None and client.vat_id else None
    ids.vat_ids = [v for v in ids.vat_ids if v != client_vat]  # the buyer's number is not the issuer's
    keys = _keys(ids, sender_domain(doc), truth.get("issuer"))
    if not keys:
        logger.info("document %s: issuer not identified, nothing learned", doc.id)
        return None
    match = find_profile(session, doc.tenant_id, keys)
    profile = match[0] if match is not None and _same_issuer(match[0], match[1], keys) else None
    if profile is None:
        profile = IssuerProfile(tenant_id=doc.tenant_id, data={}, documents=0)
        session.add(profile)
        session.flush()
    data = memory.learn(reading.text, truth, extracted=reading.extracted, previous=profile.data,
                        document=str(doc.id))
    profile.data = data
    profile.name = str(truth.get("issuer") or profile.name or "")[:300]
    profile.documents = len(data.get("documents", []))
    _add_keys(session, profile, keys)
    session.flush()
    logger.info("document %s: issuer profile %s learned (%d document(s))", doc.id, profile.id, profile.documents)
    return profile


def _same_issuer(profile: IssuerProfile, matched_by: str, keys: list[tuple[str, str]]) -> bool:
    """Whether a validation found ``profile`` by a key that names one issuer: its VAT id or IBAN, or the
    validated issuer's name. A sending domain alone may be a forwarder's or a billing platform's, shared by
    many issuers: learning into that profile would merge them (a new profile is made instead)."""
    if matched_by in ("vat", "iban"):
        return True
    names = {value for kind, value in keys if kind == "name"}
    return any(key.kind == "name" and key.value in names for key in profile.keys)


def _add_keys(session: Session, profile: IssuerProfile, keys: list[tuple[str, str]]) -> None:
    existing = {(key.kind, key.value): key for key in profile.keys}
    for kind, value in keys:
        if (kind, value) not in existing:
            key = IssuerProfileKey(tenant_id=profile.tenant_id, kind=kind, value=value)
            profile.keys.append(key)
            existing[(kind, value)] = key
    surplus = len(profile.keys) - MAX_KEYS
    if surplus > 0:  # the oldest go: an issuer that changed bank keeps being recognised by the new IBAN
        for key in sorted(profile.keys, key=lambda k: k.id or 0)[:surplus]:
            profile.keys.remove(key)


def learn_safely(session: Session, doc: Document, invoice: Invoice) -> None:
    """``learn_from_validation`` inside a savepoint: a validation never fails because learning did."""
    try:
        with session.begin_nested():
            learn_from_validation(session, doc, invoice)
    except Exception:
        logger.exception("document %s: learning its issuer's profile failed", doc.id)
