"""Tests for reconcile jobs: every strategy, field filters, audit and progress."""

from __future__ import annotations

import pytest

import omnitwin
from omnitwin.client._devices import load_sample_devices, sample_detected_state
from omnitwin.engine.context import Context
from omnitwin.engine.discovery import parse_nmap_xml
from omnitwin.engine.engine import Engine
from omnitwin.engine.jobs import Job
from omnitwin.errors import NotFound, ValidationError
from omnitwin.sample import generate_fabric
from testdata import data_file


@pytest.fixture
def drifted(engine: Engine, ctx: Context) -> str:
    """A device whose twin disagrees with a real Nmap scan on three ports."""
    original = parse_nmap_xml(data_file("nmap-libnmap", "2_hosts.xml").read_text())
    device = engine.devices.create(
        ctx, "localhost", role="server", site="lab", twin_state=original[0].state
    )
    changed = data_file("nmap-libnmap", "2_hosts_achange.xml").read_text()
    engine.discovery.ingest(ctx, "nmap", changed)
    return device.id


def open_fields(engine: Engine, ctx: Context, device_id: str) -> set[str]:
    events = engine.drift.events(ctx, device=device_id, status="open", per_page=200)
    return {event.field for event in events}


def run(
    engine: Engine,
    ctx: Context,
    device_id: str,
    strategy: str,
    fields: list[str] | None = None,
) -> tuple[Job, list[Job]]:
    """Start a reconcile job and collect every snapshot that watch yields."""
    job = engine.reconcile.reconcile(ctx, device_id, strategy, fields)
    assert job.status != "failed"
    snapshots = list(engine.jobs.watch(ctx, job.id, timeout=30))
    return job, snapshots


