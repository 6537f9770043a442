"""Import optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require"]


def require(module: str) -> Any:
    """Import an optional dependency or raise an error naming the extra.

    Examples
    --------
    >>> require("pandas").__name__
    'pandas'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = (
            f"{module} is not installed; the notebook features need it: "
            "pip install 'omnitwin[notebook]'"
        )
        raise ImportError(message) from exc
