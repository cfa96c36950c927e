"""The company itself is never its own counterparty (issue 13, item 3).

A reading can put the tenant's own name where the client belongs: the letterhead and the addressee block
taken the wrong way round, a "vendor bill printed by its buyer" rule firing on our own invoice, OCR reading
our name a little wrong. Matching that name against the clients would then propose the company as its own
client (a new one, created at validation). And the company's own VAT number, printed on every invoice it
issues, would match a client record that carries it by mistake.

The tenant is recognised by its identity columns (``Tenant.legal_name``, ``Tenant.vat_number``, issue 18),
never by its display name (a label chosen at sign-up). Its name is compared as clients are
(``clients.normalize_name`` then rapidfuzz's ``token_sort_ratio``), so "ACME Industr1es S.A.S." is still us.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy.orm import Session

from core.extraction.identifiers import normalize_vat_id
from core.models import Tenant
from core.names import normalize_name

OUR_THRESHOLD = 88.0  # as ``clients.FUZZY_THRESHOLD``: a name this close to ours is ours
SWAPPED_CONFIDENCE = 0.5  # the parties were read the wrong way round: both are shown for a check
SWAPPED_NOTE = ("\u201c{ours}\u201d was read as the client but is your own company: the other party was "
                "taken as the client; check both")


def is_ourselves(tenant: Tenant, name: str | None) -> bool:
    """``name`` is the tenant's legal name, as printed or read slightly wrong."""

    if not name or not tenant.legal_name:
        return False
    ours, read = normalize_name(tenant.legal_name), normalize_name(name)
    if not ours or not read:
        return False
    return read == ours or fuzz.token_sort_ratio(read, ours) >= OUR_THRESHOLD


def others_vat_ids(tenant: Tenant, vat_ids: Iterable[str]) -> list[str]:
    """The VAT ids of the document that are not the tenant's own (ours names no client)."""
    ours = normalize_vat_id(tenant.vat_number) if tenant.vat_number else None
    return [v for v in vat_ids if v and normalize_vat_id(v) != ours]


def keep_ourselves_out(
    session: Session, tenant_id: int, fields: dict[str, Any], field_info: dict[str, Any], vat_ids: Iterable[str]
) -> list[str]:
    """Before the client is matched: our own VAT id dropped from ``vat_ids`` (returned), and a client read
    as the tenant itself replaced by the issuer read (the parties swapped, both flagged), or removed when
    the issuer is missing or is us too (the reviewer enters it)."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        return list(vat_ids)
    kept = others_vat_ids(tenant, vat_ids)
    client = fields.get("client")
    if not is_ourselves(tenant, client):
        return kept
    issuer = fields.get("issuer")
    if not issuer or is_ourselves(tenant, issuer):
        fields.pop("client", None)
        field_info.pop("client", None)
        return kept
    note = SWAPPED_NOTE.format(ours=client)
    client_info, issuer_info = dict(field_info.get("client") or {}), dict(field_info.get("issuer") or {})
    fields["client"], fields["issuer"] = issuer, client
    for name, info in (("client", issuer_info), ("issuer", client_info)):
        confidence = min(float(info.get("confidence", SWAPPED_CONFIDENCE)), SWAPPED_CONFIDENCE)
        field_info[name] = {**info, "confidence": confidence, "note": note, "swapped": True}
    return kept
