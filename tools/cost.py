"""Steady-state monthly cost of a stack's object storage, next to the block volumes it replaces.

    python -m tools.cost --stack local|staging|prod [--ingest logs=GB,traces=GB,metrics=SAMPLES]
        [--headroom 1.3] [--replicas 3] [--prices NAME|FILE] [--price KEY=VALUE]...
        [--assume KEY=VALUE]... [--from-prometheus URL [--window 1d]] [--spoke-metrics LABEL=N,...] [--json]

Ingest is given in the unit each tool receives and counts itself:
  logs     GB/day of raw log lines (Loki: loki_distributor_bytes_received_total),
  traces   GB/day of OTLP protobuf (Tempo: tempo_distributor_bytes_received_total),
  metrics  samples/s appended by one Prometheus (prometheus_tsdb_head_samples_appended_total).
Per-tool factors in ASSUMPTIONS (measured where marked) turn them into bytes in the bucket, and
the block-volume baseline is sized from the same stored bytes. GB means 2^30 bytes, as S3 bills
it; a month is 365/12 days.

The topology (ingesters, replication factors, pollers, chunk and block settings) is what the
program renders for the stack: the real program runs under the strict mock engine
(tools/engine.py) and the tool configs, chart values and replica counts are read from its plan.
`--from-prometheus` replaces ingest and factors with what a running stack reports and shows the
model next to the measured request rates. Every price is in tools/prices/*.yaml (--price).
Exit codes: 0 report printed; 2 bad stack config, price file, argument or Prometheus answer.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import math
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

from components import config, lifecycle
from components.config import StackConfig, Target
from tools import engine

PRICES_DIR = Path(__file__).resolve().parent / "prices"
DAYS_PER_MONTH = 365 / 12
SECONDS_PER_DAY = 86_400
MINUTES_PER_DAY = 24 * 60
GIB = 2**30
MIB = 2**20
MIB_PER_GIB = 1024
KIB_PER_GIB = 1024 * 1024
INTELLIGENT_TIERING = "INTELLIGENT_TIERING"
# Intelligent-Tiering moves an object that is not read to Infrequent Access after 30 days and to
# Archive Instant Access after 90; the report assumes old observability data is not read.
INT_TIERS = ((f"{INTELLIGENT_TIERING}/frequent", "gb_month", 0, 30),
             (f"{INTELLIGENT_TIERING}/infrequent", "infrequent_gb_month", 30, 90),
             (f"{INTELLIGENT_TIERING}/archive-instant", "archive_instant_gb_month", 90, math.inf))
# Classes that charge per GB read back.
RETRIEVAL_CLASSES = ("STANDARD_IA", "GLACIER_IR")
INGEST_OF = {"loki": "logs", "tempo": "traces", "thanos": "metrics"}
INGEST_UNITS = {"logs": "GB/day raw log bytes", "traces": "GB/day OTLP protobuf", "metrics": "samples/s"}
RULE_WARN_SHARE = 0.8

# Used when --ingest is omitted, in the units above. Rough sizes for a laptop, a staging cluster
# and a mid-size production; prod's 45,000 samples/s are the 7.3 GB/day metrics reference workload.
DEFAULT_INGEST = {
    "local": {"logs": 4.0, "traces": 2.0, "metrics": 3_000.0},
    "staging": {"logs": 75.0, "traces": 35.0, "metrics": 30_000.0},
    "prod": {"logs": 400.0, "traces": 170.0, "metrics": 45_000.0},
}
FALLBACK_INGEST = DEFAULT_INGEST["staging"]
DEFAULT_HEADROOM = 1.3
DEFAULT_REPLICAS = 3

# ---------------------------------------------------------------- what the pinned tools do
# Read in the source of the pinned versions. Loki: grafana/loki tag v3.7.6, the newest 3.7 tag in
# the reference snapshot (branch release-3.7.x at 2e1f7f2 has the same code in every file cited;
# the pin, 3.7.8, adds later patch fixes). Tempo: grafana/tempo tag v2.10.6. Thanos:
# thanos-io/thanos tag v0.42.4 and thanos-io/objstore 71d60dfee488 (its go.mod). Charts:
# grafana-community/helm-charts tags tempo-distributed-2.26.1 and loki-18.11.0.

# Loki pkg/ingester/ingester.go: -ingester.chunk-target-size (compressed bytes),
# -ingester.sync-period, -ingester.sync-min-utilization, -ingester.max-chunk-age. At each sync
# period boundary a chunk at least sync-min-utilization full is cut, so replicas cut alike.
LOKI_CHUNK_TARGET_BYTES = 1_572_864
LOKI_SYNC_PERIOD_S = 3_600
LOKI_SYNC_MIN_UTILIZATION = 0.1
LOKI_MAX_CHUNK_AGE_S = 7_200
# pkg/storage/stores/shipper/indexshipper/tsdb/head_manager.go defaultRotationPeriod: every
# ingester builds one TSDB file per 15-minute period holding all tenants, then ships it.
LOKI_TSDB_PERIOD_S = 900
# pkg/storage/stores/shipper/indexshipper/shipper.go -shipper.resync-interval: index readers
# re-list every table they hold (storage/cached_client.go: one LIST per table, cached 1 minute).
LOKI_RESYNC_S = 300
# pkg/compactor/config.go -compactor.compaction-interval. Each run LISTs the tables and then each
# table (compactor/tables_manager.go runCompaction, table.go compact).
LOKI_COMPACTION_INTERVAL_S = 600
# pkg/storage/stores/series_store_write.go PutOne skips a chunk only when it is in the chunk
# cache; without a cache shared by all ingesters (pkg/loki/config_wrapper.go enables a
# per-process embedded one) every replica PUTs its copy. Copies cut alike share one key.

# Tempo modules/ingester/config.go: a head block is cut after max_block_duration or max_block_bytes.
TEMPO_MAX_BLOCK_DURATION_S = 1_800
TEMPO_MAX_BLOCK_BYTES = 500 * MIB
# tempodb/config.go: DefaultBlocklistPoll, DefaultTenantIndexBuilders, compaction-window.
TEMPO_BLOCKLIST_POLL_S = 300
TEMPO_TENANT_INDEX_BUILDERS = 2
TEMPO_COMPACTION_WINDOW_S = 3_600
# tempodb/blockselector/compaction_block_selector.go DefaultMaxInputBlocks.
TEMPO_COMPACTION_MAX_INPUTS = 4
# The objects of a block: vparquet4/block.go DataFileName, encoding/common/block.go BloomName(0)
# and NameIndex, backend/raw.go MetaName. Measured: 4 objects per block. A block of more than
# about 85,000 traces has more bloom shards (common/config.go: 100 KiB each); not modelled.
TEMPO_BLOCK_OBJECTS = ("data.parquet", "bloom-0", "index", "meta.json")
# Ingesters upload a finished block with its size known; minio-go PutObject sends one PUT up to
# its minimum part size and a multipart upload above it (Tempo's vendored minio-go v7.1.0:
# constants.go minPartSize, api-put-object.go; backend/s3 leaves part_size at 0).
# Measured: ingester uploads go multipart above 16 MiB.
MINIO_PART_BYTES = 16 * MIB
# The compactor streams its output block: a multipart upload (create, complete) with one part per
# flush of tempodb/compactor.go DefaultFlushSizeBytes (backend/s3/s3.go Append, part_size 0).
TEMPO_COMPACTOR_FLUSH_BYTES = 20 * MIB
# backend/s3/compactor.go MarkBlockCompacted COPYs meta.json to meta.compacted.json and DELETEs
# meta.json for every input; ClearBlock later LISTs the block and DELETEs its objects.
# Measured: a compaction of 2 blocks into 1 cost 8 PUT-class requests, 2 DELETE and 17 GET.
TEMPO_COPIES_PER_INPUT = 1
# backend/raw.go WriteTenantIndex writes both forms of the tenant index on every poll.
TEMPO_TENANT_INDEX_OBJECTS = ("index.pb.zst", "index.json.gz")
# backend/raw.go Tenants: one LIST per poll; backend/s3/s3.go ListBlocks: the tenant's prefix in
# list_blocks_concurrency (s3/config.go default 3) key ranges, one LIST per 1,000 keys each.
# Measured: 4 LIST + 2 PUT per tenant per poll.
TEMPO_LIST_BLOCKS_CONCURRENCY = 3
S3_LIST_PAGE = 1_000
# tempo-distributed-2.26.1 values.yaml: ingester.config.replication_factor 3, storage.trace.
# blocklist_poll 5m, compactor.config.compaction.compaction_window 1h; its config template puts
# the compactor ring on memberlist. Tempo itself leaves the compactor unsharded unless a ring
# kvstore is set (modules/compactor/config.go; cmd/tempo/app/modules.go sets memberlist only for
# -target=scalable-single-binary), and single-binary queriers never poll (modules.go initQuerier).
TEMPO_CHART_REPLICATION_FACTOR = 3

# Thanos cmd/thanos/store.go --sync-block-duration, cmd/thanos/compact.go --wait-interval.
THANOS_STORE_SYNC_S = 900
THANOS_COMPACT_WAIT_S = 300
# thanos-io/objstore providers/s3/s3.go DefaultConfig.PartSize; Prometheus TSDB cuts chunk
# segment files at 512 MiB.
THANOS_PART_BYTES = 64 * MIB
THANOS_SEGMENT_BYTES = 512 * MIB

MEASUREMENT = (
    "Loki 3.7.6 and Tempo 2.10.6 binaries writing to a real S3-compatible server through this "
    "project's rendered local configs (one binary each, replication factor 1, one tenant): 9 minutes "
    "of steady load (Loki: 20 streams, 497,798 lines, 109,332,592 B at 202.5 kB/s; Tempo: 208,497 "
    "spans, 54,796,256 B of OTLP protobuf at 101.5 kB/s), a flush, then a restart with an empty "
    "local disk and a full read-back from the bucket"
)

ASSUMPTIONS: dict[str, float] = {
    # Measured: 28,563,356 B of chunks for 109,332,592 B pushed (gzip, Loki 3.7's default
    # chunk encoding, pkg/ingester/ingester.go -ingester.chunk-encoding).
    "loki.stored_ratio": 0.261,
    # Measured: chunks cut because full averaged 1,385,067 B, 0.88 of chunk_target_size.
    "loki.chunk_fill": 0.88,
    # Active streams over all tenants, one replica each (sum(loki_ingester_memory_streams)
    # divided by the replication factor). A guess; quiet streams cut small chunks every sync period.
    "loki.streams": 500,
    # Index tables (days) each index reader holds and re-lists: the days people query. A guess.
    "loki.queried_days": 2,
    # Measured: one block of 16,319,487 B for 54,796,256 B of OTLP protobuf.
    "tempo.stored_ratio": 0.298,
    # Measured: 17 GETs to compact 2 blocks.
    "tempo.compaction_gets_per_block": 8.5,
    # Prometheus docs/storage.md (v3.14.0): "an average of only 1-2 bytes per sample"; the upper
    # end leaves room for each 2h block's index.
    "thanos.bytes_per_sample": 2.0,
    # Prometheus instances scraping distinct targets (an HA pair counts once; its replicas come
    # from the topology).
    "thanos.sources": 1,
    # Downsampled size relative to raw for a 15-30 s scrape interval. Thanos' docs warn that
    # downsampled blocks can come close to raw size: measure with `thanos tools bucket inspect`.
    "thanos.ratio_5m": 0.3,
    "thanos.ratio_1h": 0.05,
    # Share of the data in STANDARD_IA / GLACIER_IR read back each month (retrieval fees). Queries
    # on recent data (STANDARD) are not modelled.
    "cold_read_share": 0.05,
    # AWS lifecycle default since 2024 (TransitionDefaultMinimumObjectSize all_storage_classes_128K,
    # not overridden by components/storage.py): smaller objects are never transitioned.
    "transition_min_object_kb": 128,
    # Data kept forever has no steady state; it is costed as it stands after this many days.
    "forever_days": 365,
}
MEASURED_ASSUMPTIONS = ("loki.stored_ratio", "loki.chunk_fill", "tempo.stored_ratio", "tempo.compaction_gets_per_block")
# Assumptions that may be zero; every other one is a size, count or interval the model divides by.
MAY_BE_ZERO = ("cold_read_share", "transition_min_object_kb", "loki.queried_days")

NOT_MODELLED = (
    "data transfer: the tools run in the bucket's region (AWS: S3 to EKS in one region is free only "
    "through an S3 gateway VPC endpoint; through a NAT gateway every GB also pays NAT processing; "
    "Hetzner: 1 TB/month egress is included, not checked against)",
    "query reads of recent data (STANDARD GETs); cold reads only as cold_read_share",
    "the compute and local disks (WAL, caches, compactor scratch space) of the tools themselves",
    "Loki's index files and Tempo's small objects as stored bytes (their requests are counted)",
)


class CostError(Exception):
    """A bad argument, price file, assumption or Prometheus answer, reported as one line."""


# ---------------------------------------------------------------- prices
def price_file_for(cfg: StackConfig) -> str:
    if cfg.target is Target.LOCAL:
        return "local"
    if cfg.target is Target.AWS:
        return f"aws-{cfg.storage.region}"
    return f"hetzner-{cfg.storage.region}"


def load_prices(name: str, overrides: Mapping[str, str] = {}) -> dict:
    """The price file `name` (tools/prices/<name>.yaml, or a path) with dotted-key overrides."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRICES_DIR / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PRICES_DIR.glob("*.yaml")))
        raise CostError(f"no price file {path}; add one or pass --prices (known: {known})")
    prices = yaml.safe_load(path.read_text())
    for key in ("provider", "region", "currency", "as_of", "source", "s3", "volume", "account"):
        if key not in prices:
            raise CostError(f"price file {path} has no '{key}'")
    if "STANDARD" not in prices["s3"]:
        raise CostError(f"price file {path} has no s3.STANDARD")
    for key, value in overrides.items():
        node = prices
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get(leaf), (int, float)) or isinstance(node.get(leaf), bool):
            raise CostError(f"--price {key}: {path.name} has no such price (keys look like s3.STANDARD.gb_month)")
        node[leaf] = _number(f"--price {key}", value)
    prices["file"] = str(path.relative_to(PRICES_DIR.parent.parent)) if path.is_relative_to(PRICES_DIR.parent.parent) else str(path)
    prices["overrides"] = dict(overrides)
    return prices


