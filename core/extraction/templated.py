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
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.extraction import regexguard
from core.extraction.result import Extraction, template_source
from core.extraction.values import parse_date, parse_number
from core.fields import CURRENCIES
from core.i18n import N_

logger = logging.getLogger(__name__)

OUR_TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_CONFIDENCE = 0.9  # a template was written for this issuer's layout
TEMPLATE_SECONDS = 5.0  # all the regexes of one template on one text (core.extraction.regexguard)
# All the templates on one document: a tenant may save 2000 templates whose keyword is on its invoices.
TOTAL_SECONDS = 10.0
TEMPLATES_OUT_OF_TIME = N_("the templates took too long on this document, so none was used: the fields were "
                           "read by the generic reader; an admin should simplify or delete the slow templates")
TIMED_OUT = "a regex of the template took too long on this text (over {seconds:g} s): simplify it"
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "₹": "INR", "zł": "PLN", "CHF": "CHF"}

_lock = threading.Lock()
_cache: dict[tuple[str, ...], list[Any]] = {}
# Set on the templates a tenant wrote in the dashboard: their keywords are plain substrings, never regexes.
PLAIN_KEYWORDS = "_plain_keywords"


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
            plain = bool(template.get(PLAIN_KEYWORDS))  # a tenant's template: keywords are literal text
            keywords = [str(k) for k in (template.get("keywords") or [])
                        if isinstance(k, str) and (plain or not _is_regex(k))]
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
        present = None
        if len(self.by_trigram) > 8:
            # Layout text is half runs of spaces: a run of 4 or more has the same trigrams as one of 3.
            short = _SPACE_RUN.sub("   ", text)
            present = {short[i : i + 3] for i in range(len(short) - 2)}
        positions = list(self.always)
        for trigram, members in self.by_trigram.items():
            if (trigram in present) if present is not None else (trigram in text):
                positions.extend(members)
        return [self.templates[i] for i in sorted(positions)]


_SPACE_RUN = re.compile(" {4,}")
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
    if template.get(PLAIN_KEYWORDS):
        if not all(str(k) in text for k in template.get("keywords") or []):
            return False
    elif not all(keyword_matches(str(k), text) for k in template.get("keywords") or []):
        return False
    return not any(str(k) in text for k in template.get("exclude_keywords") or [])


_indexes: dict[int, TemplateIndex] = {}


def template_index(templates: list[Any]) -> TemplateIndex:
    """The index of a template list (built once per list object: lists from ``load_templates`` are cached)."""
    own = getattr(templates, "index", None)
    if isinstance(own, TemplateIndex):  # a tenant's list (see IndexedTemplates) carries its own
        return own
    index = _indexes.get(id(templates))
    if index is None or index.templates is not templates:
        index = TemplateIndex(templates)
        with _lock:
            if len(_indexes) > 16:
                _indexes.clear()
            _indexes[id(templates)] = index
    return index


class TemplatesOutOfTime(TimeoutError):
    """The templates used up ``TOTAL_SECONDS`` (or the caller's deadline) on one document."""


def apply_templates(text: str, templates: list[Any] | None = None, pdf: bytes | None = None) -> TemplateMatch | None:
    """The fields of the first template that matches ``text`` and extracts all its required fields.

    ``pdf``: the document's bytes, for templates with ``area`` fields (text from a region of the page,
    which invoice2data reads with ``pdftotext -x -y -W -H`` from a file).
    Raises ``TemplatesOutOfTime`` after ``TOTAL_SECONDS`` (or sooner: the caller's ``regexguard.deadline``).
    """
    with regexguard.deadline(TOTAL_SECONDS):  # nested deadlines keep the earliest end
        return _first_match(text, templates, pdf)


def _first_match(text: str, templates: list[Any] | None, pdf: bytes | None) -> TemplateMatch | None:
    for template in template_index(templates if templates is not None else load_templates()).candidates(text):
        if regexguard.expired():
            raise TemplatesOutOfTime(TEMPLATES_OUT_OF_TIME)
        try:
            if not template_matches(template, text):
                continue
            output = _extract(template, text, pdf)
        except TimeoutError as exc:
            if regexguard.expired():  # the whole document's time, not only this template's
                raise TemplatesOutOfTime(TEMPLATES_OUT_OF_TIME) from exc
            logger.warning("template %s: its regexes ran out of time, skipped", template.get("template_name"))
            continue
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


