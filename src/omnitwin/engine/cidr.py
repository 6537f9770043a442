"""CIDR math over :mod:`ipaddress`, on integer intervals.

Every function here is pure. Networks are handled as closed integer intervals
``[first, last]`` tagged with their IP version, so IPv6 space is never
enumerated or measured with ``len()``. IPv4 and IPv6 values never meet in one
comparison: mixed input is grouped by version, and a cross-version containment
or overlap test is simply false.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from omnitwin.errors import InvalidAddress, InvalidCIDR

__all__ = [
    "CANONICAL_IPV4_PATTERN",
    "AllocationPolicy",
    "Interval",
    "Network",
    "address_count",
    "canonical_ipv4",
    "choose_block",
    "collapse",
    "contains",
    "count_free_blocks",
    "free_blocks",
    "free_ranges",
    "merge_intervals",
    "overlaps",
    "parse_address",
    "parse_interface",
    "parse_network",
    "smallest_container",
    "sort_key",
    "usable_address_count",
    "usable_addresses",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
AllocationPolicy = Literal["first_fit", "best_fit", "last_fit"]
ALLOCATION_POLICIES: tuple[AllocationPolicy, ...] = (
    "first_fit",
    "best_fit",
    "last_fit",
)


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A closed range of addresses ``[first, last]`` of one IP version."""

    version: int
    first: int
    last: int

    @classmethod
    def of(cls, network: Network) -> Interval:
        """Return the interval covered by ``network``."""
        first = int(network.network_address)
        return cls(network.version, first, first + (1 << _host_bits(network)) - 1)

    @property
    def size(self) -> int:
        """Number of addresses in the interval."""
        return self.last - self.first + 1


_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A canonical IPv4 network in CIDR form, host bits aside: four decimal
#: octets without leading zeros and a prefix length from 0 to 32. It uses
#: only syntax that Python's re and DuckDB's RE2 read alike.
CANONICAL_IPV4_PATTERN = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}/(3[0-2]|[12]?[0-9])"
_CANONICAL_IPV4 = re.compile(CANONICAL_IPV4_PATTERN)


def _max_bits(version: int) -> int:
    return 32 if version == 4 else 128


def _host_bits(network: Network) -> int:
    return network.max_prefixlen - network.prefixlen


def _check_text(value: object, kind: str) -> str:
    if not isinstance(value, str):
        message = f"{kind} must be a string such as '10.0.0.0/24', got {value!r}"
        raise InvalidCIDR(message)
    text = value.strip()
    if not text:
        raise InvalidCIDR(f"{kind} is empty; pass a value such as '10.0.0.0/24'")
    return text


def canonical_ipv4(text: str) -> tuple[int, int] | None:
    """Return the first address and prefix length of a canonical IPv4 network.

    Canonical is the form that ``str(ipaddress.ip_network(text))`` gives:
    four decimal octets without leading zeros, a prefix length from 0 to 32,
    and no host bits. For any other text this returns None, and the caller
    parses it with :mod:`ipaddress`, which takes about 2.5 times as long.

    Examples
    --------
    >>> canonical_ipv4("10.0.1.0/24")
    (167772416, 24)
    >>> canonical_ipv4("10.0.1.5/24") is None
    True
    """
    match = _CANONICAL_IPV4.fullmatch(text)
    if match is None:
        return None
    a, b, c, d, prefix_length = map(int, match.groups())
    first = a << 24 | b << 16 | c << 8 | d
    if first & ((1 << (32 - prefix_length)) - 1):
        return None
    return first, prefix_length


def parse_network(value: str, *, normalize: bool = False) -> Network:
    """Parse a CIDR string strictly.

    Parameters
    ----------
    value : str
        A network such as ``"10.0.83.192/26"`` or ``"2001:db8::/32"``. A bare
        address is read as a host network (``/32`` or ``/128``).
    normalize : bool
        When true, host bits are cleared instead of rejected.

    Returns
    -------
    IPv4Network or IPv6Network

    Raises
    ------
    InvalidCIDR
        If the text is malformed, has leading-zero octets, or has host bits
        set (the message names the network that was probably meant).

    Examples
    --------
    >>> parse_network("10.0.83.192/26")
    IPv4Network('10.0.83.192/26')
    >>> parse_network("10.0.83.196/26", normalize=True)
    IPv4Network('10.0.83.192/26')
    """
    text = _check_text(value, "CIDR")
    canonical = canonical_ipv4(text)
    if canonical is not None:
        return ipaddress.IPv4Network(canonical)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        message = f"{text!r} is not a valid CIDR: {exc}"
        raise InvalidCIDR(message, details={"value": text}) from exc
    if not normalize:
        address_text = text.split("/", 1)[0]
        if ipaddress.ip_address(address_text) != network.network_address:
            message = (
                f"{text} has host bits set; did you mean {network}? "
                "Pass the network address, or ask for normalization (normalize=True, "
                "or --normalize on the command line)."
            )
            raise InvalidCIDR(message, details={"value": text, "network": str(network)})
    return network


