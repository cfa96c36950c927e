"""Logging in and out, the tenant switcher, and the Flask-Login wiring."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from core.models import User
from core.tenancy import accounts, twofactor
from dashboard.extensions import db, login_manager
from dashboard.i18n import LOCALE_KEY, N_, valid_locale
from dashboard.viewer import shown_subject
from dashboard.web import init_web, is_local_url, select_tenant

bp = Blueprint("auth", __name__)
PENDING_2FA = "pending_2fa"  # session key: the user whose password was right, waiting for their code


@bp.record_once
def _wire(state: BlueprintSetupState) -> None:
    init_web(state.app)  # security headers, filters and error pages for the whole HTML side
    state.app.add_template_filter(shown_subject, "subject")  # needs the viewer, which builds on dashboard.web


# Flask-Login ---------------------------------------------------------------------------------


class WebUser(UserMixin):
    """The logged-in person as Flask-Login sees them; ``user`` is the ORM row of this request."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = user.id
        self.email = user.email

    @property
    def is_active(self) -> bool:
        return bool(self.user.is_active)


@login_manager.user_loader
def load_user(user_id: str) -> WebUser | None:
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    return WebUser(user) if user is not None and user.is_active else None


login_manager.login_view = "auth.login"
login_manager.login_message = N_("Please log in to see this page.")
login_manager.localize_callback = _  # flashed in the language of the request
login_manager.login_message_category = "info"


# Throttling ----------------------------------------------------------------------------------


class LoginThrottle:
    """Failed logins, with a backoff per (account, client address), per account and per client address.

    Exactly:
    - From its ``free``-th failure (5) on, a pair (account, address) waits ``base * 2**k`` seconds (30 s,
      doubling per further failure k, at most ``cap``: 15 min) from its last failure: answered 429, even
      with the right password, and not counted. Once the wait has passed, the right password is accepted
      (and clears the pair). So nobody is refused for ever: at most ``cap`` after the last failure.
    - An account failing ``per_account`` times within ``window`` from any addresses (a spray) leaves its
      pairs one failure: each address waits from its first failure. An address that has not failed is
      never refused for the account: the real user elsewhere logs in.
    - An address failing ``per_address`` times within ``window`` on any accounts waits like a pair.

    Failures older than ``window`` are forgotten. The address is the client's as ProxyFix found it
    (``TRUSTED_PROXY_HOPS``); behind an untrusted proxy every client would share one. Counters live in
    this process's memory: each web worker counts on its own and a restart forgets them.
    """

    def __init__(self, free: int = 5, per_account: int = 20, per_address: int = 50, window: float = 900.0,
                 base: float = 30.0, cap: float = 900.0) -> None:
        self.free, self.per_account, self.per_address = free, per_account, per_address
        self.window, self.base, self.cap = window, base, cap
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(email: str, address: str) -> tuple[str, str, str]:
        account = email.strip().lower()[:320]
        return f"pair:{account}|{address}", f"acct:{account}", f"addr:{address}"

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.get(key, deque())
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        return stamps

    def _delay(self, stamps: deque[float], threshold: int, now: float) -> float:
        """From the ``threshold``-th failure on, ``base`` doubled per failure since, from the last one."""
        if not stamps or len(stamps) < threshold:
            return 0.0
        wait = min(self.base * 2 ** min(len(stamps) - threshold, 30), self.cap)
        return max(0.0, stamps[-1] + wait - now)

    def wait(self, email: str, address: str) -> float:
        """Seconds before this pair may try again (0: now)."""
        now = time.monotonic()
        pair, account, client = self._keys(email, address)
        with self._lock:
            sprayed = len(self._recent(account, now)) >= self.per_account
            return max(self._delay(self._recent(pair, now), 1 if sprayed else self.free, now),
                       self._delay(self._recent(client, now), self.per_address, now))

    def failed(self, email: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:  # bound the memory an attacker can make us use
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - self.window}
            for key in self._keys(email, address):
                stamps = self._recent(key, now)
                stamps.append(now)
                if len(stamps) > 1000:
                    stamps.popleft()
                self._failures[key] = stamps

    def succeeded(self, email: str, address: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(email, address)[0], None)


