"""The labels the generic extractor looks for, per field (French, English, German, Spanish, Italian and Dutch;
the few of a Chinese VAT invoice).

Patterns are regular expressions on *folded* text (lower case, no accents, straight quotes, see
``values.fold``) and must match at the start of a cell (a run of text separated from the next by two or
more spaces in a layout-preserving extraction). Within a field, stronger labels come first: the first
label that yields a readable value wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Label:
    pattern: str
    confidence: float = 0.9
    below: bool = True  # the value may be in the cell under the label (column headings)

    @cached_property
    def regex(self) -> re.Pattern[str]:  # cached on the instance: looked up ~10^4 times per document
        return _compiled(self.pattern)


_cache: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    if pattern not in _cache:
        _cache[pattern] = re.compile(rf"(?:{pattern})(?![a-z0-9])")
    return _cache[pattern]


_NO = r"(?:n°|no\b\.?|nr\b\.?|num\b\.?|numero|number|#)"

# Labels whose values are NOT ours: consumed first so that "N° client", "N° TVA" or "Date de livraison" are
# never read as the invoice number, the tax or the issue date.
IGNORE = [
    Label(r"date (?:de |d')(?:livraison|commande|prestation|paiement|reglement|virement|execution|expedition"
          r"|operation|vente)"),
    Label(r"(?:delivery|order|shipping|shipment|payment|service|supply|sale|ship|print|printed) date"),
    Label(r"date of (?:delivery|order|supply|service|sale|payment)"),
    Label(r"date (?:de )?(?:debut|fin)|(?:start|end) date|periode|period|du \d|(?:start|end) of (?:service|period)"
          r"|service period|billing period|(?:service|billing) (?:from|to)|zeitraum|periodo|periode facture"),
    Label(rf"{_NO}\s*(?:de |du |d')?(?:la |l')?(?:commande|bon de commande|client|tva|siret|siren|tel\b|telephone"
          r"|compte|contrat|dossier|rcs|order|customer|account|vat|tax|po\b|purchase order|contract|phone|bl\b"
          r"|bon de livraison|livraison|devis|quote|lot|tva intra\w*|identification|fiscal|eori|ape|naf)"),
    Label(r"(?:votre|your|notre|our) ref(?:erence)?\.?"),
    Label(r"(?:code|ref(?:erence)?\.?|id(?:entifiant)?)\s*(?:client|customer|commande|order)"),
    Label(rf"(?:customer|client|account|order|vat|tax|purchase order|po|commande|contrat|contract)\s*"
          rf"(?:{_NO}|id\b|code|ref(?:erence)?|identification|reg(?:istration)?)"),
    Label(r"(?:tva|vat|tax)\s*(?:intra(?:communautaire|com)?\.?|id\b|reg(?:istration)?\.?|number|n°|no\b\.?)"),
    Label(r"(?:siret|siren|rcs|naf|ape|iban|bic|swift|capital|tel\b|telephone|phone|fax|e-?mail|web|site|rib"
          r"|code banque|code guichet|banque|bank)"),
    Label(r"(?:bon de commande|purchase order|commande|order|devis|quote|quotation|contrat|contract)\b"),
    Label(r"(?:date de |date d'|n° de |n° d'|numero de |numero d')?(?:la )?(?:facture|avoir) (?:associee|d'origine"
          r"|initiale|rectifiee|precedente)|(?:original|related|corrected|previous) invoice(?: number| date| no\.?)?"),
    Label(r"ship(?:ped)? (?:to|from)|deliver(?:ed)? to|livre a|livrer a|adresse de livraison|lieu de livraison"
          r"|remit to|return address|lieferanschrift"
          r"|shipping address|delivery address"),
    # German: tax and company ids, customer/order numbers, delivery and service dates, bank details.
    Label(r"(?:ust|umsatzsteuer)[-\s]?(?:id(?:ent)?(?:\.|-)?(?:nr|nummer)?\.?|identifikationsnummer)|st(?:euer)?[-\s]?nr\.?"
          r"|steuernummer|ust-?idnr\.?|vat[-\s]?id|handelsregister|amtsgericht|registergericht|hrb\b|geschaftsfuhrer"
          r"|kunden[-\s]?(?:nr|nummer)\.?|kundennummer|auftrags[-\s]?(?:nr|nummer)\.?|bestell[-\s]?(?:nr|nummer)\.?"
          r"|lieferschein[-\s]?(?:nr|nummer)?\.?|liefer(?:datum|schein|anschrift|adresse)|leistungs(?:datum|zeitraum)"
          r"|bestelldatum|auftragsdatum|bankverbindung|kontoinhaber|bankleitzahl|blz|konto(?:nummer|nr\.?)?"
          r"|telefon|tel\.|e-?mail|ansprechpartner|seite \d"),
    # Page numbers and other numbers that are not the invoice's (any language).
    Label(r"(?:page|pagina|pag\.|seite|blad|pagina)\s*:?\s*\d+\s*(?:/|of|de|sur|von|di|van)"
          r"|account (?:no\.?|nr\.?|number|#)|(?:bsb|routing|sort code|swift|kvk|kvk-nummer|btw|btw-nummer|cuit"
          r"|iibb|c\.?a\.?e\.?|abn|acn|gst|nif|cif|p\.? ?iva|partita iva|codice fiscale|rfc)\b"
          r"|(?:waybill|tracking|booking|job) (?:no\.?|nr\.?|number|#)|inicio de actividad"
          r"|fecha (?:vto|de vto)\.?"),
    # Chinese VAT invoices: the invoice CODE (not its number), the check code, the machine and taxpayer ids.
    Label(r"发票代码|校验码|机器编号|纳税人识别号|开户行及账号|地址、?电话"),
]

DOC_NUMBER = [
    Label(rf"(?:facture d'avoir|facture|avoir|note de credit|invoice|credit note|credit memo|tax invoice|factura"
          rf"|fattura|factuur|bill|receipt|recu|ticket)\s*:?\s*{_NO}", 0.95),
    Label(r"factuur(?:nummer|nr\.?)|numero (?:de )?(?:la )?(?:factura|fattura|ticket|recibo)|invoice number"
          r"|n(?:°|o\.?|um\.?|umero) (?:de )?factura|fattura n\.?|numero documento|invoice id|bill number"
          r"|statement number|receipt number", 0.95),
    Label(r"(?:[\w-]+ )?for invoice|(?:payment|zahlung|paiement) (?:for|fur|de la facture)", 0.7, below=False),
    Label(r"(?:rechnungs|gutschrifts|beleg)[-\s]?(?:nummer|nr\.?)|(?:rechnung|gutschrift|beleg)\s*(?:nr\.?|nummer|#)",
          0.95),
    Label(rf"{_NO}\s*(?:de |d'|of )?(?:la |l'|the )?(?:facture|avoir|invoice|credit note|note de credit)", 0.95),
    Label(r"(?:invoice|facture|avoir|credit note)\s*(?:id|ref(?:erence)?\.?)", 0.85),
    Label(r"ref(?:erence)?\.?\s*(?:de (?:la |l')?)?(?:facture|avoir|invoice)", 0.85),
    Label(r"(?:facture|invoice|avoir|credit note|tax invoice|rechnung|gutschrift|factura|fattura|factuur"
          r"|(?:vendor |supplier )?bill|shipping invoice|commercial invoice)", 0.6,
          below=False),  # "FACTURE FA-2026-0042"
    Label(rf"{_NO}|reference|ref\.?", 0.6),
    # Chinese "发票号码" (invoice number); OCR misreads its second ideograph often ("发标号码").
    Label(r"发.号码", 0.9),
]

DUE_DATE = [
    Label(r"date d'echeance|date limite de (?:paiement|reglement)|date de paiement prevue"
          r"|a (?:payer|regler) (?:avant le|avant|au plus tard le|le)|payable (?:avant le|au plus tard le|le)"
          r"|paiement (?:avant le|au plus tard le)|echeance|(?:payment )?due date|date due|due by|due on"
          r"|payment due(?: date| by| on)?|payable (?:by|on)|(?:please )?pay by|(?:invoice|payment) due date"
          r"|(?:total |total amount |amount |balance )?due (?:by|on)|vervaldatum|vervaldag|uiterste betaaldatum"
          r"|fecha de vencimiento(?: de pago)?|vencimiento|data (?:di )?scadenza|scadenza|date limite"
          r"|falligkeit(?:sdatum)?|faelligkeit(?:sdatum)?|fallig (?:am|bis|zum)|faellig (?:am|bis|zum)"
          r"|zahlbar (?:bis|am)"
          r"|zahlungsziel|zahlungsfrist|zu zahlen bis", 0.9),
    Label(r"fallig|faellig", 0.75),
    Label(r"due", 0.7),
]

ISSUE_DATE = [
    Label(r"date (?:de (?:la )?facture|de facturation|d'emission|de l'avoir|d'edition|de la facture)"
          r"|facture (?:du|emise le)|avoir du|emise? le|fait le|invoice date|date of (?:invoice|issue)"
          r"|issue(?:d)? (?:date|on)|credit note date|billing date|invoice dated|dated"
          r"|rechnungsdatum|gutschriftsdatum|ausstellungsdatum|belegdatum|datum der rechnung"
          r"|factuurdatum|fecha de (?:emision|factura|expedicion)|data (?:della )?fattura|data (?:di )?emissione"
          r"|(?:bill|statement) (?:close )?date|statement (?:generated|issued|dated) on|.{0,20} statement generated on"
          r"|date of bill|billing date|bill date|开.日期", 0.9),
    Label(r"date|datum|fecha|data", 0.75),
]

# The total with tax first; what remains to pay (after a deposit) only when no total is printed.
AMOUNT = [
    Label(r"(?:total|montant)\s*(?:ttc|t\.t\.c\.?|toutes taxes comprises|tva comprise)|grand total"
          r"|total amount|invoice total|montant total|total \(?incl(?:\.|uding|usive)?\s*(?:vat|tax(?:es)?)\)?"
          r"|total (?:avec|y compris) (?:la )?tva|total (?:facture|de la facture)"
          r"|gesamtbetrag(?: brutto)?|bruttobetrag|rechnungsbetrag|gesamtsumme(?: brutto)?|summe brutto|endbetrag"
          r"|gesamt brutto|bruttosumme|brutto gesamt|totaal(?: incl\.?(?: btw)?| te betalen)?|te betalen"
          r"|importe total|total factura|totale(?: fattura| documento| da pagare)?|invoice amount"
          r"|total avoir|montant total ttc|total current charges"
          r"|\(\s*小写\s*\)|价税合计\s*\(\s*小写\s*\)", 0.9),  # Chinese: tax included, "in figures"
    Label(r"net a payer|total a payer|montant a payer|reste a payer|solde a payer|montant du|total du"
          r"|total net a payer|amount due|total due|balance due|due payable|amount payable|total payable"
          r"|total to pay|zu zahlen(?:der betrag)?|zahlbetrag|offener betrag|total amount due|a payer(?: \(?ttc\)?)?"
          r"|amount due on|netto te betalen|saldo (?:a pagar|da pagare|te betalen)", 0.85),
    Label(r"total(?!\s*(?:ht|h\.t|hors|tva|t\.v\.a|vat|tax|taxes|excl|excluding|net|sans|qte|quantite|quantity"
          r"|items?|articles?|lignes?|remise|discount|pages?|poids|weight|kg|pieces|charges and)\b)", 0.7, below=False),
    # Last resort: "Amount A$ 109.88", a "Charges" column of a one-row header table.
    Label(r"amount|charges|montant|importe|betrag|bedrag|importo", 0.55),
]

NET_AMOUNT = [
    Label(r"(?:total|montant|sous-total|sous total)\s*(?:ht|h\.t\.?|hors tax(?:es)?|hors tva|net ht)\b"
          r"|total net ht|base ht|sub-?total|sub total|sous-?total|sous total"
          r"|total \(?excl(?:\.|uding|usive)?\s*(?:vat|tax(?:es)?)\)?|net amount|total net|net total"
          r"|total before tax(?:es)?|amount before tax(?:es)?|montant net"
          r"|nettobetrag|netto(?:summe|gesamt)|summe netto|gesamt netto|gesamtbetrag netto"
          r"|zwischensumme|warenwert|subtotaal|totaal excl\.?(?: btw)?|imponibile|base imponible|neto gravado"
          r"|importe neto|substotal less discount|subtotal less discount|合\s*计", 0.9),
    Label(r"netto|neto", 0.8, below=False),
]

TAX_AMOUNT = [
    Label(r"total\s*(?:de (?:la )?)?(?:tva|t\.v\.a\.?|tax(?:es)?|vat)|(?:tva|vat|tax) total"
          r"|montant total (?:de (?:la )?)?tva|total sales tax"
          r"|(?:summe|gesamt) (?:mwst|ust)\.?|mehrwertsteuer(?:betrag)?|umsatzsteuer(?:betrag)?"
          r"|mwst[-\s]?betrag|ust[-\s]?betrag|totaal btw|btw bedrag|iva total|total iva|importe iva|totale iva"
          r"|totale imposta|imposta (?:iva|totale)|taxe sur la valeur ajoutee|value added tax"
          r"|impuesto al valor agregado|omzetbelasting",
          0.9),
    Label(r"montant\s*(?:de (?:la )?)?(?:tva|t\.v\.a\.?|tax(?:es)?)|vat amount|tax amount|sales tax", 0.85),
    Label(r"tva|t\.v\.a\.?|vat|tax|taxes|btw|iva|sales tax"
          r"|(?:zzgl\.?|inkl\.?|enthaltene) (?:\d+(?:[.,]\d+)? ?% )?(?:mwst|ust)\.?|mwst\.?|ust\.?",
          0.8, below=False),  # below a "TVA" heading: a line's rate or tax
]

CLIENT = [
    Label(r"factures? a l'ordre de|factures? a\s*(?::|$)|facturer a|adresse de facturation|destinataire"
          r"|bill(?:ed)? to(?: address)?|billing address|invoice address|invoice(?:d)? to|sold to"
          r"|(?:customer|client)(?=\s*:|\s*$)|a l'attention de|attn\.?"
          r"|rechnungsempfanger|rechnungsempfaenger|rechnungsadresse|rechnung an"
          r"|empfanger|kunde|auftraggeber|nom du client|invoice for|factuur aan|facturado a|cliente|fatturato a"
          r"|intestatario|destinatario|klant|payable by|statement for|pour\s*:|to\s*:|sr\.?\s*\(?s?\)?\s*:"
          r"|senor(?:es)?\s*:|bill to|billed to", 0.85),
    Label(r"to(?=\s*:?$)", 0.6),  # "FROM ... TO" headings side by side, the names underneath
]

ISSUER = [
    Label(r"emetteur|vendeur|fournisseur|prestataire|emis par|seller|supplier|issued by|sold by|vendor|biller"
          r"|from|rechnungssteller|lieferant|verkaufer|absender|leistungserbringer|de\s*:|bedrijf|empresa\s*:"
          r"|proveedor|emisor|fornitore|leverancier|account / payable to|payable to", 0.85),
]

TITLE = [
    Label(r"objet|subject|object|intitule|concerne|libelle|betreff", 0.8),
]

# Cells that are document titles, never a company name.
DOC_TITLES = re.compile(r"^(?:facture|avoir|invoice|credit note|credit memo|tax invoice|note de credit|devis"
                        r"|quote|receipt|recu|facture d'avoir|duplicata|copie|copy|original|rechnung|gutschrift"
                        r"|rechnungskorrektur|stornorechnung|angebot|quittung|factura|fattura|factuur|bill|statement"
                        r"|monthly statement|ticket|summary|page|pagina|original|duplicado|triplicado)\b")

# Table headings, totals and other words that are never a party's name ("Qty" was once read as the client).
NOT_A_NAME = re.compile(r"(?:qty|qte|quantite|quantity|menge|anzahl|cantidad|quantita|aantal|description|designation"
                        r"|beschreibung|bezeichnung|descripcion|descrizione|omschrijving|unit price|price|prix|preis"
                        r"|amount|montant|betrag|total|subtotal|sous-total|balance|summary|buyer|seller|to|from|date"
                        r"|page|item|items|article|articles|reference|ref|hours|rate|tax|vat|tva|for|de|a|pour)\.?")

ALL_LABELS = [IGNORE, DOC_NUMBER, DUE_DATE, ISSUE_DATE, AMOUNT, NET_AMOUNT, TAX_AMOUNT, CLIENT, ISSUER, TITLE]


def _alternation(labels: list[Label]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{label.regex.pattern})" for label in labels))


# One pattern per test instead of one per label: these run on every cell of every document.
ANY_LABEL = _alternation([label for group in ALL_LABELS for label in group])
ANY_IGNORED = _alternation(IGNORE)


def starts_with_label(folded: str) -> bool:
    """True when ``folded`` begins with any known label (such a cell is a heading, not a value)."""
    return ANY_LABEL.match(folded) is not None


def is_label(folded: str) -> bool:
    """True when ``folded`` is nothing but a known label."""
    return ANY_LABEL.fullmatch(folded) is not None
