"""Per-tenant invoice2data templates (issue #4): validate, save, test, draft from a document, and the
compiled list the worker uses.

A template is YAML in the invoice2data 1.0.1 format, validated on every save: ``safe_load`` only, no
anchors or aliases, at most ``MAX_SOURCE_BYTES``, ``issuer``, a non-empty list of plain-substring
``keywords`` and ``fields`` with at least ``amount``, ``date`` and ``invoice_number`` regexes that compile
and cannot backtrack exponentially. Every problem is reported, each with its own message.

Extraction tries the tenant's enabled templates before the shared ones (``templates_for_extraction``);
a worker compiles them once and again only when the tenant's templates change (count, last update,
versions).
"""

from __future__ import annotations

import logging
import re
import re._constants as sre_constants  # the stdlib parser (sre_parse is deprecated since 3.11)
import re._parser as sre_parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import yaml
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.documents.review import get_document
from core.errors import NotFound, ValidationFailed
from core.extraction import regexguard, templated
from core.extraction.identifiers import find_identifiers
from core.extraction.text import PDFIUM_LOCK, PdfUnreadable, read_pdf
from core.extraction.values import find_dates, find_money, fold
from core.files.storage import FileStorage
from core.models import Document, StoredFile, User, utcnow
from core.models_templates import ExtractionTemplate

logger = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 64 * 1024
MAX_NAME_CHARS = 100
MAX_ISSUER_CHARS = 300
MAX_KEYWORDS = 20
MAX_KEYWORD_CHARS = 200
MIN_KEYWORD_CHARS = 3  # shorter ones match almost every text, and the keyword index cannot file them
MAX_REGEX_CHARS = 1000
MAX_FIELDS = 40
MAX_TEMPLATES_PER_TENANT = 2000
TRIAL_SECONDS = 8.0  # the editor's Test, every document together (a web request: answered well within 15 s)
REQUIRED_FIELDS = ("amount", "date", "invoice_number")
TOP_LEVEL_KEYS = ("issuer", "keywords", "exclude_keywords", "fields", "options", "priority", "required_fields")
OPTION_KEYS = ("currency", "date_formats", "languages", "decimal_separator", "remove_whitespace",
               "remove_accents", "lowercase", "replace")
FIELD_KEYS = ("parser", "regex", "type", "group", "value")
PARSERS = ("regex", "static")
TYPES = ("int", "float", "date")
GROUPS = ("sum", "min", "max", "first", "last")
DEFAULT_OTHERS = 10  # documents a test runs on besides the one the template is written for
NAME_TAKEN = "Another template already has this name."


class TemplateInvalid(ValidationFailed):
    """The YAML source was refused; ``problems`` lists every reason, one sentence each."""

    def __init__(self, problems: list[str], name_error: str | None = None) -> None:
        errors = {"source": " ".join(problems)} if problems else {}
        if name_error:
            errors["name"] = name_error
        super().__init__(errors)
        self.problems = problems


# Validation ----------------------------------------------------------------------------------


