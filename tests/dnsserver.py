"""A small DNS server on 127.0.0.1 (UDP) answering from a dict, served with dnspython: the sender
authentication tests point the real resolver (``SystemLookup``) at it, so no test asks the network."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

Records = dict[tuple[str, str], list[str]]  # ("_dmarc.example.com", "TXT") -> ["v=DMARC1; p=reject"]


def _txt(value: str) -> str:
    """A TXT value as zone text: quoted chunks of at most 255 characters (a DKIM key is longer)."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in chunks)


class LocalDns:
    def __init__(self, records: Records | None = None, *, servfail: set[str] | None = None) -> None:
        self.records: Records = {(name.lower().rstrip("."), rdtype): v for (name, rdtype), v in (records or {}).items()}
        self.servfail = servfail or set()  # names answered SERVFAIL (a temporary error)
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, client = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                self._sock.sendto(self._answer(wire), client)
            except Exception:  # a malformed query: no answer, as a real server might do
                continue

    def _answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in self.records:
            values = self.records[(name, rdtype)]
            texts = [_txt(v) for v in values] if rdtype == "TXT" else values
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", rdtype, *texts))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()
