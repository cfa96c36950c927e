"""General reading rules of the generic extractor (issue 13), each on a small layout text that no corpus file
holds as such: a rule must work on any invoice written that way, not on one file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from core.extraction.generic import extract_fields
from core.extraction.values import find_dates, find_money, reads_month_first


def test_month_first_is_decided_per_document() -> None:
    # A second number over 12 anywhere says month first; the ambiguous dates then follow it.
    text = "Invoice #A-1\nInvoice Date:   10/18/2026\nDue Date:   11/02/2026\nTotal   $120.00\n"
    fields = extract_fields(text).fields
    assert (fields["issue_date"], fields["due_date"]) == (date(2026, 10, 18), date(2026, 11, 2))
    # A first number over 12 says day first.
    assert not reads_month_first("Date 18/10/2026, due 02/11/2026")
    # Nothing decides: dollars and a US address read month first, anything else day first.
    us = "Acme Inc.\nRedmond, WA 98052\nInvoice No 7\nDate: 5/2/2017\nTotal $10.00\n"
    assert extract_fields(us).fields["issue_date"] == date(2017, 5, 2)
    assert extract_fields(us.replace("Redmond, WA 98052", "Lyon")).fields["issue_date"] == date(2017, 2, 5)


def test_dates_in_the_six_languages_and_other_forms() -> None:
    cases = {
        "1 oktober 2023": date(2023, 10, 1), "2 mars 2022": date(2022, 3, 2), "8th December 2021": date(2021, 12, 8),
        "27 de marzo de 2011": date(2011, 3, 27), "3 settembre 2024": date(2024, 9, 3),
        "12-Nov-2021": date(2021, 11, 12), "2018年03月23日": date(2018, 3, 23), "Oct 31, 2023": date(2023, 10, 31),
        "01/01/1970": date(1970, 1, 1),
    }
    for written, expected in cases.items():
        assert [d.value for d in find_dates(written)] == [expected], written


def test_a_due_date_and_a_total_sharing_one_label_cell() -> None:
    text = " INVOICE NO. 98765432                          1/1/2000\n" \
           "                    SUBTOTAL                   109.90\n" \
           "                    TOTAL DUE BY 2/2/2000      125.89\n"
    fields = extract_fields(text).fields
    assert fields["number"] == "98765432"
    assert fields["issue_date"] == date(2000, 1, 1)  # no label: the date beside the number
    assert fields["due_date"] == date(2000, 2, 2)
    assert fields["amount"] == Decimal("125.89")


def test_a_value_right_aligned_under_its_heading() -> None:
    text = ("Invoice Number   Invoice Date   Invoice Due Date    Charges             VAT ID\n"
            "3427435437       5/2/2017       6/1/2017                      $1002.00 RT\n")
    fields = extract_fields(text).fields
    assert fields["number"] == "3427435437"
    assert fields["amount"] == Decimal("1002.00")
    assert fields["due_date"] in (date(2017, 6, 1), date(2017, 1, 6))  # no US address: unsure, but found


def test_the_addressee_under_a_window_envelope_return_address() -> None:
    text = ("                                 Acme Ltd.\n"
            "Acme Ltd. • 42 Milky Way • 1234 Faraway              Date:     24 Sep 2024\n"
            "Globex Corp.\n"
            "142 Scorpio Drive\n\n"
            "                 Invoice No. 1234\n"
            "Total                              1,200.00 EUR\n")
    fields = extract_fields(text).fields
    assert fields["client"] == "Globex Corp."
    assert fields["issue_date"] == date(2024, 9, 24)


def test_labels_and_headings_are_never_party_names() -> None:
    text = (" TO:                               FOR:\n"
            " Gaurav Cheema                     Consultation services\n"
            " INVOICE: 00012\n"
            " TOTAL      1125.00\n")
    fields = extract_fields(text).fields
    assert fields["client"] == "Gaurav Cheema"
    assert fields["number"] == "00012"


def test_dutch_spanish_and_italian_labels() -> None:
    dutch = "Factuur\nFactuurnummer: 2023-001\nDatum: 1 oktober 2023\nVervaldatum: 15 oktober 2023\n" \
            "Factuur aan:\nJan de Groot\nTotaal   €1.355,20\n"
    fields = extract_fields(dutch).fields
    assert (fields["number"], fields["issue_date"], fields["due_date"]) == (
        "2023-001", date(2023, 10, 1), date(2023, 10, 15))
    assert (fields["client"], fields["amount"], fields["currency"]) == ("Jan de Groot", Decimal("1355.20"), "EUR")
    assert fields["doc_type"] == "invoice"
    spanish = "Factura\nNº: 4000-12345678\nFecha: 27/03/2011\nSr.(s): Joao Da Silva\n" \
              "Fecha de Vencimiento de Pago: 27/04/2011\nImporte total: 122,00\n"
    fields = extract_fields(spanish).fields
    assert (fields["number"], fields["issue_date"], fields["due_date"]) == (
        "4000-12345678", date(2011, 3, 27), date(2011, 4, 27))
    assert (fields["client"], fields["amount"]) == ("Joao Da Silva", Decimal("122.00"))
    italian = "Fattura n. 12/2024\nData: 03/09/2024\nData scadenza: 03/10/2024\nTotale documento: 244,00 €\n"
    fields = extract_fields(italian).fields
    assert (fields["number"], fields["due_date"], fields["amount"]) == ("12/2024", date(2024, 10, 3),
                                                                       Decimal("244.00"))


def test_currency_from_the_code_after_a_dollar_sign_and_inferred_when_unwritten() -> None:
    assert find_money("$5,270.00 AUD")[0].currency == "AUD"
    found = extract_fields("Facture N° 12\nSIRET 732 829 320 00074\nTotal TTC : 1 200,00\n")
    assert found.fields["currency"] == "EUR"
    assert found.confidence("currency") < 0.8 and "inferred" in found.field_info["currency"]["note"]


def test_page_numbers_and_account_numbers_are_not_the_invoice_number() -> None:
    text = "Monthly Statement\nAccount number: 100469352\nPage 1 of 2\nTotal amount due by 02/28/24   $110.70\n"
    fields = extract_fields(text).fields
    assert "number" not in fields
    assert fields["amount"] == Decimal("110.70")
    assert fields["doc_type"] == "invoice" and extract_fields(text).confidence("doc_type") < 0.8


def test_a_credit_slip_is_a_credit_note() -> None:
    text = "Ticket d'Avoir\nNuméro de Ticket : 31\nTotal Avoir : 570.66 TND\nDate : 10/03/2025\n"
    fields = extract_fields(text).fields
    assert (fields["doc_type"], fields["number"], fields["amount"], fields["currency"]) == (
        "credit_note", "31", Decimal("570.66"), "TND")


def test_labels_stacked_above_their_values_are_paired_in_order() -> None:
    # A key/value table read column by column (OCR, or a PDF that draws its labels first).
    text = "SHIPPING INVOICE 10112\nIssue Date:\nAccount No:\nInvoice Amount:\nPlease Pay By:\n\n" \
           "8th December 2021\n101234\n\n$5,270.00 AUD\n\n15th December 2021\n"
    fields = extract_fields(text).fields
    assert (fields["issue_date"], fields["due_date"]) == (date(2021, 12, 8), date(2021, 12, 15))
    assert (fields["amount"], fields["currency"], fields["number"]) == (Decimal("5270.00"), "AUD", "10112")


def test_a_table_heading_is_never_the_client() -> None:
    text = "Facture N° 7\nClient :\nQté        Désignation        Prix\n2          Vis               10,00\n" \
           "Total TTC : 12,00 €\n"
    assert "client" not in extract_fields(text).fields


def test_a_due_date_computed_from_payment_terms_is_flagged() -> None:
    base = "Invoice No. 12\nInvoice Date: 15 January 2026\nTotal: 100.00 EUR\n"
    for terms, due in (("Payment terms: Net 30", date(2026, 2, 14)),
                       ("Conditions de paiement : 30 jours fin de mois", date(2026, 2, 28)),
                       ("Zahlbar innerhalb von 14 Tagen ohne Abzug", date(2026, 1, 29)),
                       ("Payment is due within 15 days", date(2026, 1, 30))):
        found = extract_fields(base + terms + "\n")
        assert found.fields["due_date"] == due, terms
        assert found.confidence("due_date") < 0.8 and "computed" in found.field_info["due_date"]["note"]
    # An amount after "net" is no payment term; a printed due date wins over the terms.
    assert "due_date" not in extract_fields(base + "Total net 1 200,00 — payment by transfer\n").fields
    printed = extract_fields(base + "Due date: 20 January 2026\nPayment terms: Net 30\n")
    assert printed.fields["due_date"] == date(2026, 1, 20) and printed.confidence("due_date") >= 0.8


def test_the_letterhead_name_that_recurs_beats_a_tagline() -> None:
    text = ("                                                  Creative Minds At Work\n"
            "Brightside Studio\n12 Harbour Road\n\n"
            "Invoice No. 55\nTotal   1,000.00 EUR\n\n"
            "Thank you for your business\nBrightside Studio\n")
    found = extract_fields(text)
    assert found.fields["issuer"] == "Brightside Studio"
    assert found.confidence("issuer") < 0.8  # a guess from the page's top: always checked


def test_the_right_hand_addressee_block_and_a_bill_printed_by_its_buyer() -> None:
    addressee = ("Dupont Conseil\n12 rue de la Paix\n75002 Paris\n"
                 "                                          Martin Industries\n"
                 "                                          8 avenue Foch\n"
                 "                                          69006 Lyon\n\n"
                 "Facture N° F-77\nTotal TTC : 1 200,00 €\n")
    found = extract_fields(addressee)
    assert (found.fields["issuer"], found.fields["client"]) == ("Dupont Conseil", "Martin Industries")
    assert found.confidence("client") < 0.8  # read from a position, not a label
    # Printed by the buyer's software: the letterhead is the client, the address block the supplier.
    bill = addressee.replace("Facture N° F-77", "Vendor Bill BILL/2026/0002")
    found = extract_fields(bill)
    assert (found.fields["issuer"], found.fields["client"]) == ("Martin Industries", "Dupont Conseil")
    assert found.confidence("issuer") < 0.8 and found.confidence("client") < 0.8


def test_a_chinese_vat_invoice_by_its_labels() -> None:
    # As OCR lays such an invoice out: the invoice CODE is not its number, "发标号码" is an OCR misreading of
    # "发票号码", the total is the "(小写)" (in figures) one, the amount in words says yuan.
    text = ("                         发票代码 : 042001700112\n"
            "                         发标号码 : 07007198\n"
            "机器编号 499099660821    校验码 : 12636 66602 23329 27910\n"
            "开票日期: 2018年03月23日\n"
            "价税合计 (大写 )     贰佰玖拾肆元捌角贰分          (小写 )     ¥294.82\n")
    found = extract_fields(text)
    assert found.fields["number"] == "07007198"
    assert found.fields["issue_date"] == date(2018, 3, 23)
    assert found.fields["amount"] == Decimal("294.82")
    assert found.fields["currency"] == "CNY"


def test_the_only_date_of_an_invoice_whose_date_label_is_unreadable_is_flagged() -> None:
    # "Daie de Facture": an OCR-garbled label; the one date printed is the issue date, shown with a check flag.
    found = extract_fields("FACTURE N° 12345\nDaie de Facture    17/02/2020\nTotal TTC   587,95 €\n")
    assert found.fields["issue_date"] == date(2020, 2, 17)
    assert found.confidence("issue_date") < 0.8
    # Two dates and no label: no guess.
    found = extract_fields("FACTURE N° 12345\nDaie  17/02/2020   Retrait  18/02/2020\nTotal TTC   587,95 €\n")
    assert "issue_date" not in found.fields


def test_a_name_in_key_value_form_under_the_client_label() -> None:
    found = extract_fields("Factuur\nFactuurnummer: 2023-001\nFactuur aan:\nNaam: Jan de Groot\n"
                           "Adres: Klokstraat 45, 5678 CD, Rotterdam\n")
    assert found.fields["client"] == "Jan de Groot"


def test_a_total_printed_alone_under_the_lines_is_taken_and_flagged() -> None:
    # A typed invoice: no "Total" label, the sum underlined on a line of its own.
    text = ("ACME ASSOCIATES, INC.\n\nDate  December 31, 1979\n\n"
            "Round trip airfare....................   $ 292.00\n"
            "Miscellaneous cabfares................      58.50\n"
            "                                          $   350.50\n")
    found = extract_fields(text)
    assert found.fields["amount"] == Decimal("350.50") and found.confidence("amount") < 0.8
    assert found.fields["currency"] == "USD" and found.fields["doc_type"] == "invoice"
    # Not the largest amount: a line's amount alone, not a total.
    found = extract_fields("Item A   $ 900.00\nItem B   $ 58.50\n      $ 350.50\n")
    assert "amount" not in found.fields


def test_the_letterhead_name_is_counted_without_ocr_specks_around_it() -> None:
    found = extract_fields(". ACME ASSOCIATES, INC\n133 EAST STREET\nNEW YORK\nACME ASSOCIATES, INC\n"
                           "Invoice No. 1727\nTotal   $ 350.50\n")
    assert found.fields["issuer"] == "ACME ASSOCIATES, INC"


def test_a_date_without_separators_is_read_under_its_label_only() -> None:
    found = extract_fields("Facture N° 42\nDate de facture : 17022020\nTotal TTC  587,95 €\n")
    assert found.fields["issue_date"] == date(2020, 2, 17)
    found = extract_fields("开票日期: 20180323\n发票号码: 07007198\n")
    assert found.fields["issue_date"] == date(2018, 3, 23)
    # Eight digits without a date label are a reference, never a date; nor is a reading that is no real date.
    assert "issue_date" not in extract_fields("Facture N° 17022020\nTotal TTC  587,95 €\n").fields
    assert "issue_date" not in extract_fields("Facture N° 42\nDate de facture : 99999999\n").fields


def test_a_value_row_shifted_against_its_headings() -> None:
    # A photo's OCR: the value row starts a little left of its headings, so "Date de Facture" overlaps the
    # next cell ("7022020", unreadable) more than its own; the other cell under it is read, flagged.
    text = ("                  FactureN°        Date de Facture   Date de retrait\n"
            "                 FA-31          17022020   7022020\n"
            "Total TTC                     587,95 €\n")
    found = extract_fields(text)
    assert found.fields["issue_date"] == date(2020, 2, 17)
    assert found.confidence("issue_date") < 0.8
    # The cell overlapping the heading most still wins when it reads.
    aligned = text.replace("17022020   7022020", "  17022020 7022020")
    assert extract_fields(aligned).fields["issue_date"] == date(2020, 2, 17)


_BILL = """Facture du 29/01/2021   n° 12345
Total HT                                  1 000,00 €
TVA (tous taux)                             180,00 €
TVA à 5,50%                                  10,00 €
TVA à 20,00%                                170,00 €
Total TTC                                 1 180,00 €

