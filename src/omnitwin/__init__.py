"""omnitwin: a network digital twin for analysts who work in Jupyter.

Connect to the embedded engine (a DuckDB file or ``:memory:``) and work with
the IPAM hierarchy and its audit trail::

    import omnitwin

    client = omnitwin.connect("local:twin.duckdb")
    block = client.subnets.create("10.128.0.0/16", is_container=True)
    client.subnets.allocate(24, subnet_id=block.id, purpose="payments")
"""

from omnitwin.client import AsyncClient, Client, connect
from omnitwin.errors import (
    AuthenticationError,
    CIDROverlap,
    Conflict,
    Duplicate,
    ImmutableField,
    InvalidAddress,
    InvalidCIDR,
    InvalidTransition,
    NodeNotFound,
    NoFreeSpace,
    NoPath,
    NotFound,
    OmniTwinError,
    PermissionDenied,
    RateLimited,
    StoreLocked,
    StreamError,
    ValidationError,
)
from omnitwin.models import (
    Address,
    AuditEvent,
    AuditVerification,
    FreeBlocks,
    Page,
    Subnet,
    SubnetDetail,
)

__version__ = "0.1.0"


def load_ipython_extension(shell: object) -> None:
    """Register the ``%omnitwin`` magics: ``%load_ext omnitwin``."""
    from omnitwin.notebook.magics import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: object) -> None:
    """Remove the ``%omnitwin`` magics: ``%unload_ext omnitwin``."""
    from omnitwin.notebook.magics import unload_ipython_extension as unload

    unload(shell)


__all__ = [
    "Address",
    "AsyncClient",
    "AuditEvent",
    "AuditVerification",
    "AuthenticationError",
    "CIDROverlap",
    "Client",
    "Conflict",
    "Duplicate",
    "FreeBlocks",
    "ImmutableField",
    "InvalidAddress",
    "InvalidCIDR",
    "InvalidTransition",
    "NoFreeSpace",
    "NoPath",
    "NodeNotFound",
    "NotFound",
    "OmniTwinError",
    "Page",
    "PermissionDenied",
    "RateLimited",
    "StoreLocked",
    "StreamError",
    "Subnet",
    "SubnetDetail",
    "ValidationError",
    "__version__",
    "connect",
]
