"""Bank statement parsing throughput over the corpus, as a markdown table.

    .venv/bin/python bench/bank_parse.py [--seconds 0.5] [--corpus PATH]

Each file is parsed repeatedly for about ``--seconds``; rates are per format and in total.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.banking import detect_format, parse_statement  # noqa: E402 - after the path fix-up
from tests.corpus import CORPUS as SHARED  # noqa: E402

DEFAULT_CORPUS = SHARED


def measure(path: Path, seconds: float) -> tuple[int, int, float]:
    """(runs, transactions per run, elapsed seconds) for repeatedly parsing one file."""
    data = path.read_bytes()
    transactions = sum(len(s.transactions) for s in parse_statement(data, path.name))  # warm-up
    runs, started = 0, time.perf_counter()
    while True:
        parse_statement(data, path.name)
        runs += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return runs, transactions, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time spent per file")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    files = sorted((args.corpus / "bank").iterdir())
    # per format: [files, transactions in those files, parse runs, transactions parsed, seconds]
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    for path in files:
        runs, tx, elapsed = measure(path, args.seconds)
        for key in (detect_format(path.read_bytes(), path.name), "all"):
            row = totals[key]
            for index, value in enumerate((1, tx, runs, runs * tx, elapsed)):
                row[index] += value
    print("| format | files | transactions | files/s | transactions/s |")
    print("|---|---:|---:|---:|---:|")
    for key in sorted(totals, key=lambda k: (k == "all", k)):
        count, in_files, runs, parsed, elapsed = totals[key]
        print(f"| {key} | {count:.0f} | {in_files:.0f} | {runs / elapsed:,.0f} | {parsed / elapsed:,.0f} |")

if __name__ == "__main__":
    main()
