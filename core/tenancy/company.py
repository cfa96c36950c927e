"""The company's identity (issue 18, item 1): who "we" are, checked by python-stdnum, and what it decides.

A document's direction follows from it: issued by us, a sale (receivable, the counterparty a client);
addressed to us, a purchase (payable, the counterparty a supplier). Evidence is read from the seller and
buyer sides the extraction kept apart (an e-invoice's seller/buyer VAT ids, the issuer and client names,
the IBAN to pay, which is the seller's); when it points both ways or nowhere, the reviewer picks, with the
reason shown: nothing is guessed silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pycountry
from rapidfuzz import fuzz
from sqlalchemy.orm import Session
from stdnum import iban as std_iban
from stdnum.eu import vat as std_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import siren as std_siren
from stdnum.fr import siret as std_siret

from core.errors import ValidationFailed
from core.fields import parse_amount
from core.i18n import N_
from core.models import Direction, Tenant, User
from core.names import normalize_name
from core.tenancy import audit

IDENTITY_FIELDS = ("legal_name", "country", "siren", "vat_number", "iban", "datev_consultant_number",
                   "datev_client_number")
APPROVAL_MODES = ("none", "one", "two_above")
LEGAL_NAME_MAX = 200

BAD_COUNTRY = N_("not an ISO 3166 country code of two letters (e.g. FR, DE)")
BAD_SIREN = N_("not a valid SIREN (9 digits) or SIRET (14 digits): check the digits, the last one is a key")
BAD_VAT = N_("not a valid VAT number: a country prefix (e.g. FR, DE) then the number; its check digits are wrong")
VAT_COUNTRY = N_("this VAT number is not of the company's country ({country})")
BAD_IBAN = N_("not a valid IBAN: check its length and digits (e.g. FR76 3000 6000 0112 3456 7890 189)")
SIREN_NEEDS_FR = N_("a SIREN/SIRET is French: set the country to FR, or leave it empty")
BAD_MODE = N_("must be none, one or two_above")
THRESHOLD_NEEDED = N_("a second approval needs an amount above which it is asked (e.g. 5000)")
BAD_THRESHOLD = N_("must be a positive amount (e.g. 5000.00)")
NAME_TOO_LONG = N_("at most 200 characters")
BAD_CONSULTANT = N_("a DATEV Beraternummer is a number from 1001 to 9999999")
BAD_CLIENT = N_("a DATEV Mandantennummer is a number from 1 to 99999")
# DATEV's bounds for the Buchungsstapel header's fields 11 and 12.
DATEV_NUMBERS = {"datev_consultant_number": (1001, 9_999_999, BAD_CONSULTANT),
                 "datev_client_number": (1, 99_999, BAD_CLIENT)}

# Why a document's direction is what it is, shown on the review page (field_info["direction"]["note"]).
ISSUED_BY_US = N_("issued by your company ({evidence}): a sale")
ADDRESSED_TO_US = N_("addressed to your company ({evidence}): a purchase")
BOTH_WAYS = N_("your company appears as both issuer and buyer ({evidence}): choose the direction")
NOT_FOUND = N_("your company was not found as issuer or buyer: choose sale or purchase")
NO_IDENTITY = N_("your company's identity is not set (Settings → Company): taken as a sale, check it")


def _vat_country(compact: str) -> str:
    prefix = compact[:2]
    return "GR" if prefix == "EL" else prefix


def clean_identity(data: dict[str, Any]) -> dict[str, str | None]:
    """The identity fields present in ``data``, compact and upper case; ValidationFailed per field."""
    values: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for name in IDENTITY_FIELDS:
        if name not in data:
            continue
        raw = data[name]
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values[name] = None
            continue
        if not isinstance(raw, str):
            errors[name] = N_("must be text")
            continue
        text = " ".join(raw.split())
        try:
            values[name] = _clean_one(name, text)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationFailed(errors)
    return values


def _clean_one(name: str, text: str) -> str:
    if name == "legal_name":
        if len(text) > LEGAL_NAME_MAX:
            raise ValueError(NAME_TOO_LONG)
        return text
    if name == "country":
        code = text.upper()
        if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
            raise ValueError(BAD_COUNTRY)
        return code
    if name == "siren":
        digits = "".join(text.split()).replace(".", "")
        try:
            return std_siren.validate(digits) if len(digits) == 9 else std_siret.validate(digits)
        except StdnumError as exc:
            raise ValueError(BAD_SIREN) from exc
    if name in DATEV_NUMBERS:
        low, high, message = DATEV_NUMBERS[name]
        if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise ValueError(message)
        return str(int(text))
    if name == "vat_number":
        try:
            return std_vat.validate(text.upper())
        except StdnumError as exc:
            raise ValueError(BAD_VAT) from exc
    try:  # iban
        return std_iban.validate(text.upper())
    except StdnumError as exc:
        raise ValueError(BAD_IBAN) from exc


def update_identity(session: Session, tenant_id: int, data: dict[str, Any], actor: User | None = None,
                    ip: str | None = None) -> Tenant:
    """Set the identity fields given (others unchanged), checked together; the change is audited."""
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    errors: dict[str, str] = {}
    try:
        values = clean_identity(data)
    except ValidationFailed as exc:  # reported together with the other fields' problems
        values, errors = {}, dict(exc.errors)
    after = {name: values.get(name, getattr(tenant, name)) for name in IDENTITY_FIELDS}
    country = after["country"]
    if after["vat_number"] and country and _vat_country(after["vat_number"]) != country and "vat_number" in values:
        errors["vat_number"] = VAT_COUNTRY.format(country=country)
    if after["siren"] and country and country != "FR" and ("siren" in values or "country" in values):
        errors["siren"] = SIREN_NEEDS_FR
    errors |= _approval_errors(tenant, data)
    if errors:
        raise ValidationFailed(errors)
    changes = {name: [getattr(tenant, name), value] for name, value in values.items()
               if getattr(tenant, name) != value}
    for name, value in values.items():
        setattr(tenant, name, value)
    changes |= _apply_approval(tenant, data)
    if changes:
        audit.record(session, tenant_id, "settings.company", actor=actor, target=f"tenant:{tenant_id}",
                     detail={"changes": changes}, ip=ip)
    session.flush()
    return tenant


def _approval_errors(tenant: Tenant, data: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    mode = data.get("approval_mode", tenant.approval_mode)
    if mode not in APPROVAL_MODES:
        errors["approval_mode"] = BAD_MODE
    threshold = data.get("approval_threshold", tenant.approval_threshold)
    if threshold is not None and threshold != "":
        try:
            amount = threshold if isinstance(threshold, Decimal) else parse_amount(str(threshold))
            if amount <= 0:
                raise ValueError(BAD_THRESHOLD)
        except (ValueError, TypeError):
            errors["approval_threshold"] = BAD_THRESHOLD
    elif mode == "two_above":
        errors["approval_threshold"] = THRESHOLD_NEEDED
    return errors


def _apply_approval(tenant: Tenant, data: dict[str, Any]) -> dict[str, list[str | None]]:
    changes: dict[str, list[str | None]] = {}
    if "approval_mode" in data and data["approval_mode"] != tenant.approval_mode:
        changes["approval_mode"] = [tenant.approval_mode, data["approval_mode"]]
        tenant.approval_mode = data["approval_mode"]
    if "approval_threshold" in data:
        raw = data["approval_threshold"]
        value = None if raw in (None, "") else parse_amount(str(raw))
        if value != tenant.approval_threshold:
            changes["approval_threshold"] = [str(tenant.approval_threshold or ""), str(value or "")]
            tenant.approval_threshold = value
    return changes


def has_identity(tenant: Tenant) -> bool:
    return any((tenant.legal_name, tenant.siren, tenant.vat_number, tenant.iban))


# Direction -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parties:
    """What a document says about its two sides (None: not read)."""

    seller_name: str | None = None
    buyer_name: str | None = None
    seller_vat: str | None = None
    buyer_vat: str | None = None
    payee_iban: str | None = None  # the IBAN to pay: the seller's


@dataclass(frozen=True)
class DirectionDecision:
    direction: str | None  # None: the reviewer picks
    note: str
    evidence: tuple[str, ...] = ()

    def field_info(self) -> dict[str, Any]:
        """The review page's flag: sure only when evidence points one way."""
        info: dict[str, Any] = {"source": "company-identity", "note": self.note,
                                "confidence": 0.95 if self.direction and self.evidence else 0.0}
        if self.direction is None:
            info["undecided"] = True
        return info


