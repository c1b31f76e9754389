"""How big each Loki, Tempo, Prometheus and Thanos component must be, from one input: the stack's
`aws.sizing` (daily log and trace ingest, one Prometheus' samples per second: the units of
`tools.cost`). The EKS modules turn the sizes into replicas, requests and limits; the config model
uses the disk sizes to refuse what a node cannot hold. Pure arithmetic: it imports nothing.

Each figure comes from the tool's own sizing guide at the pinned version, scaled to the share of
the guide's load one pod carries here, and never below a floor that keeps a small install above
what the real binaries were seen to use:
- Loki: grafana/loki v3.7.6 docs/sources/setup/size/_index.md (the newest 3.7 tag with the page;
  the pin is 3.7.8), tier "Less than 100TB/month (3TB/day)": CPU and memory per pod and the
  replicas that carry 3 TB/day, per component.
- Tempo: grafana/tempo v2.10.8 docs/sources/tempo/set-up-for-tracing/setup-tempo/plan/size.md:
  one replica per so many MB/s of received traffic, with CPU and memory per replica.
- Prometheus: prometheus/prometheus v3.14.0 docs/storage.md gives disk only (retention x samples/s
  x 1-2 bytes per sample); memory and CPU follow a measurement (MEASURED_* below).
- Thanos compactor: thanos-io/thanos v0.42.4 docs/components/compact.md: --compact.concurrency (1)
  CPU cores, "a limit of 10GB of memory" for a medium bucket, and disk for the worst case, twice
  two weeks of one group's blocks.

Replicas are at least the project's own counts, and more when the load would give one pod more than
the guide's per-pod load; ingesters come in threes (one StatefulSet per zone). Memory limits are
twice the request: a pod may burst, a runaway one is killed before its node runs out (an
ingester's WAL is on an emptyDir, which outlives a container restart). No CPU limits: a throttled
ingester misses ring heartbeats; the requests already share the CPU fairly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

MIB = 1024 * 1024
GIB = 1024 * MIB
GB_IN_GIB = 1e9 / GIB  # the Tempo guide writes GB
MB_PER_S_PER_GB_PER_DAY = 1000 / 86400

# Defaults of aws.sizing: tools.cost's staging ingest (tools/cost/facts.py DEFAULT_INGEST).
DEFAULT_LOGS_GB_PER_DAY = 75.0
DEFAULT_TRACES_GB_PER_DAY = 35.0
DEFAULT_METRICS_SAMPLES_PER_SECOND = 30_000

# What one pod may take of a node's root volume for its emptyDir. EKS managed node groups default to
# a 20 GiB root volume (CreateNodegroup `diskSize`), which also holds the images, the logs and the
# kubelet's eviction reserve (nodefs.available 10%): half of it for one pod leaves room for the rest.
NODE_DISK_GIB = 10


@dataclass(frozen=True)
class Guide:
    """One component as its tool's guide sizes it: CPU cores and memory GiB per pod at `load` per pod."""

    cpu: float
    memory_gib: float
    load: float  # per pod: Loki GB/day, Tempo MB/s
    replicas: int  # the project's own count, kept at low load
    floor_memory_mib: int  # each component's own: no one floor fits them all
    floor_cpu: float = 0.1
    zoned: bool = False  # one StatefulSet per zone: replicas in threes


@dataclass(frozen=True)
class Size:
    replicas: int
    cpu_millis: int
    memory_mib: int
    ephemeral_gib: Optional[int] = None  # emptyDir on the node's disk

    def resources(self) -> dict[str, Any]:
        """Kubernetes `resources`: requests as sized, memory limit twice the request, no CPU limit."""
        requests: dict[str, str] = {"cpu": f"{self.cpu_millis}m", "memory": f"{self.memory_mib}Mi"}
        limits: dict[str, str] = {"memory": f"{2 * self.memory_mib}Mi"}
        if self.ephemeral_gib is not None:
            requests["ephemeral-storage"] = limits["ephemeral-storage"] = f"{self.ephemeral_gib}Gi"
        return {"requests": requests, "limits": limits}


def _up(value: float, step: int) -> int:
    return int(math.ceil(value / step - 1e-9)) * step


