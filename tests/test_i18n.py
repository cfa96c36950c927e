"""French and English (issue #5): the catalogue, the locale choice, per-locale formats, every page in both."""

from __future__ import annotations

import os
import re
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from core.inbound import senders
from core.models import DocumentStatus, InboundMessage, MessageStatus, User
from dashboard import i18n
from tests.bankhelpers import make_invoice
from tests.conftest import TenantFixture
from tests.test_dashboard import XSS, XSS_ESCAPED, csrf_token, login, make_document, text

ROOT = Path(__file__).resolve().parent.parent
PO_FILE = ROOT / "dashboard" / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
FR = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-US,en;q=0.9"}
# The main pages of an admin, each with a word it must show in French and the English it replaces.
PAGES = [
    ("/pending", "À vérifier", "Pending verification"),
    ("/invoices", "Factures", "Invoices"),
    ("/credit-notes", "Avoirs", "Credit notes"),
    ("/imports", "Aucun message reçu", "No message received yet"),
    ("/quarantine", "Rien en quarantaine", "Nothing in quarantine"),
    ("/clients", "Délai moyen de paiement", "Average payment delay"),
    ("/analytics", "Montant dû", "Amount due"),
    ("/bank", "Importer un relevé", "Import a statement"),
    ("/bank/suggestions", "Suggestions de rapprochement", "Match suggestions"),
    ("/bank/rules", "Règles de rapprochement", "Matching rules"),
    ("/bank/treasury", "Trésorerie", "Treasury"),
    ("/settings", "Paramètres", "Settings"),
    ("/settings/members", "Membres et attribution des clients", "Members and client assignments"),
    ("/settings/senders", "Expéditeurs autorisés", "Allowed senders"),
    ("/settings/forwarding", "Transfert depuis Gmail ou Outlook", "Forwarding from Gmail or Outlook"),
    ("/settings/mailboxes", "Boîtes aux lettres (IMAP)", "Mailboxes (IMAP)"),
    ("/settings/audit", "Journal d'audit", "Audit trail"),
    ("/accounting", "À traiter", "To process"),
    ("/accounting/accounts", "Plan comptable", "Chart of accounts"),
]


@pytest.fixture
def client(app: Flask, tenant: TenantFixture) -> FlaskClient:
    """The admin of ``tenant``, logged in, with no language chosen yet."""
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    return web


# The catalogue ---------------------------------------------------------------------------------


