"""Shared helpers for the HTML side of the dashboard.

- the current tenant (kept in the session, re-checked against the user's memberships on every request),
- ``tenant_required``: login required + a tenant the user still belongs to,
- pagination arguments, safe local redirects, serving stored files,
- ``init_web(app)``: security headers, display filters, error pages (idempotent; auth.bp calls it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import wraps
from pathlib import PurePosixPath
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import werkzeug.exceptions
from flask import (
    Flask,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from sqlalchemy import Select, func, select
from werkzeug.exceptions import HTTPException

from core.documents.review import review_queue_query
from core.errors import NotFound, ServiceError, ValidationFailed
from core.models import Membership, Role, StoredFile, Tenant
from core.paging import MAX_PER_PAGE, Page, paginate
from core.tenancy import accounts, twofactor
from dashboard import i18n
from dashboard.extensions import db

P = ParamSpec("P")
R = TypeVar("R")

TENANT_KEY = "tenant_id"
PER_PAGE = 50

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'self'",  # the original PDF is embedded from our own file route
        "frame-src 'self'",
        "frame-ancestors 'self'",
        "base-uri 'self'",
        "form-action 'self'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

# Stored files are attacker-supplied: only these types are shown inline (an HTML or SVG "invoice"
# served inline from our origin would run script); anything else is downloaded as opaque bytes.
PDF_TYPE = "application/pdf"
IMAGE_TYPES = frozenset(("image/png", "image/jpeg", "image/gif", "image/webp"))
INLINE_TYPES = IMAGE_TYPES | {PDF_TYPE}
# The file itself may load and run nothing. PDFs go without "sandbox": built-in PDF viewers have not always
# rendered sandboxed documents (Chromium 156 does; other browsers are not checked here).
FILE_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
FILE_POLICY_PDF = "default-src 'none'; object-src 'self'; frame-ancestors 'self'"


# Current tenant ------------------------------------------------------------------------------


def select_tenant(tenant_id: int) -> None:
    session[TENANT_KEY] = tenant_id


def current_membership() -> Membership | None:
    """The membership for the tenant in the session, falling back to the user's first one."""
    user = current_user.user
    wanted = session.get(TENANT_KEY)
    if isinstance(wanted, int):
        member = accounts.membership(db.session, user.id, wanted)
        if member is not None:
            return member
    if user.memberships:  # removed from the chosen tenant meanwhile: fall back, never keep stale access
        first = user.memberships[0]
        select_tenant(first.tenant_id)
        return first
    return None


def tenant_required(view: Callable[P, R]) -> Callable[P, R | Any]:
    """Login required, and ``g.tenant`` / ``g.membership`` set to a tenant the user belongs to."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Any:
        member = current_membership()
        if member is None:
            logout_user()
            session.pop(TENANT_KEY, None)
            abort(403, _("Your account has no access to any company."))
        g.membership, g.tenant = member, member.tenant
        # The company requires a second factor (issue 17): set it up before anything else of this company.
        if member.tenant.require_2fa and not twofactor.enabled(db.session, member.user_id):
            flash(_("%(company)s requires two-factor authentication: turn it on to continue.",
                    company=member.tenant.name), "error")
            return redirect(url_for("account.two_factor"))
        # The operator's support staff look, never change: every state change is refused for them.
        if member.role == Role.SUPPORT.value and request.method not in ("GET", "HEAD", "OPTIONS"):
            abort(403, _("Support access is read-only."))
        return view(*args, **kwargs)

    return login_required(wrapped)


def tenant_id() -> int:
    return int(g.tenant.id)


# Pagination, redirects -----------------------------------------------------------------------


def page_arg() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


def paginated(stmt: Select[Any], per_page: int = PER_PAGE) -> Page[Any]:
    return paginate(db.session, stmt, page_arg(), min(per_page, MAX_PER_PAGE))


def page_url(page: int) -> str:
    """The current page's URL with another ``page`` argument (other arguments kept)."""
    args = request.args.to_dict() | (request.view_args or {}) | {"page": page}
    return url_for(request.endpoint or "review.pending", **args)


_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\\\x7f]")


