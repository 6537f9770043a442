"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import omnitwin
from omnitwin.engine.context import Context
from omnitwin.engine.engine import Engine
from testdata import REPO, data_file, load_cases, shared_data_dir

__all__ = ["REPO", "data_file", "load_cases", "shared_data_dir"]


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
