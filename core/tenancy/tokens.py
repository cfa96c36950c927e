"""Single-use link tokens (invitations, password resets): random, shown once in a link, only their SHA-256
stored, so a database leak gives no working link."""

from __future__ import annotations

import hashlib
import secrets

MAX_TOKEN_LENGTH = 200  # anything longer is not one of ours: refused before hashing


def new_link_token() -> tuple[str, str]:
    """(the token for the link, its hash for the table)."""
    token = secrets.token_urlsafe(32)
    return token, hash_link_token(token)


def hash_link_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def plausible(token: str | None) -> bool:
    return bool(token) and len(token or "") <= MAX_TOKEN_LENGTH and (token or "").isascii()