def _class_price(prices: dict, cls: str) -> dict:
    try:
        return prices["s3"][cls]
    except KeyError:
        raise CostError(f"price file {prices['file']} has no s3.{cls} (the bucket rules move data there)") from None


def _number(what: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise CostError(f"{what}: {value!r} is not a number") from None


def assumptions(overrides: Mapping[str, str] = {}) -> dict[str, float]:
    a = dict(ASSUMPTIONS)
    for key, value in overrides.items():
        if key not in a:
            raise CostError(f"--assume {key}: unknown (known: {', '.join(sorted(a))})")
        a[key] = _number(f"--assume {key}", value)
        if a[key] < 0 or (a[key] == 0 and key not in MAY_BE_ZERO):
            raise CostError(f"--assume {key}: must be {'zero or more' if key in MAY_BE_ZERO else 'more than zero'}")
    return a


def stored_gb_per_day(tool: str, ingest: float, a: Mapping[str, float]) -> float:
    """GB a day in the bucket (one copy, after the tool's compression) for ingest in INGEST_UNITS."""
    if tool == "loki":
        return ingest * a["loki.stored_ratio"]
    if tool == "tempo":
        return ingest * a["tempo.stored_ratio"]
    return ingest * SECONDS_PER_DAY * a["thanos.bytes_per_sample"] / GIB


# ---------------------------------------------------------------- topology, from the plan
@dataclass(frozen=True)
class LokiTopology:
    ingesters: int = 1
    replication_factor: int = 1
    chunk_target_bytes: float = LOKI_CHUNK_TARGET_BYTES
    compaction_interval_s: float = LOKI_COMPACTION_INTERVAL_S
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
                f"{self.compactors} compactor(s) every {self.compaction_interval_s / 60:g}m")


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
    return workloads, charts


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


