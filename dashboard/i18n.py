"""The dashboard in French and English (Flask-Babel).

- the locale of a request: the person's own choice (``users.locale``), else the one chosen on an anonymous
  page (kept in the session), else the browser's ``Accept-Language`` among ``LOCALES``, else English;
- ``_``, ``gettext`` and ``ngettext`` in every template (Flask-Babel's Jinja wiring, newstyle: variables
  passed as ``_('... %(name)s', name=x)`` are escaped, the translated text is not re-escaped);
- the compiled catalogues: ``*.mo`` files are build output, not in git. ``pybabel compile`` runs at setup
  (scripts/bootstrap.sh) and ``ensure_compiled`` recompiles at start any ``.po`` newer than its ``.mo``, so a
  fresh checkout or an edited translation is never served stale or untranslated;
- amounts and dates per locale (``money`` and ``dmy`` filters, via ``format_money`` / ``format_date``).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from babel.core import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, is_currency
from babel.support import NullTranslations
from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, get_locale, get_translations, refresh
from flask_login import current_user

from core import reasons
from core.i18n import N_

log = logging.getLogger(__name__)

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
LOCALES = ("fr", "en")
FALLBACK_LOCALE = "en"
LOCALE_KEY = "locale"  # the session key of an anonymous visitor's choice
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}  # each in its own language, as switchers show them
# Formatting conventions per UI language. English is read by European finance teams: day-first dates as on
# their invoices (en_GB), amounts the English way (€1,234.56).
FORMAT_LOCALES = {"fr": "fr_FR", "en": "en_GB"}
# Outside a request (CLI, worker, direct calls) amounts and dates use the product's home format.
HOME_LOCALE = "fr"
DATE_FORMAT = "dd/MM/yyyy"
DATETIME_FORMAT = "dd/MM/yyyy HH:mm"


# The error page shows werkzeug's names and default descriptions: their translations live here.
HTTP_ERRORS = (
    N_("Bad Request"), N_("The browser (or proxy) sent a request that this server could not understand."),
    N_("Unauthorized"), N_("Forbidden"),
    N_("You don't have the permission to access the requested resource. It is either read-protected or not "
       "readable by the server."),
    N_("Not Found"), N_("Method Not Allowed"), N_("The method is not allowed for the requested URL."),
    N_("Request Entity Too Large"), N_("The data value transmitted exceeds the capacity limit."),
    N_("Unprocessable Entity"), N_("Too Many Requests"), N_("Conflict"),
    N_("Internal Server Error"),
    N_("The server encountered an internal error and was unable to complete your request. Either the server is "
       "overloaded or there is an error in the application."),
    N_("Service Unavailable"),
)
# Roles and statuses shown as stored values (|tr), and the language names of the switcher's label.
SHOWN_VALUES = (N_("admin"), N_("accountant"), N_("member"), N_("support"), N_("suggested"), N_("applied"),
                N_("rejected"), N_("unmatched"), N_("matched"), N_("partially_matched"), N_("categorised"),
                N_("ignored"), N_("imported"), N_("duplicate"), N_("failed"), N_("skipped"))


def reason_text(row: object) -> str:
    """The ``reason`` filter: a message's or document's stored reason in the request's language.

    A row written since reasons became data (core/reasons.py) carries ``reason_code`` (the catalogue's
    msgid) and ``reason_params``: the code is looked up and its placeholders filled with the stored values
    (plain text, escaped by the template like any value). Only rows without a code (written before) or
    whose code is not in the catalogue (a composed sentence, e.g. a list of skipped files) go through
    ``translate``'s recognition of the English sentence by regex.
    """
    text = getattr(row, "reason", None)
    code = getattr(row, "reason_code", None)
    if code:
        params = getattr(row, "reason_params", None) or {}
        if gettext(code) != code or params:
            try:
                return reasons.render(code, params, gettext)
            except (KeyError, IndexError, ValueError):  # a translation whose placeholders do not match
                log.warning("reason %r: translation does not fit its parameters", code)
    return translate(text)


def shown_reason(row: object) -> str | None:
    """A message's or document's reason as a client reads it: in the request's language, None when none."""
    return reason_text(row) if getattr(row, "reason", None) else None


