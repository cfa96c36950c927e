"""Forwarding confirmations: recognising Gmail's and Microsoft's emails, and keeping them out of the invoices.

The samples follow the real emails (wording, senders, link shapes, encodings); only codes and addresses
are made up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import forwarding, intake
from core.mail.verification import GMAIL, MICROSOFT, parse_authentication_results, recognize
from core.models import Document, ForwardingConfirmation, InboundMessage, MessageStatus
from tests.conftest import TenantFixture
from tests.invoicegen import make_invoice_pdf
from tests.services import run_worker_burst
from worker.queue import enqueue_ingest, get_queue

CODE = "482913765"
REQUESTER = "compta.dupont@gmail.com"
VF = "https://mail-settings.google.com/mail/vf-%5BANGjdJ9Zk3x%5D-Qm1pL8Vb2Nw7rT4yU0sE6hKcXfA"
UF = "https://mail-settings.google.com/mail/uf-%5BANGjdJ9Zk3x%5D-Qm1pL8Vb2Nw7rT4yU0sE6hKcXfA"
SENT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
GOOGLE_PASS = "mx.operator.example; dkim=pass header.i=@google.com header.s=20230601 header.b=AbCdEf; spf=pass"

GMAIL_BODY_EN = f"""{REQUESTER} has requested to automatically forward mail to your email
address {{to}}.
Confirmation code: {CODE}

To allow {REQUESTER} to automatically forward mail to your address,
please click the link below to confirm the request:

{VF}

If you click the link and it appears to be broken, please copy and paste it
into a new browser window. If you aren't able to access the link, you can
send the confirmation code {CODE} to {REQUESTER}.

Thanks for using Gmail!

Sincerely,

The Gmail Team

If you do not approve of this request, no further action is required.
{REQUESTER} cannot automatically forward messages to your email address
unless you confirm the request by clicking the link above. If you accidentally
clicked the link, but you do not want to allow {REQUESTER} to
automatically forward messages to your address, click this link to cancel this
verification:
{UF}

To learn more about why you might have received this message, please visit:
https://support.google.com/mail/answer/184973.
"""

GMAIL_BODY_FR = f"""{REQUESTER} a demandé à transférer automatiquement les messages vers votre adresse
e-mail {{to}}.
Code de confirmation : {CODE}

Pour autoriser {REQUESTER} à transférer automatiquement des messages vers votre adresse,
veuillez cliquer sur le lien ci-dessous pour confirmer la demande :

{VF}

Si vous cliquez sur le lien et qu'il semble rompu, copiez-le et collez-le dans une nouvelle
fenêtre de navigateur.

Merci d'avoir choisi Gmail.

Cordialement,

L'équipe Gmail

Pour annuler cette validation : {UF}
"""

# Finnish: a label we do not know; the code is only in the body, twice.
GMAIL_BODY_FI = f"""{REQUESTER} on pyytänyt välittämään postia automaattisesti osoitteeseesi {{to}}.
Vahvistuskoodi: {CODE}

Vahvista pyyntö napsauttamalla alla olevaa linkkiä:

{VF}

Jos et pääse linkkiin, voit lähettää vahvistuskoodin {CODE} osoitteeseen {REQUESTER}.
Asiakasnumero 100000001 ei liity tähän.
"""

MS_CODE = "5837"
MS_LINK = "https://account.live.com/proofs/Verify?code=abc123&mkt=fr-FR"
MS_TEXT_EN = f"""Microsoft account

Verify your email address

To finish setting up this Microsoft account, we just need to make sure this email address is yours.

To verify your email address use this security code: {MS_CODE}

If you didn't request this code, you can safely ignore this email. Someone else might have typed your
email address by mistake.

