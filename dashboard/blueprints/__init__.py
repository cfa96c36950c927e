"""One blueprint per area of the dashboard, plus the JSON API."""

from __future__ import annotations

from flask import Flask

# The map of the product: an area adds its module here.
AREAS = ("auth", "review", "invoices", "imports", "settings", "api", "clients", "analytics", "members",
         "forwarding", "support", "senders", "mailboxes", "bank", "locale",
         "splitting",  # issue 4: several invoices in one PDF
         "templates_editor",  # issue 4: per-tenant invoice2data templates
         "senderauth",  # issue 8: SPF/DKIM/DMARC, the tenant's choice for mail failing DMARC
         "deadletter",  # issue 7: what failed after its retries, and retry
         "tokens",  # issue 14: API tokens listed, revoked, expiring
         "api_docs",  # issue 17: the API reference, rendered from /api/v1/openapi.json
         "mailbox_oauth",  # issue 17: "Connect Gmail" / "Connect Microsoft 365" (OAuth2 + PKCE)
         "people",  # issue 17: invitations, roles, removals, required two-factor, the outbox
         "account",  # issue 17: invitation links, password reset, two-factor, companies, sign-up
         "accounting",  # issue 18: entries, chart of accounts, FEC / DATEV / CSV exports
         "health",  # issue 15: /healthz, /readyz, /metrics for operators' tools
         "payables")  # issue 18: company identity, suppliers, approval, payment runs (SEPA)


def register_blueprints(app: Flask) -> None:
    import importlib

    for name in AREAS:
        app.register_blueprint(importlib.import_module(f"dashboard.blueprints.{name}").bp)
