"""WSGI entry point for gunicorn: ``gunicorn dashboard.wsgi:app``."""

from dashboard.app import create_app

app = create_app()
