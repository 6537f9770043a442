"""A live view of one agent command: its events in one notebook display.

:class:`AgentRun` shows itself once with ``display(..., display_id=True)``
and then updates that same display as events arrive: status lines, tool
calls, data chunks, then the final result as a table or a graph, or the
error. Refreshes are limited to one per ``update_interval`` seconds, except
that the first event and the last one always refresh.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from omnitwin.models import (
    BlastRadiusResult,
    StreamEvent,
    TopologyGraph,
    TopologyPath,
)
from omnitwin.notebook.loaders import require
from omnitwin.notebook.results import (
    GraphResult,
    TableResult,
    ValueResult,
    blast_radius_result,
    path_result,
)

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd

__all__ = ["AgentRun", "result_from_body"]

_TITLE = "agent result"


def result_from_body(
    body: Any, *, client: Any = None, max_elements: int = 500
) -> TableResult | GraphResult | ValueResult:
    """Turn the body of a ``final_result`` event into a result object.

    The agent's body is ``{"tool", "summary", "result"}``. A path or a blast
    radius becomes a graph when ``client`` is given, because drawing it needs
    the topology around it. A result with ``nodes`` and ``edges`` becomes a
    graph. Otherwise the first list in the result (``events``, ``data``,
    ``blocks`` ...) becomes a table, and anything else is shown as a value.

    Examples
    --------
    >>> body = {"summary": "2 free", "result": {"blocks": ["10.0.0.0/24"]}}
    >>> result_from_body(body).to_pandas()["blocks"].tolist()
    ['10.0.0.0/24']
    """
    title = _TITLE
    payload = body
    if isinstance(body, Mapping) and "result" in body:
        title = str(body.get("summary") or _TITLE)
        payload = body["result"]
    if isinstance(payload, Mapping):
        graph = _graph_result(payload, client, max_elements)
        if graph is not None:
            graph.title = title
            return graph
        rows = _first_rows(payload)
        if rows is not None:
            return _table(rows[1], title, rows[0], payload)
        return ValueResult(dict(payload), title=title)
    if isinstance(payload, list):
        return _table(payload, title, "value", {})
    return ValueResult({"result": payload}, title=title)


def _graph_result(
    payload: Mapping[str, Any], client: Any, max_elements: int
) -> GraphResult | None:
    if "nodes" in payload and "edges" in payload:
        graph = TopologyGraph.from_dict(dict(payload))
        return GraphResult(graph, summary=f"{len(graph.nodes)} nodes")
    if client is None:
        return None
    if "target_kind" in payload and "devices" in payload:
        radius = BlastRadiusResult.from_dict(dict(payload))
        return blast_radius_result(client, radius, max_elements=max_elements)
    if "hops" in payload and "cost" in payload:
        path = TopologyPath.from_dict(dict(payload))
        return path_result(client, path, max_elements=max_elements)
    return None


def _first_rows(payload: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
    for key, value in payload.items():
        if isinstance(value, list) and value:
            return key, value
    return None


def _table(
    rows: list[Any], title: str, column: str, payload: Mapping[str, Any]
) -> TableResult:
    records = [row if isinstance(row, Mapping) else {column: row} for row in rows]
    total = payload.get("total")
    return TableResult(
        records, title=title, total=total if isinstance(total, int) else None
    )


def _as_event(event: Any) -> StreamEvent:
    if isinstance(event, StreamEvent):
        return event
    if isinstance(event, Mapping):
        return StreamEvent.from_dict(dict(event))
    raise TypeError(f"expected a StreamEvent, got {type(event).__name__}")


def _describe(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, Mapping):
        for key in ("message", "status", "text", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return json.dumps(body, sort_keys=True, default=str)


def _describe_error(body: Any) -> str:
    text = _describe(body)
    suggestions = body.get("suggestions") if isinstance(body, Mapping) else None
    if isinstance(suggestions, list) and suggestions:
        text += "; suggestions: " + "; ".join(str(s) for s in suggestions)
    return text


def _describe_tool_call(body: Any) -> str:
    if not isinstance(body, Mapping):
        return _describe(body)
    name = body.get("fn") or body.get("tool") or body.get("name") or "tool"
    args = body.get("args") or body.get("arguments") or {}
    text = f"{name}({json.dumps(args, sort_keys=True, default=str)})"
    latency = body.get("latency_ms")
    if isinstance(latency, int | float):
        text += f" in {latency:.0f} ms"
    return text


class AgentRun:
    """The events of one agent command and the result they end with.

    Attributes
    ----------
    events : list of StreamEvent
        Every event received, in order.
    statuses, tool_calls : list of str
        One line per ``agent_status`` and ``agent_tool_call`` event.
    chunks : list
        The bodies of ``data_chunk`` events.
    result : TableResult, GraphResult or ValueResult, or None
        The final result, once it has arrived.
    error : str or None
        The error message of a failed command.
    """

    def __init__(
        self,
        command: str,
        *,
        update_interval: float = 0.1,
        client: Any = None,
        max_elements: int = 500,
    ) -> None:
        self.command = command
        self.client = client
        self.max_elements = max_elements
        self.update_interval = update_interval
        self.events: list[StreamEvent] = []
        self.statuses: list[str] = []
        self.tool_calls: list[str] = []
        self.chunks: list[Any] = []
        self.result: TableResult | GraphResult | ValueResult | None = None
        self.error: str | None = None
        self.session: str | None = None
        self.finished = False
        self._handle: Any = None
        self._refreshed_at = 0.0

    def __repr__(self) -> str:
        state = "running"
        if self.finished:
            state = "failed" if self.error else "done"
        return f"<AgentRun {self.command!r}: {len(self.events)} events, {state}>"

    def show(self) -> None:
        """Display the run; later updates replace this display in place."""
        display = require("IPython.display").display
        self._handle = display(self, display_id=True)

    def add(self, event: Any) -> None:
        """Record one event."""
        event = _as_event(event)
        self.events.append(event)
        self.session = self.session or event.session
        if event.type == "agent_status":
            self.statuses.append(_describe(event.body))
        elif event.type == "agent_tool_call":
            self.tool_calls.append(_describe_tool_call(event.body))
        elif event.type == "data_chunk":
            self.chunks.append(event.body)
        elif event.type == "final_result":
            self.result = result_from_body(
                event.body, client=self.client, max_elements=self.max_elements
            )
            self.finished = True
        elif event.type == "error":
            self.error = _describe_error(event.body)
            self.finished = True

    def consume(self, events: Iterable[Any]) -> None:
        """Record events as they arrive, refreshing the display."""
        try:
            for event in events:
                self.add(event)
                first = len(self.events) == 1
                self.refresh(force=first or self.finished)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.finished = True
            self.refresh(force=True)
            raise
        if not self.finished:
            self.error = "the stream ended without a final result or an error"
            self.finished = True
        self.refresh(force=True)

    def refresh(self, *, force: bool = False) -> None:
        """Update the display, at most once per ``update_interval`` unless forced."""
        if self._handle is None:
            return
        now = time.monotonic()
        if force or now - self._refreshed_at >= self.update_interval:
            self._handle.update(self)
            self._refreshed_at = now

    def to_pandas(self) -> pd.DataFrame:
        """Return the final result as a DataFrame."""
        return self._require_result().to_pandas()

    def to_networkx(self) -> nx.MultiGraph[str]:
        """Return the final result as a graph, if it is one."""
        result = self._require_result()
        if not isinstance(result, GraphResult):
            raise TypeError("the agent's result is a table, not a graph; use to_pandas")
        return result.to_networkx()

    def _require_result(self) -> TableResult | GraphResult | ValueResult:
        if self.result is None:
            reason = self.error or "the command has not finished"
            raise ValueError(f"no agent result: {reason}")
        return self.result

    def _repr_html_(self) -> str:
        parts = [
            "<div class='omnitwin-agent'>",
            f"<div><code>{html.escape(self.command)}</code></div>",
        ]
        parts += [
            f"<div class='omnitwin-status'>● {html.escape(line)}</div>"
            for line in self.statuses
        ]
        parts += [
            f"<div class='omnitwin-tool-call'>→ {html.escape(line)}</div>"
            for line in self.tool_calls
        ]
        if self.chunks:
            parts.append(
                f"<div class='omnitwin-data'>{len(self.chunks)} data chunks</div>"
            )
        if self.result is not None:
            parts.append(
                f"<div class='omnitwin-final'>{self.result._repr_html_()}</div>"
            )
        if self.error is not None:
            parts.append(
                "<div class='omnitwin-error' style='color:#b71c1c'>"
                f"error: {html.escape(self.error)}</div>"
            )
        if not self.finished:
            parts.append("<div class='omnitwin-running'><em>running…</em></div>")
        parts.append("</div>")
        return "".join(parts)
