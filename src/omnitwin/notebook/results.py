"""Result objects returned by the ``%omnitwin`` magics.

Each result renders in a notebook (``_repr_html_``), can be assigned
(``df = %omnitwin devices``) and converts with ``to_pandas()``. Graph
results also convert with ``to_networkx()`` and open as a topology widget
with ``widget()``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from omnitwin.models import BlastRadiusResult, TopologyGraph, TopologyPath
from omnitwin.notebook._assets import role_colours
from omnitwin.notebook.loaders import require, to_networkx, to_pandas

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd

    from omnitwin.notebook.widgets import TopologyWidget

__all__ = [
    "GraphResult",
    "TableResult",
    "ValueResult",
    "blast_radius_result",
    "path_result",
]

_MAX_HTML_ROWS = 30
_SVG_SIZE = 560
_SVG_MAX_NODES = 400


class TableResult:
    """Records of one kind, shown as a table.

    Parameters
    ----------
    records : sequence
        omnitwin records (``Subnet``, ``Device`` ...) or mappings.
    kind : str, optional
        The record schema for :func:`~omnitwin.notebook.loaders.to_pandas`.
    title : str
        A caption shown above the table.
    total : int, optional
        How many records matched in all, when ``records`` is only part.

    Examples
    --------
    >>> from omnitwin.models import Subnet
    >>> result = TableResult([Subnet("sn_1", "10.0.0.0/24")], title="subnets")
    >>> result.to_pandas()["cidr"].tolist()
    ['10.0.0.0/24']
    """

    def __init__(
        self,
        records: Sequence[Any],
        *,
        kind: str | None = None,
        title: str = "",
        total: int | None = None,
    ) -> None:
        self.records = list(records)
        self.kind = kind
        self.title = title
        self.total = len(self.records) if total is None else total

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.records)

    def __repr__(self) -> str:
        return f"<TableResult {self.title!r}: {len(self.records)} rows>"

    def to_pandas(self) -> pd.DataFrame:
        """Return the records as a DataFrame with explicit dtypes."""
        return to_pandas(self.records, kind=self.kind)

    def _repr_html_(self) -> str:
        frame = self.to_pandas()
        row_count = f"{len(self.records)} rows"
        if self.total > len(self.records):
            row_count += f" of {self.total}"
        caption = _caption(self.title, row_count)
        if frame.empty:
            return caption + "<p><em>No rows.</em></p>"
        table = _table_html(_display_frame(frame))
        return caption + table

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Terminal IPython shows this text; notebooks show the HTML table.
        row_count = f"{len(self.records)} rows"
        if self.total > len(self.records):
            row_count += f" of {self.total}"
        frame = self.to_pandas()
        body = "No rows." if frame.empty else _table_text(_display_frame(frame))
        printer.text(f"{self.title} ({row_count})\n{body}")


class ValueResult:
    """A single record or mapping, shown as a two-column table."""

    def __init__(self, value: Any, *, title: str = "") -> None:
        self.value = value
        self.title = title

    def __repr__(self) -> str:
        return f"<ValueResult {self.title!r}>"

    def to_dict(self) -> dict[str, Any]:
        """Return the value as plain JSON-compatible data."""
        if hasattr(self.value, "to_dict"):
            data: dict[str, Any] = self.value.to_dict()
            return data
        return dict(self.value)

    def to_pandas(self) -> pd.DataFrame:
        """Return a one-row DataFrame."""
        return to_pandas([self.value])

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>"
            for k, v in self.to_dict().items()
        )
        return _caption(self.title, "") + f"<table>{rows}</table>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        lines = [self.title] if self.title else []
        for key, value in self.to_dict().items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            lines.append(f"{key}: {text}")
        printer.text("\n".join(lines))


class GraphResult:
    """A topology graph with highlighted nodes and edges, plus a table.

    ``highlight_nodes`` and ``highlight_edges`` (link ids) mark a path or a
    blast radius; ``target`` marks the failed device. ``records`` holds the
    rows of the table (path hops or affected devices).
    """

    def __init__(
        self,
        graph: TopologyGraph,
        *,
        title: str = "",
        highlight_nodes: Iterable[str] = (),
        highlight_edges: Iterable[str] = (),
        target: str | None = None,
        records: Sequence[Any] = (),
        summary: str = "",
        value: Any = None,
    ) -> None:
        self.graph = graph
        self.title = title
        self.highlight_nodes = list(highlight_nodes)
        self.highlight_edges = list(highlight_edges)
        self.target = target
        self.records = list(records)
        self.summary = summary
        self.value = value

    def __repr__(self) -> str:
        return (
            f"<GraphResult {self.title!r}: {len(self.graph.nodes)} nodes, "
            f"{len(self.graph.edges)} edges>"
        )

    def to_networkx(self) -> nx.MultiGraph[str]:
        """Return the graph; highlighted nodes and edges carry ``highlight=True``."""
        graph = to_networkx(self.graph)
        for node in self.highlight_nodes:
            if node in graph:
                graph.nodes[node]["highlight"] = True
        marked_edges = set(self.highlight_edges)
        for _, _, key, data in graph.edges(keys=True, data=True):
            if key in marked_edges:
                data["highlight"] = True
        return graph

    def to_pandas(self) -> pd.DataFrame:
        """Return the table rows (path hops or affected devices)."""
        return to_pandas(self.records)

    def widget(self, **options: Any) -> TopologyWidget:
        """Return an interactive topology widget of this graph."""
        from omnitwin.notebook.widgets import TopologyWidget

        return TopologyWidget(
            self.graph,
            highlight_nodes=self.highlight_nodes,
            highlight_edges=self.highlight_edges,
            target=self.target,
            **options,
        )

    def _repr_html_(self) -> str:
        parts = [_caption(self.title, self.summary), graph_svg(self)]
        if self.records:
            parts.append(_table_html(_display_frame(self.to_pandas())))
        return "".join(parts)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        nodes, edges = len(self.graph.nodes), len(self.graph.edges)
        lines = [f"{self.title} ({nodes} nodes, {edges} edges)"]
        if self.summary:
            lines.append(self.summary)
        if self.records:
            lines.append(_table_text(_display_frame(self.to_pandas())))
        lines.append("Call .widget() in a notebook, or .to_networkx(), for the graph.")
        printer.text("\n".join(lines))


def path_result(client: Any, found: TopologyPath, *, max_elements: int) -> GraphResult:
    """Show a path on the topology around it, hops as the table.

    The view is centred on the source with a depth of the hop count, so it
    holds the whole path; a path of more than 5 hops (the maximum depth)
    shows the whole topology, pruned to ``max_elements``.
    """
    hops = len(found.hops)
    scope, depth = (found.source, max(1, hops)) if hops <= 5 else (None, 2)
    graph = client.topology.graph(
        scope=scope, depth=depth, annotate_drift=True, max_elements=max_elements
    )
    summary = f"{hops} hops, cost {found.cost:g}: {' → '.join(found.hostnames)}"
    first, last = found.hostnames[0], found.hostnames[-1]
    return GraphResult(
        graph,
        title=f"path {first} → {last}",
        highlight_nodes=found.nodes,
        highlight_edges=[hop.link_id for hop in found.hops],
        records=found.hops,
        summary=summary,
        value=found,
    )


def blast_radius_result(
    client: Any, radius: BlastRadiusResult, *, depth: int = 2, max_elements: int
) -> GraphResult:
    """Show a blast radius on the topology around its target.

    The affected devices are the table; they are highlighted in the graph,
    and the summary counts the affected subnets and links.
    """
    graph = client.topology.graph(
        scope=radius.target,
        depth=depth,
        annotate_drift=True,
        max_elements=max_elements,
    )
    rows = [
        {"device_id": device, "hostname": hostname}
        for device, hostname in zip(radius.devices, radius.hostnames, strict=False)
    ]
    summary = (
        f"{len(radius.devices)} devices, {len(radius.subnets)} subnets "
        f"({', '.join(radius.subnet_cidrs) or 'none'}), {len(radius.links)} links"
    )
    name = radius.target
    if radius.target in radius.devices:
        name = radius.hostnames[radius.devices.index(radius.target)]
    return GraphResult(
        graph,
        title=f"blast radius of {name}",
        highlight_nodes=radius.devices,
        highlight_edges=radius.links,
        target=radius.target,
        records=rows,
        summary=summary,
        value=radius,
    )


# --- HTML helpers ----------------------------------------------------------------


def _caption(title: str, detail: str) -> str:
    text = f"<strong>{html.escape(title)}</strong>"
    if detail:
        text += f" <span style='color:#607d8b'>{html.escape(detail)}</span>"
    return f"<div class='omnitwin-caption'>{text}</div>"


def _display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop bulky nested columns so that the table stays readable."""
    bulky = [c for c in ("twin_state", "detected_state", "changes") if c in frame]
    return frame.drop(columns=bulky)


