"""Reading payment texts: invoice-number keys, structured references, names."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_NON_DIGIT = re.compile(r"\D")
MAX_WINDOW = 4  # "RE 2020 1121 508": a number split into up to four pieces is still found
MIN_KEY = 3
MIN_DIGITS = 4  # shorter digit strings (days, "508") say nothing on their own
MAX_TEXT = 2000  # remittance fields are 140 chars each; anything longer is noise

def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that announce a deliberate partial payment (FR, DE, EN, NL).
PARTIAL_WORDS = _word_set(
    "acompte partiel partielle teilzahlung abschlag anzahlung rate partial instalment installment "
    "deelbetaling termijn"
)
_LEGAL_FORMS = _word_set(
    "sa sas sasu sarl eurl sci snc scs selarl gmbh ag kg ohg ug ev mbh co cie ltd limited llc inc corp "
    "plc bv nv srl spa sl the et und and"
)


def number_key(number: str) -> str:
    """Letters and digits only, upper-cased: ``RE-2020/508`` -> ``RE2020508``."""
    return "".join(_TOKEN.findall(number)).upper()


def digits_of(value: str) -> str:
    return _NON_DIGIT.sub("", value)


def text_windows(text: str) -> set[str]:
    """Every concatenation of 1..MAX_WINDOW consecutive letter/digit tokens of ``text``, upper-cased."""
    tokens = [t.upper() for t in _TOKEN.findall(text[:MAX_TEXT])]
    keys: set[str] = set()
    for start in range(len(tokens)):
        key = ""
        for token in tokens[start : start + MAX_WINDOW]:
            key += token
            if len(key) >= MIN_KEY:
                keys.add(key)
    return keys


def deletions(value: str) -> set[str]:
    """``value`` with one character removed, every way (symmetric-delete fuzzy lookup, distance 1)."""
    return {value[:i] + value[i + 1 :] for i in range(len(value))}


def one_edit_variants(digits: str) -> set[str]:
    """Every digit string one substitution, deletion, insertion or adjacent swap away from ``digits``."""
    out = {digits[:i] + digits[i + 1 :] for i in range(len(digits))}
    for i in range(len(digits) - 1):
        if digits[i] != digits[i + 1]:
            out.add(digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :])
    for i in range(len(digits) + 1):
        head, tail = digits[:i], digits[i:]
        for d in "0123456789":
            out.add(head + d + tail)
            if i < len(digits) and d != digits[i]:
                out.add(head + d + digits[i + 1 :])
    out.discard(digits)
    return out


def within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance <= 1 (one substitution, insertion, deletion or swap)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def _mod97(value: str) -> int:
    digits = "".join(str(int(c, 36)) for c in value)
    return int(digits) % 97


def structured_references(text: str) -> set[str]:
    """Creditor references in ``text``: ISO 11649 ``RF18 5390 0754 7034`` and Belgian ``+++090/9337/55493+++``,
    returned as the creditor's own reference (upper-cased, leading zeros dropped), checksums verified."""
    found: set[str] = set()
    compact = re.sub(r"\s", "", text[:MAX_TEXT]).upper()
    for match in re.finditer(r"RF(\d\d)([A-Z0-9]{1,21})", compact):
        check, ref = match.groups()
        # The check digits may have swallowed following text: try the longest prefix that verifies.
        for end in range(len(ref), 0, -1):
            if _mod97(ref[:end] + "RF" + check) == 1:
                found.add(ref[:end].lstrip("0") or "0")
                break
    for match in re.finditer(r"(?:\+{3}|\*{3})(\d{3})/?(\d{4})/?(\d{5})(?:\+{3}|\*{3})", compact):
        digits = "".join(match.groups())
        base, check = int(digits[:10]), int(digits[10:])
        if (base % 97 or 97) == check:
            found.add(digits[:10].lstrip("0") or "0")
    return found


def rf_reference(creditor_ref: str) -> str:
    """The ISO 11649 RF reference for a creditor reference (used by tests and the benchmark)."""
    ref = number_key(creditor_ref)
    check = 98 - _mod97(ref + "RF00")
    return f"RF{check:02d}{ref}"


def name_key(name: str | None) -> str:
    """A company name without accents, case, punctuation or legal form: ``Dupont & Fils SARL`` -> ``dupont fils``."""
    if not name:
        return ""
    ascii_only = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    words = [w for w in re.findall(r"[a-z0-9]+", ascii_only.casefold()) if w not in _LEGAL_FORMS]
    return " ".join(words)


def words(text: str) -> set[str]:
    return {w.casefold() for w in _TOKEN.findall(text[:MAX_TEXT])}
