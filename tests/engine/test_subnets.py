"""Subnets through the public client on a real DuckDB file."""

from __future__ import annotations

import pytest

import omnitwin
from omnitwin import (
    CIDROverlap,
    Duplicate,
    ImmutableField,
    InvalidCIDR,
    InvalidTransition,
    NoFreeSpace,
    NotFound,
    ValidationError,
)

# -- create and validation --------------------------------------------------


def test_create_returns_typed_subnet(client: omnitwin.Client) -> None:
    subnet = client.subnets.create(
        "10.0.0.0/24",
        purpose="lab",
        vlan_id=42,
        owner="team:platform",
        tags={"env": "lab"},
    )
    assert isinstance(subnet, omnitwin.Subnet)
    assert subnet.id.startswith("sn_")
    assert subnet.cidr == "10.0.0.0/24"
    assert subnet.vrf == "global"
    assert subnet.status == "allocated"
    assert subnet.created_at.endswith("Z")


def test_create_host_bits_names_network(client: omnitwin.Client) -> None:
    client.subnets.create("10.0.83.0/24", is_container=True)
    client.subnets.create("10.0.83.0/25")
    client.subnets.create("10.0.83.128/26")
    with pytest.raises(InvalidCIDR, match="10.0.83.192/26"):
        client.subnets.create("10.0.83.196/26")
    assert client.subnets.list().total == 3


def test_normalize_leaves_parent_full(client: omnitwin.Client) -> None:
    parent = client.subnets.create("10.0.83.0/24", is_container=True)
    client.subnets.create("10.0.83.0/25")
    client.subnets.create("10.0.83.128/26")
    stored = client.subnets.create("10.0.83.196/26", normalize=True)
    assert stored.cidr == "10.0.83.192/26"
    for length in range(25, 33):
        free = client.subnets.available(length, subnet_id=parent.id)
        assert free.blocks == []
        assert free.total_free == 0


@pytest.mark.parametrize("vlan", [0, 4095, -1, "12", True])
def test_invalid_vlan_rejected(client: omnitwin.Client, vlan: object) -> None:
    with pytest.raises(ValidationError, match="VLAN ids are integers from 1 to 4094"):
        client.subnets.create("10.0.0.0/24", vlan_id=vlan)


@pytest.mark.parametrize("vlan", [1, 4094])
def test_vlan_bounds_accepted(client: omnitwin.Client, vlan: int) -> None:
    assert client.subnets.create("10.0.0.0/24", vlan_id=vlan).vlan_id == vlan


def test_invalid_status_rejected(client: omnitwin.Client) -> None:
    with pytest.raises(ValidationError, match="invalid status 'active'"):
        client.subnets.create("10.0.0.0/24", status="active")


def test_invalid_tags_rejected(client: omnitwin.Client) -> None:
    with pytest.raises(ValidationError, match="map of strings"):
        client.subnets.create("10.0.0.0/24", tags={"a": 1})


def test_duplicate_names_existing(client: omnitwin.Client) -> None:
    first = client.subnets.create("10.0.0.0/24")
    with pytest.raises(Duplicate) as info:
        client.subnets.create("10.0.0.0/24")
    assert first.id in str(info.value)
    assert info.value.details["existing"]["id"] == first.id
    assert info.value.status == 409


def test_same_cidr_in_other_vrf_allowed(client: omnitwin.Client) -> None:
    client.subnets.create("10.0.0.0/24")
    red = client.subnets.create("10.0.0.0/24", vrf="red")
    assert red.vrf == "red"


def test_nesting_in_leaf_is_overlap(client: omnitwin.Client) -> None:
    leaf = client.subnets.create("10.0.0.0/24")
    with pytest.raises(CIDROverlap) as info:
        client.subnets.create("10.0.0.0/25")
    assert leaf.id in str(info.value)
    assert "is_container=true" in str(info.value)
    with pytest.raises(CIDROverlap, match="by containing it"):
        client.subnets.create("10.0.0.0/23")


def test_container_around_leaf_accepted(client: omnitwin.Client) -> None:
    leaf = client.subnets.create("10.0.0.0/24")
    block = client.subnets.create("10.0.0.0/23", is_container=True)
    assert client.subnets.get(leaf.id).subnet.parent_id == block.id