class _NoAliasLoader(yaml.SafeLoader):
    """``safe_load`` without anchors and aliases: a few lines of them can stand for billions of nodes."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (*name) are not allowed",
                                              event.start_mark)
        return super().compose_node(parent, index)


def parse_source(source: str) -> dict[str, Any]:
    """The validated template mapping of ``source``; ``TemplateInvalid`` with every problem otherwise."""
    if not isinstance(source, str) or not source.strip():
        raise TemplateInvalid(["The template is empty."])
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise TemplateInvalid([f"The template is {size // 1024} KB; at most {MAX_SOURCE_BYTES // 1024} KB."])
    if "\x00" in source:
        raise TemplateInvalid(["The template contains a NUL character."])
    try:
        data = yaml.load(source, Loader=_NoAliasLoader)  # noqa: S506  (a SafeLoader that also refuses aliases)
    except yaml.MarkedYAMLError as exc:
        where = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        raise TemplateInvalid([f"This is not valid YAML{where}: {exc.problem or exc.context}."]) from None
    except yaml.YAMLError as exc:
        raise TemplateInvalid([f"This is not valid YAML: {' '.join(str(exc).split())[:200]}."]) from None
    except RecursionError:
        raise TemplateInvalid(["The YAML is nested too deeply."]) from None
    if not isinstance(data, dict):
        raise TemplateInvalid(["The template must be a mapping (issuer:, keywords:, fields:...)."])
    problems = _problems(data)
    if problems:
        raise TemplateInvalid(problems)
    return data


def _problems(data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    unknown = [str(k) for k in data if k not in TOP_LEVEL_KEYS]
    if unknown:
        problems.append(f"Unknown key(s) {', '.join(unknown)[:200]}: use {', '.join(TOP_LEVEL_KEYS)}.")
    issuer = data.get("issuer")
    if not isinstance(issuer, str) or not issuer.strip():
        problems.append("issuer: the issuer's name is required (text).")
    elif len(issuer) > MAX_ISSUER_CHARS:
        problems.append(f"issuer: at most {MAX_ISSUER_CHARS} characters.")
    problems += _keyword_problems("keywords", data.get("keywords"), required=True)
    if "exclude_keywords" in data:
        problems += _keyword_problems("exclude_keywords", data.get("exclude_keywords"), required=False)
    problems += _field_problems(data.get("fields"))
    problems += _option_problems(data.get("options"))
    priority = data.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int) or
                                 not 0 <= priority <= 100):
        problems.append("priority: a whole number from 0 to 100.")
    required = data.get("required_fields")
    if required is not None:
        fields = data.get("fields") if isinstance(data.get("fields"), dict) else {}
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            problems.append("required_fields: a list of field names.")
        else:
            missing = [r for r in required if r != "issuer" and r not in fields and f"static_{r}" not in fields]
            if missing:
                problems.append(f"required_fields: {', '.join(missing)[:200]} not defined under fields.")
    return problems


def _keyword_problems(key: str, value: Any, required: bool) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or (required and not value):
        return [f"{key}: a list of texts printed on this issuer's invoices (a VAT id, a SIREN, a name)."]
    problems: list[str] = []
    if len(value) > MAX_KEYWORDS:
        problems.append(f"{key}: at most {MAX_KEYWORDS}.")
    for keyword in value:
        if not isinstance(keyword, str) or not keyword.strip():
            problems.append(f"{key}: every keyword must be a non-empty text (quote numbers: \"123 456 789\").")
        elif len(keyword) > MAX_KEYWORD_CHARS:
            problems.append(f"{key}: a keyword has more than {MAX_KEYWORD_CHARS} characters.")
    if required and not problems and not any(len(k.strip()) >= MIN_KEYWORD_CHARS for k in value):
        problems.append(f"{key}: at least one keyword of {MIN_KEYWORD_CHARS} characters or more.")
    return problems


def _field_problems(fields: Any) -> list[str]:
    if not isinstance(fields, dict) or not fields:
        return ["fields: a mapping of field names to regexes (amount, date, invoice_number at least)."]
    problems: list[str] = []
    if len(fields) > MAX_FIELDS:
        problems.append(f"fields: at most {MAX_FIELDS}.")
    missing = [name for name in REQUIRED_FIELDS if name not in fields and f"static_{name}" not in fields]
    if missing:
        problems.append(f"fields: {', '.join(missing)} missing (amount, date and invoice_number are required).")
    for name, spec in fields.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name):
            problems.append(f"fields: {str(name)[:40]!r} is not a field name (lower-case letters, digits, _).")
            continue
        if name.startswith("static_"):
            if not isinstance(spec, str | int | float) or isinstance(spec, bool):
                problems.append(f"fields.{name}: a static value must be a text or a number.")
            continue
        if isinstance(spec, str | list):
            problems += _regex_problems(f"fields.{name}", spec)
        elif isinstance(spec, dict):
            problems += _spec_problems(name, spec)
        else:
            problems.append(f"fields.{name}: a regex, or a mapping with parser: regex and regex:.")
    return problems


def _spec_problems(name: str, spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    unknown = [str(k) for k in spec if k not in FIELD_KEYS]
    if unknown:
        problems.append(f"fields.{name}: unknown key(s) {', '.join(unknown)[:100]} (use {', '.join(FIELD_KEYS)}).")
    parser = spec.get("parser")
    if parser not in PARSERS:
        problems.append(f"fields.{name}: parser must be one of {', '.join(PARSERS)}.")
    elif parser == "regex":
        if "regex" not in spec:
            problems.append(f"fields.{name}: regex is missing.")
        else:
            problems += _regex_problems(f"fields.{name}", spec["regex"])
    elif not isinstance(spec.get("value"), str | int | float) or isinstance(spec.get("value"), bool):
        problems.append(f"fields.{name}: a static parser needs a value (text or number).")
    if "type" in spec and spec["type"] not in TYPES:
        problems.append(f"fields.{name}: type must be one of {', '.join(TYPES)}.")
    if "group" in spec and spec["group"] not in GROUPS:
        problems.append(f"fields.{name}: group must be one of {', '.join(GROUPS)}.")
    return problems


def _regex_problems(where: str, value: Any) -> list[str]:
    patterns = value if isinstance(value, list) else [value]
    if not patterns or len(patterns) > 10:
        return [f"{where}: from 1 to 10 regexes."]
    problems: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            problems.append(f"{where}: a regex must be a non-empty text.")
            continue
        problem = regex_problem(pattern)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used (does not compile, too long, exponential backtracking), or None."""
    if len(pattern) > MAX_REGEX_CHARS:
        return f"the regex has more than {MAX_REGEX_CHARS} characters."
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"the regex does not compile ({exc.msg} at position {exc.pos})."
    except (RecursionError, OverflowError):
        return "the regex is too complex."
    if compiled.groups > 1:
        return "the regex has several capturing groups; keep one, write the others as (?:...)."
    try:
        parsed = sre_parse.parse(pattern)
        nested = _nested_repeat(parsed)
    except (RecursionError, re.error, TypeError, ValueError):
        return "the regex is too complex."
    if _unbounded_count(parsed) > MAX_UNBOUNDED_REPEATS:
        return (f"more than {MAX_UNBOUNDED_REPEATS} unbounded repeats (+, *, {{n,}}): such a regex can take very "
                "long on a text it almost matches; anchor it on the label and the value only.")
    if nested:
        return ("a repeated group contains a repeat or an alternation, as in (a+)+, (a{1,3})+ or (a|ab)+: "
                "this can take exponential time on some texts; repeat only once (a+ or [ab]+), or repeat "
                "a fixed-length group ((?:\\d{3})+).")
    if _repeat_product(parsed) > MAX_REPEAT_PRODUCT:
        return (f"repeats inside repeats allow more than {MAX_REPEAT_PRODUCT} ways to split a text, as in "
                "(?:[\\s\\S]{0,100}){0,100}: such a regex can take very long on a text it almost matches; "
                "use one repeat ([\\s\\S]{0,100}) or smaller bounds.")
    return None


