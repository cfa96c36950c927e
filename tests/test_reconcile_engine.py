"""The pure matching engine: scenarios, reasons, thresholds, and a bounded run of the benchmark."""

from __future__ import annotations

import os
import time
from datetime import date
from decimal import Decimal

import pytest

from core.banking.reconcile import BankTx, ClientInfo, Matcher, OpenItem, expected_sign
from core.banking.reconcile.csvexport import to_csv
from core.banking.reconcile.text import (
    name_key,
    one_edit_variants,
    rf_reference,
    structured_references,
    text_windows,
    within_one_edit,
)

D = Decimal
DAY = date(2026, 2, 10)


def item(id: int, number: str, amount: str, client: int | None = 1, sign: int = 1, **kw) -> OpenItem:
    return OpenItem(id, number, D(amount), sign, client_id=client, currency="EUR", total=D(amount),
                    issue_date=date(2026, 1, 5), **kw)  # fmt: skip


def tx(amount: str, text: str = "", name: str | None = None, iban: str | None = None, id: int = 1) -> BankTx:
    return BankTx(id, D(amount), DAY, "EUR", name, iban, text)


CLIENTS = [ClientInfo(1, "Dupont SARL", "FR7611111111111111111111111"), ClientInfo(2, "Durand SA")]


def test_expected_sign_fits_every_direction() -> None:
    assert expected_sign("receivable", "invoice") == 1
    assert expected_sign("receivable", "credit_note") == -1
    assert expected_sign("payable", "invoice") == -1
    assert expected_sign("payable", "credit_note") == 1


def test_text_helpers() -> None:
    assert "FA2026004" in text_windows("Paiement FA 2026 004 merci")
    assert within_one_edit("20260042", "20260024")  # adjacent swap
    assert within_one_edit("20260042", "2026042")  # deletion
    assert not within_one_edit("20260042", "20260424")
    assert "2026042" in one_edit_variants("20260042") and "20260024" in one_edit_variants("20260042")
    ref = rf_reference("FA-2026-0042")
    assert structured_references(f"Ref {ref[:4]} {ref[4:]}") == {"FA20260042"}
    assert structured_references("RF00FA20260042") == set()  # wrong check digits
    assert structured_references("+++090/9337/55493+++") == {"909337554"}
    assert structured_references("+++090/9337/55494+++") == set()
    assert name_key("Dupont & Fils SARL") == name_key("DUPONT FILS") == "dupont fils"


def test_exact_number_and_amount_is_automatic_with_reasons() -> None:
    m = Matcher([item(1, "FA-2026-0042", "1200.00"), item(2, "FA-2026-0043", "1200.00")], CLIENTS)
    p = m.propose(tx("1200.00", "Facture fa 2026 0042", "DUPONT"))
    assert p is not None and p.auto and p.item_ids == {1}
    assert any("FA-2026-0042" in r for r in p.reasons) and any("amount equals" in r for r in p.reasons)


def test_structured_reference_is_found() -> None:
    m = Matcher([item(1, "FA-2026-0042", "99.00", client=2)], CLIENTS)
    p = m.propose(tx("99.00", rf_reference("FA-2026-0042"), "someone"))
    assert p is not None and p.auto and any("structured reference" in r for r in p.reasons)


def test_wrong_amount_is_a_suggestion_only() -> None:
    m = Matcher([item(1, "FA-2026-0042", "1200.00")], CLIENTS)
    p = m.propose(tx("700.00", "FA-2026-0042", "Dupont", "FR7611111111111111111111111"))
    assert p is not None and not p.auto and p.allocations[0].amount == D("700.00")


def test_announced_partial_payment_then_the_rest() -> None:
    m = Matcher([item(1, "RE-2020/508", "571.04")], CLIENTS)
    first, rest = m.run([tx("500.00", "RE-2020/508 acompte", "Dupont", id=1), tx("71.04", "RE 2020 508", id=2)])
    assert first.auto and rest.auto and rest.allocations[0].amount == D("71.04")
    assert any("remaining" in r for r in rest.reasons)


def test_grouped_payment_named_and_by_combination() -> None:
    items = [item(1, "F-1001", "100.00"), item(2, "F-1002", "250.50"), item(3, "F-1003", "99.00"),
             item(4, "F-1004", "40.00")]  # fmt: skip
    m = Matcher(items, CLIENTS)
    named = m.propose(tx("350.50", "F-1001 F-1002", "Dupont"))
    assert named is not None and named.auto and named.item_ids == {1, 2}
    m.consume(named)
    combo = m.propose(tx("139.00", "VIREMENT", "X", "FR7611111111111111111111111", id=2))
    assert combo is not None and combo.auto and combo.item_ids == {3, 4}