Bilan annuel 2020
Montant total facturé : 900,00 € TTC, dont abonnement : 300,00 € HT
"""


def test_the_net_tax_and_total_that_add_up_win_over_the_last_labels() -> None:
    # The last tax label is one rate's line and the last total a yearly summary: read by their labels alone
    # they do not add up, and the labelled amounts that do are taken.
    found = extract_fields(_BILL)
    assert (found.fields["net_amount"], found.fields["tax_amount"], found.fields["amount"]) == (
        Decimal("1000.00"), Decimal("180.00"), Decimal("1180.00"))
    # Nothing adds up: the amounts stay as read and are flagged.
    odd = extract_fields(_BILL.replace("1 180,00", "1 190,00"))
    assert odd.fields["amount"] == Decimal("300.00") and odd.confidence("amount") < 0.8


def test_a_us_document_without_a_dollar_sign_reads_month_first_but_flagged() -> None:
    text = ("Philip Tobacco Inc.\n999 Ninety Ninth Street\nAnywhere, USA, 99999\nINVOICE\n"
            "Invoice No 42\nInvoice Date: 1/02/02\nAmount due    4,759.20\n")
    found = extract_fields(text)
    assert found.fields["issue_date"] == date(2002, 1, 2)
    assert found.confidence("issue_date") < 0.8  # "USA" without "$" is a hint, not a proof
    # Another currency written: day first, as anywhere else.
    assert extract_fields(text.replace("4,759.20", "4,759.20 EUR")).fields["issue_date"] == date(2002, 2, 1)
    # A date that decides still decides.
    assert extract_fields(text + "Due: 1/15/02\n").confidence("issue_date") >= 0.8


def test_the_issuer_spelled_like_its_web_domain_when_no_label_names_it() -> None:
    # The logo is a picture: the letterhead's first words are a summary's labels, but the bill prints its
    # domain and, on its payment slip, the name that spells it.
    text = ("Monthly Statement\n"
            "Previous balance                 $95.80\n"
            "Total due                        $110.70\n"
            "Pay online at my.t-mobile.com/pay or www.t-mobile.com\n\n"
            "T-MOBILE\nPO BOX 742596\n")
    found = extract_fields(text)
    assert found.fields["issuer"] == "T-MOBILE" and found.confidence("issuer") < 0.8
    # A mail provider's domain names nobody; a labelled issuer still wins.
    assert extract_fields(text.replace("t-mobile.com", "gmail.com").replace("T-MOBILE", "GMAIL")).fields.get(
        "issuer") != "GMAIL"
    assert extract_fields("From: Acme Ltd\n" + text).fields["issuer"] == "Acme Ltd"