Thanks,
The Microsoft account team
"""
MS_HTML_EN = f"""<html><head><style>p {{ color: #2a2a2a }}</style></head><body>
<table><tr><td style="font-size:17px">Microsoft account</td></tr>
<tr><td style="font-size:41px;color:#2672ec">Verify your email address</td></tr>
<tr><td>To finish setting up this Microsoft account, we just need to make sure this email address is yours.</td></tr>
<tr><td>To verify your email address use this security code: <span style="font-weight:bold">{MS_CODE}</span></td></tr>
<tr><td>Or <a href="{MS_LINK}">verify your email address</a>.</td></tr>
<tr><td><a href="https://go.microsoft.com/fwlink/?LinkId=521839">Privacy Statement</a></td></tr>
</table></body></html>"""
MS_HTML_FR = f"""<html><body>
<p>Compte Microsoft</p><p>Vérifiez votre adresse e-mail</p>
<p>Pour terminer la configuration du compte Microsoft ma***@contoso.fr, nous devons simplement nous assurer
que cette adresse e-mail vous appartient.</p>
<p>Pour vérifier votre adresse e-mail, utilisez ce code de sécurité&nbsp;: <b>{MS_CODE}</b></p>
<p>Merci,<br>L’équipe des comptes Microsoft</p></body></html>"""


def gmail_email(
    to: str,
    *,
    subject: str | None = None,
    body: str = GMAIL_BODY_EN,
    sender: str = "Gmail Team <forwarding-noreply@google.com>",
    auth_results: list[str] = (),  # type: ignore[assignment]
    cte: str = "quoted-printable",
    html: bool = False,
    attachment: bytes | None = None,
) -> bytes:
    msg = EmailMessage()
    for value in auth_results:
        msg["Authentication-Results"] = value
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject if subject is not None else (
        f"(#{CODE}) Gmail Forwarding Confirmation - Receive Mail from {REQUESTER}"
    )
    msg["Date"] = format_datetime(SENT)
    msg["Message-ID"] = "<0000000000001a2b3c@google.com>"
    text = body.replace("{to}", to)
    if html:
        markup = "<html><body>" + "".join(
            f'<p><a href="{line}">{line}</a></p>' if line.startswith("https://") else f"<p>{line}</p>"
            for line in text.splitlines()
        ) + "</body></html>"
        msg.set_content(markup, subtype="html", cte=cte)
    else:
        msg.set_content(text, cte=cte)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="facture.pdf")
    return msg.as_bytes()


def microsoft_email(to: str, *, french: bool = False, auth_results: list[str] = ()) -> bytes:  # type: ignore[assignment]
    msg = EmailMessage()
    for value in auth_results:
        msg["Authentication-Results"] = value
    msg["From"] = "Microsoft account team <account-security-noreply@accountprotection.microsoft.com>"
    msg["To"] = to
    msg["Subject"] = "Vérifiez votre adresse e-mail" if french else "Verify your email address"
    msg["Date"] = format_datetime(SENT)
    if french:
        msg.set_content(MS_HTML_FR, subtype="html", cte="base64")
    else:
        msg.set_content(MS_TEXT_EN, cte="quoted-printable")
        msg.add_alternative(MS_HTML_EN, subtype="html", cte="quoted-printable")
    return msg.as_bytes()


TO = "abc-123@in.example.test"


# Recognition (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize("cte", ["quoted-printable", "base64", "8bit"])
def test_gmail_english_confirmation(cte: str) -> None:
    found = recognize(gmail_email(TO, cte=cte))
    assert found is not None
    assert found.provider == GMAIL and found.code == CODE
    assert found.link == VF  # the confirm link, never the cancel one
    assert found.requester == REQUESTER
    assert found.sender == "forwarding-noreply@google.com"
    assert found.sent_at == SENT
    assert found.auth_results == () and found.authenticated({"mx.operator.example"}) is None


def test_gmail_french_subject() -> None:
    subject = f"(n° {CODE}) Confirmation de transfert Gmail - Recevoir des messages de {REQUESTER}"
    found = recognize(gmail_email(TO, subject=subject, body=GMAIL_BODY_FR, cte="base64"))
    assert found is not None and found.code == CODE and found.link == VF and found.requester == REQUESTER


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Gmail-Weiterleitungsbestätigung - E-Mails empfangen", GMAIL_BODY_EN.replace("Confirmation code", "Code")),
        ("Gmailin edelleenlähetyksen vahvistus", GMAIL_BODY_FI),
        ("", GMAIL_BODY_FR),
    ],
)
def test_gmail_code_read_from_the_body_when_the_subject_lacks_it(subject: str, body: str) -> None:
    found = recognize(gmail_email(TO, subject=subject, body=body))
    assert found is not None and found.code == CODE and found.link == VF
    assert found.requester == REQUESTER  # the first address of the body that is not ours


def test_gmail_html_only_confirmation_takes_the_link_from_the_href() -> None:
    found = recognize(gmail_email(TO, html=True, cte="base64"))
    assert found is not None and found.code == CODE and found.link == VF


@pytest.mark.parametrize("french", [False, True])
def test_microsoft_verification(french: bool) -> None:
    found = recognize(microsoft_email(TO, french=french))
    assert found is not None
    assert found.provider == MICROSOFT and found.code == MS_CODE
    assert found.sender == "account-security-noreply@accountprotection.microsoft.com"
    if french:
        assert found.link is None and found.requester == "ma***@contoso.fr"
    else:
        assert found.link == MS_LINK  # the verification link, not the privacy statement


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"From: forwarding-noreply@google.com\r\nSubject: Your storage is almost full\r\n\r\nBuy more.\r\n",
        b"From: no-reply@microsoft.com\r\nSubject: Your invoice for November\r\n\r\nTotal 12,00 EUR\r\n",
        b"From: a@x.example, forwarding-noreply@google.com\r\nSubject: (#482913765) Gmail\r\n\r\nx\r\n",
    ],
)
def test_other_emails_are_not_confirmations(raw: bytes) -> None:
    assert recognize(raw) is None


def test_oversized_emails_are_not_read_as_confirmations() -> None:
    padding = "\n" + "x" * 600_000
    assert recognize(gmail_email(TO, body=GMAIL_BODY_EN + padding)) is None
    assert recognize(gmail_email(TO, body=GMAIL_BODY_EN + padding[:1000])) is not None


def test_invoices_that_mention_gmail_are_not_confirmations() -> None:
    raw = gmail_email(TO, sender="Dupont <compta.dupont@gmail.com>", attachment=make_invoice_pdf(number="F-1"))
    assert recognize(raw) is None  # the look of Google's email, from someone else: an ordinary email


@pytest.mark.parametrize(
    "link",
    [
        "https://mail.google.com.evil.example/mail/vf-abc",
        "http://mail.google.com/mail/vf-abc",
        "https://user@mail.google.com/mail/vf-abc",
        "https://mail.google.com:8443/mail/vf-abc",
        "https://mail.google.com/mail/uf-abc",
    ],
)
def test_only_the_providers_own_https_links_are_kept(link: str) -> None:
    found = recognize(gmail_email(TO, body=GMAIL_BODY_EN.replace(VF, link).replace(UF, "")))
    assert found is not None and found.code == CODE and found.link is None


def test_mail_google_com_links_are_accepted() -> None:
    link = "https://mail.google.com/mail/vf-%5BANGjdJ%5D-abc"
    found = recognize(gmail_email(TO, body=GMAIL_BODY_EN.replace(VF, link)))
    assert found is not None and found.link == link


def test_authentication_results_verdicts() -> None:
    parsed = parse_authentication_results(
        "mx.operator.example (comment; dkim=pass); dkim=pass (2048-bit key) header.d=google.com header.s=x; "
        "dkim=fail header.i=@evil.example; spf=pass smtp.mailfrom=google.com"
    )
    assert [(r.authserv_id, r.result, r.domain) for r in parsed] == [
        ("mx.operator.example", "pass", "google.com"),
        ("mx.operator.example", "fail", "evil.example"),
    ]
    trusted = {"mx.operator.example"}
    assert recognize(gmail_email(TO, auth_results=[GOOGLE_PASS])).authenticated(trusted) is True
    # The same verdict from a server we do not trust (anyone can write this header) proves nothing.
    forged = GOOGLE_PASS.replace("mx.operator.example", "mx.attacker.example")
    assert recognize(gmail_email(TO, auth_results=[forged])).authenticated(trusted) is None
    wrong_domain = "mx.operator.example; dkim=pass header.d=google.com.evil.example"
    assert recognize(gmail_email(TO, auth_results=[wrong_domain])).authenticated(trusted) is False
    failed = "mx.operator.example; dkim=fail header.d=google.com"
    assert recognize(gmail_email(TO, auth_results=[failed])).authenticated(trusted) is False
    ms_pass = "mx.operator.example; dkim=pass header.d=accountprotection.microsoft.com"
    assert recognize(microsoft_email(TO, auth_results=[ms_pass])).authenticated(trusted) is True
    found = recognize(gmail_email(TO, auth_results=[forged, GOOGLE_PASS]))
    assert "mx.attacker.example" in found.auth_results_raw and found.authenticated(trusted) is True


# The pipeline --------------------------------------------------------------------------------


def _stored(session: Session, storage: FileStorage, tenant: TenantFixture, raw: bytes) -> InboundMessage:
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    session.commit()
    return message


def _documents(session: Session, message_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Document).where(Document.message_id == message_id))


def test_ingest_stores_the_code_and_creates_no_document(
    session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    # A (forged) confirmation carrying a PDF: still not an invoice, and nothing to extract.
    raw = gmail_email(tenant.address, attachment=make_invoice_pdf(number="F-FORGED"))
    message = _stored(session, storage, tenant, raw)
    for _ in range(2):  # a job that runs twice stores nothing twice
        assert processing.ingest_message(session, storage, message.id) == []
        session.commit()
    session.refresh(message)
    assert message.status == MessageStatus.IGNORED.value
    assert message.reason == "Gmail forwarding confirmation (code stored for support and admins)"
    assert _documents(session, message.id) == 0
    rows = session.scalars(select(ForwardingConfirmation)).all()
    assert len(rows) == 1
    row = rows[0]
    assert (row.tenant_id, row.message_id, row.code, row.link, row.requester) == (
        tenant.tenant.id, message.id, CODE, VF, REQUESTER)
    assert row.authenticated is False and row.sent_at == SENT  # checked (core.mail.senderauth): no DKIM pass


def test_trusted_dkim_pass_marks_the_code_authenticated(
    session: Session, storage: FileStorage, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(forwarding.TRUSTED_AUTHSERV_ENV, "MX.operator.example, other.example")
    message = _stored(session, storage, tenant, gmail_email(tenant.address, auth_results=[GOOGLE_PASS]))
    processing.ingest_message(session, storage, message.id)
    session.commit()
    row = session.scalars(select(ForwardingConfirmation)).one()
    assert row.authenticated is True and "dkim=pass" in row.auth_results


def test_ordinary_invoices_still_become_documents(
    session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    raw = gmail_email(tenant.address, sender="Dupont <compta.dupont@gmail.com>", subject="Facture F-1",
                      body="Veuillez trouver la facture.", attachment=make_invoice_pdf(number="F-1"))
    message = _stored(session, storage, tenant, raw)
    assert len(processing.ingest_message(session, storage, message.id)) == 1
    session.commit()
    assert session.scalar(select(func.count()).select_from(ForwardingConfirmation)) == 0


def test_confirmation_through_the_real_worker(settings, session: Session, storage: FileStorage,  # noqa: ANN001
                                              tenant: TenantFixture) -> None:
    message = _stored(session, storage, tenant, microsoft_email(tenant.address))
    enqueue_ingest(get_queue(settings), message.id)
    run_worker_burst(settings)
    session.expire_all()
    message = session.get(InboundMessage, message.id)
    assert message.status == MessageStatus.IGNORED.value
    assert message.reason == "Microsoft verification email (code stored for support and admins)"
    assert _documents(session, message.id) == 0
    assert session.scalars(select(ForwardingConfirmation.code)).all() == [MS_CODE]
