"""invoice2data 1.0.1 templates, matched in-process on text we extracted ourselves.

We call ``InvoiceTemplate.matches_input`` / ``extract`` directly instead of ``extract_data`` because of the
library's traps: ``extract_data`` re-reads templates unless given some (and an *empty* list silently means
"the bundled ones"), caches extracted text process-wide by path and mtime, and turns every backend error
into an empty result, so a damaged PDF would look like "no template". Other traps handled here: keywords
are plain substrings (a template may match an unrelated invoice, so its result only counts when its
required fields were all extracted), ``currency`` defaults to EUR when the template does not say (we keep
a currency only when the template declares or extracts one), and a field matched several times comes back
as a list (first value kept, with a low confidence).
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.extraction.result import Extraction, template_source
from core.extraction.values import parse_date, parse_number
from core.fields import CURRENCIES

logger = logging.getLogger(__name__)

OUR_TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_CONFIDENCE = 0.9  # a template was written for this issuer's layout
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "₹": "INR", "zł": "PLN", "CHF": "CHF"}

_lock = threading.Lock()
_cache: dict[tuple[str, ...], list[Any]] = {}


def quiet_libraries() -> None:
    """pdfminer logs whole documents at DEBUG and invoice2data every missed regex at WARNING: not in our logs.

    invoice2data's ERROR lines name fields only, never their values, so they may stay.
    """
    logging.getLogger("pdfminer").setLevel(logging.WARNING)
    logging.getLogger("invoice2data").setLevel(logging.ERROR)


def load_templates(folders: Sequence[Path | str] | None = None) -> list[Any]:
    """The bundled templates plus ours (``core/extraction/templates``, or ``folders``), highest priority first.

    Loaded once per process and per folder list (the worker loads them before forking, so jobs share them).
    At equal priority our templates come before the bundled ones.
    """
    from invoice2data.extract.loader import read_templates

    key = tuple(str(Path(f).resolve()) for f in (folders if folders is not None else [OUR_TEMPLATES]))
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        quiet_libraries()
        ours: list[Any] = []
        for folder in key:
            if Path(folder).is_dir():  # never read_templates(None): that would mean "bundled" again
                ours += read_templates(folder)
        bundled = read_templates()
        templates = sorted(ours + bundled, key=lambda t: t.get("priority", 5), reverse=True)
        _cache[key] = templates
        logger.info("loaded %d invoice2data templates (%d of ours)", len(templates), len(ours))
        return templates


@dataclass(frozen=True)
class TemplateMatch:
    name: str
    issuer: str
    extraction: Extraction
    output: dict[str, Any] | None = None  # invoice2data's own output, as its command line would print it


class TemplateIndex:
    """Templates pre-filtered by keyword, so that 1,000 templates cost little per document.

    invoice2data tests every template's keywords (plain substrings) against the text. Here each template
    is filed under the rarest trigram of its longest keyword; a document's text is cut once into the set of its
    trigrams, and only templates whose trigram occurs are tested at all (with invoice2data's own
    ``matches_input``, so the result is the same). Templates keep their priority order.
    """

    def __init__(self, templates: list[Any]) -> None:
        self.templates = templates
        self.always: list[int] = []  # templates without a keyword of 3 characters or more
        self.by_trigram: dict[str, list[int]] = {}
        anchors: dict[int, str] = {}
        for position, template in enumerate(templates):
            # A regex-looking keyword (see keyword_matches) may match text it does not contain literally.
            keywords = [str(k) for k in (template.get("keywords") or []) if isinstance(k, str) and not _is_regex(k)]
            anchor = max(keywords, key=len, default="")
            if len(anchor) < 3:
                self.always.append(position)
            else:
                anchors[position] = anchor
        # Each template is filed under the trigram of its anchor that the fewest anchors share, so that a
        # common one ("Inv", "GmbH") does not pull in every template.
        counts: dict[str, int] = {}
        for anchor in anchors.values():
            for trigram in {anchor[i : i + 3] for i in range(len(anchor) - 2)}:
                counts[trigram] = counts.get(trigram, 0) + 1
        for position, anchor in anchors.items():
            rarest = min((anchor[i : i + 3] for i in range(len(anchor) - 2)), key=lambda t: counts[t])
            self.by_trigram.setdefault(rarest, []).append(position)

    def candidates(self, text: str) -> list[Any]:
        present = {text[i : i + 3] for i in range(len(text) - 2)} if len(self.by_trigram) > 8 else None
        positions = list(self.always)
        for trigram, members in self.by_trigram.items():
            if (trigram in present) if present is not None else (trigram in text):
                positions.extend(members)
        return [self.templates[i] for i in sorted(positions)]


_REGEX_CHARS = re.compile(r"[\[\]\\()|*+?{}^$]")
_regexes: dict[str, re.Pattern[str] | None] = {}


def _is_regex(keyword: str) -> bool:
    return bool(_REGEX_CHARS.search(keyword))


def keyword_matches(keyword: str, text: str) -> bool:
    """invoice2data 1.0.1 tests keywords as plain substrings, but templates written for earlier versions use
    regular expressions (the bundled saeco template: ``NL8152[.]54[.]295[.]B01``), which then never match.
    A keyword that is not found as written and looks like a regex is tried as one (compiled once)."""
    if keyword in text:
        return True
    if not _is_regex(keyword):
        return False
    if keyword not in _regexes:
        try:
            _regexes[keyword] = re.compile(keyword)
        except re.error:
            _regexes[keyword] = None
    pattern = _regexes[keyword]
    return pattern is not None and pattern.search(text) is not None


def template_matches(template: Any, text: str) -> bool:
    """``InvoiceTemplate.matches_input`` with regex-looking keywords honoured (see ``keyword_matches``)."""
    if not all(keyword_matches(str(k), text) for k in template.get("keywords") or []):
        return False
    return not any(str(k) in text for k in template.get("exclude_keywords") or [])


_indexes: dict[int, TemplateIndex] = {}


def template_index(templates: list[Any]) -> TemplateIndex:
    """The index of a template list (built once per list object: lists from ``load_templates`` are cached)."""
    index = _indexes.get(id(templates))
    if index is None or index.templates is not templates:
        index = TemplateIndex(templates)
        with _lock:
            if len(_indexes) > 16:
                _indexes.clear()
            _indexes[id(templates)] = index
    return index


def apply_templates(text: str, templates: list[Any] | None = None, pdf: bytes | None = None) -> TemplateMatch | None:
    """The fields of the first template that matches ``text`` and extracts all its required fields.

    ``pdf``: the document's bytes, for templates with ``area`` fields (text from a region of the page,
    which invoice2data reads with ``pdftotext -x -y -W -H`` from a file).
    """
    for template in template_index(templates if templates is not None else load_templates()).candidates(text):
        try:
            if not template_matches(template, text):
                continue
            with warnings.catch_warnings():  # deprecations are for template authors, not for our logs
                warnings.simplefilter("ignore", DeprecationWarning)
                output = _extract(template, template.prepare_input(text), pdf)
        except Exception as exc:  # RequiredFieldsMissingError, template syntax errors, bad regexes...
            logger.debug("template %s matched but did not extract: %s", template.get("template_name"), exc)
            continue
        if not isinstance(output, dict) or not output:
            continue
        extraction = map_output(template, output)
        if extraction.fields:
            return TemplateMatch(str(template.get("template_name", "")), str(template["issuer"]), extraction, output)
    return None


def _uses_area(template: Any) -> bool:
    return any(isinstance(spec, dict) and "area" in spec for spec in (template.get("fields") or {}).values())


def _extract(template: Any, prepared: str, pdf: bytes | None) -> dict[str, Any]:
    if pdf is None or not _uses_area(template):
        return template.extract(prepared, "", None)
    from invoice2data.input import pdftotext

    # A fresh file each time: invoice2data caches area text by path and mtime (the child process of the
    # job ends with the cache).
    with tempfile.TemporaryDirectory(prefix="inbox-area-") as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(pdf)
        return template.extract(prepared, str(path), pdftotext)


def map_output(template: Any, output: dict[str, Any]) -> Extraction:
    """invoice2data's output as our typed fields; anything unreadable is left out."""
    source = template_source(str(template["issuer"]))
    result = Extraction()

    def put(name: str, raw: Any, convert: Any) -> None:
        if raw is None:
            return
        values = list(dict.fromkeys(raw if isinstance(raw, list) else [raw]))
        value = convert(values[0]) if values else None
        if value is None:
            return
        several = len(values) > 1
        result.set(name, value, source, 0.5 if several else TEMPLATE_CONFIDENCE,
                   "the template found several values; the first is shown" if several else None)

    put("number", output.get("invoice_number"), _text)
    put("issue_date", output.get("date"), _date)
    put("due_date", output.get("date_due"), _date)
    put("amount", output.get("amount"), _money)
    put("net_amount", output.get("amount_untaxed"), _money)
    put("tax_amount", output.get("amount_tax"), _money)
    put("issuer", output.get("partner_name") or template.get("issuer"), _text)
    if _declares_currency(template):
        put("currency", output.get("currency"), _currency)
    return result


def _declares_currency(template: Any) -> bool:
    fields = template.get("fields") or {}
    return "currency" in (template.get("options") or {}) or "currency" in fields or "static_currency" in fields


def _text(value: Any) -> str | None:
    text = " ".join(str(value).split())
    return text or None


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    found = parse_date(str(value))
    return found.value if found else None


def _money(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return Decimal(str(value)).quantize(Decimal("0.01"))
        except InvalidOperation:
            return None
    return parse_number(str(value).strip())


def _currency(value: Any) -> str | None:
    text = str(value).strip()
    code = _SYMBOLS.get(text, text.upper())
    return code if code in CURRENCIES else None
