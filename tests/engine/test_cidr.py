"""CIDR math: field cases and properties against brute-force oracles."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnitwin.engine import cidr
from omnitwin.engine.importers import records
from omnitwin.errors import InvalidAddress, InvalidCIDR

# -- strict parsing (B05, B09) ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("10.0.83.196/26", "10.0.83.192/26"),
        ("10.1.1.1/24", "10.1.1.0/24"),
        ("192.168.1.1/31", "192.168.1.0/31"),
        ("2001:db8::1/64", "2001:db8::/64"),
        ("2001:db8::1/127", "2001:db8::/127"),
        ("0.0.0.1/0", "0.0.0.0/0"),
    ],
)
def test_host_bits_error_names_network(text: str, network: str) -> None:
    with pytest.raises(InvalidCIDR) as info:
        cidr.parse_network(text)
    assert network in str(info.value)
    assert info.value.details["network"] == network
    assert isinstance(info.value, ValueError)


def test_normalize_clears_host_bits() -> None:
    assert str(cidr.parse_network("10.0.83.196/26", normalize=True)) == "10.0.83.192/26"


@pytest.mark.parametrize(
    "text", ["010.1.1.1", "10.1.1.01", "010.1.1.0/24", "::ffff:010.1.1.1"]
)
def test_leading_zero_octets_rejected(text: str) -> None:
    with pytest.raises((InvalidCIDR, InvalidAddress)):
        if "/" in text:
            cidr.parse_network(text)
        else:
            cidr.parse_address(text)
    with pytest.raises(InvalidCIDR):
        cidr.parse_network(text)


def test_zero_first_octet_accepted() -> None:
    assert str(cidr.parse_address("0.1.1.1")) == "0.1.1.1"


@pytest.mark.parametrize("text", ["", "  ", "10.0.0.0/33", "2001:db8::/129", "foo"])
def test_malformed_cidr_rejected(text: str) -> None:
    with pytest.raises(InvalidCIDR):
        cidr.parse_network(text)


def test_non_string_cidr_rejected() -> None:
    with pytest.raises(InvalidCIDR, match="must be a string"):
        cidr.parse_network(167772160)  # type: ignore[arg-type]


# -- mixed families: grouped by version, nothing dropped


def test_collapse_keeps_both_families() -> None:
    nets = [cidr.parse_network("10.1.1.0/24"), cidr.parse_network("2001:db8::/120")]
    assert [str(n) for n in cidr.collapse(nets)] == ["10.1.1.0/24", "2001:db8::/120"]


def test_cross_family_containment_false() -> None:
    v6, v4 = cidr.parse_network("2001:db8::/64"), cidr.parse_network("10.0.0.0/8")
    assert cidr.contains(v4, v6) is False
    assert cidr.contains(v6, v4) is False
    assert cidr.overlaps(v6, v4) is False


def test_sort_key_orders_by_version_first() -> None:
    nets = [cidr.parse_network("2001:db8::/32"), cidr.parse_network("10.0.0.0/8")]
    assert [str(n) for n in sorted(nets, key=cidr.sort_key)] == [
        "10.0.0.0/8",
        "2001:db8::/32",
    ]


# -- usable addresses: /31 and /127 keep both addresses


def test_slash31_has_two_usable() -> None:
    network = cidr.parse_network("10.0.0.0/31")
    assert [str(a) for a in cidr.usable_addresses(network)] == ["10.0.0.0", "10.0.0.1"]
    assert cidr.usable_address_count(network) == 2


def test_slash127_has_two_usable() -> None:
    network = cidr.parse_network("2001:db8::/127")
    assert [str(a) for a in cidr.usable_addresses(network)] == [
        "2001:db8::",
        "2001:db8::1",
    ]
    assert cidr.usable_address_count(network) == 2


def test_full_slash31_has_none_free() -> None:
    network = cidr.parse_network("10.0.0.0/31")
    used = [cidr.parse_address("10.0.0.0"), cidr.parse_address("10.0.0.1")]
    assert cidr.usable_addresses(network, used) == []


def test_slash32_has_one_usable() -> None:
    network = cidr.parse_network("10.0.0.5/32")
    assert [str(a) for a in cidr.usable_addresses(network)] == ["10.0.0.5"]


@pytest.mark.parametrize("length", range(0, 31))
def test_ipv4_usable_excludes_network_broadcast(length: int) -> None:
    network = ipaddress.IPv4Network((0, length))
    assert cidr.usable_address_count(network) == 2 ** (32 - length) - 2
    assert cidr.usable_address_count(network, pool=True) == 2 ** (32 - length)


@pytest.mark.parametrize("length", range(0, 129, 8))
def test_ipv6_usable_counts_every_address(length: int) -> None:
    network = ipaddress.IPv6Network((0, length))
    assert cidr.usable_address_count(network) == 2 ** (128 - length)


# -- free blocks and allocation policies --------------------------------------


def test_free_blocks_ipv6_without_enumeration() -> None:
    parent = cidr.parse_network("2001:db8::/32")
    used = [cidr.Interval.of(cidr.parse_network("2001:db8::/48"))]
    pairs = [(i.first, i.last) for i in used]
    blocks = cidr.free_blocks(parent, pairs, 64, limit=2)
    assert [str(b) for b in blocks] == ["2001:db8:1::/64", "2001:db8:1:1::/64"]
    assert cidr.count_free_blocks(parent, pairs, 64) == 2**32 - 2**16


def test_free_blocks_rejects_impossible_length() -> None:
    parent = cidr.parse_network("10.0.0.0/16")
    with pytest.raises(InvalidCIDR, match="/8 cannot fit"):
        cidr.free_blocks(parent, [], 8)
    with pytest.raises(InvalidCIDR):
        cidr.free_blocks(parent, [], 33)


def _pairs(*texts: str) -> list[tuple[int, int]]:
    intervals = [cidr.Interval.of(cidr.parse_network(t)) for t in texts]
    return [(i.first, i.last) for i in intervals]


def test_policies_pick_different_blocks() -> None:
    parent = cidr.parse_network("10.0.0.0/22")
    # Gaps: 10.0.0.0/23 (two /24s) and 10.0.3.0/24 (one /24).
    used = _pairs("10.0.2.0/24")
    first = cidr.choose_block(parent, used, 24, "first_fit")
    best = cidr.choose_block(parent, used, 24, "best_fit")
    last = cidr.choose_block(parent, used, 24, "last_fit")
    assert str(first) == "10.0.0.0/24"
    assert str(best) == "10.0.3.0/24"
    assert str(last) == "10.0.3.0/24"


def test_best_fit_keeps_large_gap_whole() -> None:
    parent = cidr.parse_network("10.0.0.0/20")
    used = _pairs("10.0.0.0/24", "10.0.2.0/23", "10.0.5.0/24")
    assert str(cidr.choose_block(parent, used, 24, "best_fit")) == "10.0.1.0/24"
    assert str(cidr.choose_block(parent, used, 24, "first_fit")) == "10.0.1.0/24"
    used = _pairs("10.0.1.0/24", "10.0.2.0/23", "10.0.5.0/24")
    assert str(cidr.choose_block(parent, used, 24, "best_fit")) == "10.0.0.0/24"
    assert str(cidr.choose_block(parent, used, 24, "first_fit")) == "10.0.0.0/24"


def test_choose_block_returns_none_when_full() -> None:
    parent = cidr.parse_network("10.0.83.0/24")
    used = _pairs("10.0.83.0/25", "10.0.83.128/26", "10.0.83.192/26")
    for length in range(25, 33):
        assert cidr.choose_block(parent, used, length) is None
        assert cidr.free_blocks(parent, used, length) == []


def test_unknown_policy_rejected() -> None:
    with pytest.raises(InvalidCIDR, match="unknown allocation policy"):
        cidr.choose_block(cidr.parse_network("10.0.0.0/8"), [], 24, "random")  # type: ignore[arg-type]


# -- properties against brute force on small spaces ---------------------------

VERSIONS = st.sampled_from([4, 6])


@st.composite
def small_space(draw: st.DrawFn) -> tuple[cidr.Network, list[cidr.Network]]:
    """A parent with 2**4..2**8 addresses and random CIDR children inside it."""
    version = draw(VERSIONS)
    bits = 32 if version == 4 else 128
    host_bits = draw(st.integers(4, 8))
    base = draw(st.integers(0, (1 << (bits - host_bits)) - 1)) << host_bits
    parent = ipaddress.ip_network((base, bits - host_bits))
    children = []
    for _ in range(draw(st.integers(0, 6))):
        length = draw(st.integers(bits - host_bits, bits))
        offset = draw(st.integers(0, (1 << host_bits) - 1))
        start = base + (offset >> (bits - length) << (bits - length))
        children.append(ipaddress.ip_network((start, length)))
    return parent, children


def _addresses(network: cidr.Network) -> set[int]:
    first = int(network.network_address)
    return set(range(first, first + network.num_addresses))


@settings(max_examples=300, deadline=None)
@given(small_space(), small_space())
def test_contains_and_overlaps_match_sets(
    a: tuple[cidr.Network, list[cidr.Network]],
    b: tuple[cidr.Network, list[cidr.Network]],
) -> None:
    x = a[1][0] if a[1] else a[0]
    y = b[1][0] if b[1] else a[0]
    if x.version != y.version:
        assert not cidr.overlaps(x, y)
        assert not cidr.contains(x, y)
        return
    sx, sy = _addresses(x), _addresses(y)
    assert cidr.overlaps(x, y) == bool(sx & sy)
    assert cidr.contains(x, y) == (sy <= sx)
    assert cidr.contains(x, y, strict=True) == (sy < sx)


@settings(max_examples=300, deadline=None)
@given(small_space(), st.integers(0, 8))
def test_free_blocks_match_brute_force(
    space: tuple[cidr.Network, list[cidr.Network]], extra_bits: int
) -> None:
    parent, children = space
    length = min(parent.max_prefixlen, parent.prefixlen + extra_bits)
    used: set[int] = set()
    for child in children:
        used |= _addresses(child)
    expected = [
        str(candidate)
        for candidate in parent.subnets(new_prefix=length)
        if not (_addresses(candidate) & used)
    ]
    pairs = [(int(c.network_address), int(c.broadcast_address)) for c in children]
    got = [str(n) for n in cidr.free_blocks(parent, pairs, length, limit=None)]
    assert got == expected
    assert cidr.count_free_blocks(parent, pairs, length) == len(expected)
    assert [str(n) for n in cidr.free_blocks(parent, pairs, length, limit=3)] == (
        expected[:3]
    )
    chosen = cidr.choose_block(parent, pairs, length, "first_fit")
    if expected:
        assert str(chosen) == expected[0]
    else:
        assert chosen is None
    for policy in ("best_fit", "last_fit"):
        block = cidr.choose_block(parent, pairs, length, policy)  # type: ignore[arg-type]
        assert (block is None) == (not expected)
        assert block is None or str(block) in expected


@settings(max_examples=200, deadline=None)
@given(small_space(), st.data())
def test_usable_addresses_match_hosts(
    space: tuple[cidr.Network, list[cidr.Network]], data: st.DataObject
) -> None:
    parent, _ = space
    everything = sorted(_addresses(parent))
    used_values = data.draw(st.sets(st.sampled_from(everything), max_size=5))
    used = [
        ipaddress.ip_address(v) if parent.version == 4 else ipaddress.IPv6Address(v)
        for v in used_values
    ]
    if parent.version == 4 and parent.prefixlen <= 30:
        usable = everything[1:-1]
    else:
        usable = everything
    expected = [v for v in usable if v not in used_values]
    got = [int(a) for a in cidr.usable_addresses(parent, used, limit=1 << 9)]
    assert got == expected


# canonical_ipv4 against ipaddress


def canonical_cases() -> list[str]:
    """Return network texts near the edges of the canonical IPv4 form."""
    rng = random.Random(20261205)
    texts = [
        "0.0.0.0/0", "255.255.255.255/32", "10.0.0.0/8", "10.0.1.0/24",
        "10.0.1.5/24", "10.0.1.0/33", "10.0.1.0/024", "010.0.1.0/24",
        "10.0.1.0/-1", "-1.0.0.0/8", "256.0.0.0/8", "10.0.1/24", "10.0.1.0",
        "10.0.1.0/", "/24", " 10.0.1.0/24", "10.0.1.0/24 ", "+10.0.1.0/24",
        "1_0.0.1.0/24", "\uff110.0.1.0/24", "10.0.1.0/2_4", "10.0.1.0/255.255.255.0",
        "10.0.1.0.0/24", "2001:db8::/32", "::ffff:10.0.1.0/120", "10..1.0/24",
        "", "10.0.1.0//24", "10.0.1.0/0x18",
    ]  # fmt: skip
    for _ in range(3000):
        octets = [rng.choice([0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255,
                              rng.randrange(256)]) for _ in range(4)]  # fmt: skip
        length = rng.choice([0, 1, 8, 16, 23, 24, 25, 31, 32, rng.randrange(33)])
        texts.append(".".join(map(str, octets)) + f"/{length}")
    return texts


def test_canonical_ipv4_matches_ipaddress() -> None:
    for text in canonical_cases():
        try:
            network = ipaddress.ip_network(text)
        except ValueError:
            network = None
        if network is not None and network.version == 4 and str(network) == text:
            expected = (int(network.network_address), network.prefixlen)
        else:
            expected = None
        assert cidr.canonical_ipv4(text) == expected, text


def parse_all(texts: list[str]) -> list[object]:
    """Return what both parse_network functions give for each text."""
    results: list[object] = []
    for text in texts:
        for parse in (cidr.parse_network, records.parse_network):
            try:
                results.append(parse(text))
            except InvalidCIDR as exc:
                results.append(("error", str(exc)))
    return results


def test_parse_network_same_without_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = canonical_cases()
    fast = parse_all(texts)
    monkeypatch.setattr(cidr, "canonical_ipv4", lambda text: None)
    monkeypatch.setattr(records, "canonical_ipv4", lambda text: None)
    slow = parse_all(texts)
    assert fast == slow
    assert sum(isinstance(result, tuple) for result in fast) > 100
    assert sum(isinstance(result, ipaddress.IPv4Network) for result in fast) > 300
