"""`python -m tools.cost`: figures checked against arithmetic done by hand and against a measured
write pattern (tests/fixtures/calibration.yaml), not against the code.

Price figures used below (from the price files): us-east-1 S3 Standard 0.023, Standard-IA 0.0125,
Glacier IR 0.004, Intelligent-Tiering 0.023 / 0.0125 / 0.004 + 0.0025 per 1,000 objects, PUT 0.005
and GET 0.0004 per 1,000, transitions 0.01 (IA, INT) per 1,000, gp3 0.08; ap-northeast-2 S3
Standard 0.025, Standard-IA 0.0138, gp3 0.0912; Hetzner 0.004891 per GB over a 5.00 base fee that
includes 1000 GB. A month is 365/12 = 30.416667 days; GB is 2^30 bytes.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest
import yaml

from components.core import config, loading
from tests.conftest import tool_overrides
from tools import engine
from tools.cost import cli as cost_cli, facts, measure, patterns, prices, pricing, report, timeline, topology, usage

ROOT = Path(__file__).resolve().parent.parent
MONTH = 365 / 12
GIB = 2**30
MIB = 2**20
US = prices.load_prices("aws-us-east-1")
SEOUL = prices.load_prices("aws-ap-northeast-2")
A = prices.assumptions()
# For the pricing arithmetic: what is received is what is stored (ratio 1), chunks are cut at the
# 1.5 MiB target, all logs in one stream, and one sample/s of metrics is one GB a day.
SIMPLE = prices.assumptions({"loki.stored_ratio": "1", "tempo.stored_ratio": "1", "loki.chunk_fill": "1", "loki.streams": "1",
                           "thanos.bytes_per_sample": str(GIB / 86400)})
# One binary of each tool, replication factor 1, upstream defaults elsewhere.
ONE = topology.Topology()


def hypothetical(tools: dict, storage: dict | None = None, tenants: list[str] | None = None, region: str = "us-east-1"):
    """A validated AWS stack; tools not given are disabled."""
    all_tools = {name: {"enabled": False, "bucket": f"acme-test-{name}"} for name in ("loki", "tempo", "thanos")}
    for name, fields in tools.items():
        all_tools[name] = {"bucket": f"acme-test-{name}", **fields}
    raw = {
        "obs-storage:target": "aws",
        "obs-storage:aws": json.dumps({"clusterName": "test-eks"}),
        "obs-storage:storage": json.dumps({"region": region, **(storage or {})}),
        "obs-storage:tools": json.dumps(all_tools),
    }
    if tenants:
        raw["obs-storage:tenants"] = json.dumps(tenants)
    return loading.load("hypothetical", raw, set())


def tool_estimate(cfg, prices=US, ingest=None, a=SIMPLE, headroom=1.3, replicas=3, topo=ONE):
    ingest = {"logs": 0.0, "traces": 0.0, "metrics": 0.0, **(ingest or {})}
    return pricing.estimate(cfg, ingest, prices, a, headroom, replicas, topo)


def stack_cfg(stack: str):
    raw, secret_keys = engine.stack_config(stack)
    return loading.load(stack, raw, set(secret_keys))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.cost", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- reference workloads
@pytest.mark.parametrize("prices, s3_month, gp3_month", [
    # 7.3 GB/day x 400 days = 2920 GB.
    # us-east-1: 2920 x 0.023 = 67.16; gp3 2920 x 1.3 headroom x 3 replicas = 11388 GB x 0.08 = 911.04
    (US, 67.16, 911.04),
    # ap-northeast-2: 2920 x 0.025 = 73.00; gp3 11388 x 0.0912 = 1038.5856
    (SEOUL, 73.00, 1038.5856),
])
def test_metrics_7_3_gb_a_day_for_400_days(prices, s3_month, gp3_month):
    priced = pricing.price_stream(usage.Stream("metrics", 7.3, life_days=400), pricing.BucketRules(), prices, A)
    assert priced.gb == {"STANDARD": pytest.approx(2920)}
    assert priced.cost["storage"] == pytest.approx(s3_month)
    assert pricing.baseline_cost(2920, prices, headroom=1.3, replicas=3) == pytest.approx(gp3_month)


def test_saving_ratio_of_the_metrics_reference():
    # 1 - 67.16 / 911.04 = 1 - 0.073718 = 0.926282
    assert pricing.saving_ratio(67.16, 911.04) == pytest.approx(0.926282, abs=1e-6)
    assert pricing.saving_ratio(0.0, 0.0) is None


@pytest.mark.parametrize("prices, s3_month, gp3_month", [
    # 100 GB: S3 Standard 100 x 0.023 = 2.30, one gp3 copy without headroom 100 x 0.08 = 8.00
    (US, 2.30, 8.00),
    # 100 x 0.025 = 2.50; 100 x 0.0912 = 9.12
    (SEOUL, 2.50, 9.12),
])
def test_100_gb_of_logs(prices, s3_month, gp3_month):
    # 10 GB/day kept 10 days is 100 GB.
    priced = pricing.price_stream(usage.Stream("logs", 10, life_days=10), pricing.BucketRules(), prices, A)
    assert priced.gb["STANDARD"] == pytest.approx(100)
    assert priced.cost["storage"] == pytest.approx(s3_month)
    assert pricing.baseline_cost(100, prices, headroom=1, replicas=1) == pytest.approx(gp3_month)


# ---------------------------------------------------------------- ingest units
def test_ingest_is_converted_to_stored_bytes_with_the_measured_factors():
    # 75 GB/day of raw logs x 0.261 = 19.575; 35 GB/day of OTLP x 0.298 = 10.43
    assert prices.stored_gb_per_day("loki", 75, A) == pytest.approx(19.575)
    assert prices.stored_gb_per_day("tempo", 35, A) == pytest.approx(10.43)
    # 45,000 samples/s x 86,400 s x 2 B = 7,776,000,000 B / 2^30 = 7.2419 GB/day
    assert prices.stored_gb_per_day("thanos", 45_000, A) == pytest.approx(7.2419, abs=1e-4)


def test_the_volume_baseline_holds_the_same_stored_bytes(capsys):
    assert cost_cli.main(["--stack", "staging", "--json", "--ingest", "logs=100", "--assume", "loki.stored_ratio=0.5"]) == 0
    loki = json.loads(capsys.readouterr().out)["tools"]["loki"]
    # 100 GB/day raw x 0.5 = 50 GB/day stored, kept 31 days on gp3:
    #   50 x 31 = 1550 GB x 1.3 x 3 = 6045 GB x 0.0912 = 551.30
    assert loki["gb_per_day"] == 50
    assert loki["baseline"] == {"gb": 6045.0, "cost": 551.3}


def test_ingest_in_unknown_units_is_refused():
    proc = cli("--stack", "staging", "--ingest", "logs_gb=3")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --ingest logs_gb: use logs (GB/day raw), traces (GB/day OTLP) and metrics (samples/s)"


# ---------------------------------------------------------------- write patterns, by hand
def test_loki_requests_of_a_replicated_stack_by_hand():
    cfg = hypothetical({"loki": {"retentionDays": 10, "deleteDelayHours": 0}}, storage={"versioning": False})
    topo = topology.Topology(loki=topology.LokiTopology(ingesters=3, replication_factor=3, index_readers=2))
    loki = tool_estimate(cfg, ingest={"logs": 10}, topo=topo)["tools"]["loki"]
    # 10 GB/day kept 10 days, stored once: 100 GB x 0.023 = 2.30
    assert loki["gb_by_class"] == {"STANDARD": pytest.approx(100)}
    assert loki["cost"]["storage"] == pytest.approx(2.30)
    # One stream adds 10 x 1024 / 24 = 426.67 MiB an hour: 284 full 1.5 MiB chunks, and the sync
    # cut takes the 0.67 MiB left (above 10% of the target): 285 an hour, 6,840 a day, PUT by
    # each of the 3 replicas (no shared chunk cache): 20,520.
    chunks = loki["request_lines"][0]
    assert chunks["put_list_per_month"] == pytest.approx(20_520 * MONTH)
    # PUT-class a day: 20,520 chunk PUTs + 288 TSDB files (3 ingesters x 96 periods)
    #   + 96 compacted indexes (the 96 of 144 compactor runs that find new files, 1 tenant)
    #   + 1,728 compactor LISTs (144 runs x (1 + 11 tables: days 0-10))
    #   + 1,152 reader LISTs (2 readers x 2 held tables x 288 resyncs) = 23,784
    #   x 30.416667 x 0.005 / 1000 = 3.61715
    # GET a day: 288 new files + 96 compacted indexes merged + 2 readers x 96 new indexes = 576
    #   x 30.416667 x 0.0004 / 1000 = 0.007008
    assert loki["cost"]["requests"] == pytest.approx(3.61715 + 0.007008, abs=1e-5)
    # gp3: 10 GB/day x 10 days x 1.3 x 3 x 0.08 = 31.20
    assert loki["baseline"]["cost"] == pytest.approx(31.20)


# Loki v3.7.6 pkg/compactor/config.go Validate: with retention on, apply_retention_interval 0 (the
# default) becomes the compaction interval, and when equal to it min(10m, half of it) more.
@pytest.mark.parametrize("compactor,interval", [
    ({"retention_enabled": True, "compaction_interval": "10m"}, 900),
    ({"retention_enabled": True}, 900),
    ({"retention_enabled": True, "compaction_interval": "4m"}, 360),
    ({"retention_enabled": True, "compaction_interval": "30m"}, 2400),
    ({"retention_enabled": True, "compaction_interval": "10m", "apply_retention_interval": "1h"}, 3600),
    ({"retention_enabled": True, "compaction_interval": "10m", "apply_retention_interval": "10m"}, 900),
    ({"retention_enabled": False, "compaction_interval": "10m"}, None),
    ({}, None),
])
def test_loki_retention_interval_as_loki_resolves_it(compactor, interval):
    assert topology.loki_retention_interval(compactor) == interval


@pytest.mark.parametrize("stack", ["local", "prod", "staging"])
def test_rendered_loki_applies_retention_every_15_minutes(stack):
    cfg = stack_cfg(stack)
    assert topology.stack_topology(stack, cfg).loki.retention_interval_s == 900


def test_loki_retention_runs_list_every_table_by_hand():
    # A day of 96 retention runs (every 15 min), each listing the tables and then each of 11: 1,152
    # LISTs on top of the 144 compaction runs' 1,728; none without retention.
    on = patterns.loki_pattern(GIB, 86_400, topology.LokiTopology(retention_interval_s=900), A, streams=20, tenants=1, tables=11)
    off = patterns.loki_pattern(GIB, 86_400, topology.LokiTopology(), A, streams=20, tenants=1, tables=11)
    assert (on.retention_lists, on.compactor_lists) == (pytest.approx(1_152), pytest.approx(1_728))
    assert off.retention_lists == 0 and off.compactor_lists == on.compactor_lists


def test_tempo_builders_read_each_new_blocks_nocompact_flag_and_meta_by_hand():
    # One ingester cuts a block every 30 min: 48 a day, 2 per 1h window, compacted into 1 (24 a day).
    # The index builder GETs nocompact.flg and meta.json of each of those 72 new blocks (144), and
    # meta.compacted.json of each of the 48 compacted inputs: 192 GETs; no reader, no tenant index GET.
    p = patterns.tempo_pattern(GIB, 86_400, topology.TempoTopology(builders=1, readers=0), A, tenants=1)
    assert (p.blocks, p.compactions) == (pytest.approx(48), pytest.approx(24))
    assert p.poll_gets == pytest.approx(192)


def test_replicated_chunk_overwrites_stay_as_noncurrent_versions():
    cfg = hypothetical({"loki": {"retentionDays": 10, "deleteDelayHours": 0}}, storage={"versioning": True})
    topo = topology.Topology(loki=topology.LokiTopology(ingesters=3, replication_factor=3))
    loki = tool_estimate(cfg, ingest={"logs": 10}, topo=topo)["tools"]["loki"]
    # 100 GB current, plus 2 overwrites of 10 GB/day kept 7 noncurrent days = 140 GB;
    # the current chunks themselves also stay 7 days after deletion: 70 GB. Total 310.
    assert loki["gb_by_class"] == {"STANDARD": pytest.approx(310)}
    assert "2 overwrites stay as noncurrent versions for 7 days" in loki["notes"][0]


@pytest.mark.parametrize("per_hour_mib, chunks_per_hour", [
    # 3 MiB an hour: two full chunks (2 x 1.32 MiB at 0.88 fill), 0.36 MiB left, above the 0.15 MiB
    # sync threshold: cut at the boundary, 3 chunks.
    (3.0, 3),
    # 1 MiB an hour: below a full chunk, above the threshold: one chunk per sync period.
    (1.0, 1),
    # 0.1 MiB an hour: below the threshold; the chunk waits 2 periods (reaching 0.2 MiB) and is cut.
    (0.1, 0.5),
    # 0.01 MiB an hour: max_chunk_age (2h) cuts it before it reaches the threshold.
    (0.01, 0.5),
])
def test_loki_chunks_per_stream_and_sync_period(per_hour_mib, chunks_per_hour):
    got = patterns.loki_chunks_per_stream(per_hour_mib * MIB * 24, 86_400, 1_572_864, 0.88)
    assert got == pytest.approx(chunks_per_hour * 24)


def test_tempo_ingester_blocks_and_compaction_by_hand():
    topo = topology.TempoTopology(ingesters=3, replication_factor=3)
    p = patterns.tempo_pattern(10 * GIB, 86_400, topo, SIMPLE, tenants=1, retention_days=14)
    # 3 ingesters each hold every trace (rf 3) and cut every 30 min: 48 blocks a day each, 144
    # blocks of 10 GB x 3 / 144 = 213.33 MiB.
    assert p.blocks == pytest.approx(144)
    assert p.block_bytes == pytest.approx(10 * 1024 * 3 / 144 * MIB)
    # data.parquet above 16 MiB: create + 14 parts + complete = 16, plus bloom-0, index, meta.json
    assert p.block_requests.put_class == pytest.approx(144 * 19)
    # Per 1h window 6 blocks: one compaction of 4 and one of 2, then one of those 2.
    assert patterns.tempo_compaction_levels(6) == [(2, 6), (1, 2)]
    assert p.compactions == pytest.approx(24 * 3)


def test_tenant_polling_requests_grow_per_tenant():
    # Per poll: every poller LISTs the tenants once; a builder LISTs each tenant in 3 key ranges
    # and writes 2 index objects; a reader GETs each tenant's index.
    assert patterns.tempo_poll(10, 1, 2) == (3 + 30, 20, 20)
    assert patterns.tempo_poll(100, 1, 2) == (3 + 300, 200, 200)
    # More than 3,000 keys per tenant: a second page in each key range.
    assert patterns.tempo_poll(1, 1, 0, keys_per_tenant=3_001) == (1 + 6, 2, 0)


# ---------------------------------------------------------------- topology from the plan
@pytest.mark.parametrize("stack, ingesters, rf", [
    # local: one binary of each tool, replication factor 1
    ("local", 1, 1),
    # Swarm: three replicas of each binary, replication factor 3
    ("prod", 3, 3),
    # EKS: three zone-aware ingesters, replication factor 3
    ("staging", 3, 3),
])
def test_topology_is_what_the_program_renders(stack, ingesters, rf):
    topo = topology.stack_topology(stack, stack_cfg(stack))
    assert (topo.loki.ingesters, topo.loki.replication_factor) == (ingesters, rf)
    assert (topo.tempo.ingesters, topo.tempo.replication_factor) == (ingesters, rf)
    assert topo.source == f"rendered by the program for stack {stack} (offline plan)"


def _registration(typ: str, name: str, inputs: dict) -> engine.Registration:
    return engine.Registration(urn=f"urn:{typ}::{name}", type=typ, name=name, parent="", custom=True, inputs=inputs)


def _service(name: str, replicas: int, args: list[str], config_name: str, path: str) -> engine.Registration:
    return _registration("docker:index/service:Service", name, {
        "mode": {"replicated": {"replicas": float(replicas)}},
        "taskSpec": {"containerSpec": {"args": args, "configs": [{"configName": config_name, "fileName": path}]}}})


def _config(name: str, data: dict) -> engine.Registration:
    import base64
    return _registration("docker:index/serviceConfig:ServiceConfig", name, {"data": base64.b64encode(yaml.safe_dump(data).encode()).decode()})


def test_topology_of_single_binaries_that_keep_separate_rings():
    loki_config = {"schema_config": {}, "common": {"replication_factor": 3, "ring": {"kvstore": {"store": "inmemory"}}}}
    tempo_config = {"storage": {"trace": {"backend": "s3"}}, "ingester": {"lifecycler": {"ring": {"replication_factor": 3}}, "max_block_duration": "1h"}}
    plan = engine.PlanResult("x", [
        _service("loki", 3, ["-config.file=/etc/loki/config.yaml", "-target=all"], "loki-cfg", "/etc/loki/config.yaml"),
        _config("loki-cfg", loki_config),
        _service("tempo", 3, ["-config.file=/etc/tempo/config.yaml", "-target=all"], "tempo-cfg", "/etc/tempo/config.yaml"),
        _config("tempo-cfg", tempo_config),
        _service("store", 2, ["store", "--sync-block-duration=3m"], "none", "/x"),
        _service("sidecar", 1, ["sidecar"], "none", "/x"),
    ], {})
    cfg = hypothetical({"loki": {}, "tempo": {}, "thanos": {}})
    topo = topology.topology_from_plan(plan, cfg)
    # In-memory rings: each Loki replica elects itself compactor; each Tempo compactor owns every
    # block and builds every tenant index.
    assert topo.loki == topology.LokiTopology(ingesters=3, replication_factor=3, index_readers=3, compactors=3)
    assert topo.tempo == topology.TempoTopology(ingesters=3, replication_factor=3, max_block_duration_s=3600,
                                            compaction_copies=3, builders=3, readers=0)
    assert topo.thanos == topology.ThanosTopology(prometheus_replicas=1, uploaders=1, store_gateways=2, store_sync_s=180)
    assert any("each one compacts every block" in n for n in topo.notes)


def test_topology_of_charts_with_their_defaults():
    plan = engine.PlanResult("x", [
        _registration("kubernetes:helm.sh/v4:Chart", "loki", {"chart": "loki", "values": {
            "ingester": {"replicas": 3.0}, "indexGateway": {"replicas": 2.0}, "loki": {"structuredConfig": {}}}}),
        _registration("kubernetes:helm.sh/v4:Chart", "tempo", {"chart": "tempo-distributed", "values": {
            "ingester": {"replicas": 3.0}, "compactor": {"replicas": 3.0}, "querier": {"replicas": 2.0}, "queryFrontend": {"replicas": 1.0}}}),
    ], {})
    cfg = hypothetical({"loki": {}, "tempo": {}})
    topo = topology.topology_from_plan(plan, cfg)
    # Loki chart: replication factor 3 and a memcached chunks cache shared by all ingesters, by default.
    assert topo.loki == topology.LokiTopology(ingesters=3, replication_factor=3, index_readers=2, compactors=1, shared_chunk_cache=True)
    # tempo-distributed: replication factor 3; 2 of 3 sharded compactors build the tenant index,
    # the third, 2 queriers and 1 frontend read it.
    assert topo.tempo == topology.TempoTopology(ingesters=3, replication_factor=3, builders=2, readers=4)


def test_replication_factor_left_unset_is_the_tools_default():
    # Loki's -common.replication-factor and Tempo's ring replication factor both default to 3.
    loki_config = {"schema_config": {}, "common": {"ring": {"kvstore": {"store": "memberlist"}}}}
    tempo_config = {"storage": {"trace": {"backend": "s3"}}}
    plan = engine.PlanResult("x", [
        _service("loki", 3, ["-config.file=/l.yaml"], "loki-cfg", "/l.yaml"), _config("loki-cfg", loki_config),
        _service("tempo", 3, ["-config.file=/t.yaml"], "tempo-cfg", "/t.yaml"), _config("tempo-cfg", tempo_config),
    ], {})
    topo = topology.topology_from_plan(plan, hypothetical({"loki": {}, "tempo": {}}))
    assert topo.loki.replication_factor == 3 and topo.loki.compactors == 1
    assert topo.tempo.replication_factor == 3


def test_a_tool_without_a_workload_in_the_plan_is_an_error():
    with pytest.raises(facts.CostError, match="no tempo workload found in the plan"):
        topology.topology_from_plan(engine.PlanResult("x", [], {}), hypothetical({"tempo": {}}))


@pytest.mark.parametrize("text, expected", [("30m", 1800), ("1h30m", 5400), ("336h", 1_209_600), ("500ms", 0.5), ("1d", 86_400)])
def test_durations(text, expected):
    assert topology.seconds(text) == expected


def test_bad_duration():
    with pytest.raises(facts.CostError, match="is not a duration"):
        topology.seconds("30 minutes")


# ---------------------------------------------------------------- calibration against a measurement
CAL = yaml.safe_load((ROOT / "tests" / "fixtures" / "calibration.yaml").read_text())
RATIO = CAL["tolerance"]["ratio"]


def close(model: float, measured: float) -> bool:
    return max(model / measured, measured / model) <= RATIO


@pytest.fixture(scope="module")
def measured_topology() -> topology.Topology:
    """The topology the measurement ran: the local stack as the program renders it."""
    stack = CAL["loki"]["setup"]["stack"]
    return topology.stack_topology(stack, stack_cfg(stack))


def loki_run(topo: topology.Topology, days: float = 0) -> patterns.LokiPattern:
    s = CAL["loki"]["setup"]
    # The measured run, or whole days at the measured rate.
    duration = days * 86_400 or s["pushed_bytes"] / s["push_rate_bytes_per_s"]
    pushed = s["push_rate_bytes_per_s"] * duration
    a = {**A, "loki.queried_days": s["queried_days"]}
    return patterns.loki_pattern(pushed, duration, topo.loki, a, streams=s["streams"], tenants=s["tenants"],
                             tables=s["index_tables"], final_flush=s["final_flush"] and not days)


def tempo_run(topo: topology.Topology) -> patterns.TempoPattern:
    s = CAL["tempo"]["setup"]
    return patterns.tempo_pattern(s["otlp_bytes"], s["otlp_bytes"] / s["push_rate_bytes_per_s"], topo.tempo, A,
                              tenants=s["tenants"], final_flush=s["final_flush"])


def test_calibration_topology_is_the_measured_one(measured_topology):
    # One binary each, replication factor 1, as in the measurement.
    assert (measured_topology.loki.ingesters, measured_topology.loki.replication_factor) == (1, 1)
    assert (measured_topology.tempo.ingesters, measured_topology.tempo.replication_factor) == (1, 1)


def test_calibration_loki_stored_bytes(measured_topology):
    assert close(loki_run(measured_topology).stored_bytes, CAL["loki"]["measured"]["stored_bytes"])


def test_calibration_loki_chunk_objects_and_puts_per_gib(measured_topology):
    p, m, pushed_gib = loki_run(measured_topology), CAL["loki"]["measured"], CAL["loki"]["setup"]["pushed_bytes"] / GIB
    assert close(p.chunks, m["chunk_objects"])
    # One binary: one PUT per chunk object.
    assert close(p.chunk_puts / pushed_gib, m["chunk_objects"] / pushed_gib)


def test_calibration_loki_full_chunk_size(measured_topology):
    full = A["loki.chunk_fill"] * measured_topology.loki.chunk_target_bytes
    assert close(full, CAL["loki"]["measured"]["full_chunk_mean_bytes"])


def test_calibration_loki_lists_a_day(measured_topology):
    p = loki_run(measured_topology, days=1)
    assert close(p.compactor_lists + p.retention_lists + p.reader_lists, CAL["loki"]["measured"]["lists_per_day"])


@pytest.mark.parametrize("tenants", [1, 3])
def test_calibration_loki_index_files_cover_all_tenants(measured_topology, tenants):
    o = CAL["loki"]["observed"]
    topo = topology.LokiTopology(ingesters=2)
    p = patterns.loki_pattern(GIB, 86_400, topo, A, streams=20, tenants=tenants, tables=1)
    periods = 86_400 / o["index_period_s"]
    assert p.index_uploads == topo.ingesters * periods * o["index_files_per_ingester_per_period"]


@pytest.mark.parametrize("tenants", [1, 3])
def test_calibration_loki_compacted_index_every_run_that_finds_uploads(measured_topology, tenants):
    o = CAL["loki"]["observed"]
    p = patterns.loki_pattern(GIB, 86_400, measured_topology.loki, A, streams=20, tenants=tenants, tables=1)
    # Uploads arrive once per 15-minute period; the compactor runs every 10 minutes, so one run
    # per period finds them and writes a compacted index per tenant.
    assert o["compaction_interval_s"] < o["index_period_s"]
    runs_with_uploads = 86_400 / o["index_period_s"]
    assert p.compacted_uploads == runs_with_uploads * o["compacted_indexes_per_run_with_uploads_per_tenant"] * tenants


def test_calibration_tempo_blocks_and_stored_bytes(measured_topology):
    p, m = tempo_run(measured_topology), CAL["tempo"]["measured"]
    assert close(p.blocks, m["blocks"])
    assert close(p.block_bytes, m["block_bytes"])
    assert close(p.stored_bytes, m["block_bytes"] * m["blocks"])


def test_calibration_tempo_objects_per_block_and_puts_per_gib(measured_topology):
    p, m = tempo_run(measured_topology), CAL["tempo"]["measured"]
    # The measured block is below the multipart threshold: one PUT per object.
    assert p.block_requests.put_class / p.blocks == m["objects_per_block"]
    otlp_gib = CAL["tempo"]["setup"]["otlp_bytes"] / GIB
    assert close(p.block_requests.put_class / otlp_gib, m["objects_per_block"] * m["blocks"] / otlp_gib)


def test_calibration_tempo_uploads_go_multipart_above_the_part_size():
    m = CAL["tempo"]["measured"]
    assert patterns.tempo_block_upload(m["single_put_up_to_bytes"]).put_class == m["objects_per_block"]
    # 1 MiB more: create, 2 parts, complete, then the other objects.
    assert patterns.tempo_block_upload(m["single_put_up_to_bytes"] + MIB).put_class == m["objects_per_block"] - 1 + 4


def test_calibration_tempo_compaction_requests():
    m = CAL["tempo"]["measured"]
    r = patterns.tempo_compaction(2, m["block_bytes"], A)
    assert (r.put_class, r.delete, r.get_class) == (m["compaction_of_2_blocks"]["put_class"],
                                                    m["compaction_of_2_blocks"]["delete"], m["compaction_of_2_blocks"]["get"])


def test_calibration_tempo_polling_per_tenant(measured_topology):
    t, m = measured_topology.tempo, CAL["tempo"]["measured"]["poll_per_tenant"]
    lists, puts, _ = patterns.tempo_poll(CAL["tempo"]["setup"]["tenants"], t.builders, t.readers)
    assert (lists, puts) == (m["list"], m["put"])


# ---------------------------------------------------------------- colder classes
# With SIMPLE, 20 GB/day in one stream adds 853.33 MiB an hour: 568 full 1.5 MiB chunks plus the
# sync cut, 569 an hour, 13,656 chunks a day; 10 GB/day: 285 an hour, 6,840 a day.
def test_standard_ia_transition_one_day_before_deletion_pays_the_30_day_minimum():
    # Like staging: IA at day 30, retention 31 days + 2 h, versioned bucket (7 noncurrent days).
    cfg = hypothetical({"loki": {"retentionDays": 31, "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}],
                                 "expireAfterDays": 35}}, region="ap-northeast-2")
    loki = tool_estimate(cfg, prices=SEOUL, ingest={"logs": 20})["tools"]["loki"]
    # Served 31 d + 2 h = 31.083333 d. STANDARD days 0-30: 20 x 30 = 600 GB.
    # IA: 1.083333 current + 7 noncurrent = 8.083333 days x 20 = 161.6667 GB
    assert loki["gb_by_class"] == {"STANDARD": pytest.approx(600), "STANDARD_IA": pytest.approx(161.6667, abs=1e-3)}
    # 600 x 0.025 + 161.6667 x 0.0138 = 15 + 2.231 = 17.231
    assert loki["cost"]["storage"] == pytest.approx(17.231, abs=1e-3)
    # Billed 30 days, kept 8.083333: 21.916667 d x 20 GB x 0.0138 = 6.049
    assert loki["cost"]["minimum_charges"] == pytest.approx(6.049, abs=1e-3)
    # 13,656 chunks a day transition: x 30.416667 x 0.01 / 1000 = 4.1537
    assert loki["cost"]["transitions"] == pytest.approx(4.1537, abs=1e-4)
    # 5% of the IA data read back: 0.05 x 20 GB x 1.083333 d x 0.01 = 0.010833
    #   + GETs 0.05 x 13,656 x 1.083333 x 0.001 / 1000 = 0.00074
    assert loki["cost"]["retrieval"] == pytest.approx(0.010833 + 0.00074, abs=1e-5)


def test_intelligent_tiering_monitoring_and_tiers():
    cfg = hypothetical({"loki": {"retentionDays": 100, "deleteDelayHours": 0,
                                 "transitions": [{"days": 10, "storageClass": "INTELLIGENT_TIERING"}]}},
                       storage={"versioning": False})
    loki = tool_estimate(cfg, ingest={"logs": 10})["tools"]["loki"]
    # Days 0-10 STANDARD: 100 GB. In INT for 90 days: 30 frequent (300 GB), 60 infrequent (600 GB).
    assert loki["gb_by_class"] == {"STANDARD": pytest.approx(100), "INTELLIGENT_TIERING/frequent": pytest.approx(300),
                                   "INTELLIGENT_TIERING/infrequent": pytest.approx(600)}
    # 100 x 0.023 + 300 x 0.023 + 600 x 0.0125 = 2.3 + 6.9 + 7.5 = 16.70
    assert loki["cost"]["storage"] == pytest.approx(16.70)
    # 6,840 chunks a day x 90 days = 615,600 objects x 0.0025 / 1000 = 1.539
    assert loki["cost"]["monitoring"] == pytest.approx(1.539)
    # 6,840 x 30.416667 x 0.01 / 1000 = 2.0805
    assert loki["cost"]["transitions"] == pytest.approx(2.0805, abs=1e-4)


def test_objects_under_128_kb_are_not_transitioned():
    cfg = hypothetical({"loki": {"retentionDays": 100, "deleteDelayHours": 0,
                                 "transitions": [{"days": 10, "storageClass": "INTELLIGENT_TIERING"}]}},
                       storage={"versioning": False})
    # 100,000 quiet streams: 4.4 KB an hour each, cut every 2 h (max_chunk_age): chunks of about
    # 9 KB, which AWS's default lifecycle filter keeps in STANDARD, unmonitored.
    many = {**SIMPLE, "loki.streams": 100_000}
    loki = tool_estimate(cfg, ingest={"logs": 10}, a=many)["tools"]["loki"]
    # 10 GB/day x 100 days = 1000 GB, all STANDARD
    assert loki["gb_by_class"] == {"STANDARD": pytest.approx(1000)}
    assert loki["cost"]["monitoring"] == 0 and loki["cost"]["transitions"] == 0


def test_minimum_object_size_when_small_objects_do_transition():
    # With the default filter lifted, 64 KiB objects in IA bill as 128 KiB.
    lifted = prices.assumptions({"transition_min_object_kb": "0"})
    # 1 GB/day in 16,384 objects of 64 KiB, IA from day 30 to deletion at day 60.
    stream = usage.Stream("small", 1, life_days=60, objects_per_day=16384)
    priced = pricing.price_stream(stream, pricing.BucketRules(transitions=((30, "STANDARD_IA"),)), US, lifted)
    # 16,384 objects/day x 30 days = 491,520 objects, each 64 KiB short:
    #   491,520 x 64 / 1,048,576 = 30 GB extra x 0.0125 = 0.375
    assert priced.cost["minimum_charges"] == pytest.approx(0.375)


# ---------------------------------------------------------------- Thanos (SIMPLE: 1 sample/s is 1 GB a day)
def test_thanos_400_days_with_downsampling_and_compaction():
    cfg = hypothetical({"thanos": {"retention": {"rawDays": 400, "fiveMinuteDays": 400, "oneHourDays": 400}}},
                       storage={"bucketLifecycle": False})
    thanos = tool_estimate(cfg, ingest={"metrics": 7.3})["tools"]["thanos"]
    # Delete delay 48 h = 2 d, so each resolution lives 402 days as final 14d blocks.
    # raw 7.3/day: 7.3 x 402 = 2934.6, plus waiting in smaller blocks (14 - 1/12)/2 = 6.958333 d
    #   and three rewrites (8h, 2d, 14d) each leaving sources for 2 d: 7.3 x (6.958333 + 6) = 94.5958
    # 5m 0.3 x 7.3 = 2.19/day: 2.19 x 402 = 880.38, plus (14 - 2)/2 = 6 d + one rewrite 2 d: 2.19 x 8 = 17.52
    # 1h 0.05 x 7.3 = 0.365/day: 0.365 x 402 = 146.73 (written directly as 14d blocks)
    # total 2934.6 + 94.5958 + 880.38 + 17.52 + 146.73 = 4073.8258 GB
    assert thanos["gb_by_class"] == {"STANDARD": pytest.approx(4073.8258, abs=1e-3)}
    # 4073.8258 x 0.023 = 93.698
    assert thanos["cost"]["storage"] == pytest.approx(93.698, abs=1e-3)
    # Block volumes keep raw data for the whole 400 days: 7.3 x 400 x 1.3 x 3 x 0.08 = 911.04
    assert thanos["baseline"]["cost"] == pytest.approx(911.04)


def test_thanos_glacier_ir_at_60_days_like_staging():
    cfg = hypothetical({"thanos": {"retention": {"rawDays": 30, "fiveMinuteDays": 90, "oneHourDays": 395},
                                   "transitions": [{"days": 60, "storageClass": "GLACIER_IR"}], "expireAfterDays": 400}})
    thanos = tool_estimate(cfg, ingest={"metrics": 5})["tools"]["thanos"]
    # Versioned bucket: deleted objects stay 7 more days in their last class.
    # raw 5/day, deleted at 32 d (before day 60): 5 x (32 + 7) = 195;
    #   pending 5 x (6.958333 + 3 x 2) = 64.7917; three rewrites of 5/day kept 7 d noncurrent = 105
    # 5m 1.5/day: STANDARD 60 d = 90; pending 1.5 x (6 + 2) = 12; one rewrite 1.5 x 7 = 10.5;
    #   GLACIER_IR 60-92 d + 7 = 39 d x 1.5 = 58.5
    # 1h 0.25/day: STANDARD 60 d = 15; GLACIER_IR 60-397 d + 7 = 344 d x 0.25 = 86
    # STANDARD 195 + 64.7917 + 105 + 90 + 12 + 10.5 + 15 = 492.2917; GLACIER_IR 58.5 + 86 = 144.5
    assert thanos["gb_by_class"] == {"STANDARD": pytest.approx(492.2917, abs=1e-3), "GLACIER_IR": pytest.approx(144.5)}
    # 492.2917 x 0.023 + 144.5 x 0.004 = 11.3227 + 0.578 = 11.9007
    assert thanos["cost"]["storage"] == pytest.approx(11.9007, abs=1e-3)
    # 5m leaves Glacier IR after 39 of the 90 billed days: 51 x 1.5 x 0.004 = 0.306
    assert thanos["cost"]["minimum_charges"] == pytest.approx(0.306, abs=1e-4)


def test_thanos_ha_pair_uploads_twice_and_waits_for_the_first_compaction():
    cfg = hypothetical({"thanos": {"retention": {"rawDays": 400, "fiveMinuteDays": 400, "oneHourDays": 400}}},
                       storage={"bucketLifecycle": False})
    one = tool_estimate(cfg, ingest={"metrics": 7.3})["tools"]["thanos"]
    pair = tool_estimate(cfg, ingest={"metrics": 7.3}, topo=topology.Topology(thanos=topology.ThanosTopology(prometheus_replicas=2, uploaders=2)))["tools"]["thanos"]
    # The second replica's raw 2h blocks wait (8h - 2h)/2 = 3 h = 0.125 d for the first compaction,
    # then --delete-delay 2 d: 7.3 x 2.125 = 15.5125 GB more.
    assert pair["gb_total"] - one["gb_total"] == pytest.approx(15.5125, abs=1e-3)
    uploads = {line["what"]: line["put_list_per_month"] for line in pair["request_lines"]}
    single = {line["what"]: line["put_list_per_month"] for line in one["request_lines"]}
    assert uploads["uploads of 2h blocks"] == pytest.approx(2 * single["uploads of 2h blocks"])


# ---------------------------------------------------------------- timeline
def test_timeline_flags_glacier_while_data_is_served():
    tl = timeline.timeline({"chunks": 31.0}, [(7, "GLACIER")], None)
    assert len(tl["problems"]) == 1
    assert "unreadable from day 7" in tl["problems"][0] and "until day 31" in tl["problems"][0]


def test_timeline_flags_a_rule_that_deletes_before_the_tool():
    # Thanos keeping 1h data forever with a 100-day safety net: the rule deletes served data.
    tl = timeline.timeline({"raw": 32.0, "5m": 92.0, "1h": None}, [], 100)
    assert tl["problems"] == ["1h: the bucket rule deletes it at day 100, before the tool's own retention ends "
                              "(forever): queries return gaps"]
    tl = timeline.timeline({"chunks": 31.083}, [], 31)
    assert "deletes it at day 31, before the tool's own retention ends (day 31.083)" in tl["problems"][0]


def test_timeline_of_a_sound_plan_has_no_problems_and_lists_events_in_order():
    tl = timeline.timeline({"chunks": 31.083333}, [(30, "STANDARD_IA")], 35, 7, {"STANDARD_IA": 30})
    assert tl["problems"] == []
    assert [e["day"] for e in tl["events"]] == pytest.approx([0, 30, 31.083333, 35, 38.083333])
    # IA from day 30 to 31.083333, plus 7 noncurrent days = 8.083333 < 30
    assert tl["notes"] == ["chunks: 8.08333 days in STANDARD_IA, billed 30 (minimum duration): "
                           "the transition at day 30 costs more than it saves"]


def test_timeline_on_a_model_construct_config_the_validator_would_refuse():
    cfg = hypothetical({"loki": {"retentionDays": 31}})
    bad_loki = cfg.tools.loki.model_copy(update={"transitions": [config.Transition(days=10, storage_class="DEEP_ARCHIVE")]})
    bad = config.StackConfig.model_construct(**{**dict(cfg), "tools": cfg.tools.model_copy(update={"loki": bad_loki})})
    rules = pricing.bucket_rules(bad, "loki")
    tl = timeline.timeline(timeline.tool_retentions(bad, "loki"), rules.transitions, rules.expire_days)
    assert any("unreadable from day 10" in p for p in tl["problems"])




def test_timeline_transitions_that_come_too_late_for_some_or_all_data():
    # Thanos-like: raw deleted at 32, 5m at 92, 1h at 397. GLACIER_IR at 60 reaches 5m and 1h only.
    tl = timeline.timeline({"raw": 32.0, "5m": 92.0, "1h": 397.0}, [(60, "GLACIER_IR")], None)
    assert {"day": 60, "event": "moves to GLACIER_IR (bucket rule) for 5m, 1h"} in tl["events"]
    # A transition on the very day the tool deletes everything moves nothing.
    tl = timeline.timeline({"chunks": 31.0}, [(31, "STANDARD_IA")], None)
    assert {"day": 31, "event": "(moves to STANDARD_IA: never reached, every object is deleted before)"} in tl["events"]
    # One day earlier it does: every object spends its last day in STANDARD_IA.
    tl = timeline.timeline({"chunks": 31.0}, [(30, "STANDARD_IA")], None)
    assert {"day": 30, "event": "moves to STANDARD_IA (bucket rule)"} in tl["events"]


def test_timeline_archive_only_flags_data_still_served():
    # GLACIER at day 40: raw is gone at 32 (not reached), 5m is served until 92 (unreadable).
    tl = timeline.timeline({"raw": 32.0, "5m": 92.0}, [(40, "GLACIER")], None)
    assert tl["problems"] == ["5m: unreadable from day 40 (GLACIER needs a restore; queriers get 403 InvalidObjectState) "
                              "while the tool serves it until day 92"]
    # Glacier Instant Retrieval is readable: no problem.
    assert timeline.timeline({"raw": 32.0, "5m": 92.0}, [(40, "GLACIER_IR")], None)["problems"] == []
    # Data kept forever and archived is unreadable forever.
    (problem,) = timeline.timeline({"1h": None}, [(400, "DEEP_ARCHIVE")], None)["problems"]
    assert problem.endswith("while the tool serves it forever")


@pytest.mark.parametrize("expire, problems", [(31, 1), (32, 0)])
def test_timeline_a_rule_expiring_on_the_tools_last_day_is_already_too_early(expire, problems):
    assert len(timeline.timeline({"chunks": 31.0}, [], expire)["problems"]) == problems


def test_timeline_noncurrent_versions_go_after_the_first_deletion():
    # The bucket rule deletes at 20, before the tool's 31: noncurrent versions go 7 days after that.
    tl = timeline.timeline({"chunks": 31.0}, [], 20, 7)
    assert {"day": 27, "event": "chunks: noncurrent versions expire (versioned bucket, 7d)"} in tl["events"]
    # Unversioned: no such event.
    assert not any("noncurrent" in e["event"] for e in timeline.timeline({"chunks": 31.0}, [], 35)["events"])


@pytest.mark.parametrize("deleted, noncurrent, note", [
    # STANDARD_IA from day 30; the 30-day minimum is met at 60 (30 current days) or at 55 + 5 noncurrent days.
    (60.0, None, False), (59.5, None, True), (55.0, 5, False), (55.0, 4, True),
])
def test_timeline_minimum_duration_counts_noncurrent_days_of_the_last_class(deleted, noncurrent, note):
    tl = timeline.timeline({"chunks": deleted}, [(30, "STANDARD_IA")], None, noncurrent, {"STANDARD_IA": 30})
    assert bool(tl["notes"]) == note


def test_timeline_minimum_duration_of_a_class_left_before_deletion():
    # GLACIER_IR days 10-20 then DEEP_ARCHIVE to 300: 10 days in GLACIER_IR billed 90; the 7
    # noncurrent days only extend the last class (DEEP_ARCHIVE 280 + 7 days >= 180).
    tl = timeline.timeline({"x": 300.0}, [(10, "GLACIER_IR"), (20, "DEEP_ARCHIVE")], None, 7, {"GLACIER_IR": 90, "DEEP_ARCHIVE": 180})
    assert [n.split(":")[0:2] for n in tl["notes"]] == [["x", " 10 days in GLACIER_IR, billed 90 (minimum duration)"]]


@pytest.mark.parametrize("standard, cheaper", [(0.0251, True), (0.025, False)])
def test_timeline_a_billed_minimum_that_costs_exactly_as_much_is_not_cheaper(standard, cheaper):
    # 90 billed days x 0.005 = 0.45 against 18 kept days in STANDARD: 18 x 0.025 = 0.45 (equal,
    # no saving) or 18 x 0.0251 = 0.4518 (a saving).
    tl = timeline.timeline({"5m": 78.0}, [(60, "GLACIER_IR")], None, None, {"GLACIER_IR": 90}, {"STANDARD": standard, "GLACIER_IR": 0.005})
    (note,) = tl["notes"]
    assert ("still less than 18 days in STANDARD" in note) == cheaper


def test_timeline_says_when_data_is_kept_forever_without_a_safety_net():
    assert "some data is kept forever: storage grows without bound" in timeline.timeline({"raw": 32.0, "1h": None}, [], None)["notes"]
    assert timeline.timeline({"raw": 32.0, "1h": None}, [], 400)["notes"] == []
    assert timeline.timeline({"raw": 32.0}, [], None)["notes"] == []
    tl = timeline.timeline({"raw": 32.0, "1h": None}, [], None)
    # A kept-forever kind is the last event, with no day.
    assert tl["events"][-1] == {"day": None, "event": "1h: kept and queryable forever (no tool deletion)"}


def test_thanos_retentions_add_the_delete_delay_and_zero_days_is_forever():
    cfg = hypothetical({"thanos": {"retention": {"rawDays": 30, "fiveMinuteDays": 90, "oneHourDays": 0}, "deleteDelayHours": 12}})
    # 12 h delete delay = 0.5 days; 0 days keeps the 1h data forever.
    assert timeline.tool_retentions(cfg, "thanos") == {"raw": 30.5, "5m": 90.5, "1h": None}
    loki = hypothetical({"loki": {"retentionDays": 10, "deleteDelayHours": 6}})
    tempo = hypothetical({"tempo": {"retentionDays": 14, "deleteDelayHours": 12}})
    assert timeline.tool_retentions(loki, "loki") == {"chunks": 10.25}
    assert timeline.tool_retentions(tempo, "tempo") == {"blocks": 14.5}


# ---------------------------------------------------------------- scale
def test_lifecycle_rule_limit_warns_before_it_bites():
    tenants = [f"t{i}" for i in range(850)]
    cfg = hypothetical({"loki": {"expireAfterDays": 40}}, tenants=tenants)
    scale = pricing.scale_checks(cfg, {"logs": 1, "traces": 0, "metrics": 0}, US, A, 1.3, 3, ONE)
    # 850 tenant rules + abort-multipart + noncurrent-versions = 852
    assert scale["lifecycle_rules"]["loki"] == 852
    assert "loki bucket uses 852 of the 1000 lifecycle rules S3 allows" in scale["warnings"]
    assert scale["tenant_room"] == 998
    row = next(r for r in scale["tenants"] if r["tenants"] == 1000)
    assert row["loki_rules"] == 1002 and row["over_rule_limit"]


def test_bucket_name_problems_are_reported():
    cfg = hypothetical({"loki": {}})
    bad = cfg.model_copy(update={"tools": cfg.tools.model_copy(update={"loki": cfg.tools.loki.model_copy(update={"bucket": "acme.logs"})})})
    scale = pricing.scale_checks(bad, {"logs": 1, "traces": 0, "metrics": 0}, US, A, 1.3, 3, ONE)
    assert scale["bucket_names"]["acme.logs"].startswith("contains a dot")


def test_ingest_growth_scales_the_baseline_linearly():
    cfg = hypothetical({"loki": {"retentionDays": 10}}, storage={"versioning": False})
    scale = pricing.scale_checks(cfg, {"logs": 10, "traces": 0, "metrics": 0}, US, SIMPLE, 1.3, 3, ONE)
    # 10 GB/day x 10 days x 1.3 x 3 x 0.08 = 31.20, then x2 and x5
    assert [g["baseline"] for g in scale["ingest_growth"]] == pytest.approx([31.20, 62.40, 156.00])


# ---------------------------------------------------------------- prices
@pytest.mark.parametrize("name", ["aws-ap-northeast-2", "aws-us-east-1", "hetzner-fsn1", "local"])
def test_price_files_name_their_sources_and_date(name):
    data = yaml.safe_load((facts.PRICES_DIR / f"{name}.yaml").read_text())
    assert data["source"] and all(url.startswith("https://") for url in data["source"])
    assert len(str(data["as_of"])) == 10 and data["currency"] in ("USD", "EUR")


def test_local_prices_are_all_zero():
    data = yaml.safe_load((facts.PRICES_DIR / "local.yaml").read_text())
    numbers = [v for section in ("s3", "volume", "account") for v in _numbers(data[section])]
    assert numbers and all(v == 0 for v in numbers)


def _numbers(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _numbers(v)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield node


def test_price_override_from_the_command_line(capsys):
    assert cost_cli.main(["--stack", "prod", "--json", "--price", "s3.STANDARD.gb_month=0.01"]) == 0
    loki = json.loads(capsys.readouterr().out)["tools"]["loki"]
    # prod default 400 GB/day raw x 0.261 = 104.4 GB/day stored, kept 31 d + 2 h = 31.083333 d
    #   on an unversioned bucket: 3245.1 GB x 0.01 = 32.45
    assert loki["gb_total"] == 3245.1 and loki["cost"]["storage"] == 32.45


def test_unknown_price_key_is_an_error():
    proc = cli("--stack", "staging", "--price", "s3.STANDARD.gb_mnth=1")
    assert proc.returncode == 2 and "has no such price" in proc.stderr


def test_hetzner_under_the_included_terabyte_costs_the_base_fee(capsys):
    assert cost_cli.main(["--stack", "prod", "--json", "--ingest", "logs=1,traces=1,metrics=1"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Every GB is covered by the 1000 GB in the base fee: total = 5.00
    assert report["total"]["gb"] < 1000
    assert report["total"]["object_storage"] == 5.00


def _price_file(tmp_path, name="mine.yaml", drop=(), **changes):
    """A copy of the us-east-1 price file, some top-level keys dropped or replaced."""
    data = {k: v for k, v in yaml.safe_load((facts.PRICES_DIR / "aws-us-east-1.yaml").read_text()).items() if k not in drop}
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**data, **changes}))
    return path


@pytest.mark.parametrize("name", ["mine.yaml", "mine.yml"])
def test_a_price_file_given_as_a_path_is_read_as_it_is(tmp_path, name):
    # --prices FILE: a path ending in .yaml or .yml is read where it is, not in tools/cost/prices.
    path = _price_file(tmp_path, name, volume={"name": "gp3", "gb_month": 0.1})
    loaded = prices.load_prices(str(path))
    assert loaded["volume"]["gb_month"] == 0.1
    # Outside the repository the report names the path as given.
    assert loaded["file"] == str(path) and loaded["overrides"] == {}


def test_an_unknown_price_file_names_the_files_there_are():
    with pytest.raises(facts.CostError) as error:
        prices.load_prices("aws-eu-west-9")
    assert str(error.value) == (f"no price file {facts.PRICES_DIR / 'aws-eu-west-9.yaml'}; add one or pass --prices "
                                "(known: aws-ap-northeast-2, aws-us-east-1, hetzner-fsn1, local)")


@pytest.mark.parametrize("key", ["provider", "region", "currency", "as_of", "source", "s3", "volume", "account"])
def test_a_price_file_without_a_required_part_is_refused(tmp_path, key):
    # The report prints the provider, region, currency, date and sources of its prices, prices
    # the bucket from s3, the baseline from volume and the account fee from account.
    path = _price_file(tmp_path, drop=(key,))
    with pytest.raises(facts.CostError) as error:
        prices.load_prices(str(path))
    assert str(error.value) == f"price file {path} has no '{key}'"


def test_a_price_file_without_s3_standard_is_refused(tmp_path):
    # Every tool writes into STANDARD: a file without its price cannot price anything.
    path = _price_file(tmp_path, s3={"STANDARD_IA": {"gb_month": 0.0125}})
    with pytest.raises(facts.CostError, match=r"has no s3\.STANDARD$"):
        prices.load_prices(str(path))


@pytest.mark.parametrize("key, value, problem", [
    # a section, a name and a figure one level too deep are not prices
    ("s3.STANDARD", "1", "has no such price"),
    ("volume.name", "1", "has no such price"),
    ("s3.STANDARD.gb_month.usd", "1", "has no such price"),
    ("nothing.gb_month", "1", "has no such price"),
    ("s3.STANDARD.gb_month", "cheap", "'cheap' is not a number"),
])
def test_price_overrides_that_are_not_a_figure_are_refused(key, value, problem):
    with pytest.raises(facts.CostError, match=f"^--price {key}: .*{problem}"):
        prices.load_prices("aws-us-east-1", {key: value})


def test_a_price_override_changes_only_its_figure_and_is_recorded():
    loaded = prices.load_prices("aws-us-east-1", {"s3.GLACIER_IR.gb_month": "0.0036", "volume.gb_month": "0.1"})
    assert loaded["s3"]["GLACIER_IR"]["gb_month"] == 0.0036 and loaded["volume"]["gb_month"] == 0.1
    # The neighbours keep the file's figures (Glacier IR GET 0.01 per 1,000; Standard 0.023).
    assert loaded["s3"]["GLACIER_IR"]["get_per_1000"] == 0.01 and loaded["s3"]["STANDARD"]["gb_month"] == 0.023
    assert loaded["overrides"] == {"s3.GLACIER_IR.gb_month": "0.0036", "volume.gb_month": "0.1"}
    assert loaded["file"] == "tools/cost/prices/aws-us-east-1.yaml"


def test_a_class_the_price_file_does_not_price_is_an_error():
    hetzner = prices.load_prices("hetzner-fsn1")
    assert prices.class_price(hetzner, "STANDARD")["gb_month"] == 0.004891
    with pytest.raises(facts.CostError) as error:
        prices.class_price(hetzner, "GLACIER_IR")
    assert str(error.value) == ("price file tools/cost/prices/hetzner-fsn1.yaml has no s3.GLACIER_IR "
                                "(the bucket rules move data there)")


@pytest.mark.parametrize("key", ["cold_read_share", "transition_min_object_kb", "loki.queried_days"])
def test_assumptions_that_may_be_zero(key):
    # No cold reads, no minimum object size for transitions, no index reader holding tables.
    assert prices.assumptions({key: "0"})[key] == 0


@pytest.mark.parametrize("overrides, message", [
    ({"loki.stream": "10"}, "--assume loki.stream: unknown (known: cold_read_share, forever_days, loki.chunk_fill, "),
    ({"loki.streams": "many"}, "--assume loki.streams: 'many' is not a number"),
    # Sizes, counts and intervals the model divides by.
    ({"loki.streams": "0"}, "--assume loki.streams: must be more than zero"),
    ({"thanos.bytes_per_sample": "0"}, "--assume thanos.bytes_per_sample: must be more than zero"),
    ({"cold_read_share": "-0.1"}, "--assume cold_read_share: must be zero or more"),
    ({"loki.chunk_fill": "-1"}, "--assume loki.chunk_fill: must be more than zero"),
])
def test_bad_assumptions_are_refused(overrides, message):
    with pytest.raises(facts.CostError) as error:
        prices.assumptions(overrides)
    assert str(error.value).startswith(message)


def test_an_assumption_override_keeps_the_others():
    a = prices.assumptions({"loki.streams": "2000", "cold_read_share": "0.5"})
    assert (a["loki.streams"], a["cold_read_share"]) == (2000, 0.5)
    # The documented defaults stay: loki x0.261, tempo x0.298, 2 B/sample.
    assert (a["loki.stored_ratio"], a["tempo.stored_ratio"], a["thanos.bytes_per_sample"]) == (0.261, 0.298, 2)


@pytest.mark.parametrize("stack, expected", [("local", "local"), ("staging", "aws-ap-northeast-2"), ("prod", "hetzner-fsn1")])
def test_each_stack_is_priced_with_its_targets_region(stack, expected):
    # docs/cost.md: local prices local.yaml, staging (AWS, ap-northeast-2) and prod (Hetzner, fsn1).
    assert prices.price_file_for(stack_cfg(stack)) == expected


# ---------------------------------------------------------------- the command
@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_each_stack_reports_and_json_matches_text(stack, capsys):
    assert cost_cli.main(["--stack", stack]) == 0
    text = capsys.readouterr().out
    assert cost_cli.main(["--stack", stack, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()[:1] in (["loki"], ["tempo"], ["thanos"], ["total"]) and "|" in line}
    for name, tool in data["tools"].items():
        row = rows[name]
        assert float(row[1]) == tool["gb_total"]
        assert [float(v) for v in row[2:9]] == [tool["cost"][c] for c in report.COLUMNS]
        assert [float(row[10]), float(row[11])] == [tool["baseline"]["gb"], tool["baseline"]["cost"]]
    total = rows["total"]
    assert [float(total[1]), float(total[2]), float(total[4]), float(total[5])] == [
        data["total"]["gb"], data["total"]["object_storage"], data["total"]["baseline_gb"], data["total"]["baseline"]]
    assert "retention timeline" in text and "scale checks" in text
    assert f"topology (rendered by the program for stack {stack} (offline plan)):" in text


@pytest.mark.parametrize("text, message", [
    ("logs", "--ingest: 'logs' is not KEY=VALUE"),
    ("logs=-1", "--ingest logs: must not be negative"),
    ("logs=lots", "--ingest logs: 'lots' is not a number"),
])
def test_bad_ingest_is_refused(text, message):
    with pytest.raises(facts.CostError) as error:
        cost_cli.parse_ingest(text, "staging")
    assert str(error.value) == message


def test_ingest_given_replaces_only_its_kinds():
    # Spaces and empty items are forgiven; zero is a valid ingest (a tool that receives nothing).
    ingest, source, given = cost_cli.parse_ingest(" logs = 0 ,, metrics=100", "prod")
    # prod's defaults (docs/cost.md): 400 GB/day logs, 170 GB/day traces, 45,000 samples/s.
    assert ingest == {"logs": 0, "traces": 170, "metrics": 100} and source == "--ingest" and given == {"logs", "metrics"}
    assert cost_cli.parse_ingest(None, "local") == ({"logs": 4, "traces": 2, "metrics": 3_000}, "stack default; set with --ingest", set())
    # A stack without defaults of its own is sized like staging: 75, 35, 30,000.
    assert cost_cli.parse_ingest("", "staging-ec2")[0] == {"logs": 75, "traces": 35, "metrics": 30_000}


def test_spoke_metrics_are_each_spokes_rate_and_the_rest_are_assumed_like_the_hub():
    cfg = stack_cfg("staging")
    topo = cost_cli.with_spokes(ONE, cfg, "staging-us=1500", 30_000)
    # staging-us at 1,500 samples/s as given, staging-batch assumed like the hub: 31,500 in all.
    assert (topo.thanos.spokes, topo.thanos.spoke_samples_per_s) == (2, 31_500)
    assert topo.notes == ("thanos: 2 spoke(s) upload into this bucket (staging-batch 30,000, staging-us 1,500 samples/s; "
                          "staging-batch assumed like this cluster, set with --spoke-metrics LABEL=N); "
                          "its one compactor compacts every cluster's blocks",)
    both = cost_cli.with_spokes(ONE, cfg, "staging-us=0,staging-batch=10", 30_000)
    assert both.thanos.spoke_samples_per_s == 10 and "assumed" not in both.notes[0]


@pytest.mark.parametrize("stack, text, message", [
    ("staging", "staging-us=-1", "--spoke-metrics: samples/s must not be negative"),
    ("staging", "staging-eu=1", "--spoke-metrics staging-eu: not a spoke of this hub (tools.thanos.spokes: staging-batch, staging-us)"),
    ("prod", "edge=1", "--spoke-metrics edge: not a spoke of this hub (tools.thanos.spokes: none)"),
])
def test_bad_spoke_metrics_are_refused(stack, text, message):
    with pytest.raises(facts.CostError) as error:
        cost_cli.with_spokes(ONE, stack_cfg(stack), text, 30_000)
    assert str(error.value) == message


def test_a_hub_without_spokes_and_a_stack_without_thanos_keep_their_topology():
    assert cost_cli.with_spokes(ONE, stack_cfg("prod"), None, 45_000) == ONE
    cfg = hypothetical({"loki": {}})
    assert cost_cli.with_spokes(ONE, cfg, "anything=1", 1) == ONE


def test_a_spoke_in_its_hubs_region_has_no_transfer_note():
    (note,) = cost_cli.with_spokes(ONE, stack_cfg("staging-batch"), None, 1).notes
    assert note == ("thanos: this stack is a spoke; its metrics are stored and costed in the bucket of its hub "
                    "organization/obs-storage/staging (its --spoke-metrics)")


@pytest.mark.parametrize("flag, value, ok", [("--headroom", "0.9", False), ("--replicas", "0.5", False), ("--headroom", "1", True), ("--replicas", "1", True)])
def test_the_volume_baseline_needs_headroom_and_replicas_of_at_least_one(flag, value, ok, capsys):
    assert cost_cli.main(["--stack", "local", "--json", flag, value]) == (0 if ok else 2)
    out, err = capsys.readouterr()
    if ok:
        baseline = json.loads(out)["baseline"]
        assert baseline[flag.lstrip("-")] == 1
    else:
        assert err == "error: --headroom and --replicas must be at least 1\n"


def test_several_stacks_in_json_stop_at_the_first_error_with_the_reports_so_far(capsys):
    assert cost_cli.main(["--stack", "local", "--stack", "nope", "--stack", "prod", "--json"]) == 2
    out, err = capsys.readouterr()
    assert [r["stack"] for r in json.loads(out)] == ["local"] and err.startswith("error: ") and err.count("\n") == 1


def test_command_line_runs_as_a_module():
    proc = cli("--stack", "staging", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["prices"]["file"] == "tools/cost/prices/aws-ap-northeast-2.yaml"
    assert set(data["tools"]) == {"loki", "tempo", "thanos"}
    assert data["ingest"]["metrics"] == {"value": 30_000, "unit": "samples/s"}


def test_measured_defaults_are_marked_with_their_source(capsys):
    assert cost_cli.main(["--stack", "local", "--assume", "tempo.stored_ratio=0.5"]) == 0
    last = capsys.readouterr().out.splitlines()
    line = next(x for x in last if x.startswith("assumptions: "))
    assert "loki.stored_ratio=0.261 (measured)" in line and "tempo.stored_ratio=0.5," in line
    assert any(x.startswith("measured: Loki 3.7.6 and Tempo 2.10.6 binaries") for x in last)


def test_bad_stack_exits_2():
    proc = cli("--stack", "nope")
    assert proc.returncode == 2 and "no stack file" in proc.stderr


# ---------------------------------------------------------------- --from-prometheus
PER_GB_DAY = GIB / 86_400  # bytes/s that make one GB a day


def _vector(*rows):
    return [{"metric": labels, "value": [1_700_000_000, str(value)]} for labels, value in rows]


# Canned answers of a stack's Prometheus, by metric name (rates per second).
CANNED = {
    "loki_distributor_bytes_received_total": _vector(({}, 10 * PER_GB_DAY)),
    "loki_ingester_chunk_stored_bytes_total": _vector(({}, 2.5 * PER_GB_DAY)),
    "loki_ingester_chunks_stored_total": _vector(({}, 0.5)),
    "loki_ingester_memory_streams": _vector(({}, 40)),
    "loki_s3_request_duration_seconds_count": _vector(({"operation": "S3.PutObject"}, 0.5), ({"operation": "S3.List"}, 0.1),
                                                      ({"operation": "S3.GetObject"}, 0.2), ({"operation": "S3.DeleteObject"}, 0.05)),
    "tempo_distributor_bytes_received_total": _vector(({}, 5 * PER_GB_DAY)),
    "tempo_ingester_flush_size_bytes_sum": _vector(({}, 1.5 * PER_GB_DAY)),
    "tempo_ingester_blocks_flushed_total": _vector(({}, 48 / 86_400)),
    "tempodb_backend_request_duration_seconds_count": _vector(({"operation": "PUT"}, 0.2), ({"operation": "POST"}, 0.1),
                                                              ({"operation": "GET"}, 1.0), ({"operation": "DELETE"}, 0.05)),
    "prometheus_tsdb_head_samples_appended_total": _vector(({}, 2_000)),
    # thanos_objstore_bucket_operations_total: not scraped, no series.
}


@pytest.fixture
def fake_prometheus():
    """A Prometheus HTTP API on 127.0.0.1 answering instant queries from CANNED; records the queries."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            query = urllib.parse.parse_qs(url.query).get("query", [""])[0]
            seen.append(query)
            if url.path != "/api/v1/query":
                self.send_response(404)
                self.end_headers()
                return
            if query == "broken(":
                body, status = {"status": "error", "errorType": "bad_data", "error": "parse error"}, 400
            elif query == "proxy(":
                # A proxy in front of Prometheus failing with a page, not JSON.
                payload = b"<html>bad gateway</html>"
                self.send_response(502)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            elif query == "range(":
                body, status = {"status": "success", "data": {"resultType": "matrix", "result": []}}, 200
            elif query == "torn(":
                body, status = {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1]}]}}, 200
            else:
                result = next((rows for name, rows in CANNED.items() if name in query), [])
                body, status = {"status": "success", "data": {"resultType": "vector", "result": result}}, 200
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_prometheus_query_reads_a_vector(fake_prometheus):
    url, _ = fake_prometheus
    rows = measure.prometheus_query(url, "sum by (operation) (rate(loki_s3_request_duration_seconds_count[1d]))")
    assert ({"operation": "S3.List"}, 0.1) in rows and len(rows) == 4


