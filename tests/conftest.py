"""Fixtures shared by the whole suite."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import omnitwin
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine

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


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A fresh DuckDB file path in a temporary folder."""
    return tmp_path / "twin.duckdb"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    """An engine on a real DuckDB file."""
    eng = Engine(db_path)
    yield eng
    eng.close()


@pytest.fixture
def ctx() -> Context:
    """The default caller."""
    return Context(actor="user:test")


@pytest.fixture
def client(db_path: Path) -> Iterator[omnitwin.Client]:
    """A sync client on a real DuckDB file."""
    with omnitwin.Client(f"local:{db_path}", actor="user:test") as c:
        yield c
    c.backend.engine.close()  # type: ignore[attr-defined]