def parse_address(value: str) -> Address:
    """Parse a single IP address strictly (leading-zero octets are rejected).

    Examples
    --------
    >>> parse_address("2001:db8::1")
    IPv6Address('2001:db8::1')
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidAddress(f"IP address must be a non-empty string, got {value!r}")
    text = value.strip()
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        message = f"{text!r} is not a valid IP address: {exc}"
        raise InvalidAddress(message, details={"value": text}) from exc


def parse_interface(value: str) -> Interface:
    """Parse an address with an optional prefix length, such as ``10.0.0.1/24``.

    A bare address gets a host prefix length. The address may sit anywhere in
    its network, including the network or last address.

    Examples
    --------
    >>> parse_interface("2001:db8::1/127")
    IPv6Interface('2001:db8::1/127')
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidAddress(f"IP address must be a non-empty string, got {value!r}")
    text = value.strip()
    try:
        return ipaddress.ip_interface(text)
    except ValueError as exc:
        message = f"{text!r} is not a valid IP address with prefix length: {exc}"
        raise InvalidAddress(message, details={"value": text}) from exc


def sort_key(network: Network) -> tuple[int, int, int]:
    """Return a key that sorts networks by (version, address, prefix length)."""
    return (network.version, int(network.network_address), network.prefixlen)


def contains(outer: Network, inner: Network, *, strict: bool = False) -> bool:
    """Tell whether ``outer`` contains ``inner``; false across IP versions.

    Examples
    --------
    >>> contains(parse_network("10.0.0.0/8"), parse_network("10.1.0.0/16"))
    True
    >>> contains(parse_network("10.0.0.0/8"), parse_network("2001:db8::/32"))
    False
    """
    if outer.version != inner.version:
        return False
    if strict and outer.prefixlen >= inner.prefixlen:
        return False
    a, b = Interval.of(outer), Interval.of(inner)
    return a.first <= b.first and b.last <= a.last


def overlaps(a: Network, b: Network) -> bool:
    """Tell whether two networks share any address; false across IP versions."""
    if a.version != b.version:
        return False
    x, y = Interval.of(a), Interval.of(b)
    return x.first <= y.last and y.first <= x.last


def collapse(networks: Iterable[Network]) -> list[Network]:
    """Collapse networks into the fewest covering ones, per IP version.

    IPv4 results come first, then IPv6; nothing is dropped.
    """
    items = list(networks)
    v4 = [n for n in items if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in items if isinstance(n, ipaddress.IPv6Network)]
    result: list[Network] = []
    result.extend(ipaddress.collapse_addresses(v4))
    result.extend(ipaddress.collapse_addresses(v6))
    return result


def smallest_container(
    candidates: Iterable[tuple[str, Network]], target: Network
) -> str | None:
    """Return the key of the smallest candidate that strictly contains ``target``."""
    best_key: str | None = None
    best_len = -1
    for key, network in candidates:
        if network.prefixlen > best_len and contains(network, target, strict=True):
            best_key, best_len = key, network.prefixlen
    return best_key


def address_count(network: Network) -> int:
    """Return the number of addresses in ``network`` (``2 ** host_bits``)."""
    return 1 << _host_bits(network)


def usable_address_count(network: Network, *, pool: bool = False) -> int:
    """Return how many addresses of ``network`` can be assigned to hosts.

    IPv4 networks up to /30 lose their network and broadcast addresses unless
    ``pool`` is set. /31 and /127 have two usable addresses (RFC 3021 and
    RFC 6164), /32 and /128 one. IPv6 has no broadcast, so every other IPv6
    network counts all of its addresses.
    """
    total = address_count(network)
    if network.version == 4 and network.prefixlen <= 30 and not pool:
        return total - 2
    return total


def _usable_interval(network: Network, pool: bool) -> Interval:
    interval = Interval.of(network)
    if network.version == 4 and network.prefixlen <= 30 and not pool:
        return Interval(4, interval.first + 1, interval.last - 1)
    return interval


def usable_addresses(
    network: Network,
    used: Iterable[Address] = (),
    *,
    limit: int = 256,
    pool: bool = False,
) -> list[Address]:
    """List the first ``limit`` usable addresses of ``network`` not in ``used``.

    Examples
    --------
    >>> [str(a) for a in usable_addresses(parse_network("10.0.0.0/31"))]
    ['10.0.0.0', '10.0.0.1']
    >>> [str(a) for a in usable_addresses(parse_network("2001:db8::/127"))]
    ['2001:db8::', '2001:db8::1']
    """
    span = _usable_interval(network, pool)
    taken = sorted(int(a) for a in used if a.version == network.version)
    result: list[Address] = []
    index = 0
    value = span.first
    while value <= span.last and len(result) < limit:
        while index < len(taken) and taken[index] < value:
            index += 1
        if index < len(taken) and taken[index] == value:
            value += 1
            continue
        result.append(_make_address(network.version, value))
        value += 1
    return result


