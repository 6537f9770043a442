"""Paths to the shared real network data and the field failure cases.

Tests read the data in place; ``OMNITWIN_TEST_DATA`` points elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Return the folder of real network data (``OMNITWIN_TEST_DATA`` overrides)."""
    return Path(os.environ.get("OMNITWIN_TEST_DATA", REPO.parent / "shared" / "data"))


def data_file(*parts: str) -> Path:
    """Return a file under the shared data folder, failing with its name if absent."""
    path = shared_data_dir().joinpath(*parts)
    if not path.exists():
        pytest.fail(f"test data file {path} is missing; set OMNITWIN_TEST_DATA")
    return path


def load_cases(area: str) -> dict[str, dict[str, Any]]:
    """Return the field failure cases of one area, keyed by id."""
    path = shared_data_dir().parent / "cases" / "cases.jsonl"
    if not path.exists():
        pytest.fail(f"failure cases file {path} is missing")
    cases = [json.loads(line) for line in path.read_text().splitlines() if line]
    return {c["id"]: c for c in cases if c["area"] == area}
