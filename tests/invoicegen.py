"""Real invoice PDFs and emails for tests, made with reportlab and the standard ``email`` package.

    from tests.invoicegen import make_invoice_pdf, make_email, corrupt_pdf

    pdf = make_invoice_pdf(number="FA-2026-0001", language="en")
    raw = make_email("abc-def@in.example.test", pdf)

``make_invoice_pdf`` prints every value with the labels a French (``fr``), English (``en``) or German (``de``)
invoice uses;
``layout`` picks one of a few page arrangements (``LAYOUTS``) so that extraction is not tuned to one page:

- 0: letterhead at the top left, "Facturé à" / "Bill to" block, one label per line, totals at the bottom
  right after an item table whose header repeats "Total HT" (the trap of table headers);
- 1: issuer and client side by side under column headings ("Émetteur" / "Client"), the number and dates
  in a row of column headings with their values underneath, ISO dates, ``1.000,00 EUR`` / ``EUR 1,000.00``;
- 2: a key/value block on the right (labels in one column, values in another far to the right), other
  label wordings ("N° de facture", "Invoice #", "Rechnungs-Nr."), long dates ("23 novembre 2026",
  "November 23, 2026", "23. November 2026"), the client under "Client" / "Billed to" / "Kunde", totals in a
  two-column table;
- 3: one field a line in capitals ("FACTURE N° ...", "DATE D'ÉMISSION ..."), the issuer in a letterhead line
  with its address after a dash, amounts with the currency code first (``EUR 1 000,00``).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

LAYOUTS = (0, 1, 2, 3)
LANGUAGES = ("fr", "en", "de")
NBSP = "\u00a0"

_MONTHS = {
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
}
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}

_LABELS = {
    "fr": {
        "invoice": "FACTURE",
        "credit_note": "AVOIR",
        "number_invoice": "Facture N°",
        "number_credit_note": "Avoir N°",
        "number_heading": "Numéro",
        "issue_date": "Date",
        "issue_heading": "Date d'émission",
        "due_date": "Date d'échéance",
        "due_heading": "Échéance",
        "bill_to": "Facturé à :",
        "issuer_heading": "Émetteur",
        "client_heading": "Client",
        "subject": "Objet",
        "items": ("Description", "Qté", "Prix unitaire HT", "Total HT"),
        "net": "Total HT",
        "tax": "TVA",
        "total": "Total TTC",
        "net_alt": "Montant HT",
        "tax_alt": "Montant TVA",
        "total_alt": "Montant TTC",
        "footer": "Paiement par virement à 30 jours. Pénalités de retard : 3 fois le taux d'intérêt légal.",
        "title": "Mission de conseil",
    },
    "en": {
        "invoice": "INVOICE",
        "credit_note": "CREDIT NOTE",
        "number_invoice": "Invoice number",
        "number_credit_note": "Credit note number",
        "number_heading": "Number",
        "issue_date": "Invoice date",
        "issue_heading": "Issue date",
        "due_date": "Due date",
        "due_heading": "Due date",
        "bill_to": "Bill to:",
        "issuer_heading": "From",
        "client_heading": "Customer",
        "subject": "Subject",
        "items": ("Description", "Qty", "Unit price", "Amount"),
        "net": "Subtotal",
        "tax": "VAT",
        "total": "Total",
        "net_alt": "Net amount",
        "tax_alt": "VAT amount",
        "total_alt": "Amount due",
        "footer": "Payment by bank transfer within 30 days.",
        "title": "Consulting services",
        "number2": "Invoice #", "issue2": "Date of issue", "due2": "Payment due", "client2": "Billed to",
        "net2": "Subtotal", "tax2": "Tax", "total2": "Balance due", "credit2": "Credit note #",
    },
    "de": {
        "invoice": "RECHNUNG",
        "credit_note": "GUTSCHRIFT",
        "number_invoice": "Rechnungsnummer",
        "number_credit_note": "Gutschriftsnummer",
        "number_heading": "Rechnungs-Nr.",
        "issue_date": "Rechnungsdatum",
        "issue_heading": "Datum",
        "due_date": "Fällig am",
        "due_heading": "Zahlungsziel",
        "bill_to": "Rechnungsempfänger:",
        "issuer_heading": "Rechnungssteller",
        "client_heading": "Kunde",
        "subject": "Betreff",
        "items": ("Beschreibung", "Menge", "Einzelpreis", "Gesamt"),
        "net": "Nettobetrag",
        "tax": "MwSt.",
        "total": "Gesamtbetrag",
        "net_alt": "Summe netto",
        "tax_alt": "Umsatzsteuer",
        "total_alt": "Bruttobetrag",
        "footer": "Zahlbar innerhalb von 30 Tagen ohne Abzug per Überweisung.",
        "title": "Beratungsleistungen",
        "number2": "Rechnungs-Nr.", "issue2": "Rechnungsdatum", "due2": "Zahlungsziel", "client2": "Kunde",
        "net2": "Zwischensumme", "tax2": "zzgl. MwSt.", "total2": "Zu zahlender Betrag", "credit2": "Gutschrift Nr.",
    },
}
_LABELS["fr"].update({
    "number2": "N° de facture", "issue2": "Date d'émission", "due2": "À payer avant le", "client2": "Client",
    "net2": "Sous-total HT", "tax2": "Montant TVA", "total2": "Net à payer", "credit2": "N° d'avoir",
})


def format_amount(value: Decimal, currency: str, language: str, layout: int = 0) -> str:
    """How each layout prints money: ``1 000,00 €``, ``1.000,00 EUR``, ``€1,000.00``, ``EUR 1,000.00``."""
    sign = "-" if value < 0 else ""
    whole, cents = f"{abs(value):.2f}".split(".")
    groups = f"{int(whole):,}"
    if layout == 3:  # code first: "EUR 1 000,00", "EUR 1,000.00", "EUR 1.000,00"
        sep, dec = {"fr": (NBSP, ","), "de": (".", ",")}.get(language, (",", "."))
        return f"{currency} {sign}{groups.replace(',', sep)}{dec}{cents}"
    if language == "de":
        suffix = _SYMBOLS.get(currency, currency) if layout != 1 else currency
        return f"{sign}{groups.replace(',', '.')},{cents}{NBSP}{suffix}"
    if language == "fr":
        sep = NBSP if layout == 0 else "."
        text = f"{sign}{groups.replace(',', sep)},{cents}"
        suffix = _SYMBOLS.get(currency, currency) if layout == 0 else currency
        return f"{text}{NBSP}{suffix}"
    text = f"{groups}.{cents}"
    if layout == 0 and currency in _SYMBOLS:
        return f"{sign}{_SYMBOLS[currency]}{text}"
    return f"{sign}{currency} {text}"


def format_date(value: date, language: str, layout: int = 0) -> str:
    if layout == 1:
        return value.isoformat()
    if layout == 2:  # written out
        month = _MONTHS[language][value.month - 1]
        if language == "fr":
            return f"{value.day} {month} {value.year}"
        if language == "de":
            return f"{value.day}. {month} {value.year}"
        return f"{month} {value.day}, {value.year}"
    if language == "de":
        return value.strftime("%d.%m.%Y")
    if language == "fr":
        return value.strftime("%d/%m/%Y")
    return f"{_MONTHS['en'][value.month - 1]} {value.day}, {value.year}"


def _rate(net: Decimal, tax: Decimal, language: str) -> str:
    if not net:
        return ""
    rate = (tax / net * 100).quantize(Decimal("0.1")).normalize()
    text = f"{rate:f}".replace(".", ",") if language in ("fr", "de") else f"{rate:f}"
    return f" ({text}{NBSP}%)" if language == "fr" else f" ({text}%)"


def make_invoice_pdf(
    *,
    number: str = "FA-2026-0042",
    issuer: str = "Dupont Conseil SARL",
    client: str = "Acme SAS",
    issue_date: date = date(2026, 11, 23),
    due_date: date | None = date(2026, 12, 23),
    net: Decimal = Decimal("1000.00"),
    tax: Decimal = Decimal("200.00"),
    currency: str = "EUR",
    credit_note: bool = False,
    language: str = "fr",
    layout: int = 0,
    title: str | None = None,
    pages: int = 1,
) -> bytes:
    """A one-page (or ``pages``-page) invoice or credit note; the total printed is ``net + tax``."""
    if language not in _LABELS:
        raise ValueError(f"language must be one of {LANGUAGES}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    labels = _LABELS[language]
    title = title if title is not None else labels["title"]
    values = _Values(number, issuer, client, issue_date, due_date, net, tax, net + tax, currency, credit_note,
                     language, layout, title)
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)  # invariant: same input, same bytes
    canvas.setTitle(f"{labels['credit_note' if credit_note else 'invoice']} {number}")
    canvas.setAuthor(issuer)
    (_layout_letterhead, _layout_columns, _layout_key_values, _layout_capitals)[layout](canvas, labels, values)
    for page in range(2, pages + 1):
        canvas.showPage()
        canvas.setFont("Helvetica", 9)
        canvas.drawString(50, 800, f"{number} - page {page}/{pages}")
        canvas.drawString(50, 780, "Conditions générales de vente / Terms and conditions")
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


class _Values:
    def __init__(self, number: str, issuer: str, client: str, issue_date: date, due_date: date | None,
                 net: Decimal, tax: Decimal, total: Decimal, currency: str, credit_note: bool, language: str,
                 layout: int, title: str) -> None:
        self.number, self.issuer, self.client = number, issuer, client
        self.issue_date, self.due_date = issue_date, due_date
        self.net, self.tax, self.total, self.currency = net, tax, total, currency
        self.credit_note, self.language, self.layout, self.title = credit_note, language, layout, title

    def money(self, value: Decimal) -> str:
        return format_amount(value, self.currency, self.language, self.layout)

    def day(self, value: date) -> str:
        return format_date(value, self.language, self.layout)


def _issuer_address(canvas: Canvas, x: float, y: float, language: str) -> None:
    canvas.setFont("Helvetica", 9)
    lines = ["12 rue de la Paix", "75002 Paris", "SIRET 123 456 789 00012"] if language == "fr" else [
        "12 rue de la Paix", "75002 Paris, France", "Company no. 123 456 789"]
    for i, line in enumerate(lines):
        canvas.drawString(x, y - 12 * i, line)


def _client_address(canvas: Canvas, x: float, y: float) -> None:
    canvas.setFont("Helvetica", 10)
    for i, line in enumerate(["5 avenue des Lilas", "69001 Lyon"]):
        canvas.drawString(x, y - 13 * i, line)


def _layout_letterhead(canvas: Canvas, labels: dict, v: _Values) -> None:
    canvas.setFont("Helvetica-Bold", 14)
    canvas.drawString(50, 790, v.issuer)
    canvas.setFont("Helvetica-Bold", 20)
    canvas.drawRightString(545, 790, labels["credit_note" if v.credit_note else "invoice"])
    _issuer_address(canvas, 50, 772, v.language)

    canvas.setFont("Helvetica-Bold", 10)
    canvas.drawString(320, 700, labels["bill_to"])
    canvas.setFont("Helvetica", 11)
    canvas.drawString(320, 685, v.client)
    _client_address(canvas, 320, 671)

    canvas.setFont("Helvetica", 10)
    number_label = labels["number_credit_note" if v.credit_note else "number_invoice"]
    rows = [(number_label, v.number), (labels["issue_date"], v.day(v.issue_date))]
    if v.due_date is not None:
        rows.append((labels["due_date"], v.day(v.due_date)))
    rows.append((labels["subject"], v.title))
    for i, (label, value) in enumerate(rows):
        canvas.drawString(50, 610 - 15 * i, f"{label} : {value}" if v.language == "fr" else f"{label}: {value}")

    # The item table: its header repeats the "Total HT" label with no amount on that line.
    header_y = 520
    canvas.setFont("Helvetica-Bold", 9)
    columns = (50, 300, 360, 470)
    for x, text in zip(columns, labels["items"], strict=True):
        canvas.drawString(x, header_y, text)
    canvas.line(50, header_y - 4, 545, header_y - 4)
    canvas.setFont("Helvetica", 9)
    canvas.drawString(columns[0], header_y - 18, v.title)
    canvas.drawString(columns[1], header_y - 18, "1")
    canvas.drawString(columns[2], header_y - 18, v.money(v.net))
    canvas.drawString(columns[3], header_y - 18, v.money(v.net))

    canvas.setFont("Helvetica", 10)
    totals = [
        (labels["net"], v.net),
        (labels["tax"] + _rate(v.net, v.tax, v.language), v.tax),
        (labels["total"], v.total),
    ]
    for i, (label, amount) in enumerate(totals):
        y = 430 - 16 * i
        canvas.setFont("Helvetica-Bold" if i == 2 else "Helvetica", 10)
        canvas.drawString(360, y, label)
        canvas.drawRightString(545, y, v.money(amount))
    canvas.setFont("Helvetica", 8)
    canvas.drawString(50, 80, labels["footer"])
    canvas.drawString(50, 68, "IBAN FR76 3000 6000 0112 3456 7890 189 - BIC AGRIFRPP")


def _layout_columns(canvas: Canvas, labels: dict, v: _Values) -> None:
    canvas.setFont("Helvetica-Bold", 20)
    canvas.drawString(50, 790, labels["credit_note" if v.credit_note else "invoice"])

    canvas.setFont("Helvetica-Bold", 10)
    canvas.drawString(50, 740, labels["issuer_heading"])
    canvas.drawString(320, 740, labels["client_heading"])
    canvas.setFont("Helvetica", 11)
    canvas.drawString(50, 724, v.issuer)
    canvas.drawString(320, 724, v.client)
    _issuer_address(canvas, 50, 710, v.language)
    _client_address(canvas, 320, 710)

    headings = [labels["number_heading"], labels["issue_heading"]]
    cells = [v.number, v.day(v.issue_date)]
    if v.due_date is not None:
        headings.append(labels["due_heading"])
        cells.append(v.day(v.due_date))
    canvas.setFont("Helvetica-Bold", 10)
    for i, text in enumerate(headings):
        canvas.drawString(50 + 170 * i, 630, text)
    canvas.setFont("Helvetica", 10)
    for i, text in enumerate(cells):
        canvas.drawString(50 + 170 * i, 615, text)

    canvas.drawString(50, 580, f"{labels['subject']} : {v.title}" if v.language == "fr" else
                      f"{labels['subject']}: {v.title}")

    rows = [(labels["net_alt"], v.net), (labels["tax_alt"], v.tax), (labels["total_alt"], v.total)]
    for i, (label, amount) in enumerate(rows):
        canvas.setFont("Helvetica-Bold" if i == 2 else "Helvetica", 10)
        text = f"{label} : {v.money(amount)}" if v.language == "fr" else f"{label}: {v.money(amount)}"
        canvas.drawString(300, 500 - 16 * i, text)
    canvas.setFont("Helvetica", 8)
    canvas.drawString(50, 80, labels["footer"])


def _sep(v: _Values) -> str:
    return " : " if v.language == "fr" else ": "


def _layout_key_values(canvas: Canvas, labels: dict, v: _Values) -> None:
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(50, 795, v.issuer)
    _issuer_address(canvas, 50, 778, v.language)
    canvas.setFont("Helvetica-Bold", 22)
    canvas.drawString(330, 795, labels["credit_note" if v.credit_note else "invoice"])

    canvas.setFont("Helvetica", 10)
    rows = [(labels["credit2" if v.credit_note else "number2"], v.number), (labels["issue2"], v.day(v.issue_date))]
    if v.due_date is not None:
        rows.append((labels["due2"], v.day(v.due_date)))
    for i, (label, value) in enumerate(rows):
        canvas.drawString(330, 760 - 14 * i, label)
        canvas.drawString(450, 760 - 14 * i, value)

    canvas.setFont("Helvetica-Bold", 10)
    canvas.drawString(50, 680, labels["client2"])
    canvas.setFont("Helvetica", 10)
    canvas.drawString(50, 666, v.client)
    _client_address(canvas, 50, 652)
    canvas.drawString(50, 600, f"{labels['subject']}{_sep(v)}{v.title}")

    canvas.setFont("Helvetica-Bold", 9)
    columns = (50, 300, 380, 480)
    for x, text in zip(columns, labels["items"], strict=True):
        canvas.drawString(x, 540, text)
    canvas.setFont("Helvetica", 9)
    for x, text in zip(columns, (v.title, "1", v.money(v.net), v.money(v.net)), strict=True):
        canvas.drawString(x, 524, text)

    totals = [(labels["net2"], v.net), (labels["tax2"] + _rate(v.net, v.tax, v.language), v.tax),
              (labels["total2"], v.total)]
    for i, (label, amount) in enumerate(totals):
        canvas.setFont("Helvetica-Bold" if i == 2 else "Helvetica", 10)
        canvas.drawString(330, 460 - 16 * i, label)
        canvas.drawRightString(545, 460 - 16 * i, v.money(amount))
    canvas.setFont("Helvetica", 8)
    canvas.drawString(50, 80, labels["footer"])


def _layout_capitals(canvas: Canvas, labels: dict, v: _Values) -> None:
    canvas.setFont("Helvetica-Bold", 12)
    address = "12 rue de la Paix, 75002 Paris" if v.language != "de" else "Hauptstraße 5, 10115 Berlin"
    canvas.drawString(50, 800, f"{v.issuer} - {address}")
    canvas.setFont("Helvetica-Bold", 18)
    title = labels["credit_note" if v.credit_note else "invoice"]
    canvas.drawString(50, 760, title)

    canvas.setFont("Helvetica", 10)
    number_label = labels["number_credit_note" if v.credit_note else "number_invoice"]
    rows = [(number_label.upper(), v.number), (labels["issue_date"].upper(), v.day(v.issue_date))]
    if v.due_date is not None:
        rows.append((labels["due_date"].upper(), v.day(v.due_date)))
    rows.append((labels["client_heading"].upper(), v.client))
    rows.append((labels["subject"].upper(), v.title))
    for i, (label, value) in enumerate(rows):
        canvas.drawString(50, 720 - 15 * i, f"{label}{_sep(v)}{value}")

    totals = [(labels["net_alt"], v.net), (labels["tax_alt"], v.tax), (labels["total_alt"], v.total)]
    for i, (label, amount) in enumerate(totals):
        canvas.setFont("Helvetica-Bold" if i == 2 else "Helvetica", 10)
        canvas.drawString(50, 560 - 16 * i, f"{label.upper()}{_sep(v)}{v.money(amount)}")
    canvas.setFont("Helvetica", 8)
    canvas.drawString(50, 80, labels["footer"])


def make_image(width: int = 400, height: int = 300) -> bytes:
    """A PNG large enough not to be taken for a signature logo (a photographed receipt, say)."""
    import random

    from PIL import Image

    rng = random.Random(width * height)
    image = Image.new("RGB", (width, height))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(width * height)])
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_email(
    to: str,
    pdf_bytes: bytes | None,
    filename: str = "facture.pdf",
    subject: str = "Facture FA-2026-0042",
    sender: str = "Comptabilité <compta@dupont-conseil.example>",
    content_type: str = "application/pdf",
    body: str = "Bonjour,\n\nVeuillez trouver ci-joint notre facture.\n\nCordialement,\n",
) -> bytes:
    """A real MIME message with CRLF line ends: a text body and, unless ``pdf_bytes`` is None, one attachment.

    ``content_type`` lets a test send the PDF the way many mailers do (``application/octet-stream``).
    Non-ASCII file names are encoded the standard way (RFC 2231).
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain="dupont-conseil.example")
    message.set_content(body)
    if pdf_bytes is not None:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(pdf_bytes, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes(policy=policy.SMTP)  # CRLF line ends, as on the wire (smtplib sends bytes as is)


def render_png(pdf_bytes: bytes, page: int = 0, dpi: int = 200) -> bytes:
    """A page of a PDF as a PNG, as a scanner or a phone would give it (grey, no text layer)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf_bytes)
    try:
        image = document[page].render(scale=dpi / 72, grayscale=True).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_scanned_pdf(pdf_bytes: bytes, copies: int = 1, dpi: int = 200) -> bytes:
    """A PDF of images only (a scan) showing the first page of ``pdf_bytes``, ``copies`` pages long."""
    from reportlab.lib.utils import ImageReader

    png = render_png(pdf_bytes, dpi=dpi)
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    width, height = A4
    for _ in range(copies):
        canvas.drawImage(ImageReader(io.BytesIO(png)), 0, 0, width, height)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def concat_pdfs(pdfs: list[bytes]) -> bytes:
    """One PDF holding the pages of ``pdfs`` in order (a batch of invoices scanned or printed together)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for pdf in pdfs:
        for page in PdfReader(io.BytesIO(pdf)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_batch_pdf(specs: list[dict]) -> tuple[bytes, list[list[int]]]:
    """Several invoices in one PDF: one ``make_invoice_pdf(**spec)`` per spec (``pages=2`` adds a
    "page 2/2" page); returns the PDF and the expected page groups."""
    pdfs = [make_invoice_pdf(**spec) for spec in specs]
    groups, start = [], 0
    for spec in specs:
        count = int(spec.get("pages", 1))
        groups.append(list(range(start, start + count)))
        start += count
    return concat_pdfs(pdfs), groups


def encrypt_pdf(pdf_bytes: bytes, user_password: str = "", owner_password: str = "owner") -> bytes:  # noqa: S107
    """``pdf_bytes`` encrypted with pypdf (AES-256): a user password is needed to open it unless empty."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes)))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf() -> bytes:
    """Starts like a PDF (``%PDF-``), so that every mailer and sniffer calls it one, but is garbage."""
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R" + bytes(range(256)) * 8


__all__ = ["LANGUAGES", "LAYOUTS", "concat_pdfs", "corrupt_pdf", "encrypt_pdf", "format_amount", "format_date",
           "make_batch_pdf", "make_email", "make_image", "make_invoice_pdf", "make_scanned_pdf", "render_png"]
