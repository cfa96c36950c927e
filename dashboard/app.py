"""The Flask application factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from core.config import Settings, env, normalize_database_url
from core.db import engine_options, install_sqlite_pragmas
from core.files import make_storage
from dashboard import querycount
from dashboard.extensions import csrf, db, login_manager, migrate
from dashboard.i18n import init_i18n

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"
MIGRATIONS_DIR = ROOT / "core" / "migrations"


def create_app(settings: Settings | None = None, **config: Any) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__, template_folder=str(TEMPLATES_DIR), static_folder="static")
    url = normalize_database_url(settings.database_url)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(url),
        MAX_CONTENT_LENGTH=settings.max_message_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind TLS in production; the embedded default serves plain HTTP on localhost.
        SESSION_COOKIE_SECURE=(env("COOKIE_SECURE") or "0") == "1",
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.update(config)
    if settings.proxy_hops > 0:  # behind the documented TLS proxy: the client is what it forwarded
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)  # type: ignore[method-assign]
    app.extensions["inbox.settings"] = settings
    app.extensions["inbox.storage"] = make_storage(settings)

    db.init_app(app)
    with app.app_context():
        install_sqlite_pragmas(db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    init_i18n(app)  # before the blueprints: their templates use _()

    from dashboard.blueprints import register_blueprints

    register_blueprints(app)
    querycount.install(app)  # benchmarks only: does nothing unless INBOX_COUNT_QUERIES=1
    return app