def _extract(template: Any, text: str, pdf: bytes | None) -> dict[str, Any]:
    """invoice2data's output of ``template`` on ``text`` (may raise: a required field missing...).

    Its regexes run under ``regexguard``: at most ``TEMPLATE_SECONDS`` (``TimeoutError`` beyond), on at most
    ``MAX_TEXT_CHARS`` of text, whoever wrote the template.
    """
    regexguard.install()
    text = text[: regexguard.MAX_TEXT_CHARS]
    with warnings.catch_warnings(), regexguard.deadline(TEMPLATE_SECONDS):
        # deprecations are for template authors, not for our logs
        warnings.simplefilter("ignore", DeprecationWarning)
        prepared = template.prepare_input(text)
        if pdf is None or not _uses_area(template):
            return template.extract(prepared, "", None)
        return _extract_areas(template, prepared, pdf)


def _extract_areas(template: Any, prepared: str, pdf: bytes) -> dict[str, Any]:
    from core.extraction.text import AreaReader

    # Area text cropped from pypdfium2's words, in-process (invoice2data would write a file and run
    # pdftotext -bbox-layout on it). A new reader each time: invoice2data caches area text per reader.
    reader = AreaReader(pdf)
    try:
        return template.extract(prepared, "", reader)
    finally:
        reader.close()


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


# Per-tenant templates ------------------------------------------------------------------------
# A company's own templates (written in the dashboard, stored in the database) are tried before the shared
# ones, on that company's documents only. The database side lives in ``core.documents.templates``; here are
# the compiled lists, cached per tenant and per version of its templates.


def compile_template(data: dict[str, Any], name: str) -> Any:
    """An ``InvoiceTemplate`` from a validated template mapping (a copy: ``data`` is left as it was).

    Its keywords are plain substrings (``PLAIN_KEYWORDS``): a reviewer's "Dupont (Paris)" is text, not a regex.
    """
    import copy

    from invoice2data.extract.invoice_template import InvoiceTemplate
    from invoice2data.extract.loader import prepare_template

    template = copy.deepcopy(data)
    template["template_name"] = name
    template[PLAIN_KEYWORDS] = True
    prepared = prepare_template(template)
    if prepared is None:
        raise ValueError("the template has no keywords")
    return InvoiceTemplate(prepared)


class IndexedTemplates(list[Any]):
    """A tenant's templates, then the shared ones, in that order, with the index of the whole list
    (``template_index`` returns it instead of building one per list)."""

    def __init__(self, own: list[Any], shared: list[Any]) -> None:
        super().__init__([*own, *shared])
        self.own = len(own)
        self.index = TemplateIndex(self)


_tenants: dict[int, tuple[Any, IndexedTemplates]] = {}


def tenant_templates(tenant_id: int, key: Any, compile_own: Any) -> IndexedTemplates:
    """The tenant's compiled templates followed by the shared ones, compiled again only when ``key`` (what
    the tenant's templates look like now: count, last change...) differs from the cached one.

    ``compile_own()`` returns the tenant's compiled templates, best first.
    """
    with _lock:
        cached = _tenants.get(tenant_id)
    if cached is not None and cached[0] == key:
        return cached[1]
    templates = IndexedTemplates(list(compile_own()), load_templates())
    with _lock:
        _tenants[tenant_id] = (key, templates)
    return templates


def forget_tenant(tenant_id: int) -> None:
    with _lock:
        _tenants.pop(tenant_id, None)


@dataclass(frozen=True)
class Trial:
    """One template tried on one text, for the editor: why it did not match, or what it found."""

    matched: bool  # all its keywords are in the text (and none of its exclude_keywords)
    extraction: Extraction | None = None  # the fields, when it matched and extracted its required fields
    error: str | None = None  # why it matched but gave nothing (missing required fields...)


def try_template(template: Any, text: str, pdf: bytes | None = None) -> Trial:
    """``template`` on ``text`` exactly as ``apply_templates`` would run it, with the reason when it fails."""
    if not template_matches(template, text):
        return Trial(matched=False)
    try:
        output = _extract(template, text, pdf)
    except TimeoutError:
        return Trial(matched=True, error=TIMED_OUT.format(seconds=TEMPLATE_SECONDS))
    except Exception as exc:  # RequiredFieldsMissingError says which fields; other errors by their type
        message = " ".join(str(exc).split())[:300] or type(exc).__name__
        return Trial(matched=True, error=message)
    if not isinstance(output, dict) or not output:
        return Trial(matched=True, error="the template extracted nothing")
    extraction = map_output(template, output)
    if not extraction.fields:
        return Trial(matched=True, error="no value could be read as an invoice field")
    return Trial(matched=True, extraction=extraction)