def test_fees_and_discount_are_written_off() -> None:
    m = Matcher([item(1, "INV-7781", "1000.00"), item(2, "INV-7782", "2594.20")], CLIENTS)
    fees = m.propose(tx("992.50", "INV-7781", "Dupont"))
    assert fees is not None and fees.auto and fees.allocations[0].write_off == D("7.50")
    discount = m.propose(tx("2542.32", "INV-7782 Skonto", "Dupont", id=2))
    assert discount is not None and discount.auto and discount.allocations[0].write_off == D("51.88")


def test_over_payment_is_not_automatic() -> None:
    m = Matcher([item(1, "FA-1", "500.00")], CLIENTS)
    p = m.propose(tx("550.00", "FA-1 facture", "Dupont", "FR7611111111111111111111111"))
    assert p is not None and not p.auto and p.allocations[0].amount == D("500.00")


def test_credit_note_refund_goes_out_and_never_to_an_invoice() -> None:
    m = Matcher([item(1, "AV-3", "120.00", sign=-1), item(2, "FA-3", "120.00")], CLIENTS)
    p = m.propose(tx("-120.00", "Remboursement AV-3", "Dupont"))
    assert p is not None and p.auto and p.item_ids == {1}
    other = m.propose(tx("-120.00", "FA-3", "Dupont", id=2))
    assert other is None or 2 not in other.item_ids  # money out never pays a receivable invoice


def test_same_name_clients_are_ambiguous_until_the_iban_tells() -> None:
    clients = [ClientInfo(1, "Bernard SA", "FR761"), ClientInfo(2, "Bernard SARL", "FR762")]
    m = Matcher([item(1, "A-1", "480.00", client=1), item(2, "B-9", "480.00", client=2)], clients)
    p = m.propose(tx("480.00", "VIREMENT", "BERNARD"))
    assert p is None or not p.auto
    p = m.propose(tx("480.00", "VIREMENT", "BERNARD", "FR762", id=2))
    assert p is not None and p.auto and p.item_ids == {2}


def test_typo_needs_corroboration() -> None:
    items = [item(1, "FA-2026-04512", "310.00"), item(2, "FA-2026-04513", "999.00", client=2)]
    m = Matcher(items, CLIENTS)
    p = m.propose(tx("310.00", "Facture 2026-04152", "PETIT", "FR7611111111111111111111111"))
    assert p is not None and p.auto and p.item_ids == {1} and any("typo" in r for r in p.reasons)
    alone = Matcher(items, CLIENTS).propose(tx("12.00", "Facture 2026-04152", "Nobody"))
    assert alone is None or not alone.auto


def test_rejected_pairs_are_never_proposed_again() -> None:
    m = Matcher([item(1, "FA-2026-0042", "1200.00")], CLIENTS, rejected=[(1, 1)])
    assert m.propose(tx("1200.00", "FA-2026-0042", "Dupont")) is None


def test_csv_export_guards_formulas_and_french_excel() -> None:
    data = to_csv(["n", "amount", "when"], [["=1+1", D("-12.50"), date(2026, 2, 1)], ["@x", D("3"), None]], french=True)
    text = data.decode("utf-8")
    assert data.startswith("\ufeff".encode())
    assert text.splitlines()[1] == "'=1+1;-12,50;01/02/2026"  # numbers keep their sign, text is neutralised
    assert "'@x;3;" in text
    plain = to_csv(["a"], [["+33 6"], ["-cmd"]]).decode("utf-8")
    assert "'+33 6" in plain and "'-cmd" in plain


def test_bounded_benchmark_precision_recall_and_linear_time() -> None:
    """CI runs a small instance; RECONCILE_BENCH_FULL=1 runs the 50,000 x 10,000 one."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import reconcile as bench  # type: ignore[import-not-found]

    full = os.environ.get("RECONCILE_BENCH_FULL") == "1"
    items, clients, cases = bench.generate(50_000 if full else 5_000, 10_000 if full else 1_000, seed=11)
    result = bench.evaluate(items, clients, cases)
    assert result["precision"] >= 0.99, result
    assert result["recall"] >= 0.80, result
    if full:
        assert result["index_s"] + result["match_s"] < 10
    # About linear: four times the transactions never cost more than twelve times the time (CPU time,
    # with a floor for timer noise on tiny runs).
    small = bench.evaluate(items, clients, cases[: len(cases) // 4])
    assert result["match_s"] < small["match_s"] * 4 * 3 + 0.5, (small, result)


@pytest.mark.parametrize("text", ["", "x" * 100_000, "RF" * 5000, "+++" * 3000, "1" * 5000])
def test_hostile_texts_do_not_blow_up(text: str) -> None:
    m = Matcher([item(1, "FA-1111", "10.00")], CLIENTS)
    started = time.process_time()
    m.propose(tx("10.00", text, "x" * 10_000))
    assert time.process_time() - started < 1
