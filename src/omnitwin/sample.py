"""A generated sample network: a spine-leaf fabric over several sites.

The generator is deterministic (same arguments, same network) and scales
from a toy to tens of thousands of devices, so demos, tests and benchmarks
share one input. Each site gets a /16 from 10.0.0.0/8 and a /48 from
2001:db8::/32; every leaf gets a server /24 and a /64, and every fabric link
a /31 from the site's point-to-point block.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SITE_NAMES", "SampleNetwork", "generate_fabric"]

SITE_NAMES = ("nyc1", "sfo1", "ams1", "sin1", "fra1", "lon1", "tyo1", "syd1")
REGIONS = {
    "nyc1": "us-east",
    "sfo1": "us-west",
    "ams1": "eu-west",
    "sin1": "ap-southeast",
    "fra1": "eu-central",
    "lon1": "eu-west",
    "tyo1": "ap-northeast",
    "syd1": "ap-south",
}


@dataclass(frozen=True, slots=True)
class SampleDevice:
    """One device of the sample network."""

    hostname: str
    role: str
    site: str
    rack: str | None
    serial: str
    management_address: str
    model: str
    os_version: str


@dataclass(frozen=True, slots=True)
class SampleLink:
    """A cable between two device ports."""

    a: str
    port_a: str
    b: str
    port_b: str
    cable: str


@dataclass(frozen=True, slots=True)
class SampleSubnet:
    """A subnet to create, in creation order (containers first)."""

    cidr: str
    purpose: str
    site: str | None
    is_container: bool = False
    status: str = "allocated"
    vlan_id: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    owner: str | None = None


@dataclass(slots=True)
class SampleNetwork:
    """Devices, cables and subnets of a generated fabric."""

    sites: list[str]
    devices: list[SampleDevice]
    links: list[SampleLink]
    subnets: list[SampleSubnet]

    def summary(self) -> dict[str, Any]:
        """Return counts of sites, devices by role, links and subnets."""
        roles: dict[str, int] = {}
        for device in self.devices:
            roles[device.role] = roles.get(device.role, 0) + 1
        return {
            "sites": len(self.sites),
            "devices": len(self.devices),
            "roles": roles,
            "links": len(self.links),
            "subnets": len(self.subnets),
        }


def _site_name(index: int) -> str:
    if index < len(SITE_NAMES):
        return SITE_NAMES[index]
    return f"site{index + 1:03d}"


def generate_fabric(
    sites: int = 3,
    spines: int = 2,
    leaves: int = 4,
    servers_per_leaf: int = 2,
    *,
    seed: int = 7,
) -> SampleNetwork:
    """Generate a deterministic multi-site spine-leaf network.

    Two core routers join the sites; every spine connects to both cores and
    to every leaf of its site; servers hang off one leaf (single-homed), so
    leaves are cut vertices and blast radius has something to find.

    Parameters
    ----------
    sites : int
        Number of sites, 1 to 255.
    spines, leaves, servers_per_leaf : int
        Devices per site and per leaf.
    seed : int
        Seed for serial numbers; the topology itself does not depend on it.

    Examples
    --------
    >>> net = generate_fabric(sites=2, spines=2, leaves=2, servers_per_leaf=1)
    >>> net.summary()["devices"]
    14
    """
    if not 1 <= sites <= 255:
        raise ValueError(f"sites must be 1 to 255, got {sites}")
    if spines < 1 or leaves < 1 or servers_per_leaf < 0:
        raise ValueError("a site needs at least one spine and one leaf")
    rng = random.Random(seed)
    names = [_site_name(i) for i in range(sites)]
    devices: list[SampleDevice] = []
    links: list[SampleLink] = []
    subnets: list[SampleSubnet] = [
        SampleSubnet("10.0.0.0/8", "fabric supernet", None, is_container=True),
        SampleSubnet("2001:db8::/32", "fabric IPv6 supernet", None, is_container=True),
    ]

    def serial() -> str:
        return "FDO" + "".join(
            rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(8)
        )

    cores = [f"core-{i:02d}" for i in (1, 2)]
    for index, core in enumerate(cores):
        devices.append(
            SampleDevice(
                core,
                "router",
                names[0],
                "core",
                serial(),
                f"10.255.255.{index + 1}",
                "ASR-9001",
                "7.9.2",
            )
        )
    links.append(
        SampleLink(
            cores[0], "HundredGigE0/0/0/0", cores[1], "HundredGigE0/0/0/0", "cab-core-1"
        )
    )
    cable_number = 0
    for site_index, site in enumerate(names):
        octet = site_index + 1
        region = REGIONS.get(site, "global")
        site_tags = {"site": site, "region": region}
        subnets += [
            SampleSubnet(
                f"10.{octet}.0.0/16",
                f"{site} site block",
                site,
                is_container=True,
                tags=site_tags,
            ),
            SampleSubnet(
                f"10.{octet}.0.0/24", f"{site} loopbacks", site, tags=site_tags
            ),
            SampleSubnet(
                f"10.{octet}.1.0/24",
                f"{site} fabric links",
                site,
                is_container=True,
                tags=site_tags,
            ),
            SampleSubnet(
                f"10.{octet}.128.0/17",
                f"{site} service pool",
                site,
                is_container=True,
                status="available",
                tags=site_tags,
            ),
            SampleSubnet(
                f"2001:db8:{octet:x}::/48",
                f"{site} IPv6 site block",
                site,
                is_container=True,
                tags=site_tags,
            ),
        ]
        spine_names = [f"spine-{i + 1:02d}.{site}" for i in range(spines)]
        leaf_names = [f"leaf-{i + 1:02d}.{site}" for i in range(leaves)]
        host = 1
        for name in spine_names:
            devices.append(
                SampleDevice(
                    name,
                    "switch",
                    site,
                    f"{site}-r01",
                    serial(),
                    f"10.{octet}.0.{host}",
                    "DCS-7280SR",
                    "4.30.1F",
                )
            )
            host += 1
        for name in leaf_names:
            devices.append(
                SampleDevice(
                    name,
                    "switch",
                    site,
                    f"{site}-r02",
                    serial(),
                    f"10.{octet}.0.{host}",
                    "DCS-7050SX",
                    "4.30.1F",
                )
            )
            host += 1
        link_block = ipaddress.IPv4Network(f"10.{octet}.1.0/24").subnets(new_prefix=31)
        for s_index, spine in enumerate(spine_names):
            for c_index, core in enumerate(cores):
                cable_number += 1
                links.append(
                    SampleLink(
                        spine,
                        f"Ethernet{49 + c_index}/1",
                        core,
                        f"HundredGigE0/0/1/{site_index * spines + s_index}",
                        f"cab-{cable_number:05d}",
                    )
                )
            for l_index, leaf in enumerate(leaf_names):
                cable_number += 1
                links.append(
                    SampleLink(
                        spine,
                        f"Ethernet{l_index + 1}/1",
                        leaf,
                        f"Ethernet{49 + s_index}/1",
                        f"cab-{cable_number:05d}",
                    )
                )
                p2p = next(link_block, None)
                if p2p is not None:
                    subnets.append(
                        SampleSubnet(
                            str(p2p), f"{spine} to {leaf}", site, tags=site_tags
                        )
                    )
        for l_index, leaf in enumerate(leaf_names):
            vlan = 100 + l_index
            subnets.append(
                SampleSubnet(
                    f"10.{octet}.{16 + l_index}.0/24",
                    f"{leaf} servers",
                    site,
                    vlan_id=vlan if vlan <= 4094 else None,
                    tags=site_tags,
                    owner="team:platform",
                )
            )
            subnets.append(
                SampleSubnet(
                    f"2001:db8:{octet:x}:{l_index + 1:x}::/64",
                    f"{leaf} servers IPv6",
                    site,
                    tags=site_tags,
                    owner="team:platform",
                )
            )
            for s in range(servers_per_leaf):
                name = f"srv-{l_index + 1:02d}-{s + 1:02d}.{site}"
                devices.append(
                    SampleDevice(
                        name,
                        "server",
                        site,
                        f"{site}-r{3 + l_index:02d}",
                        serial(),
                        f"10.{octet}.{16 + l_index}.{10 + s}",
                        "PowerEdge R650",
                        "22.04",
                    )
                )
                cable_number += 1
                links.append(
                    SampleLink(
                        leaf,
                        f"Ethernet{10 + s}/1",
                        name,
                        "eth0",
                        f"cab-{cable_number:05d}",
                    )
                )
    return SampleNetwork(names, devices, links, subnets)