_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}


MAX_UNBOUNDED_REPEATS = 6  # each one can multiply the work on a near-miss by the length of the text


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns of one node of a parsed regex."""
    if op in _REPEATS:
        return [av[2]]
    if op is sre_constants.SUBPATTERN:
        return [av[-1]]
    if op is sre_constants.BRANCH:
        return list(av[1])
    if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        return [av[1]]
    if op is sre_constants.ATOMIC_GROUP:
        return [av]
    return []


def _unbounded(op: Any, av: Any) -> bool:
    """A repeat with no upper bound (or one above 100)."""
    return op in _REPEATS and (av[1] == sre_constants.MAXREPEAT or av[1] > 100)


def _unbounded_count(parsed: Any) -> int:
    return sum(_unbounded(op, av) + sum(_unbounded_count(child) for child in _children(op, av))
               for op, av in parsed)


MAX_REPEAT_PRODUCT = 100  # the bounds of nested variable repeats multiplied: (?:x{0,100}){0,100} is 10,000
_UNBOUNDED_AS = 100  # an unbounded repeat (*, +) counts as this many in the product


def _repeat_product(parsed: Any, outer: int | None = None) -> int:
    """The largest product of the upper bounds along a chain of nested repeats (0 when none is nested)."""
    largest = 0
    for op, av in parsed:
        inner = outer
        if op in _REPEATS and av[0] != av[1]:  # a fixed count ((?:\d{3})+) splits a text only one way
            bound = _UNBOUNDED_AS if _unbounded(op, av) else max(int(av[1]), 1)
            if outer is not None:
                largest = max(largest, outer * bound)
            inner = (outer or 1) * bound
        for child in _children(op, av):
            largest = max(largest, _repeat_product(child, inner))
    return largest


def _nested_repeat(parsed: Any, inside_unbounded: bool = False) -> bool:
    """True when a repeat of variable length or an alternation sits inside an unbounded repeat."""
    for op, av in parsed:
        if inside_unbounded and op in _REPEATS and av[0] != av[1]:
            return True  # (a{1,3})+ splits a run of a's as many ways as (a+)+
        if inside_unbounded and op is sre_constants.BRANCH:
            return True  # (a|ab)+ backtracks exponentially as (a+)+ does
        inside = inside_unbounded or _unbounded(op, av)
        if any(_nested_repeat(child, inside) for child in _children(op, av)):
            return True
    return False


def _option_problems(options: Any) -> list[str]:
    if options is None:
        return []
    if not isinstance(options, dict):
        return ["options: a mapping (currency, date_formats, decimal_separator...)."]
    problems: list[str] = []
    unknown = [str(k) for k in options if k not in OPTION_KEYS]
    if unknown:
        problems.append(f"options: unknown key(s) {', '.join(unknown)[:100]} (use {', '.join(OPTION_KEYS)}).")
    if "currency" in options and not (isinstance(options["currency"], str) and
                                      re.fullmatch(r"[A-Z]{3}", options["currency"])):
        problems.append("options.currency: a three-letter code such as EUR.")
    for key in ("date_formats", "languages"):
        value = options.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"options.{key}: a list of texts.")
    languages = options.get("languages")
    if isinstance(languages, list) and any(isinstance(v, str) and len(v) != 2 for v in languages):
        problems.append("options.languages: two-letter codes (fr, en, de).")
    if "decimal_separator" in options and options["decimal_separator"] not in (",", "."):
        problems.append("options.decimal_separator: \",\" or \".\".")
    for key in ("remove_whitespace", "remove_accents", "lowercase"):
        if key in options and not isinstance(options[key], bool):
            problems.append(f"options.{key}: true or false.")
    replace = options.get("replace")
    if replace is not None:
        if not isinstance(replace, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(p, str) for p in pair) for pair in replace
        ):
            problems.append("options.replace: a list of [regex, replacement] pairs.")
        else:
            for pattern, _replacement in replace:
                problem = regex_problem(pattern)
                if problem:
                    problems.append(f"options.replace: {problem}")
    return problems


def compile_source(source: str, name: str) -> Any:
    """The validated, compiled template of ``source`` (``TemplateInvalid`` when it cannot be)."""
    return _compiled(parse_source(source), name)


def _compiled(data: dict[str, Any], name: str) -> Any:
    try:
        return templated.compile_template(data, name)
    except Exception as exc:  # invoice2data's own checks (e.g. a language code)
        raise TemplateInvalid([f"invoice2data refused the template: {' '.join(str(exc).split())[:200]}"]) from None


# Create, read, update, delete ----------------------------------------------------------------


def templates_query(tenant_id: int) -> Select[Any]:
    return (select(ExtractionTemplate).where(ExtractionTemplate.tenant_id == tenant_id)
            .order_by(ExtractionTemplate.name, ExtractionTemplate.id))


def list_templates(session: Session, tenant_id: int) -> list[ExtractionTemplate]:
    return list(session.scalars(templates_query(tenant_id)))


def get_template(session: Session, tenant_id: int, template_id: int) -> ExtractionTemplate:
    template = session.get(ExtractionTemplate, template_id)
    if template is None or template.tenant_id != tenant_id:
        raise NotFound("no such template")
    return template


def _clean_name(name: Any) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise TemplateInvalid([], name_error="A name is required.")
    if len(text) > MAX_NAME_CHARS:
        raise TemplateInvalid([], name_error=f"At most {MAX_NAME_CHARS} characters.")
    return text


def _name_taken(session: Session, tenant_id: int, name: str, template_id: int | None = None) -> bool:
    stmt = select(ExtractionTemplate.id).where(ExtractionTemplate.tenant_id == tenant_id,
                                               ExtractionTemplate.name == name)
    found = session.scalars(stmt).first()
    return found is not None and found != template_id


def create_template(session: Session, tenant_id: int, name: Any, source: str, user: User | None,
                    enabled: bool = True) -> ExtractionTemplate:
    clean = _clean_name(name)
    data = parse_source(source)
    _compiled(data, clean)  # invoice2data's own checks
    if _name_taken(session, tenant_id, clean):
        raise TemplateInvalid([], name_error=NAME_TAKEN)
    count = session.scalar(select(func.count()).where(ExtractionTemplate.tenant_id == tenant_id)) or 0
    if count >= MAX_TEMPLATES_PER_TENANT:
        raise TemplateInvalid([f"At most {MAX_TEMPLATES_PER_TENANT} templates per company."])
    template = ExtractionTemplate(tenant_id=tenant_id, name=clean, issuer=str(data["issuer"]).strip()[:300],
                                  source=source, enabled=bool(enabled), created_by=user.email if user else "",
                                  version=1)
    session.add(template)
    _flush(session)
    return template


def update_template(session: Session, tenant_id: int, template_id: int, *, name: Any = None,
                    source: str | None = None, enabled: bool | None = None) -> ExtractionTemplate:
    template = get_template(session, tenant_id, template_id)
    if name is not None:
        clean = _clean_name(name)
        if _name_taken(session, tenant_id, clean, template.id):
            raise TemplateInvalid([], name_error=NAME_TAKEN)
        template.name = clean
    if source is not None:
        data = parse_source(source)
        _compiled(data, template.name)
        template.source, template.issuer = source, str(data["issuer"]).strip()[:300]
    if enabled is not None:
        template.enabled = bool(enabled)
    template.version = (template.version or 0) + 1  # what worker caches compare, with updated_at
    template.updated_at = utcnow()
    _flush(session)
    return template


def delete_template(session: Session, tenant_id: int, template_id: int) -> None:
    session.delete(get_template(session, tenant_id, template_id))
    session.flush()


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError:  # the same name saved at the same moment by someone else
        session.rollback()
        raise TemplateInvalid([], name_error=NAME_TAKEN) from None


# What extraction uses ------------------------------------------------------------------------


def cache_key(session: Session, tenant_id: int) -> tuple[int, str, int]:
    """What the tenant's templates look like now: any save, delete or toggle changes it."""
    count, last, versions = session.execute(
        select(func.count(), func.max(ExtractionTemplate.updated_at), func.sum(ExtractionTemplate.version))
        .where(ExtractionTemplate.tenant_id == tenant_id)
    ).one()
    return int(count or 0), str(last), int(versions or 0)


