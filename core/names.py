"""Names compared as people read them: ``normalize_name`` says "ACME S.A.S." and "Acme SAS" are the same
company (matching); ``folded`` is the stored key of a client or supplier row (accents and case folded)."""

from __future__ import annotations

import re
import unicodedata

_LEGAL_FORMS = re.compile(
    r"\b(?:sarl|sas|sasu|sa|eurl|sci|snc|scop|gie|ltd|limited|llc|llp|inc|plc|gmbh|mbh|ag|kg|ohg|ug|e\.?k|bv|nv"
    r"|srl|spa|sl|oy|ab|as|corp|corporation|co|company|cie|et cie|& co)\b\.?"
)


def normalize_name(name: str) -> str:
    """Lower case, no accents, no legal form, no punctuation: "ACME S.A.S." and "Acme SAS" compare equal."""
    decomposed = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    text = re.sub(r"(?<=\b\w)\.(?=\w\b)", "", text)  # "s.a.s" -> "sas"
    text = re.sub(r"(?<=\b\w)\.(?=\w\.)", "", text)
    text = _LEGAL_FORMS.sub(" ", text.replace(".", " "))
    return " ".join(re.sub(r"[^\w&]+", " ", text).split())


def folded(text: str) -> str:
    """Accents and case folded, spaces collapsed: the unique key of a client or supplier of a company."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(ascii_only.casefold().split())