def _loki_topology(workloads: list[_Workload], charts: dict[str, dict]) -> Optional[LokiTopology]:
    if "loki" in charts:
        v = charts["loki"]
        structured = _dig(v, "loki", "structuredConfig", default={})
        return LokiTopology(
            ingesters=int(_dig(v, "ingester", "replicas")),
            replication_factor=int(_dig(v, "loki", "commonConfig", "replication_factor", default=3)),
            chunk_target_bytes=float(_dig(structured, "ingester", "chunk_target_size", default=LOKI_CHUNK_TARGET_BYTES)),
            compaction_interval_s=seconds(_dig(structured, "compactor", "compaction_interval", default="10m")),
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
    prometheus = int(kps.get("replicas", 1)) if kps else max(1, sum(w.replicas for w in sidecars))
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


# ---------------------------------------------------------------- write patterns
def upload_requests(size: float, part: float) -> int:
    """PUT-class requests to upload one object of known size: one PUT, or create + parts + complete."""
    return 1 if size <= part else math.ceil(size / part) + 2


@dataclass(frozen=True)
class LokiPattern:
    """What Loki does to its bucket while `seconds` of logs arrive (counts, not rates)."""

    stored_bytes: float
    chunks: float  # chunk objects: the replicas' copies of a chunk share its key
    chunk_puts: float
    index_uploads: float  # TSDB files shipped by the ingesters
    compacted_uploads: float  # compacted per-tenant index files
    compactor_lists: float
    compactor_gets: float
    reader_lists: float
    reader_gets: float


def _chunks_per_sync_period(stored: float, target: float, full: float) -> float:
    """Chunks one stream cuts in a sync period in which it adds `stored` compressed bytes."""
    if stored <= 0:
        return 0.0
    threshold = LOKI_SYNC_MIN_UTILIZATION * target
    n_full, rest = divmod(stored, full)
    if n_full == 0 and rest < threshold:
        # A quiet stream's chunk spans periods until it passes the threshold at a boundary, or
        # reaches max_chunk_age.
        return 1 / min(math.ceil(threshold / stored), LOKI_MAX_CHUNK_AGE_S / LOKI_SYNC_PERIOD_S)
    # Full chunks, then the sync cut; a rest below the threshold carries into the next period.
    return n_full + (1 if rest >= threshold else rest / full)


def loki_chunks_per_stream(stored: float, duration_s: float, target: float, fill: float, final_flush: bool = False) -> float:
    """Chunks one stream cuts while adding `stored` compressed bytes over `duration_s` seconds.

    Chunks are cut when full (measured: at `fill` x chunk_target_size), at sync-period boundaries,
    and, with `final_flush`, once more at the end (a flush or shutdown cuts every open chunk).
    """
    full = fill * target
    periods = duration_s / LOKI_SYNC_PERIOD_S
    whole = math.floor(periods + 1e-9)
    per_period = stored / periods
    chunks = whole * _chunks_per_sync_period(per_period, target, full)
    rest = stored - whole * per_period
    if rest > 1e-6:
        chunks += math.ceil(rest / full) if final_flush else (periods - whole) * _chunks_per_sync_period(per_period, target, full)
    return chunks


def loki_pattern(received_bytes: float, duration_s: float, topo: LokiTopology, a: Mapping[str, float], *,
                 streams: float, tenants: int, tables: int, final_flush: bool = False) -> LokiPattern:
    stored = received_bytes * a["loki.stored_ratio"]
    chunks = streams * loki_chunks_per_stream(stored / streams, duration_s, topo.chunk_target_bytes, a["loki.chunk_fill"], final_flush)
    periods = duration_s / LOKI_TSDB_PERIOD_S
    # One file per ingester and period, every tenant's series in it.
    uploads = topo.ingesters * periods
    runs = duration_s / topo.compaction_interval_s
    # The periods end on the clock, so all ingesters' files of a period land in the same run: a run
    # finds new files once per period at most, and then writes one compacted index per tenant.
    found = min(runs, periods)
    compacted = topo.compactors * found * tenants
    # Each run LISTs the tables, then each table; it GETs every new file and the compacted index it merges.
    compactor_lists = topo.compactors * runs * (1 + tables)
    compactor_gets = topo.compactors * uploads + compacted
    held = min(a["loki.queried_days"], tables)
    reader_lists = topo.index_readers * held * duration_s / LOKI_RESYNC_S
    reader_gets = topo.index_readers * compacted if held > 0 else 0.0
    return LokiPattern(
        stored_bytes=stored, chunks=chunks, chunk_puts=chunks * (1 if topo.shared_chunk_cache else topo.replication_factor),
        index_uploads=uploads, compacted_uploads=compacted, compactor_lists=compactor_lists, compactor_gets=compactor_gets,
        reader_lists=reader_lists, reader_gets=reader_gets,
    )


@dataclass(frozen=True)
class Requests:
    put_class: float = 0.0  # PUT, COPY, POST, LIST
    get_class: float = 0.0  # GET, HEAD
    delete: float = 0.0  # free on S3 and Hetzner

    def __add__(self, other: "Requests") -> "Requests":
        return Requests(self.put_class + other.put_class, self.get_class + other.get_class, self.delete + other.delete)

    def __mul__(self, k: float) -> "Requests":
        return Requests(self.put_class * k, self.get_class * k, self.delete * k)


def tempo_block_upload(block_bytes: float) -> Requests:
    """An ingester's flush of one block: data.parquet with its size known, then the small objects."""
    return Requests(put_class=upload_requests(block_bytes, MINIO_PART_BYTES) + len(TEMPO_BLOCK_OBJECTS) - 1)


def tempo_compaction(inputs: int, output_bytes: float, a: Mapping[str, float]) -> Requests:
    """One compaction of `inputs` blocks into one block of `output_bytes`."""
    parts = max(1, math.ceil(output_bytes / TEMPO_COMPACTOR_FLUSH_BYTES))
    return Requests(
        # Streamed data.parquet (create, parts, complete), the other objects, a COPY per input.
        put_class=2 + parts + len(TEMPO_BLOCK_OBJECTS) - 1 + TEMPO_COPIES_PER_INPUT * inputs,
        get_class=a["tempo.compaction_gets_per_block"] * inputs,
        delete=inputs,
    )


def tempo_poll(tenants: int, builders: int, readers: int, keys_per_tenant: float = 0) -> tuple[float, float, float]:
    """(LIST, PUT, GET) of one blocklist poll by every poller."""
    pages = max(1, math.ceil(keys_per_tenant / TEMPO_LIST_BLOCKS_CONCURRENCY / S3_LIST_PAGE))
    lists = (builders + readers) + builders * tenants * TEMPO_LIST_BLOCKS_CONCURRENCY * pages
    puts = builders * tenants * len(TEMPO_TENANT_INDEX_OBJECTS)
    return lists, puts, readers * tenants


def tempo_compaction_levels(blocks: float) -> list[tuple[float, float]]:
    """(jobs, input blocks) per level to merge `blocks` blocks of one window into one."""
    levels = []
    while blocks > 1:
        jobs = math.ceil(blocks / TEMPO_COMPACTION_MAX_INPUTS)
        levels.append((jobs, blocks))
        blocks = jobs
    return levels


@dataclass(frozen=True)
class TempoPattern:
    """What Tempo does to its bucket while `seconds` of traces arrive (counts, not rates)."""

    stored_bytes: float
    blocks: float  # blocks the ingesters flush, each replica its own
    block_bytes: float
    block_requests: Requests
    compactions: float
    compacted_bytes: float  # final block size per tenant and window
    compaction_requests: Requests
    compaction_levels: int
    polls: float
    poll_lists: float
    poll_puts: float
    poll_gets: float


def tempo_pattern(received_bytes: float, duration_s: float, topo: TempoTopology, a: Mapping[str, float], *,
                  tenants: int, retention_days: float = 0, final_flush: bool = False) -> TempoPattern:
    stored = received_bytes * a["tempo.stored_ratio"]
    rf = topo.replication_factor
    per_ingester = stored * rf / topo.ingesters / tenants
    cuts = max(duration_s / topo.max_block_duration_s, per_ingester / topo.max_block_bytes)
    if final_flush:
        cuts = math.ceil(cuts)
    blocks = topo.ingesters * tenants * cuts
    block_bytes = stored * rf / blocks
    windows = tenants * max(1.0, duration_s / topo.compaction_window_s)
    levels = tempo_compaction_levels(blocks / windows)
    compaction = Requests()
    compactions = 0.0
    window_bytes = stored / windows
    for jobs, inputs in levels:
        compaction += tempo_compaction(inputs / jobs, window_bytes / jobs, a) * jobs
        compactions += jobs
    # Every compacted input is cleared later, and the final block when retention ends (ClearBlock:
    # a LIST, then its objects deleted).
    cleared = sum(inputs for _, inputs in levels)
    compaction += Requests(put_class=cleared + 1, delete=(cleared + 1) * len(TEMPO_BLOCK_OBJECTS))
    compaction = compaction * windows * topo.compaction_copies
    compactions *= windows * topo.compaction_copies
    polls = duration_s / topo.poll_s
    alive = SECONDS_PER_DAY / topo.compaction_window_s * retention_days
    lists, puts, gets = tempo_poll(tenants, topo.builders, topo.readers, alive * len(TEMPO_BLOCK_OBJECTS))
    # Builders also read meta.json of every new block and meta.compacted.json of every compacted one.
    new_metas = topo.builders * (blocks + compactions + cleared * windows * topo.compaction_copies)
    return TempoPattern(
        stored_bytes=stored, blocks=blocks, block_bytes=block_bytes, block_requests=tempo_block_upload(block_bytes) * blocks,
        compactions=compactions, compacted_bytes=window_bytes, compaction_requests=compaction, compaction_levels=len(levels),
        polls=polls, poll_lists=lists * polls, poll_puts=puts * polls, poll_gets=gets * polls + new_metas,
    )


# ---------------------------------------------------------------- what each tool keeps and requests
@dataclass(frozen=True)
class Stream:
    """Data a tool keeps in final objects, written at a steady rate, deleted at a fixed object age."""

    name: str
    gb_per_day: float
    # Object age in days at which the tool deletes it; None: kept forever.
    life_days: Optional[float]
    # Final data objects written per day; 0 when unknown (then taken as large objects).
    objects_per_day: float = 0.0
    # GB in STANDARD held by objects compaction rewrites later, and by their delete-delay copies.
    pending_gb: float = 0.0
    # GB/day deleted or overwritten; on a versioned bucket it stays as noncurrent versions.
    rewritten_gb_per_day: float = 0.0

    @property
    def object_kb(self) -> Optional[float]:
        return self.gb_per_day * KIB_PER_GIB / self.objects_per_day if self.objects_per_day else None


@dataclass(frozen=True)
class RequestLine:
    what: str
    # PUT, COPY, POST and LIST share one price on S3; GET and HEAD the other.
    put_list_per_day: float = 0.0
    get_per_day: float = 0.0


@dataclass(frozen=True)
class ToolLoad:
    stored_gb_per_day: float
    streams: tuple[Stream, ...]
    requests: tuple[RequestLine, ...]
    # Days of raw data the same retention keeps on block volumes (no downsampling there).
    baseline_days: float
    notes: tuple[str, ...] = ()
    # Objects the model expects a day, next to what the tools' own metrics count.
    figures: Mapping[str, float] = field(default_factory=dict)


def _days(hours: Optional[int]) -> Optional[float]:
    return None if hours is None else hours / 24


def loki_load(cfg: StackConfig, logs_gb: float, a: Mapping[str, float], topo: LokiTopology) -> ToolLoad:
    tool = cfg.tools.loki
    served = _days(tool.served_hours())
    # One index table per day (schema period 24h) from the oldest served day to today.
    tables = math.ceil(served) + 1
    p = loki_pattern(logs_gb * GIB, SECONDS_PER_DAY, topo, a, streams=a["loki.streams"], tenants=len(cfg.tenants), tables=tables)
    gb = p.stored_bytes / GIB
    notes = []
    overwritten = 0.0
    if topo.replication_factor > 1 and not topo.shared_chunk_cache:
        # Replicas cut alike (sync_period), so their copies share a key: stored once, PUT by each.
        overwritten = gb * (topo.replication_factor - 1)
        if cfg.storage.versioning:
            notes.append(f"each chunk is PUT by {topo.replication_factor} ingesters under one key; on this versioned bucket the "
                         f"{topo.replication_factor - 1} overwrites stay as noncurrent versions for "
                         f"{cfg.storage.noncurrent_version_days} days (counted)")
    return ToolLoad(
        stored_gb_per_day=gb,
        streams=(Stream("chunks", gb, served, objects_per_day=p.chunks, rewritten_gb_per_day=overwritten),),
        requests=(
            RequestLine(f"chunk flushes ({p.stored_bytes / p.chunks / MIB:.2f} MiB each, PUT {p.chunk_puts / p.chunks:g}x)",
                        put_list_per_day=p.chunk_puts),
            RequestLine("TSDB index uploads (per ingester, 15 min)", put_list_per_day=p.index_uploads),
            RequestLine("index compaction (per tenant, runs with uploads)", put_list_per_day=p.compacted_uploads + p.compactor_lists,
                        get_per_day=p.compactor_gets),
            RequestLine("index readers (re-list held tables, fetch new index)", put_list_per_day=p.reader_lists, get_per_day=p.reader_gets),
        ),
        baseline_days=tool.retention_days,
        notes=tuple(notes),
        figures={"chunks": p.chunks},
    )


def tempo_load(cfg: StackConfig, traces_gb: float, a: Mapping[str, float], topo: TempoTopology) -> ToolLoad:
    tool = cfg.tools.tempo
    tenants = len(cfg.tenants)
    p = tempo_pattern(traces_gb * GIB, SECONDS_PER_DAY, topo, a, tenants=tenants, retention_days=tool.retention_days)
    gb = p.stored_bytes / GIB
    rf = topo.replication_factor
    window_h = topo.compaction_window_s / 3600
    # The rf copies live until their window is compacted, then compacted_block_retention longer.
    pending = gb * rf * (window_h + tool.delete_delay_hours) / 24
    final_blocks = tenants * SECONDS_PER_DAY / topo.compaction_window_s
    return ToolLoad(
        stored_gb_per_day=gb,
        streams=(Stream("blocks", gb, _days(tool.served_hours()), objects_per_day=final_blocks, pending_gb=pending,
                        rewritten_gb_per_day=gb * (rf + p.compaction_levels - 1)),),
        requests=(
            RequestLine(f"ingester blocks ({rf} cop{'y' if rf == 1 else 'ies'}, {p.block_bytes / MIB:.1f} MiB each)", put_list_per_day=p.block_requests.put_class),
            RequestLine(f"compaction into {p.compacted_bytes / MIB:.1f} MiB blocks ({p.compaction_levels} level(s))",
                        put_list_per_day=p.compaction_requests.put_class, get_per_day=p.compaction_requests.get_class),
            RequestLine("blocklist polling (per tenant)", put_list_per_day=p.poll_lists + p.poll_puts, get_per_day=p.poll_gets),
        ),
        baseline_days=tool.retention_days,
        figures={"blocks": p.blocks},
    )


# Thanos compaction ranges in days: 2h blocks from the sidecar, rewritten to 8h, 2d and 14d.
THANOS_LEVELS = (2 / 24, 8 / 24, 2.0, 14.0)


def _final_range(first: float, keep: Optional[float]) -> float:
    """The largest block range that forms before retention deletes the blocks it is made of."""
    ranges = [r for r in THANOS_LEVELS if r >= first and (keep is None or r <= keep)]
    return ranges[-1] if ranges else first


def thanos_load(cfg: StackConfig, samples_per_s: float, a: Mapping[str, float], topo: ThanosTopology) -> ToolLoad:
    tool = cfg.tools.thanos
    # A hub's bucket holds its spokes' samples too, each spoke a source of blocks of its own.
    gb_per_day = stored_gb_per_day("thanos", samples_per_s + topo.spoke_samples_per_s, a)
    delay = tool.delete_delay_hours / 24
    sources = a["thanos.sources"] + topo.spokes
    part, segment = THANOS_PART_BYTES / MIB, THANOS_SEGMENT_BYTES / MIB
    r = tool.retention
    keep = {"raw": r.raw_days or None, "5m": r.five_minute_days or None, "1h": r.one_hour_days or None}
    notes: list[str] = []

    def block_mb(gb: float, range_days: float) -> float:
        return gb * MIB_PER_GIB * range_days / sources

    def segments(size_mb: float) -> int:
        return max(1, math.ceil(size_mb / segment))

    def block_puts(size_mb: float) -> float:
        # Chunk segment files (multipart when large), then index and meta.json.
        n = segments(size_mb)
        return n * upload_requests(size_mb / n, part) + 2

    def block_objects(size_mb: float) -> int:
        return segments(size_mb) + 2

    streams: list[Stream] = []
    requests: list[RequestLine] = []
    blocks_per_day = 0.0
    blocks_alive = 0.0
    # (resolution, GB/day, range of its first block, what that block is made from)
    plan = [("raw", gb_per_day, THANOS_LEVELS[0], None)]
    raw_final = _final_range(THANOS_LEVELS[0], keep["raw"])
    if raw_final >= 2:
        plan.append(("5m", gb_per_day * a["thanos.ratio_5m"], 2.0, ("raw", gb_per_day, 2.0)))
        if _final_range(2.0, keep["5m"]) >= 14:
            plan.append(("1h", gb_per_day * a["thanos.ratio_1h"], 14.0, ("5m", gb_per_day * a["thanos.ratio_5m"], 14.0)))
        else:
            notes.append("1h resolution is never produced: it needs 14d blocks of 5m data (5m retention >= 14 days)")
    else:
        notes.append("5m and 1h resolutions are never produced: raw blocks are deleted before reaching 2d")
    uploads = sources * topo.uploaders
    if tool.mode == "receive":
        notes.append(f"receive mode: each 2h block is uploaded by {topo.uploaders} replicas "
                     "(counted in requests); the compactor is assumed to deduplicate (--deduplication.replica-label)")
    elif topo.uploaders > 1:
        notes.append(f"{topo.uploaders} Prometheus replicas each upload their own 2h blocks until the compactor merges "
                     "them (--deduplication.replica-label): counted in requests and in the raw data waiting for compaction")
    for name, gb, first, source in plan:
        final = _final_range(first, keep[name])
        levels = [x for x in THANOS_LEVELS if first < x <= final]
        life = None if keep[name] is None else keep[name] + delay
        size = block_mb(gb, final)
        # Data waits in smaller blocks for about half the final range; each rewrite leaves the
        # source blocks for --delete-delay before the compactor deletes them. The replicas' copies
        # of raw 2h blocks wait for the first compaction.
        copies = (uploads / sources - 1) if source is None and levels else 0
        streams.append(Stream(
            name, gb, life,
            objects_per_day=sources / final * (segments(size) + 1),
            pending_gb=gb * ((final - first) / 2 + len(levels) * delay) + gb * copies * ((levels[0] - first) / 2 + delay if levels else 0),
            rewritten_gb_per_day=gb * (len(levels) + copies),
        ))
        if source is None:
            requests.append(RequestLine("uploads of 2h blocks", put_list_per_day=uploads * 12 * block_puts(block_mb(gb, first))))
        else:
            src_name, src_gb, src_range = source
            n = sources / src_range
            requests.append(RequestLine(f"downsampling {src_name} {src_range:g}d blocks to {name}",
                                        put_list_per_day=n * block_puts(block_mb(gb, first)),
                                        get_per_day=n * block_objects(block_mb(src_gb, src_range))))
        previous = first
        for i, level in enumerate(levels):
            n_src = (uploads if source is None and i == 0 else sources) / previous
            requests.append(RequestLine(
                f"compaction of {name} to {_range_text(level)} blocks",
                # New block, plus a deletion-mark.json on every source block.
                put_list_per_day=sources / level * block_puts(block_mb(gb, level)) + n_src,
                get_per_day=n_src * block_objects(block_mb(gb, previous)),
            ))
            blocks_per_day += sources / level
            previous = level
        blocks_per_day += uploads / first if source is None else sources / first
        blocks_alive += sources / final * (life if life is not None else a["forever_days"])
    pages = max(1, math.ceil(blocks_alive / 1000))
    syncs = topo.store_gateways * SECONDS_PER_DAY / topo.store_sync_s + SECONDS_PER_DAY / topo.compact_wait_s
    # Store gateways and the compactor LIST the bucket each sync and fetch meta.json of new blocks.
    requests.append(RequestLine("bucket sync (store gateways, compactor)", put_list_per_day=syncs * pages,
                                get_per_day=(topo.store_gateways + 1) * blocks_per_day))
    days = [d for d in keep.values()]
    return ToolLoad(
        stored_gb_per_day=gb_per_day,
        streams=tuple(streams),
        requests=tuple(requests),
        baseline_days=a["forever_days"] if None in days else max(days),
        notes=tuple(notes),
    )


def _range_text(days: float) -> str:
    return f"{days * 24:g}h" if days < 1 else f"{days:g}d"


def tool_load(cfg: StackConfig, tool: str, ingest: float, a: Mapping[str, float], topo: Topology) -> ToolLoad:
    if tool == "loki":
        return loki_load(cfg, ingest, a, topo.loki)
    if tool == "tempo":
        return tempo_load(cfg, ingest, a, topo.tempo)
    return thanos_load(cfg, ingest, a, topo.thanos)


# ---------------------------------------------------------------- bucket rules
@dataclass(frozen=True)
class BucketRules:
    """What the bucket itself does to a tool's data, read from components.lifecycle.plan."""

    transitions: tuple[tuple[int, str], ...] = ()
    expire_days: Optional[int] = None
    # Versioned bucket: deleted objects stay this many days as noncurrent versions.
    noncurrent_days: Optional[int] = None
    rule_count: int = 0
    data_rule: str = ""


def bucket_rules(cfg: StackConfig, tool: str) -> BucketRules:
    plan = lifecycle.plan(cfg, tool)
    data = [rule for rule in plan.rules if rule.id.startswith(f"{tool}-data-")]
    noncurrent = [rule.noncurrent_days for rule in plan.rules if rule.noncurrent_days]
    first = data[0] if data else None
    return BucketRules(
        transitions=first.transitions if first else (),
        expire_days=first.expire_days if first else None,
        noncurrent_days=noncurrent[0] if noncurrent else None,
        rule_count=len(plan.rules),
        data_rule=f"{first.id} on {first.prefix!r}" + (f" (+{len(data) - 1} more, one per tenant)" if len(data) > 1 else "") if first else "",
    )


def class_spans(end: float, transitions: Sequence[tuple[float, str]]) -> list[tuple[str, float, float]]:
    """(class, start, stop) object-age spans from creation to deletion at `end`."""
    spans: list[tuple[str, float, float]] = []
    start, cls = 0.0, "STANDARD"
    for day, nxt in sorted(transitions):
        if day >= end:
            break
        spans.append((cls, start, day))
        start, cls = day, nxt
    spans.append((cls, start, end))
    return spans


# ---------------------------------------------------------------- pricing
COST_KEYS = ("storage", "requests", "transitions", "minimum_charges", "monitoring", "retrieval")


@dataclass
class Priced:
    gb: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cost: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COST_KEYS, 0.0))
    forever: bool = False

    def add(self, other: "Priced") -> None:
        for cls, gb in other.gb.items():
            self.gb[cls] += gb
        for key, value in other.cost.items():
            self.cost[key] += value
        self.forever = self.forever or other.forever