def translate(value: object) -> str:
    """The ``tr`` filter: a label or stored reason in the request's language, as plain (escaped) text.

    Templates must not call ``_(variable)``: Jinja's newstyle gettext marks its result safe and %-formats
    it, so stored or extracted text would be rendered as HTML. Text stored from a ``N_("... {name} ...")``
    template (``.format``-ed by the domain) is recognised and translated with its values kept: the path of
    older rows and of labels; a message's or document's reason with a stored code goes through
    ``reason_text`` instead. Unknown text comes back unchanged.
    """
    if not value:
        return ""
    text = str(value)
    found = gettext(text)
    if found != text or current_locale() == FALLBACK_LOCALE:
        return found
    collapsed = " ".join(text.split())  # werkzeug's descriptions are wrapped over several lines
    if collapsed != text:
        found = gettext(collapsed)
        if found != collapsed:
            return found
    for pattern, msgid in _templates(_translations()):
        match = pattern.fullmatch(text)
        if match:
            return gettext(msgid).format(**match.groupdict())
    return text


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _templates(translations: object) -> list[tuple[re.Pattern[str], str]]:
    """The catalogue's ``{name}`` templates as patterns, computed once per loaded catalogue."""
    cached = getattr(translations, "_inbox_templates", None)
    if cached is None:
        cached = []
        for msgid in getattr(translations, "_catalog", {}):
            if isinstance(msgid, str) and _PLACEHOLDER.search(msgid):
                parts = _PLACEHOLDER.split(msgid)  # text, name, text, name, ..., text
                regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts))
                try:
                    cached.append((re.compile(regex, re.S), msgid))
                except re.error:  # the same name twice in one template: not recognised, shown as stored
                    continue
        translations._inbox_templates = cached  # type: ignore[attr-defined]
    return cached


def errors_text(errors: Mapping[str, str]) -> str:
    """A service's field errors as one flash message, each translated when a translation exists."""
    return " ".join(translate(message) for message in errors.values())


# Locale --------------------------------------------------------------------------------------


def valid_locale(value: object) -> str | None:
    return value if isinstance(value, str) and value in LOCALES else None


def select_locale() -> str:
    """The user's choice, else the session's, else the browser's best match, else English."""
    if not has_request_context():
        return FALLBACK_LOCALE
    if current_user and current_user.is_authenticated:
        chosen = valid_locale(getattr(current_user.user, "locale", None))
        if chosen:
            return chosen
    chosen = valid_locale(session.get(LOCALE_KEY))
    if chosen:
        return chosen
    return request.accept_languages.best_match(LOCALES, default=FALLBACK_LOCALE) or FALLBACK_LOCALE


def current_locale() -> str:
    """The language of this request ("fr" / "en"); the home locale outside a request."""
    if not has_request_context():
        return HOME_LOCALE
    found = g.get("inbox_locale")
    if found is None:
        locale = get_locale()
        found = g.inbox_locale = valid_locale(str(locale.language) if locale else None) or FALLBACK_LOCALE
    return found


def _translations() -> NullTranslations:
    """This request's catalogue, looked up once: Flask-Babel resolves locale and domain on every call,
    which cost tens of microseconds per string on a page of a hundred."""
    if not has_request_context():
        return get_translations()
    found = g.get("inbox_translations")
    if found is None:
        found = g.inbox_translations = get_translations()
    return found


def gettext(message: str, **variables: object) -> str:
    text = _translations().ugettext(message)
    return text % variables if variables else text


def forget_locale() -> None:
    """After a change of language within a request (the switcher), look both up again."""
    g.pop("inbox_locale", None)
    g.pop("inbox_translations", None)
    refresh()


# Formatting ----------------------------------------------------------------------------------


