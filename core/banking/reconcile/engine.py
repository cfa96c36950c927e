"""Scoring transactions against open items, with indexes so that nothing is O(transactions x invoices).

Direction: money in (+) settles receivable invoices and supplier credit notes (a refund to us); money
out (-) settles payable invoices and client credit notes (a refund we pay). ``expected_sign`` says so.

Scores are 0..100 and every point comes with a reason a person can read. A proposal is applied
automatically only when it scores >= AUTO_THRESHOLD, its amount is explained (exact, sum, discount,
small fees, announced partial payment), something identifies the invoice or the payer (number,
structured reference, IBAN), and no other proposal comes close (ambiguity).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import combinations

from core.banking.reconcile.text import (
    MIN_DIGITS,
    PARTIAL_WORDS,
    digits_of,
    name_key,
    number_key,
    one_edit_variants,
    structured_references,
    text_windows,
    within_one_edit,
    words,
)

AUTO_THRESHOLD = 80
SUGGEST_THRESHOLD = 40
AMBIGUITY_MARGIN = 15
CENT = Decimal("0.01")
DISCOUNT_RATES = (Decimal("0.02"), Decimal("0.03"), Decimal("0.01"))  # usual early-payment discounts
DISCOUNT_PERCENTS = (2, 3, 1)
MAX_AMOUNT_BUCKET = 25  # an amount shared by more open items than this identifies nothing
MAX_CLIENT_ITEMS = 300  # beyond this, a client's items are reached by number or amount only
MAX_GROUP_ITEMS = 25  # subset sums are searched among at most this many of a client's items
EARLY_TOLERANCE = timedelta(days=3)

# Points (see the module docstring).
P_NUMBER, P_REFERENCE, P_FUZZY = 55, 60, 25
P_IBAN, P_NAME, P_NAME_SHARED = 30, 20, 5
P_EXACT, P_SUM, P_DISCOUNT, P_FEES, P_PARTIAL_SAID, P_REMAINDER = 30, 30, 22, 20, 15, 30
P_UNIQUE_AMOUNT = 20
P_TOO_EARLY = -30
P_OTHER_IBAN, P_OTHER_NAME = -30, -15


def expected_sign(direction: str, doc_type: str) -> int:
    """+1 when settling this item brings money in, -1 when it takes money out."""
    incoming = direction == "receivable"
    if doc_type == "credit_note":
        incoming = not incoming
    return 1 if incoming else -1


@dataclass
class OpenItem:
    id: int
    number: str
    open_amount: Decimal  # positive: what is still due
    sign: int  # expected_sign(direction, doc_type)
    client_id: int | None = None
    currency: str | None = None
    issue_date: date | None = None
    due_date: date | None = None
    total: Decimal | None = None  # the invoice's amount (open_amount < total after a partial payment)
    references: tuple[str, ...] = ()  # structured payment references issued with it (RF...), if known


@dataclass(frozen=True)
class ClientInfo:
    id: int
    name: str
    iban: str | None = None


@dataclass
class BankTx:
    id: int
    amount: Decimal  # signed
    booking_date: date
    currency: str | None = None
    counterparty: str | None = None
    iban: str | None = None
    text: str = ""  # remittance + reference


@dataclass
class Allocation:
    item_id: int
    amount: Decimal  # credited to the item (cash + write_off)
    write_off: Decimal = Decimal("0")


@dataclass
class Proposal:
    tx_id: int
    allocations: list[Allocation]
    score: int
    reasons: list[str]
    auto: bool = False
    amount_explained: bool = False
    identified: bool = False

    @property
    def item_ids(self) -> frozenset[int]:
        return frozenset(a.item_id for a in self.allocations)


def _cents(value: Decimal) -> int:
    return int((value * 100).to_integral_value(ROUND_HALF_UP))


def fee_tolerance_for(amount: Decimal) -> Decimal:
    """How much short of the amount due still counts as bank fees: 2 %, at least 5.00, at most 25.00."""
    return min(max(amount * Decimal("0.02"), Decimal("5.00")), Decimal("25.00"))


def _discounted(cents: int, percent: int) -> int:
    """``cents`` less ``percent`` %, rounded half up (as ``_cents(amount * (1 - rate))``)."""
    return (cents * (100 - percent) + 50) // 100


def _money(value: Decimal) -> str:
    return format(value.quantize(CENT), "f")


@dataclass
class _Evidence:
    points: int = 0
    reasons: list[str] = field(default_factory=list)
    identified: bool = False

    def add(self, points: int, reason: str, identifies: bool = False) -> None:
        self.points += points
        self.reasons.append(reason)
        self.identified = self.identified or identifies


class Matcher:
    """Holds the indexes over the open items; ``run`` proposes for transactions in booking order and
    consumes what it applies, so a later "rest" payment sees the remaining amount."""

    def __init__(
        self,
        items: Iterable[OpenItem],
        clients: Iterable[ClientInfo] = (),
        rejected: Iterable[tuple[int, int]] = (),
    ) -> None:
        self.items: dict[int, OpenItem] = {}
        self.clients = {c.id: c for c in clients}
        self.rejected = set(rejected)  # (tx_id, item_id) pairs a person refused or undid
        self.by_key: dict[str, set[int]] = defaultdict(set)
        self.by_digits: dict[str, set[int]] = defaultdict(set)  # digits and their one-deletion variants
        self.by_amount: dict[tuple[int, int], set[int]] = defaultdict(set)  # (sign, cents) -> items
        self.by_discounted: dict[tuple[int, int], set[int]] = defaultdict(set)
        self.by_client: dict[int, set[int]] = defaultdict(set)
        self.digits: dict[int, str] = {}
        self.cents: dict[int, int] = {}
        self.client_by_iban: dict[str, int] = {}
        self.clients_by_name: dict[str, set[int]] = defaultdict(set)
        for client in self.clients.values():
            if client.iban:
                self.client_by_iban[client.iban.replace(" ", "").upper()] = client.id
            key = name_key(client.name)
            if key:
                self.clients_by_name[key].add(client.id)
        for item in items:
            self._add(item)

    # Indexes -------------------------------------------------------------------------------

    def _add(self, item: OpenItem) -> None:
        self.items[item.id] = item
        key = number_key(item.number)
        if key:
            self.by_key[key].add(item.id)
        for ref in item.references:
            self.by_key["REF:" + ref].add(item.id)
        digits = digits_of(item.number)
        self.digits[item.id] = digits
        if len(digits) >= MIN_DIGITS:
            self.by_digits[digits].add(item.id)
        if item.client_id is not None:
            self.by_client[item.client_id].add(item.id)
        self._index_amount(item)

    def _index_amount(self, item: OpenItem) -> None:
        cents = self.cents[item.id] = _cents(item.open_amount)
        self.by_amount[(item.sign, cents)].add(item.id)
        if item.total is None or item.open_amount == item.total:
            for percent in DISCOUNT_PERCENTS:
                self.by_discounted[(item.sign, _discounted(cents, percent))].add(item.id)

    def _unindex_amount(self, item: OpenItem) -> None:
        cents = self.cents[item.id]
        self.by_amount[(item.sign, cents)].discard(item.id)
        for percent in DISCOUNT_PERCENTS:
            self.by_discounted[(item.sign, _discounted(cents, percent))].discard(item.id)

    def _open_cents(self, item: OpenItem) -> int:
        return self.cents[item.id]

    def consume(self, proposal: Proposal) -> None:
        """Apply ``proposal`` to the in-memory open amounts (the service does the same in the database)."""
        for alloc in proposal.allocations:
            item = self.items.get(alloc.item_id)
            if item is None:
                continue
            self._unindex_amount(item)
            item.open_amount -= alloc.amount
            if item.open_amount > 0:
                self._index_amount(item)
            else:
                self.by_client[item.client_id or -1].discard(item.id)
                del self.items[item.id]

    # Identification ------------------------------------------------------------------------

    def _number_hits(self, tx: BankTx, plausible: Callable[[int], bool]) -> tuple[dict[int, str], dict[int, str]]:
        """Items named in the text: exact (by number or reference), and fuzzy *candidates* (digits that
        share a one-deletion variant; ``_fuzzy_confirmed`` checks the edit distance of the plausible ones)."""
        exact: dict[int, str] = {}
        fuzzy: dict[int, str] = {}
        for ref in structured_references(tx.text):
            for item_id in self.by_key.get("REF:" + ref, ()) or self.by_key.get(ref, ()):
                if item_id in self.items:
                    exact[item_id] = f"structured reference {ref} in the payment text"
        windows = text_windows(tx.text)
        for key in windows:
            for item_id in self.by_key.get(key, ()):
                if item_id in self.items:  # settled items stay in the number indexes
                    exact.setdefault(item_id, f"invoice number {self.items[item_id].number} in the payment text")
        for digits in {digits_of(k) for k in windows}:
            if len(digits) < MIN_DIGITS or len(digits) > 24:
                continue
            for item_id in self.by_digits.get(digits, ()):
                if item_id not in exact and item_id in self.items and self.digits[item_id] == digits:
                    exact[item_id] = f"invoice number {self.items[item_id].number} in the payment text ({digits})"
            if any(plausible(i) for i in exact):
                continue  # a number that fits needs no typo hunting (another number may be a typo'd one)
            for variant in one_edit_variants(digits):
                for item_id in self.by_digits.get(variant, ()):
                    if item_id not in fuzzy and item_id in self.items:
                        fuzzy[item_id] = digits
        return exact, fuzzy

    def _fuzzy_confirmed(self, item_id: int, digits: str) -> str | None:
        item_digits = self.digits[item_id]
        if item_digits != digits and within_one_edit(item_digits, digits):
            return f"number {digits} is one typo away from invoice {self.items[item_id].number}"
        return None

    def _payer(self, tx: BankTx) -> tuple[set[int], str, bool]:
        """Client ids the payer may be, how we know, and whether that is certain (IBAN or a unique name)."""
        if tx.iban:
            client_id = self.client_by_iban.get(tx.iban.replace(" ", "").upper())
            if client_id is not None:
                return {client_id}, "iban", True
        key = name_key(tx.counterparty)
        ids = self.clients_by_name.get(key, set()) if key else set()
        if len(ids) == 1:
            return set(ids), "name", True
        return set(ids), "name", False

    # Scoring -------------------------------------------------------------------------------

    def _client_evidence(self, ev: _Evidence, item: OpenItem, payer: set[int], how: str, certain: bool) -> None:
        if item.client_id is None or not payer:
            return
        if item.client_id not in payer:
            # The payer is known, and it is someone else: a typo'd number may name another client's invoice.
            if how == "iban":
                ev.add(P_OTHER_IBAN, "the payer's IBAN belongs to another client")
            else:
                ev.add(P_OTHER_NAME, "the payer's name is the one of another client")
            return
        name = self.clients[item.client_id].name if item.client_id in self.clients else "the client"
        if how == "iban":
            ev.add(P_IBAN, f"the payer's IBAN is the one of {name}", identifies=True)
        elif certain:
            ev.add(P_NAME, f"the payer's name matches {name}")
        else:
            ev.add(P_NAME_SHARED, f"the payer's name matches {name}, and {len(payer) - 1} other client(s)")

    def _single(
        self, tx: BankTx, item: OpenItem, number_reason: tuple[str, bool] | None, payer: set[int], how: str,
        certain: bool, partial_said: bool, amount_bucket: int,
    ) -> Proposal | None:
        paid = abs(tx.amount)
        ev = _Evidence()
        if number_reason is not None:
            reason, exact = number_reason
            points = (P_REFERENCE if reason.startswith("structured") else P_NUMBER) if exact else P_FUZZY
            ev.add(points, reason, identifies=exact)
        self._client_evidence(ev, item, payer, how, certain)
        open_amount = item.open_amount
        diff = paid - open_amount
        explained = False
        write_off = Decimal("0")
        credited = min(paid, open_amount)
        if diff == 0:
            explained = True
            if item.total is not None and open_amount != item.total:
                ev.add(P_REMAINDER, f"amount equals the remaining {_money(open_amount)} due")
            else:
                ev.add(P_EXACT, "amount equals the amount due")
            if amount_bucket == 1 and certain and number_reason is None:
                ev.add(P_UNIQUE_AMOUNT, "the only open invoice of this payer with this amount")
        elif diff < 0:
            rate = next((r for r in DISCOUNT_RATES if _cents(open_amount * (1 - r)) == _cents(paid)), None)
            fee_tolerance = fee_tolerance_for(open_amount)
            if rate is not None and (item.total is None or open_amount == item.total):
                explained, write_off, credited = True, -diff, open_amount
                ev.add(P_DISCOUNT, f"paid with a {rate * 100:.0f}% early-payment discount ({_money(-diff)})")
            elif -diff <= fee_tolerance:
                explained, write_off, credited = True, -diff, open_amount
                ev.add(P_FEES, f"{_money(-diff)} short of the amount due: bank fees deducted")
            elif partial_said:
                explained = True
                ev.add(P_PARTIAL_SAID, f"announced partial payment: {_money(paid)} of {_money(open_amount)}")
            else:
                ev.add(0, f"amount {_money(paid)} differs from the {_money(open_amount)} due (partial payment?)")
        else:
            ev.add(0, f"over-payment: {_money(diff)} more than the {_money(open_amount)} due stays unallocated")
        if item.issue_date is not None and tx.booking_date < item.issue_date - EARLY_TOLERANCE:
            ev.add(P_TOO_EARLY, "paid before the invoice was issued")
        if ev.points < SUGGEST_THRESHOLD and number_reason is None:
            return None
        return Proposal(
            tx.id, [Allocation(item.id, credited, write_off)], max(0, min(100, ev.points)), ev.reasons,
            amount_explained=explained, identified=ev.identified,
        )

    def _group(self, tx: BankTx, ids: list[int], base: _Evidence, what: str) -> Proposal | None:
        items = [self.items[i] for i in ids]
        total = sum((i.open_amount for i in items), Decimal("0"))
        paid = abs(tx.amount)
        ev = _Evidence(base.points, list(base.reasons), base.identified)
        write_off = Decimal("0")
        if total == paid:
            ev.add(P_SUM, f"amount equals the sum of {len(items)} {what} ({', '.join(i.number for i in items)})")
        elif Decimal("0") < total - paid <= fee_tolerance_for(total):
            write_off = total - paid
            ev.add(P_FEES, f"sum of {len(items)} {what} less {_money(write_off)} of bank fees")
        else:
            return None
        allocations = [Allocation(i.id, i.open_amount) for i in items]
        if write_off:
            allocations[-1].write_off = write_off
        return Proposal(tx.id, allocations, max(0, min(100, ev.points)), ev.reasons,
                        amount_explained=True, identified=ev.identified)

    def propose(self, tx: BankTx) -> Proposal | None:
        """The best proposal for ``tx`` (``auto`` set when it may be applied without a person), or None."""
        if tx.amount == 0:
            return None
        sign = 1 if tx.amount > 0 else -1
        paid = abs(tx.amount)

        def usable(item_id: int) -> bool:
            item = self.items.get(item_id)
            return (
                item is not None
                and item.sign == sign
                and (tx.id, item_id) not in self.rejected
                and (not item.currency or not tx.currency or item.currency == tx.currency)
            )

        payer, how, certain = self._payer(tx)
        paid_cents = _cents(paid)
        slack = _cents(fee_tolerance_for(paid))

        def plausible(item_id: int) -> bool:
            """The payer's item, or one whose amount is about what was paid."""
            item = self.items[item_id]
            return item.client_id in payer or abs(self.cents[item_id] - paid_cents) <= slack

        exact, fuzzy_digits = self._number_hits(tx, plausible)
        exact = {i: r for i, r in exact.items() if usable(i)}
        # A typo'd number alone proves nothing (sequential numbers are all one edit apart): only plausible
        # items are checked further.
        fuzzy: dict[int, str] = {}
        for item_id, digits in fuzzy_digits.items():
            if item_id not in exact and plausible(item_id) and usable(item_id):
                reason = self._fuzzy_confirmed(item_id, digits)
                if reason is not None:
                    fuzzy[item_id] = reason
        partial_said = bool(words(tx.text) & PARTIAL_WORDS)

        same_amount = self.by_amount.get((sign, paid_cents), set())
        # An amount shared by many open items identifies nothing: such a bucket is not even filtered.
        bucket = [i for i in same_amount if usable(i)] if len(same_amount) <= MAX_AMOUNT_BUCKET else []
        candidates: dict[int, tuple[str, bool] | None] = {}
        for item_id, reason in fuzzy.items():
            candidates[item_id] = (reason, False)
        for item_id, reason in exact.items():
            candidates[item_id] = (reason, True)
        for item_id in bucket:
            candidates.setdefault(item_id, None)
        discounted = self.by_discounted.get((sign, paid_cents), ())
        if len(discounted) <= MAX_AMOUNT_BUCKET:
            for item_id in discounted:
                if usable(item_id):
                    candidates.setdefault(item_id, None)
        client_items: list[int] = []
        for client_id in payer if certain else ():  # a shared name points at no one in particular
            ids = self.by_client.get(client_id, set())
            if len(ids) <= MAX_CLIENT_ITEMS:
                client_items.extend(i for i in ids if usable(i))
        for item_id in client_items:
            candidates.setdefault(item_id, None)

        payer_bucket = sum(1 for i in client_items if self._open_cents(self.items[i]) == paid_cents)
        proposals: list[Proposal] = []
        for item_id, number_reason in candidates.items():
            proposal = self._single(
                tx, self.items[item_id], number_reason, payer, how, certain, partial_said, payer_bucket
            )
            if proposal is not None:
                proposals.append(proposal)

        # Several invoices paid at once: named in the text, or a combination of one payer's items.
        if len(exact) >= 2:
            base = _Evidence()
            base.add(P_NUMBER, f"{len(exact)} invoice numbers in the payment text", identifies=True)
            owners = {self.items[i].client_id for i in exact}
            if len(owners) == 1:
                self._client_evidence(base, self.items[next(iter(exact))], payer, how, certain)
            group = self._group(tx, sorted(exact, key=lambda i: self.items[i].number), base, "invoices named")
            if group is not None:
                proposals.append(group)
        if certain and len(client_items) >= 2 and not any(p.amount_explained and p.identified for p in proposals):
            proposals.extend(self._client_groups(tx, client_items, payer, how))

        if not proposals:
            return None
        proposals.sort(key=lambda p: (-p.score, len(p.allocations), min(p.item_ids)))
        best = proposals[0]
        rival = next((p for p in proposals[1:] if not (p.item_ids & best.item_ids)), None)
        if rival is not None and best.score - rival.score < AMBIGUITY_MARGIN and rival.score >= SUGGEST_THRESHOLD:
            best.reasons.append(f"another proposal scores nearly as high ({rival.score}): left for a person")
            best.auto = False
        else:
            best.auto = best.score >= AUTO_THRESHOLD and best.amount_explained and best.identified
        return best if best.score >= SUGGEST_THRESHOLD else None

    def _client_groups(self, tx: BankTx, client_items: list[int], payer: set[int], how: str) -> list[Proposal]:
        paid_cents = _cents(abs(tx.amount))
        ids = sorted(client_items, key=lambda i: (self.items[i].due_date or date.max, i))[:MAX_GROUP_ITEMS]
        found: list[tuple[int, ...]] = []
        max_size = 4 if len(ids) <= 12 else 3
        cents = {i: _cents(self.items[i].open_amount) for i in ids}
        for size in range(2, max_size + 1):
            for combo in combinations(ids, size):
                if sum(cents[i] for i in combo) == paid_cents:
                    found.append(combo)
                    if len(found) > 1:
                        break
            if found:
                break
        if len(found) != 1:
            return []
        base = _Evidence()
        item = self.items[found[0][0]]
        self._client_evidence(base, item, payer, how, True)
        base.add(P_UNIQUE_AMOUNT, "the only combination of this payer's open invoices with this sum")
        group = self._group(tx, list(found[0]), base, "open invoices of the payer")
        return [group] if group is not None else []

    def run(self, txs: Iterable[BankTx]) -> list[Proposal]:
        """Proposals for ``txs`` in booking order; automatic ones are consumed as they are made."""
        result = []
        for tx in sorted(txs, key=lambda t: (t.booking_date, t.id)):
            proposal = self.propose(tx)
            if proposal is None:
                continue
            if proposal.auto:
                self.consume(proposal)
            result.append(proposal)
        return result
