"""Notebook tools: DataFrame loaders, ``%omnitwin`` magics, widgets and reports.

Load the IPython extension with ``%load_ext omnitwin``; the loaders, result
objects and widgets work without it. Everything here goes through the public
client, so it works on the embedded engine and on a remote server alike.
The loaders are imported on first use, so that ``omnitwin report`` and the
command line start without importing pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "load_sample_twin",
    "read_audit_events",
    "read_devices",
    "read_drift_events",
    "read_sessions",
    "read_subnets",
    "read_topology",
    "to_networkx",
    "to_pandas",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("omnitwin.notebook.loaders"), name)
    raise AttributeError(f"module 'omnitwin.notebook' has no attribute {name!r}")