def _format_locale(locale: str | None) -> Locale:
    return _babel_locale(FORMAT_LOCALES[valid_locale(locale) or current_locale()])


@functools.cache
def _babel_locale(code: str) -> Locale:
    return Locale.parse(code)


@functools.lru_cache(maxsize=256)
def _known_currency(code: str) -> bool:
    return is_currency(code) and not code.startswith("X")  # X..: no symbol, babel would show ¤


def format_money(value: Decimal | None, currency: str | None = None, locale: str | None = None) -> str:
    """``1 234,56 €`` in French, ``€1,234.56`` in English; an unknown currency code is written out."""
    if value is None:
        return ""
    where = _format_locale(locale)
    if currency and _known_currency(currency):
        # currency_digits=False: always the locale's two decimals, never a stored cent hidden by rounding.
        return format_currency(value, currency, locale=where, currency_digits=False)
    text = format_decimal(value, format="#,##0.00", locale=where)
    return f"{text}\u00a0{currency}" if currency else text


def format_number(value: float | Decimal | int | None, decimals: int = 1, locale: str | None = None) -> str:
    """``1,5`` in French, ``1.5`` in English; with ``decimals`` digits after the separator."""
    if value is None:
        return ""
    pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
    return format_decimal(value, format=pattern, locale=_format_locale(locale))


def format_date(value: date | datetime | None, zone: object = None, locale: str | None = None) -> str:
    """dd/mm/yyyy in both languages; a timestamp in the display time zone ``zone``, with hh:mm."""
    if value is None:
        return ""
    where = _format_locale(locale)
    if isinstance(value, datetime):
        if zone is not None:
            value = value.astimezone(zone)  # type: ignore[arg-type]
        return babel_format_datetime(value, DATETIME_FORMAT, tzinfo=None, locale=where)
    return babel_format_date(value, DATE_FORMAT, locale=where)


# Catalogues ----------------------------------------------------------------------------------


def ensure_compiled(directory: Path = TRANSLATIONS_DIR) -> list[Path]:
    """Compile every ``.po`` under ``directory`` whose ``.mo`` is missing or older; the paths compiled.

    Written to a temporary file then renamed, so that another process starting at the same moment reads
    either the old catalogue or the new one, never half of one. Fuzzy entries are left out, as pybabel does.
    """
    compiled = []
    for po_path in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        tmp = None
        try:
            with po_path.open("rb") as po_file:
                catalog = read_po(po_file, locale=po_path.parent.parent.name)
            fd, tmp = tempfile.mkstemp(dir=po_path.parent, suffix=".mo.tmp")
            with os.fdopen(fd, "wb") as mo_file:
                write_mo(mo_file, catalog, use_fuzzy=False)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from a web server running as another user
            os.replace(tmp, mo_path)
        except Exception as exc:  # a read-only install or a broken .po: serve what is there, do not fail to start
            log.warning("could not compile %s: %s", po_path, exc)
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            continue
        compiled.append(mo_path)
    return compiled


def init_i18n(app: Flask) -> None:
    """Flask-Babel with our locale selector, the compiled catalogues and the template globals."""
    ensure_compiled()
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", FALLBACK_LOCALE)
    Babel(app, locale_selector=select_locale)
    # Flask-Babel's own callables, but reading the catalogue once per request (see _translations).
    app.jinja_env.install_gettext_callables(
        gettext=gettext,
        ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        newstyle=True,
    )
    # N_ marks labels in {% set %} blocks of imported templates: Jinja caches those modules, so the label is
    # translated where it is shown, with label|tr, in the language of that request.
    app.add_template_filter(translate, "tr")
    app.add_template_filter(reason_text, "reason")  # a message's or document's reason, from its code
    app.add_template_filter(format_number, "number")
    app.jinja_env.globals.update(current_locale=current_locale, LOCALES=LOCALES, LANGUAGE_NAMES=LANGUAGE_NAMES, N_=N_)
