"""Locate the shared real-world import files that the importer tests read in place."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_REPO = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Return the shared data folder, overridable with ``OMNITWIN_TEST_DATA``."""
    return Path(os.environ.get("OMNITWIN_TEST_DATA", _REPO.parent / "shared" / "data"))


def data_file(relative: str) -> Path:
    """Return a data file's path, failing the test with its name when absent."""
    path = data_dir() / relative
    if not path.is_file():
        pytest.fail(f"test data file {path} is missing; set OMNITWIN_TEST_DATA")
    return path


def read_bytes(relative: str) -> bytes:
    """Return the bytes of a data file."""
    return data_file(relative).read_bytes()


def read_json(relative: str) -> Any:
    """Return a data file decoded as JSON."""
    return json.loads(data_file(relative).read_text(encoding="utf-8"))


def data_files(folder: str, pattern: str) -> list[str]:
    """Return data file names under ``folder`` matching ``pattern``, or fail."""
    root = data_dir() / folder
    names = sorted(f"{folder}/{path.name}" for path in root.glob(pattern))
    if not names:
        pytest.fail(f"no {pattern} files in {root}; set OMNITWIN_TEST_DATA")
    return names
