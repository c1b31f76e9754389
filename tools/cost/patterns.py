"""Each tool's write pattern: how many objects and requests a day of ingest becomes, from the
settings the topology holds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from tools.cost.facts import (
    LOKI_MAX_CHUNK_AGE_S,
    LOKI_RESYNC_S,
    LOKI_SYNC_MIN_UTILIZATION,
    LOKI_SYNC_PERIOD_S,
    LOKI_TSDB_PERIOD_S,
    MINIO_PART_BYTES,
    S3_LIST_PAGE,
    SECONDS_PER_DAY,
    TEMPO_BLOCK_OBJECTS,
    TEMPO_COMPACTION_MAX_INPUTS,
    TEMPO_COMPACTOR_FLUSH_BYTES,
    TEMPO_COPIES_PER_INPUT,
    TEMPO_LIST_BLOCKS_CONCURRENCY,
    TEMPO_NEW_BLOCK_GETS,
    TEMPO_TENANT_INDEX_OBJECTS,
)
from tools.cost.topology import LokiTopology, TempoTopology


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
    retention_lists: float = 0.0  # the retention runs' listings of the tables and of each table


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
    retention_runs = duration_s / topo.retention_interval_s if topo.retention_interval_s else 0.0
    retention_lists = topo.compactors * retention_runs * (1 + tables)
    held = min(a["loki.queried_days"], tables)
    reader_lists = topo.index_readers * held * duration_s / LOKI_RESYNC_S
    reader_gets = topo.index_readers * compacted if held > 0 else 0.0
    return LokiPattern(
        stored_bytes=stored, chunks=chunks, chunk_puts=chunks * (1 if topo.shared_chunk_cache else topo.replication_factor),
        index_uploads=uploads, compacted_uploads=compacted, compactor_lists=compactor_lists, compactor_gets=compactor_gets,
        reader_lists=reader_lists, reader_gets=reader_gets, retention_lists=retention_lists,
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
    # Builders read nocompact.flg and meta.json of every new block (TEMPO_NEW_BLOCK_GETS), and
    # meta.compacted.json of every compacted one.
    new_metas = topo.builders * (len(TEMPO_NEW_BLOCK_GETS) * (blocks + compactions) + cleared * windows * topo.compaction_copies)
    return TempoPattern(
        stored_bytes=stored, blocks=blocks, block_bytes=block_bytes, block_requests=tempo_block_upload(block_bytes) * blocks,
        compactions=compactions, compacted_bytes=window_bytes, compaction_requests=compaction, compaction_levels=len(levels),
        polls=polls, poll_lists=lists * polls, poll_puts=puts * polls, poll_gets=gets * polls + new_metas,
    )