def templates_for_extraction(session: Session, tenant_id: int) -> list[Any] | None:
    """The tenant's enabled templates, then the shared ones (compiled once per process and version of the
    tenant's templates); None when the tenant has none, so that the shared list (and its index) is used."""
    key = cache_key(session, tenant_id)
    if key[0] == 0:
        templated.forget_tenant(tenant_id)
        return None

    def compile_own() -> list[Any]:
        rows = session.execute(
            select(ExtractionTemplate.id, ExtractionTemplate.name, ExtractionTemplate.source)
            .where(ExtractionTemplate.tenant_id == tenant_id, ExtractionTemplate.enabled.is_(True))
            .order_by(ExtractionTemplate.id)
        ).all()
        compiled = []
        for template_id, name, source in rows:
            try:
                compiled.append(_compile_saved(source, name))
            except Exception as exc:  # saved before a stricter check: skip it, never fail the document
                logger.warning("tenant %s template %s cannot be compiled (%s): skipped", tenant_id, template_id,
                               type(exc).__name__)
        # Higher priority first; at equal priority the order of creation (sorted is stable).
        return sorted(compiled, key=lambda t: t.get("priority", 5), reverse=True)

    return templated.tenant_templates(tenant_id, key, compile_own)


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compile_saved(source: str, name: str) -> Any:
    # Validated on save (aliases refused there): libyaml's safe loader is ~10x faster for the worker.
    data = yaml.load(source, Loader=_FAST_LOADER)  # noqa: S506
    return templated.compile_template(data, f"tenant:{name}")


