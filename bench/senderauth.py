"""Sender authentication cost per message: SPF + DKIM + DMARC with the real resolver (dnspython) against a
local DNS server (tests/dnsserver.py), so that what is measured is our work plus one loopback round trip
per question, not the Internet.

    .venv/bin/python bench/senderauth.py [--messages 200] [--pdf-kb 200]

Reports the median and p95 per message for: a DKIM-signed email with a ``--pdf-kb`` kB PDF, its first
evaluation (cold cache: every DNS question goes to the server) and the following ones (answers from the
TTL cache); an unsigned email (SPF + DMARC only); and an email whose DNS server never answers (bounded by
the time budget).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.mail import senderauth as sa  # noqa: E402
from tests.dnsserver import LocalDns  # noqa: E402
from tests.invoicegen import make_email, make_invoice_pdf  # noqa: E402
from tests.test_senderauth import make_key, sign, zone  # noqa: E402


def _pdf(kb: int) -> bytes:
    pdf = make_invoice_pdf(number="F-BENCH")
    return pdf + b"%" + b"x" * max(0, kb * 1024 - len(pdf)) + b"\n"


def _time(func, rounds: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        func()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _row(label: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"| {label} | {len(ms)} | {statistics.median(ms):.2f} ms | {p95:.2f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--pdf-kb", type=int, default=200)
    args = parser.parse_args()

    private, record = make_key()
    pdf = _pdf(args.pdf_kb)
    signed = sign(make_email("x@in.example.test", pdf, sender="billing@supplier.example"), private, "supplier.example")
    unsigned = make_email("x@in.example.test", pdf, sender="billing@supplier.example")
    with LocalDns(zone(record, spf="v=spf1 ip4:192.0.2.0/24 -all")) as server:
        def run(raw: bytes, lookup: sa.Lookup) -> sa.Verdicts:
            return sa.evaluate(raw, ip="192.0.2.10", mail_from="b@supplier.example", helo="mx.supplier.example",
                               lookup=lookup)

        cold = []
        for _ in range(min(args.messages, 50)):
            lookup = sa.SystemLookup([server.address])  # a new cache each time: every question asked
            cold += _time(lambda lookup=lookup: run(signed, lookup), 1)
        warm_lookup = sa.SystemLookup([server.address])
        verdicts = run(signed, warm_lookup)
        assert (verdicts.spf, verdicts.dkim, verdicts.dmarc) == ("pass", "pass", "pass"), verdicts
        warm = _time(lambda: run(signed, warm_lookup), args.messages)
        plain = _time(lambda: run(unsigned, warm_lookup), args.messages)

    # A server that swallows every question: the budget (default 2 s) is what a message can cost.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    dead_lookup = sa.SystemLookup([f"127.0.0.1:{silent.getsockname()[1]}"])
    dead = _time(lambda: sa.evaluate(signed, ip="192.0.2.10", mail_from="b@supplier.example", helo="h",
                                     lookup=dead_lookup, budget=sa.budget_seconds()), 3)
    silent.close()

    size_kb = len(signed) // 1024
    print("| message | runs | median | p95 |\n|---|---:|---:|---:|")
    print(_row(f"signed, {size_kb} KB, cold DNS cache (6 questions to the server)", cold))
    print(_row(f"signed, {size_kb} KB, warm DNS cache", warm))
    print(_row(f"unsigned, {size_kb} KB, warm DNS cache (SPF + DMARC only)", plain))
    print(_row("DNS server silent (the budget bounds it)", dead))


if __name__ == "__main__":
    main()
