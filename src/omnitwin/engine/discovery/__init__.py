"""Discovery parsers: detected state from NAPALM, CLI output, Nmap and Batfish.

Every parser is a pure function from text or JSON to
:class:`~omnitwin.engine.discovery.model.Observation` objects, with no I/O
beyond reading a file it is given and no database access.
"""

from omnitwin.engine.discovery.batfish import (
    load_snapshot,
    parse_batfish,
    read_snapshot,
)
from omnitwin.engine.discovery.cli import SUPPORTED_COMMANDS, parse_cli
from omnitwin.engine.discovery.interfaces import (
    normalize_hostname,
    normalize_interface,
    normalize_mac,
)
from omnitwin.engine.discovery.model import Neighbor, Observation
from omnitwin.engine.discovery.napalm import (
    SUPPORTED_GETTERS,
    load_napalm_case,
    parse_napalm,
)
from omnitwin.engine.discovery.nmap import parse_nmap_xml

__all__ = [
    "SUPPORTED_COMMANDS",
    "SUPPORTED_GETTERS",
    "Neighbor",
    "Observation",
    "load_napalm_case",
    "load_snapshot",
    "normalize_hostname",
    "normalize_interface",
    "normalize_mac",
    "parse_batfish",
    "parse_cli",
    "parse_napalm",
    "parse_nmap_xml",
    "read_snapshot",
]
