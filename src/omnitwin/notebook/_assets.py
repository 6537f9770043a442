"""Locate the front-end assets: style sheet, layouts, vendored JavaScript.

A wheel carries them in ``omnitwin/notebook/_assets``; a source checkout
keeps them in the repository's ``widgets/`` and ``notebooks/`` folders.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["asset_path", "cytoscape_style", "layout_options", "role_colours"]

_PACKAGED = Path(__file__).with_name("_assets")
_CHECKOUT = Path(__file__).resolve().parents[3]


def asset_path(name: str) -> Path:
    """Return the path of an asset such as ``cytoscape-style.json``.

    Raises
    ------
    FileNotFoundError
        If neither the installed package nor the source checkout has it.
    """
    candidates = [
        _PACKAGED / name,
        _CHECKOUT / "widgets" / name,
        _CHECKOUT / "notebooks" / name,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ", ".join(str(c.parent) for c in candidates)
    raise FileNotFoundError(
        f"omnitwin asset {name!r} not found in {searched}; reinstall omnitwin"
    )


@functools.cache
def _load_json(name: str) -> Any:
    return json.loads(asset_path(name).read_text(encoding="utf-8"))


def cytoscape_style() -> list[dict[str, Any]]:
    """Return the cytoscape style sheet (a fresh copy)."""
    style: list[dict[str, Any]] = json.loads(
        json.dumps(_load_json("cytoscape-style.json"))
    )
    return style


def layout_options(elements: int) -> dict[str, Any]:
    """Return the layout options for a graph of ``elements`` nodes and edges."""
    layouts = _load_json("layout.json")
    key = "large" if elements > layouts["large_threshold"] else "default"
    options: dict[str, Any] = dict(layouts[key])
    return options


def role_colours() -> dict[str, str]:
    """Return ``{role: colour}`` from the style sheet's ``node[role = "..."]`` rules."""
    colours = {}
    for rule in _load_json("cytoscape-style.json"):
        selector = rule["selector"]
        if selector.startswith('node[role = "'):
            role = selector.split('"')[1]
            colours[role] = rule["style"]["background-color"]
    return colours