def price_stream(s: Stream, rules: BucketRules, prices: dict, a: Mapping[str, float]) -> Priced:
    """Steady state of one stream in its bucket: GB per class and what they cost a month."""
    out = Priced()
    ends = [d for d in (s.life_days, rules.expire_days) if d is not None]
    out.forever = not ends
    end = min(ends) if ends else a["forever_days"]
    small = s.object_kb is not None and s.object_kb < a["transition_min_object_kb"]
    spans = class_spans(end, () if small else rules.transitions)
    noncurrent = rules.noncurrent_days or 0
    for i, (cls, start, stop) in enumerate(spans):
        p = _class_price(prices, cls)
        current = stop - start
        # A deleted object stays, noncurrent, in the class it was deleted from.
        kept = current + (noncurrent if i == len(spans) - 1 else 0)
        if cls == INTELLIGENT_TIERING:
            for tier, price_key, lo, hi in INT_TIERS:
                days = max(0.0, min(kept, hi) - lo)
                out.gb[tier] += s.gb_per_day * days
                out.cost["storage"] += s.gb_per_day * days * p[price_key]
            if s.object_kb is None or s.object_kb >= p["min_monitored_kb"]:
                out.cost["monitoring"] += s.objects_per_day * kept * p["monitoring_per_1000_objects"] / 1000
        else:
            out.gb[cls] += s.gb_per_day * kept
            out.cost["storage"] += s.gb_per_day * kept * p["gb_month"]
        # Leaving a class early still bills its minimum duration; small objects bill a minimum size.
        short = max(0.0, p.get("min_days", 0) - kept)
        out.cost["minimum_charges"] += s.gb_per_day * short * p["gb_month"]
        if s.object_kb is not None and s.object_kb < p.get("min_object_kb", 0):
            missing_gb = s.objects_per_day * max(kept, p.get("min_days", 0)) * (p["min_object_kb"] - s.object_kb) / KIB_PER_GIB
            out.cost["minimum_charges"] += missing_gb * p["gb_month"]
        if i > 0:
            out.cost["transitions"] += s.objects_per_day * DAYS_PER_MONTH * p["transition_per_1000"] / 1000
        if cls in RETRIEVAL_CLASSES:
            share = a["cold_read_share"]
            out.cost["retrieval"] += share * s.gb_per_day * current * p["retrieval_per_gb"]
            out.cost["retrieval"] += share * s.objects_per_day * current * p["get_per_1000"] / 1000
    standard = _class_price(prices, "STANDARD")
    working = s.pending_gb + s.rewritten_gb_per_day * noncurrent
    out.gb["STANDARD"] += working
    out.cost["storage"] += working * standard["gb_month"]
    return out


