"""The topology the program renders for a stack (ingesters, replication factors, pollers, chunk
and block settings), read from its offline plan under the strict mock engine."""

from __future__ import annotations

import base64
import gzip
import functools
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import yaml

from components.core.config import StackConfig
from tools import engine
from tools.cost.facts import (
    LOKI_CHUNK_TARGET_BYTES,
    LOKI_COMPACTION_INTERVAL_S,
    LOKI_RETENTION_JITTER_MAX_S,
    MIB,
    TEMPO_BLOCKLIST_POLL_S,
    TEMPO_CHART_REPLICATION_FACTOR,
    TEMPO_COMPACTION_WINDOW_S,
    TEMPO_MAX_BLOCK_BYTES,
    TEMPO_MAX_BLOCK_DURATION_S,
    TEMPO_TENANT_INDEX_BUILDERS,
    THANOS_COMPACT_WAIT_S,
    THANOS_STORE_SYNC_S,
    CostError,
)


# ---------------------------------------------------------------- topology, from the plan
@dataclass(frozen=True)
class LokiTopology:
    ingesters: int = 1
    replication_factor: int = 1
    chunk_target_bytes: float = LOKI_CHUNK_TARGET_BYTES
    compaction_interval_s: float = LOKI_COMPACTION_INTERVAL_S
    # How often the compactor applies retention (its own runs over every table); None: retention off.
    retention_interval_s: Optional[float] = None
    # Processes that hold index tables and re-list them (single binaries, index gateways).
    index_readers: int = 1
    # Compactors that each run over every table: one unless replicas keep separate rings.
    compactors: int = 1
    # A chunk cache every ingester shares (memcached/redis) lets one replica's flush stand for all.
    shared_chunk_cache: bool = False

    def describe(self) -> str:
        cache = "shared chunk cache" if self.shared_chunk_cache else "no shared chunk cache"
        return (f"{self.ingesters} ingester(s), replication factor {self.replication_factor}, "
                f"chunk target {self.chunk_target_bytes / MIB:g} MiB, {cache}, {self.index_readers} index reader(s), "
                f"{self.compactors} compactor(s) every {self.compaction_interval_s / 60:g}m"
                + (f", retention every {self.retention_interval_s / 60:g}m" if self.retention_interval_s else ""))


@dataclass(frozen=True)
class TempoTopology:
    ingesters: int = 1
    replication_factor: int = 1
    max_block_duration_s: float = TEMPO_MAX_BLOCK_DURATION_S
    max_block_bytes: float = TEMPO_MAX_BLOCK_BYTES
    compaction_window_s: float = TEMPO_COMPACTION_WINDOW_S
    poll_s: float = TEMPO_BLOCKLIST_POLL_S
    # Compactors that each compact every block (several only when their ring is not shared).
    compaction_copies: int = 1
    # Pollers that list the blocks and write the tenant index, and pollers that only read it.
    builders: int = 1
    readers: int = 0

    def describe(self) -> str:
        return (f"{self.ingesters} ingester(s), replication factor {self.replication_factor}, blocks cut every "
                f"{self.max_block_duration_s / 60:g}m or {self.max_block_bytes / MIB:g} MiB, compaction window "
                f"{self.compaction_window_s / 3600:g}h{'' if self.compaction_copies == 1 else f' done {self.compaction_copies} times'}, "
                f"polling every {self.poll_s / 60:g}m by {self.builders} index builder(s) and {self.readers} reader(s)")


@dataclass(frozen=True)
class ThanosTopology:
    # Prometheus replicas scraping the same targets (an HA pair: 2).
    prometheus_replicas: int = 1
    # Components uploading 2h blocks: one sidecar per Prometheus replica, or the Receive replicas.
    uploaders: int = 1
    store_gateways: int = 1
    store_sync_s: float = THANOS_STORE_SYNC_S
    compact_wait_s: float = THANOS_COMPACT_WAIT_S
    # A hub: clusters uploading into this bucket besides its own (tools.thanos.spokes), each with
    # the same Prometheus replicas, and their samples together. One compactor serves them all.
    spokes: int = 0
    spoke_samples_per_s: float = 0.0

    def describe(self) -> str:
        spokes = (f", {self.spokes} spoke cluster(s) uploading {self.spoke_samples_per_s:,.0f} samples/s into this bucket"
                  if self.spokes else "")
        return (f"{self.prometheus_replicas} Prometheus replica(s), {self.uploaders} block uploader(s), "
                f"{self.store_gateways} store gateway(s) syncing every {self.store_sync_s / 60:g}m, "
                f"compactor every {self.compact_wait_s / 60:g}m{spokes}")


