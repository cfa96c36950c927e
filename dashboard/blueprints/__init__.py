"""One blueprint per area of the dashboard, plus the JSON API."""

from __future__ import annotations

from flask import Flask

# The map of the product: an area adds its module here.
AREAS = ("auth", "review", "invoices", "imports", "settings", "api", "clients", "analytics", "members",
         "forwarding", "support", "senders", "mailboxes", "bank")


def register_blueprints(app: Flask) -> None:
    import importlib

    for name in AREAS:
        app.register_blueprint(importlib.import_module(f"dashboard.blueprints.{name}").bp)