def price_requests(lines: Sequence[RequestLine], prices: dict) -> list[dict]:
    standard = _class_price(prices, "STANDARD")
    out = []
    for line in lines:
        puts, gets = line.put_list_per_day * DAYS_PER_MONTH, line.get_per_day * DAYS_PER_MONTH
        out.append({"what": line.what, "put_list_per_month": puts, "get_per_month": gets,
                    "cost": puts * standard["put_per_1000"] / 1000 + gets * standard["get_per_1000"] / 1000})
    return out


def baseline_cost(gb: float, prices: dict, headroom: float, replicas: float) -> float:
    """The same GB on block volumes: provisioned with headroom, once per replica."""
    return gb * headroom * replicas * prices["volume"]["gb_month"]


def saving_ratio(object_cost: float, baseline: float) -> Optional[float]:
    """Share of the block-volume cost that object storage saves; None when nothing is billed."""
    return None if baseline <= 0 else 1 - object_cost / baseline


def estimate(cfg: StackConfig, ingest: Mapping[str, float], prices: dict, a: Mapping[str, float],
             headroom: float, replicas: float, topo: Topology) -> dict:
    """Unrounded figures per tool and in total, for ingest in INGEST_UNITS."""
    tools: dict[str, dict] = {}
    # Buckets this stack owns: a Thanos spoke's metrics are its hub's to pay for.
    for name, tool_cfg in cfg.tools.owned().items():
        load = tool_load(cfg, name, ingest[INGEST_OF[name]], a, topo)
        gb_per_day = load.stored_gb_per_day
        rules = bucket_rules(cfg, name)
        priced = Priced()
        for stream in load.streams:
            priced.add(price_stream(stream, rules, prices, a))
        request_lines = price_requests(load.requests, prices)
        priced.cost["requests"] = sum(line["cost"] for line in request_lines)
        total = sum(priced.cost.values())
        # The volumes would hold the same stored bytes: the tools compress alike on a filesystem.
        base_gb = gb_per_day * load.baseline_days * headroom * replicas
        base = baseline_cost(gb_per_day * load.baseline_days, prices, headroom, replicas)
        tools[name] = {
            "bucket": tool_cfg.bucket, "ingest": INGEST_OF[name], "ingest_value": ingest[INGEST_OF[name]],
            "gb_per_day": gb_per_day,
            "gb_by_class": {cls: gb for cls, gb in priced.gb.items() if gb > 0},
            "gb_total": sum(priced.gb.values()),
            "cost": {**priced.cost, "total": total},
            "request_lines": request_lines,
            "baseline": {"gb": base_gb, "cost": base},
            "saving_ratio": saving_ratio(total, base),
            "forever": priced.forever,
            "rules": rules,
            "notes": list(load.notes),
            "figures": dict(load.figures),
        }
    gb = sum(t["gb_total"] for t in tools.values())
    account = prices["account"]
    credit = min(gb, account["included_gb"]) * _class_price(prices, "STANDARD")["gb_month"]
    object_total = sum(t["cost"]["total"] for t in tools.values()) + account["base_month"] - credit
    base_total = sum(t["baseline"]["cost"] for t in tools.values())
    return {
        "tools": tools,
        "account": {"base_month": account["base_month"], "included_gb": account["included_gb"], "included_credit": credit},
        "total": {"gb": gb, "object_storage": object_total, "baseline_gb": sum(t["baseline"]["gb"] for t in tools.values()),
                  "baseline": base_total, "saving_ratio": saving_ratio(object_total, base_total)},
    }


# ---------------------------------------------------------------- retention timeline
def timeline(retentions: Mapping[str, Optional[float]], transitions: Sequence[tuple[int, str]],
             expire_days: Optional[int], noncurrent_days: Optional[int] = None,
             min_days: Mapping[str, int] = {}, gb_month: Mapping[str, float] = {}) -> dict:
    """Events by object age (days) for a tool's data, and what is wrong with them.

    `retentions`: per kind of data, the age at which the tool stops serving and deletes it
    (None = forever). Plain data on purpose: it also judges rules the config model would refuse.
    `gb_month`: storage price per class, to tell whether a transition billed a minimum duration
    still costs less than staying in the class it leaves.
    """
    events: list[tuple[float, str]] = [(0.0, "written in STANDARD")]
    problems: list[str] = []
    notes: list[str] = []
    finite = [d for d in retentions.values() if d is not None]
    last_served = None if len(finite) < len(retentions) else max(finite, default=0.0)
    ends = {label: min(d for d in (served, expire_days) if d is not None) if (served, expire_days) != (None, None) else None
            for label, served in retentions.items()}
    for day, cls in sorted(transitions):
        reached = [label for label, end in ends.items() if end is None or day < end]
        if not reached:
            events.append((day, f"(moves to {cls}: never reached, every object is deleted before)"))
            continue
        events.append((day, f"moves to {cls} (bucket rule)" + ("" if len(reached) == len(ends) else f" for {', '.join(reached)}")))
        if cls in config.ARCHIVE_CLASSES:
            for label in reached:
                served = retentions[label]
                if served is None or day < served:
                    until = "forever" if served is None else f"until day {served:g}"
                    problems.append(f"{label}: unreadable from day {day:g} ({cls} needs a restore; queriers get "
                                    f"403 InvalidObjectState) while the tool serves it {until}")
    for label, served in retentions.items():
        if served is None:
            events.append((math.inf, f"{label}: kept and queryable forever (no tool deletion)"))
        else:
            events.append((served, f"{label}: last queryable, deleted by the tool (retention + delete delay)"))
    if expire_days is not None:
        events.append((float(expire_days), "bucket rule expires what is left (safety net)"))
        for label, served in retentions.items():
            if served is None or expire_days <= served:
                until = "forever" if served is None else f"day {served:g}"
                problems.append(f"{label}: the bucket rule deletes it at day {expire_days}, before the tool's own "
                                f"retention ends ({until}): queries return gaps")
    if noncurrent_days:
        for label, end in ends.items():
            if end is not None:
                events.append((end + noncurrent_days, f"{label}: noncurrent versions expire (versioned bucket, {noncurrent_days}d)"))
    for label, end in ends.items():
        if end is None:
            continue
        spans = class_spans(end, transitions)
        for i, (cls, start, stop) in enumerate(spans):
            kept = stop - start + ((noncurrent_days or 0) if stop == end else 0)
            minimum = min_days.get(cls, 0)
            if kept < minimum:
                left = spans[i - 1][0] if i else None
                note = f"{label}: {kept:g} days in {cls}, billed {minimum} (minimum duration): "
                # A class cheap enough beats staying put even when billed its whole minimum.
                if left in gb_month and cls in gb_month and minimum * gb_month[cls] < kept * gb_month[left]:
                    note += (f"still less than {kept:g} days in {left} ({minimum} x {gb_month[cls]:g} < "
                             f"{kept:g} x {gb_month[left]:g} per GB)")
                else:
                    note += f"the transition at day {start:g} costs more than it saves"
                notes.append(note)
    if last_served is None and expire_days is None:
        notes.append("some data is kept forever: storage grows without bound")
    events.sort(key=lambda e: e[0])
    return {"events": [{"day": None if math.isinf(d) else d, "event": text} for d, text in events],
            "problems": problems, "notes": notes}


def tool_retentions(cfg: StackConfig, tool: str) -> dict[str, Optional[float]]:
    t = cfg.tools.enabled()[tool]
    if tool != "thanos":
        return {"chunks" if tool == "loki" else "blocks": _days(t.served_hours())}
    delay = t.delete_delay_hours / 24
    r = t.retention
    return {label: (days + delay if days else None) for label, days in
            (("raw", r.raw_days), ("5m", r.five_minute_days), ("1h", r.one_hour_days))}