def extracted_msgids() -> set[str]:
    """Every msgid in the code and templates, by the same rules as `pybabel extract -F babel.cfg`."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_every_string_of_the_code_has_a_french_translation() -> None:
    with PO_FILE.open("rb") as po:
        catalog = read_po(po, locale="fr")
    assert not catalog.fuzzy  # a fuzzy header makes `pybabel compile` (scripts/bootstrap.sh) skip the catalogue
    translated = {}
    problems = []
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        if not all(s.strip() for s in strings):
            problems.append(f"empty: {msgid!r}")
        problems += [f"{msgid!r}: {error}" for error in message.check(catalog)]  # placeholders kept
        translated[msgid] = strings
    extracted = extracted_msgids()
    assert len(extracted) > 400  # the extraction really read the templates and the code
    missing = sorted(extracted - translated.keys())
    assert not missing, "not in messages.po (run pybabel extract/update, then translate):\n" + "\n".join(missing)
    assert not problems, "\n".join(problems)
    assert translated["Invoices"] == ("Factures",) and translated["Amount due"] == ("Montant dû",)


def test_stale_or_missing_catalogue_is_compiled_at_start(tmp_path: Path) -> None:
    target = tmp_path / "translations"
    shutil.copytree(PO_FILE.parent.parent.parent, target, ignore=shutil.ignore_patterns("*.mo"))
    mo = target / "fr" / "LC_MESSAGES" / "messages.mo"
    assert i18n.ensure_compiled(target) == [mo]  # missing: compiled
    assert i18n.ensure_compiled(target) == []  # up to date: left alone
    po = mo.with_suffix(".po")
    po.write_text(po.read_text(encoding="utf-8").replace('msgstr "Factures"', 'msgstr "Factures reçues"'),
                  encoding="utf-8")
    later = mo.stat().st_mtime + 10
    os.utime(po, (later, later))  # edited after the last compilation
    assert i18n.ensure_compiled(target) == [mo]
    assert b"Factures re\xc3\xa7ues" in mo.read_bytes()
    assert mo.stat().st_mode & 0o044  # readable by a web server running as another user


# Locale choice -------------------------------------------------------------------------------


def test_browser_language_decides_and_english_is_the_fallback(app: Flask) -> None:
    web = app.test_client()
    page = text(web.get("/login", headers=FR))
    assert '<html lang="fr">' in page and "Se connecter" in page and "Mot de passe" in page
    page = text(web.get("/login", headers=EN))
    assert '<html lang="en">' in page and "Log in" in page
    page = text(web.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}))  # neither: English
    assert '<html lang="en">' in page and "Log in" in page
    page = text(web.get("/login", headers={"Accept-Language": "de-DE,fr;q=0.5"}))
    assert '<html lang="fr">' in page
    # Flask-Login's "log in first" message, flashed in the request's language.
    assert web.get("/invoices", headers=FR).status_code == 302
    assert "Connectez-vous pour voir cette page." in text(web.get("/login", headers=FR))


def test_every_main_page_renders_in_both_languages(client: FlaskClient, session: Session, storage: FileStorage,
                                                   tenant: TenantFixture) -> None:
    make_document(session, storage, tenant.tenant.id, filename="fa.pdf", status=DocumentStatus.PENDING,
                  number="FA-1", amount=Decimal("1234.56"), currency="EUR")
    make_invoice(session, storage, tenant.tenant.id, "FA-2026-0001", "1234.56", "Dupont SARL")
    session.commit()
    for path, french, english in PAGES:
        response = client.get(path, headers=FR)
        assert response.status_code == 200, path
        page = text(response)
        assert french in page.replace("&#39;", "'"), f"{path}: no {french!r}"
        assert english not in page, f"{path}: {english!r} left in English"
        assert '<html lang="fr">' in page
        page = text(client.get(path, headers=EN))
        assert english in page and french not in page.replace("&#39;", "'"), path
    # The navigation, in French, on every page.
    page = text(client.get("/invoices", headers=FR))
    for word in ("Factures", "Avoirs", "Quarantaine", "Analyses", "Banque", "Paramètres", "Se déconnecter"):
        assert word in page


def test_detail_pages_render_in_both_languages(client: FlaskClient, session: Session, storage: FileStorage,
                                               tenant: TenantFixture) -> None:
    doc = make_document(session, storage, tenant.tenant.id, filename="fa.pdf", status=DocumentStatus.FAILED,
                        reason=senders.NO_SENDER_REASON)
    invoice = make_invoice(session, storage, tenant.tenant.id, "FA-2026-0009", "99.90", "Dupont SARL",
                           due_date=date(2026, 2, 5))
    session.commit()
    details = [
        (f"/documents/{doc.id}", "Ce fichier n'a pas pu être lu automatiquement", "could not be read automatically"),
        (f"/documents/{doc.id}", "Cet e-mail n'a pas d'adresse d'expéditeur lisible", "has no readable sender"),
        (f"/invoices/{invoice.id}", "Fichiers joints", "Attached files"),
        (f"/invoices/{invoice.id}", "Date d'échéance", "Due date"),
        (f"/clients/{invoice.client_id}", "Avoirs disponibles", "Available credit notes"),
        ("/settings/mailboxes/new", "Nouvelle boîte aux lettres", "New mailbox"),
    ]
    for path, french, english in details:
        page = text(client.get(path, headers=FR)).replace("&#39;", "'")
        assert french in page and english not in page, path
        page = text(client.get(path, headers=EN)).replace("&#39;", "'")
        assert english in page and french not in page, path


def test_the_switcher_is_a_post_form_and_the_choice_is_kept_on_the_user(app: Flask, session: Session,
                                                                        tenant: TenantFixture) -> None:
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    page = text(web.get("/invoices", headers=EN))
    assert 'action="/locale"' in page and 'name="locale" value="fr"' in page  # in the layout
    assert web.post("/locale", data={"locale": "fr", "next": "/invoices"}).status_code == 400  # no CSRF token
    token = csrf_token(web.get("/invoices"))
    assert web.post("/locale", data={"locale": "de", "csrf_token": token}).status_code == 400
    response = web.post("/locale", data={"locale": "fr", "next": "/invoices", "csrf_token": token}, headers=EN)
    assert response.status_code == 302 and response.headers["Location"] == "/invoices"
    assert "<h1>Factures</h1>" in text(web.get("/invoices", headers=EN))  # the choice beats the browser
    session.expire_all()
    assert session.get(User, tenant.admin.id).locale == "fr"

    # Another browser, another day: the stored choice follows the person.
    elsewhere = app.test_client()
    assert login(elsewhere, tenant.admin.email).status_code == 302
    assert "<h1>Factures</h1>" in text(elsewhere.get("/invoices", headers=EN))

    token = csrf_token(elsewhere.get("/invoices"))
    response = elsewhere.post("/locale", data={"locale": "en", "next": "https://evil.example/", "csrf_token": token})
    assert response.headers["Location"] == "/pending"  # never an outside redirect
    assert "<h1>Invoices</h1>" in text(elsewhere.get("/invoices", headers=FR))


def test_the_language_chosen_on_the_login_page_stays_after_login_and_logout(app: Flask, session: Session,
                                                                            tenant: TenantFixture) -> None:
    web = app.test_client()
    token = csrf_token(web.get("/login"))
    response = web.post("/locale", data={"locale": "fr", "next": "/login", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Mot de passe" in text(web.get("/login"))  # no Accept-Language: the session's choice
    assert login(web, tenant.admin.email).status_code == 302
    assert "<h1>Factures</h1>" in text(web.get("/invoices"))
    session.expire_all()
    assert session.get(User, tenant.admin.id).locale == "fr"  # adopted as the person's own
    web.post("/logout", data={"csrf_token": csrf_token(web.get("/invoices"))})
    page = text(web.get("/login"))
    assert "Vous êtes déconnecté." in page and "Mot de passe" in page


def test_flash_messages_and_form_errors_are_translated(client: FlaskClient, session: Session, storage: FileStorage,
                                                       tenant: TenantFixture) -> None:
    token = csrf_token(client.get("/settings/senders"))
    client.post("/locale", data={"locale": "fr", "csrf_token": token})
    response = client.post("/settings/senders", data={"pattern": "anne@acme.example", "csrf_token": token},
                           follow_redirects=True)
    assert "anne@acme.example peut désormais envoyer des factures." in text(response)
    doc = make_document(session, storage, tenant.tenant.id, filename="fa.pdf", status=DocumentStatus.PENDING)
    page = text(client.get(f"/documents/{doc.id}"))
    assert "Montant TTC" in page and "Date d&#39;échéance" in page and "Confirmer" in page


# Formats -------------------------------------------------------------------------------------


def test_amounts_and_dates_per_locale() -> None:
    assert i18n.format_money(Decimal("1234.56"), "EUR", locale="fr") == "1\u202f234,56\u00a0€"
    assert i18n.format_money(Decimal("1234.56"), "EUR", locale="en") == "€1,234.56"
    assert i18n.format_money(Decimal("-12"), "CHF", locale="fr") == "-12,00\u00a0CHF"
    assert i18n.format_money(Decimal("5"), "XYZ", locale="fr") == "5,00\u00a0XYZ"  # unknown code: written out
    assert i18n.format_money(Decimal("0.5"), None, locale="en") == "0.50"
    assert i18n.format_money(Decimal("1000"), "JPY", locale="fr") == "1\u202f000,00\u00a0JPY"
    assert i18n.format_date(date(2026, 11, 24), locale="fr") == "24/11/2026"
    assert i18n.format_date(date(2026, 11, 24), locale="en") == "24/11/2026"  # day first, as on the invoices
    assert i18n.format_date(datetime(2026, 11, 24, 9, 5), locale="fr") == "24/11/2026 09:05"
    assert i18n.format_number(Decimal("12.5"), locale="fr") == "12,5"
    assert i18n.format_number(1234.5, locale="en") == "1,234.5"


def test_pages_format_amounts_per_locale(client: FlaskClient, session: Session, storage: FileStorage,
                                         tenant: TenantFixture) -> None:
    make_invoice(session, storage, tenant.tenant.id, "FA-2026-0007", "1234.56", "Dupont SARL")
    session.commit()
    french = text(client.get("/invoices", headers=FR))
    english = text(client.get("/invoices", headers=EN))
    assert "1\u202f234,56\u00a0€" in french and "€1,234.56" not in french
    assert "€1,234.56" in english and "1\u202f234,56" not in english
    assert re.search(r"\d\d/\d\d/\d{4}", french)


# Stored text -----------------------------------------------------------------------------------


def test_stored_reasons_are_translated_and_still_escaped(client: FlaskClient, session: Session,
                                                         tenant: TenantFixture) -> None:
    sender = f"x{XSS}@evil.example"
    message = InboundMessage(tenant_id=tenant.tenant.id, sender=sender, recipient=tenant.address,
                             subject="Facture", raw_sha256="0" * 64, raw_size=10, raw_key="k",
                             status=MessageStatus.QUARANTINED.value,
                             reason=senders.NOT_ALLOWED_REASON.format(sender=sender))
    session.add(message)
    session.commit()
    page = text(client.get("/quarantine", headers=FR))
    assert f"L&#39;expéditeur x{XSS_ESCAPED}@evil.example ne figure pas" in page
    assert XSS not in page
    page = text(client.get("/quarantine", headers=EN))
    assert f"The sender x{XSS_ESCAPED}@evil.example is not on your list" in page and XSS not in page


def test_translate_leaves_unknown_text_alone(app: Flask) -> None:
    with app.test_request_context("/", headers=FR):
        assert i18n.translate("Invoices") == "Factures"
        assert i18n.translate("Total HT {x}") == "Total HT {x}"
        assert i18n.translate("%(name)s 100 %") == "%(name)s 100 %"  # never %-formatted
        assert i18n.translate(None) == ""


@pytest.mark.parametrize("header", [FR, EN])
def test_error_pages_in_both_languages(client: FlaskClient, header: dict[str, str]) -> None:
    page = text(client.get("/documents/2000000000", headers=header))
    if header is FR:
        assert "Page introuvable" in page and "ne fait pas partie des données de votre entreprise" in page
    else:
        assert "Not Found" in page and "not part of your company" in page
