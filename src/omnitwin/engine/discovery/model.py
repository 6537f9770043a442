"""Observations: what a discovery source reported about one device or host.

Every parser returns :class:`Observation` objects whose ``state`` uses the
canonical device state shape below. The twin's intended state (twin_state) and
the observed state (detected_state) share this shape, so the drift comparison
can match them field by field. A parser includes only the keys that its source
provides, and never a key with an unknown value.

.. code-block:: text

    {
      "hostname":   str             # normalize_hostname(): lower case, no domain
      "vendor":     str             # "Cisco", "Arista", "Juniper", ...
      "model":      str
      "os_version": str
      "serial":     str
      "uptime_s":   int             # seconds; drift ignores it by default
      "interfaces": {               # keyed by normalize_interface() name
        "GigabitEthernet1/0/1": {
          "enabled":     bool,      # administratively up
          "oper_up":     bool,      # line protocol up
          "mac":         str,       # "aa:bb:cc:dd:ee:ff"
          "speed_mbps":  int,
          "mtu":         int,
          "description": str,
          "ipv4":        [str],     # "10.0.0.1/24", compared as a set
          "ipv6":        [str],     # "2001:db8::1/64", compared as a set
        },
      },
      "neighbors":  [str],          # "<local_port> <remote_host> <remote_port>"
      "status":     str             # Nmap host status: "up" or "down"
      "addresses":  [str],          # IP addresses of the host (Nmap)
      "hostnames":  [str],          # every name the source reported (Nmap)
      "mac":        str,            # the host's or chassis MAC address
      "ports":      {"tcp/22": "open", ...},  # Nmap port states
      "os":         str,            # best Nmap OS match
    }
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from omnitwin.engine.discovery.interfaces import (
    normalize_hostname,
    normalize_interface,
    try_normalize_mac,
)

__all__ = ["Neighbor", "Observation", "build_neighbor", "unique_neighbors"]


@dataclass(frozen=True, slots=True)
class Neighbor:
    """A link-layer neighbour seen on a local port through LLDP or CDP.

    All three names are normalised: ports with
    :func:`~omnitwin.engine.discovery.interfaces.normalize_interface` and the
    remote host with
    :func:`~omnitwin.engine.discovery.interfaces.normalize_hostname`.

    Examples
    --------
    >>> Neighbor("Ethernet1", "spine2", "Ethernet1").name
    'Ethernet1 spine2 Ethernet1'
    """

    local_port: str
    remote_host: str
    remote_port: str

    @property
    def name(self) -> str:
        """The neighbour as one string, the form used in ``state["neighbors"]``."""
        return f"{self.local_port} {self.remote_host} {self.remote_port}"


@dataclass(frozen=True, slots=True)
class Observation:
    """The state that one discovery source reported for one device or host.

    Attributes
    ----------
    source : str
        The parser that produced it: ``"napalm"``, ``"textfsm:<platform>"`` or
        ``"nmap"``.
    hostname : str or None
        The normalised device name, when the source reports it.
    serial : str or None
        The chassis serial number, when the source reports it.
    management_address : str or None
        The address the device was reached on, when the source reports it.
    state : dict
        The detected state in the canonical shape of this module, JSON
        serialisable.
    neighbors : list of Neighbor
        LLDP and CDP neighbours, also listed by name in ``state["neighbors"]``.
    observed_at : str or None
        When the source observed the device, as an ISO 8601 UTC timestamp.
    """

    source: str
    hostname: str | None = None
    serial: str | None = None
    management_address: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    neighbors: list[Neighbor] = field(default_factory=list)
    observed_at: str | None = None


def unique_neighbors(neighbors: Iterable[Neighbor]) -> list[Neighbor]:
    """Drop repeated neighbours, keeping the first occurrence of each.

    Examples
    --------
    >>> n = Neighbor("Ethernet1", "spine2", "Ethernet1")
    >>> unique_neighbors([n, n])
    [Neighbor(local_port='Ethernet1', remote_host='spine2', remote_port='Ethernet1')]
    """
    return list(dict.fromkeys(neighbors))


def build_neighbor(
    local_port: str | None, remote_host: str | None, remote_port: str | None
) -> Neighbor | None:
    """Normalise raw neighbour fields into a :class:`Neighbor`.

    A remote host or port that is a MAC address, as LLDP chassis and port IDs
    often are, becomes the lower-case colon form.

    Returns
    -------
    Neighbor or None
        None when one of the three fields is missing or blank, because such a
        neighbour cannot be matched to a link.

    Examples
    --------
    >>> build_neighbor("Gi1/0/2", "SW2.example.com", "480f.cf28.8a1b")
    Neighbor(local_port='GigabitEthernet1/0/2', remote_host='sw2', \
remote_port='48:0f:cf:28:8a:1b')
    >>> build_neighbor("Gi1/0/2", "", "Gi0/1") is None
    True
    """
    if not (local_port and local_port.strip()):
        return None
    if not (remote_host and remote_host.strip()):
        return None
    if not (remote_port and remote_port.strip()):
        return None

    host = try_normalize_mac(remote_host) or normalize_hostname(remote_host)
    port = try_normalize_mac(remote_port) or normalize_interface(remote_port)
    return Neighbor(normalize_interface(local_port), host, port)
