"""Steady-state monthly cost of a stack's object storage, next to the block volumes it replaces.

    python -m tools.cost --stack local|staging|prod [--ingest logs=GB,traces=GB,metrics=GB]
        [--headroom 1.3] [--replicas 3] [--prices NAME|FILE] [--price KEY=VALUE]...
        [--assume KEY=VALUE]... [--json]

For the stack's own retention and bucket rules (components.lifecycle.plan), per tool and in total:
GB in each storage class, request charges from each tool's write pattern, minimum-duration and
per-object charges of the colder classes, and the same data on block volumes (gp3 on AWS) with
headroom and replicas. Then a retention timeline per tool and scale checks (lifecycle rules per
bucket, bucket names, growth with ingest and tenants).

Ingest is GB a day as it lands in the bucket (compressed chunks/blocks, one copy). GB means
2^30 bytes, as S3 bills it. A month is 365/12 days. Every modelling assumption is in
ASSUMPTIONS below (override with --assume); every price is in tools/prices/*.yaml (override with
--price). Exit codes: 0 report printed; 2 bad stack config, price file or argument.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import yaml

from components import config, lifecycle
from components.config import StackConfig, Target
from tools import engine

PRICES_DIR = Path(__file__).resolve().parent / "prices"
DAYS_PER_MONTH = 365 / 12
MINUTES_PER_DAY = 24 * 60
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
RULE_WARN_SHARE = 0.8

# Used when --ingest is omitted: GB/day per stack, as stored (compressed). Rough sizes for a laptop,
# a staging cluster and a mid-size production; prod's metrics are the 7.3 GB/day reference workload.
DEFAULT_INGEST = {
    "local": {"logs": 1.0, "traces": 0.5, "metrics": 0.5},
    "staging": {"logs": 20.0, "traces": 10.0, "metrics": 5.0},
    "prod": {"logs": 100.0, "traces": 50.0, "metrics": 7.3},
}
FALLBACK_INGEST = DEFAULT_INGEST["staging"]
DEFAULT_HEADROOM = 1.3
DEFAULT_REPLICAS = 3

ASSUMPTIONS: dict[str, float] = {
    # Loki flushes a chunk at chunk_target_size 1572864 B (1.5 MiB compressed). Quiet streams flush
    # smaller chunks on chunk_idle_period (30m) or max_chunk_age (2h): real averages are often lower,
    # which means more PUTs. Replicated flushes (replication_factor 3) of one chunk write the same
    # key, so it is stored once; its PUT is counted once (without a dedupe cache, up to 3 times).
    "loki.chunk_mb": 1.5,
    # Loki TSDB: every ingester uploads an index file per tenant this often; the compactor merges
    # them once a day per tenant.
    "loki.index_upload_minutes": 15,
    # Loki/Tempo ingesters; each one uploads its own index files (Loki) or blocks (Tempo).
    "ingesters": 3,
    # Components that poll the bucket: Loki index gateways/queriers, Tempo queriers, Thanos store
    # gateways; plus the compactor of each tool.
    "readers": 2,
    "poll_minutes": 5,
    # Tempo: every trace is written by replication_factor ingesters, each cutting a block per tenant
    # every max_block_duration (30m) or max_block_bytes (500 MiB), whichever comes first.
    "tempo.replication_factor": 3,
    "tempo.block_minutes": 30,
    "tempo.max_block_mb": 500,
    # compaction_window 1h: the copies of one hour are merged into one block per tenant.
    "tempo.compaction_window_hours": 1,
    # flush_size_bytes 20 MiB: the part size of multipart uploads.
    "tempo.part_mb": 20,
    # Thanos: Prometheus instances uploading distinct data (an HA pair deduplicated by the
    # compactor counts once). Each uploads a 2h block; the compactor rewrites to 8h, 2d and 14d.
    "thanos.sources": 1,
    # Downsampled size relative to raw for a 15-30 s scrape interval. Thanos' docs warn that
    # downsampled blocks can come close to raw size: measure with `thanos tools bucket inspect`.
    "thanos.ratio_5m": 0.3,
    "thanos.ratio_1h": 0.05,
    # objstore s3 part_size default (64 MiB) and TSDB chunk segment files (512 MiB).
    "thanos.part_mb": 64,
    "thanos.segment_mb": 512,
    # Store gateway --sync-block-duration.
    "thanos.sync_minutes": 3,
    # Share of the data in STANDARD_IA / GLACIER_IR read back each month (retrieval fees). Queries
    # on recent data (STANDARD) are not modelled.
    "cold_read_share": 0.05,
    # AWS lifecycle default since 2024 (TransitionDefaultMinimumObjectSize all_storage_classes_128K,
    # not overridden by components/storage.py): smaller objects are never transitioned.
    "transition_min_object_kb": 128,
    # Data kept forever has no steady state; it is costed as it stands after this many days.
    "forever_days": 365,
}

NOT_MODELLED = (
    "data transfer: the tools run in the bucket's region (AWS: S3 to EKS in one region is free only "
    "through an S3 gateway VPC endpoint; through a NAT gateway every GB also pays NAT processing; "
    "Hetzner: 1 TB/month egress is included, not checked against)",
    "query reads of recent data (STANDARD GETs); cold reads only as cold_read_share",
    "the compute and local disks (WAL, caches, compactor scratch space) of the tools themselves",
)


class CostError(Exception):
    """A bad argument, price file or assumption, reported as one line."""


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


# Assumptions that may be zero; every other one is a size, count or interval the model divides by.
MAY_BE_ZERO = ("cold_read_share", "transition_min_object_kb", "readers")


def assumptions(overrides: Mapping[str, str] = {}) -> dict[str, float]:
    a = dict(ASSUMPTIONS)
    for key, value in overrides.items():
        if key not in a:
            raise CostError(f"--assume {key}: unknown (known: {', '.join(sorted(a))})")
        a[key] = _number(f"--assume {key}", value)
        if a[key] < 0 or (a[key] == 0 and key not in MAY_BE_ZERO):
            raise CostError(f"--assume {key}: must be {'zero or more' if key in MAY_BE_ZERO else 'more than zero'}")
    return a


# ---------------------------------------------------------------- what each tool writes
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
    # GB/day that compaction deletes; on a versioned bucket it stays as noncurrent versions.
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
    streams: tuple[Stream, ...]
    requests: tuple[RequestLine, ...]
    # Days of raw data the same retention keeps on block volumes (no downsampling there).
    baseline_days: float
    notes: tuple[str, ...] = ()


def put_requests(size_mb: float, part_mb: float) -> float:
    """PUT-class requests to upload one object: one PUT, or create + parts + complete."""
    return 1 if size_mb <= part_mb else math.ceil(size_mb / part_mb) + 2


def _days(hours: Optional[int]) -> Optional[float]:
    return None if hours is None else hours / 24


def loki_load(cfg: StackConfig, gb_per_day: float, a: Mapping[str, float]) -> ToolLoad:
    tool = cfg.tools.loki
    tenants, ingesters = len(cfg.tenants), a["ingesters"]
    chunks = gb_per_day * MIB_PER_GIB / a["loki.chunk_mb"]
    uploads = ingesters * tenants * MINUTES_PER_DAY / a["loki.index_upload_minutes"]
    polls = MINUTES_PER_DAY / a["poll_minutes"]
    return ToolLoad(
        streams=(Stream("chunks", gb_per_day, _days(tool.served_hours()), objects_per_day=chunks),),
        requests=(
            RequestLine(f"chunk flushes ({a['loki.chunk_mb']:g} MiB each)", put_list_per_day=chunks),
            RequestLine("TSDB index uploads (per ingester and tenant)", put_list_per_day=uploads),
            # The compactor reads every uploaded index file and writes one per tenant a day.
            RequestLine("index compaction (daily, per tenant)", put_list_per_day=tenants, get_per_day=uploads),
            RequestLine("index sync LISTs (readers, per tenant)", put_list_per_day=a["readers"] * tenants * polls),
        ),
        baseline_days=tool.retention_days,
    )


def tempo_load(cfg: StackConfig, gb_per_day: float, a: Mapping[str, float]) -> ToolLoad:
    tool = cfg.tools.tempo
    tenants, rf, part = len(cfg.tenants), a["tempo.replication_factor"], a["tempo.part_mb"]
    written_mb = gb_per_day * rf * MIB_PER_GIB
    cuts = a["ingesters"] * tenants * MINUTES_PER_DAY / a["tempo.block_minutes"]
    blocks = max(cuts, written_mb / a["tempo.max_block_mb"])
    block_mb = written_mb / blocks
    window_h = a["tempo.compaction_window_hours"]
    final_blocks = tenants * 24 / window_h
    final_mb = gb_per_day * MIB_PER_GIB / final_blocks
    polls = MINUTES_PER_DAY / a["poll_minutes"]
    # The rf copies live until their window is compacted, then compacted_block_retention longer.
    pending = gb_per_day * rf * (window_h + tool.delete_delay_hours) / 24
    return ToolLoad(
        streams=(Stream("blocks", gb_per_day, _days(tool.served_hours()), objects_per_day=final_blocks,
                        pending_gb=pending, rewritten_gb_per_day=gb_per_day * rf),),
        requests=(
            # data.parquet, meta.json and a bloom filter per block.
            RequestLine(f"ingester blocks ({rf:g} copies, {block_mb:.1f} MiB each)",
                        put_list_per_day=blocks * (put_requests(block_mb, part) + 2)),
            # The compactor reads the three objects of each copy, writes one block per tenant and
            # window and marks every source compacted (meta.compacted.json).
            RequestLine(f"compaction into {final_mb:.1f} MiB blocks",
                        put_list_per_day=final_blocks * (put_requests(final_mb, part) + 2) + blocks,
                        get_per_day=blocks * 3),
            # Each poll the compactor LISTs a tenant's blocks and writes its tenant index; readers GET it.
            RequestLine("blocklist polling (per tenant)", put_list_per_day=2 * tenants * polls,
                        get_per_day=a["readers"] * tenants * polls),
        ),
        baseline_days=tool.retention_days,
    )


# Thanos compaction ranges in days: 2h blocks from the sidecar, rewritten to 8h, 2d and 14d.
THANOS_LEVELS = (2 / 24, 8 / 24, 2.0, 14.0)


def _final_range(first: float, keep: Optional[float]) -> float:
    """The largest block range that forms before retention deletes the blocks it is made of."""
    ranges = [r for r in THANOS_LEVELS if r >= first and (keep is None or r <= keep)]
    return ranges[-1] if ranges else first


def thanos_load(cfg: StackConfig, gb_per_day: float, a: Mapping[str, float]) -> ToolLoad:
    tool = cfg.tools.thanos
    delay = tool.delete_delay_hours / 24
    sources, part, segment = a["thanos.sources"], a["thanos.part_mb"], a["thanos.segment_mb"]
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
        return n * put_requests(size_mb / n, part) + 2

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
    uploads = sources * (tool.receive_replication_factor if tool.mode == "receive" else 1)
    if tool.mode == "receive":
        notes.append(f"receive mode: each 2h block is uploaded {tool.receive_replication_factor} times "
                     "(counted in requests); the compactor is assumed to deduplicate (--deduplication.replica-label)")
    for name, gb, first, source in plan:
        final = _final_range(first, keep[name])
        levels = [x for x in THANOS_LEVELS if first < x <= final]
        life = None if keep[name] is None else keep[name] + delay
        size = block_mb(gb, final)
        # Data waits in smaller blocks for about half the final range; each rewrite leaves the
        # source blocks for --delete-delay before the compactor deletes them.
        streams.append(Stream(
            name, gb, life,
            objects_per_day=sources / final * (segments(size) + 1),
            pending_gb=gb * ((final - first) / 2 + len(levels) * delay),
            rewritten_gb_per_day=gb * len(levels),
        ))
        if source is None:
            requests.append(RequestLine("sidecar uploads of 2h blocks", put_list_per_day=uploads * 12 * block_puts(block_mb(gb, first))))
        else:
            src_name, src_gb, src_range = source
            n = sources / src_range
            requests.append(RequestLine(f"downsampling {src_name} {src_range:g}d blocks to {name}",
                                        put_list_per_day=n * block_puts(block_mb(gb, first)),
                                        get_per_day=n * block_objects(block_mb(src_gb, src_range))))
        previous = first
        for level in levels:
            n_src = sources / previous
            requests.append(RequestLine(
                f"compaction of {name} to {_range_text(level)} blocks",
                # New block, plus a deletion-mark.json on every source block.
                put_list_per_day=sources / level * block_puts(block_mb(gb, level)) + n_src,
                get_per_day=n_src * block_objects(block_mb(gb, previous)),
            ))
            blocks_per_day += sources / level
            previous = level
        blocks_per_day += sources / first
        blocks_alive += sources / final * (life if life is not None else a["forever_days"])
    pages = max(1, math.ceil(blocks_alive / 1000))
    syncs = a["readers"] * MINUTES_PER_DAY / a["thanos.sync_minutes"] + MINUTES_PER_DAY / a["poll_minutes"]
    # Store gateways and the compactor LIST the bucket each sync and fetch meta.json of new blocks.
    requests.append(RequestLine("bucket sync (store gateways, compactor)", put_list_per_day=syncs * pages,
                                get_per_day=a["readers"] * blocks_per_day))
    days = [d for d in keep.values()]
    return ToolLoad(
        streams=tuple(streams),
        requests=tuple(requests),
        baseline_days=a["forever_days"] if None in days else max(days),
        notes=tuple(notes),
    )


def _range_text(days: float) -> str:
    return f"{days * 24:g}h" if days < 1 else f"{days:g}d"


LOADS = {"loki": loki_load, "tempo": tempo_load, "thanos": thanos_load}


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
             headroom: float, replicas: float) -> dict:
    """Unrounded figures per tool and in total."""
    tools: dict[str, dict] = {}
    for name, tool_cfg in cfg.tools.enabled().items():
        gb_per_day = ingest[INGEST_OF[name]]
        load = LOADS[name](cfg, gb_per_day, a)
        rules = bucket_rules(cfg, name)
        priced = Priced()
        for stream in load.streams:
            priced.add(price_stream(stream, rules, prices, a))
        request_lines = price_requests(load.requests, prices)
        priced.cost["requests"] = sum(line["cost"] for line in request_lines)
        total = sum(priced.cost.values())
        base_gb = gb_per_day * load.baseline_days * headroom * replicas
        base = baseline_cost(gb_per_day * load.baseline_days, prices, headroom, replicas)
        tools[name] = {
            "bucket": tool_cfg.bucket, "ingest": INGEST_OF[name], "gb_per_day": gb_per_day,
            "gb_by_class": {cls: gb for cls, gb in priced.gb.items() if gb > 0},
            "gb_total": sum(priced.gb.values()),
            "cost": {**priced.cost, "total": total},
            "request_lines": request_lines,
            "baseline": {"gb": base_gb, "cost": base},
            "saving_ratio": saving_ratio(total, base),
            "forever": priced.forever,
            "rules": rules,
            "notes": list(load.notes),
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
             min_days: Mapping[str, int] = {}) -> dict:
    """Events by object age (days) for a tool's data, and what is wrong with them.

    `retentions`: per kind of data, the age at which the tool stops serving and deletes it
    (None = forever). Plain data on purpose: it also judges rules the config model would refuse.
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
        for i, (cls, start, stop) in enumerate(class_spans(end, transitions)):
            kept = stop - start + ((noncurrent_days or 0) if stop == end else 0)
            minimum = min_days.get(cls, 0)
            if kept < minimum:
                notes.append(f"{label}: {kept:g} days in {cls}, billed {minimum} (minimum duration): "
                             f"the transition at day {start:g} costs more than it saves")
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
                 headroom: float, replicas: float) -> dict:
    enabled = cfg.tools.enabled()
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
        e = estimate(cfg, {k: v * factor for k, v in ingest.items()}, prices, a, headroom, replicas)
        growth.append({"factor": factor, "object_storage": e["total"]["object_storage"], "baseline": e["total"]["baseline"],
                       "saving_ratio": e["total"]["saving_ratio"]})
    tenant_rows = []
    for n in sorted({len(cfg.tenants), 10, 100, 1000}):
        scaled = _with_tenants(cfg, n)
        e = estimate(scaled, ingest, prices, a, headroom, replicas)
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


