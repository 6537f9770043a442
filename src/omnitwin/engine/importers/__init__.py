"""Pure parsers that turn import sources into typed records.

Each parser takes the file content (bytes or text for CSV, decoded JSON for
JSON) and returns a :class:`ParseResult`. A bad row becomes a
:class:`RowError` with its line number and never stops the rest of the file;
only a file-level problem, such as a repeated header name, raises
:class:`omnitwin.errors.ValidationError`.
"""

from omnitwin.engine.importers.bluecat import parse_bluecat_csv, parse_bluecat_json
from omnitwin.engine.importers.csvutil import CsvRow, CsvTable, read_table
from omnitwin.engine.importers.generic_csv import parse_generic_csv
from omnitwin.engine.importers.infoblox import parse_infoblox_csv, parse_infoblox_wapi
from omnitwin.engine.importers.netbox import parse_netbox_dump
from omnitwin.engine.importers.phpipam import (
    decimal_to_ip,
    parse_phpipam_api,
    parse_phpipam_csv,
)
from omnitwin.engine.importers.records import (
    AddressRecord,
    CableHop,
    CableRecord,
    DeviceRecord,
    InterfaceRecord,
    ParseResult,
    PortRecord,
    RackRecord,
    RangeRecord,
    Record,
    RowError,
    SiteRecord,
    SkippedRow,
    SubnetRecord,
    TenantRecord,
    VlanRecord,
    VrfRecord,
)

__all__ = [
    "AddressRecord",
    "CableHop",
    "CableRecord",
    "CsvRow",
    "CsvTable",
    "DeviceRecord",
    "InterfaceRecord",
    "ParseResult",
    "PortRecord",
    "RackRecord",
    "RangeRecord",
    "Record",
    "RowError",
    "SiteRecord",
    "SkippedRow",
    "SubnetRecord",
    "TenantRecord",
    "VlanRecord",
    "VrfRecord",
    "decimal_to_ip",
    "parse_bluecat_csv",
    "parse_bluecat_json",
    "parse_generic_csv",
    "parse_infoblox_csv",
    "parse_infoblox_wapi",
    "parse_netbox_dump",
    "parse_phpipam_api",
    "parse_phpipam_csv",
    "read_table",
]
