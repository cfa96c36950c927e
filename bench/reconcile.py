"""Reconciliation engine: precision and recall of automatic matches, and time, on synthetic data.

    .venv/bin/python bench/reconcile.py [--invoices 50000] [--transactions 10000] [--seed 7] [--scaling]

Generates open invoices (sequential numbers: the worst case for typo tolerance, every number is one
edit away from its neighbours) and transactions with realistic noise: references with typos and in
odd formats, RF creditor references, grouped payments (named or not), partial payments, bank fees
deducted, early-payment discounts, payments identified by IBAN only, credit-note refunds, and
unrelated transactions (salaries, card payments, fees, random numbers in the text). ``--scaling``
runs 2,500 / 5,000 / 10,000 transactions against the same invoices.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.banking.reconcile import BankTx, ClientInfo, Matcher, OpenItem  # noqa: E402 - after the path fix-up
from core.banking.reconcile.text import rf_reference  # noqa: E402

CENT = Decimal("0.01")
ROOTS = ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
         "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier")
WORDS = ("Conseil", "Logistique", "Batiment", "Services", "Industrie", "Transports", "Informatique", "Distribution",
         "Energie", "Medical", "Immobilier", "Agro", "Textile", "Optique", "Imprimerie", "Negoce")
FORMS = ("SARL", "SAS", "SA", "EURL", "GmbH", "")
UNRELATED = ("SALAIRE {m} 2025", "CB CARREFOUR {d}", "PRLV URSSAF {n}", "LOYER BUREAUX {m}", "FRAIS BANCAIRES",
             "CB AMAZON MKTP {n}", "VIR IMPOTS DGFIP {n}", "PRLV EDF {n} ECHEANCE", "COMMANDE {n} DU {d}",
             "REMBOURSEMENT NOTE DE FRAIS {n}", "VIREMENT INTERNE", "TPE {n} REMISE CB")  # fmt: skip


@dataclass
class Case:
    tx: BankTx
    truth: frozenset[int]  # the invoices it settles; empty for an unrelated transaction
    kind: str


def _iban(rng: random.Random) -> str:
    return "FR76" + "".join(rng.choice("0123456789") for _ in range(23))


def _typo(rng: random.Random, text: str) -> str:
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    i = rng.choice(digits)
    kind = rng.choice(("swap", "sub", "drop"))
    if kind == "swap" and i + 1 < len(text) and text[i + 1].isdigit() and text[i + 1] != text[i]:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "drop":
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice([d for d in "0123456789" if d != text[i]]) + text[i + 1 :]


def _format_number(rng: random.Random, number: str) -> str:
    style = rng.random()
    if style < 0.5:
        return number
    if style < 0.7:
        return number.replace("-", "")
    if style < 0.85:
        return number.replace("-", " ").lower()
    return number.replace("-", "/")


Generated = tuple[list[OpenItem], list[ClientInfo], list[Case]]


def generate(n_invoices: int, n_transactions: int, seed: int = 7) -> Generated:
    rng = random.Random(seed)
    n_clients = max(10, n_invoices // 10)
    clients: list[ClientInfo] = []
    for cid in range(1, n_clients + 1):
        # Root names repeat with different legal forms: "Martin Conseil SARL" and "Martin Conseil SAS".
        name = f"{rng.choice(ROOTS)} {rng.choice(WORDS)} {rng.choice(FORMS)}".strip()
        clients.append(ClientInfo(cid, name, _iban(rng) if rng.random() < 0.6 else None))
    items: list[OpenItem] = []
    start = date(2025, 1, 1)
    for iid in range(1, n_invoices + 1):
        credit = rng.random() < 0.05
        if rng.random() < 0.15:
            amount = Decimal(rng.choice((100, 150, 250, 500, 1000, 1200)))  # subscriptions: shared amounts
        else:
            amount = Decimal(str(round(rng.lognormvariate(6.5, 1.0), 2))).quantize(CENT)
        issue = start + timedelta(days=rng.randrange(0, 365))
        items.append(
            OpenItem(
                id=iid, number=f"{'AV' if credit else 'FA'}-2025-{iid:06d}", open_amount=amount,
                sign=-1 if credit else 1, client_id=rng.randrange(1, n_clients + 1), currency="EUR",
                issue_date=issue, due_date=issue + timedelta(days=30), total=amount,
            )
        )  # fmt: skip
    by_client: dict[int, list[OpenItem]] = {}
    issue_of = {item.id: item.issue_date for item in items}
    for item in items:
        if item.sign == 1:
            by_client.setdefault(item.client_id or 0, []).append(item)
    invoices = [i for i in items if i.sign == 1]
    credit_notes = [i for i in items if i.sign == -1]
    rng.shuffle(invoices)
    rng.shuffle(credit_notes)
    used: set[int] = set()
    cases: list[Case] = []
    kinds = (("exact", 30), ("typo", 10), ("grouped", 8), ("partial", 7), ("fees", 6), ("discount", 3),
             ("iban_only", 8), ("refund", 3), ("unrelated", 25))  # fmt: skip
    population = [k for k, weight in kinds for _ in range(weight)]

    def take() -> OpenItem:
        while True:
            item = invoices.pop()
            if item.id not in used:
                used.add(item.id)
                return item

    for tid in range(1, n_transactions + 1):
        kind = rng.choice(population)
        client_name = ""
        iban = None
        text = ""
        truth: frozenset[int] = frozenset()
        amount = Decimal("0")
        if kind in ("exact", "typo", "partial", "fees", "discount", "iban_only"):
            item = take()
            client = clients[(item.client_id or 1) - 1]
            client_name = client.name.upper() if rng.random() < 0.5 else client.name
            iban = client.iban if rng.random() < 0.8 else None
            number = _format_number(rng, item.number)
            amount = item.open_amount
            if kind == "exact":
                text = rng.choice(("Facture {n}", "Paiement {n} merci", "{n}", "Reglement fact. {n} du client"))
                if rng.random() < 0.1:
                    text = rf_reference(item.number)  # an RF creditor reference instead of the number
                text = text.format(n=number)
            elif kind == "typo":
                text = f"Facture {_typo(rng, item.number)}"
            elif kind == "partial":
                amount = (item.open_amount * Decimal(rng.uniform(0.3, 0.7))).quantize(CENT)
                text = f"{'Acompte ' if rng.random() < 0.5 else ''}facture {number}"
            elif kind == "fees":
                amount = item.open_amount - Decimal(rng.choice(("0.50", "1.20", "2.50", "5.00")))
                if amount <= 0:
                    amount = item.open_amount
                text = f"INV {number} OUR CHARGES"
            elif kind == "discount":
                amount = (item.open_amount * Decimal("0.98")).quantize(CENT)
                text = f"{number} escompte 2%"
            else:  # the payer's bank account and the exact amount only
                text = "VIREMENT"
                iban = client.iban
                if iban is None:
                    text = f"VIR {number}"
            truth = frozenset({item.id})
        elif kind == "grouped":
            client_id = rng.randrange(1, n_clients + 1)
            candidates = [i for i in by_client.get(client_id, []) if i.id not in used]
            if len(candidates) < 2:
                kind = "unrelated"
            else:
                group = rng.sample(candidates, min(len(candidates), rng.choice((2, 2, 3))))
                used.update(i.id for i in group)
                client = clients[client_id - 1]
                client_name, iban = client.name, client.iban
                amount = sum((i.open_amount for i in group), Decimal("0"))
                if rng.random() < 0.6 or iban is None:
                    text = "Factures " + " ".join(_format_number(rng, i.number) for i in group)
                else:
                    text = "VIREMENT GROUPE"
                truth = frozenset(i.id for i in group)
        elif kind == "refund":
            note = credit_notes.pop()
            used.add(note.id)
            client = clients[(note.client_id or 1) - 1]
            client_name, iban = client.name, client.iban
            amount = -note.open_amount
            text = f"Remboursement avoir {_format_number(rng, note.number)}"
            truth = frozenset({note.id})
        if kind == "unrelated":
            pattern = rng.choice(UNRELATED)
            text = pattern.format(m=rng.choice(("JANVIER", "MARS", "JUIN")), d=f"{rng.randrange(1, 29):02d}/06",
                                  n=rng.randrange(10_000, 99_999_999))  # fmt: skip
            # Unrelated money in sometimes has an amount that an open invoice has too.
            if rng.random() < 0.3:
                amount = rng.choice(items).open_amount
            else:
                amount = Decimal(str(round(rng.lognormvariate(5, 1.2), 2))).quantize(CENT)
            amount = amount if rng.random() < 0.4 else -amount
            client_name = rng.choice(("URSSAF", "CARREFOUR", "DGFIP", "EDF", "SALARIE", rng.choice(ROOTS)))
        booking = start + timedelta(days=rng.randrange(30, 420))
        if truth:
            latest_issue = max(issue_of[i] for i in truth)  # type: ignore[type-var]
            booking = max(booking, latest_issue + timedelta(days=rng.randrange(0, 60)))
        cases.append(Case(BankTx(tid, amount, booking, "EUR", client_name, iban, text), truth, kind))
    return items, clients, cases


def evaluate(items: list[OpenItem], clients: list[ClientInfo], cases: list[Case]) -> dict[str, float]:
    fresh = [OpenItem(**{**i.__dict__}) for i in items]  # the matcher consumes open amounts
    # CPU time of this process: the benchmark host is shared, wall time is printed as well.
    wall, started = time.perf_counter(), time.process_time()
    matcher = Matcher(fresh, clients)
    indexed = time.process_time()
    proposals = matcher.run(c.tx for c in cases)
    finished = time.process_time()
    wall = time.perf_counter() - wall
    truth = {c.tx.id: c.truth for c in cases}
    applied = [p for p in proposals if p.auto]
    correct = sum(1 for p in applied if p.item_ids == truth[p.tx_id])
    matchable = sum(1 for c in cases if c.truth)
    suggested_right = sum(1 for p in proposals if not p.auto and p.item_ids == truth[p.tx_id])
    wrong = [(p, truth[p.tx_id]) for p in applied if p.item_ids != truth[p.tx_id]]
    return {
        "transactions": len(cases),
        "invoices": len(items),
        "matchable": matchable,
        "applied": len(applied),
        "correct": correct,
        "precision": correct / len(applied) if applied else 1.0,
        "recall": correct / matchable if matchable else 1.0,
        "suggested_right": suggested_right,
        "index_s": indexed - started,
        "match_s": finished - indexed,
        "wall_s": wall,
        "wrong": len(wrong),
        "_wrong": wrong,  # type: ignore[dict-item]
    }


def run_database(url: str, items: list[OpenItem], clients: list[ClientInfo], cases: list[Case]) -> None:
    """The same data through the service layer on a real (empty, migrated here) database."""
    import dataclasses
    import tempfile

    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from core.banking import reconciliation
    from core.config import Settings
    from core.db import make_engine, make_session_factory
    from core.models import BankAccount, BankTransaction, Client, Invoice, Match, StoredFile, Tenant
    from dashboard.app import MIGRATIONS_DIR, create_app

    tmp = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    settings = dataclasses.replace(Settings.from_env(), database_url=url, var_dir=tmp, storage_dir=tmp / "storage")
    app = create_app(settings)
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision="heads")
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        tenant = Tenant(name="Bench")
        session.add(tenant)
        session.flush()
        stored = StoredFile(tenant_id=tenant.id, sha256="0" * 64, size=0, content_type="application/pdf",
                            storage_key="bench")  # fmt: skip
        account = BankAccount(tenant_id=tenant.id, iban="FR7600000000000000000000000", name="Bench")
        session.add_all([stored, account])
        session.flush()
        started = time.perf_counter()
        session.execute(insert(Client), [
            {"id": c.id, "tenant_id": tenant.id, "name": c.name, "normalized_name": f"{c.name.lower()} {c.id}",
             "iban": c.iban} for c in clients
        ])  # fmt: skip
        session.execute(insert(Invoice), [
            {"id": i.id, "tenant_id": tenant.id, "direction": "receivable",
             "doc_type": "credit_note" if i.sign < 0 else "invoice", "number": i.number, "number_key": i.number,
             "client_id": i.client_id, "amount": i.open_amount, "currency": "EUR", "issue_date": i.issue_date,
             "due_date": i.due_date, "file_id": stored.id, "status": "open", "amount_paid": Decimal("0")}
            for i in items
        ])  # fmt: skip
        session.execute(insert(BankTransaction), [
            {"id": c.tx.id, "tenant_id": tenant.id, "account_id": account.id, "fingerprint": f"bench-{c.tx.id}",
             "booking_date": c.tx.booking_date, "amount": c.tx.amount, "currency": "EUR",
             "counterparty": c.tx.counterparty, "iban": c.tx.iban, "remittance": c.tx.text, "pending": False,
             "status": "unmatched"}
            for c in cases
        ])  # fmt: skip
        session.commit()
        loaded, cpu = time.perf_counter(), time.process_time()
        summary = reconciliation.run_matching(session, tenant.id)
        session.commit()
        finished, cpu = time.perf_counter(), time.process_time() - cpu
        applied: dict[int, set[int]] = {}
        for tx_id, invoice_id in session.execute(
            select(Match.transaction_id, Match.invoice_id).where(Match.state == "applied")
        ):
            applied.setdefault(tx_id, set()).add(invoice_id)
    engine.dispose()
    truth = {c.tx.id: c.truth for c in cases}
    correct = sum(1 for tx_id, ids in applied.items() if ids == truth[tx_id])
    matchable = sum(1 for c in cases if c.truth)
    print(f"database {url.split(':')[0]}: data loaded in {loaded - started:.1f} s; run_matching on {len(cases):,} "
          f"transactions: {finished - loaded:.1f} s wall, {cpu:.1f} s CPU in this process "
          f"(load, match, write {summary.applied:,} applied + "
          f"{summary.suggested:,} suggestions, commit); precision {correct / max(1, len(applied)):.2%}, "
          f"recall {correct / max(1, matchable):.2%}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=50_000)
    parser.add_argument("--transactions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scaling", action="store_true", help="also run 2,500 / 5,000 / 10,000 transactions")
    parser.add_argument("--show-wrong", type=int, default=0, help="print that many wrong automatic matches")
    parser.add_argument("--database", help="also run through the service layer on this empty database URL")
    args = parser.parse_args()
    started = time.perf_counter()
    items, clients, cases = generate(args.invoices, args.transactions, args.seed)
    generated = time.perf_counter() - started
    sizes = [2_500, 5_000, 10_000] if args.scaling else [args.transactions]
    print(f"generated {len(items)} open items, {len(clients)} clients, {len(cases)} transactions in {generated:.1f} s")
    print()
    print("| transactions | matchable | applied automatically | precision | recall (auto) | right suggestions | index s | matching s | total s (CPU) | wall s |")  # noqa: E501
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        r = evaluate(items, clients, cases[:size])
        cells = (
            f"{r['transactions']:,}", f"{r['matchable']:,}", f"{r['applied']:,}", f"{r['precision']:.2%}",
            f"{r['recall']:.2%}", f"{r['suggested_right']:,}", f"{r['index_s']:.2f}", f"{r['match_s']:.2f}",
            f"{r['index_s'] + r['match_s']:.2f}", f"{r['wall_s']:.2f}",
        )  # fmt: skip
        print("| " + " | ".join(cells) + " |")
        for proposal, truth in r["_wrong"][: args.show_wrong]:  # type: ignore[index]
            case = next(c for c in cases if c.tx.id == proposal.tx_id)
            print("  WRONG", case.kind, case.tx, "->", sorted(proposal.item_ids), "truth", sorted(truth))
            print("       ", proposal.reasons)
    if args.database:
        run_database(args.database, items, clients, cases[: max(sizes)])


if __name__ == "__main__":
    main()