# ---------------------------------------------------------------- the report
def report(stack: str, cfg: StackConfig, ingest: Mapping[str, float], ingest_from: str, prices: dict,
           a: Mapping[str, float], headroom: float, replicas: float) -> dict:
    """Everything the command prints, rounded once: the text form is rendered from this dict."""
    e = estimate(cfg, ingest, prices, a, headroom, replicas)
    scale = scale_checks(cfg, ingest, prices, a, headroom, replicas)
    min_days = {cls: p["min_days"] for cls, p in prices["s3"].items() if "min_days" in p}
    tools = {}
    timelines = {}
    warnings = list(scale["warnings"])
    for name, t in e["tools"].items():
        rules: BucketRules = t["rules"]
        tools[name] = {
            "bucket": t["bucket"],
            "ingest": t["ingest"],
            "gb_per_day": t["gb_per_day"],
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
        tl = timeline(tool_retentions(cfg, name), rules.transitions, rules.expire_days, rules.noncurrent_days, min_days)
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
        "ingest_gb_per_day": dict(ingest),
        "ingest_from": ingest_from,
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
        "not_modelled": list(NOT_MODELLED),
    }


def _money(value: float) -> float:
    return round(value, 2) + 0.0


def _gb(value: float) -> float:
    return round(value, 2) + 0.0