def preload_all(session: Session) -> int:
    """Compile every tenant's templates now (the worker's parent, before forking): jobs start warm."""
    tenant_ids = list(session.scalars(select(ExtractionTemplate.tenant_id).distinct()))
    for tenant_id in tenant_ids:
        templates_for_extraction(session, tenant_id)
    return len(tenant_ids)


# Testing a template on documents ---------------------------------------------------------------


@dataclass
class DocumentTrial:
    document_id: int
    filename: str
    matched: bool
    fields: dict[str, str] = field(default_factory=dict)  # field name -> value as text
    error: str | None = None  # why the template gave nothing, or why the document could not be tried

    def as_dict(self) -> dict[str, Any]:
        return {"document_id": self.document_id, "filename": self.filename, "matched": self.matched,
                "fields": self.fields, "error": self.error}


@dataclass
class TrialReport:
    document: DocumentTrial | None
    others: list[DocumentTrial]

    @property
    def matching_others(self) -> int:
        return sum(1 for trial in self.others if trial.fields)

    def as_dict(self) -> dict[str, Any]:
        return {"document": self.document.as_dict() if self.document else None,
                "others": [trial.as_dict() for trial in self.others], "matching_others": self.matching_others}


NO_TEXT = "no text layer to test on (a scan or an image)"


