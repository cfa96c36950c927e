"""A FEC checker for the tests: the format checks of the DGFiP's Test Compta Demat tool, ported, plus the
per-entry balance it does not make. ``check_fec`` returns the list of problems (empty: the file passes)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
           "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
           "ValidDate", "Montantdevise", "Idevise")
REQUIRED = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "PieceRef",
            "PieceDate", "EcritureLib", "ValidDate")
DATES = ("EcritureDate", "PieceDate", "DateLet", "ValidDate")
NAME = re.compile(r"^(\d{9})FEC(\d{8})(\.txt)?$")
AMOUNT = re.compile(r"^-?\d+(,\d{1,2})?$")


def _date(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date() if re.fullmatch(r"\d{8}", text) else None
    except ValueError:
        return None


def _amount(text: str) -> Decimal:
    return Decimal(text.replace(",", ".")) if text else Decimal(0)


def check_fec(name: str, data: bytes, year_start: date, year_end: date) -> list[str]:
    problems: list[str] = []
    match = NAME.match(name)
    if not match:
        problems.append(f"file name {name!r} is not SIRENFECAAAAMMJJ")
    elif _date(match.group(2)) != year_end:
        problems.append(f"file name date {match.group(2)} is not the closing date {year_end}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [*problems, "not UTF-8"]
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        return [*problems, "the header is not the 18 columns in order, tab-separated"]
    balances: dict[str, Decimal] = defaultdict(Decimal)
    entry_keys: dict[str, tuple[str, str]] = {}
    numbers: list[int] = []
    total_debit = total_credit = Decimal(0)
    last_valid: date | None = None
    for index, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(COLUMNS):
            problems.append(f"line {index}: {len(fields)} fields, not 18")
            continue
        row = dict(zip(COLUMNS, fields, strict=True))
        for column in REQUIRED:
            if not row[column].strip():
                problems.append(f"line {index}: {column} is empty")
        for column in DATES:
            if row[column] and _date(row[column]) is None:
                problems.append(f"line {index}: {column} {row[column]!r} is not a date AAAAMMJJ")
        entry_date = _date(row["EcritureDate"])
        if entry_date and not year_start <= entry_date <= year_end:
            problems.append(f"line {index}: EcritureDate {row['EcritureDate']} is outside the fiscal year")
        for column in ("Debit", "Credit", "Montantdevise"):
            if row[column] and not AMOUNT.match(row[column]):
                problems.append(f"line {index}: {column} {row[column]!r} is not an amount with a comma")
        if not AMOUNT.match(row["Debit"] or "x") or not AMOUNT.match(row["Credit"] or "x"):
            continue
        debit, credit = _amount(row["Debit"]), _amount(row["Credit"])
        if debit and credit:
            problems.append(f"line {index}: both Debit and Credit are set")
        if bool(row["CompAuxNum"]) != bool(row["CompAuxLib"]):
            problems.append(f"line {index}: CompAuxNum and CompAuxLib go together")
        if bool(row["EcritureLet"]) != bool(row["DateLet"]):
            problems.append(f"line {index}: EcritureLet and DateLet go together")
        if bool(row["Montantdevise"]) != bool(row["Idevise"]):
            problems.append(f"line {index}: Montantdevise and Idevise go together")
        valid = _date(row["ValidDate"])
        if valid and last_valid and valid < last_valid:
            problems.append(f"line {index}: entries are not in order of validation")
        last_valid = valid or last_valid
        number = row["EcritureNum"]
        key = (row["JournalCode"], row["EcritureDate"])
        if number in entry_keys:
            if entry_keys[number] != key:
                problems.append(f"line {index}: entry {number} changes journal or date")
            if numbers[-1] != int(number):
                problems.append(f"line {index}: the lines of entry {number} are not together")
        else:
            entry_keys[number] = key
            numbers.append(int(number) if number.isdigit() else -1)
        balances[number] += debit - credit
        total_debit += debit
        total_credit += credit
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append("EcritureNum is not sequential from 1 without gaps")
    for number, balance in balances.items():
        if balance:
            problems.append(f"entry {number} is not balanced ({balance})")
    if total_debit != total_credit:
        problems.append(f"the file is not balanced: {total_debit} / {total_credit}")
    return problems
