"""Encryption at rest for the secrets the application must be able to use again (mailbox passwords, tokens).

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``). The key is ``MAILBOX_KEY`` when set (any
string; several, comma-separated, to rotate: the first encrypts, all decrypt), otherwise derived from
``SECRET_KEY`` with HKDF-SHA256. Secrets encrypted under ``SECRET_KEY`` stay readable after
``MAILBOX_KEY`` is introduced, so an operator can switch without re-entering passwords.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.config import env

_INFO = b"invoice-inbox mailbox secrets v1"


class SecretError(Exception):
    """A stored secret cannot be decrypted (the key changed): the admin must enter it again."""


def _derive(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class SecretBox:
    """Encrypts and decrypts short text secrets; the plaintext never leaves through ``repr``."""

    def __init__(self, secret_key: str, mailbox_key: str | None = None) -> None:
        keys = [k.strip() for k in (mailbox_key or "").split(",") if k.strip()]
        fernets = [_derive(k) for k in keys] + [_derive(secret_key)]
        self._fernet = MultiFernet(fernets)

    @classmethod
    def from_settings(cls, secret_key: str) -> SecretBox:
        return cls(secret_key, env("MAILBOX_KEY"))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError) as exc:
            raise SecretError("a stored secret cannot be decrypted: the key changed; enter it again") from exc

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"
