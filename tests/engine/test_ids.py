"""Identifiers: the ULID encoding and its order."""

from __future__ import annotations

import os
import re
import time

import pytest

from omnitwin import _ids
from omnitwin._ids import _encode, new_id, new_ulid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def reference_encode(value: int) -> str:
    """Return 26 base32 digits of ``value`` by repeated division."""
    digits = []
    for _ in range(26):
        value, remainder = divmod(value, 32)
        digits.append(CROCKFORD[remainder])
    return "".join(reversed(digits))


def test_encode_matches_division() -> None:
    values = [0, 1, 31, 32, 2**48 - 1, 2**80, 2**130 - 1]
    values += [int.from_bytes(os.urandom(17), "big") >> 6 for _ in range(2000)]
    for value in values:
        assert _encode(value) == reference_encode(value), value


def test_ulid_starts_with_the_time() -> None:
    before = time.time_ns() // 1_000_000
    ulid = new_ulid()
    after = time.time_ns() // 1_000_000
    milliseconds = 0
    for digit in ulid[:10]:
        milliseconds = milliseconds * 32 + CROCKFORD.index(digit)
    assert before <= milliseconds <= after


def test_ids_sort_in_creation_order() -> None:
    ids = [new_id("sn") for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"sn_[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)


def test_ids_stay_sorted_past_random_maximum(monkeypatch: pytest.MonkeyPatch) -> None:
    # The next id in the same millisecond would need a random part past the
    # largest one.
    now_ms = time.time_ns() // 1_000_000 + 10_000
    monkeypatch.setattr(_ids, "_last_ms", now_ms)
    monkeypatch.setattr(_ids, "_last_random", (1 << 80) - 1)
    before = _encode(now_ms << 80 | (1 << 80) - 1)

    after = [new_ulid() for _ in range(3)]

    assert [before, *after] == sorted([before, *after])
    assert len(set(after)) == 3
