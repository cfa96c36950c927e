"""Standard charts of accounts (seeds) and the journals every tenant gets.

PCG (France, Plan comptable général, classes 4/5/6/7 as a small business uses them), SKR03 and SKR04
(DATEV's standard charts, Germany). A seed is copied into the tenant's own chart on first use; from then on
the tenant's chart is edited (add, rename, deactivate) and the seed is only read for the roles below
(which account is the suppliers' control account, which VAT account goes with which rate...).

VAT accounts bound to one rate carry it (``vat_rate``): the ledger refuses a VAT line whose rate is not its
account's. SKR's accounts are the DATEV names; the selection is a best effort of the most used ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

D = Decimal


@dataclass(frozen=True)
class AccountSeed:
    number: str
    label: str
    is_vat: bool = False
    vat_rate: Decimal | None = None


@dataclass(frozen=True)
class Chart:
    """A standard chart and the roles its accounts play when entries are built."""

    name: str
    accounts: tuple[AccountSeed, ...]
    receivable: str  # control account of clients (411 / Forderungen)
    payable: str  # control account of suppliers (401 / Verbindlichkeiten)
    bank: str
    sales: str  # default revenue account
    purchases: str  # default expense account
    sales_exempt: str  # intra-EU deliveries and exports, VAT 0 %
    vat_collected: dict[Decimal, str]  # rate -> account
    vat_collected_any: str  # a rate not in the map
    vat_deductible: dict[Decimal, str]
    vat_deductible_any: str
    reverse_charge_due: str  # autoliquidation: VAT due on purchases (intra-EU, reverse charge)
    reverse_charge_deductible: str
    standard_rate: Decimal
    rates: tuple[Decimal, ...] = field(default=())
    bank_fees: str = ""
    suspense: str = ""  # where an unidentified amount waits (471 / 1590)
    # What a supplier was paid less than its invoice (a write-off of the balance) is a gain: an income
    # account, not a credit to the bank fees expense (758 / sonstige betriebliche Erträge).
    payables_gain: str = ""

    def vat_account(self, collected: bool, rate: Decimal) -> str:
        table, fallback = ((self.vat_collected, self.vat_collected_any) if collected
                           else (self.vat_deductible, self.vat_deductible_any))
        return table.get(D(rate).quantize(D("0.01")), fallback)


def _vat(number: str, label: str, rate: str | None = None) -> AccountSeed:
    return AccountSeed(number, label, is_vat=True, vat_rate=None if rate is None else D(rate))


PCG = Chart(
    name="pcg",
    accounts=(
        AccountSeed("101000", "Capital"),
        AccountSeed("401000", "Fournisseurs"),
        AccountSeed("404000", "Fournisseurs d'immobilisations"),
        AccountSeed("411000", "Clients"),
        AccountSeed("421000", "Personnel - rémunérations dues"),
        _vat("445200", "TVA due intracommunautaire (autoliquidation)"),
        _vat("445620", "TVA déductible sur immobilisations"),
        _vat("445660", "TVA déductible sur autres biens et services"),
        _vat("445662", "TVA déductible intracommunautaire (autoliquidation)"),
        _vat("445710", "TVA collectée"),
        _vat("445711", "TVA collectée 20 %", "20"),
        _vat("445712", "TVA collectée 10 %", "10"),
        _vat("445713", "TVA collectée 5,5 %", "5.5"),
        _vat("445714", "TVA collectée 2,1 %", "2.1"),
        AccountSeed("445510", "TVA à décaisser"),
        AccountSeed("471000", "Compte d'attente"),
        AccountSeed("512000", "Banque"),
        AccountSeed("530000", "Caisse"),
        AccountSeed("580000", "Virements internes"),
        AccountSeed("601000", "Achats stockés - matières premières"),
        AccountSeed("604000", "Achats d'études et prestations de services"),
        AccountSeed("606100", "Fournitures non stockables (eau, énergie)"),
        AccountSeed("606400", "Fournitures administratives"),
        AccountSeed("607000", "Achats de marchandises"),
        AccountSeed("611000", "Sous-traitance générale"),
        AccountSeed("613200", "Locations immobilières"),
        AccountSeed("615000", "Entretien et réparations"),
        AccountSeed("616000", "Primes d'assurances"),
        AccountSeed("622600", "Honoraires"),
        AccountSeed("623000", "Publicité, publications, relations publiques"),
        AccountSeed("625100", "Voyages et déplacements"),
        AccountSeed("626000", "Frais postaux et de télécommunications"),
        AccountSeed("627000", "Services bancaires et assimilés"),
        AccountSeed("635000", "Autres impôts, taxes et versements assimilés"),
        AccountSeed("658000", "Charges diverses de gestion courante"),
        AccountSeed("665000", "Escomptes accordés"),
        AccountSeed("666000", "Pertes de change"),
        AccountSeed("701000", "Ventes de produits finis"),
        AccountSeed("706000", "Prestations de services"),
        AccountSeed("707000", "Ventes de marchandises"),
        AccountSeed("707100", "Ventes intracommunautaires et exportations (exonérées)"),
        AccountSeed("708000", "Produits des activités annexes"),
        AccountSeed("709000", "Rabais, remises et ristournes accordés"),
        AccountSeed("758000", "Produits divers de gestion courante"),
        AccountSeed("765000", "Escomptes obtenus"),
        AccountSeed("766000", "Gains de change"),
    ),
    receivable="411000",
    payable="401000",
    bank="512000",
    sales="706000",
    purchases="604000",
    sales_exempt="707100",
    vat_collected={D("20.00"): "445711", D("10.00"): "445712", D("5.50"): "445713", D("2.10"): "445714"},
    vat_collected_any="445710",
    vat_deductible={},
    vat_deductible_any="445660",
    reverse_charge_due="445200",
    reverse_charge_deductible="445662",
    standard_rate=D("20"),
    rates=(D("20"), D("10"), D("5.5"), D("2.1"), D("0")),
    bank_fees="627000",
    suspense="471000",
    payables_gain="758000",
)

SKR03 = Chart(
    name="skr03",
    accounts=(
        AccountSeed("1000", "Kasse"),
        AccountSeed("1200", "Bank"),
        AccountSeed("1360", "Geldtransit"),
        AccountSeed("1400", "Forderungen aus Lieferungen und Leistungen"),
        _vat("1571", "Abziehbare Vorsteuer 7 %", "7"),
        _vat("1576", "Abziehbare Vorsteuer 19 %", "19"),
        _vat("1570", "Abziehbare Vorsteuer"),
        _vat("1577", "Abziehbare Vorsteuer nach § 13b UStG 19 %", "19"),
        AccountSeed("1590", "Durchlaufende Posten"),
        AccountSeed("1600", "Verbindlichkeiten aus Lieferungen und Leistungen"),
        AccountSeed("2700", "Sonstige Erträge"),
        _vat("1770", "Umsatzsteuer"),
        _vat("1771", "Umsatzsteuer 7 %", "7"),
        _vat("1776", "Umsatzsteuer 19 %", "19"),
        _vat("1787", "Umsatzsteuer nach § 13b UStG 19 %", "19"),
        AccountSeed("3200", "Wareneingang"),
        AccountSeed("4210", "Miete"),
        AccountSeed("4360", "Versicherungen"),
        AccountSeed("4600", "Werbekosten"),
        AccountSeed("4900", "Sonstige betriebliche Aufwendungen"),
        AccountSeed("4920", "Telefon"),
        AccountSeed("4930", "Bürobedarf"),
        AccountSeed("4950", "Rechts- und Beratungskosten"),
        AccountSeed("4970", "Nebenkosten des Geldverkehrs"),
        AccountSeed("8120", "Steuerfreie Umsätze § 4 Nr. 1a UStG"),
        AccountSeed("8125", "Steuerfreie innergemeinschaftliche Lieferungen § 4 Nr. 1b UStG"),
        AccountSeed("8200", "Erlöse"),
    ),
    receivable="1400",
    payable="1600",
    bank="1200",
    sales="8200",
    purchases="3200",
    sales_exempt="8125",
    vat_collected={D("19.00"): "1776", D("7.00"): "1771"},
    vat_collected_any="1770",
    vat_deductible={D("19.00"): "1576", D("7.00"): "1571"},
    vat_deductible_any="1570",
    reverse_charge_due="1787",
    reverse_charge_deductible="1577",
    standard_rate=D("19"),
    rates=(D("19"), D("7"), D("0")),
    bank_fees="4970",
    suspense="1590",
    payables_gain="2700",
)

SKR04 = Chart(
    name="skr04",
    accounts=(
        AccountSeed("1200", "Forderungen aus Lieferungen und Leistungen"),
        _vat("1400", "Abziehbare Vorsteuer"),
        _vat("1401", "Abziehbare Vorsteuer 7 %", "7"),
        _vat("1406", "Abziehbare Vorsteuer 19 %", "19"),
        _vat("1407", "Abziehbare Vorsteuer nach § 13b UStG 19 %", "19"),
        AccountSeed("1370", "Durchlaufende Posten"),
        AccountSeed("1460", "Geldtransit"),
        AccountSeed("1600", "Kasse"),
        AccountSeed("1800", "Bank"),
        AccountSeed("3300", "Verbindlichkeiten aus Lieferungen und Leistungen"),
        _vat("3800", "Umsatzsteuer"),
        _vat("3801", "Umsatzsteuer 7 %", "7"),
        _vat("3806", "Umsatzsteuer 19 %", "19"),
        _vat("3837", "Umsatzsteuer nach § 13b UStG 19 %", "19"),
        AccountSeed("4100", "Steuerfreie Umsätze § 4 Nr. 8 ff. UStG"),
        AccountSeed("4125", "Steuerfreie innergemeinschaftliche Lieferungen § 4 Nr. 1b UStG"),
        AccountSeed("4200", "Erlöse"),
        AccountSeed("4830", "Sonstige betriebliche Erträge"),
        AccountSeed("5200", "Wareneingang"),
        AccountSeed("6300", "Sonstige betriebliche Aufwendungen"),
        AccountSeed("6310", "Miete"),
        AccountSeed("6400", "Versicherungen"),
        AccountSeed("6600", "Werbekosten"),
        AccountSeed("6805", "Telefon"),
        AccountSeed("6815", "Bürobedarf"),
        AccountSeed("6825", "Rechts- und Beratungskosten"),
        AccountSeed("6855", "Nebenkosten des Geldverkehrs"),
    ),
    receivable="1200",
    payable="3300",
    bank="1800",
    sales="4200",
    purchases="5200",
    sales_exempt="4125",
    vat_collected={D("19.00"): "3806", D("7.00"): "3801"},
    vat_collected_any="3800",
    vat_deductible={D("19.00"): "1406", D("7.00"): "1401"},
    vat_deductible_any="1400",
    reverse_charge_due="3837",
    reverse_charge_deductible="1407",
    standard_rate=D("19"),
    rates=(D("19"), D("7"), D("0")),
    bank_fees="6855",
    suspense="1370",
    payables_gain="4830",
)

CHARTS = {chart.name: chart for chart in (PCG, SKR03, SKR04)}

# Journals every tenant gets (code, label, kind): purchases, sales, bank, miscellaneous.
JOURNALS = (
    ("AC", "Achats", "purchases"),
    ("VT", "Ventes", "sales"),
    ("BQ", "Banque", "bank"),
    ("OD", "Opérations diverses", "misc"),
)
PURCHASES, SALES, BANK, MISC = "AC", "VT", "BQ", "OD"


def chart_named(name: str | None) -> Chart:
    return CHARTS.get((name or "pcg").lower(), PCG)