def test_reconcile_returns_job_at_once(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    job = engine.reconcile.reconcile(ctx, drifted, "trust_detected")
    assert job.id.startswith("job_")
    assert job.kind == "reconcile"
    assert job.status in ("queued", "processing")
    assert engine.jobs.wait(ctx, job.id, timeout=30).status == "completed"


def test_trust_detected_takes_observed_values(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    _, snapshots = run(engine, ctx, drifted, "trust_detected")
    final = snapshots[-1]
    assert final.status == "completed"
    assert (final.processed, final.total) == (3, 3)
    assert len(final.result["applied"]) == 3
    twin = engine.devices.get(ctx, drifted).twin_state
    assert twin["ports"]["tcp/23"] == "open"
    assert twin["ports"]["tcp/111"] == "closed"
    assert open_fields(engine, ctx, drifted) == set()
    assert engine.devices.get(ctx, drifted).drift_score == 0.0


def test_trust_detected_is_audited(engine: Engine, ctx: Context, drifted: str) -> None:
    run(engine, ctx, drifted, "trust_detected")
    events = engine.audit.list(ctx.workspace, subject=drifted, per_page=200).data
    actions = [e.action for e in events]
    assert actions.count("device.reconcile") == 3
    assert actions.count("drift.reconciled") == 3
    change = next(e for e in events if e.action == "device.reconcile").changes
    assert set(change["after"]) == {"twin_state"}
    assert engine.audit.verify(ctx.workspace).ok


def test_trust_detected_field_filter(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    _, snapshots = run(engine, ctx, drifted, "trust_detected", fields=["ports.tcp/23"])
    assert snapshots[-1].result["applied"] == [
        {"field": "ports.tcp/23", "decision": "detected"}
    ]
    assert open_fields(engine, ctx, drifted) == {"ports.tcp/111", "ports.tcp/25"}


def test_field_filter_takes_prefix(engine: Engine, ctx: Context, drifted: str) -> None:
    _, snapshots = run(engine, ctx, drifted, "trust_twin", fields=["ports"])
    assert snapshots[-1].total == 3


def test_trust_twin_records_plan(engine: Engine, ctx: Context, drifted: str) -> None:
    _, snapshots = run(engine, ctx, drifted, "trust_twin")
    result = snapshots[-1].result
    steps = result["remediation_plan"]["steps"]
    assert {s["field"] for s in steps} == {
        "ports.tcp/111",
        "ports.tcp/23",
        "ports.tcp/25",
    }
    assert all("set ports.tcp" in s["action"] for s in steps)
    plans = engine.reconcile.remediation_plans(ctx, drifted)
    assert plans[0]["id"] == result["remediation_plan"]["id"]
    twin = engine.devices.get(ctx, drifted).twin_state
    assert twin["ports"]["tcp/23"] == "closed"
    assert open_fields(engine, ctx, drifted) == set()


def test_trust_twin_survives_rescore(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    run(engine, ctx, drifted, "trust_twin")
    engine.drift.rescore_all(ctx)
    assert open_fields(engine, ctx, drifted) == set()
    score = engine.devices.get(ctx, drifted).drift_score
    assert score is not None
    assert score > 0


def test_watch_streams_progress(engine: Engine, ctx: Context, drifted: str) -> None:
    _, snapshots = run(engine, ctx, drifted, "trust_detected")
    statuses = [s.status for s in snapshots]
    order = ["queued", "processing", "completed"]
    assert statuses[-1] == "completed"
    assert [order.index(s) for s in statuses] == sorted(
        order.index(s) for s in statuses
    )
    processed = [s.processed for s in snapshots]
    assert processed == sorted(processed)
    assert snapshots[-1].processed == snapshots[-1].total == 3


def test_trust_twin_reopens_on_new_observation(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    run(engine, ctx, drifted, "trust_twin")
    changed = data_file("nmap-libnmap", "2_hosts_achange.xml").read_text()
    engine.discovery.ingest(ctx, "nmap", changed)
    assert len(open_fields(engine, ctx, drifted)) == 3


def test_interactive_waits_then_applies(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    job, snapshots = run(engine, ctx, drifted, "interactive")
    waiting = snapshots[-1]
    assert waiting.status == "awaiting_review"
    assert {p["field"] for p in waiting.result["proposals"]} == {
        "ports.tcp/111",
        "ports.tcp/23",
        "ports.tcp/25",
    }
    assert open_fields(engine, ctx, drifted) == {
        "ports.tcp/111",
        "ports.tcp/23",
        "ports.tcp/25",
    }

    decisions = {"ports.tcp/111": "twin", "ports.tcp/23": "detected"}
    decisions["ports.tcp/25"] = "ignore"
    engine.reconcile.decide(ctx, job.id, decisions)
    done = engine.jobs.wait(ctx, job.id, timeout=30)
    assert done.status == "completed"
    twin = engine.devices.get(ctx, drifted).twin_state
    assert twin["ports"]["tcp/23"] == "open"
    assert twin["ports"]["tcp/111"] == "open"
    statuses = {
        e.field: (e.status, e.resolution)
        for e in engine.drift.events(ctx, device=drifted).data
    }
    assert statuses == {
        "ports.tcp/111": ("reconciled", "trust_twin"),
        "ports.tcp/23": ("reconciled", "trust_detected"),
        "ports.tcp/25": ("ignored", "ignored"),
    }
    assert done.result["remediation_plan"]["steps"][0]["field"] == "ports.tcp/111"


def test_interactive_partial_decisions(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    job, _ = run(engine, ctx, drifted, "interactive")
    engine.reconcile.decide(ctx, job.id, {"ports.tcp/25": "detected"})
    engine.jobs.wait(ctx, job.id, timeout=30)
    assert open_fields(engine, ctx, drifted) == {"ports.tcp/111", "ports.tcp/23"}


def test_decide_rejects_unknown_field(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    job, _ = run(engine, ctx, drifted, "interactive")
    with pytest.raises(ValidationError):
        engine.reconcile.decide(ctx, job.id, {"mac": "twin"})
    with pytest.raises(ValidationError):
        engine.reconcile.decide(ctx, job.id, {"ports.tcp/25": "maybe"})


def test_decide_rejects_finished_job(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    job, _ = run(engine, ctx, drifted, "trust_twin")
    with pytest.raises(ValidationError):
        engine.reconcile.decide(ctx, job.id, {})


def test_reconcile_rejects_bad_strategy(
    engine: Engine, ctx: Context, drifted: str
) -> None:
    with pytest.raises(ValidationError):
        engine.reconcile.reconcile(ctx, drifted, "trust_nobody")
    with pytest.raises(NotFound):
        engine.reconcile.reconcile(ctx, "ghost", "trust_twin")


def test_ignored_event_stays_quiet(engine: Engine, ctx: Context, drifted: str) -> None:
    event = engine.drift.events(ctx, device=drifted, field="ports.tcp/25").data[0]
    engine.drift.ignore(ctx, event.id, reason="scanner artefact")
    engine.drift.rescore_all(ctx)
    changed = data_file("nmap-libnmap", "2_hosts_achange.xml").read_text()
    engine.discovery.ingest(ctx, "nmap", changed)
    assert open_fields(engine, ctx, drifted) == {"ports.tcp/111", "ports.tcp/23"}


def test_sample_links_reconcile_trust_detected(client: omnitwin.Client) -> None:
    network = generate_fabric(sites=1, leaves=4, servers_per_leaf=1)
    load_sample_devices(client, network)
    client.discovery.ingest("napalm", sample_detected_state(network))
    assert len(client.drift.links()["unexpected"]) == 1

    for hostname in ("leaf-03.nyc1", "leaf-04.nyc1"):
        job = client.devices.reconcile(hostname, "trust_detected", ["neighbors"])
        assert client.jobs.wait(job.id, timeout=30).status == "completed"
    links = client.drift.links()
    assert links["unexpected"] == []
    assert len(links["missing"]) == 1
    assert client.devices.get("leaf-03.nyc1").drift_score == 0.0
