"""Where the shared public corpora are: ``INBOX_CORPUS``, else ``../shared/corpus`` beside the checkout.

Outside CI a test that needs a missing corpus is skipped (a newcomer's clone without the shared folder still
runs the rest). Under ``CI=true`` a missing corpus fails the whole run at its start (``tests/conftest.py``),
because CI always has it and a silent skip there would hide a broken layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ["INBOX_CORPUS"]) if os.environ.get("INBOX_CORPUS") else REPO.parent / "shared" / "corpus"
# The folders the suite reads; CI fails at once when one is missing.
NEEDED = ("eml", "eml/mime", "bank", "einvoice", "invoice2data", "realworld")


def missing_folders() -> list[Path]:
    return [CORPUS / name for name in NEEDED if not (CORPUS / name).is_dir()]


def needs(path: Path) -> pytest.MarkDecorator:
    """Skip the test when ``path`` (a corpus file or folder) is absent; under CI the run has failed already."""
    return pytest.mark.skipif(not path.exists(), reason=f"the shared corpus is not at {path} (set INBOX_CORPUS)")