# ---------------------------------------------------------------- scale checks
def scale_checks(cfg: StackConfig, ingest: Mapping[str, float], prices: dict, a: Mapping[str, float],
                 headroom: float, replicas: float, topo: Topology) -> dict:
    enabled = cfg.tools.owned()
    warnings: list[str] = []
    limit_applies = cfg.target is Target.AWS
    limit = config.S3_MAX_LIFECYCLE_RULES
    rules = {tool: len(lifecycle.plan(cfg, tool).rules) for tool in enabled}
    for tool, count in rules.items():
        if limit_applies and count > limit:
            warnings.append(f"{tool} bucket needs {count} lifecycle rules; S3 refuses more than {limit}")
        elif limit_applies and count >= RULE_WARN_SHARE * limit:
            warnings.append(f"{tool} bucket uses {count} of the {limit} lifecycle rules S3 allows")
    per_tenant = [tool for tool in ("loki", "tempo") if tool in enabled
                  and len(lifecycle.plan(_with_tenants(cfg, 2), tool).rules) > len(lifecycle.plan(_with_tenants(cfg, 1), tool).rules)]
    room = None
    if per_tenant and limit_applies:
        fixed = max(rules[t] - len(cfg.tenants) for t in per_tenant)
        room = limit - fixed
    names = {spec.bucket: config.bucket_name_problem(spec.bucket) or "ok" for spec in enabled.values()}
    warnings += [f"bucket {name}: {problem}" for name, problem in names.items() if problem != "ok"]
    growth = []
    for factor in (1, 2, 5):
        grown = replace(topo, thanos=replace(topo.thanos, spoke_samples_per_s=topo.thanos.spoke_samples_per_s * factor))
        e = estimate(cfg, {k: v * factor for k, v in ingest.items()}, prices, a, headroom, replicas, grown)
        growth.append({"factor": factor, "object_storage": e["total"]["object_storage"], "baseline": e["total"]["baseline"],
                       "saving_ratio": e["total"]["saving_ratio"]})
    tenant_rows = []
    for n in sorted({len(cfg.tenants), 10, 100, 1000}):
        scaled = _with_tenants(cfg, n)
        e = estimate(scaled, ingest, prices, a, headroom, replicas, topo)
        counts = {tool: len(lifecycle.plan(scaled, tool).rules) for tool in ("loki", "tempo") if tool in enabled}
        requests = sum(e["tools"][tool]["cost"]["requests"] for tool in counts)
        tenant_rows.append({"tenants": n, "loki_rules": counts.get("loki"), "tempo_rules": counts.get("tempo"),
                            "loki_tempo_requests": requests, "object_storage": e["total"]["object_storage"],
                            "over_rule_limit": limit_applies and max(counts.values(), default=0) > limit})
    return {"lifecycle_rules": rules, "rule_limit": limit if limit_applies else None, "per_tenant_rules": per_tenant,
            "tenant_room": room, "bucket_names": names, "ingest_growth": growth, "tenants": tenant_rows,
            "warnings": warnings}


def _with_tenants(cfg: StackConfig, n: int) -> StackConfig:
    """The same stack with n tenants (the first ones kept), for what-if rows; not re-validated."""
    current = [t for t in cfg.tenants if t != "fake"] if n > 1 else cfg.tenants[:1]
    tenants = (current + [f"tenant-{i:04d}" for i in range(1, n + 1)])[:n]
    return cfg.model_copy(update={"tenants": tenants})


# ---------------------------------------------------------------- the stack's own metrics
# Metric names as the pinned tools define them (tags as above):
PROMETHEUS_QUERIES = {
    # Loki pkg/loghttp/push/push.go: uncompressed bytes received, per tenant.
    "loki.received": "sum(rate(loki_distributor_bytes_received_total[{w}]))",
    # Loki pkg/ingester/metrics.go: bytes and chunks each ingester stored (every replica counts).
    "loki.stored": "sum(rate(loki_ingester_chunk_stored_bytes_total[{w}]))",
    "loki.chunks": "sum(rate(loki_ingester_chunks_stored_total[{w}]))",
    # Loki pkg/ingester/instance.go: streams held in memory, per ingester.
    "loki.streams": "sum(loki_ingester_memory_streams)",
    # Loki pkg/storage/chunk/client/aws/s3_storage_client.go: one observation per S3 request.
    "loki.requests": "sum by (operation) (rate(loki_s3_request_duration_seconds_count[{w}]))",
    # Tempo modules/distributor/distributor.go: proto bytes received, per tenant.
    "tempo.received": "sum(rate(tempo_distributor_bytes_received_total[{w}]))",
    # Tempo modules/ingester/flush.go: size of each flushed block and the number of blocks.
    "tempo.flushed": "sum(rate(tempo_ingester_flush_size_bytes_sum[{w}]))",
    "tempo.blocks": "sum(rate(tempo_ingester_blocks_flushed_total[{w}]))",
    # Tempo tempodb/backend/instrumentation/backend_transports.go: per HTTP method.
    "tempo.requests": "sum by (operation) (rate(tempodb_backend_request_duration_seconds_count[{w}]))",
    # Prometheus tsdb/head.go (v3.14.0).
    "thanos.samples": "sum(rate(prometheus_tsdb_head_samples_appended_total[{w}]))",
    # thanos-io/objstore objstore.go objstore_bucket_operations_total, registered with the thanos_
    # prefix by cmd/thanos (compact.go, store.go, sidecar.go).
    "thanos.requests": "sum by (operation) (rate(thanos_objstore_bucket_operations_total[{w}]))",
}
# The operation label of each client, by S3 price class. Tempo's label is the HTTP method, so its
# LISTs count as GETs; Thanos counts a multipart upload once and a listing once per Iter call.
REQUEST_CLASS = {
    "loki": {"S3.PutObject": "put_class", "S3.List": "put_class", "S3.GetObject": "get_class",
             "S3.ObjectExists": "get_class", "S3.GetAttributes": "get_class", "S3.DeleteObject": "delete"},
    "tempo": {"PUT": "put_class", "POST": "put_class", "GET": "get_class", "HEAD": "get_class", "DELETE": "delete"},
    "thanos": {"upload": "put_class", "iter": "put_class", "get": "get_class", "get_range": "get_class",
               "exists": "get_class", "attributes": "get_class", "delete": "delete"},
}
MEASURED_NOTES = {
    "tempo": "Tempo's client counts by HTTP method: its LISTs are in GET-class here, not PUT-class",
    "thanos": "Thanos counts a multipart upload and a paged listing once each",
}
_WINDOW = re.compile(r"^\d+[smhdwy]$")