def throttle() -> LoginThrottle:
    found = current_app.extensions.get("inbox.login_throttle")
    if found is None:
        config = current_app.config
        found = LoginThrottle(
            free=config.get("LOGIN_MAX_FAILURES", 5),
            per_account=config.get("LOGIN_MAX_FAILURES_PER_ACCOUNT", 20),
            per_address=config.get("LOGIN_MAX_FAILURES_PER_ADDRESS", 50),
            window=config.get("LOGIN_WINDOW_SECONDS", 900),
            base=config.get("LOGIN_BACKOFF_SECONDS", 30),
            cap=config.get("LOGIN_BACKOFF_MAX_SECONDS", 900),
        )
        current_app.extensions["inbox.login_throttle"] = found
    return found


# Views ---------------------------------------------------------------------------------------


def _after_login_url(target: str | None) -> str:
    return target if target and is_local_url(target) else url_for("review.pending")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = request.values.get("next")
    if current_user.is_authenticated:
        return redirect(_after_login_url(target))
    if request.method == "GET":
        return render_template("login.html", email="", next=target if is_local_url(target) else None,
                               signup_enabled=_signup_enabled())

    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "unknown"
    context: dict[str, Any] = {"email": email, "next": target if is_local_url(target) else None,
                               "signup_enabled": _signup_enabled()}
    wait = throttle().wait(email, address)
    if wait > 0:
        seconds = math.ceil(wait)
        error = _("Too many failed attempts. Try again in %(seconds)d seconds.", seconds=seconds)
        return render_template("login.html", error=error, **context), 429, {"Retry-After": str(seconds)}
    user = accounts.authenticate(db.session, email, password) if email and password else None
    if user is None or not user.memberships:
        throttle().failed(email, address)
        db.session.rollback()
        return render_template("login.html", error=_("Wrong email or password."), **context)
    throttle().succeeded(email, address)
    chosen = valid_locale(session.get(LOCALE_KEY))
    if chosen and user.locale is None:
        user.locale = chosen  # the language picked on the login page becomes the person's own
    db.session.commit()  # authenticate() may have upgraded the password hash
    if twofactor.enabled(db.session, user.id):  # the password was right: now the code (issue 17)
        return begin_second_step(user, target)
    _clear_session()  # nothing from before the login survives it (but the language)
    login_user(WebUser(user))
    select_tenant(user.memberships[0].tenant_id)
    return redirect(_after_login_url(target))


def begin_second_step(user: User, target: str | None) -> Response:
    """Called by the login view when the password was right and the person has two-factor on."""
    clear_session()
    session[PENDING_2FA] = {"user_id": user.id, "next": target if is_local_url(target) else None,
                            "at": time.time()}
    return redirect(url_for("account.login_code"))


def _clear_session() -> None:
    """Empty the session but for the language chosen (harmless): the login page stays in it."""
    chosen = valid_locale(session.get(LOCALE_KEY))
    session.clear()
    if chosen:
        session[LOCALE_KEY] = chosen


clear_session = _clear_session  # also used by the account views (invitations, resets, two-factor)


def _signup_enabled() -> bool:
    from dashboard.context import settings

    return settings().signup_enabled


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    logout_user()
    _clear_session()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/tenant", methods=["POST"])
@login_required
def switch_tenant() -> Response:
    raw = request.form.get("tenant_id", "")
    member = accounts.membership(db.session, current_user.id, int(raw)) if raw.isdigit() else None
    if member is None:
        abort(404)
    select_tenant(member.tenant_id)
    flash(_("You are now working on %(name)s.", name=member.tenant.name), "info")
    return redirect(url_for("review.pending"))