def test_parent_id_must_contain(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.1.0.0/16", is_container=True)
    with pytest.raises(ValidationError, match="does not contain 10.2.0.0/24"):
        client.subnets.create("10.2.0.0/24", parent_id=block.id)
    with pytest.raises(ValidationError, match="not found"):
        client.subnets.create("10.1.0.0/24", parent_id="sn_missing")


# -- hierarchy: /0 parents in either order


def test_default_route_parent_any_order(client: omnitwin.Client) -> None:
    root = client.subnets.create("0.0.0.0/0", is_container=True)
    high = client.subnets.create("198.51.100.0/24")
    low = client.subnets.create("10.0.0.0/8")
    assert high.parent_id == root.id
    assert low.parent_id == root.id
    assert client.subnets.get(root.id).total_ips == 4294967296


def test_default_route_adopts_existing(client: omnitwin.Client) -> None:
    high = client.subnets.create("198.51.100.0/24")
    low = client.subnets.create("10.0.0.0/8")
    root = client.subnets.create("0.0.0.0/0", is_container=True)
    assert client.subnets.get(high.id).subnet.parent_id == root.id
    assert client.subnets.get(low.id).subnet.parent_id == root.id
    children = {c.id for c in client.subnets.get(root.id).children}
    assert children == {high.id, low.id}


def test_ipv6_default_route_parent(client: omnitwin.Client) -> None:
    root = client.subnets.create("::/0", is_container=True)
    doc = client.subnets.create("2001:db8::/32")
    assert doc.parent_id == root.id
    assert client.subnets.get(root.id).total_ips == 2**128


def test_parent_is_smallest_container(client: omnitwin.Client) -> None:
    big = client.subnets.create("10.0.0.0/8", is_container=True)
    mid = client.subnets.create("10.1.0.0/16", is_container=True)
    leaf = client.subnets.create("10.1.2.0/24")
    assert mid.parent_id == big.id
    assert leaf.parent_id == mid.id


def test_middle_container_takes_over_children(client: omnitwin.Client) -> None:
    big = client.subnets.create("10.0.0.0/8", is_container=True)
    leaf = client.subnets.create("10.1.2.0/24")
    other = client.subnets.create("10.200.0.0/24")
    mid = client.subnets.create("10.1.0.0/16", is_container=True)
    assert client.subnets.get(leaf.id).subnet.parent_id == mid.id
    assert client.subnets.get(other.id).subnet.parent_id == big.id
    reparent = client.subnets.audit(leaf.id).data[-1]
    assert reparent.action == "subnet.reparent"
    assert reparent.changes["after"] == {"parent_id": mid.id}


def test_ipv4_never_parent_of_ipv6(client: omnitwin.Client) -> None:
    client.subnets.create("0.0.0.0/0", is_container=True)
    v6 = client.subnets.create("2001:db8::/32")
    assert v6.parent_id is None


# -- utilization: capped at 100%, network and broadcast excluded


def test_slash30_utilization_capped(client: omnitwin.Client) -> None:
    p30 = client.subnets.create("10.0.10.0/30")
    for address in ("10.0.10.0/24", "10.0.10.1/30", "10.0.10.2/30", "10.0.10.3/30"):
        client.addresses.create(address)
    detail = client.subnets.get(p30.id)
    assert detail.total_ips == 2
    assert detail.used_ips == 2
    assert detail.utilization == 1.0


def test_slash26_full_is_100_percent(client: omnitwin.Client) -> None:
    p26 = client.subnets.create("10.0.20.0/26")
    for host in range(1, 63):
        client.addresses.create(f"10.0.20.{host}")
    detail = client.subnets.get(p26.id)
    assert (detail.used_ips, detail.total_ips) == (62, 62)
    assert detail.utilization == 1.0


def test_pool_counts_every_address(client: omnitwin.Client) -> None:
    p30 = client.subnets.create("10.0.10.0/30", is_pool=True)
    p26 = client.subnets.create("10.0.20.0/26", is_pool=True)
    for address in ("10.0.10.0", "10.0.10.1", "10.0.10.2", "10.0.10.3"):
        client.addresses.create(address)
    assert client.subnets.get(p30.id).total_ips == 4
    assert client.subnets.get(p30.id).used_ips == 4
    assert client.subnets.get(p26.id).total_ips == 64


def test_container_counts_allocated_children(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.0.0.0/22", is_container=True)
    client.subnets.create("10.0.0.0/24")
    client.subnets.create("10.0.1.0/24", status="reserved")
    client.subnets.create("10.0.2.0/24", status="available")
    client.addresses.create("10.0.3.7")
    detail = client.subnets.get(block.id)
    assert detail.total_ips == 1024
    assert detail.used_ips == 513
    assert detail.utilization == pytest.approx(513 / 1024)
    assert [c.cidr for c in detail.children] == [
        "10.0.0.0/24",
        "10.0.1.0/24",
        "10.0.2.0/24",
    ]


def test_slash31_and_slash127_usable(client: omnitwin.Client) -> None:
    p31 = client.subnets.create("10.0.0.0/31")
    p127 = client.subnets.create("2001:db8::/127")
    assert client.subnets.available_addresses(p31.id) == ["10.0.0.0", "10.0.0.1"]
    assert client.subnets.available_addresses(p127.id) == ["2001:db8::", "2001:db8::1"]
    assigned = client.addresses.create("2001:db8::1/127")
    assert assigned.subnet_id == p127.id
    client.addresses.create("10.0.0.0")
    client.addresses.create("10.0.0.1")
    assert client.subnets.available_addresses(p31.id) == []
    detail = client.subnets.get(p31.id)
    assert (detail.used_ips, detail.total_ips) == (2, 2)


def test_duplicate_address_rejected(client: omnitwin.Client) -> None:
    client.addresses.create("10.0.0.5")
    with pytest.raises(Duplicate, match="10.0.0.5 is already assigned"):
        client.addresses.create("10.0.0.5/24")


# -- free space and allocation: one shared pool across VRFs


def test_free_blocks_in_address_order(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.128.0.0/16", is_container=True)
    client.subnets.create("10.128.1.0/24")
    client.subnets.create("10.128.3.0/26")
    free = client.subnets.available(24, subnet_id=block.id, limit=3)
    assert free.blocks == ["10.128.0.0/24", "10.128.2.0/24", "10.128.4.0/24"]
    assert free.total_free == 254
    by_cidr = client.subnets.available(24, cidr="10.128.0.0/16", limit=3)
    assert by_cidr.blocks == free.blocks
    assert by_cidr.parent_id == block.id


def test_free_blocks_of_unstored_cidr(client: omnitwin.Client) -> None:
    client.subnets.create("192.0.2.0/25")
    free = client.subnets.available(26, cidr="192.0.2.0/24")
    assert free.blocks == ["192.0.2.128/26", "192.0.2.192/26"]
    assert free.parent_id is None


def test_allocate_first_fit_then_next(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.128.0.0/16", is_container=True)
    first = client.subnets.allocate(24, subnet_id=block.id, purpose="payments")
    second = client.subnets.allocate(24, subnet_id=block.id)
    assert first.cidr == "10.128.0.0/24"
    assert first.parent_id == block.id
    assert first.purpose == "payments"
    assert second.cidr == "10.128.1.0/24"


def test_allocate_best_fit(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.0.0.0/22", is_container=True)
    client.subnets.create("10.0.2.0/24")
    chosen = client.subnets.allocate(24, subnet_id=block.id, policy="best_fit")
    assert chosen.cidr == "10.0.3.0/24"


def test_allocate_until_full(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.0.0.0/30", is_container=True)
    client.subnets.allocate(31, subnet_id=block.id)
    client.subnets.allocate(31, subnet_id=block.id)
    with pytest.raises(NoFreeSpace, match="no free /31 left in 10.0.0.0/30"):
        client.subnets.allocate(31, subnet_id=block.id)


def test_allocate_in_leaf_rejected(client: omnitwin.Client) -> None:
    leaf = client.subnets.create("10.0.0.0/24")
    with pytest.raises(CIDROverlap, match="is not a container"):
        client.subnets.allocate(26, subnet_id=leaf.id)


def test_shared_pool_never_repeats_across_vrfs(client: omnitwin.Client) -> None:
    pool = client.subnets.create("10.50.0.0/16", is_container=True)
    red = client.subnets.allocate(24, subnet_id=pool.id, vrf="red")
    blue = client.subnets.allocate(24, subnet_id=pool.id, vrf="blue")
    assert red.cidr == "10.50.0.0/24"
    assert blue.cidr == "10.50.1.0/24"
    assert red.vrf == "red"
    assert red.parent_id == pool.id
    strict = client.subnets.available(24, subnet_id=pool.id, scope="vrf", limit=1)
    assert strict.blocks == ["10.50.0.0/24"]
    shared = client.subnets.available(24, subnet_id=pool.id, limit=1)
    assert shared.scope == "pool"
    assert shared.blocks == ["10.50.2.0/24"]


def test_vrf_subnet_under_global_container(client: omnitwin.Client) -> None:
    pool = client.subnets.create("10.50.0.0/16", is_container=True)
    red = client.subnets.create("10.50.9.0/24", vrf="red")
    assert red.parent_id == pool.id


def test_ipv6_allocation(client: omnitwin.Client) -> None:
    block = client.subnets.create("2001:db8::/32", is_container=True)
    first = client.subnets.allocate(48, subnet_id=block.id)
    last = client.subnets.allocate(48, subnet_id=block.id, policy="last_fit")
    assert first.cidr == "2001:db8::/48"
    assert last.cidr == "2001:db8:ffff::/48"
    free = client.subnets.available(64, subnet_id=block.id, limit=1)
    assert free.blocks == ["2001:db8:1::/64"]
    assert free.total_free == 2**32 - 2 * 2**16


def test_high_ipv6_values_compare_exactly(client: omnitwin.Client) -> None:
    block = client.subnets.create("ff00::/8", is_container=True)
    a = client.subnets.create("ffff:ffff::/32")
    b = client.subnets.create("ffff:fffe::/32")
    assert a.parent_id == block.id
    assert b.parent_id == block.id
    free = client.subnets.available(
        32,
        subnet_id=block.id,
        limit=1,
    )
    assert free.total_free == 2**24 - 2


# -- update and status ------------------------------------------------------


def test_update_merges_tags(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("10.0.0.0/24", tags={"env": "prod", "app": "x"})
    updated = client.subnets.update(
        subnet.id, tags={"app": "y", "env": None, "tier": "1"}
    )
    assert updated.tags == {"app": "y", "tier": "1"}


def test_cidr_is_immutable(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("10.0.0.0/24")
    with pytest.raises(ImmutableField) as info:
        client.subnets.update(subnet.id, cidr="10.0.1.0/24")
    assert info.value.status == 400


def test_unknown_field_rejected(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("10.0.0.0/24")
    with pytest.raises(ValidationError, match="unknown field 'colour'"):
        client.subnets.update(subnet.id, colour="blue")


def test_deprecated_cannot_return_to_allocated(client: omnitwin.Client) -> None:
    subnet = client.subnets.create("10.0.0.0/24")
    client.subnets.update(subnet.id, status="deprecated")
    with pytest.raises(InvalidTransition, match="from deprecated it can go to"):
        client.subnets.update(subnet.id, status="allocated")
    assert client.subnets.update(subnet.id, status="available").status == "available"


def test_container_with_children_stays(client: omnitwin.Client) -> None:
    block = client.subnets.create("10.0.0.0/16", is_container=True)
    client.subnets.create("10.0.1.0/24")
    with pytest.raises(InvalidTransition, match="must stay a container"):
        client.subnets.update(block.id, is_container=False)


def test_get_unknown_subnet(client: omnitwin.Client) -> None:
    with pytest.raises(NotFound, match="sn_nope"):
        client.subnets.get("sn_nope")


# -- listing ----------------------------------------------------------------


def test_list_filters(client: omnitwin.Client) -> None:
    client.subnets.create("10.0.0.0/8", is_container=True, purpose="Core block")
    client.subnets.create("10.1.0.0/24", purpose="Payments API", status="reserved")
    client.subnets.create("192.0.2.0/24", purpose="docs_net 100%")
    client.subnets.create("10.1.0.0/24", vrf="red", purpose="payments red")
    within = [s.cidr for s in client.subnets.list(within="10.0.0.0/8")]
    assert within == ["10.0.0.0/8", "10.1.0.0/24", "10.1.0.0/24"]
    containing = [s.cidr for s in client.subnets.list(contains="10.1.0.7")]
    assert containing == ["10.0.0.0/8", "10.1.0.0/24", "10.1.0.0/24"]
    assert [s.cidr for s in client.subnets.list(status="reserved")] == ["10.1.0.0/24"]
    assert len(client.subnets.list(purpose="PAYMENTS").data) == 2
    assert len(client.subnets.list(purpose="100%").data) == 1
    assert len(client.subnets.list(purpose="docs_").data) == 1
    assert [s.vrf for s in client.subnets.list(vrf="red")] == ["red"]


def test_list_pagination(client: omnitwin.Client) -> None:
    client.subnets.create("10.0.0.0/16", is_container=True)
    for index in range(7):
        client.subnets.create(f"10.0.{index}.0/24")
    page = client.subnets.list(page=2, per_page=3)
    assert page.total == 8
    assert page.pages == 3
    assert [s.cidr for s in page] == ["10.0.2.0/24", "10.0.3.0/24", "10.0.4.0/24"]
    assert len(list(client.subnets.iter(per_page=3))) == 8


@pytest.mark.parametrize("per_page", [0, 201])
def test_per_page_bounds(client: omnitwin.Client, per_page: int) -> None:
    with pytest.raises(ValidationError, match="1 to 200"):
        client.subnets.list(per_page=per_page)


def test_per_page_max_accepted(client: omnitwin.Client) -> None:
    assert client.subnets.list(per_page=200).per_page == 200
