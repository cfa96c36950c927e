"""Mail that proves its From domain, for tests that need an authenticated sender: DKIM-signed with a key
made here, and evaluated by core.mail.senderauth against DNS answers served from memory (no network)."""

from __future__ import annotations

import base64
from functools import cache

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.mail import senderauth


@cache
def dkim_key() -> tuple[bytes, str]:
    """(private key PEM, the DKIM TXT record publishing its public half), made once per test process."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def authenticated(raw: bytes, domain: str) -> tuple[bytes, dict]:
    """``raw`` signed by ``domain``, and the verdicts the gateway would store for it (DKIM and DMARC pass)."""
    private, record = dkim_key()
    signed = dkim.sign(raw, b"sel1", domain.encode(), private, canonicalize=(b"relaxed", b"relaxed"),
                       include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + raw
    records = {(f"sel1._domainkey.{domain}", "TXT"): [record], (f"_dmarc.{domain}", "TXT"): ["v=DMARC1; p=none"]}

    def lookup(name: str, rdtype: str, timeout: float) -> list[str]:
        return records.get((name, rdtype), [])

    verdicts = senderauth.evaluate(signed, ip=None, mail_from=None, helo=None, lookup=lookup)
    assert verdicts.dmarc == "pass", verdicts  # the helper's promise, checked
    return signed, verdicts.as_json()