SAME_NAME_THRESHOLD = 88.0  # as client matching (``clients.FUZZY_THRESHOLD``): "ACME Industr1es S.A.S." is us


def _same_company(tenant: Tenant, name: str | None) -> bool:
    """``name`` is the company's legal name, as printed or read slightly wrong (OCR)."""
    if not name or not tenant.legal_name:
        return False
    ours, read = normalize_name(tenant.legal_name), normalize_name(name)
    if not ours or not read:
        return False
    return read == ours or fuzz.token_sort_ratio(read, ours) >= SAME_NAME_THRESHOLD


def _compact(value: str | None) -> str:
    return "".join(ch for ch in (value or "").upper() if ch.isalnum())


def decide_direction(tenant: Tenant, parties: Parties) -> DirectionDecision:
    """Sale, purchase or undecided, with the evidence, from the company's identity and the document."""
    if not has_identity(tenant):
        return DirectionDecision(Direction.RECEIVABLE.value, NO_IDENTITY)
    vat, iban = _compact(tenant.vat_number), _compact(tenant.iban)
    sale: list[str] = []
    purchase: list[str] = []
    if vat and _compact(parties.seller_vat) == vat:
        sale.append("seller VAT number")
    if vat and _compact(parties.buyer_vat) == vat:
        purchase.append("buyer VAT number")
    if iban and _compact(parties.payee_iban) == iban:
        sale.append("IBAN to pay")
    if _same_company(tenant, parties.seller_name):
        sale.append("issuer name")
    if _same_company(tenant, parties.buyer_name):
        purchase.append("client name")
    if sale and not purchase:
        return DirectionDecision(Direction.RECEIVABLE.value, ISSUED_BY_US.format(evidence=", ".join(sale)),
                                 tuple(sale))
    if purchase and not sale:
        return DirectionDecision(Direction.PAYABLE.value, ADDRESSED_TO_US.format(evidence=", ".join(purchase)),
                                 tuple(purchase))
    if sale and purchase:
        return DirectionDecision(None, BOTH_WAYS.format(evidence=", ".join(sale + purchase)))
    # Our VAT id or SIREN in the text alone says we are on the document, not on which side: undecided.
    return DirectionDecision(None, NOT_FOUND)