def _ratio(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 4)


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


COLUMNS = ("storage", "requests", "transitions", "minimum_charges", "monitoring", "retrieval", "total")
HEADERS = ("storage", "requests", "transit.", "min-chg", "monitor", "retrieval", "total")


def as_text(r: dict) -> str:
    cur, b = r["currency"], r["baseline"]
    lines = [
        f"Storage cost of stack {r['stack']} (target {r['target']}, region {r['region']}): steady state, {cur} per month",
        f"prices: {r['prices']['file']} as of {r['prices']['as_of']} (sources listed in the file); "
        f"overrides: {', '.join(f'{k}={v}' for k, v in r['prices']['overrides'].items()) or 'none'}",
        "ingest GB/day as stored: " + ", ".join(f"{k} {v:g}" for k, v in r["ingest_gb_per_day"].items()) + f" ({r['ingest_from']})",
        f"baseline: the same data on {b['volume']} at {b['gb_month']:g}/GB-month x headroom {b['headroom']:g} x replicas {b['replicas']:g}",
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
            lines.append(f"  {name:<7} {q['what']:<52} {q['put_list_per_month']:>12,} {q['get_per_month']:>12,} {q['cost']:>9.2f}")
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
    lines += [""] + [f"WARNING: {w}" for w in r["warnings"]]
    lines.append("assumptions: " + ", ".join(f"{k}={v:g}" for k, v in r["assumptions"].items()))
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


def parse_ingest(text: Optional[str], stack: str) -> tuple[dict[str, float], str]:
    ingest = dict(DEFAULT_INGEST.get(stack, FALLBACK_INGEST))
    if not text:
        return ingest, "stack default; set with --ingest"
    for key, value in _pairs(text, "--ingest").items():
        if key not in ingest:
            raise CostError(f"--ingest {key}: use logs, traces and metrics")
        ingest[key] = _number(f"--ingest {key}", value.removesuffix("GB/day").removesuffix("GB"))
        if ingest[key] < 0:
            raise CostError(f"--ingest {key}: must not be negative")
    return ingest, "--ingest"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help=f"one of: {', '.join(engine.available_stacks())}")
    parser.add_argument("--ingest", help="GB/day as stored, e.g. logs=20,traces=10,metrics=5 (default: per stack)")
    parser.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM, help="volume size over data (default 1.3)")
    parser.add_argument("--replicas", type=float, default=DEFAULT_REPLICAS, help="volume copies (default 3)")
    parser.add_argument("--prices", help="price file name in tools/prices (e.g. aws-us-east-1) or a path; default: the stack's")
    parser.add_argument("--price", action="append", default=[], metavar="KEY=VALUE", help="override a price, e.g. s3.STANDARD.gb_month=0.02")
    parser.add_argument("--assume", action="append", default=[], metavar="KEY=VALUE", help="override an assumption, e.g. loki.chunk_mb=0.5")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    try:
        raw, secret_keys = engine.stack_config(args.stack)
        cfg = config.load(args.stack, raw, set(secret_keys))
        ingest, ingest_from = parse_ingest(args.ingest, args.stack)
        prices = load_prices(args.prices or price_file_for(cfg), {k: v for p in args.price for k, v in _pairs(p, "--price").items()})
        a = assumptions({k: v for p in args.assume for k, v in _pairs(p, "--assume").items()})
        if args.headroom < 1 or args.replicas < 1:
            raise CostError("--headroom and --replicas must be at least 1")
        result = report(args.stack, cfg, ingest, ingest_from, prices, a, args.headroom, args.replicas)
    except (FileNotFoundError, config.ConfigError, CostError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else as_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
