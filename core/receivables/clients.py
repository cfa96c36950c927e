"""Which of the tenant's existing clients an extracted invoice is for.

Our users issue the invoices (receivables), so the client is the buyer. Order of evidence:

1. a VAT id on the document (checked by its check digits) equal to a client's VAT id: certain;
2. the name, normalised (case, accents, punctuation, legal forms such as SARL/GmbH/Ltd): exact;
3. the normalised name fuzzy-matched with rapidfuzz (``token_sort_ratio`` >= ``FUZZY_THRESHOLD``): likely,
   so the reviewer is asked to check it (confidence below the review page's 0.8 mark).

Nothing matches: the extracted name is kept and noted as a new client (created at validation by
``documents.find_or_create_client``). Every query is scoped to the tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.extraction.identifiers import normalize_vat_id
from core.models import Client, CounterpartyRole
from core.names import normalize_name
from core.receivables.ourselves import keep_ourselves_out

FUZZY_THRESHOLD = 88.0
MAX_CLIENTS = 50_000  # names compared per document; beyond this only VAT ids and exact names count

@dataclass(frozen=True)
class ClientMatch:
    client_id: int
    name: str
    method: str  # "vat_id", "name", "fuzzy"
    score: float  # 100 for vat_id and name


def match_client(session: Session, tenant_id: int, name: str | None, vat_ids: Iterable[str] = (),
                 role: str = CounterpartyRole.CLIENT.value) -> ClientMatch | None:
    """The tenant's client (or, with ``role`` "supplier", supplier) this document names, or None."""
    wanted_vat = {normalize_vat_id(v) for v in vat_ids if v}
    rows = session.execute(
        select(Client.id, Client.name, Client.vat_id)
        .where(Client.tenant_id == tenant_id, Client.role == role).limit(MAX_CLIENTS)
    ).all()
    if wanted_vat:
        by_vat = [row for row in rows if row.vat_id and normalize_vat_id(row.vat_id) in wanted_vat]
        if len(by_vat) == 1:  # two clients sharing a VAT id: let the name decide
            return ClientMatch(by_vat[0].id, by_vat[0].name, "vat_id", 100.0)
    if not name or not rows:
        return None
    key = normalize_name(name)
    if not key:
        return None
    names = {row.id: normalize_name(row.name) for row in rows}
    exact = [row for row in rows if names[row.id] == key]
    if exact:
        return ClientMatch(exact[0].id, exact[0].name, "name", 100.0)
    best = process.extractOne(key, names, scorer=fuzz.token_sort_ratio, score_cutoff=FUZZY_THRESHOLD)
    if best is None:
        return None
    _choice, score, client_id = best
    row = next(r for r in rows if r.id == client_id)
    return ClientMatch(row.id, row.name, "fuzzy", float(score))


def prefill_client(
    session: Session, tenant_id: int, fields: dict[str, Any], field_info: dict[str, Any], vat_ids: Iterable[str] = ()
) -> ClientMatch | None:
    """Replace the extracted client name by the matching existing client's, with a note saying why. The
    tenant itself is never the client (``ourselves``): its own name and VAT id are kept out first."""
    vat_ids = keep_ourselves_out(session, tenant_id, fields, field_info, vat_ids)
    extracted = fields.get("client")
    match = match_client(session, tenant_id, extracted, vat_ids)
    info = dict(field_info.get("client") or {})
    swapped = info.get("note") if info.get("swapped") else None  # why the client is the party read as issuer
    if match is None:
        if extracted:
            info["note"] = _with(swapped, "new client: it will be created when this document is validated")
            field_info["client"] = info
        return None
    source = info.get("source", "client-match")
    if match.method == "fuzzy":
        confidence = min(float(info.get("confidence", 0.75)), 0.75)  # likely, not certain: ask the reviewer
        note = (f"matched to your client \u201c{match.name}\u201d (read \u201c{extracted}\u201d, "
                f"similarity {match.score:.0f}%)")
    else:
        confidence = max(float(info.get("confidence", 0.9)), 0.95)
        how = "its VAT id" if match.method == "vat_id" else "its name"
        note = f"matched to your client \u201c{match.name}\u201d by {how}"
    if swapped:
        confidence = min(confidence, 0.75)  # a known client, but found by turning the parties round: check it
    fields["client"] = match.name
    field_info["client"] = {"source": source, "confidence": round(confidence, 2), "note": _with(swapped, note),
                            "client_id": match.client_id}
    return match


def _with(first: str | None, note: str) -> str:
    return f"{first}; {note}" if first else note
