"""Bank statements in: accounts by IBAN, transactions deduplicated by fingerprint.

``import_statement`` is what the dashboard upload, the API and the email path all call. Re-importing an
overlapping statement adds nothing twice: every transaction carries a fingerprint unique per account
(see ``core.banking.fingerprint``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from core.banking import (
    CsvMapping,
    Statement,
    StatementError,
    Transaction,
    detect_format,
    guess_csv_mapping,
    parse_statement,
)
from core.banking.models import UnknownCsvLayout
from core.banking.util import collapse, iban_or_none
from core.errors import NotFound, ServiceError, ValidationFailed
from core.i18n import N_
from core.mail.parsed import ReceivedEmail
from core.mail.senderauth import Verdicts
from core.models import (
    BankAccount,
    BankTransaction,
    InboundMessage,
    Match,
    MessageSource,
    Tenant,
    TransactionStatus,
    User,
)
from core.reasons import Reason, reason

logger = logging.getLogger(__name__)
_CHUNK = 500
MAX_STATEMENT_BYTES = 50 * 1024 * 1024
MAX_MAPPING_TEXT = 200
# CsvMapping fields a person may set (the rest are derived or internal).
MAPPING_FIELDS = tuple(f.name for f in dataclasses.fields(CsvMapping) if f.name != "signature")
_COLUMN_FIELDS = (
    "booking_date", "amount", "debit", "credit", "value_date", "currency", "counterparty_name",
    "counterparty_iban", "reference", "bank_reference", "booking_text", "account", "status",
)  # fmt: skip


class UnreadableStatement(ServiceError):
    """The file is not a statement we can read; ``needs_csv_mapping`` when describing its CSV columns would
    make it readable (the dashboard then opens the account's column form)."""

    def __init__(self, message: str, *, needs_csv_mapping: bool = False) -> None:
        super().__init__(message)
        self.needs_csv_mapping = needs_csv_mapping


@dataclass
class ImportResult:
    statements: int = 0
    created: int = 0
    duplicates: int = 0
    pending: int = 0
    account_ids: list[int] = field(default_factory=list)
    transaction_ids: list[int] = field(default_factory=list)
    applied: int = 0
    suggested: int = 0
    categorised: int = 0

    def summary(self) -> str:
        return (
            f"{self.created} new transaction(s), {self.duplicates} already imported, {self.pending} pending; "
            f"{self.applied} matched automatically, {self.suggested} suggestion(s), {self.categorised} categorised"
        )


# Accounts ------------------------------------------------------------------------------------


def account_ref(text: str | None) -> str | None:
    """The IBAN when ``text`` is one (spaces dropped), else the identifier as the bank wrote it."""
    return iban_or_none(text) or (collapse(text)[:64] or None)


def accounts_query(tenant_id: int) -> Select[Any]:
    return select(BankAccount).where(BankAccount.tenant_id == tenant_id).order_by(BankAccount.name, BankAccount.id)


def get_account(session: Session, tenant_id: int, account_id: int) -> BankAccount:
    account = session.get(BankAccount, account_id)
    if account is None or account.tenant_id != tenant_id:
        raise NotFound("no such bank account")
    return account


def find_or_create_account(
    session: Session, tenant_id: int, iban: str, currency: str | None = None, name: str = ""
) -> BankAccount:
    ref = account_ref(iban)
    if not ref:
        raise ValidationFailed({"iban": N_("an IBAN or account number is required")})
    account = session.scalars(
        select(BankAccount).where(BankAccount.tenant_id == tenant_id, BankAccount.iban == ref)
    ).first()
    if account is None:
        account = BankAccount(tenant_id=tenant_id, iban=ref, name=(name or ref)[:200], currency=currency)
        session.add(account)
        session.flush()
    return account


# CSV mappings ----------------------------------------------------------------------------------


def mapping_to_json(mapping: CsvMapping) -> dict[str, Any]:
    data = {name: getattr(mapping, name) for name in MAPPING_FIELDS}
    if isinstance(data["remittance"], tuple):
        data["remittance"] = list(data["remittance"])
    data["date_formats"] = list(data["date_formats"])
    return data


def mapping_from_json(data: dict[str, Any]) -> CsvMapping:
    """A ``CsvMapping`` from saved (or submitted) values; ValidationFailed says which field is wrong."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in MAPPING_FIELDS or value is None or value == "":
            continue
        if isinstance(value, str) and len(value) > MAX_MAPPING_TEXT:
            errors[name] = N_("at most {limit} characters").format(limit=MAX_MAPPING_TEXT)
        elif name == "remittance" and isinstance(value, list):
            values[name] = tuple(v for v in value if isinstance(v, str | int) and v != "")
        elif name == "date_formats" and isinstance(value, list):
            values[name] = tuple(str(v) for v in value)
        elif name in _COLUMN_FIELDS or name == "remittance":
            if isinstance(value, bool) or not isinstance(value, str | int):
                errors[name] = N_("a column name or a 0-based column number")
            else:
                values[name] = value
        elif name in ("has_header", "decimal_comma"):
            values[name] = bool(value)
        elif name == "skip_rows":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                errors[name] = N_("a number of rows from 0 to 100")
            else:
                values[name] = value
        elif name in ("delimiter", "quotechar"):
            value = "\t" if value in ("\\t", "tab") else value
            if not isinstance(value, str) or len(value) != 1:
                errors[name] = N_("a single character")
            else:
                values[name] = value
        elif isinstance(value, str):
            values[name] = value
        else:
            errors[name] = N_("must be text")
    if "booking_date" not in values:
        errors.setdefault("booking_date", "the booking date column is required")
    if "amount" not in values and "debit" not in values and "credit" not in values:
        errors.setdefault("amount", "an amount column (or debit and credit columns) is required")
    if errors:
        raise ValidationFailed(errors)
    return CsvMapping(**values)


def save_csv_mapping(session: Session, tenant_id: int, account_id: int, data: dict[str, Any]) -> BankAccount:
    account = get_account(session, tenant_id, account_id)
    account.csv_mapping = mapping_to_json(mapping_from_json(data))
    session.flush()
    return account


# Statements in ---------------------------------------------------------------------------------


def looks_like_statement(data: bytes, filename: str = "") -> bool:
    """True when ``data`` is a bank statement we can read (CAMT, MT940, OFX, or a CSV of a known bank
    layout) rather than an invoice; the email path uses it to route an attachment."""
    if not data or data.lstrip()[:5] == b"%PDF-":
        return False
    try:
        fmt = detect_format(data, filename)
    except StatementError:
        return False
    if fmt == "csv":
        try:
            return guess_csv_mapping(data) is not None
        except StatementError:
            return False
    if fmt == "camt":
        return True
    try:
        return any(s.transactions or s.closing_balance is not None for s in parse_statement(data, filename))
    except StatementError:
        return False


def _statement_account(
    session: Session, tenant_id: int, statement: Statement, chosen: BankAccount | None, verified: bool
) -> BankAccount:
    ref = account_ref(statement.account_iban or statement.account_id)
    if chosen is not None:
        if ref and ref != chosen.iban and statement.account_iban:
            raise ServiceError(
                N_("the file is a statement of account {ref}, not of {iban}").format(ref=ref, iban=chosen.iban)
            )
        return chosen
    if not ref:
        raise ServiceError(N_("the statement does not name its account: choose the account and upload again"))
    if verified:
        return find_or_create_account(session, tenant_id, ref, statement.currency)
    # An unverified statement never creates an account: anyone could invent one for the company.
    account = session.scalars(
        select(BankAccount).where(BankAccount.tenant_id == tenant_id, BankAccount.iban == ref)
    ).first()
    if account is None:
        raise ServiceError(
            N_("not imported: account {ref} is not one of your bank accounts and the statement is unverified").format(
                ref=ref
            )
        )
    return account


def _existing_fingerprints(session: Session, account_id: int, fingerprints: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(fingerprints), _CHUNK):
        chunk = fingerprints[start : start + _CHUNK]
        found.update(
            session.scalars(
                select(BankTransaction.fingerprint).where(
                    BankTransaction.account_id == account_id, BankTransaction.fingerprint.in_(chunk)
                )
            )
        )
    return found


def _unverified_rows(session: Session, account_id: int, fingerprints: list[str]) -> dict[str, BankTransaction]:
    """The account's rows from unverified statements among ``fingerprints``, by fingerprint."""
    found: dict[str, BankTransaction] = {}
    for start in range(0, len(fingerprints), _CHUNK):
        chunk = fingerprints[start : start + _CHUNK]
        stmt = select(BankTransaction).where(
            BankTransaction.account_id == account_id,
            BankTransaction.unverified.is_(True),
            BankTransaction.fingerprint.in_(chunk),
        )
        found.update((row.fingerprint, row) for row in session.scalars(stmt))
    return found


def _row_values(tx: Transaction, statement: Statement, account: BankAccount) -> dict[str, Any]:
    """A transaction's columns as the statement gives them."""
    return {
        "booking_date": tx.booking_date,
        "value_date": tx.value_date,
        "amount": tx.amount.quantize(Decimal("0.01")),
        "currency": tx.currency or statement.currency or account.currency,
        "counterparty": (tx.counterparty_name or "")[:300] or None,
        "iban": tx.counterparty_iban,
        "remittance": tx.remittance[:4000],
        "reference": (tx.reference or "")[:300] or None,
        "pending": tx.pending,
    }


def _confirm_unverified(row: BankTransaction, values: dict[str, Any]) -> bool:
    """The bank's own statement confirms a row first seen in an unverified one: its data replaces what the
    unverified mail said (a forger chooses the text behind a reused bank reference). True when the row must
    be categorised and matched again (a person has not already decided on it)."""
    for name, value in values.items():
        setattr(row, name, value)
    row.unverified = False
    undecided = {TransactionStatus.UNMATCHED.value, TransactionStatus.SUGGESTED.value}
    if row.status in undecided or (row.status == TransactionStatus.IGNORED.value and row.rule_id is not None):
        row.category, row.rule_id, row.status = None, None, TransactionStatus.UNMATCHED.value
        return True
    return False


def _drop_stale_pending(session: Session, account_id: int) -> None:
    """Pending rows are replaced by each new file (booked ones arrive with their own fingerprint)."""
    matched = select(Match.transaction_id)
    session.execute(
        delete(BankTransaction).where(
            BankTransaction.account_id == account_id,
            BankTransaction.pending.is_(True),
            BankTransaction.id.not_in(matched),
        )
    )


def _update_balance(account: BankAccount, statement: Statement) -> None:
    if statement.kind != "statement" or statement.closing_balance is None:
        return
    as_of = statement.period_end or max((t.booking_date for t in statement.transactions), default=None)
    if as_of is None:
        return
    if account.balance_date is None or as_of >= account.balance_date:
        account.balance, account.balance_date = statement.closing_balance, as_of
        account.currency = account.currency or statement.currency


def import_statement(
    session: Session,
    tenant_id: int,
    data: bytes,
    filename: str = "",
    account_id: int | None = None,
    csv_mapping: CsvMapping | None = None,
    match: bool = True,
    verified: bool = True,
) -> ImportResult:
    """Import a statement file; new transactions are categorised by the rules and matched.

    ``verified=False`` (a mailed statement not proven to come from the tenant's bank): its transactions
    are marked ``unverified`` and are only ever suggested, never matched automatically.

    Raises ``ServiceError`` with a reason a person can act on when the file cannot be read.
    """
    from core.banking import reconciliation

    chosen = get_account(session, tenant_id, account_id) if account_id is not None else None
    if csv_mapping is None and chosen is not None and chosen.csv_mapping:
        try:
            is_csv = detect_format(data, filename) == "csv"
        except StatementError:
            is_csv = False
        if is_csv:
            csv_mapping = mapping_from_json(chosen.csv_mapping)
    try:
        statements = parse_statement(data, filename, csv_mapping)
    except StatementError as exc:
        message = reason(N_("The file could not be read as a bank statement: {reason}"), reason=exc.reason)
        raise UnreadableStatement(message, needs_csv_mapping=isinstance(exc, UnknownCsvLayout)) from exc

    result = ImportResult(statements=len(statements))
    new: list[BankTransaction] = []
    confirmed: list[BankTransaction] = []
    cleared: set[int] = set()
    for statement in statements:
        account = _statement_account(session, tenant_id, statement, chosen, verified)
        if account.id not in result.account_ids:
            result.account_ids.append(account.id)
        fingerprints = [t.fingerprint for t in statement.transactions]
        # Only the bank's own (verified) statement may change what the account already holds.
        if verified:
            if statement.source_format.startswith("csv") and not account.csv_mapping and csv_mapping is None:
                layout = guess_csv_mapping(data)
                if layout is not None:
                    account.csv_mapping = mapping_to_json(layout)  # the next upload of this bank needs no guess
            if account.id not in cleared:
                _drop_stale_pending(session, account.id)
                cleared.add(account.id)
        unconfirmed = _unverified_rows(session, account.id, fingerprints) if verified else {}
        existing = _existing_fingerprints(session, account.id, fingerprints)
        for tx in statement.transactions:
            values = _row_values(tx, statement, account)
            if tx.fingerprint in unconfirmed:
                row = unconfirmed.pop(tx.fingerprint)
                if _confirm_unverified(row, values):
                    confirmed.append(row)
                result.duplicates += 1
                continue
            if tx.fingerprint in existing:
                result.duplicates += 1
                continue
            existing.add(tx.fingerprint)
            result.pending += tx.pending
            row = BankTransaction(
                tenant_id=tenant_id,
                account_id=account.id,
                fingerprint=tx.fingerprint,
                unverified=not verified,
                status=TransactionStatus.UNMATCHED.value,
                **values,
            )
            session.add(row)
            new.append(row)
        if verified:
            _update_balance(account, statement)
    session.flush()
    result.created = len(new)
    result.transaction_ids = [row.id for row in new]
    again = result.transaction_ids + [row.id for row in confirmed]
    if again:
        result.categorised = reconciliation.apply_rules(session, tenant_id, transaction_ids=again)
        if match:
            summary = reconciliation.run_matching(session, tenant_id, transaction_ids=again)
            result.applied, result.suggested = summary.applied, summary.suggested
    return result


# Statements by email ---------------------------------------------------------------------------

MAX_MAIL_PARTS = 100
MAX_BANK_SENDERS = 20
UNVERIFIED_REASON = N_(
    "unverified: not from an authenticated sender declared for your bank (Settings → Sender authentication), "
    "so its payments are only suggested, never applied automatically"
)
# What an email's bank statements gave, the message's reason (core/reasons.py); {notes}: a list of reasons.
STATEMENTS_REASON = N_("{found} bank statement(s): {created} new transaction(s), {duplicates} already imported, "
                       "{applied} matched automatically, {suggested} suggestion(s)")
STATEMENTS_NOTES_REASON = N_("{found} bank statement(s): {created} new transaction(s), {duplicates} already "
                             "imported, {applied} matched automatically, {suggested} suggestion(s); {notes}")
STATEMENT_FAILED_NOTE = N_("{file}: {error} (upload it on the Bank page)")


def bank_senders(session: Session, tenant_id: int) -> list[str]:
    """The addresses and @domains the tenant declared for its bank's mailed statements."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such company.")
    return [line for line in (tenant.bank_senders or "").splitlines() if line]


def set_bank_senders(session: Session, tenant_id: int, text: str, actor: User | None = None) -> list[str]:
    """Replace the declared bank senders (one address or @domain a line); ValidationFailed names the bad one."""
    from core.inbound import senders
    from core.tenancy import audit

    patterns: list[str] = []
    for line in (text or "").splitlines()[: MAX_BANK_SENDERS + 1]:
        if not line.strip():
            continue
        try:
            pattern = senders.normalize_pattern(line)
        except ValidationFailed as exc:
            raise ValidationFailed({"bank_senders": exc.errors["pattern"]}) from exc
        if pattern not in patterns:
            patterns.append(pattern)
    if len(patterns) > MAX_BANK_SENDERS:
        raise ValidationFailed({"bank_senders": N_("At most {limit} bank senders.").format(limit=MAX_BANK_SENDERS)})
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such company.")
    before = bank_senders(session, tenant_id)
    if before != patterns:
        tenant.bank_senders = "\n".join(patterns) or None
        audit.record(session, tenant_id, "settings.bank_senders", actor=actor, target=f"tenant:{tenant_id}",
                     detail={"from": before, "to": patterns})
        session.flush()
    return patterns


def statement_sender_verified(session: Session, message: InboundMessage, verdicts: Verdicts | None) -> bool:
    """True when ``message`` may apply payments: from a declared bank sender and DKIM/DMARC-authenticated.

    An upload is a signed-in person's file: verified. Mail (SMTP, IMAP) needs both: ``From`` alone can be
    written by anyone who can send the tenant an email.
    """
    from core.inbound import senderauth, senders

    if message.source == MessageSource.UPLOAD.value:
        return True
    address = senders.sender_address(message.sender)
    declared = bank_senders(session, message.tenant_id)
    return senders.matches_any(address, declared) and senderauth.authenticates(verdicts, address, dkim_only=True)


@dataclass
class MailStatements:
    """What ``import_mail_statements`` found in one email."""

    found: int = 0  # attachments recognised as statements
    created: int = 0
    duplicates: int = 0
    applied: int = 0
    suggested: int = 0
    verified: bool = False
    errors: list[Reason] = field(default_factory=list)

    @property
    def reason(self) -> Reason | None:
        """A line for the message's reason (None when the email held no statement)."""
        if not self.found:
            return None
        counts = {"found": self.found, "created": self.created, "duplicates": self.duplicates,
                  "applied": self.applied, "suggested": self.suggested}
        notes = ([] if self.verified else [Reason(UNVERIFIED_REASON)]) + self.errors
        if notes:
            return reason(STATEMENTS_NOTES_REASON, **counts, notes=notes)
        return reason(STATEMENTS_REASON, **counts)


def _mail_parts(raw: bytes | ReceivedEmail) -> list[tuple[str, bytes]]:
    message = ReceivedEmail.of(raw).message  # parsed once for this and core.mail.unpack (same job)
    parts: list[tuple[str, bytes]] = []
    for part in message.walk():
        if len(parts) >= MAX_MAIL_PARTS or part.is_multipart():
            continue
        filename = part.get_filename() or ""
        if not filename and part.get_content_disposition() != "attachment":
            continue  # the body text is never a statement
        try:
            data = part.get_payload(decode=True)
        except Exception as exc:  # a broken part: the invoice path reports on the message itself
            logger.info("mail part not decoded: %s", type(exc).__name__)
            continue
        if isinstance(data, bytes) and 0 < len(data) <= MAX_STATEMENT_BYTES:
            parts.append((filename[:255], data))
    return parts


def import_mail_statements(session: Session, tenant_id: int, raw: bytes | ReceivedEmail, *,
                           verified: bool) -> MailStatements:
    """Import every bank-statement attachment of an email (CAMT, MT940, OFX, known CSV layouts).

    ``verified``: the mail comes from the tenant's declared bank sender, authenticated
    (``statement_sender_verified``); otherwise its transactions are only suggested, never applied.

    Safe to run twice (fingerprints). Each statement is imported in a savepoint: a broken one is
    reported in ``errors`` and the others are kept. Invoices in the same email are not touched.
    """
    result = MailStatements(verified=verified)
    for filename, data in _mail_parts(raw):
        if not looks_like_statement(data, filename):
            continue
        result.found += 1
        savepoint = session.begin_nested()
        try:
            imported = import_statement(session, tenant_id, data, filename, verified=verified)
        except ServiceError as exc:
            savepoint.rollback()
            why = exc.args[0] if exc.args and isinstance(exc.args[0], Reason) else str(exc)
            result.errors.append(reason(STATEMENT_FAILED_NOTE, file=filename or "statement", error=why))
            continue
        savepoint.commit()
        result.created += imported.created
        result.duplicates += imported.duplicates
        result.applied += imported.applied
        result.suggested += imported.suggested
    return result


# Transactions ----------------------------------------------------------------------------------


def transactions_query(
    tenant_id: int, status: str | None = None, account_id: int | None = None, since: date | None = None
) -> Select[Any]:
    stmt = select(BankTransaction).where(BankTransaction.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(BankTransaction.status == TransactionStatus(status).value)
    if account_id is not None:
        stmt = stmt.where(BankTransaction.account_id == account_id)
    if since is not None:
        stmt = stmt.where(BankTransaction.booking_date >= since)
    return stmt.order_by(BankTransaction.booking_date.desc(), BankTransaction.id.desc())


def get_transaction(session: Session, tenant_id: int, transaction_id: int) -> BankTransaction:
    tx = session.get(BankTransaction, transaction_id)
    if tx is None or tx.tenant_id != tenant_id:
        raise NotFound("no such transaction")
    return tx
