"""The JSON API blueprint; its code lives in the ``dashboard.api`` package."""

from dashboard.api import bp

__all__ = ["bp"]