def prometheus_query(url: str, query: str, timeout: float = 10.0) -> list[tuple[dict, float]]:
    """An instant query through the Prometheus HTTP API: (labels, value) per series."""
    full = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(full, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        # Prometheus answers a bad query with 400 and a JSON error body.
        try:
            body = json.load(error)
        except ValueError:
            raise CostError(f"Prometheus at {url} answered HTTP {error.code} to {query}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise CostError(f"cannot read Prometheus at {url}: {getattr(error, 'reason', error)}") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        raise CostError(f"Prometheus at {url} refused {query}: {body.get('error', 'no error text') if isinstance(body, dict) else body}")
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise CostError(f"Prometheus at {url} answered {data.get('resultType')!r} to {query}, not a vector")
    try:
        return [(row.get("metric") or {}, float(row["value"][1])) for row in data.get("result") or []]
    except (KeyError, IndexError, TypeError, ValueError):
        raise CostError(f"Prometheus at {url} answered {query} with a malformed vector") from None


def measure(url: str, window: str, topo: Topology) -> dict[str, Any]:
    """What the running stack reports, per day (or per second for samples), None where no series."""
    if not re.match(r"^https?://[^\s/]+", url):
        raise CostError(f"--from-prometheus {url!r}: use the Prometheus base URL, e.g. http://127.0.0.1:9090")
    if not _WINDOW.match(window):
        raise CostError(f"--window {window!r}: use a Prometheus range such as 1d or 6h")
    raw: dict[str, Any] = {}
    for key, query in PROMETHEUS_QUERIES.items():
        rows = prometheus_query(url, query.format(w=window))
        if key.endswith(".requests"):
            tool = key.split(".")[0]
            if not rows:
                raw[key] = None
                continue
            classes = dict.fromkeys(("put_class", "get_class", "delete", "other"), 0.0)
            for labels, value in rows:
                classes[REQUEST_CLASS[tool].get(labels.get("operation", ""), "other")] += value * SECONDS_PER_DAY
            raw[key] = classes
        else:
            raw[key] = sum(value for _, value in rows) if rows else None

    def per_day(key: str, divisor: float = 1.0) -> Optional[float]:
        return None if raw[key] is None else raw[key] * SECONDS_PER_DAY / divisor

    def ratio(stored: Optional[float], received: Optional[float], rf: int) -> Optional[float]:
        return None if stored is None or not received else stored / rf / received

    loki_rf, tempo_rf = topo.loki.replication_factor, topo.tempo.replication_factor
    return {
        "url": url, "window": window,
        "ingest": {
            "logs": per_day("loki.received", GIB), "traces": per_day("tempo.received", GIB),
            "metrics": None if raw["thanos.samples"] is None else raw["thanos.samples"] / topo.thanos.prometheus_replicas,
        },
        "assumptions": {
            "loki.stored_ratio": ratio(raw["loki.stored"], raw["loki.received"], loki_rf),
            "tempo.stored_ratio": ratio(raw["tempo.flushed"], raw["tempo.received"], tempo_rf),
            "loki.streams": None if raw["loki.streams"] is None else raw["loki.streams"] / loki_rf,
        },
        "figures": {"loki": {"chunks": per_day("loki.chunks", loki_rf)}, "tempo": {"blocks": per_day("tempo.blocks")}},
        "requests": {tool: raw[f"{tool}.requests"] for tool in ("loki", "tempo", "thanos")},
    }


def apply_measurement(m: dict, ingest: dict[str, float], a: dict[str, float], given: set[str]) -> tuple[dict, dict, dict]:
    """Ingest and assumptions with the measured values in, except those the user set explicitly.

    Returns (ingest, assumptions, what was used before) so the report can show both.
    """
    ingest, a = dict(ingest), dict(a)
    before: dict[str, float] = {}
    for key, value in m["ingest"].items():
        before[key] = ingest[key]
        if value is not None and value > 0 and key not in given:
            ingest[key] = value
    for key, value in m["assumptions"].items():
        before[key] = a[key]
        if value is not None and value > 0 and key not in given:
            a[key] = value
    return ingest, a, before


def compare(m: dict, before: dict, ingest: dict, a: dict, given: set[str], e: dict) -> dict[str, list[dict]]:
    """Rows of model next to measurement per tool, for the tools the stack runs."""
    out: dict[str, list[dict]] = {}
    inputs = {"loki": ("logs", "loki.stored_ratio", "loki.streams"), "tempo": ("traces", "tempo.stored_ratio"), "thanos": ("metrics",)}
    for tool, t in e["tools"].items():
        rows = []
        for key in inputs[tool]:
            measured = m["ingest"].get(key) if key in m["ingest"] else m["assumptions"].get(key)
            label = f"{key} ({INGEST_UNITS[key]})" if key in INGEST_UNITS else key
            used = "given" if key in given else ("measured" if measured else "assumed")
            rows.append({"figure": label, "model": before[key], "measured": measured, "used": used})
        for name, value in t["figures"].items():
            rows.append({"figure": f"{name} written a day", "model": value, "measured": m["figures"].get(tool, {}).get(name), "used": "model"})
        measured_requests = m["requests"].get(tool) or {}
        for cls, label in (("put_class", "PUT-class requests a day"), ("get_class", "GET-class requests a day")):
            model = sum(line["put_list_per_month" if cls == "put_class" else "get_per_month"] for line in t["request_lines"]) / DAYS_PER_MONTH
            rows.append({"figure": label, "model": model, "measured": measured_requests.get(cls), "used": "model"})
        out[tool] = rows
    return out


def report(stack: str, cfg: StackConfig, ingest: Mapping[str, float], ingest_from: str, prices: dict,
           a: Mapping[str, float], headroom: float, replicas: float, topo: Topology,
           comparison: Optional[dict] = None) -> dict:
    """Everything the command prints, rounded once: the text form is rendered from this dict."""
    e = estimate(cfg, ingest, prices, a, headroom, replicas, topo)
    scale = scale_checks(cfg, ingest, prices, a, headroom, replicas, topo)
    min_days = {cls: p["min_days"] for cls, p in prices["s3"].items() if "min_days" in p}
    gb_month = {cls: p["gb_month"] for cls, p in prices["s3"].items() if "gb_month" in p}
    tools = {}
    timelines = {}
    warnings = list(scale["warnings"]) + list(topo.notes)
    for name, t in e["tools"].items():
        rules: BucketRules = t["rules"]
        tools[name] = {
            "bucket": t["bucket"],
            "ingest": t["ingest"],
            "gb_per_day": _gb(t["gb_per_day"]),
            "gb_by_class": {cls: _gb(v) for cls, v in sorted(t["gb_by_class"].items())},
            "gb_total": _gb(t["gb_total"]),
            "cost": {k: _money(v) for k, v in t["cost"].items()},
            "requests": [{"what": r["what"], "put_list_per_month": round(r["put_list_per_month"]),
                          "get_per_month": round(r["get_per_month"]), "cost": _money(r["cost"])} for r in t["request_lines"]],
            "baseline": {"gb": _gb(t["baseline"]["gb"]), "cost": _money(t["baseline"]["cost"])},
            "saving_ratio": _ratio(t["saving_ratio"]),
            "lifecycle": {"rules": rules.rule_count, "data_rule": rules.data_rule or None,
                          "transitions": [{"days": d, "storage_class": c} for d, c in rules.transitions],
                          "expire_days": rules.expire_days, "noncurrent_days": rules.noncurrent_days},
            "notes": t["notes"],
        }
        if t["forever"]:
            warnings.append(f"{name}: some data is kept forever; its GB and cost are shown at day {a['forever_days']:g} and keep growing")
        tl = timeline(tool_retentions(cfg, name), rules.transitions, rules.expire_days, rules.noncurrent_days, min_days, gb_month)
        if name == "thanos":
            tl["notes"].append("ages are of each block's newest sample; a 14d block holds data up to 14 days older, "
                               "and compaction rewrites blocks (object age is not data age)")
            early = [d for d, _ in rules.transitions if d < 14 + cfg.tools.thanos.delete_delay_hours / 24]
            if early:
                tl["notes"].append(f"a transition at day {early[0]} also moves blocks compaction will still rewrite and delete "
                                   "(transition fees and minimum-duration charges not counted above)")
        timelines[name] = tl
        warnings += [f"{name}: {p}" for p in tl["problems"]]
    return {
        "stack": stack,
        "target": cfg.target.value,
        "region": cfg.storage.region,
        "currency": prices["currency"],
        "prices": {"file": prices["file"], "provider": prices["provider"], "region": prices["region"],
                   "as_of": str(prices["as_of"]), "source": prices["source"], "overrides": prices["overrides"]},
        "ingest": {key: {"value": ingest[key], "unit": INGEST_UNITS[key]} for key in INGEST_UNITS},
        "ingest_from": ingest_from,
        "stored_gb_per_day": {name: _gb(t["gb_per_day"]) for name, t in e["tools"].items()},
        "topology": {"source": topo.source, **{name: asdict(getattr(topo, name)) for name in ("loki", "tempo", "thanos")}},
        "baseline": {"volume": prices["volume"]["name"], "gb_month": prices["volume"]["gb_month"],
                     "headroom": headroom, "replicas": replicas},
        "tools": tools,
        "account": {"base_month": _money(e["account"]["base_month"]), "included_gb": e["account"]["included_gb"],
                    "included_credit": _money(e["account"]["included_credit"])},
        "total": {"gb": _gb(e["total"]["gb"]), "object_storage": _money(e["total"]["object_storage"]),
                  "baseline_gb": _gb(e["total"]["baseline_gb"]), "baseline": _money(e["total"]["baseline"]),
                  "saving_ratio": _ratio(e["total"]["saving_ratio"])},
        "timeline": timelines,
        "scale": {
            "lifecycle_rules": scale["lifecycle_rules"], "rule_limit": scale["rule_limit"],
            "per_tenant_rules": scale["per_tenant_rules"], "tenant_room": scale["tenant_room"],
            "bucket_names": scale["bucket_names"],
            "ingest_growth": [{"factor": g["factor"], "object_storage": _money(g["object_storage"]),
                               "baseline": _money(g["baseline"]), "saving_ratio": _ratio(g["saving_ratio"])}
                              for g in scale["ingest_growth"]],
            "tenants": [{**row, "loki_tempo_requests": _money(row["loki_tempo_requests"]),
                         "object_storage": _money(row["object_storage"])} for row in scale["tenants"]],
        },
        "warnings": warnings,
        "assumptions": dict(a),
        "measured_assumptions": {key: MEASUREMENT for key in MEASURED_ASSUMPTIONS if a[key] == ASSUMPTIONS[key]},
        "comparison": comparison,
        "not_modelled": list(NOT_MODELLED),
    }


def _money(value: float) -> float:
    return round(value, 2) + 0.0


def _gb(value: float) -> float:
    return round(value, 2) + 0.0


def _ratio(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 4)


def _figure(value: Optional[float]) -> str:
    if value is None:
        return "no series"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


COLUMNS = ("storage", "requests", "transitions", "minimum_charges", "monitoring", "retrieval", "total")
HEADERS = ("storage", "requests", "transit.", "min-chg", "monitor", "retrieval", "total")


TOPOLOGY_TEXT = {"loki": lambda d: LokiTopology(**d).describe(), "tempo": lambda d: TempoTopology(**d).describe(),
                 "thanos": lambda d: ThanosTopology(**d).describe()}


def as_text(r: dict) -> str:
    cur, b, a = r["currency"], r["baseline"], r["assumptions"]
    lines = [
        f"Storage cost of stack {r['stack']} (target {r['target']}, region {r['region']}): steady state, {cur} per month",
        f"prices: {r['prices']['file']} as of {r['prices']['as_of']} (sources listed in the file); "
        f"overrides: {', '.join(f'{k}={v}' for k, v in r['prices']['overrides'].items()) or 'none'}",
        f"ingest ({r['ingest_from']}): " + ", ".join(f"{k} {v['value']:,.6g} {v['unit']}" for k, v in r["ingest"].items()),
        "stored a day (one copy): " + ", ".join(f"{k} {v:.2f} GB" for k, v in r["stored_gb_per_day"].items())
        + f" (loki x{a['loki.stored_ratio']:g}, tempo x{a['tempo.stored_ratio']:g}, thanos {a['thanos.bytes_per_sample']:g} B/sample)",
        f"topology ({r['topology']['source']}):",
        *(f"  {name:<7} {TOPOLOGY_TEXT[name](r['topology'][name])}" for name in r["tools"]),
        f"baseline: the same stored bytes on {b['volume']} at {b['gb_month']:g}/GB-month x headroom {b['headroom']:g} x replicas {b['replicas']:g}",
        "",
        f"{'tool':<7} {'GB stored':>10} " + " ".join(f"{h:>9}" for h in HEADERS) + f" | {'vol GB':>10} {'vol cost':>9} | saving",
    ]
    for name, t in r["tools"].items():
        lines.append(f"{name:<7} {t['gb_total']:>10.2f} " + " ".join(f"{t['cost'][c]:>9.2f}" for c in COLUMNS)
                     + f" | {t['baseline']['gb']:>10.2f} {t['baseline']['cost']:>9.2f} | {_pct(t['saving_ratio'])}")
    acc, tot = r["account"], r["total"]
    if acc["base_month"]:
        lines.append(f"account base fee {acc['base_month']:.2f} includes {acc['included_gb']:g} GB: credit -{acc['included_credit']:.2f}")
    lines.append(f"{'total':<7} {tot['gb']:>10.2f} " + " ".join(" " * 9 for _ in COLUMNS[:-1]) + f" {tot['object_storage']:>9.2f}"
                 + f" | {tot['baseline_gb']:>10.2f} {tot['baseline']:>9.2f} | {_pct(tot['saving_ratio'])}")
    lines += ["", "GB by storage class:"]
    for name, t in r["tools"].items():
        lines.append(f"  {name:<7} " + ", ".join(f"{cls} {gb:.2f}" for cls, gb in t["gb_by_class"].items()))
    lines += ["", "requests per month from each write pattern (PUT/LIST, GET, cost):"]
    for name, t in r["tools"].items():
        for q in t["requests"]:
            lines.append(f"  {name:<7} {q['what']:<58} {q['put_list_per_month']:>12,} {q['get_per_month']:>12,} {q['cost']:>9.2f}")
    lines += ["", "retention timeline (object age in days):"]
    for name, tl in r["timeline"].items():
        lc = r["tools"][name]["lifecycle"]
        rule = lc["data_rule"] or "none on the data (tool retention only)"
        lines.append(f"  {name} (bucket {r['tools'][name]['bucket']}; data rule: {rule})")
        for ev in tl["events"]:
            day = "forever" if ev["day"] is None else f"{ev['day']:.2f}"
            lines.append(f"    day {day:>8}  {ev['event']}")
        lines += [f"    PROBLEM: {p}" for p in tl["problems"]]
        lines += [f"    note: {n}" for n in tl["notes"] + r["tools"][name]["notes"]]
    s = r["scale"]
    limit = f"S3 allows {s['rule_limit']}" if s["rule_limit"] else "the 1,000-rule limit is S3's; this target is not S3"
    lines += ["", "scale checks:",
              "  lifecycle rules per bucket (" + limit + "): " + ", ".join(f"{k} {v}" for k, v in s["lifecycle_rules"].items())]
    if s["per_tenant_rules"]:
        room = f"; room for {s['tenant_room']} tenants" if s["tenant_room"] is not None else ""
        lines.append(f"  one data rule per tenant on: {', '.join(s['per_tenant_rules'])}{room}")
    lines.append("  bucket names: " + ", ".join(f"{k} {v}" for k, v in s["bucket_names"].items()))
    lines.append(f"  ingest growth:  {'factor':>6} {'object storage':>15} {'volumes':>12} {'saving':>8}")
    for g in s["ingest_growth"]:
        lines.append(f"                  {str(g['factor']) + 'x':>6} {g['object_storage']:>15.2f} {g['baseline']:>12.2f} {_pct(g['saving_ratio']):>8}")
    lines.append(f"  tenants (same ingest): {'tenants':>7} {'loki rules':>10} {'tempo rules':>11} {'loki+tempo requests':>19} {'object storage':>15}")
    for row in s["tenants"]:
        flag = "  over the S3 rule limit" if row["over_rule_limit"] else ""
        lines.append(f"                         {row['tenants']:>7} {str(row['loki_rules']):>10} {str(row['tempo_rules']):>11} "
                     f"{row['loki_tempo_requests']:>19.2f} {row['object_storage']:>15.2f}{flag}")
    if r["comparison"]:
        lines += ["", f"model next to the stack's own metrics ({r['comparison']['url']}, rates over {r['comparison']['window']}):",
                  f"  {'tool':<7} {'figure':<44} {'model':>14} {'measured':>14}  used"]
        for name, rows in r["comparison"]["tools"].items():
            for row in rows:
                lines.append(f"  {name:<7} {row['figure']:<44} {_figure(row['model']):>14} {_figure(row['measured']):>14}  {row['used']}")
        lines += [f"  note: {n}" for n in r["comparison"]["notes"]]
    lines += [""] + [f"WARNING: {w}" for w in r["warnings"]]
    measured = r["measured_assumptions"]
    lines.append("assumptions: " + ", ".join(f"{k}={v:g}" + (" (measured)" if k in measured else "") for k, v in r["assumptions"].items()))
    if measured:
        lines.append(f"measured: {MEASUREMENT}")
    lines.append("not modelled: " + "; ".join(r["not_modelled"]))
    return "\n".join(lines)


# ---------------------------------------------------------------- command line
def _pairs(text: str, what: str) -> dict[str, str]:
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise CostError(f"{what}: {item!r} is not KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def with_spokes(topo: Topology, cfg: StackConfig, text: Optional[str], own_metrics: float) -> Topology:
    """A Thanos hub's topology with the spokes it lists (tools.thanos.spokes) uploading into its
    bucket; a spoke's with a note that its metrics are costed with its hub."""
    thanos = cfg.tools.thanos
    if not thanos.enabled:
        return topo
    if not thanos.owns_bucket:
        cross = ("; its uploads cross regions (tools.thanos.crossRegion), and that inter-region transfer is not modelled"
                 if thanos.cross_region else "")
        return replace(topo, notes=topo.notes + (f"thanos: this stack is a spoke; its metrics are stored and costed in the bucket of its hub "
                                                 f"{thanos.hub} (its --spoke-metrics){cross}",))
    labels = [s.cluster_label for s in thanos.spokes]
    given = {k: _number(f"--spoke-metrics {k}", v) for k, v in _pairs(text or "", "--spoke-metrics").items()}
    unknown = sorted(set(given) - set(labels))
    if unknown:
        raise CostError(f"--spoke-metrics {unknown[0]}: not a spoke of this hub (tools.thanos.spokes: {', '.join(labels) or 'none'})")
    if any(v < 0 for v in given.values()):
        raise CostError("--spoke-metrics: samples/s must not be negative")
    if not labels:
        return topo
    rates = {label: given.get(label, own_metrics) for label in labels}
    assumed = [label for label in labels if label not in given]
    shown = ", ".join(f"{label} {rate:,.0f}" for label, rate in rates.items())
    note = (f"thanos: {len(labels)} spoke(s) upload into this bucket ({shown} samples/s"
            + (f"; {', '.join(assumed)} assumed like this cluster, set with --spoke-metrics LABEL=N" if assumed else "")
            + "); its one compactor compacts every cluster's blocks")
    return replace(topo, thanos=replace(topo.thanos, spokes=len(labels), spoke_samples_per_s=sum(rates.values())), notes=topo.notes + (note,))


def parse_ingest(text: Optional[str], stack: str) -> tuple[dict[str, float], str, set[str]]:
    """Ingest per kind in INGEST_UNITS, where it came from, and the kinds given explicitly."""
    ingest = dict(DEFAULT_INGEST.get(stack, FALLBACK_INGEST))
    if not text:
        return ingest, "stack default; set with --ingest", set()
    given = _pairs(text, "--ingest")
    for key, value in given.items():
        if key not in ingest:
            raise CostError(f"--ingest {key}: use logs (GB/day raw), traces (GB/day OTLP) and metrics (samples/s)")
        ingest[key] = _number(f"--ingest {key}", value)
        if ingest[key] < 0:
            raise CostError(f"--ingest {key}: must not be negative")
    return ingest, "--ingest", set(given)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help=f"one of: {', '.join(engine.available_stacks())}")
    parser.add_argument("--ingest", help="logs=GB/day raw, traces=GB/day OTLP, metrics=samples/s, e.g. logs=75,traces=35,metrics=30000 "
                                         "(default: per stack)")
    parser.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM, help="volume size over data (default 1.3)")
    parser.add_argument("--replicas", type=float, default=DEFAULT_REPLICAS, help="volume copies (default 3)")
    parser.add_argument("--prices", help="price file name in tools/prices (e.g. aws-us-east-1) or a path; default: the stack's")
    parser.add_argument("--price", action="append", default=[], metavar="KEY=VALUE", help="override a price, e.g. s3.STANDARD.gb_month=0.02")
    parser.add_argument("--assume", action="append", default=[], metavar="KEY=VALUE", help="override an assumption, e.g. loki.streams=2000")
    parser.add_argument("--from-prometheus", metavar="URL", help="read ingest, compression and request rates from the stack's Prometheus")
    parser.add_argument("--window", default="1d", help="range the rates are taken over with --from-prometheus (default 1d)")
    parser.add_argument("--spoke-metrics", metavar="LABEL=N,...",
                        help="a Thanos hub: samples/s of each spoke by cluster label (default: like this cluster)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    try:
        raw, secret_keys = engine.stack_config(args.stack)
        cfg = config.load(args.stack, raw, set(secret_keys))
        ingest, ingest_from, given = parse_ingest(args.ingest, args.stack)
        prices = load_prices(args.prices or price_file_for(cfg), {k: v for p in args.price for k, v in _pairs(p, "--price").items()})
        assumed = {k: v for p in args.assume for k, v in _pairs(p, "--assume").items()}
        a = assumptions(assumed)
        if args.headroom < 1 or args.replicas < 1:
            raise CostError("--headroom and --replicas must be at least 1")
        topo = with_spokes(stack_topology(args.stack, cfg), cfg, args.spoke_metrics, ingest["metrics"])
        comparison = None
        if args.from_prometheus:
            m = measure(args.from_prometheus, args.window, topo)
            given |= set(assumed)
            ingest, a, before = apply_measurement(m, ingest, a, given)
            ingest_from = f"measured by {args.from_prometheus} over {args.window}; model inputs replaced where the metrics exist"
            e = estimate(cfg, ingest, prices, a, args.headroom, args.replicas, topo)
            comparison = {"url": args.from_prometheus, "window": args.window, "tools": compare(m, before, ingest, a, given, e),
                          "notes": [note for tool, note in MEASURED_NOTES.items() if tool in e["tools"]]}
        result = report(args.stack, cfg, ingest, ingest_from, prices, a, args.headroom, args.replicas, topo, comparison)
    except (FileNotFoundError, config.ConfigError, CostError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else as_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