_texts: dict[str, str | None] = {}  # file sha256 -> text: the editor's Test re-reads no file twice
_TEXTS_KEPT = 64


def _text_of(sha256: str, data: bytes) -> str | None:
    if sha256 in _texts:
        return _texts[sha256]
    try:
        pdf = read_pdf(data)
        text = pdf.best if pdf.has_text else None  # the text extraction matches templates against
    except PdfUnreadable:
        text = None
    if len(_texts) >= _TEXTS_KEPT:
        _texts.pop(next(iter(_texts)))
    _texts[sha256] = text
    return text


def document_text(session: Session, storage: FileStorage, tenant_id: int, doc: Document) -> tuple[str | None, bytes]:
    """The text extraction matches templates against (the layout text), and the file's bytes."""
    stored = session.get(StoredFile, doc.file_id)
    if stored is None or stored.tenant_id != tenant_id or stored.content_type != "application/pdf":
        return None, b""
    try:
        data = storage.read(stored.storage_key)
    except FileNotFoundError:
        return None, b""
    return _text_of(stored.sha256, data), data


def _trial(session: Session, storage: FileStorage, tenant_id: int, template: Any, doc: Document) -> DocumentTrial:
    text, data = document_text(session, storage, tenant_id, doc)
    if text is None:
        return DocumentTrial(doc.id, doc.filename, matched=False, error=NO_TEXT)
    with PDFIUM_LOCK:  # area fields re-open the PDF; the dashboard runs this in a request thread
        result = templated.try_template(template, text, data or None)
    fields = {name: _as_text(value) for name, value in (result.extraction.fields if result.extraction else {}).items()}
    return DocumentTrial(doc.id, doc.filename, result.matched, fields, result.error)


