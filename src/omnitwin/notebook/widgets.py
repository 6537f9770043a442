"""An interactive topology view: a cytoscape.js graph inside an ipywidgets box.

The graph comes from ``client.topology.graph`` with ``max_elements``, so
pruning happens on the engine or server side and only the kept part crosses
the wire. The summary line states what was pruned. Nodes are styled by role and
by open drift (style sheet ``cytoscape-style.json``), a path or a blast
radius can be highlighted, and clicking a node shows its data in a panel.

The graph is one anywidget model, :class:`CytoscapeGraph`, that carries every
node and edge in one JSON trait. Its front end (``widgets/topology.js``)
paints them with the vendored cytoscape.js, so showing a graph costs one
comm message whatever its size, and no JupyterLab build step is needed.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import anywidget
import ipywidgets as widgets  # type: ignore[import-untyped]
import traitlets

from omnitwin.models import TopologyGraph
from omnitwin.notebook._assets import asset_path, cytoscape_style, layout_options

__all__ = [
    "DEFAULT_MAX_ELEMENTS",
    "CytoscapeGraph",
    "TopologyWidget",
    "report_errors",
    "topology_widget",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ELEMENTS = 500
_F = TypeVar("_F", bound=Callable[..., Any])


def report_errors(panel_attribute: str) -> Callable[[_F], _F]:
    """Wrap a widget callback so that an exception shows in a panel.

    ipywidgets runs callbacks from comm messages, where an uncaught exception
    only reaches the kernel log. The wrapper writes the traceback into the
    ``HTML`` widget stored in ``panel_attribute`` and logs it.
    """

    def decorate(callback: _F) -> _F:
        @functools.wraps(callback)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return callback(self, *args, **kwargs)
            except Exception as exc:
                logger.exception("widget callback %s failed", callback.__name__)
                text = html.escape("".join(traceback.format_exception(exc)))
                panel = getattr(self, panel_attribute)
                panel.value = (
                    f"<pre class='omnitwin-error' style='color:#b71c1c'>{text}</pre>"
                )
                return None

        return wrapper  # type: ignore[return-value]

    return decorate


@functools.cache
def _asset_text(name: str) -> str:
    return asset_path(name).read_text(encoding="utf-8")


class CytoscapeGraph(anywidget.AnyWidget):
    """A cytoscape.js graph whose nodes and edges travel in one trait.

    Parameters
    ----------
    elements : dict
        Cytoscape elements ``{"nodes": [...], "edges": [...]}``, each element
        ``{"data": {...}, "classes": "..."}``.
    cytoscape_style : list of dict
        The cytoscape.js style sheet.
    cytoscape_layout : dict
        The cytoscape.js layout options, run when the graph is painted and
        again when ``elements`` or ``cytoscape_layout`` change.
    height : str
        CSS height of the graph area.
    """

    _esm = traitlets.Unicode().tag(sync=True)
    # The source of cytoscape.js (about 440 kB) travels with each model, so
    # that one front end works in JupyterLab and in the offline HTML report,
    # where no server can provide the file.
    _cytoscape_esm = traitlets.Unicode().tag(sync=True)
    elements = traitlets.Dict().tag(sync=True)
    cytoscape_style: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    cytoscape_layout = traitlets.Dict().tag(sync=True)
    height = traitlets.Unicode("480px").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            _esm=_asset_text("topology.js"),
            _cytoscape_esm=_asset_text("vendor/cytoscape.esm.min.mjs"),
            **kwargs,
        )
        self._node_click = widgets.CallbackDispatcher()
        self.on_msg(self._handle_message)

    def on_node_click(
        self, callback: Callable[[dict[str, Any]], Any], remove: bool = False
    ) -> None:
        """Register ``callback(node)`` for clicks on a node.

        ``node`` is ``{"data": {...}}`` with the node's cytoscape data.
        """
        self._node_click.register_callback(callback, remove=remove)

    def _handle_message(
        self, _widget: Any, content: Mapping[str, Any], _buffers: Any
    ) -> None:
        if content.get("event") == "click" and content.get("widget") == "node":
            self._node_click(content["data"])


class TopologyWidget(widgets.VBox):  # type: ignore[misc]
    """A topology graph with a summary line and a node inspection panel.

    Parameters
    ----------
    graph : TopologyGraph
        The graph to show, as returned by ``client.topology.graph``.
    highlight_nodes, highlight_edges : iterable of str
        Node ids and link ids to highlight (a path or a blast radius).
    target : str, optional
        The node whose failure a blast radius describes.
    height : str
        CSS height of the graph area.

    Examples
    --------
    >>> from omnitwin.models import TopologyGraph
    >>> graph = TopologyGraph([{"id": "a", "kind": "device", "label": "a"}])
    >>> TopologyWidget(graph).node_count
    1
    """

    def __init__(
        self,
        graph: TopologyGraph,
        *,
        highlight_nodes: Iterable[str] = (),
        highlight_edges: Iterable[str] = (),
        target: str | None = None,
        height: str = "480px",
    ) -> None:
        self.topology = graph
        self.highlight_nodes = set(highlight_nodes)
        self.highlight_edges = set(highlight_edges)
        self.target = target
        self.summary = widgets.HTML(self._summary_html())
        self.inspector = widgets.HTML(
            "<em>Click a node to inspect it.</em>",
            layout=widgets.Layout(min_height="60px"),
        )
        self.cytoscape = CytoscapeGraph(
            elements=self.elements(),
            cytoscape_style=cytoscape_style(),
            cytoscape_layout=layout_options(self.node_count + self.edge_count),
            height=height,
        )
        self.cytoscape.on_node_click(self._on_node_click)
        super().__init__([self.summary, self.cytoscape, self.inspector])
        self.add_class("omnitwin-topology")

    def __repr__(self) -> str:
        return f"<TopologyWidget {self.node_count} nodes, {self.edge_count} edges>"

    @property
    def node_count(self) -> int:
        """Number of nodes shown."""
        return len(self.topology.nodes)

    @property
    def edge_count(self) -> int:
        """Number of edges shown."""
        return len(self.topology.edges)

    def inspect(self, node_id: str) -> None:
        """Show one node's data in the inspection panel, as a click does."""
        node = self._nodes_by_id().get(node_id)
        if node is None:
            raise KeyError(f"node {node_id!r} is not in this view")
        self._on_node_click({"data": node})

    # --- building ------------------------------------------------------------

    def elements(self) -> dict[str, list[dict[str, Any]]]:
        """Return the cytoscape elements ``{"nodes": [...], "edges": [...]}``."""
        nodes = [self._node_element(node) for node in self.topology.nodes]
        edges = [self._edge_element(edge) for edge in self.topology.edges]
        return {"nodes": nodes, "edges": edges}

    def _node_element(self, node: Mapping[str, Any]) -> dict[str, Any]:
        data = {k: _json_safe(v) for k, v in node.items()}
        data.setdefault("label", node["id"])
        classes = [str(node.get("kind", "node"))]
        if node.get("open_drift"):
            classes.append("drift")
        if node["id"] in self.highlight_nodes:
            classes.append("highlight")
        if node["id"] == self.target:
            classes.append("target")
        return {"data": data, "classes": " ".join(classes)}

    def _edge_element(self, edge: Mapping[str, Any]) -> dict[str, Any]:
        data = {k: _json_safe(v) for k, v in edge.items()}
        data["link"] = edge.get("key")
        data["id"] = f"{edge['source']}|{edge['target']}|{edge.get('key')}"
        classes = [str(edge.get("relation", "edge"))]
        if edge.get("key") in self.highlight_edges:
            classes.append("highlight")
        return {"data": data, "classes": " ".join(classes)}

    def _summary_html(self) -> str:
        meta = self.topology.meta
        text = f"{self.node_count} nodes, {self.edge_count} edges"
        if meta.get("scope"):
            scope = (
                self._nodes_by_id().get(meta["scope"], {}).get("label", meta["scope"])
            )
            text += f" within {meta.get('depth')} hops of {scope}"
        pruned_nodes = int(meta.get("pruned_nodes") or 0)
        pruned_edges = int(meta.get("pruned_edges") or 0)
        if pruned_nodes or pruned_edges:
            text += (
                f"; pruned by the server to fit: {pruned_nodes} nodes and "
                f"{pruned_edges} edges left out (raise max_elements to see more)"
            )
        in_view = {node["id"] for node in self.topology.nodes}
        missing = len(self.highlight_nodes - in_view)
        if missing:
            text += f"; {missing} highlighted nodes are outside this view"
        drifting = sum(1 for node in self.topology.nodes if node.get("open_drift"))
        if drifting:
            text += f"; {drifting} devices with open drift (red border)"
        return f"<div class='omnitwin-summary'>{html.escape(text)}</div>"

    def _nodes_by_id(self) -> dict[str, dict[str, Any]]:
        return {node["id"]: node for node in self.topology.nodes}

    # --- callbacks ---------------------------------------------------------------

    @report_errors("inspector")
    def _on_node_click(self, node: Mapping[str, Any]) -> None:
        data = dict(node["data"])
        title = html.escape(str(data.get("label") or data["id"]))
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(key))}</th>"
            f"<td>{html.escape(_text(value))}</td></tr>"
            for key, value in sorted(data.items())
            if key not in ("label",)
        )
        self.inspector.value = f"<strong>{title}</strong><table>{rows}</table>"