def test_prometheus_refusing_a_query_is_one_line(fake_prometheus):
    url, _ = fake_prometheus
    with pytest.raises(facts.CostError, match=r"refused broken\(: parse error$"):
        measure.prometheus_query(url, "broken(")


@pytest.mark.parametrize("query, message", [
    ("proxy(", r"answered HTTP 502 to proxy\($"),
    ("range(", r"answered 'matrix' to range\(, not a vector$"),
    ("torn(", r"answered torn\( with a malformed vector$"),
])
def test_prometheus_answers_that_are_not_a_vector_are_one_line(fake_prometheus, query, message):
    url, _ = fake_prometheus
    with pytest.raises(facts.CostError, match=f"^Prometheus at {url} {message}"):
        measure.prometheus_query(url, query)


@pytest.mark.parametrize("url, window, problem", [
    # The base URL with its scheme, and a Prometheus range.
    ("127.0.0.1:9090", "1d", "--from-prometheus '127.0.0.1:9090': use the Prometheus base URL"),
    ("http:///api", "1d", "--from-prometheus 'http:///api': use the Prometheus base URL"),
    ("http://127.0.0.1:9", "1 day", "--window '1 day': use a Prometheus range"),
    ("http://127.0.0.1:9", "d", "--window 'd': use a Prometheus range"),
    ("http://127.0.0.1:9", "6h ", "--window '6h ': use a Prometheus range"),
])
def test_bad_prometheus_url_or_window_is_refused_before_any_query(url, window, problem):
    with pytest.raises(facts.CostError) as error:
        measure.measure(url, window, topology.Topology())
    assert str(error.value).startswith(problem)


