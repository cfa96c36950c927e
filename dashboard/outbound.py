"""What the dashboard and the API hand to the people services: the mail settings, the links mails carry
(``PUBLIC_URL`` when set, else the address of the request) and the box that encrypts TOTP secrets."""

from __future__ import annotations

from collections.abc import Callable

from flask import url_for
from flask_babel import gettext

from core.outbound.mail import MailConfig
from core.secrets import SecretBox
from dashboard.context import settings


def mail_config() -> MailConfig:
    return MailConfig(relay_url=settings().mail_relay_url, sender=settings().mail_from)


def link_to(endpoint: str) -> Callable[[str], str]:
    """A function token -> the absolute link of ``endpoint?token=...``."""
    base = settings().public_url

    def build(token: str) -> str:
        if base:
            return base + url_for(endpoint, token=token)
        return url_for(endpoint, token=token, _external=True)

    return build


def translated(text: str) -> str:
    """A mail's text in the language of the request that sends it."""
    return gettext(text)


def secret_box() -> SecretBox:
    return SecretBox.from_settings(settings().secret_key)