def topology_widget(
    client: Any,
    *,
    scope: str | None = None,
    depth: int = 2,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
    path: tuple[str, str] | None = None,
    blast_radius: str | None = None,
    roots: list[str] | None = None,
    height: str = "480px",
) -> TopologyWidget:
    """Build a topology widget through ``client``.

    Parameters
    ----------
    client : omnitwin.Client
        Where to read the graph.
    scope : str, optional
        Device, site, subnet or address at the centre; None for everything.
    depth : int
        Hops around ``scope``, 1 to 5.
    max_elements : int
        Upper bound on nodes plus edges; the server prunes the farthest nodes.
    path : (str, str), optional
        Highlight the cheapest path between these two devices; the view is
        centred on the first one.
    blast_radius : str, optional
        Highlight what a failure of this device or link cuts off.
    roots : list of str, optional
        Devices that stand for the outside world in the blast radius.

    Examples
    --------
    >>> import omnitwin
    >>> from omnitwin.notebook import load_sample_twin
    >>> client = omnitwin.connect(":memory:")
    >>> _ = load_sample_twin(client, sites=1)
    >>> topology_widget(client, blast_radius="leaf-01.nyc1").target.startswith("dv_")
    True
    """
    nodes: list[str] = []
    edges: list[str] = []
    target = None
    if path is not None:
        found = client.topology.path(*path)
        nodes, edges = list(found.nodes), [hop.link_id for hop in found.hops]
        scope = scope or found.source
        if len(found.hops) > 5:
            scope = None
        else:
            depth = max(depth, len(found.hops), 1)
    elif blast_radius is not None:
        radius = client.topology.blast_radius(blast_radius, roots=roots)
        nodes, edges, target = list(radius.devices), list(radius.links), radius.target
        scope = scope or _failure_scope(client, radius)
    graph = client.topology.graph(
        scope=scope, depth=depth, annotate_drift=True, max_elements=max_elements
    )
    return TopologyWidget(
        graph,
        highlight_nodes=nodes,
        highlight_edges=edges,
        target=target,
        height=height,
    )


def _failure_scope(client: Any, radius: Any) -> str:
    """Return the failed device, or the first end of the failed link.

    The graph is scoped by a node, and a link id is not one.
    """
    if radius.target_kind != "link":
        return str(radius.target)
    for link in client.topology.links():
        if link.id == radius.target:
            return str(link.a)
    return str(radius.target)


def _json_safe(value: Any) -> Any:
    """Return ``value`` if it survives strict JSON, else its text.

    NaN and infinity become None, because the browser's JSON parser rejects
    them and with them the whole widget state.
    """
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        if isinstance(value, float):
            return None
        return str(value)
    except TypeError:
        return str(value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else str(value)
