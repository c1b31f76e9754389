"""`python -m tools.cost`: figures checked against arithmetic done by hand, not against the code.

Price figures used below (from the price files): us-east-1 S3 Standard 0.023, Standard-IA 0.0125,
Glacier IR 0.004, Intelligent-Tiering 0.023 / 0.0125 / 0.004 + 0.0025 per 1,000 objects, PUT 0.005
and GET 0.0004 per 1,000, transitions 0.01 (IA, INT) per 1,000, gp3 0.08; ap-northeast-2 S3
Standard 0.025, Standard-IA 0.0138, gp3 0.0912; Hetzner 0.004891 per GB over a 5.00 base fee that
includes 1000 GB. A month is 365/12 = 30.416667 days.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import config
from tools import cost

ROOT = Path(__file__).resolve().parent.parent
MONTH = 365 / 12
US = cost.load_prices("aws-us-east-1")
SEOUL = cost.load_prices("aws-ap-northeast-2")
A = cost.assumptions()


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
    return config.load("hypothetical", raw, set())


def tool_estimate(cfg, prices=US, ingest=None, a=A, headroom=1.3, replicas=3):
    ingest = {"logs": 0.0, "traces": 0.0, "metrics": 0.0, **(ingest or {})}
    return cost.estimate(cfg, ingest, prices, a, headroom, replicas)


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
    priced = cost.price_stream(cost.Stream("metrics", 7.3, life_days=400), cost.BucketRules(), prices, A)
    assert priced.gb == {"STANDARD": pytest.approx(2920)}
    assert priced.cost["storage"] == pytest.approx(s3_month)
    assert cost.baseline_cost(2920, prices, headroom=1.3, replicas=3) == pytest.approx(gp3_month)


def test_saving_ratio_of_the_metrics_reference():
    # 1 - 67.16 / 911.04 = 1 - 0.073718 = 0.926282
    assert cost.saving_ratio(67.16, 911.04) == pytest.approx(0.926282, abs=1e-6)
    assert cost.saving_ratio(0.0, 0.0) is None


@pytest.mark.parametrize("prices, s3_month, gp3_month", [
    # 100 GB: S3 Standard 100 x 0.023 = 2.30, one gp3 copy without headroom 100 x 0.08 = 8.00
    (US, 2.30, 8.00),
    # 100 x 0.025 = 2.50; 100 x 0.0912 = 9.12
    (SEOUL, 2.50, 9.12),
])
def test_100_gb_of_logs(prices, s3_month, gp3_month):
    # 10 GB/day kept 10 days is 100 GB.
    priced = cost.price_stream(cost.Stream("logs", 10, life_days=10), cost.BucketRules(), prices, A)
    assert priced.gb["STANDARD"] == pytest.approx(100)
    assert priced.cost["storage"] == pytest.approx(s3_month)
    assert cost.baseline_cost(100, prices, headroom=1, replicas=1) == pytest.approx(gp3_month)


def test_loki_100_gb_with_requests_from_chunk_flushes():
    cfg = hypothetical({"loki": {"retentionDays": 10, "deleteDelayHours": 0}}, storage={"versioning": False})
    loki = tool_estimate(cfg, ingest={"logs": 10})["tools"]["loki"]
    assert loki["gb_by_class"] == {"STANDARD": pytest.approx(100)}
    assert loki["cost"]["storage"] == pytest.approx(2.30)
    chunks = loki["request_lines"][0]
    # 10 GB/day x 1024 MiB / 1.5 MiB chunks = 6826.67 chunks/day x 30.416667 = 207,644.4 PUTs a month
    assert chunks["put_list_per_month"] == pytest.approx(207_644.4, abs=0.1)
    # PUT/LIST per day: 6826.67 chunks + 288 index uploads (3 ingesters x 1 tenant x 96 a day)
    #   + 1 compacted index + 576 index-sync LISTs (2 readers x 288 polls) = 7691.67
    #   x 30.416667 = 233,954 x 0.005 / 1000 = 1.16977
    # GET: the compactor reads the 288 index files a day: 8760 a month x 0.0004 / 1000 = 0.003504
    assert loki["cost"]["requests"] == pytest.approx(1.16977 + 0.003504, abs=1e-4)
    # gp3: 10 GB/day x 10 days x 1.3 x 3 x 0.08 = 31.20
    assert loki["baseline"]["cost"] == pytest.approx(31.20)


# ---------------------------------------------------------------- colder classes
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
    # 20 x 1024 / 1.5 = 13,653.33 chunks a day transition: x 30.416667 x 0.01 / 1000 = 4.1529
    assert loki["cost"]["transitions"] == pytest.approx(4.1529, abs=1e-3)
    # 5% of the IA data read back: 0.05 x 20 GB x 1.083333 d x 0.01 = 0.010833
    #   + GETs 0.05 x 13,653.33 x 1.083333 x 0.001 / 1000 = 0.00074
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
    # 10 x 1024 / 1.5 = 6826.67 chunks a day x 90 days = 614,400 objects x 0.0025 / 1000 = 1.536
    assert loki["cost"]["monitoring"] == pytest.approx(1.536)
    # 6826.67 x 30.416667 x 0.01 / 1000 = 2.0764
    assert loki["cost"]["transitions"] == pytest.approx(2.0764, abs=1e-4)


def test_objects_under_128_kb_are_not_transitioned():
    cfg = hypothetical({"loki": {"retentionDays": 100, "deleteDelayHours": 0,
                                 "transitions": [{"days": 10, "storageClass": "INTELLIGENT_TIERING"}]}},
                       storage={"versioning": False})
    # 0.1 MiB = 102.4 KB chunks: AWS's default lifecycle filter keeps them in STANDARD, unmonitored.
    small = cost.assumptions({"loki.chunk_mb": "0.1"})
    loki = tool_estimate(cfg, ingest={"logs": 10}, a=small)["tools"]["loki"]
    # 10 GB/day x 100 days = 1000 GB, all STANDARD
    assert loki["gb_by_class"] == {"STANDARD": pytest.approx(1000)}
    assert loki["cost"]["monitoring"] == 0 and loki["cost"]["transitions"] == 0


def test_minimum_object_size_when_small_objects_do_transition():
    # With the default filter lifted, 64 KiB objects in IA bill as 128 KiB.
    lifted = cost.assumptions({"transition_min_object_kb": "0"})
    # 1 GB/day in 16,384 objects of 64 KiB, IA from day 30 to deletion at day 60.
    stream = cost.Stream("small", 1, life_days=60, objects_per_day=16384)
    priced = cost.price_stream(stream, cost.BucketRules(transitions=((30, "STANDARD_IA"),)), US, lifted)
    # 16,384 objects/day x 30 days = 491,520 objects, each 64 KiB short:
    #   491,520 x 64 / 1,048,576 = 30 GB extra x 0.0125 = 0.375
    assert priced.cost["minimum_charges"] == pytest.approx(0.375)


# ---------------------------------------------------------------- Thanos
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


# ---------------------------------------------------------------- timeline
def test_timeline_flags_glacier_while_data_is_served():
    tl = cost.timeline({"chunks": 31.0}, [(7, "GLACIER")], None)
    assert len(tl["problems"]) == 1
    assert "unreadable from day 7" in tl["problems"][0] and "until day 31" in tl["problems"][0]


def test_timeline_flags_a_rule_that_deletes_before_the_tool():
    # Thanos keeping 1h data forever with a 100-day safety net: the rule deletes served data.
    tl = cost.timeline({"raw": 32.0, "5m": 92.0, "1h": None}, [], 100)
    assert tl["problems"] == ["1h: the bucket rule deletes it at day 100, before the tool's own retention ends "
                              "(forever): queries return gaps"]
    tl = cost.timeline({"chunks": 31.083}, [], 31)
    assert "deletes it at day 31, before the tool's own retention ends (day 31.083)" in tl["problems"][0]


def test_timeline_of_a_sound_plan_has_no_problems_and_lists_events_in_order():
    tl = cost.timeline({"chunks": 31.083333}, [(30, "STANDARD_IA")], 35, 7, {"STANDARD_IA": 30})
    assert tl["problems"] == []
    assert [e["day"] for e in tl["events"]] == pytest.approx([0, 30, 31.083333, 35, 38.083333])
    # IA from day 30 to 31.083333, plus 7 noncurrent days = 8.083333 < 30
    assert tl["notes"] == ["chunks: 8.08333 days in STANDARD_IA, billed 30 (minimum duration): "
                           "the transition at day 30 costs more than it saves"]


def test_timeline_on_a_model_construct_config_the_validator_would_refuse():
    cfg = hypothetical({"loki": {"retentionDays": 31}})
    bad_loki = cfg.tools.loki.model_copy(update={"transitions": [config.Transition(days=10, storage_class="DEEP_ARCHIVE")]})
    bad = config.StackConfig.model_construct(**{**dict(cfg), "tools": cfg.tools.model_copy(update={"loki": bad_loki})})
    rules = cost.bucket_rules(bad, "loki")
    tl = cost.timeline(cost.tool_retentions(bad, "loki"), rules.transitions, rules.expire_days)
    assert any("unreadable from day 10" in p for p in tl["problems"])


# ---------------------------------------------------------------- scale
def test_tenant_polling_requests_grow_per_tenant():
    def polling_cost(tenants: int) -> float:
        cfg = hypothetical({"tempo": {}}, tenants=[f"t{i}" for i in range(tenants)])
        lines = cost.price_requests(cost.tempo_load(cfg, 10, A).requests, US)
        return next(line["cost"] for line in lines if line["what"].startswith("blocklist polling"))

    # Per tenant a day: 288 polls x 2 PUT/LIST (tenant index + LIST) and 2 readers x 288 GET.
    # A month: 17,520 PUT/LIST x 0.005 / 1000 = 0.0876; 17,520 GET x 0.0004 / 1000 = 0.007008
    # 90 more tenants: 90 x 0.094608 = 8.51472
    assert polling_cost(100) - polling_cost(10) == pytest.approx(8.51472)


def test_lifecycle_rule_limit_warns_before_it_bites():
    tenants = [f"t{i}" for i in range(850)]
    cfg = hypothetical({"loki": {"expireAfterDays": 40}}, tenants=tenants)
    scale = cost.scale_checks(cfg, {"logs": 1, "traces": 0, "metrics": 0}, US, A, 1.3, 3)
    # 850 tenant rules + abort-multipart + noncurrent-versions = 852
    assert scale["lifecycle_rules"]["loki"] == 852
    assert "loki bucket uses 852 of the 1000 lifecycle rules S3 allows" in scale["warnings"]
    assert scale["tenant_room"] == 998
    row = next(r for r in scale["tenants"] if r["tenants"] == 1000)
    assert row["loki_rules"] == 1002 and row["over_rule_limit"]


def test_bucket_name_problems_are_reported():
    cfg = hypothetical({"loki": {}})
    bad = cfg.model_copy(update={"tools": cfg.tools.model_copy(update={"loki": cfg.tools.loki.model_copy(update={"bucket": "acme.logs"})})})
    scale = cost.scale_checks(bad, {"logs": 1, "traces": 0, "metrics": 0}, US, A, 1.3, 3)
    assert scale["bucket_names"]["acme.logs"].startswith("contains a dot")


def test_ingest_growth_scales_the_baseline_linearly():
    cfg = hypothetical({"loki": {"retentionDays": 10}}, storage={"versioning": False})
    scale = cost.scale_checks(cfg, {"logs": 10, "traces": 0, "metrics": 0}, US, A, 1.3, 3)
    # 10 GB/day x 10 days x 1.3 x 3 x 0.08 = 31.20, then x2 and x5
    assert [g["baseline"] for g in scale["ingest_growth"]] == pytest.approx([31.20, 62.40, 156.00])


# ---------------------------------------------------------------- prices
@pytest.mark.parametrize("name", ["aws-ap-northeast-2", "aws-us-east-1", "hetzner-fsn1", "local"])
def test_price_files_name_their_sources_and_date(name):
    data = yaml.safe_load((cost.PRICES_DIR / f"{name}.yaml").read_text())
    assert data["source"] and all(url.startswith("https://") for url in data["source"])
    assert len(str(data["as_of"])) == 10 and data["currency"] in ("USD", "EUR")


def test_local_prices_are_all_zero():
    data = yaml.safe_load((cost.PRICES_DIR / "local.yaml").read_text())
    numbers = [v for section in ("s3", "volume", "account") for v in _numbers(data[section])]
    assert numbers and all(v == 0 for v in numbers)


def _numbers(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _numbers(v)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield node


def test_price_override_from_the_command_line(capsys):
    assert cost.main(["--stack", "prod", "--json", "--price", "s3.STANDARD.gb_month=0.01"]) == 0
    loki = json.loads(capsys.readouterr().out)["tools"]["loki"]
    # prod default 100 GB/day x (31 d + 2 h = 31.083333 d) = 3108.33 GB x 0.01 = 31.08
    assert loki["gb_total"] == 3108.33 and loki["cost"]["storage"] == 31.08


def test_unknown_price_key_is_an_error():
    proc = cli("--stack", "staging", "--price", "s3.STANDARD.gb_mnth=1")
    assert proc.returncode == 2 and "has no such price" in proc.stderr


def test_hetzner_under_the_included_terabyte_costs_the_base_fee(capsys):
    assert cost.main(["--stack", "prod", "--json", "--ingest", "logs=1,traces=1,metrics=1"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Every GB is covered by the 1000 GB in the base fee: total = 5.00
    assert report["total"]["gb"] < 1000
    assert report["total"]["object_storage"] == 5.00


# ---------------------------------------------------------------- the command
@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_each_stack_reports_and_json_matches_text(stack, capsys):
    assert cost.main(["--stack", stack]) == 0
    text = capsys.readouterr().out
    assert cost.main(["--stack", stack, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.split()[:1] in (["loki"], ["tempo"], ["thanos"], ["total"]) and "|" in line}
    for name, tool in data["tools"].items():
        row = rows[name]
        assert float(row[1]) == tool["gb_total"]
        assert [float(v) for v in row[2:9]] == [tool["cost"][c] for c in cost.COLUMNS]
        assert [float(row[10]), float(row[11])] == [tool["baseline"]["gb"], tool["baseline"]["cost"]]
    total = rows["total"]
    assert [float(total[1]), float(total[2]), float(total[4]), float(total[5])] == [
        data["total"]["gb"], data["total"]["object_storage"], data["total"]["baseline_gb"], data["total"]["baseline"]]
    assert "retention timeline" in text and "scale checks" in text


def test_command_line_runs_as_a_module():
    proc = cli("--stack", "staging", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["prices"]["file"] == "tools/prices/aws-ap-northeast-2.yaml"
    assert set(data["tools"]) == {"loki", "tempo", "thanos"}


def test_bad_stack_exits_2():
    proc = cli("--stack", "nope")
    assert proc.returncode == 2 and "no stack file" in proc.stderr
