"""An in-memory index of subnet intervals for fast free-space search.

The index keeps, per ``(workspace, version, vrf)``, the stored subnets'
integer intervals sorted by start, as NumPy arrays: ``int64`` for IPv4 and
Python integers (``object``) for IPv6, whose values exceed 64 bits. It is
loaded from the store on first use and kept in step by the subnet service
after each commit. This is safe because DuckDB allows one writing process per
file, and that process owns the index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from omnitwin.engine.store import Store

__all__ = [
    "IntervalIndex",
    "choose_in_gaps",
    "count_blocks_in_gaps",
    "gaps_ipv4",
    "list_blocks_in_gaps",
]

_Key = tuple[str, int, str]
Array = np.ndarray[Any, Any]


def _dtype(version: int) -> type | str:
    return np.int64 if version == 4 else object


class IntervalIndex:
    """Sorted ``(first, last)`` intervals of stored subnets, per VRF."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # The store's lock, not a lock of its own. The index reads the store
        # under its lock and commits update the index under the store's lock,
        # so two locks would deadlock when taken in opposite orders.
        self._lock = store.lock
        self._firsts: dict[_Key, Array] = {}
        self._lasts: dict[_Key, Array] = {}
        self._vrfs: dict[str, set[str]] = {}

    def _arrays(self, key: _Key) -> tuple[Array, Array]:
        """Return the sorted starts and ends of a key's intervals."""
        if key in self._firsts:
            return self._firsts[key], self._lasts[key]
        workspace, version, vrf = key
        rows = self.store.fetchall(
            "SELECT first, last FROM subnets WHERE workspace = ? AND version = ? "
            "AND vrf = ? ORDER BY first, last",
            [workspace, version, vrf],
        )
        dtype = _dtype(version)
        firsts = np.array([int(r[0]) for r in rows], dtype=dtype)
        lasts = np.array([int(r[1]) for r in rows], dtype=dtype)
        self._firsts[key], self._lasts[key] = firsts, lasts
        # Rows read inside a transaction include its uncommitted writes, which
        # a rollback undoes.
        self.store.after_rollback(self.clear)
        return firsts, lasts

    def vrfs(self, workspace: str) -> set[str]:
        """Return the VRF names that have subnets in a workspace."""
        with self._lock:
            names = self._vrfs.get(workspace)
            if names is None:
                rows = self.store.fetchall(
                    "SELECT DISTINCT vrf FROM subnets WHERE workspace = ?", [workspace]
                )
                names = self._vrfs[workspace] = {str(r[0]) for r in rows}
                self.store.after_rollback(self.clear)
            return set(names)

    def add(
        self, workspace: str, version: int, vrf: str, first: int, last: int
    ) -> None:
        """Record a new subnet."""
        self.add_many(workspace, [(version, vrf, first, last)])

    def add_many(
        self, workspace: str, items: Iterable[tuple[int, str, int, int]]
    ) -> None:
        """Record new subnets given as ``(version, vrf, first, last)``."""
        pending: dict[_Key, list[tuple[int, int]]] = {}
        for version, vrf, first, last in items:
            pending.setdefault((workspace, version, vrf), []).append((first, last))
        with self._lock:
            if workspace in self._vrfs:
                self._vrfs[workspace].update(key[2] for key in pending)
            for key, pairs in pending.items():
                if key not in self._firsts:
                    continue  # loaded from the store, with these rows, on first use
                dtype = _dtype(key[1])
                firsts = np.concatenate(
                    [self._firsts[key], np.array([p[0] for p in pairs], dtype=dtype)]
                )
                lasts = np.concatenate(
                    [self._lasts[key], np.array([p[1] for p in pairs], dtype=dtype)]
                )
                order = np.lexsort((lasts, firsts))
                self._firsts[key], self._lasts[key] = firsts[order], lasts[order]

    def clear(self) -> None:
        """Forget every cached interval; they reload on next use."""
        with self._lock:
            self._firsts.clear()
            self._lasts.clear()
            self._vrfs.clear()

    def occupied(
        self, workspace: str, version: int, vrfs: Iterable[str], first: int, last: int
    ) -> tuple[Array, Array]:
        """Return the starts and ends of stored intervals inside ``[first, last]``.

        An interval equal to ``[first, last]`` itself is left out: it is the
        parent being searched (or its twin in another VRF).
        """
        starts: list[Array] = []
        ends: list[Array] = []
        dtype = _dtype(version)
        bound_first = np.array(first, dtype=dtype)
        bound_last = np.array(last, dtype=dtype)
        with self._lock:
            for vrf in vrfs:
                firsts, lasts = self._arrays((workspace, version, vrf))
                lo = int(np.searchsorted(firsts, bound_first, side="left"))
                hi = int(np.searchsorted(firsts, bound_last, side="right"))
                s, e = firsts[lo:hi], lasts[lo:hi]
                keep = (e <= last) & ~((s == first) & (e == last))
                starts.append(s[keep])
                ends.append(e[keep])
        if not starts:
            return np.array([], dtype=dtype), np.array([], dtype=dtype)
        return np.concatenate(starts), np.concatenate(ends)


def gaps_ipv4(first: int, last: int, starts: Array, ends: Array) -> tuple[Array, Array]:
    """Return the free gaps of ``[first, last]`` as two int64 arrays (IPv4 only)."""
    if len(starts) == 0:
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


def _blocks(gap_first: Array, gap_last: Array, size: int) -> tuple[Array, Array]:
    start = -(-gap_first // size) * size
    end = (gap_last + 1) // size * size
    return start, np.maximum(0, (end - start) // size)


def count_blocks_in_gaps(gap_first: Array, gap_last: Array, size: int) -> int:
    """Count aligned blocks of ``size`` addresses that fit in the gaps."""
    return int(_blocks(gap_first, gap_last, size)[1].sum())


def list_blocks_in_gaps(
    gap_first: Array, gap_last: Array, size: int, limit: int | None
) -> list[int]:
    """Return the starts of aligned blocks in the gaps, in order, up to ``limit``."""
    start, counts = _blocks(gap_first, gap_last, size)
    result: list[int] = []
    for index in np.flatnonzero(counts):
        block = int(start[index])
        for _ in range(int(counts[index])):
            if limit is not None and len(result) >= limit:
                return result
            result.append(block)
            block += size
    return result


def choose_in_gaps(
    gap_first: Array, gap_last: Array, size: int, policy: str
) -> int | None:
    """Return the start of the block a policy picks, or ``None`` when none fits.

    Policies match :func:`omnitwin.engine.cidr.choose_block`.
    """
    start, counts = _blocks(gap_first, gap_last, size)
    usable = np.flatnonzero(counts)
    if len(usable) == 0:
        return None
    if policy == "first_fit":
        return int(start[usable[0]])
    if policy == "last_fit":
        index = usable[-1]
        return int(start[index] + (counts[index] - 1) * size)
    widths = (gap_last - gap_first)[usable]
    return int(start[usable[int(np.argmin(widths))]])
