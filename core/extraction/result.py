"""What an extractor found: typed values, and for each one where it came from and how sure we are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GENERIC = "generic"
# Under this confidence a field is shown with a "check" flag (review page, API). Calibrated on the real
# invoices of the shared corpus (bench/realworld.py): among fields at or above it, at least 97 % are right.
CHECK_BELOW = 0.8


def needs_check(confidence: Any) -> bool:
    """True when a person should check the value (unknown confidence included)."""
    return not isinstance(confidence, int | float) or confidence < CHECK_BELOW


def with_check_flags(field_info: dict[str, Any]) -> dict[str, Any]:
    """``field_info`` with ``check`` set on every field entry (entries without a confidence are not fields)."""
    return {name: ({**info, "check": needs_check(info.get("confidence"))}
                   if isinstance(info, dict) and "confidence" in info else info)
            for name, info in field_info.items()}


def template_source(issuer: str) -> str:
    return f"invoice2data:{issuer}"[:64]  # fits Document.extraction_source


@dataclass
class Extraction:
    """``fields`` holds typed values (str, Decimal, date) for the fields found, and only those.

    ``field_info[name]`` is ``{"source": "generic" | "invoice2data:<issuer>", "confidence": 0..1}``,
    sometimes with a ``note`` the review page can show.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    field_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def set(self, name: str, value: Any, source: str, confidence: float, note: str | None = None) -> None:
        self.fields[name] = value
        info: dict[str, Any] = {"source": source, "confidence": round(max(0.0, min(1.0, confidence)), 2)}
        if note:
            info["note"] = note
        self.field_info[name] = info

    def confidence(self, name: str) -> float:
        return float(self.field_info.get(name, {}).get("confidence", 0.0))

    def adjust(self, name: str, confidence: float, note: str | None = None) -> None:
        if name in self.field_info:
            self.field_info[name]["confidence"] = round(max(0.0, min(1.0, confidence)), 2)
            if note:
                self.field_info[name]["note"] = note

    def fill_from(self, other: Extraction) -> None:
        """Take ``other``'s fields that this one lacks (this one's values win)."""
        for name, value in other.fields.items():
            if name not in self.fields:
                self.fields[name] = value
                self.field_info[name] = dict(other.field_info.get(name, {}))

    @property
    def source(self) -> str | None:
        """The main source: the template when one contributed, else the generic extractor."""
        sources = [str(info.get("source")) for info in self.field_info.values() if info.get("source")]
        for src in sources:
            if not src.endswith(GENERIC):  # "invoice2data:<issuer>", "ocr+invoice2data:<issuer>"
                return src
        return sources[0] if sources else None