def scale(guide: Guide, load: float) -> Size:
    """Pods for `load` in all: enough that none carries more than the guide's per-pod load, each
    requesting the guide's figures for the share it carries."""
    replicas = max(guide.replicas, _up(load / guide.load, 3 if guide.zoned else 1))
    share = load / (replicas * guide.load)
    cpu = max(guide.floor_cpu, guide.cpu * share)
    memory = max(guide.floor_memory_mib, guide.memory_gib * 1024 * share)
    return Size(replicas, _up(cpu * 1000, 10), _up(memory, 16))


# ---------------------------------------------------------------- Loki
# The guide's smallest tier; larger installs belong to its next tiers, whose per-pod figures differ.
LOKI_TIER_GB_PER_DAY = 3000
# Chart component: ((CPU, memory GiB, replicas for the tier), the project's replicas).
LOKI_GUIDE = {
    "ingester": ((2, 4, 6), 3),
    "distributor": ((2, 0.5, 4), 3),
    "indexGateway": ((0.5, 2, 4), 2),
    "querier": ((1, 1, 10), 3),
    "queryFrontend": ((1, 2, 2), 2),
    "queryScheduler": ((1, 0.5, 2), 2),
    "compactor": ((2, 10, 1), 1),
}
# The Loki single binary peaked at 327 MB RSS in the calibration run (docs/cost.md): an ingester
# holds at least its share of that; queriers, index gateways and the compactor read whole chunks
# and index files.
LOKI_FLOOR_MIB = {"ingester": 512, "querier": 256, "indexGateway": 256, "compactor": 256}


def loki(logs_gb_per_day: float) -> dict[str, Size]:
    out = {}
    for component, ((cpu, memory, tier_replicas), replicas) in LOKI_GUIDE.items():
        guide = Guide(cpu, memory, LOKI_TIER_GB_PER_DAY / tier_replicas, replicas,
                      floor_memory_mib=LOKI_FLOOR_MIB.get(component, 128), zoned=component == "ingester")
        out[component] = scale(guide, logs_gb_per_day)
    # Not in the guide, and not driven by ingest: the nginx gateway and the canary (one line a
    # second). The chart runs no ruler pod in this mode (ruler.replicas 0).
    out["gateway"] = Size(2, 50, 64)
    out["lokiCanary"] = Size(1, 10, 32)
    return out


# ---------------------------------------------------------------- Tempo
TEMPO_GUIDE = {
    # "1 replica per every 10MB/s of received traffic", 2 cores, 2 GB.
    "distributor": Guide(2, 2 * GB_IN_GIB, 10, 2, floor_memory_mib=256),
    # "1 replica per every 3-5MB/s", 2.5 cores, 4-20 GB: the middle of the rate, the low end of memory.
    # Floor: the single binary took 506 MB completing a 15.5 MiB block (docs/cost.md).
    "ingester": Guide(2.5, 4 * GB_IN_GIB, 4, 3, floor_memory_mib=1024, zoned=True),
    # "1 replica per every 1-2MB/s", CPU "dependent on trace size and queries" (1 core here), 4-20 GB.
    "querier": Guide(1, 4 * GB_IN_GIB, 1.5, 2, floor_memory_mib=512),
    # "1 replica per every 3-5 MB/s", 1 core ("primarily I/O bound"), 4-20 GB.
    "compactor": Guide(1, 4 * GB_IN_GIB, 4, 1, floor_memory_mib=1024),
}


def tempo(traces_gb_per_day: float) -> dict[str, Size]:
    rate = traces_gb_per_day * MB_PER_S_PER_GB_PER_DAY
    out = {component: scale(guide, rate) for component, guide in TEMPO_GUIDE.items()}
    # "2 replicas, for high availability": its load follows queries, not ingest.
    out["queryFrontend"] = Size(2, 100, 256)
    # memcached's own default cache size is 64 MB (-m); the chart passes none.
    out["memcached"] = Size(1, 50, 128)
    return out


