"""Normalisation of interface names, hostnames and MAC addresses.

Devices and tools name the same port in several ways: ``Gi1/0/1``, ``Gig 1/0/1``
and ``GigabitEthernet1/0/1`` are one interface. Discovery parsers and the drift
comparison run every name through these functions so that both sides of a
comparison use one spelling.

Interface names map to one canonical long form per interface type. Where
vendors spell the long form differently, the Cisco IOS spelling wins: IOS-XR
``TenGigE0/0/0/1`` and ``FortyGigE0/0/0/1`` become ``TenGigabitEthernet0/0/0/1``
and ``FortyGigabitEthernet0/0/0/1``. Names with an unknown prefix, such as the
Junos ``ge-0/0/0``, ``xe-0/0/1.0`` and ``ae0``, are kept as they are apart from
collapsed whitespace.
"""

from __future__ import annotations

import ipaddress
import re

from omnitwin.errors import ValidationError

__all__ = [
    "INTERFACE_ALIASES",
    "normalize_hostname",
    "normalize_interface",
    "normalize_mac",
    "try_normalize_mac",
]

# Canonical long form -> lower-case spellings accepted for it, short and long.
# "Tw" is TwoGigabitEthernet and "Twe" is TwentyFiveGigE, as in Cisco IOS-XE.
INTERFACE_ALIASES: dict[str, tuple[str, ...]] = {
    "GigabitEthernet": ("gi", "gig", "gigabitethernet"),
    "FastEthernet": ("fa", "fas", "fastethernet"),
    "TenGigabitEthernet": ("te", "ten", "tengig", "tengige", "tengigabitethernet"),
    "TwoGigabitEthernet": ("tw", "two", "twogig", "twogigabitethernet"),
    "TwentyFiveGigE": ("twe", "twentyfivegige", "twentyfivegigabitethernet"),
    "FortyGigabitEthernet": ("fo", "for", "fortygige", "fortygigabitethernet"),
    "FiftyGigE": ("fi", "fiftygige", "fiftygigabitethernet"),
    "HundredGigE": ("hu", "hundredgige", "hundredgigabitethernet"),
    "FourHundredGigE": ("fou", "fourhundredgige", "fourhundredgigabitethernet"),
    "AppGigabitEthernet": ("ap", "appgigabitethernet"),
    "Ethernet": ("et", "eth", "ethernet"),
    "Port-channel": ("po", "port-channel", "portchannel"),
    "Bundle-Ether": ("be", "bundle-ether"),
    "Loopback": ("lo", "loopback"),
    "Management": ("ma", "mgmt", "management"),
    "MgmtEth": ("mgmteth",),
    "Vlan": ("vl", "vlan"),
    "Tunnel": ("tu", "tunnel"),
    "Serial": ("se", "serial"),
    "Null": ("nu", "null"),
    "BDI": ("bdi",),
    "BVI": ("bvi",),
    "nve": ("nve",),
}

_CANONICAL_BY_ALIAS: dict[str, str] = {
    alias: canonical
    for canonical, aliases in INTERFACE_ALIASES.items()
    for alias in aliases
}

# A type prefix (letters and hyphens), optional whitespace, then the numbering.
_INTERFACE_RE = re.compile(r"^([A-Za-z][A-Za-z-]*?)\s*(\d.*)$")
_MAC_SEPARATORS_RE = re.compile(r"[\s:.\-]")
_HEX12_RE = re.compile(r"^[0-9a-f]{12}$")
# NX-OS CDP appends the chassis serial to the device ID: "sw1.lab.com(SAL1819S6BE)".
_SERIAL_SUFFIX_RE = re.compile(r"\([^()]*\)$")


def normalize_interface(name: str) -> str:
    """Map an interface name to its canonical long form.

    Parameters
    ----------
    name : str
        An interface name in short, long or mixed-case form, with or without a
        space between the type and the numbering.

    Returns
    -------
    str
        The canonical name. Names whose type prefix is not in
        :data:`INTERFACE_ALIASES` come back unchanged apart from collapsed
        whitespace.

    Examples
    --------
    >>> normalize_interface("Gi1/0/1")
    'GigabitEthernet1/0/1'
    >>> normalize_interface("gig 1/0/1")
    'GigabitEthernet1/0/1'
    >>> normalize_interface("Eth1/52.111")
    'Ethernet1/52.111'
    >>> normalize_interface("xe-0/0/1.0")
    'xe-0/0/1.0'
    """
    collapsed = " ".join(name.split())
    match = _INTERFACE_RE.match(collapsed)
    if match is None:
        return collapsed

    prefix, numbering = match.groups()
    canonical = _CANONICAL_BY_ALIAS.get(prefix.lower())
    if canonical is None:
        return collapsed
    return canonical + numbering


def normalize_hostname(name: str) -> str:
    """Reduce a device name to its lower-case host label.

    The domain suffix and an NX-OS CDP serial suffix such as ``(SAL1819S6BE)``
    are removed. IP addresses are kept whole, in their compressed form.

    Parameters
    ----------
    name : str
        A hostname, FQDN, CDP device ID or IP address.

    Returns
    -------
    str
        The normalised name.

    Raises
    ------
    ValidationError
        If the name is empty or only whitespace.

    Examples
    --------
    >>> normalize_hostname("Spine2.Company.com")
    'spine2'
    >>> normalize_hostname("N9K2_TEST.lab.com(SAL1819S6BE)")
    'n9k2_test'
    >>> normalize_hostname("10.1.100.1")
    '10.1.100.1'
    """
    text = _SERIAL_SUFFIX_RE.sub("", name.strip()).strip().lower()
    if not text:
        message = f"invalid hostname {name!r}: it is empty; pass a device name"
        raise ValidationError(message, details={"value": name})

    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        pass
    return text.split(".", 1)[0] or text


def try_normalize_mac(value: str) -> str | None:
    """Return `value` as a normalised MAC address, or None if it is not one.

    Examples
    --------
    >>> try_normalize_mac("2cc2.6081.eaf9")
    '2c:c2:60:81:ea:f9'
    >>> try_normalize_mac("PERIMETER") is None
    True
    """
    digits = _MAC_SEPARATORS_RE.sub("", value.strip()).lower()
    if not _HEX12_RE.match(digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def normalize_mac(value: str) -> str:
    """Convert a MAC address to lower-case colon form.

    Parameters
    ----------
    value : str
        A MAC address as ``aa:bb:cc:dd:ee:ff``, ``AA-BB-CC-DD-EE-FF``,
        ``aabb.ccdd.eeff``, ``aabbccddeeff`` or space-separated octets.

    Returns
    -------
    str
        The address as ``aa:bb:cc:dd:ee:ff``.

    Raises
    ------
    ValidationError
        If the value does not contain exactly 12 hexadecimal digits.

    Examples
    --------
    >>> normalize_mac("02-42-AC-1C-01-03")
    '02:42:ac:1c:01:03'
    >>> normalize_mac("aabb.ccdd.eeff")
    'aa:bb:cc:dd:ee:ff'
    """
    mac = try_normalize_mac(value)
    if mac is None:
        message = (
            f"invalid MAC address {value!r}: expected 12 hex digits such as "
            "'aa:bb:cc:dd:ee:ff', 'AA-BB-CC-DD-EE-FF' or 'aabb.ccdd.eeff'"
        )
        raise ValidationError(message, details={"value": value})
    return mac
