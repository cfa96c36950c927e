"""A person's own account and companies (issue 17, items 1 and 2).

Reachable without logging in: accepting an invitation, asking for and using a password reset link, the
second step of a login with two-factor on, and sign-up when the operator allows it (``SIGNUP_ENABLED``).
Logged in: two-factor set-up, creating a company, and the overview of every company the person is in.
Bad links answer 400 with the reason (expired, used, withdrawn) and change nothing.
"""

from __future__ import annotations

import math
import time
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from core.errors import ServiceError, ValidationFailed
from core.models import User
from core.tenancy import accounts, companies, invitations, passwords, twofactor
from dashboard.blueprints.auth import PENDING_2FA, LoginThrottle, WebUser, clear_session, throttle
from dashboard.context import settings
from dashboard.extensions import db
from dashboard.i18n import translate
from dashboard.outbound import link_to, mail_config, secret_box, translated
from dashboard.viewer import today
from dashboard.web import current_membership, is_local_url, select_tenant

bp = Blueprint("account", __name__)


@bp.before_request
def _header_context() -> None:
    """The logged-in pages here are not tied to a company, but the header (menu, switcher) shows the current
    one, as on every other page; nothing here reads that company's data."""
    if current_user.is_authenticated:
        member = current_membership()
        if member is not None:
            g.membership, g.tenant = member, member.tenant

PENDING_2FA_SECONDS = 300
SETUP_KEY = "totp_setup"  # session key: the secret shown on the set-up page until confirmed


def _problems(exc: ServiceError) -> dict[str, str]:
    if isinstance(exc, ValidationFailed):
        return {name: translate(message) for name, message in exc.errors.items()}
    return {"form": translate(str(exc))}


def _client() -> str:
    return request.remote_addr or "unknown"


def _reset_throttle() -> LoginThrottle:
    """Reset requests are rate limited like logins: each request counts, per address asked and per client."""
    from flask import current_app

    found = current_app.extensions.get("inbox.reset_throttle")
    if found is None:
        config = current_app.config
        found = LoginThrottle(free=config.get("RESET_MAX_REQUESTS", 5), per_account=20, per_address=50,
                              window=900, base=30, cap=900)
        current_app.extensions["inbox.reset_throttle"] = found
    return found


def _start_session(user: User, tenant_id: int | None = None) -> None:
    clear_session()
    login_user(WebUser(user))
    chosen = tenant_id if tenant_id is not None else (user.memberships[0].tenant_id if user.memberships else None)
    if chosen is not None:
        select_tenant(chosen)


# Invitations ---------------------------------------------------------------------------------


@bp.route("/invitations/accept", methods=["GET", "POST"])
def accept_invitation() -> Any:
    token = request.values.get("token", "")
    try:
        invitation = invitations.find_usable(db.session, token)
    except ServiceError as exc:
        return render_template("account/invitation.html", invitation=None, problems=_problems(exc)), 400
    existing = invitations.needs_existing_password(db.session, invitation)
    context: dict[str, Any] = {"invitation": invitation, "existing": existing, "token": token,
                               "company": invitation.tenant.name}
    if request.method == "GET":
        return render_template("account/invitation.html", problems={}, **context)
    password = request.form.get("password", "")
    if not existing and password != request.form.get("password_again", ""):
        return render_template("account/invitation.html", problems={
            "password_again": _("the two passwords differ")}, **context), 400
    try:
        user, tenant = invitations.accept(db.session, token, password, ip=_client())
    except ServiceError as exc:
        db.session.rollback()
        return render_template("account/invitation.html", problems=_problems(exc), **context), 400
    db.session.commit()
    if existing:  # an account with its own password (and maybe a second factor): it logs in as usual
        logout_user()
        clear_session()
        flash(_("You joined %(company)s. Log in to work on it.", company=tenant.name), "success")
        return redirect(url_for("auth.login"))
    _start_session(user, tenant.id)
    flash(_("Welcome! You joined %(company)s.", company=tenant.name), "success")
    return redirect(url_for("review.pending"))


# Password reset -------------------------------------------------------------------------------


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> Any:
    if request.method == "GET":
        return render_template("account/forgot.html", sent=False, email="")
    email = request.form.get("email", "").strip()[:320]
    limiter = _reset_throttle()
    wait = limiter.wait(email, _client())
    if wait > 0:
        seconds = math.ceil(wait)
        error = _("Too many requests. Try again in %(seconds)d seconds.", seconds=seconds)
        return (render_template("account/forgot.html", sent=False, email=email, error=error), 429,
                {"Retry-After": str(seconds)})
    limiter.failed(email, _client())  # every request counts, whether or not the account exists
    passwords.request_reset(db.session, email, link_for=link_to("account.reset_password"), config=mail_config(),
                            tr=translated)
    db.session.commit()
    return render_template("account/forgot.html", sent=True, email="")


@bp.route("/password/reset", methods=["GET", "POST"])
def reset_password() -> Any:
    token = request.values.get("token", "")
    try:
        passwords.find_usable(db.session, token)
    except ServiceError as exc:
        return render_template("account/reset.html", token=None, problems=_problems(exc)), 400
    if request.method == "GET":
        return render_template("account/reset.html", token=token, problems={})
    password = request.form.get("password", "")
    if password != request.form.get("password_again", ""):
        return render_template("account/reset.html", token=token,
                               problems={"password_again": _("the two passwords differ")}), 400
    try:
        passwords.reset(db.session, token, password, ip=_client())
    except ServiceError as exc:
        db.session.rollback()
        return render_template("account/reset.html", token=token, problems=_problems(exc)), 400
    db.session.commit()
    logout_user()
    clear_session()
    flash(_("Your password is changed. Log in with it."), "success")
    return redirect(url_for("auth.login"))