def test_unreachable_prometheus_is_one_line():
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    proc = cli("--stack", "local", "--from-prometheus", "http://127.0.0.1:9")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot read Prometheus at http://127.0.0.1:9:") and proc.stderr.count("\n") == 1


def test_from_prometheus_replaces_the_assumptions_and_shows_both(fake_prometheus, capsys):
    url, seen = fake_prometheus
    assert cost_cli.main(["--stack", "local", "--json", "--from-prometheus", url, "--window", "6h", "--ingest", "traces=7"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert all("[6h]" in q for q in seen if "rate(" in q)
    # local: replication factor 1, one Prometheus.
    # 10 GB/day received; 2.5 of it stored: ratio 0.25; 40 streams.
    assert r["ingest"]["logs"]["value"] == pytest.approx(10)
    assert r["assumptions"]["loki.stored_ratio"] == pytest.approx(0.25)
    assert r["assumptions"]["loki.streams"] == pytest.approx(40)
    # traces were given on the command line: they stay 7, the ratio is measured: 1.5 / 5 = 0.3.
    assert r["ingest"]["traces"]["value"] == 7
    assert r["assumptions"]["tempo.stored_ratio"] == pytest.approx(0.3)
    assert r["ingest"]["metrics"]["value"] == pytest.approx(2_000)
    loki = {row["figure"]: row for row in r["comparison"]["tools"]["loki"]}
    assert loki["logs (GB/day raw log bytes)"] == {"figure": "logs (GB/day raw log bytes)", "model": 4.0, "measured": pytest.approx(10), "used": "measured"}
    assert loki["loki.stored_ratio"]["model"] == 0.261
    # 0.5 chunks/s x 86,400 = 43,200 a day
    assert loki["chunks written a day"]["measured"] == pytest.approx(43_200)
    # PUT-class: (0.5 PutObject + 0.1 List) x 86,400 = 51,840 a day; GET-class 0.2 x 86,400 = 17,280
    assert loki["PUT-class requests a day"]["measured"] == pytest.approx(51_840)
    assert loki["GET-class requests a day"]["measured"] == pytest.approx(17_280)
    tempo = {row["figure"]: row for row in r["comparison"]["tools"]["tempo"]}
    assert tempo["traces (GB/day OTLP protobuf)"]["used"] == "given"
    # PUT + POST = 0.3/s = 25,920 a day; GET 1.0/s = 86,400 a day
    assert tempo["PUT-class requests a day"]["measured"] == pytest.approx(25_920)
    assert tempo["blocks written a day"]["measured"] == pytest.approx(48)
    thanos = {row["figure"]: row for row in r["comparison"]["tools"]["thanos"]}
    assert thanos["PUT-class requests a day"]["measured"] is None


def test_measured_figures_are_per_copy_of_a_replicated_stack(fake_prometheus):
    url, _ = fake_prometheus
    topo = topology.Topology(loki=topology.LokiTopology(ingesters=3, replication_factor=3),
                             tempo=topology.TempoTopology(ingesters=3, replication_factor=3),
                             thanos=topology.ThanosTopology(prometheus_replicas=2, uploaders=2))
    m = measure.measure(url, "1d", topo)
    # Every replica stores and counts its own copy: 2.5 GB/day stored of 10 received over 3
    # copies is a ratio of 2.5 / 3 / 10 = 0.083333; 40 streams held by 3 ingesters are 13.33
    # streams; 0.5 chunks/s x 86,400 / 3 = 14,400 chunks a day. Tempo: 1.5 / 3 / 5 = 0.1.
    assert m["assumptions"] == {"loki.stored_ratio": pytest.approx(2.5 / 30), "tempo.stored_ratio": pytest.approx(0.1),
                                "loki.streams": pytest.approx(40 / 3)}
    assert m["figures"] == {"loki": {"chunks": pytest.approx(14_400)}, "tempo": {"blocks": pytest.approx(48)}}
    # The HA pair appends every sample twice: 2,000/s counted is 1,000/s of data.
    assert m["ingest"] == {"logs": pytest.approx(10), "traces": pytest.approx(5), "metrics": pytest.approx(1_000)}
    # Requests a day by price class: PutObject and List 0.6/s, GetObject 0.2/s, DeleteObject 0.05/s.
    assert m["requests"]["loki"] == {"put_class": pytest.approx(51_840), "get_class": pytest.approx(17_280),
                                     "delete": pytest.approx(4_320), "other": 0}
    assert m["requests"]["thanos"] is None and (m["url"], m["window"]) == (url, "1d")


def test_a_measurement_replaces_only_what_was_not_given_and_has_a_value():
    m = {"ingest": {"logs": 0.0, "traces": None, "metrics": 500.0},
         "assumptions": {"loki.stored_ratio": 0.3, "tempo.stored_ratio": None, "loki.streams": 0.0}}
    ingest = {"logs": 4.0, "traces": 2.0, "metrics": 3_000.0}
    used, a, before = measure.apply_measurement(m, ingest, A, given={"metrics"})
    # metrics were given; logs measured as zero and traces without a series keep the model's.
    assert used == ingest
    # The measured ratio replaces the assumption; zero streams do not.
    assert (a["loki.stored_ratio"], a["tempo.stored_ratio"], a["loki.streams"]) == (0.3, 0.298, 500)
    assert before == {"logs": 4.0, "traces": 2.0, "metrics": 3_000.0, "loki.stored_ratio": 0.261, "tempo.stored_ratio": 0.298,
                      "loki.streams": 500}
    # The inputs are not changed in place.
    assert A["loki.stored_ratio"] == 0.261
    assert measure.apply_measurement(m, ingest, A, given=set())[0]["metrics"] == 500
    # A small stack's half a GB of logs a day is a measurement like any other.
    small = {**m, "ingest": {"logs": 0.5, "traces": None, "metrics": None}}
    assert measure.apply_measurement(small, ingest, A, given=set())[0]["logs"] == 0.5


def test_metrics_without_series_keep_the_model_and_the_rest_is_still_read(fake_prometheus, monkeypatch):
    url, _ = fake_prometheus
    # A Prometheus that scrapes neither Loki's S3 client nor its ingesters' stored bytes, and
    # sees no logs at all this window (a rate of 0).
    monkeypatch.delitem(CANNED, "loki_s3_request_duration_seconds_count")
    monkeypatch.delitem(CANNED, "loki_ingester_chunk_stored_bytes_total")
    monkeypatch.setitem(CANNED, "loki_distributor_bytes_received_total", _vector(({}, 0)))
    m = measure.measure(url, "1d", topology.Topology())
    assert m["requests"]["loki"] is None and m["assumptions"]["loki.stored_ratio"] is None
    assert m["ingest"]["logs"] == 0
    # The queries after Loki's are still read: Tempo's requests, PUT + POST = 0.3/s = 25,920 a day.
    assert m["requests"]["tempo"]["put_class"] == pytest.approx(25_920)
    # Stored bytes without received bytes make no ratio either (no division by zero).
    monkeypatch.setitem(CANNED, "loki_ingester_chunk_stored_bytes_total", _vector(({}, 2.5 * PER_GB_DAY)))
    assert measure.measure(url, "1d", topology.Topology())["assumptions"]["loki.stored_ratio"] is None


def test_the_model_side_of_the_comparison_is_the_estimates_requests_a_day():
    # The replicated Loki stack of test_loki_requests_of_a_replicated_stack_by_hand: 23,784
    # PUT-class and 576 GET requests a day by hand.
    cfg = hypothetical({"loki": {"retentionDays": 10, "deleteDelayHours": 0}}, storage={"versioning": False})
    topo = topology.Topology(loki=topology.LokiTopology(ingesters=3, replication_factor=3, index_readers=2))
    e = tool_estimate(cfg, ingest={"logs": 10}, topo=topo)
    m = {"ingest": {"logs": None}, "assumptions": {"loki.stored_ratio": None, "loki.streams": None}, "figures": {},
         "requests": {"loki": {"put_class": 20_000.0, "get_class": 500.0}}}
    before = {"logs": 10, "loki.stored_ratio": 1, "loki.streams": 1}
    rows = {r["figure"]: r for r in measure.compare(m, before, {}, SIMPLE, set(), e)["loki"]}
    assert rows["PUT-class requests a day"] == {"figure": "PUT-class requests a day", "model": pytest.approx(23_784), "measured": 20_000,
                                                "used": "model"}
    assert rows["GET-class requests a day"]["model"] == pytest.approx(576)
    # No measurement of an input: the model's value was assumed.
    assert rows["logs (GB/day raw log bytes)"]["used"] == "assumed" and rows["loki.streams"]["measured"] is None


def test_from_prometheus_text_puts_model_and_measurement_side_by_side(fake_prometheus, capsys):
    url, _ = fake_prometheus
    assert cost_cli.main(["--stack", "local", "--from-prometheus", url]) == 0
    text = capsys.readouterr().out
    assert f"model next to the stack's own metrics ({url}, rates over 1d):" in text
    line = next(x for x in text.splitlines() if x.strip().startswith("loki") and "PUT-class requests a day" in x)
    assert line.split()[-2:] == ["51,840", "model"]
    assert any("thanos" in x and "PUT-class" in x and "no series" in x for x in text.splitlines())


# ---------------------------------------------------------------- minimum durations, with prices
def test_a_transition_billed_its_minimum_can_still_cost_less():
    # Staging's Thanos 5m data: GLACIER_IR from day 60, deleted at 92, 7 noncurrent days: 39 days
    # kept, 90 billed. Per GB: 90 x 0.005 = 0.45 in GLACIER_IR against 39 x 0.025 = 0.975 in STANDARD.
    seoul = {"STANDARD": 0.025, "GLACIER_IR": 0.005}
    tl = timeline.timeline({"5m": 92.0}, [(60, "GLACIER_IR")], 400, 7, {"GLACIER_IR": 90}, seoul)
    assert tl["notes"] == ["5m: 39 days in GLACIER_IR, billed 90 (minimum duration): "
                           "still less than 39 days in STANDARD (90 x 0.005 < 39 x 0.025 per GB)"]
    # Loki's old IA rule: 8.083333 days kept, 30 billed: 30 x 0.0138 = 0.414 against 8.083333 x 0.025 = 0.202.
    tl = timeline.timeline({"chunks": 31.083333}, [(30, "STANDARD_IA")], 35, 7, {"STANDARD_IA": 30},
                       {"STANDARD": 0.025, "STANDARD_IA": 0.0138})
    assert tl["notes"] == ["chunks: 8.08333 days in STANDARD_IA, billed 30 (minimum duration): "
                           "the transition at day 30 costs more than it saves"]


# ---------------------------------------------------------------- the documented example
EXAMPLE_HEAD = "`make cost STACK=staging` (actual output):\n\n```\n"


def test_documented_staging_example_is_what_the_report_prints(capsys):
    doc = (ROOT / "docs" / "cost.md").read_text()
    assert EXAMPLE_HEAD in doc, "docs/cost.md has no staging cost example under '## Example: the staging stack'"
    start = doc.index(EXAMPLE_HEAD) + len(EXAMPLE_HEAD)
    example = doc[start:doc.index("\n```\n", start)]
    # The same entry point as `python -m tools.cost`, in process: the staging plan is cached.
    assert cost_cli.main(["--stack", "staging"]) == 0
    printed = capsys.readouterr().out.rstrip("\n")
    assert example == printed, (
        "docs/cost.md's example under '## Example: the staging stack' is not what the report prints now: "
        "run `make cost STACK=staging` (= .venv/bin/python -m tools.cost --stack staging), paste its output "
        "into that block and redo the arithmetic written under it")


# ---------------------------------------------------------------- stacks that own no bucket, and several stacks
def test_a_spoke_without_buckets_says_where_its_data_is_priced(capsys):
    assert cost_cli.main(["--stack", "staging-batch"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Storage cost of stack staging-batch (target aws, region ap-northeast-2): it owns no bucket, so there is nothing to price here",
        "thanos: this stack is a spoke; its metrics are stored and costed in the bucket of its hub organization/obs-storage/staging "
        "(its --spoke-metrics)",
        "thanos: priced in the hub's report: `make cost STACK=staging` (this cluster's samples/s: --spoke-metrics staging-batch=N)",
        "loki, tempo: disabled in this stack"]
    assert cost_cli.main(["--stack", "staging-batch", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tools"] == {} and data["priced_with"] == "organization/obs-storage/staging"
    assert "None" not in json.dumps(data) and "total" not in data


def test_a_stack_without_tempo_shows_no_tempo_rules_rather_than_none(capsys):
    overrides = {"obs-storage:tools": {**tool_overrides("staging")["obs-storage:tools"], "tempo": {"enabled": False}}}
    raw, secret = engine.stack_config("staging", overrides)
    cfg = loading.load("staging", raw, set(secret))
    r = report.report("staging", cfg, facts.DEFAULT_INGEST["staging"], "test", prices.load_prices("aws-ap-northeast-2"),
                      prices.assumptions(), 1.3, 3, topology.stack_topology("staging", cfg))
    rows = [line for line in report.as_text(r).splitlines() if line.strip().startswith(("1 ", "10 ", "100 ", "1000 "))]
    assert len(rows) == 4 and all(row.split()[2] == "-" for row in rows) and "None" not in report.as_text(r)


def test_several_stacks_print_one_json_list(capsys):
    assert cost_cli.main(["--stack", "local", "--stack", "local-spoke", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["stack"] for r in data] == ["local", "local-spoke"] and set(data[0]["tools"]) == {"loki", "tempo", "thanos"}
    assert cost_cli.main(["--stack", "local-spoke", "--stack", "local"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== local-spoke\nStorage cost of stack local-spoke") and "\n== local\nStorage cost of stack local (" in out


# ---------------------------------------------------------------- what the report tells the user, case by case
def test_timeline_lists_every_transition_that_comes_after_deletion():
    # Deleted at day 31: the rules at 60 (GLACIER_IR) and 90 (DEEP_ARCHIVE) both move nothing, and
    # each is listed as such, in day order whatever the order given.
    tl = timeline.timeline({"chunks": 31.0}, [(90, "DEEP_ARCHIVE"), (60, "GLACIER_IR")], None)
    assert [e for e in tl["events"] if "never reached" in e["event"]] == [
        {"day": 60, "event": "(moves to GLACIER_IR: never reached, every object is deleted before)"},
        {"day": 90, "event": "(moves to DEEP_ARCHIVE: never reached, every object is deleted before)"}]
    assert tl["problems"] == []


def test_timeline_judges_data_listed_after_a_kind_kept_forever():
    # "1h" is kept forever (no span to bill); "raw", listed after it, is deleted at day 40 and spends
    # 40 - 30 = 10 days in STANDARD_IA, billed 30.
    tl = timeline.timeline({"1h": None, "raw": 40.0}, [(30, "STANDARD_IA")], None, None, {"STANDARD_IA": 30})
    assert tl["notes"] == ["raw: 10 days in STANDARD_IA, billed 30 (minimum duration): the transition at day 30 costs more than it saves",
                           "some data is kept forever: storage grows without bound"]
    # Versioned: raw's noncurrent versions go 7 days after its deletion (40 + 7); the 1h data is never
    # deleted, so it leaves no noncurrent version.
    tl = timeline.timeline({"1h": None, "raw": 40.0}, [], None, 7)
    assert [e for e in tl["events"] if "noncurrent" in e["event"]] == [
        {"day": 47, "event": "raw: noncurrent versions expire (versioned bucket, 7d)"}]


def _thanos_report(transition_day: int, one_hour_days: int = 0, a=A, delete_delay_hours: int = 48):
    cfg = hypothetical({"thanos": {"retention": {"rawDays": 40, "fiveMinuteDays": 240, "oneHourDays": one_hour_days},
                                   "deleteDelayHours": delete_delay_hours,
                                   "transitions": [{"days": transition_day, "storageClass": "GLACIER_IR"}]}})
    return report.report("hypothetical", cfg, {"logs": 0, "traces": 0, "metrics": 1_000}, "test", US, a, 1.3, 3, ONE)


@pytest.mark.parametrize("delay, day, early", [
    # --delete-delay 48 h = 2 days: blocks are rewritten until day 14 + 2 = 16.
    (48, 15, True), (48, 16, False), (48, 17, False),
    # 24 h: until day 15 exactly; 25 h: until day 15 + 1/24, so a transition at day 15 is early.
    (24, 14, True), (24, 15, False), (25, 15, True),
])
def test_a_thanos_transition_before_compaction_is_done_is_noted(delay, day, early):
    # The compactor rewrites blocks up to 14 days old (its largest level), and deletes what it
    # replaced after --delete-delay: a transition before then moves blocks still rewritten.
    notes = _thanos_report(day, delete_delay_hours=delay)["timeline"]["thanos"]["notes"]
    expected = (f"a transition at day {day} also moves blocks compaction will still rewrite and delete "
                "(transition fees and minimum-duration charges not counted above)")
    assert (expected in notes) == early
    assert not any("compaction will still rewrite" in n for n in notes if n != expected)


def test_data_kept_forever_is_a_warning_with_the_day_it_is_shown_at():
    # oneHourDays 0 keeps the 1h data forever: its GB and cost are those of day forever_days
    # (365 by default, docs/cost.md), and the warning says so; a finite retention has no such warning.
    warning = "thanos: some data is kept forever; its GB and cost are shown at day 365 and keep growing"
    assert warning in _thanos_report(20)["warnings"]
    later = prices.assumptions({"forever_days": "500"})
    assert "thanos: some data is kept forever; its GB and cost are shown at day 500 and keep growing" in _thanos_report(20, a=later)["warnings"]
    assert not any("kept forever" in w for w in _thanos_report(20, one_hour_days=400)["warnings"])


@pytest.mark.parametrize("project", ["metrics-platform", "zz-metrics"])
def test_a_spoke_of_a_hub_in_another_project_gets_no_make_cost_hint(project):
    # `make cost STACK=...` prices stacks of this project only: a hub of another Pulumi project is
    # named, but no command is suggested for it (project names sorting before and after ours).
    tools = tool_overrides("staging-batch")["obs-storage:tools"]
    hub = f"organization/{project}/prod"
    raw, secret = engine.stack_config("staging-batch", {"obs-storage:tools": {**tools, "thanos": {**tools["thanos"], "hub": hub}}})
    cfg = loading.load("staging-batch", raw, set(secret))
    r = report.report("staging-batch", cfg, facts.DEFAULT_INGEST["staging"], "test", SEOUL, A, 1.3, 3, ONE)
    assert r["priced_with"] == hub
    assert r["warnings"] == ["loki, tempo: disabled in this stack"]


def test_the_hetzner_report_shows_the_account_fee_and_no_s3_rule_limit(capsys):
    assert cost_cli.main(["--stack", "prod"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # hetzner-fsn1.yaml: 5.00 a month include 1000 GB; prod stores more than that, so the credit is
    # 1000 x 0.004891 = 4.891 -> 4.89.
    assert "account base fee 5.00 includes 1000 GB: credit -4.89" in lines
    assert "  lifecycle rules per bucket (the 1,000-rule limit is S3's; this target is not S3): loki 0, tempo 0, thanos 0" in lines


def test_the_total_cost_is_printed_under_the_total_column():
    r = report.report("staging", stack_cfg("staging"), facts.DEFAULT_INGEST["staging"], "test", SEOUL, A, 1.3, 3, ONE)
    lines = report.as_text(r).splitlines()
    header = next(x for x in lines if x.startswith("tool "))
    total = next(x for x in lines if x.startswith("total "))
    # The total row's object-storage figure ends where the header's "total" does.
    end = header.index(" total |") + len(" total")
    assert total[:end].endswith(f"{r['total']['object_storage']:.2f}") and total[end:].startswith(" | ")


@pytest.mark.parametrize("value, shown", [
    (None, "no series"), (99.5, "99.5"), (0.123456, "0.1235"),
    # From 100 up: whole numbers with thousands separators (100.4 rounds to 100, 51,840.4 to 51,840).
    (100.4, "100"), (51_840.4, "51,840"), (-250.0, "-250"),
])
def test_compared_figures_are_shown_to_four_digits_or_as_whole_numbers(value, shown):
    assert report._figure(value) == shown


def test_a_cost_rounded_to_zero_is_not_negative():
    # -0.004 rounds to -0.0; the report shows 0.00 (and 0.0 in JSON), never -0.00.
    assert json.dumps([report._money(-0.004), report._gb(-0.004)]) == "[0.0, 0.0]"


def test_the_command_needs_a_stack():
    with pytest.raises(SystemExit) as exit_:
        cost_cli.main([])
    assert exit_.value.code == 2


def test_an_error_prints_no_report_and_no_json(capsys):
    assert cost_cli.main(["--stack", "nope", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1
    # Several stacks as text: the reports so far, the failing stack's heading, then the error; no JSON.
    assert cost_cli.main(["--stack", "local", "--stack", "nope", "--stack", "prod"]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("== local\nStorage cost of stack local (") and out.endswith("\n== nope\n")
    assert "== prod" not in out and err.startswith("error: ")


def test_one_stack_as_text_has_no_heading(capsys):
    assert cost_cli.main(["--stack", "local"]) == 0
    assert capsys.readouterr().out.startswith("Storage cost of stack local (")


def test_an_assumption_given_is_kept_when_measuring(fake_prometheus, capsys):
    # The canned Prometheus measures loki.stored_ratio 2.5 / 10 = 0.25; given 0.5 on the command
    # line, 0.5 is what the report uses, and the comparison says so.
    url, _ = fake_prometheus
    assert cost_cli.main(["--stack", "local", "--json", "--from-prometheus", url, "--assume", "loki.stored_ratio=0.5"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["assumptions"]["loki.stored_ratio"] == 0.5
    loki = {row["figure"]: row for row in r["comparison"]["tools"]["loki"]}
    assert loki["loki.stored_ratio"]["used"] == "given" and loki["loki.stored_ratio"]["measured"] == pytest.approx(0.25)


def test_saving_ratios_are_given_to_four_decimals():
    # 10 GB/day kept 10 days = 100 GB; with requests priced at zero the month costs 100 x 0.023 = 2.30
    # against 100 x 1.3 x 3 = 390 GB of gp3 at 0.08 = 31.20: a saving of 1 - 2.30 / 31.20 = 0.926282...,
    # shown as 0.9263 (92.6 %), and the same at 2x and 5x the ingest (both sides scale linearly).
    free_requests = prices.load_prices("aws-us-east-1", {"s3.STANDARD.put_per_1000": "0", "s3.STANDARD.get_per_1000": "0"})
    cfg = hypothetical({"loki": {"retentionDays": 10, "deleteDelayHours": 0}}, storage={"versioning": False})
    r = report.report("hypothetical", cfg, {"logs": 10, "traces": 0, "metrics": 0}, "test", free_requests, SIMPLE, 1.3, 3, ONE)
    assert r["tools"]["loki"]["cost"]["total"] == 2.30 and r["tools"]["loki"]["baseline"] == {"gb": 390.0, "cost": 31.20}
    assert r["tools"]["loki"]["saving_ratio"] == 0.9263 and r["total"]["saving_ratio"] == 0.9263
    assert [g["saving_ratio"] for g in r["scale"]["ingest_growth"]] == [0.9263] * 3


def test_a_class_without_a_minimum_duration_bills_none():
    # The minimum durations of the price file: INTELLIGENT_TIERING has none (aws-us-east-1.yaml), so
    # two hours in it before deletion (31 + 2/24) bill nothing more; STANDARD_IA bills 30 days.
    min_days = {cls: p["min_days"] for cls, p in US["s3"].items() if "min_days" in p}
    assert "INTELLIGENT_TIERING" not in min_days
    assert timeline.timeline({"chunks": 31 + 2 / 24}, [(31, "INTELLIGENT_TIERING")], None, None, min_days)["notes"] == []
    (note,) = timeline.timeline({"chunks": 31 + 2 / 24}, [(31, "STANDARD_IA")], None, None, min_days)["notes"]
    assert note.startswith("chunks: 0.0833333 days in STANDARD_IA, billed 30 (minimum duration)")


def test_the_early_thanos_transition_named_is_the_first():
    # Both transitions come before day 14 + 2 = 16; the note names the first one, day 10.
    cfg = hypothetical({"thanos": {"deleteDelayHours": 48, "transitions": [{"days": 10, "storageClass": "INTELLIGENT_TIERING"},
                                                                           {"days": 12, "storageClass": "GLACIER_IR"}]}})
    r = report.report("hypothetical", cfg, {"logs": 0, "traces": 0, "metrics": 1_000}, "test", US, A, 1.3, 3, ONE)
    assert [n for n in r["timeline"]["thanos"]["notes"] if "compaction will still rewrite" in n] == [
        "a transition at day 10 also moves blocks compaction will still rewrite and delete "
        "(transition fees and minimum-duration charges not counted above)"]


@pytest.mark.parametrize("given", ["0.2", "0.5"])
def test_an_assumption_given_either_side_of_the_measured_default_is_not_marked_measured(given, capsys):
    # loki.stored_ratio's measured default is 0.261 (docs/cost.md); a value given below or above it
    # is the user's, not the measurement's.
    assert cost_cli.main(["--stack", "local", "--assume", f"loki.stored_ratio={given}"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("assumptions: "))
    assert f"loki.stored_ratio={given}," in line and "tempo.stored_ratio=0.298 (measured)" in line


def test_the_measurement_notes_are_those_of_the_tools_priced(fake_prometheus, monkeypatch, capsys):
    url, _ = fake_prometheus
    assert cost_cli.main(["--stack", "local", "--json", "--from-prometheus", url]) == 0
    assert json.loads(capsys.readouterr().out)["comparison"]["notes"] == [measure.MEASURED_NOTES["tempo"], measure.MEASURED_NOTES["thanos"]]
    # Without Tempo, no note about Tempo's client.
    stack_config = engine.stack_config
    tools = {**tool_overrides("local")["obs-storage:tools"], "tempo": {"enabled": False}}
    monkeypatch.setattr(cost_cli.engine, "stack_config", lambda stack: stack_config(stack, {"obs-storage:tools": tools}))
    assert cost_cli.main(["--stack", "local", "--json", "--from-prometheus", url]) == 0
    assert json.loads(capsys.readouterr().out)["comparison"]["notes"] == [measure.MEASURED_NOTES["thanos"]]


def test_a_stack_config_the_model_refuses_exits_2_with_one_line(monkeypatch, capsys):
    # The package docstring: exit code 2 for a bad stack config, as for a bad argument.
    stack_config = engine.stack_config

    def bad_region(stack):
        raw, secret = stack_config(stack)
        return {**raw, "obs-storage:storage": json.dumps({"region": 5})}, secret

    monkeypatch.setattr(cost_cli.engine, "stack_config", bad_region)
    assert cost_cli.main(["--stack", "local"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: stack 'local': obs-storage:storage.region = 5 is invalid") and err.count("\n") == 1


def test_help_describes_the_command_with_the_packages_first_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        cost_cli.main(["--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    assert "Steady-state monthly cost of a stack's object storage, next to the block volumes it replaces." in out
    assert "one of: local, " in out and "--stack STACK" in out


def test_of_several_unknown_spokes_the_first_in_order_is_named():
    with pytest.raises(facts.CostError) as error:
        cost_cli.with_spokes(ONE, stack_cfg("staging"), "zz=1,aa=1", 30_000)
    assert str(error.value).startswith("--spoke-metrics aa: not a spoke of this hub")


def test_the_reports_so_far_come_before_the_error_in_one_log():
    # `make cost` in CI writes stdout and stderr to one log, stdout through a pipe (block-buffered):
    # each heading is flushed before the next stack is tried, so the error follows its own heading.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.run([sys.executable, "-m", "tools.cost", "--stack", "local", "--stack", "nope"], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout.startswith("== local\nStorage cost of stack local (")
    assert "\n== nope\nerror: " in proc.stdout and proc.stdout.count("\n== ") == 1


def test_prices_named_on_the_command_line_replace_the_stacks(capsys):
    # staging is priced in ap-northeast-2 by default; --prices aws-us-east-1 prices it in us-east-1.
    assert cost_cli.main(["--stack", "staging", "--json", "--prices", "aws-us-east-1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["prices"]["file"], data["prices"]["region"]) == ("tools/cost/prices/aws-us-east-1.yaml", "us-east-1")
    # us-east-1's gp3 at 0.08 a GB-month (aws-us-east-1.yaml), not Seoul's 0.0912.
    assert data["baseline"]["gb_month"] == 0.08


def test_a_stack_with_every_tool_disabled_is_priced_nowhere():
    # Thanos off but still configured as a spoke of staging: it uploads nothing, so nothing of this
    # stack is priced in the hub's report either.
    tools = {"loki": {"enabled": False}, "tempo": {"enabled": False},
             "thanos": {"enabled": False, "role": "spoke", "hub": "organization/obs-storage/staging"}}
    raw, secret = engine.stack_config("staging-batch", {"obs-storage:tools": tools})
    cfg = loading.load("staging-batch", raw, set(secret))
    r = report.report("staging-batch", cfg, facts.DEFAULT_INGEST["staging"], "test", SEOUL, A, 1.3, 3, ONE)
    assert r["priced_with"] is None and r["warnings"] == ["loki, tempo, thanos: disabled in this stack"]
