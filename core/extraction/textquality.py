"""Is a PDF's text layer worth reading, or is it another engine's failed OCR of a scan?

A scan may carry a text layer written by the scanner's OCR (ScanSoft, old Acrobat): on a poor page it is
nonsense ("IS 1NCOaron", "nTSo", letters of a vertical stamp one per line). Reading fields from it gives
nothing or worse; our Tesseract reading of the page is better. The rule is measurable and cheap (a pass
over the words, ~1 ms a page):

- a *word-like* token is letters only (after stripping punctuation around it) with regular casing
  (``lower``, ``Title`` or ``UPPER``) and, from 4 letters on, a vowel (accents folded);
- everything else that holds a letter is *odd*: mixed case inside a word ("nTSo"), letters and digits
  mixed ("1NCOaron", which also catches invoice numbers such as "FA2026-01", hence the margin), symbols
  a text layer does not produce (``~ < [ ] { } | \\``), a lone letter on its own line (a stamp read
  character by character).

A text layer is suspect when fewer than ``MIN_WORD_LIKE`` of its tokens with letters are word-like, and
only a text layer over a scan (a page that is mostly one picture) is judged: invoices are full of codes
and names, and the share alone does not tell them apart (measured with ``bench/ocr.py``: text PDFs of the
shared corpora 0.75-1.00, German ZUGFeRD samples at the bottom; the ScanSoft layer of rwd16 0.79; a
dictionary of six languages from pyspellchecker did no better: 0.49-0.63 vs 0.62). Extraction asks only
when the text layer gave neither an invoice number nor a total (a garbage layer gives little), then reads
the page with Tesseract and keeps whichever text has the larger share of word-like tokens.
"""

from __future__ import annotations

import re
import unicodedata

MIN_WORD_LIKE = 0.85
MIN_TOKENS = 30  # fewer tokens with letters: too little to judge, keep the text layer
_STRIP = ".,:;!?()\"'«»“”‘’*"
_ODD_CHARS = re.compile(r"[~<>\[\]{}|\\^_`]")
_VOWELS = set("aeiouy")


def _word_like(token: str) -> bool:
    core = token.strip(_STRIP)
    if not core.isalpha():
        return False
    if not (core.islower() or core.isupper() or core.istitle()):
        return False
    if len(core) < 4:
        return True
    folded = unicodedata.normalize("NFKD", core.casefold())
    return any(c in _VOWELS for c in folded) or not folded.isascii()  # scripts without these vowels pass


def word_like_share(text: str) -> float | None:
    """The share of word-like tokens among the tokens that hold a letter; None when too few to judge."""
    tokens = 0
    good = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 1 and len(parts[0]) == 1 and parts[0].isalpha():
            tokens += 1  # a letter alone on its line: a stamp or vertical text read character by character
            continue
        for token in parts:
            if not any(c.isalpha() for c in token):
                continue
            tokens += 1
            if not _ODD_CHARS.search(token) and _word_like(token):
                good += 1
    if tokens < MIN_TOKENS:
        return None
    return good / tokens


def is_suspect(text: str) -> bool:
    """True when ``text`` (the text layer of a scan) may be a failed OCR rather than words."""
    share = word_like_share(text)
    return share is not None and share < MIN_WORD_LIKE


def reads_better(ours: str, theirs: str) -> bool:
    """True when ``ours`` (Tesseract's reading) has a larger share of word-like tokens than ``theirs``."""
    return (word_like_share(ours) or 0.0) > (word_like_share(theirs) or 0.0)
