"""An in-memory index of subnet intervals for fast free-space search.

The index keeps, per ``(workspace, version, vrf)``, the stored subnets' integer
intervals sorted by start. It is loaded from the store on first use and kept
in step by the subnet service after each commit. This is safe because DuckDB
allows one writing process per file, and that process owns the index.

IPv4 gap computation runs on NumPy arrays; IPv6 values exceed 64 bits and use
the pure-Python path in :mod:`omnitwin.engine.cidr`.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable

import numpy as np

from omnitwin.engine.store import Store

__all__ = ["IntervalIndex", "count_blocks_in_gaps", "gaps_ipv4", "list_blocks_in_gaps"]

_Key = tuple[str, int, str]


class IntervalIndex:
    """Sorted ``(first, last)`` intervals of stored subnets, per VRF."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._firsts: dict[_Key, list[int]] = {}
        self._lasts: dict[_Key, list[int]] = {}

    def _load(self, key: _Key) -> None:
        if key in self._firsts:
            return
        workspace, version, vrf = key
        rows = self.store.fetchall(
            "SELECT first, last FROM subnets WHERE workspace = ? AND version = ? "
            "AND vrf = ? ORDER BY first, last",
            [workspace, version, vrf],
        )
        self._firsts[key] = [int(r[0]) for r in rows]
        self._lasts[key] = [int(r[1]) for r in rows]

    def add(
        self, workspace: str, version: int, vrf: str, first: int, last: int
    ) -> None:
        """Record a committed subnet."""
        key = (workspace, version, vrf)
        with self._lock:
            if key not in self._firsts:
                return  # loaded from the store, with this row, on first use
            firsts, lasts = self._firsts[key], self._lasts[key]
            index = bisect.bisect_right(firsts, first)
            while index > 0 and firsts[index - 1] == first and lasts[index - 1] > last:
                index -= 1
            firsts.insert(index, first)
            lasts.insert(index, last)

    def add_many(
        self, workspace: str, items: Iterable[tuple[int, str, int, int]]
    ) -> None:
        """Record many committed subnets given as ``(version, vrf, first, last)``."""
        with self._lock:
            touched: set[_Key] = set()
            for version, vrf, first, last in items:
                key = (workspace, version, vrf)
                if key in self._firsts:
                    self._firsts[key].append(first)
                    self._lasts[key].append(last)
                    touched.add(key)
            for key in touched:
                pairs = sorted(zip(self._firsts[key], self._lasts[key], strict=True))
                self._firsts[key] = [p[0] for p in pairs]
                self._lasts[key] = [p[1] for p in pairs]

    def clear(self) -> None:
        """Forget every cached interval; they reload on next use."""
        with self._lock:
            self._firsts.clear()
            self._lasts.clear()

    def occupied(
        self, workspace: str, version: int, vrfs: Iterable[str], first: int, last: int
    ) -> tuple[list[int], list[int]]:
        """Return the starts and ends of stored intervals inside ``[first, last]``.

        An interval equal to ``[first, last]`` itself is left out: it is the
        parent being searched (or its twin in another VRF, which the caller
        checks separately).
        """
        starts: list[int] = []
        ends: list[int] = []
        with self._lock:
            for vrf in vrfs:
                key = (workspace, version, vrf)
                self._load(key)
                firsts, lasts = self._firsts[key], self._lasts[key]
                lo = bisect.bisect_left(firsts, first)
                hi = bisect.bisect_right(firsts, last)
                for index in range(lo, hi):
                    end = lasts[index]
                    if end <= last and not (firsts[index] == first and end == last):
                        starts.append(firsts[index])
                        ends.append(end)
        return starts, ends


def gaps_ipv4(
    first: int, last: int, starts: list[int], ends: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the free gaps of ``[first, last]`` as two int64 arrays (IPv4 only)."""
    if not starts:
        return np.array([first], dtype=np.int64), np.array([last], dtype=np.int64)
    s = np.asarray(starts, dtype=np.int64)
    e = np.asarray(ends, dtype=np.int64)
    if np.any(s[1:] < s[:-1]):
        order = np.argsort(s, kind="stable")
        s, e = s[order], e[order]
    reach = np.maximum.accumulate(e)
    before = np.empty_like(reach)
    before[0] = first - 1
    before[1:] = reach[:-1]
    mask = s > before + 1
    gap_first = before[mask] + 1
    gap_last = s[mask] - 1
    if reach[-1] < last:
        gap_first = np.append(gap_first, reach[-1] + 1)
        gap_last = np.append(gap_last, last)
    return gap_first, gap_last


def count_blocks_in_gaps(gap_first: np.ndarray, gap_last: np.ndarray, size: int) -> int:
    """Count aligned blocks of ``size`` addresses that fit in the gaps."""
    start = -(-gap_first // size) * size
    end = (gap_last + 1) // size * size
    return int(np.maximum(0, (end - start) // size).sum())


def list_blocks_in_gaps(
    gap_first: np.ndarray, gap_last: np.ndarray, size: int, limit: int | None
) -> list[int]:
    """Return the starts of aligned blocks in the gaps, in order, up to ``limit``."""
    start = -(-gap_first // size) * size
    end = (gap_last + 1) // size * size
    counts = np.maximum(0, (end - start) // size)
    result: list[int] = []
    for index in np.flatnonzero(counts):
        block = int(start[index])
        for _ in range(int(counts[index])):
            if limit is not None and len(result) >= limit:
                return result
            result.append(block)
            block += size
    return result
