"""Cost of recognising forwarding confirmations, paid by the worker for every received email.

    .venv/bin/python bench/forwarding_recognition.py [--rounds N]

Prints a markdown table (paste into docs/benchmarks.md): per email, the median time of ``recognize`` on a
Gmail confirmation (text, base64), a Microsoft one (text + HTML), an ordinary invoice email with a PDF
(the common case: rejected from the From header) and a 5 MB email from Google (rejected by size).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.mail.verification import recognize  # noqa: E402
from tests.invoicegen import make_invoice_pdf  # noqa: E402
from tests.test_forwarding import TO, gmail_email, microsoft_email  # noqa: E402


def median_ms(raw: bytes, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        recognize(raw)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    big_body = ("Votre espace de stockage est presque plein. " * 120_000)[:5_000_000]
    samples = {
        "Gmail confirmation (base64)": gmail_email(TO, cte="base64"),
        "Microsoft verification (text + HTML)": microsoft_email(TO),
        "invoice email with a PDF (not from a provider)": gmail_email(
            TO, sender="compta@client.example", subject="Facture", body="Ci-joint.",
            attachment=make_invoice_pdf(number="F-1")),
        "5 MB email from Google (over the 512 KB bound)": gmail_email(TO, subject="Stockage", body=big_body,
                                                                  cte="base64"),
    }
    print(f"| email | size | median per email ({rounds} rounds) |")
    print("|---|---:|---:|")
    for name, raw in samples.items():
        print(f"| {name} | {len(raw) / 1024:.0f} KB | {median_ms(raw, rounds):.3f} ms |")


if __name__ == "__main__":
    main()