def merge_intervals(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping or adjacent ``(first, last)`` pairs, sorted by start."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def free_ranges(
    parent: Network, occupied: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Return the gaps of ``parent`` not covered by ``occupied`` intervals.

    ``occupied`` holds ``(first, last)`` integer pairs of the parent's version;
    parts outside the parent are ignored.
    """
    span = Interval.of(parent)
    gaps: list[tuple[int, int]] = []
    cursor = span.first
    for first, last in merge_intervals(occupied):
        if last < span.first or first > span.last:
            continue
        if first > cursor:
            gaps.append((cursor, min(first - 1, span.last)))
        cursor = max(cursor, last + 1)
        if cursor > span.last:
            break
    if cursor <= span.last:
        gaps.append((cursor, span.last))
    return gaps


def _check_length(parent: Network, prefix_length: int) -> None:
    if isinstance(prefix_length, bool) or not isinstance(prefix_length, int):
        raise InvalidCIDR(f"prefix length must be an integer, got {prefix_length!r}")
    if not parent.prefixlen <= prefix_length <= parent.max_prefixlen:
        message = (
            f"prefix length /{prefix_length} cannot fit in {parent}; "
            f"choose a length from /{parent.prefixlen} to /{parent.max_prefixlen}"
        )
        raise InvalidCIDR(message, details={"prefix_length": prefix_length})


def _blocks_in_gap(first: int, last: int, size: int) -> tuple[int, int]:
    """Return (first aligned start, number of aligned blocks) inside a gap."""
    start = -(-first // size) * size
    end = (last + 1) // size * size
    return start, max(0, (end - start) // size)


def _make_address(version: int, value: int) -> Address:
    if version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


def _make_network(version: int, value: int, prefix_length: int) -> Network:
    if version == 4:
        return ipaddress.IPv4Network((value, prefix_length))
    return ipaddress.IPv6Network((value, prefix_length))


def free_blocks(
    parent: Network,
    occupied: Iterable[tuple[int, int]],
    prefix_length: int,
    *,
    limit: int | None = 100,
) -> list[Network]:
    """List free blocks of exactly ``prefix_length`` in ``parent``, in address order.

    Parameters
    ----------
    parent : IPv4Network or IPv6Network
        The network to search.
    occupied : iterable of (int, int)
        Integer intervals already in use (children of the parent).
    prefix_length : int
        The length of each block to return.
    limit : int or None
        The maximum number of blocks; ``None`` lists all of them (use with
        care on IPv6).

    Examples
    --------
    >>> parent = parse_network("10.0.0.0/22")
    >>> used = [(Interval.of(parse_network("10.0.1.0/24")).first,
    ...          Interval.of(parse_network("10.0.1.0/24")).last)]
    >>> [str(n) for n in free_blocks(parent, used, 24)]
    ['10.0.0.0/24', '10.0.2.0/24', '10.0.3.0/24']
    """
    _check_length(parent, prefix_length)
    size = 1 << (parent.max_prefixlen - prefix_length)
    result: list[Network] = []
    for first, last in free_ranges(parent, occupied):
        start, count = _blocks_in_gap(first, last, size)
        for index in range(count):
            if limit is not None and len(result) >= limit:
                return result
            result.append(
                _make_network(parent.version, start + index * size, prefix_length)
            )
    return result


def count_free_blocks(
    parent: Network, occupied: Iterable[tuple[int, int]], prefix_length: int
) -> int:
    """Count the free blocks of exactly ``prefix_length`` inside ``parent``."""
    _check_length(parent, prefix_length)
    size = 1 << (parent.max_prefixlen - prefix_length)
    return sum(
        _blocks_in_gap(f, last, size)[1] for f, last in free_ranges(parent, occupied)
    )


def choose_block(
    parent: Network,
    occupied: Sequence[tuple[int, int]],
    prefix_length: int,
    policy: AllocationPolicy = "first_fit",
) -> Network | None:
    """Pick one free block of ``prefix_length`` by allocation policy.

    ``first_fit`` takes the lowest free block. ``best_fit`` takes the first
    block of the smallest gap that can hold one, which keeps large gaps whole.
    ``last_fit`` takes the highest free block. Returns ``None`` when no block
    is free.
    """
    if policy not in ALLOCATION_POLICIES:
        message = (
            f"unknown allocation policy {policy!r}; use one of {ALLOCATION_POLICIES}"
        )
        raise InvalidCIDR(message)
    _check_length(parent, prefix_length)
    size = 1 << (parent.max_prefixlen - prefix_length)
    best: tuple[int, int] | None = None  # (gap size, block start)
    last_start: int | None = None
    for first, last in free_ranges(parent, occupied):
        start, count = _blocks_in_gap(first, last, size)
        if count == 0:
            continue
        if policy == "first_fit":
            return _make_network(parent.version, start, prefix_length)
        if policy == "last_fit":
            last_start = start + (count - 1) * size
        elif best is None or last - first < best[0]:
            best = (last - first, start)
    if policy == "last_fit" and last_start is not None:
        return _make_network(parent.version, last_start, prefix_length)
    if best is not None:
        return _make_network(parent.version, best[1], prefix_length)
    return None
