"""The drift explorer: filter drifting devices, inspect their diff, reconcile.

Built from plain ipywidgets over the public client: ``client.devices.list``
for the device list, ``client.drift.events`` for the field-by-field diff,
``client.devices.reconcile`` to start a job and ``client.jobs.get`` to follow
its progress in an ``IntProgress`` bar.
"""

from __future__ import annotations

import html
import json
import time
from functools import partial
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from omnitwin.notebook.loaders import iter_records
from omnitwin.notebook.widgets import report_errors

__all__ = ["STRATEGIES", "DriftExplorer"]

STRATEGIES = ("trust_detected", "trust_twin")
_ALL = "(all)"


class DriftExplorer(widgets.VBox):  # type: ignore[misc]
    """Filter devices by site, role and drift score; inspect and reconcile one.

    Parameters
    ----------
    client : omnitwin.Client
        Where devices, drift events and jobs are read.
    poll_interval : float
        Seconds between two ``client.jobs.get`` calls while a job runs.
    timeout : float
        Seconds to follow a reconcile job before giving up on it.

    Examples
    --------
    >>> import omnitwin
    >>> from omnitwin.notebook import load_sample_twin
    >>> client = omnitwin.connect(":memory:")
    >>> _ = load_sample_twin(client, sites=1)
    >>> explorer = DriftExplorer(client)
    >>> len(explorer.device.options) > 0
    True
    """

    def __init__(
        self, client: Any, *, poll_interval: float = 0.2, timeout: float = 120.0
    ) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.devices: list[Any] = []
        self.site = widgets.Dropdown(description="Site", options=[_ALL])
        self.role = widgets.Dropdown(description="Role", options=[_ALL])
        self.min_score = widgets.FloatSlider(
            description="Min score", min=0.0, max=1.0, step=0.01, value=0.0
        )
        self.device = widgets.Select(description="Device", rows=8)
        self.diff = widgets.HTML("<em>Select a device to see its drift.</em>")
        self.strategy = widgets.Dropdown(description="Strategy", options=STRATEGIES)
        self.reconcile_button = widgets.Button(
            description="Reconcile", button_style="warning", icon="wrench"
        )
        self.progress = widgets.IntProgress(description="Job", min=0, max=1, value=0)
        self.progress.add_class("omnitwin-job-progress")
        self.status = widgets.HTML("")
        super().__init__(self._layout_children())
        self.add_class("omnitwin-drift-explorer")
        self._connect_callbacks()
        self.refresh()

    def __repr__(self) -> str:
        return f"<DriftExplorer {len(self.device.options)} devices shown>"

    def _layout_children(self) -> list[Any]:
        filters = widgets.HBox([self.site, self.role, self.min_score])
        actions = widgets.HBox([self.strategy, self.reconcile_button, self.progress])
        return [filters, self.device, self.diff, actions, self.status]

    def _connect_callbacks(self) -> None:
        for control in (self.site, self.role, self.min_score):
            control.observe(self._on_filter, names="value")
        self.device.observe(self._on_select, names="value")
        self.reconcile_button.on_click(self._on_reconcile)

    # --- public methods ------------------------------------------------------------

    def refresh(self) -> None:
        """Reload devices from the client and apply the filters."""
        lister = partial(self.client.devices.list)
        self.devices = list(iter_records(lister, description="devices"))
        self.site.options = [_ALL, *sorted({d.site for d in self.devices})]
        self.role.options = [_ALL, *sorted({d.role for d in self.devices})]
        self._apply_filters()

    def filtered(self) -> list[Any]:
        """Return the devices that pass the site, role and score filters."""
        chosen = []
        for device in self.devices:
            if self.site.value not in (_ALL, device.site):
                continue
            if self.role.value not in (_ALL, device.role):
                continue
            score = device.drift_score
            if self.min_score.value > 0 and (
                score is None or score < self.min_score.value
            ):
                continue
            chosen.append(device)
        return sorted(chosen, key=lambda d: (-(d.drift_score or 0.0), d.hostname))

    def reconcile(self, strategy: str | None = None) -> Any:
        """Reconcile the selected device and follow the job; return the job."""
        device_id = self.device.value
        if not device_id:
            raise ValueError("select a device before reconciling")
        chosen = strategy or self.strategy.value
        job = self.client.devices.reconcile(device_id, chosen)
        self.status.value = html.escape(f"job {job.id} started ({chosen})")
        job = self._follow(job)
        self.status.value = html.escape(
            f"job {job.id} {job.status}: {job.processed} of {job.total or 1} fields"
            + (f"; {job.error}" if job.error else "")
        )
        self.refresh()
        self.device.value = device_id if device_id in self._option_ids() else None
        return job

    # --- internals -------------------------------------------------------------------

    def _follow(self, job: Any) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            self.progress.max = max(job.total, 1)
            self.progress.value = min(job.processed, self.progress.max)
            if job.done or job.status == "awaiting_review":
                self.progress.value = self.progress.max if job.done else job.processed
                return job
            if time.monotonic() > deadline:
                return job
            time.sleep(self.poll_interval)
            job = self.client.jobs.get(job.id)

    def _option_ids(self) -> set[str]:
        return {value for _, value in self.device.options}

    def _apply_filters(self) -> None:
        options = [
            (f"{d.hostname} ({d.site}, {d.role}) score {_score(d.drift_score)}", d.id)
            for d in self.filtered()
        ]
        self.device.options = options

    def _diff_html(self, device_id: str) -> str:
        page = self.client.drift.events(device=device_id, status="open", per_page=200)
        if not page.data:
            return "<em>No open drift on this device.</em>"
        rows = "".join(
            "<tr>"
            f"<td><code>{html.escape(event.field)}</code></td>"
            f"<td>{html.escape(_change(event.twin_value, event.actual_value))}</td>"
            f"<td>{html.escape(_value(event.twin_value))}</td>"
            f"<td>{html.escape(_value(event.actual_value))}</td>"
            f"<td>{html.escape(event.detected_at)}</td>"
            "</tr>"
            for event in page.data
        )
        header = (
            "<tr><th>field</th><th>change</th><th>twin (intended)</th>"
            "<th>detected</th><th>detected at</th></tr>"
        )
        table = f"<table class='omnitwin-diff'>{header}{rows}</table>"
        return table + self._links_html(device_id)

    def _links_html(self, device_id: str) -> str:
        """List the missing and unexpected links at one device."""
        items = [
            f"<li>{kind} link {html.escape(_link_text(link))}</li>"
            for kind, links in self.client.drift.links().items()
            for link in links
            if device_id in (link.a, link.b)
        ]
        if not items:
            return ""
        return f"<ul class='omnitwin-link-drift'>{''.join(items)}</ul>"

    @report_errors("status")
    def _on_filter(self, change: dict[str, Any]) -> None:
        self._apply_filters()

    @report_errors("status")
    def _on_select(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.diff.value = self._diff_html(change["new"])

    @report_errors("status")
    def _on_reconcile(self, button: Any) -> None:
        self.reconcile()


def _score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.2f}"


def _change(twin: Any, detected: Any) -> str:
    """Describe a list drift as its missing and unexpected names."""
    if not (isinstance(twin, list) and isinstance(detected, list)):
        return ""
    missing = sorted(set(map(str, twin)) - set(map(str, detected)))
    unexpected = sorted(set(map(str, detected)) - set(map(str, twin)))
    parts = [f"missing {name!r}" for name in missing]
    parts += [f"unexpected {name!r}" for name in unexpected]
    return "; ".join(parts) or "same names, another order"


def _link_text(link: Any) -> str:
    return (
        f"{link.a_hostname or link.a} {link.port_a or ''} - "
        f"{link.b_hostname or link.b} {link.port_b or ''} ({link.id})"
    )


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else str(value)
