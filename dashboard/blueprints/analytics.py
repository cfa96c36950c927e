"""Analytics: amount due, overdue, ageing, DSO and the expected cash-in per week, as SVG bars + tables."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from core.receivables import analytics
from core.receivables import invoices as receivables
from dashboard.extensions import db
from dashboard.viewer import current_viewer, today
from dashboard.web import format_date, tenant_required

bp = Blueprint("analytics", __name__)


@bp.get("/analytics")
@tenant_required
def index() -> str:
    viewer = current_viewer()
    currency, currencies = receivables.pick_currency(db.session, viewer, request.args.get("currency"))
    result = analytics.summary(db.session, viewer, currency=currency, today=today())
    ageing_bars = analytics.bars([(b.label, b.amount) for b in result.ageing])
    week_bars = analytics.bars([(format_date(w.start)[:5], w.amount) for w in result.weeks])
    return render_template("analytics.html", active_nav="analytics", result=result, currency=currency,
                           currencies=currencies, ageing_bars=ageing_bars, week_bars=week_bars,
                           dso_window=analytics.DSO_WINDOW_DAYS)
