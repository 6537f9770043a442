"""Tests for the import parsers, on the shared real files read in place."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from _importdata import data_dir, data_files, read_bytes, read_json

from omnitwin.engine.import_sources import SOURCES, guess_json_source, parse_source
from omnitwin.engine.importers import (
    AddressRecord,
    CableRecord,
    DeviceRecord,
    InterfaceRecord,
    ParseResult,
    RangeRecord,
    SiteRecord,
    SubnetRecord,
    TenantRecord,
    VlanRecord,
    decimal_to_ip,
    parse_bluecat_csv,
    parse_bluecat_json,
    parse_generic_csv,
    parse_infoblox_csv,
    parse_infoblox_wapi,
    parse_netbox_dump,
    parse_phpipam_csv,
    read_table,
)
from omnitwin.engine.importers.records import (
    RackRecord,
    mask_to_prefix,
    parse_address,
    parse_mac,
    parse_network,
)
from omnitwin.errors import InvalidAddress, InvalidCIDR, ValidationError

NETBOX = "netbox-demo-data/netbox-demo-v3.6.dcim-ipam.json"
WAPI = "nautobot-ssot-fixtures/infoblox"


def errors_of(result: ParseResult) -> list[tuple[int, str, str]]:
    return [(error.line, error.field, error.message) for error in result.errors]


# CSV reading


def test_bom_plain_header_b13() -> None:
    data = (
        b"\xef\xbb\xbfdevice,type,name,enabled\r\n"
        b"sw-lab-01,1000base-t,Management 1,TRUE\r\n"
    )
    table = read_table(data)
    assert table.headers == ("device", "type", "name", "enabled")
    assert len(table.rows) == 1
    assert table.rows[0].get("device") == "sw-lab-01"


def test_bom_quoted_header_b13() -> None:
    table = read_table(b'\xef\xbb\xbf"name","site"\r\n"sw1","lab-a"\r\n')
    assert table.headers == ("name", "site")
    assert table.rows[0].get("name") == "sw1"


def test_bom_removed_only_once() -> None:
    table = read_table("\ufeff\ufeffname\nx\n".encode())
    assert table.headers == ("\ufeffname",)


def test_semicolon_trailing_delimiter_b14() -> None:
    table = read_table(
        'role;site;name;description;\r\nrouter;lab-a;rtr-01;"Core, Row 1";\r\n'
    )
    assert table.delimiter == ";"
    assert table.headers == ("role", "site", "name", "description")
    assert len(table.rows) == 1
    assert table.rows[0].get("description") == "Core, Row 1"


def test_semicolon_with_quoted_commas() -> None:
    table = read_table('name;description\r\nsw1;"a, b, c, d"\r\n')
    assert table.delimiter == ";"
    assert table.rows[0].get("description") == "a, b, c, d"


def test_header_trimmed_and_lowercased() -> None:
    table = read_table(" CIDR , Status \n10.0.0.0/24,reserved\n")
    assert table.headers == ("cidr", "status")


def test_duplicate_header_rejected() -> None:
    with pytest.raises(ValidationError, match=r"'Name'.*columns 1 and 3"):
        read_table("name,site,Name\na,b,c\n")


def test_unnamed_column_with_values_rejected() -> None:
    with pytest.raises(ValidationError, match="column 3 has no header name"):
        read_table("a,b,\n1,2,3\n")


def test_invalid_utf8_rejected() -> None:
    with pytest.raises(ValidationError, match="not valid UTF-8"):
        read_table(b"name\ncaf\xe9\n")


def test_multiline_quoted_field_line_numbers() -> None:
    data = (
        'cidr,purpose\r\n10.0.0.0/24,"first\r\nsecond\r\nthird"\r\n'
        "10.0.1.7/24,x\r\n\r\n10.0.2.0/24,y\r\n"
    )
    result = parse_generic_csv(data)
    assert [record.line for record in result.records] == [2, 7]
    assert result.records[0].purpose == "first\r\nsecond\r\nthird"
    assert errors_of(result) == [
        (5, "cidr", "10.0.1.7/24 has host bits set; did you mean 10.0.1.0/24?")
    ]


def test_surplus_value_is_row_error() -> None:
    result = parse_generic_csv("cidr,purpose\n10.0.0.0/24,a,b\n10.0.1.0/24,c\n")
    assert [error.line for error in result.errors] == [2]
    assert "remove the extra value 'b'" in result.errors[0].message
    assert [record.cidr for record in result.records] == ["10.0.1.0/24"]


# Field checks


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.83.196/26", "did you mean 10.0.83.192/26?"),
        ("2001:db8::1/64", "did you mean 2001:db8::/64?"),
        ("010.1.1.0/24", "not a valid network"),
        ("10.1.1.1", "has no prefix length"),
        ("10.0.0.0/33", "not a valid network"),
    ],
)
def test_network_rejected(value: str, expected: str) -> None:
    with pytest.raises(InvalidCIDR, match=expected.replace("?", r"\?")):
        parse_network(value)


def test_network_dotted_mask_accepted() -> None:
    assert parse_network("10.0.0.0/255.255.255.0") == "10.0.0.0/24"


def test_address_interface_style_kept() -> None:
    assert parse_address("10.1.1.1/24") == "10.1.1.1/24"
    assert parse_address("2001:db8::1") == "2001:db8::1/128"


def test_address_leading_zero_rejected() -> None:
    with pytest.raises(InvalidAddress, match=r"010\.1\.1\.1"):
        parse_address("010.1.1.1")


def test_noncontiguous_mask_rejected() -> None:
    with pytest.raises(InvalidCIDR, match="not a contiguous"):
        mask_to_prefix("255.0.255.0")


@pytest.mark.parametrize(
    "value",
    ["00:11:22:33:44:55", "00-11-22-33-44-55", "0011.2233.4455", "001122334455"],
)
def test_mac_formats_normalised(value: str) -> None:
    assert parse_mac(value) == "00:11:22:33:44:55"


# Generic CSV


def test_generic_row_fields() -> None:
    data = (
        "cidr,status,purpose,vlan,owner,tags,vrf,parent\n"
        "10.20.0.0/24,reserved,lab,120,team:platform,env=lab|rack=r1,blue,10.20.0.0/16\n"
        "10.20.0.0/16,container,,,,,blue,\n"
    )
    result = parse_generic_csv(data)
    assert result.errors == []
    first, second = result.records
    assert isinstance(first, SubnetRecord)
    assert first.vlan_id == 120
    assert first.tags == {"env": "lab", "rack": "r1"}
    assert first.parent_cidr == "10.20.0.0/16"
    assert first.vrf == "blue"
    assert isinstance(second, SubnetRecord)
    assert second.is_container
    assert second.status == "allocated"


def test_generic_bad_rows_reported() -> None:
    data = (
        "cidr,status,vlan,tags,parent\n"
        "10.0.0.0/24,active,,,\n"
        "10.0.1.0/24,,5000,,\n"
        "10.0.2.0/24,,,env,\n"
        "10.0.3.0/24,,,,10.1.0.0/16\n"
        "2001:db8::/64,,,,\n"
    )
    result = parse_generic_csv(data)
    assert [(error.line, error.field) for error in result.errors] == [
        (2, "status"),
        (3, "vlan"),
        (4, "tags"),
        (5, "parent"),
    ]
    assert [record.line for record in result.records] == [6]
    assert result.total_rows == 5


def test_generic_unknown_column_rejected() -> None:
    with pytest.raises(ValidationError, match="unknown column 'subnet'"):
        parse_generic_csv("subnet\n10.0.0.0/24\n")


# Infoblox CSV


INFOBLOX_CSV = {
    "infoblox/ibx-sdk_csvexport_networks.csv": ["100.64.50.0/24", "100.64.40.0/24"],
    "infoblox/ibx-sdk_csvimport_add_network.csv": ["192.168.1.0/24"],
    "infoblox/ibx-sdk_csvimport_custom_import-action.csv": [
        "100.64.50.0/24",
        "100.64.40.0/24",
    ],
    "infoblox/ibx-sdk_csvimport_delete_network.csv": ["192.168.1.0/24"],
}


def test_infoblox_csv_file_list_complete() -> None:
    assert data_files("infoblox", "*.csv") == sorted(INFOBLOX_CSV)


@pytest.mark.parametrize(("name", "cidrs"), sorted(INFOBLOX_CSV.items()))
def test_infoblox_csv_file(name: str, cidrs: list[str]) -> None:
    result = parse_infoblox_csv(read_bytes(name))
    assert result.errors == []
    assert [record.cidr for record in result.of_type(SubnetRecord)] == cidrs
    assert all(record.vrf == "global" for record in result.of_type(SubnetRecord))
    assert [record.line for record in result.records] == list(range(2, len(cidrs) + 2))


def test_infoblox_csv_sections() -> None:
    data = (
        "header-networkcontainer,address*,netmask*,comment,EA-Site\n"
        "networkcontainer,10.0.0.0,255.255.0.0,<empty>,NYC\n"
        "header-network,IMPORT-ACTION,address*,netmask*,network_view\n"
        "network,I,10.0.1.0,255.255.255.0,prod\n"
        "network,D,10.0.2.0,255.255.255.0,default\n"
        "network,I,10.0.3.5,255.255.255.192,default\n"
        "network,I,10.0.4.0,255.0.255.0,default\n"
        "header-range,start_address*,end_address*,network\n"
        "range,10.0.1.50,10.0.1.20,10.0.1.0/24\n"
        "header-hostrecord,fqdn*,addresses\n"
        'hostrecord,web.example.com,"10.0.1.5,10.0.1.6"\n'
        "header-arecord,fqdn*,address*\n"
        "arecord,www.example.com,10.0.1.5\n"
        "fixedaddress,10.0.1.9,aa:bb:cc:dd:ee:ff\n"
    )
    result = parse_infoblox_csv(data)

    container, network = result.of_type(SubnetRecord)
    assert container.is_container
    assert container.tags == {"Site": "NYC"}
    assert container.purpose == ""
    assert network.vrf == "prod"

    hosts = result.of_type(AddressRecord)
    assert [host.address for host in hosts] == ["10.0.1.5/32", "10.0.1.6/32"]
    assert [(row.line, "D" in row.reason) for row in result.skipped] == [
        (5, True),
        (13, False),
    ]

    assert [(error.line, error.field) for error in result.errors] == [
        (6, "address"),
        (7, "netmask"),
        (9, "end"),
        (14, "type"),
    ]
    assert "did you mean 10.0.3.0/26?" in result.errors[0].message
    assert result.total_rows == 9


# Infoblox WAPI

# file: (records, row errors as (line, field), skipped)
WAPI_FILES: dict[str, tuple[int, list[tuple[int, str]], int]] = {
    "create_a_record.json": (0, [(1, "ipv4addr")], 0),
    "create_host_record.json": (0, [(1, "ipv4addrs")], 0),
    "create_ptr_record.json": (1, [], 0),
    "find_network_reference.json": (1, [], 0),
    "find_next_available_ip.json": (0, [], 1),
    "get_a_record_by_ip.json": (1, [], 0),
    "get_a_record_by_name.json": (1, [], 0),
    "get_a_record_by_ref.json": (1, [], 0),
    "get_all_dns_views.json": (0, [], 2),
    "get_all_ipv4address_networks.json": (2, [], 0),
    "get_all_ipv4address_networks_bulk.json": (1, [], 0),
    "get_all_ipv4address_networks_medium.json": (8, [], 0),
    "get_all_network_views.json": (0, [], 3),
    "get_all_ranges.json": (3, [(1, "end"), (1, "end")], 0),
    "get_all_subnets_page_1.json": (2, [(0, "next_page_id")], 0),
    "get_all_subnets_page_2.json": (2, [], 0),
    "get_authoritative_zone.json": (0, [], 6),
    "get_authoritative_zones_for_dns_view.json": (0, [], 2),
    "get_dhcp_lease_from_hostname.json": (0, [], 1),
    "get_dhcp_lease_from_ipv4.json": (0, [], 1),
    "get_fixed_address_by_ref.json": (1, [], 0),
    "get_host_by_ip.json": (1, [], 0),
    "get_host_by_ref.json": (1, [], 0),
    "get_host_record_by_name.json": (1, [], 0),
    "get_network_containers.json": (3, [], 0),
    "get_network_containers_ipv6.json": (3, [], 0),
    "get_network_containers_ipv6_list.json": (3, [], 0),
    "get_network_containers_list.json": (3, [], 0),
    "get_network_view.json": (0, [], 1),
    "get_ptr_record_by_ip.json": (1, [], 0),
    "get_ptr_record_by_name.json": (0, [(1, "ipv4addr")], 0),
    "get_ptr_record_by_ref.json": (1, [], 0),
    "search_ipv4_address.json": (3, [], 0),
}


def test_wapi_file_list_complete() -> None:
    names = [name.split("/")[-1] for name in data_files(WAPI, "*.json")]
    assert names == sorted(WAPI_FILES)


@pytest.mark.parametrize(("name", "expected"), sorted(WAPI_FILES.items()))
def test_wapi_file(name: str, expected: tuple[int, list[tuple[int, str]], int]) -> None:
    records, errors, skipped = expected
    result = parse_infoblox_wapi(read_json(f"{WAPI}/{name}"))
    assert len(result.records) == records
    assert [(error.line, error.field) for error in result.errors] == errors
    assert len(result.skipped) == skipped
    assert result.total_rows == len({r.line for r in result.records}) + len(
        {e.line for e in result.errors if e.line}
    ) + len(result.skipped)


def test_wapi_range_end_before_start() -> None:
    result = parse_infoblox_wapi(read_json(f"{WAPI}/get_all_ranges.json"))
    assert [error.message for error in result.errors] == [
        "range end 10.0.0.255 is outside its network 10.10.0.0/23; give an address"
        " from 10.10.0.0 to 10.10.1.255",
        "range end 10.0.0.255 precedes its start 10.10.0.20; swap them or fix the end",
    ]
    ranges = result.of_type(RangeRecord)
    assert [(r.line, r.start, r.end) for r in ranges] == [
        (2, "10.10.1.20", "10.10.1.254"),
        (3, "10.220.65.200", "10.220.65.255"),
        (4, "192.168.1.50", "192.168.1.254"),
    ]
    assert ranges[2].vrf == "non-default-view"


def test_wapi_pages_joined() -> None:
    pages = [read_json(f"{WAPI}/get_all_subnets_page_{n}.json") for n in (1, 2)]
    result = parse_infoblox_wapi(*pages)
    assert result.errors == []
    cidrs = [record.cidr for record in result.of_type(SubnetRecord)]
    assert cidrs == [
        "10.223.0.0/21",
        "10.220.64.0/21",
        "10.224.0.0/21",
        "10.221.64.0/21",
    ]
    assert [record.line for record in result.records] == [1, 2, 3, 4]


def test_wapi_ipv6_containers_extattrs() -> None:
    result = parse_infoblox_wapi(read_json(f"{WAPI}/get_network_containers_ipv6.json"))
    first = result.of_type(SubnetRecord)[0]
    assert first.cidr == "2001:5b0:4100::/40"
    assert first.is_container
    assert first.tags == {"GWID": "ABC", "GWType": "Test"}
    assert first.purpose == "Gateway 1"


def test_wapi_host_and_fixed_address() -> None:
    host = parse_infoblox_wapi(read_json(f"{WAPI}/get_host_by_ip.json")).records[0]
    assert isinstance(host, AddressRecord)
    assert (host.address, host.hostname, host.mac) == (
        "10.220.0.101/32",
        "testdevice1.test",
        "11:11:11:11:11:11",
    )
    fixed = parse_infoblox_wapi(read_json(f"{WAPI}/get_fixed_address_by_ref.json"))
    record = fixed.records[0]
    assert isinstance(record, AddressRecord)
    assert (record.address, record.vrf, record.mac) == (
        "10.0.0.2/32",
        "dev",
        "52:1f:83:d4:9a:2e",
    )


# BlueCat

BLUECAT_CSV = [
    "bluecat/gw_bulk_register_dhcp_range.csv",
    "bluecat/gw_bulk_register_ip_address.csv",
    "bluecat/gw_bulk_register_mac_address.csv",
    "bluecat/gw_iot_device_registration_iotdevice01.csv",
]


def test_bluecat_csv_file_list_complete() -> None:
    assert data_files("bluecat", "*.csv") == BLUECAT_CSV


def test_bluecat_dhcp_ranges_outside_network() -> None:
    result = parse_bluecat_csv(read_bytes(BLUECAT_CSV[0]))
    assert errors_of(result) == [
        (4, "end", "range end 10.112.203.253 is outside its network 10.114.203.0/24;"
         " give an address from 10.114.203.0 to 10.114.203.255"),
        (4, "end", "range end 10.112.203.253 precedes its start 10.114.203.30;"
         " swap them or fix the end"),
        (5, "end", "range end 10.112.205.253 is outside its network 10.114.205.0/24;"
         " give an address from 10.114.205.0 to 10.114.205.255"),
        (5, "end", "range end 10.112.205.253 precedes its start 10.114.205.30;"
         " swap them or fix the end"),
    ]  # fmt: skip
    subnets = result.of_type(SubnetRecord)
    assert [(s.cidr, s.is_container, s.parent_cidr) for s in subnets] == [
        ("10.112.0.0/16", True, None),
        ("10.112.194.0/24", False, "10.112.0.0/16"),
        ("10.112.200.0/24", False, "10.112.0.0/16"),
    ]
    assert subnets[1].purpose == "MacPool1"
    assert subnets[1].tags == {"tag": "NetworkTag1"}
    ranges = result.of_type(RangeRecord)
    assert [(r.start, r.end) for r in ranges] == [
        ("10.112.194.30", "10.112.194.254"),
        ("10.112.200.30", "10.112.200.254"),
    ]


def test_bluecat_ip_addresses() -> None:
    result = parse_bluecat_csv(read_bytes(BLUECAT_CSV[1]))
    assert result.errors == []
    rows = [
        (r.line, r.address, r.hostname, r.mac) for r in result.of_type(AddressRecord)
    ]
    assert rows == [
        (2, "192.168.9.2/32", "xxxx", "74:2b:62:89:cf:5e"),
        (3, "192.168.9.3/32", "", ""),
        (4, "192.168.9.4/32", "yyyy", ""),
        (5, "192.168.9.6/32", "zzzz", "28:18:78:fb:68:24"),
    ]


@pytest.mark.parametrize(("name", "rows"), [(BLUECAT_CSV[2], 8), (BLUECAT_CSV[3], 2)])
def test_bluecat_mac_rows_skipped(name: str, rows: int) -> None:
    result = parse_bluecat_csv(read_bytes(name))
    assert result.errors == []
    assert result.records == []
    assert len(result.skipped) == rows
    assert result.total_rows == rows


def test_bluecat_iot_bare_mac_checked() -> None:
    data = read_bytes(BLUECAT_CSV[3]).replace(b"001122334455", b"00112233445G")
    result = parse_bluecat_csv(data)
    assert [(e.line, e.field, e.value) for e in result.errors] == [
        (3, "macAddress", "00112233445G")
    ]


def test_bluecat_entity_chain() -> None:
    result = parse_bluecat_json(
        read_json("bluecat/xsoar_bam91_query-ip_10.0.0.10_context.json")
    )
    assert result.errors == []
    address = result.of_type(AddressRecord)[0]
    assert (address.address, address.status, address.source_id) == (
        "10.0.0.10/32",
        "static",
        "100923",
    )
    chain = [
        (s.cidr, s.is_container, s.parent_cidr) for s in result.of_type(SubnetRecord)
    ]
    assert chain == [
        ("10.0.0.0/24", False, "10.0.0.0/21"),
        ("10.0.0.0/21", True, "10.0.0.0/19"),
        ("10.0.0.0/19", True, "10.0.0.0/16"),
        ("10.0.0.0/16", True, "10.0.0.0/8"),
        ("10.0.0.0/8", True, None),
    ]


# phpIPAM (our own inputs in the documented layout; no real export exists)


@pytest.mark.parametrize(
    ("value", "version", "expected"),
    [
        (168427520, None, "10.10.0.0"),
        ("4294967295", None, "255.255.255.255"),
        ("4294967296", None, "::1:0:0"),
        (
            str(int.from_bytes(bytes.fromhex("20010db8" + "0" * 23 + "1"))),
            None,
            "2001:db8::1",
        ),
        ("1", 6, "::1"),
        ("0", 4, "0.0.0.0"),
    ],
)
def test_phpipam_decimal_conversion(
    value: str | int, version: int | None, expected: str
) -> None:
    assert decimal_to_ip(value, version=version) == expected


def test_phpipam_decimal_out_of_range() -> None:
    with pytest.raises(InvalidAddress, match="out of range for IPv4"):
        decimal_to_ip("4294967296", version=4)


def test_phpipam_subnets_csv() -> None:
    data = (
        "Section,Subnet,Mask,Description,VLAN,Domain,VRF,Site code\n"
        "Lab,10.10.0.0,16,Lab space,,default,,NYC1\n"
        "Lab,2001:db8::,48,v6 lab,100,default,blue,\n"
        "Lab,10.10.5.0,16,bad,,default,,\n"
    )
    result = parse_phpipam_csv(data)
    first, second = result.of_type(SubnetRecord)
    assert first.cidr == "10.10.0.0/16"
    assert first.tags == {"section": "Lab", "domain": "default", "site_code": "NYC1"}
    assert (second.cidr, second.vlan_id, second.vrf) == ("2001:db8::/48", 100, "blue")
    assert errors_of(result) == [
        (4, "Subnet", "10.10.5.0/16 has host bits set; did you mean 10.10.0.0/16?")
    ]


def test_phpipam_addresses_csv() -> None:
    data = (
        "Section,IP address,Hostname,Description,VRF,Subnet,MAC,Owner,Device,Note,"
        "Tag,Is_Gateway\n"
        "Lab,10.10.0.1,gw1,core gateway,,10.10.0.0/16,00-11-22-33-44-55,neteng,"
        "rtr1,,Used,1\n"
        "Lab,10.11.0.1,x,,,10.10.0.0/16,,,,,Used,0\n"
    )
    result = parse_phpipam_csv(data)
    record = result.of_type(AddressRecord)[0]
    assert (record.address, record.mac, record.status) == (
        "10.10.0.1/32",
        "00:11:22:33:44:55",
        "used",
    )
    assert record.tags == {
        "section": "Lab",
        "description": "core gateway",
        "gateway": "true",
    }
    assert [(e.line, e.field) for e in result.errors] == [(3, "IP address")]


# NetBox


@pytest.fixture(scope="module")
def netbox_dump() -> list[dict[str, Any]]:
    dump: list[dict[str, Any]] = read_json(NETBOX)
    return dump


@pytest.fixture(scope="module")
def netbox(netbox_dump: list[dict[str, Any]]) -> ParseResult:
    return parse_netbox_dump(netbox_dump)


def models(dump: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    return [item for item in dump if item["model"] == model]


@pytest.mark.parametrize(
    ("kind", "model", "count"),
    [
        (SiteRecord, "dcim.site", 24),
        (RackRecord, "dcim.rack", 42),
        (DeviceRecord, "dcim.device", 72),
        (InterfaceRecord, "dcim.interface", 1586),
        (SubnetRecord, "ipam.prefix", 90),
        (VlanRecord, "ipam.vlan", 63),
        (AddressRecord, "ipam.ipaddress", 180),
        (TenantRecord, "tenancy.tenant", 11),
    ],
)
def test_netbox_counts(
    netbox: ParseResult,
    netbox_dump: list[dict[str, Any]],
    kind: type,
    model: str,
    count: int,
) -> None:
    assert len(models(netbox_dump, model)) == count
    assert len(netbox.of_type(kind)) == count


def test_netbox_no_errors(netbox: ParseResult) -> None:
    assert netbox.errors == []


def test_netbox_physical_cables(
    netbox: ParseResult, netbox_dump: list[dict[str, Any]]
) -> None:
    cables = [c for c in netbox.of_type(CableRecord) if c.kind == "cable"]
    assert len(models(netbox_dump, "dcim.cable")) == 108
    assert len(cables) == 108
    ends = Counter(c.a_type for c in cables) + Counter(c.b_type for c in cables)
    expected = Counter(
        item["fields"]["termination_type"][1]
        for item in models(netbox_dump, "dcim.cabletermination")
    )
    assert ends["interface"] == expected["interface"]
    assert ends["circuit_termination"] == expected["circuittermination"]
    assert ends["front_port"] == expected["frontport"]


def test_netbox_unnamed_devices(
    netbox: ParseResult, netbox_dump: list[dict[str, Any]]
) -> None:
    unnamed = {
        item["pk"]
        for item in models(netbox_dump, "dcim.device")
        if not item["fields"]["name"]
    }
    assert len(unnamed) == 22
    devices = netbox.of_type(DeviceRecord)
    generated = [d for d in devices if int(d.source_id) in unnamed]
    assert all(d.name == f"{d.device_type}-{d.source_id}" for d in generated)
    named = {d.name for d in devices if int(d.source_id) not in unnamed}
    assert len({d.name for d in generated}) == 22
    assert not named & {d.name for d in generated}
    # NetBox names are unique per site only: three sites each have a "PP:MDF".
    assert len({(d.site, d.name) for d in devices}) == 72
    again = parse_netbox_dump(json.loads(json.dumps(netbox_dump)))
    assert [d.name for d in again.of_type(DeviceRecord)] == [d.name for d in devices]


def test_netbox_prefixes(
    netbox: ParseResult, netbox_dump: list[dict[str, Any]]
) -> None:
    prefixes = netbox.of_type(SubnetRecord)
    raw = models(netbox_dump, "ipam.prefix")
    assert sum(p.is_container for p in prefixes) == 21
    assert sum(item["fields"]["status"] == "container" for item in raw) == 21
    assert sum(p.vrf != "global" for p in prefixes) == 21
    assert sum(item["fields"]["vrf"] is not None for item in raw) == 21
    vrf_names = {item["fields"]["name"] for item in models(netbox_dump, "ipam.vrf")}
    assert {p.vrf for p in prefixes} - {"global"} <= vrf_names
    with_vlan = sum(item["fields"]["vlan"] is not None for item in raw)
    assert sum(p.vlan_id is not None for p in prefixes) == with_vlan


def test_netbox_tenant_owners(
    netbox: ParseResult, netbox_dump: list[dict[str, Any]]
) -> None:
    slugs = {
        item["pk"]: item["fields"]["slug"]
        for item in models(netbox_dump, "tenancy.tenant")
    }
    first = models(netbox_dump, "ipam.prefix")[0]["fields"]
    prefix = netbox.of_type(SubnetRecord)[0]
    assert prefix.owner == f"tenant:{slugs[first['tenant']]}"
    site_owned = sum(
        item["fields"]["tenant"] is not None
        for item in models(netbox_dump, "dcim.site")
    )
    assert sum(bool(s.owner) for s in netbox.of_type(SiteRecord)) == site_owned


def test_netbox_patch_panel_paths(netbox: ParseResult) -> None:
    paths = [c for c in netbox.of_type(CableRecord) if c.kind == "path"]
    assert len(paths) == 12
    first = paths[0]
    assert (first.a_device, first.a_port) == ("ncsu-coreswitch1", "xe-0/0/0")
    assert (first.b_device, first.b_port) == ("ncsu117-distswitch1", "xe-0/0/0")
    assert [(hop.kind, hop.name, hop.port) for hop in first.through] == [
        ("front_port", "PP:B117", "Port 1"),
        ("rear_port", "PP:B117", "Rear Splice"),
        ("circuit", "350927", "A"),
        ("rear_port", "PP:MDF", "Rear Splice"),
        ("front_port", "PP:MDF", "Port 1"),
    ]
    assert first.source_id == "cables:104,89,90,116"
    assert all(p.a_type == p.b_type == "interface" for p in paths)


def test_netbox_records_json_ready(netbox: ParseResult) -> None:
    text = json.dumps(netbox.to_dict())
    assert '"type": "cable"' in text


def test_data_dir_exists() -> None:
    assert data_dir().is_dir(), f"{data_dir()} is missing; set OMNITWIN_TEST_DATA"


# Real exports of each JSON shape, read under every other source: a NetBox
# dump, an Infoblox page, list of pages and ranges, and a BlueCat context.
WRONG_SOURCE_FILES = {
    NETBOX: "netbox",
    f"{WAPI}/get_all_subnets_page_1.json": "infoblox",
    f"{WAPI}/get_all_ipv4address_networks.json": "infoblox",
    f"{WAPI}/get_all_ranges.json": "infoblox",
    "bluecat/xsoar_bam91_query-ip_10.0.0.10_context.json": "bluecat",
}
WRONG_SOURCES = [
    (name, source)
    for name, detected in WRONG_SOURCE_FILES.items()
    for source in SOURCES
    if source != detected
]


@pytest.mark.parametrize(("name", "source"), WRONG_SOURCES)
def test_wrong_source_names_the_right_one(name: str, source: str) -> None:
    detected = WRONG_SOURCE_FILES[name]
    with pytest.raises(ValidationError, match=f"import it with source '{detected}'"):
        parse_source(source, read_bytes(name))


@pytest.mark.parametrize("name", list(WRONG_SOURCE_FILES))
def test_right_source_reads_its_file(name: str) -> None:
    parsed = parse_source(WRONG_SOURCE_FILES[name], read_bytes(name))
    assert parsed.result.records


def test_json_as_csv_says_json() -> None:
    with pytest.raises(ValidationError, match="the file is JSON, not a CSV"):
        parse_source("csv", b'{"ips": ["10.220.0.1"]}')


def test_phpipam_export_detected() -> None:
    export = {"subnets": [{"id": "7", "subnet": "168427520", "mask": "16"}]}
    with pytest.raises(ValidationError, match="import it with source 'phpipam'"):
        parse_source("infoblox", json.dumps(export).encode())


def test_guess_json_source_needs_most_objects() -> None:
    site = {"model": "dcim.site", "fields": {}}
    other = {"cidr": "10.0.0.0/8"}
    assert guess_json_source([site] * 8 + [other] * 2) is None
    assert guess_json_source([site] * 9 + [other]) == "netbox"


def test_unclosed_quote_names_line() -> None:
    data = (
        b'cidr,purpose\n10.0.0.0/24,ok\n10.0.1.0/24,"open\n'
        + b"10.0.2.0/24,y\n" * 20_000
    )
    with pytest.raises(ValidationError, match="line 3 cannot be read as CSV") as caught:
        parse_source("csv", data)
    assert "quote that is not closed" in str(caught.value)
