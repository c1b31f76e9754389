"""What each tool keeps in its bucket and requests from it: streams of stored bytes with their
request lines."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional

from components.core.config import StackConfig
from tools.cost.facts import GIB, KIB_PER_GIB, MIB, MIB_PER_GIB, SECONDS_PER_DAY, THANOS_PART_BYTES, THANOS_SEGMENT_BYTES
from tools.cost.patterns import loki_pattern, tempo_pattern, upload_requests
from tools.cost.prices import stored_gb_per_day
from tools.cost.topology import LokiTopology, TempoTopology, ThanosTopology, Topology


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


def hours_to_days(hours: Optional[int]) -> Optional[float]:
    return None if hours is None else hours / 24


def loki_load(cfg: StackConfig, logs_gb: float, a: Mapping[str, float], topo: LokiTopology) -> ToolLoad:
    tool = cfg.tools.loki
    served = hours_to_days(tool.served_hours())
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
            *([RequestLine(f"retention runs (every {topo.retention_interval_s / 60:g} min, list every table)",
                           put_list_per_day=p.retention_lists)] if topo.retention_interval_s else []),
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
        streams=(Stream("blocks", gb, hours_to_days(tool.served_hours()), objects_per_day=final_blocks, pending_gb=pending,
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