# Login, second step ----------------------------------------------------------------------------


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Any:
    pending = session.get(PENDING_2FA)
    if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > PENDING_2FA_SECONDS:
        session.pop(PENDING_2FA, None)
        flash(_("Please log in again."), "info")
        return redirect(url_for("auth.login"))
    user = db.session.get(User, int(pending["user_id"]))
    if user is None or not user.is_active or not user.memberships:
        session.pop(PENDING_2FA, None)
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("account/login_code.html")
    limiter = throttle()
    wait = limiter.wait(user.email, _client())
    if wait > 0:
        seconds = math.ceil(wait)
        error = _("Too many failed attempts. Try again in %(seconds)d seconds.", seconds=seconds)
        return render_template("account/login_code.html", error=error), 429, {"Retry-After": str(seconds)}
    if not twofactor.verify(db.session, secret_box(), user.id, request.form.get("code", "")):
        db.session.commit()
        limiter.failed(user.email, _client())
        return render_template("account/login_code.html", error=_("Wrong or already used code.")), 400
    db.session.commit()
    limiter.succeeded(user.email, _client())
    target = pending.get("next")
    _start_session(user)
    return redirect(target if is_local_url(target) else url_for("review.pending"))


# Two-factor set-up ------------------------------------------------------------------------------


@bp.get("/account/2fa")
@login_required
def two_factor() -> str:
    user = current_user.user
    if twofactor.enabled(db.session, user.id):
        return render_template("account/two_factor.html", enabled=True)
    secret = session.get(SETUP_KEY)
    if not isinstance(secret, str):
        secret = session[SETUP_KEY] = twofactor.new_secret()
    return render_template("account/two_factor.html", enabled=False, secret=secret,
                           uri=twofactor.provisioning_uri(secret, user.email))


@bp.post("/account/2fa/enable")
@login_required
def enable_two_factor() -> Response:
    secret = session.get(SETUP_KEY)
    if not isinstance(secret, str):
        return redirect(url_for(".two_factor"))
    try:
        twofactor.enable(db.session, secret_box(), current_user.user, secret, request.form.get("code", ""),
                         ip=_client())
    except ServiceError as exc:
        db.session.rollback()
        flash(" ".join(_problems(exc).values()), "error")
        return redirect(url_for(".two_factor"))
    db.session.commit()
    session.pop(SETUP_KEY, None)
    flash(_("Two-factor authentication is on: you will type a code from the app at every login."), "success")
    return redirect(url_for(".two_factor"))


@bp.post("/account/2fa/disable")
@login_required
def disable_two_factor() -> Response:
    try:
        twofactor.disable(db.session, secret_box(), current_user.user, request.form.get("code", ""), ip=_client())
    except ServiceError as exc:
        db.session.rollback()
        flash(" ".join(_problems(exc).values()), "error")
        return redirect(url_for(".two_factor"))
    db.session.commit()
    flash(_("Two-factor authentication is off."), "success")
    return redirect(url_for(".two_factor"))


# Companies ---------------------------------------------------------------------------------------


@bp.get("/companies")
@login_required
def companies_overview() -> str:
    rows = companies.overview(db.session, current_user.id, today())
    return render_template("account/companies.html", rows=rows, name="", problems={})


@bp.post("/companies")
@login_required
def create_company() -> Any:
    name = request.form.get("name", "")[:400]
    try:
        tenant, address = companies.create_company(db.session, current_user.user, name, ip=_client())
    except ServiceError as exc:
        db.session.rollback()
        rows = companies.overview(db.session, current_user.id, today())
        return render_template("account/companies.html", rows=rows, name=name, problems=_problems(exc)), 400
    db.session.commit()
    select_tenant(tenant.id)
    flash(_("%(company)s is created and you are working on it. Its inbound address is %(address)s.",
            company=tenant.name, address=accounts.address_of(address, settings().inbound_domain)), "success")
    return redirect(url_for("settings.index"))


# Sign-up ------------------------------------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Any:
    if not settings().signup_enabled:
        abort(404)
    if request.method == "GET":
        return render_template("account/signup.html", email="", company="", problems={})
    email, company = request.form.get("email", "")[:320], request.form.get("company", "")[:400]
    password = request.form.get("password", "")
    limiter = _reset_throttle()  # sign-ups are rate limited per client address, like reset requests
    wait = limiter.wait("signup", _client())
    if wait > 0:
        seconds = math.ceil(wait)
        problems = {"form": _("Too many requests. Try again in %(seconds)d seconds.", seconds=seconds)}
        return (render_template("account/signup.html", email=email, company=company, problems=problems), 429,
                {"Retry-After": str(seconds)})
    limiter.failed("signup", _client())
    try:
        user, tenant, _address = companies.sign_up(db.session, email, password, company, ip=_client())
    except ServiceError as exc:
        db.session.rollback()
        return render_template("account/signup.html", email=email, company=company, problems=_problems(exc)), 400
    db.session.commit()
    _start_session(user, tenant.id)
    flash(_("Welcome! %(company)s is ready: forward invoices to its inbound address below.", company=tenant.name),
          "success")
    return redirect(url_for("settings.index"))
