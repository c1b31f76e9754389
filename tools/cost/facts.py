"""What the pinned tools do, the assumptions the model makes about a stack's data, and the
error every part of the report raises. Each figure names the source it was read in."""

from __future__ import annotations

import math
from pathlib import Path

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
# With retention on, the compactor also applies it on a ticker of its own, every
# apply_retention_interval (tables_manager.go start: runCompaction(ctx, true)), and each of those
# runs lists the tables and then each table as a compaction run does. Unset (0), the interval is the
# compaction interval, and equal to it, min(10m, half of it) longer "to avoid running retention and
# compaction at same time" (pkg/compactor/config.go Validate): 15 minutes next to 10-minute compaction.
LOKI_RETENTION_JITTER_MAX_S = 600
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
# What an index builder GETs for each block new to it (tempodb/blocklist/poller.go pollBlock, the
# same at v2.10.6 and the pinned v2.10.8): the compactor polls with SkipNoCompactBlocks
# (modules/compactor/compactor.go EnablePolling(ctx, c, true)), so it reads the block's
# nocompact.flg (backend/raw.go HasNoCompactFlag; a GET whether or not it exists), then meta.json.
# A block already compacted is read as meta.compacted.json alone.
TEMPO_NEW_BLOCK_GETS = ("nocompact.flg", "meta.json")
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
    # not overridden by components/core/storage.py): smaller objects are never transitioned.
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
