"""The sample network that the agent tests run against.

It is one site of the generated fabric (nyc1, region us-east), observed
through NAPALM so that some devices have drift. Two eu-west pools make a
region alone ambiguous, 10.128.16.0/20 is allocated, and two firewalls
called fw-01 make that host label ambiguous.
"""

from __future__ import annotations

import omnitwin
from omnitwin.cli import load_sample
from omnitwin.client._devices import load_sample_devices, sample_detected_state
from omnitwin.sample import generate_fabric


def load_agent_sample(client: omnitwin.Client) -> None:
    """Load the agent tests' network through ``client``."""
    network = generate_fabric(sites=1, leaves=4, servers_per_leaf=2)
    load_sample(client, network)
    load_sample_devices(client, network)
    client.discovery.ingest("napalm", sample_detected_state(network))
    for name, purpose in (("10.128.0.0/16", "analytics"), ("10.129.0.0/16", "batch")):
        client.subnets.create(
            name,
            is_container=True,
            purpose=f"eu-west {purpose} pool",
            tags={"region": "eu-west"},
        )
    client.subnets.create("10.128.16.0/20", purpose="analytics cluster")
    for site in ("nyc1", "lab1"):
        client.devices.create(f"fw-01.{site}", role="firewall", site=site)
