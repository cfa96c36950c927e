"""Company and bank identifiers written on an invoice, kept only when their check digits are right.

python-stdnum does the checking: it knows the check algorithm of every EU VAT number (the French key,
the German, Belgian, Dutch... ones), IBAN's mod-97 per country length, and SIREN/SIRET's Luhn key, and
it is maintained against the official specifications. Writing those by hand would be 27 VAT
algorithms to get wrong; a number that fails its check is an OCR or typing error and is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stdnum import iban as std_iban
from stdnum.eu import vat as std_vat
from stdnum.fr import siren as std_siren
from stdnum.fr import siret as std_siret


def load_checkers() -> None:
    """Import every country's VAT checker now (stdnum imports them on first use of each country)."""
    from stdnum.util import get_cc_module

    for country in _EU_PREFIXES.split("|"):
        get_cc_module(country.lower(), "vat")


MAX_TEXT = 200_000  # characters scanned; identifiers are on the first pages
_EU_PREFIXES = "AT|BE|BG|CY|CZ|DE|DK|EE|EL|GR|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI"
# A country prefix, then 2-13 letters/digits that may be split by spaces, dots or dashes.
_VAT = re.compile(rf"(?<![A-Z0-9])({_EU_PREFIXES})[ .\-]?([0-9A-Z](?:[ .\-]?[0-9A-Z]){{1,12}})(?![0-9A-Z])")
_IBAN = re.compile(r"(?<![A-Z0-9])([A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{1,4}){3,8})(?![A-Z0-9])")
_SIRET = re.compile(r"(?<!\d)(\d{3}[ .]?\d{3}[ .]?\d{3}[ .]?\d{5})(?!\d)")
_SIREN = re.compile(r"(?<!\d)(\d{3}[ .]?\d{3}[ .]?\d{3})(?![ .]?\d)")


@dataclass
class Identifiers:
    vat_ids: list[str] = field(default_factory=list)  # compact form: "FR40303265045"
    ibans: list[str] = field(default_factory=list)
    sirets: list[str] = field(default_factory=list)
    sirens: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {k: v for k, v in vars(self).items() if v}


def _add(values: list[str], value: str) -> None:
    if value not in values:
        values.append(value)


def normalize_vat_id(value: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", value.upper())


def valid_vat_id(value: str) -> str | None:
    """The compact VAT id when ``value`` is a well-formed EU VAT number with a correct check, else None."""
    compact = normalize_vat_id(value)
    try:
        return std_vat.validate(compact) and compact
    except Exception:  # stdnum raises ValidationError subclasses (InvalidChecksum, InvalidLength...)
        return None


def find_identifiers(text: str) -> Identifiers:
    """The VAT ids, IBANs, SIRETs and SIRENs in ``text`` whose check digits are right, in order of appearance."""
    text = text[:MAX_TEXT].upper()
    found = Identifiers()
    for m in _VAT.finditer(text):
        compact = valid_vat_id(m.group(0))
        if compact:
            _add(found.vat_ids, compact)
    for m in _IBAN.finditer(text):
        candidate = re.sub(r"\s", "", m.group(1))
        # Greedy grouping may swallow the next word ("... 189 BIC"): try shorter tails too.
        for end in range(len(candidate), 14, -1):
            if std_iban.is_valid(candidate[:end]):
                _add(found.ibans, std_iban.compact(candidate[:end]))
                break
    for m in _SIRET.finditer(text):
        digits = re.sub(r"\D", "", m.group(1))
        if std_siret.is_valid(digits):
            _add(found.sirets, digits)
            _add(found.sirens, digits[:9])
    for m in _SIREN.finditer(text):
        digits = re.sub(r"\D", "", m.group(1))
        if std_siren.is_valid(digits):
            _add(found.sirens, digits)
    return found