def is_local_url(target: str | None) -> bool:
    """Only a path on this site (``/pending``), never ``//host``, ``https://...`` or ``/\\host``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if _UNSAFE_URL_CHARS.search(target):  # browsers drop tabs/newlines and read "\" as "/"
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def local_redirect(target: str | None, fallback: str) -> Response:
    return redirect(target if is_local_url(target) else fallback)  # type: ignore[return-value]


# Files ---------------------------------------------------------------------------------------


def _safe_filename(name: str) -> str:
    """The base name without control characters (they would break the header)."""
    return re.sub(r"[\x00-\x1f\x7f/\\]", "_", PurePosixPath(name or "").name).strip()[:200] or "document"


def content_disposition(inline: bool, filename: str) -> str:
    """The header ``send_file`` would write: an ASCII name plus the RFC 5987 UTF-8 one."""
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def send_stored_file(stored: StoredFile, filename: str) -> Response:
    """The stored bytes with their own type, inline when that type is safe to show; 404 when missing."""
    from dashboard.context import storage

    files = storage()
    inline = stored.content_type in INLINE_TYPES
    mimetype = stored.content_type if inline else "application/octet-stream"
    if hasattr(files, "open_stream"):  # an object store: streamed in chunks, never whole in memory
        try:
            chunks = files.open_stream(stored.storage_key)
        except FileNotFoundError:
            abort(404)
        response = Response(chunks, mimetype=mimetype, direct_passthrough=True)
        response.headers["Content-Disposition"] = content_disposition(inline, _safe_filename(filename))
        response.set_etag(stored.sha256)
        if stored.size is not None:
            response.content_length = stored.size
        response = response.make_conditional(request)
    else:
        path = files.path(stored.storage_key)
        if not path.is_file():
            abort(404)
        response = send_file(
            path,
            mimetype=mimetype,
            as_attachment=not inline,
            download_name=_safe_filename(filename),
            conditional=True,
            etag=stored.sha256,
            max_age=0,
        )
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Content-Security-Policy"] = FILE_POLICY_PDF if stored.content_type == PDF_TYPE else FILE_POLICY
    return response


# Display filters -----------------------------------------------------------------------------

def format_date(value: date | datetime | None) -> str:
    """dd/mm/yyyy; a timestamp is shown in the display time zone, with hh:mm (per locale: dashboard.i18n)."""
    return i18n.format_date(value, _display_zone() if isinstance(value, datetime) else None)


def format_money(value: Decimal | None, currency: str | None = None) -> str:
    """``1 234,56 €`` in French, ``€1,234.56`` in English (the request's locale: dashboard.i18n)."""
    return i18n.format_money(value, currency)


def input_value(value: Any) -> str:
    """A stored value as a form input shows it: ISO dates, plain decimals, empty for None."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _display_zone() -> ZoneInfo:
    from flask import current_app

    try:
        return ZoneInfo(current_app.config.get("DISPLAY_TIMEZONE", "Europe/Paris"))
    except ZoneInfoNotFoundError:  # no tzdata on this host: UTC rather than a crash
        return ZoneInfo("UTC")


def _pending_count() -> int:
    stmt = review_queue_query(tenant_id()).order_by(None)
    return db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def _template_context() -> dict[str, Any]:
    tenant: Tenant | None = g.get("tenant")
    if tenant is None or not current_user.is_authenticated:
        return {"current_tenant": None, "memberships": [], "pending_count": 0}
    return {
        "current_tenant": tenant,
        "memberships": current_user.user.memberships,
        "pending_count": _pending_count(),
    }


# Wiring --------------------------------------------------------------------------------------


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)  # a view (or the API) may have set a stricter one
    return response


def _error_page(exc: HTTPException) -> Any:
    if request.path.startswith("/api/"):
        return exc  # the JSON API answers its own errors
    return render_template("error.html", error=exc), exc.code or 500


def _not_found(_exc: NotFound) -> Any:
    return _error_page(werkzeug.exceptions.NotFound())


def flash_refusal(exc: ServiceError) -> None:
    """A refused operation's reason(s), in the reader's language."""
    if isinstance(exc, ValidationFailed):
        for field, message in exc.errors.items():
            flash(f"{i18n.translate(field)}: {i18n.translate(message)}", "error")
    else:
        flash(i18n.translate(str(exc)), "error")


def came_from(fallback: str | None = None) -> str:
    """The page of this site the request came from (its Referer, same host only), else ``fallback``."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        target = referrer.path + (f"?{referrer.query}" if referrer.query else "")
        if is_local_url(target):
            return target
    return fallback or url_for("review.pending")


def refused(exc: ServiceError, back_to: str) -> Response:
    """What a view answers when a service refused its operation: nothing kept, the reason shown, back to
    ``back_to`` (the page of the form). ``NotFound`` is not a refusal: it goes on to the 404 page."""
    if isinstance(exc, NotFound):
        raise exc
    db.session.rollback()
    flash_refusal(exc)
    return redirect(back_to)  # type: ignore[return-value]


def _refused(exc: ServiceError) -> Any:
    """The HTML side's error boundary: an operation a service refused keeps nothing (the request's
    transaction is rolled back), says why in the reader's language, and goes back to the page it came
    from. A view that shows the errors beside a form catches ``ValidationFailed`` itself."""
    if request.path.startswith("/api/"):
        raise exc  # the JSON API answers its own errors (dashboard.api.errors)
    db.session.rollback()
    flash_refusal(exc)
    return redirect(came_from())


def init_web(app: Flask) -> None:
    """Register the HTML side's hooks once per app (safe to call again)."""
    if app.extensions.get("inbox.web"):
        return
    app.extensions["inbox.web"] = True
    app.config.setdefault("DISPLAY_TIMEZONE", "Europe/Paris")
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _error_page)
    app.register_error_handler(NotFound, _not_found)  # another tenant's object: 404, never "refused"
    app.register_error_handler(ServiceError, _refused)
    app.context_processor(_template_context)
    app.add_template_filter(format_date, "dmy")
    app.add_template_filter(format_money, "money")
    app.add_template_filter(input_value, "input_value")
    app.jinja_env.globals.update(page_url=page_url, PDF_TYPE=PDF_TYPE, IMAGE_TYPES=IMAGE_TYPES)