# ---------------------------------------------------------------- Prometheus and Thanos
# The Prometheus operator's default scrape interval (kube-prometheus-stack-88.5.3 crds,
# crd-prometheuses.yaml scrapeInterval "Default: 30s"; versions.ChartFacts): head series = samples/s x 30.
SCRAPE_INTERVAL_SECONDS = 30
# Measured with Prometheus 3.5.3 (the suite's .ci/install-prometheus; the pin is v3.14.0): 200,005
# series of 5 labels scraped every 10 s (20,000 samples/s) for 28 minutes peaked at 641.7 MB RSS,
# 3,209 bytes per head series, and used 54.1 CPU seconds (0.032 cores).
MEASURED_BYTES_PER_SERIES = 3209
MEASURED_CORES_PER_SAMPLE_PER_SECOND = 0.032 / 20_000
# Prometheus keeps 12 hours locally: the sidecar has uploaded the older blocks (components/eks/prometheus.py).
PROMETHEUS_RETENTION_HOURS = 12
# docs/storage.md: "an average of only 1-2 bytes per sample"; disk must not run short, so 2.
BYTES_PER_SAMPLE = 2
# The head (and its WAL) spans up to 3 hours before the oldest 2 hours are cut into a block
# (tsdb/head.go `compactable`: 1.5 block ranges).
HEAD_HOURS = 3
# Thanos' compaction levels end at 14 days (2h, 8h, 2d, 14d: cmd/thanos/compact.go at v0.42.4); the
# worst case holds the sources and the result of one 14-day compaction of one group at once.
COMPACTION_DAYS = 14


def head_series(samples_per_second: int) -> int:
    return samples_per_second * SCRAPE_INTERVAL_SECONDS


def prometheus(samples_per_second: int, retention_hours: int) -> Size:
    """One of the two Prometheus replicas; its TSDB (retention plus head) on the node's disk."""
    memory = head_series(samples_per_second) * MEASURED_BYTES_PER_SERIES * 1.5
    cpu = samples_per_second * MEASURED_CORES_PER_SAMPLE_PER_SECOND * 2
    return Size(2, _up(max(0.1, cpu) * 1000, 10), max(512, _up(memory / MIB, 16)),
                ephemeral_gib=prometheus_disk_gib(samples_per_second, retention_hours))


def prometheus_disk_gib(samples_per_second: int, retention_hours: int) -> int:
    return max(1, math.ceil(samples_per_second * (retention_hours + HEAD_HOURS) * 3600 * BYTES_PER_SAMPLE * 1.2 / GIB))


# Receive keeps a day locally (renderers/thanos.py receive_args: --tsdb.retention=1d).
RECEIVE_RETENTION_HOURS = 24


def thanos_receive(samples_per_second: int, replication_factor: int) -> Size:
    """One Receive replica, for one remote-writing Prometheus of this size: with as many replicas as
    the replication factor, each holds every series, and its TSDB (a day plus the head) sits on the
    node's disk."""
    memory = head_series(samples_per_second) * MEASURED_BYTES_PER_SERIES * 1.5
    return Size(replication_factor, _up(max(0.1, samples_per_second * MEASURED_CORES_PER_SAMPLE_PER_SECOND * 2) * 1000, 10),
                max(512, _up(memory / MIB, 16)), ephemeral_gib=prometheus_disk_gib(samples_per_second, RECEIVE_RETENTION_HOURS))


def thanos_compact_disk_gib(samples_per_second: int) -> int:
    """Scratch disk for the worst case: twice two weeks of one Prometheus' blocks."""
    return math.ceil(2 * COMPACTION_DAYS * 86400 * samples_per_second * BYTES_PER_SAMPLE / GIB)


def compact_samples_per_second(disk_gib: int) -> int:
    """The largest Prometheus (samples/s) whose worst-case compaction fits `disk_gib`."""
    return int(disk_gib * GIB / (2 * COMPACTION_DAYS * 86400 * BYTES_PER_SAMPLE))


def thanos(index_cache_mb: int, response_cache_mb: int) -> dict[str, Size]:
    """Thanos' reads are driven by queries, not ingest: fixed sizes plus the configured caches."""
    return {
        # --compact.concurrency (1) cores; 10 GB "should be enough" for a medium bucket: the limit.
        "thanos-compact": Size(1, 1000, 5120),
        "thanos-store": Size(2, 250, 512 + _up(index_cache_mb * 1e6 / MIB, 16)),
        "thanos-query": Size(2, 250, 512),
        "thanos-query-frontend": Size(2, 100, 128 + _up(response_cache_mb * 1e6 / MIB, 16)),
        # Uploads finished 2-hour blocks and answers Query for the recent ones.
        "thanos-sidecar": Size(2, 100, 256),
    }