def _table_text(frame: pd.DataFrame) -> str:
    """Return the frame as plain text, at most as many rows as the HTML table."""
    head = frame.head(_MAX_HTML_ROWS)
    text: str = head.to_string(index=False, na_rep="", max_colwidth=40)
    if len(frame) > len(head):
        text += f"\n... {len(frame) - len(head)} more rows; use .to_pandas()"
    return text


def _table_html(frame: pd.DataFrame) -> str:
    table: str = frame.to_html(
        max_rows=_MAX_HTML_ROWS, index=False, na_rep="", border=0, escape=True
    )
    return table


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = "" if value is None else str(value)
    return html.escape(text)


def graph_svg(result: GraphResult) -> str:
    """Draw the graph as a static SVG, so that it shows without JavaScript."""
    nx = require("networkx")
    graph = result.graph.to_networkx()
    if graph.number_of_nodes() == 0:
        return "<p><em>Empty graph.</em></p>"
    if graph.number_of_nodes() > _SVG_MAX_NODES:
        return (
            f"<p><em>{graph.number_of_nodes()} nodes are too many to draw here; "
            "use .widget() for an interactive view.</em></p>"
        )
    positions = nx.spring_layout(nx.Graph(graph), seed=7)
    scale = _fit(positions.values())
    marked = set(result.highlight_nodes)
    edges_marked = set(result.highlight_edges)
    colours = role_colours()
    lines = []
    for u, v, key, data in graph.edges(keys=True, data=True):
        (x1, y1), (x2, y2) = scale(positions[u]), scale(positions[v])
        colour = "#f57f17" if key in edges_marked else "#b0bec5"
        width = 3 if key in edges_marked else 1
        dash = " stroke-dasharray='3,3'" if data.get("kind") == "detected" else ""
        lines.append(
            f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' "
            f"stroke='{colour}' stroke-width='{width}'{dash}/>"
        )
    for node, data in graph.nodes(data=True):
        x, y = scale(positions[node])
        fill = colours.get(str(data.get("role")), "#cfd8dc")
        if node in marked:
            fill = "#fbc02d"
        if node == result.target:
            fill = "#d32f2f"
        stroke = "#d32f2f" if data.get("open_drift") else "#ffffff"
        label = html.escape(str(data.get("label", node)))
        lines.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='6' fill='{fill}' "
            f"stroke='{stroke}' stroke-width='2'><title>{label}</title></circle>"
        )
        if node in marked or graph.number_of_nodes() <= 40:
            lines.append(
                f"<text x='{x + 8:.1f}' y='{y + 3:.1f}' font-size='9' "
                f"fill='#37474f'>{label}</text>"
            )
    size = _SVG_SIZE
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' "
        f"viewBox='0 0 {size} {size}' class='omnitwin-graph'>{''.join(lines)}</svg>"
    )


def _fit(points: Iterable[Any]) -> Any:
    coords = [(float(p[0]), float(p[1])) for p in points]
    low_x = min(x for x, _ in coords)
    low_y = min(y for _, y in coords)
    span = max(
        max(x for x, _ in coords) - low_x, max(y for _, y in coords) - low_y, 1e-9
    )
    margin = 40

    def scale(point: Any) -> tuple[float, float]:
        usable = _SVG_SIZE - 2 * margin
        x = margin + (float(point[0]) - low_x) / span * usable
        y = margin + (float(point[1]) - low_y) / span * usable
        return (x if math.isfinite(x) else margin, y if math.isfinite(y) else margin)

    return scale
