"""Cost of unpacking real-world email: the shared .eml corpus, a zip bomb, a crafted winmail.dat, a big zip.

    .venv/bin/python bench/real_world_unpack.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.einvoice  # noqa: E402,F401  (imported once, as in the worker, not timed)
from core.mail.unpack import unpack  # noqa: E402
from tests.corpus import CORPUS as SHARED  # noqa: E402
from tests.invoicegen import make_image, make_invoice_pdf  # noqa: E402

CORPUS = SHARED / "eml"


def message_with(data: bytes, content_type: str, name: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.test", "b@example.test", "bench"
    message.set_content("bench")
    maintype, _, subtype = content_type.partition("/")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def timed(label: str, raw: bytes, rounds: int) -> None:
    start = time.perf_counter()
    for _ in range(rounds):
        result = unpack(raw)
    per = (time.perf_counter() - start) / rounds * 1000
    print(f"{label:<48} {len(raw) / 1024:>9.0f} KB {per:>9.2f} ms  files={len(result.attachments)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    corpus = sorted(CORPUS.glob("*.eml")) + sorted((CORPUS / "mime").glob("*.eml"))
    if corpus:
        raws = [p.read_bytes() for p in corpus]
        start = time.perf_counter()
        for _ in range(rounds):
            for raw in raws:
                unpack(raw)
        per = (time.perf_counter() - start) / (rounds * len(raws)) * 1000
        print(f"{'corpus: ' + str(len(raws)) + ' messages, mean per message':<48} {'':>12} {per:>9.2f} ms")
    pdf = make_invoice_pdf()
    timed("zip bomb (64 MB of zeros in one member)", message_with(
        zip_of({"f.pdf": b"%PDF-1.4\n" + b"\0" * (64 << 20)}), "application/zip", "bomb.zip"), rounds)
    timed("zip of 40 PDFs", message_with(zip_of({f"f{i}.pdf": pdf + bytes([i]) for i in range(40)}),
                                         "application/zip", "f.zip"), rounds)
    crafted = struct.pack("<IH", 0x223E9F78, 1) + (struct.pack("<BHHI", 1, 0x8004, 1, 0) + b"\0\0") * 500_000
    timed("winmail.dat with 500,000 empty objects", message_with(crafted, "application/ms-tnef", "winmail.dat"),
          rounds)
    timed("photo 1600x1200 (noisy PNG)", b"".join([message_with(make_image(1600, 1200), "image/png", "p.png")]),
          max(1, rounds // 4))


if __name__ == "__main__":
    main()
