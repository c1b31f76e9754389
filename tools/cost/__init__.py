"""Steady-state monthly cost of a stack's object storage, next to the block volumes it replaces.

    python -m tools.cost --stack local|staging|prod|... [--stack ...] [--ingest logs=GB,traces=GB,metrics=SAMPLES]
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
model next to the measured request rates. Every price is in tools/cost/prices/*.yaml (--price).
Several stacks are reported in turn, each under a `== <stack>` line (text) or as one JSON list
(--json), stopping at the first that cannot be reported.
Exit codes: 0 report printed; 2 bad stack config, price file, argument or Prometheus answer.
"""
