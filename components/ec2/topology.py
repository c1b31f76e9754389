"""Which fleet runs which workload, who talks to whom on which port, and what the load balancer
serves: pure data derived from the workloads `containers.workloads.build` declares, shared by the
Pulumi components (network.py, fleet.py) and the tests.

A fleet is one Auto Scaling group of identical instances, each running its workloads in Docker
Compose. Thanos Receive runs one single-instance group per replica slot: its hashring names every
slot (`thanos-receive-<i>`), and a group of one keeps that name while replacing a lost instance.
Everything watching the others (Prometheus, Alertmanager, the bucket-freshness probes) shares one
`monitoring` instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from components.containers.workloads import GRAFANA_PORT, MEMBERLIST_PORT, Workload
from components.core.renderers import loki, tempo, thanos


@dataclass(frozen=True)
class Listener:
    """One NLB listener (TCP) and its target group: traffic on `port` goes to the same port on the
    instances of `family`; the target group checks `health_path` on `health_port` (HTTP 200)."""

    name: str
    port: int
    family: str
    health_port: int
    health_path: str


# Each tool's readiness endpoint: Loki and Tempo answer /ready only once their rings are healthy,
# Thanos /-/ready, Grafana /api/health (its database reachable). Not "any answer means alive".
LISTENERS = (
    Listener("loki", loki.HTTP_PORT, "loki", loki.HTTP_PORT, "/ready"),
    Listener("otlp-grpc", tempo.OTLP_GRPC_PORT, "tempo", tempo.HTTP_PORT, "/ready"),
    Listener("otlp-http", tempo.OTLP_HTTP_PORT, "tempo", tempo.HTTP_PORT, "/ready"),
    Listener("tempo", tempo.HTTP_PORT, "tempo", tempo.HTTP_PORT, "/ready"),
    Listener("grafana", GRAFANA_PORT, "grafana", GRAFANA_PORT, "/api/health"),
    Listener("remote-write", thanos.RECEIVE_REMOTE_WRITE_PORT, "thanos-receive", thanos.HTTP_PORT, "/-/ready"),
)


@dataclass(frozen=True)
class Fleet:
    name: str  # the Auto Scaling group's role: loki, thanos-receive-0, monitoring, ...
    family: str  # fleets sharing settings, role and security group: loki, thanos-receive, ...
    workloads: tuple[str, ...]
    # Registered in a Cloud Map service of its own name (others reach it as <name>.<namespace>).
    discoverable: bool
    # Host networking: one interface, so the tools' own address is the instance's. The monitoring
    # fleet runs several containers that listen on one port each (the freshness probes) and
    # reaches them by name: a Compose network.
    host_network: bool
    # A singleton whose replacement must wait for the old instance to stop (two compactors on one
    # bucket corrupt it; two instances of one Receive slot would split its samples).
    stop_first: bool

    @property
    def settings_key(self) -> str:
        return self.family.replace("-", "_")


@dataclass(frozen=True)
class Flow:
    """Traffic one family's instances accept from another's (or from their own: cluster ports)."""

    source: str
    target: str
    ports: tuple[int, ...]
    protocol: str = "tcp"


def family_of(workload: str) -> str:
    if workload.startswith("thanos-receive-"):
        return "thanos-receive"
    if workload in ("loki", "tempo", "grafana", "thanos-query", "thanos-store", "thanos-compact"):
        return workload
    return "monitoring"


def fleets(workloads: list[Workload]) -> list[Fleet]:
    out: dict[str, list[str]] = {}
    for w in workloads:
        family = family_of(w.name)
        name = w.name if family == "thanos-receive" else family
        out.setdefault(name, []).append(w.name)
    result = []
    for name, names in out.items():
        family = family_of(names[0])
        monitoring = family == "monitoring"
        result.append(Fleet(name, family, tuple(names), discoverable=not monitoring, host_network=not monitoring,
                            stop_first=family in ("thanos-compact", "thanos-receive", "monitoring")))
    return result


def metrics_port(family: str) -> Optional[int]:
    """The port the monitoring fleet's Prometheus scrapes a family on (containers/monitoring.py
    scrapes Loki, Tempo and every Thanos component; not Grafana)."""
    return {"loki": loki.HTTP_PORT, "tempo": tempo.HTTP_PORT}.get(family, thanos.HTTP_PORT if family.startswith("thanos-") else None)


def flows(families: set[str]) -> list[Flow]:
    """Every flow between the families present: cluster ports within a family, the read path,
    the metrics scrapes and remote-write. Never a CIDR: sources are security groups."""
    # Peers of one family talk memberlist and gRPC only, never HTTP: every instance runs
    # -target=all, whose query path stays on the instance (Loki's querier reaches the compactor
    # over its own gRPC address in single-binary mode, grafana/loki v3.7.6 pkg/loki/modules.go
    # compactorAddress; Tempo's querier is pointed at its own frontend, renderers/tempo.py).
    wanted = [
        Flow("loki", "loki", (MEMBERLIST_PORT, loki.GRPC_PORT)),
        Flow("loki", "loki", (MEMBERLIST_PORT,), "udp"),
        Flow("tempo", "tempo", (MEMBERLIST_PORT, tempo.GRPC_PORT)),
        Flow("tempo", "tempo", (MEMBERLIST_PORT,), "udp"),
        # Receive replicates every series to the other slots' gRPC API.
        Flow("thanos-receive", "thanos-receive", (thanos.GRPC_PORT,)),
        Flow("grafana", "loki", (loki.HTTP_PORT,)),
        Flow("grafana", "tempo", (tempo.HTTP_PORT,)),
        Flow("grafana", "thanos-query", (thanos.HTTP_PORT,)),
        Flow("thanos-query", "thanos-store", (thanos.GRPC_PORT,)),
        Flow("thanos-query", "thanos-receive", (thanos.GRPC_PORT,)),
        Flow("monitoring", "thanos-receive", (thanos.RECEIVE_REMOTE_WRITE_PORT,)),
    ]
    wanted += [Flow("monitoring", family, (port,)) for family in sorted(families) if (port := metrics_port(family))]
    merged: dict[tuple[str, str, str], list[int]] = {}
    for flow in wanted:
        if flow.source in families and flow.target in families:
            ports = merged.setdefault((flow.source, flow.target, flow.protocol), [])
            ports += [p for p in flow.ports if p not in ports]
    return [Flow(s, t, tuple(sorted(p)), proto) for (s, t, proto), p in merged.items()]


def refresh_percentages(size: int, stop_first: bool) -> tuple[int, int]:
    """(min, max) healthy percentage of an instance refresh. A ring fleet never drops below its
    full size: one replacement is launched and healthy before one old instance goes, so every
    write keeps its replication factor. A stop-first singleton goes down before its successor."""
    if stop_first:
        return 0, 100
    return 100, 100 + math.ceil(100 / size)