def _as_text(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def try_on_documents(session: Session, storage: FileStorage, tenant_id: int, source: str,
                  document_id: int | None = None, others: int = DEFAULT_OTHERS,
                  exclude_validated: bool = False) -> TrialReport:
    """``source`` (validated first: ``TemplateInvalid``) tried on a document of the tenant and on up to
    ``others`` of its most recent other documents: which ones it matches and the fields each yields.

    ``exclude_validated``: leave out documents already validated into invoices (a member restricted to some
    clients must not read other clients' invoices through a test).
    """
    template = compile_source(source, "draft")
    doc = get_document(session, tenant_id, document_id) if document_id is not None else None
    stmt = (select(Document).where(Document.tenant_id == tenant_id).order_by(Document.id.desc())
            .limit(max(0, min(others, 50))))
    if doc is not None:
        stmt = stmt.where(Document.id != doc.id)
    if exclude_validated:
        stmt = stmt.where(Document.invoice_id.is_(None))
    # One budget for the whole trial: its regexes stop there (the documents left say they timed out).
    with regexguard.deadline(TRIAL_SECONDS):
        report = TrialReport(_trial(session, storage, tenant_id, template, doc) if doc else None, [])
        for other in session.scalars(stmt):
            report.others.append(_trial(session, storage, tenant_id, template, other))
    return report


# A draft from a document ---------------------------------------------------------------------


def draft_from_document(session: Session, storage: FileStorage, tenant_id: int, document_id: int) -> str:
    """A YAML template drafted from a document and the values its reviewer confirmed or corrected:

    - ``issuer`` from the document's issuer (else the first line of the text);
    - ``keywords`` from what only this issuer prints: its VAT ids, SIRENs, SIRETs, its name, as printed;
    - field regexes built around each value where it is printed, after its label ("Facture N° :").
    """
    doc = get_document(session, tenant_id, document_id)
    text, _data = document_text(session, storage, tenant_id, doc)
    lines = [line for line in (text or "").splitlines() if line.strip()]
    issuer = (doc.issuer or "").strip() or (_columns(lines[0])[0] if lines else "") or "Issuer"
    keywords = _keywords(text or "", doc, issuer)
    fields: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if doc.number:
        fields["invoice_number"] = _text_regex(lines, doc.number) or _fallback("invoice_number")
    date_formats: list[str] = []
    for name, value in (("date", doc.issue_date), ("date_due", doc.due_date)):
        if value:
            found = _date_regex(lines, value)
            if found:
                fields[name], date_format = found
                if date_format and date_format not in date_formats:
                    date_formats.append(date_format)
    if date_formats:
        options["date_formats"] = date_formats
    for name, value in (("amount", doc.amount), ("amount_untaxed", doc.net_amount),
                        ("amount_tax", doc.tax_amount)):
        if value is not None:
            found = _amount_regex(lines, value)
            if found:
                fields[name], separator = found
                options.setdefault("decimal_separator", separator)
    for name in REQUIRED_FIELDS:
        fields.setdefault(name, _fallback(name))
    if doc.currency:
        options["currency"] = doc.currency
    template: dict[str, Any] = {"issuer": issuer, "keywords": keywords or [issuer], "fields": fields,
                                "options": options}
    return yaml.safe_dump(template, allow_unicode=True, sort_keys=False, width=1000)


_FALLBACKS = {"invoice_number": r"N°\s*:?\s*(\S+)", "date": r"Date\s*:?\s*(\d{2}/\d{2}/\d{4})",
              "amount": r"Total TTC\s*:?\s*([\d .,]+\d)"}


def _fallback(name: str) -> str:
    return _FALLBACKS.get(name, r"(\S+)")


def _columns(line: str) -> list[str]:
    """A ``pdftotext -layout`` line cut where two or more spaces separate columns."""
    return [part for part in re.split(r"\s{2,}", line.strip()) if part]


def _keywords(text: str, doc: Document, issuer: str) -> list[str]:
    """Texts only this issuer prints, as printed: its first VAT id / SIREN / SIRET (the letterhead comes first;
    the client's come later), then its name as the text writes it."""
    found: list[str] = []
    ids = find_identifiers(text)
    stored = (doc.extraction_details or {}).get("identifiers") or {}
    for values in (ids.vat_ids or stored.get("vat_ids") or [], ids.sirens or stored.get("sirens") or [],
                   ids.sirets or stored.get("sirets") or []):
        printed = _as_printed(text, str(values[0])) if values else None
        if printed and not any(printed in other or other in printed for other in found):
            found.append(printed)
    found = found[:2]
    name = re.search(re.escape(issuer), text, re.IGNORECASE) if issuer else None
    if name and len(name.group(0)) >= MIN_KEYWORD_CHARS:
        found.append(name.group(0))
    return found


def _as_printed(text: str, compact: str) -> str | None:
    """``compact`` ("FR12345678901") as the text prints it ("FR 12 345 678 901"), or None."""
    if not compact or len(compact) > 40:
        return None
    pattern = r"[ .\u00a0]?".join(re.escape(char) for char in compact)
    match = re.search(pattern, text)
    return match.group(0) if match else None


def _label_regex(lines: list[str], index: int, start: int) -> str | None:
    """The label printed before a value (same line, last column before it; else the line above)."""
    before = lines[index][:start]
    columns = _columns(before)
    label = columns[-1] if columns else ""
    if not label and index > 0:
        above = _columns(lines[index - 1])
        label = above[-1] if above else ""
    label = label.strip()[-40:].strip()
    if not label or not re.search(r"[^\W\d_]", label):  # a label has letters
        return None
    return r"\s+".join(re.escape(word) for word in label.split())


def _text_regex(lines: list[str], value: str) -> str | None:
    for index, line in enumerate(lines):
        position = line.find(value)
        if position >= 0:
            label = _label_regex(lines, index, position)
            if label:
                return label + r"\s*(\S+)"
    return None


_DATE_FORMATS = ("%d/%m/%Y", "%d.%m.%Y", "%Y-%m-%d", "%d-%m-%Y", "%d/%m/%y")


def _labelled(lines: list[str], indexes: Iterable[int], find: Callable[[str], Any],
              value: Any) -> Iterator[tuple[str, str]]:
    """(label regex, value as printed) where ``find`` reads ``value`` after a label, lines in ``indexes`` order.

    Lines that ``fold`` changes in length are skipped: positions found there would not be the line's."""
    for index in indexes:
        line = lines[index]
        if len(fold(line)) != len(line):
            continue
        for found in find(line):
            if found.value == value:
                label = _label_regex(lines, index, found.start)
                if label:
                    yield label, line[found.start:found.end]


_DAY_MONTH_YEAR = r"\d{1,2}\.?\s+\w+\s+\d{4}"


def _date_regex(lines: list[str], value: date) -> tuple[str, str | None] | None:
    for label, printed in _labelled(lines, range(len(lines)), find_dates, value):
        fmt = next((f for f in _DATE_FORMATS if value.strftime(f) == printed), None)
        if fmt:
            shape = _digits_shape(printed)
        elif re.fullmatch(_DAY_MONTH_YEAR, printed):
            shape = _DAY_MONTH_YEAR
        else:
            shape = r"\w+\s+\d{1,2},?\s+\d{4}"
        return label + r"\s*(" + shape + ")", fmt
    return None


def _digits_shape(printed: str) -> str:
    """``07.10.2026`` -> ``\\d{1,2}\\.\\d{1,2}\\.\\d{4}``: the same shape, other dates too."""
    parts = re.split(r"(\d+)", printed)
    return "".join((r"\d{4}" if len(part) == 4 else r"\d{1,2}") if part.isdigit() else re.escape(part)
                   for part in parts if part)


def _amount_regex(lines: list[str], value: Decimal) -> tuple[str, str] | None:
    """The last line printing ``value`` after a label (totals are at the bottom)."""
    for label, printed in _labelled(lines, range(len(lines) - 1, -1, -1), find_money, value):
        separator = "," if re.search(r",\d{1,2}\b", printed) else "."
        return label + r"\s*(?:[A-Z]{3}|€|\$|£)?\s*(\d[\d .,\u202f\u00a0]{0,20}\d)", separator
    return None