@dataclass(frozen=True)
class Topology:
    loki: LokiTopology = LokiTopology()
    tempo: TempoTopology = TempoTopology()
    thanos: ThanosTopology = ThanosTopology()
    source: str = "defaults"
    notes: tuple[str, ...] = ()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: Any) -> float:
    """A Go/Prometheus duration ("30m", "1h30m", "336h") in seconds."""
    text = str(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CostError(f"{text!r} is not a duration like 30m or 1h")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _dig(data: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data or data[key] is None:
            return default
        data = data[key]
    return data


@dataclass
class _Workload:
    """One container, Swarm service or Kubernetes workload of the plan."""

    replicas: int
    args: list[str]
    files: dict[str, str]


def _plan_workloads(plan: engine.PlanResult) -> tuple[list[_Workload], dict[str, dict]]:
    """Workloads with their rendered config files, and Helm chart values by chart name."""
    service_configs = {r.name: r.inputs.get("data", "") for r in plan.resources if r.type == "docker:index/serviceConfig:ServiceConfig"}
    templates = {r.urn: r.inputs["userData"] for r in plan.resources
                 if r.type == "aws:ec2/launchTemplate:LaunchTemplate" and isinstance(r.inputs.get("userData"), str)}
    workloads: list[_Workload] = []
    charts: dict[str, dict] = {}
    for r in plan.resources:
        i = r.inputs
        if r.type == "docker:index/container:Container":
            files = {u["file"]: u["content"] for u in i.get("uploads") or [] if isinstance(u.get("content"), str)}
            workloads.append(_Workload(1, list(i.get("command") or []), files))
        elif r.type == "docker:index/service:Service":
            spec = _dig(i, "taskSpec", "containerSpec", default={})
            files = {}
            for c in spec.get("configs") or []:
                data = service_configs.get(c.get("configName"), "")
                files[c["fileName"]] = base64.b64decode(data).decode() if data else ""
            replicas = int(_dig(i, "mode", "replicated", "replicas", default=1))
            workloads.append(_Workload(replicas, list(spec.get("args") or []), files))
        elif r.type in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"):
            containers = _dig(i, "spec", "template", "spec", "containers", default=[])
            args = list(containers[0].get("args") or []) if containers else []
            workloads.append(_Workload(int(_dig(i, "spec", "replicas", default=1)), args, {}))
        elif r.type == "kubernetes:helm.sh/v4:Chart":
            charts[i.get("chart", r.name)] = i.get("values") or {}
        elif r.type == "aws:autoscaling/group:Group":
            template = next((templates[u] for u in r.depends_on if u in templates), None)
            if template is not None:
                workloads += _fleet_workloads(template, int(i.get("desiredCapacity") or i.get("minSize") or 1))
    return workloads, charts


def _fleet_workloads(user_data: str, instances: int) -> list[_Workload]:
    """An EC2 fleet's Compose services (components/ec2/userdata.py): each runs once per instance;
    its config files are the user data's files its Compose volumes mount."""
    document = yaml.safe_load(gzip.decompress(base64.b64decode(user_data)))
    written = {f["path"]: f.get("content", "") for f in document.get("write_files", [])}
    compose = yaml.safe_load(next((c for p, c in written.items() if p.endswith("/docker-compose.yml")), "{}")) or {}
    out = []
    for service in (compose.get("services") or {}).values():
        mounts = [v.split(":") for v in service.get("volumes", []) if isinstance(v, str)]
        files = {m[1]: written[m[0]] for m in mounts if len(m) >= 2 and m[0] in written}
        out.append(_Workload(instances, [a.replace("$$", "$") for a in service.get("command", [])], files))
    return out


def _rendered(workloads: list[_Workload], kind: str) -> list[tuple[_Workload, dict]]:
    """Single binaries whose -config.file is a rendered Loki ("loki") or Tempo ("tempo") config."""
    found = []
    for w in workloads:
        path = next((a.split("=", 1)[1] for a in w.args if a.startswith("-config.file=")), None)
        text = w.files.get(path) if path else None
        if not text:
            continue
        data = yaml.safe_load(text)
        is_loki = isinstance(data, dict) and "schema_config" in data
        is_tempo = isinstance(data, dict) and _dig(data, "storage", "trace") is not None
        if (kind == "loki" and is_loki) or (kind == "tempo" and is_tempo):
            found.append((w, data))
    return found


def loki_retention_interval(compactor: dict) -> Optional[float]:
    """Seconds between the compactor's retention runs as Loki resolves its config, or None when
    retention is off (facts.LOKI_RETENTION_JITTER_MAX_S says how)."""
    if not compactor.get("retention_enabled", False):
        return None
    compaction = seconds(compactor.get("compaction_interval", "10m"))
    interval = seconds(compactor.get("apply_retention_interval", "0s")) or compaction
    return interval + min(LOKI_RETENTION_JITTER_MAX_S, interval / 2) if interval == compaction else interval


def _loki_topology(workloads: list[_Workload], charts: dict[str, dict]) -> Optional[LokiTopology]:
    if "loki" in charts:
        v = charts["loki"]
        structured = _dig(v, "loki", "structuredConfig", default={})
        return LokiTopology(
            ingesters=int(_dig(v, "ingester", "replicas")),
            replication_factor=int(_dig(v, "loki", "commonConfig", "replication_factor", default=3)),
            chunk_target_bytes=float(_dig(structured, "ingester", "chunk_target_size", default=LOKI_CHUNK_TARGET_BYTES)),
            compaction_interval_s=seconds(_dig(structured, "compactor", "compaction_interval", default="10m")),
            retention_interval_s=loki_retention_interval(_dig(structured, "compactor", default={})),
            # Queriers ask the index gateways (the chart's storage_config.tsdb_shipper.index_gateway_client).
            index_readers=int(_dig(v, "indexGateway", "replicas", default=0)),
            compactors=int(_dig(v, "compactor", "replicas", default=1)),
            # The chart's chunksCache is memcached, shared by every ingester (on unless disabled).
            shared_chunk_cache=bool(_dig(v, "chunksCache", "enabled", default=True)),
        )
    binaries = _rendered(workloads, "loki")
    if not binaries:
        return None
    w, data = binaries[0]
    replicas = sum(b.replicas for b, _ in binaries)
    shared_ring = _dig(data, "common", "ring", "kvstore", "store", default="inmemory") != "inmemory"
    cache = _dig(data, "chunk_store_config", "chunk_cache_config", default={})
    return LokiTopology(
        ingesters=replicas,
        # Unset: 3 (Loki pkg/loki/common/common.go -common.replication-factor).
        replication_factor=int(_dig(data, "common", "replication_factor", default=3)),
        chunk_target_bytes=float(_dig(data, "ingester", "chunk_target_size", default=LOKI_CHUNK_TARGET_BYTES)),
        compaction_interval_s=seconds(_dig(data, "compactor", "compaction_interval", default="10m")),
        retention_interval_s=loki_retention_interval(_dig(data, "compactor", default={})),
        index_readers=replicas,
        # With an in-memory ring every replica elects itself compactor.
        compactors=1 if shared_ring or replicas == 1 else replicas,
        shared_chunk_cache=any(k in cache for k in ("memcached", "memcached_client", "redis")),
    )


def _tempo_topology(workloads: list[_Workload], charts: dict[str, dict]) -> Optional[TempoTopology]:
    if "tempo-distributed" in charts:
        v = charts["tempo-distributed"]
        compactors = int(_dig(v, "compactor", "replicas", default=1))
        builders = min(TEMPO_TENANT_INDEX_BUILDERS, compactors)
        # Queriers and query-frontends poll too (modules.go initQuerier/initQueryFrontend), as readers.
        readers = compactors - builders + int(_dig(v, "querier", "replicas", default=1)) + int(_dig(v, "queryFrontend", "replicas", default=1))
        return TempoTopology(
            ingesters=int(_dig(v, "ingester", "replicas")),
            replication_factor=int(_dig(v, "ingester", "config", "replication_factor", default=TEMPO_CHART_REPLICATION_FACTOR)),
            max_block_duration_s=seconds(_dig(v, "ingester", "config", "max_block_duration", default="30m")),
            max_block_bytes=float(_dig(v, "ingester", "config", "max_block_bytes", default=TEMPO_MAX_BLOCK_BYTES)),
            compaction_window_s=seconds(_dig(v, "compactor", "config", "compaction", "compaction_window", default="1h")),
            poll_s=seconds(_dig(v, "storage", "trace", "blocklist_poll", default="5m")),
            compaction_copies=1, builders=builders, readers=readers,
        )
    binaries = _rendered(workloads, "tempo")
    if not binaries:
        return None
    w, data = binaries[0]
    replicas = sum(b.replicas for b, _ in binaries)
    sharded = bool(_dig(data, "compactor", "ring", "kvstore", "store")) or "-target=scalable-single-binary" in w.args
    builders = min(TEMPO_TENANT_INDEX_BUILDERS, replicas) if sharded else replicas
    return TempoTopology(
        ingesters=replicas,
        # Unset: 3 (Tempo's vendored dskit ring/ring.go -distributor.replication-factor).
        replication_factor=int(_dig(data, "ingester", "lifecycler", "ring", "replication_factor", default=3)),
        max_block_duration_s=seconds(_dig(data, "ingester", "max_block_duration", default="30m")),
        max_block_bytes=float(_dig(data, "ingester", "max_block_bytes", default=TEMPO_MAX_BLOCK_BYTES)),
        compaction_window_s=seconds(_dig(data, "compactor", "compaction", "compaction_window", default="1h")),
        poll_s=seconds(_dig(data, "storage", "trace", "blocklist_poll", default="5m")),
        # An unsharded compactor owns every job, so each replica compacts every block and builds every index.
        compaction_copies=1 if sharded else replicas,
        builders=builders,
        readers=replicas - builders,
    )


def _flag(args: Sequence[str], name: str, default: float) -> float:
    value = next((a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")), None)
    return default if value is None else seconds(value)


def _thanos_topology(workloads: list[_Workload], charts: dict[str, dict]) -> Optional[ThanosTopology]:
    def role(name: str) -> list[_Workload]:
        return [w for w in workloads if w.args[:1] == [name]]

    sidecars, receivers, stores, compactors = role("sidecar"), role("receive"), role("store"), role("compact")
    if not (sidecars or receivers or stores or compactors):
        return None
    kps = _dig(charts.get("kube-prometheus-stack", {}), "prometheus", "prometheusSpec", default=None)
    # Prometheus itself: the only workload with --storage.tsdb.path (Receive's is --tsdb.path). In
    # receive mode no sidecar counts it; a plan without Prometheus workloads counts its sidecars.
    servers = sum(w.replicas for w in workloads if any(a.startswith("--storage.tsdb.path=") for a in w.args))
    prometheus = int(kps.get("replicas", 1)) if kps else max(1, servers or sum(w.replicas for w in sidecars))
    uploaders = sum(w.replicas for w in receivers) or (prometheus if kps and "thanos" in kps else sum(w.replicas for w in sidecars))
    return ThanosTopology(
        prometheus_replicas=prometheus,
        uploaders=max(1, uploaders),
        store_gateways=sum(w.replicas for w in stores),
        store_sync_s=_flag(stores[0].args, "sync-block-duration", THANOS_STORE_SYNC_S) if stores else THANOS_STORE_SYNC_S,
        compact_wait_s=_flag(compactors[0].args, "wait-interval", THANOS_COMPACT_WAIT_S) if compactors else THANOS_COMPACT_WAIT_S,
    )


def topology_from_plan(plan: engine.PlanResult, cfg: StackConfig) -> Topology:
    """The topology the program renders for a stack, read from its offline plan."""
    workloads, charts = _plan_workloads(plan)
    found = {"loki": _loki_topology(workloads, charts), "tempo": _tempo_topology(workloads, charts),
             "thanos": _thanos_topology(workloads, charts)}
    for tool in cfg.tools.owned():
        if found[tool] is None:
            raise CostError(f"stack '{plan.stack}': no {tool} workload found in the plan (no rendered config, chart or "
                            f"component args) to read the topology from")
    notes = []
    t = found["tempo"]
    if t is not None and t.compaction_copies > 1:
        notes.append(f"tempo: {t.compaction_copies} replicas run an unsharded compactor (no compactor.ring.kvstore in the "
                     f"rendered config), so each one compacts every block and writes every tenant index: counted "
                     f"{t.compaction_copies} times")
    return Topology(loki=found["loki"] or LokiTopology(), tempo=t or TempoTopology(), thanos=found["thanos"] or ThanosTopology(),
                    source=f"rendered by the program for stack {plan.stack} (offline plan)", notes=tuple(notes))


@functools.lru_cache(maxsize=None)
def _plan(stack: str) -> engine.PlanResult:
    try:
        return engine.run(stack)
    except engine.StrictMockError as error:
        raise CostError(f"stack '{stack}': the program does not plan under strict mocks: {str(error).splitlines()[0]}") from None


def stack_topology(stack: str, cfg: StackConfig) -> Topology:
    return topology_from_plan(_plan(stack), cfg)
