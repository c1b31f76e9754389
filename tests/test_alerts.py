"""The alert rules, as each stack deploys them, checked by promtool: `promtool check rules` on the
rule files, and `promtool test rules` on the cases in tests/alerts/cases.yaml (every alert fires
on a failing series and stays silent on a healthy one), on every platform's rendering.

promtool comes from OBS_PROMETHEUS_BIN_DIR (Prometheus 3.x unpacked by .ci/install-prometheus,
which .ci/run exports) or from PATH; the tests run with every
promtool found. Without any, they fail in CI (CI=true) and are skipped, loudly, elsewhere.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from components.containers import monitoring
from components.core.renderers import alerts
from tests import documents
from tests.conftest import tool_overrides

CASES = yaml.safe_load((Path(__file__).resolve().parent / "alerts" / "cases.yaml").read_text())
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NS = "observability"


def _promtools() -> list[str]:
    found = []
    directory = os.environ.get("OBS_PROMETHEUS_BIN_DIR")
    if directory and (Path(directory) / "promtool").exists():
        found.append(str(Path(directory) / "promtool"))
    on_path = shutil.which("promtool")
    if on_path and on_path not in found:
        found.append(on_path)
    return found


PROMTOOLS = _promtools()


def _version(promtool: Optional[str]) -> str:
    if promtool is None:
        return "no-promtool"
    out = subprocess.run([promtool, "--version"], capture_output=True, text=True, timeout=30).stdout
    match = re.search(r"version (\S+)", out)
    return f"promtool-{match.group(1) if match else promtool}"


@pytest.fixture(params=PROMTOOLS or [None], ids=_version)
def promtool(request) -> str:
    if request.param is None:
        message = "promtool not found: run `export OBS_PROMETHEUS_BIN_DIR=\"$(.ci/install-prometheus)\"` (or put a promtool on PATH)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        print(f"\nSKIPPED LOUDLY: {message}")
        pytest.skip(message)
    return request.param


# ---------------------------------------------------------------- platforms, as facts of the test
@dataclass
class Platform:
    stack: str
    thanos: Optional[dict]  # tools.thanos overrides
    targets: dict[str, dict[str, str]]  # component -> labels of its scrape target
    absent: dict[str, dict[str, str]]  # component -> labels absent(up{<its selector>}) keeps


def _docker(names: dict[str, str], pair: tuple[str, ...] = ("prometheus", "sidecar")) -> dict[str, dict[str, str]]:
    out = {}
    for component, target in names.items():
        job, _, rest = target.partition("@")
        out[component] = {"job": job, "instance": rest}
        if component in pair:
            out[component]["obs_prometheus"] = "prometheus-0"
    return out


DOCKER = {
    "prometheus": "prometheus@localhost:9090", "sidecar": "thanos-sidecar@thanos-sidecar:10902", "store": "thanos-store@thanos-store:10902",
    "compact": "thanos-compact@thanos-compact:10902", "query": "thanos-query@thanos-query:10902", "loki": "loki@loki:3100",
    "tempo": "tempo@tempo:3200", "freshness": "bucket-freshness@bucket-freshness-loki:9109", "alertmanager": "alertmanager@alertmanager:9093",
}
LOCAL = {**DOCKER, "minio": "minio@minio:9000"}
RECEIVE = {k: v for k, v in LOCAL.items() if k != "sidecar"} | {"receive": "thanos-receive@thanos-receive-0:10902"}
PROD = {**DOCKER, "ring": "ring-kv@ring-kv:2379"}


def _eks_target(job: str, pod: str, ip: str, port: int) -> dict[str, str]:
    return {"job": job, "namespace": NS, "pod": pod, "instance": f"{ip}:{port}"}


EKS_TARGETS = {
    # The sidecar runs in the Prometheus pod: the two share namespace and pod.
    "prometheus": _eks_target("kps-prometheus", "prometheus-kps-prometheus-0", "10.0.1.5", 9090),
    "sidecar": _eks_target("kps-thanos-discovery", "prometheus-kps-prometheus-0", "10.0.1.5", 10902),
    "store": _eks_target("thanos-store", "thanos-store-6d8f9-x2x7q", "10.0.2.7", 10902),
    "compact": _eks_target("thanos-compact", "thanos-compact-7c4b5-kq2zp", "10.0.2.8", 10902),
    "query": _eks_target("thanos-query", "thanos-query-5f6d7-m8n9p", "10.0.2.9", 10902),
    "loki": _eks_target(f"{NS}/loki-ingester-zone-a", "loki-ingester-zone-a-0", "10.0.3.4", 3100),
    "canary": _eks_target(f"{NS}/loki-canary", "loki-canary-84f6c-p4t6w", "10.0.3.9", 3500),
    "tempo": _eks_target(f"{NS}/ingester", "tempo-ingester-zone-a-0", "10.0.4.4", 3200),
    "freshness": _eks_target("bucket-freshness", "bucket-freshness-loki-7b9c8-h5j2k", "10.0.5.5", 9109),
    "alertmanager": _eks_target("kps-alertmanager", "alertmanager-kps-alertmanager-0", "10.0.6.6", 9093),
}
# Loki, its canary and Tempo are selected with a job regular expression on EKS: absent() keeps
# only the namespace there.
EKS_ABSENT = {c: ({"namespace": NS} if c in ("loki", "tempo") else {"namespace": NS, "job": t["job"]}) for c, t in EKS_TARGETS.items()}

PLATFORMS = {
    "local": Platform("local", None, _docker(LOCAL), {c: {"job": t.split("@")[0]} for c, t in LOCAL.items()}),
    "local-receive": Platform("local", {"mode": "receive", "receiveReplicationFactor": 3}, _docker(RECEIVE),
                              {c: {"job": t.split("@")[0]} for c, t in RECEIVE.items()}),
    "prod": Platform("prod", None, _docker(PROD), {c: {"job": t.split("@")[0]} for c, t in PROD.items()}),
    "staging": Platform("staging", None, EKS_TARGETS, EKS_ABSENT),
}


# ---------------------------------------------------------------- the rules each plan deploys
def deployed_rules(result, platform: Platform) -> dict[str, Any]:
    if platform.stack == "local":
        (prom,) = [c for c in result.by_type("docker:index/container:Container") if c.inputs["name"].endswith("-prometheus")]
        (upload,) = [u for u in prom.inputs["uploads"] if u["file"] == monitoring.RULES_FILE]
        return yaml.safe_load(upload["content"])
    if platform.stack == "prod":
        (prom,) = [s for s in result.by_type("docker:index/service:Service") if s.inputs["name"].endswith("-prometheus")]
        (config,) = [c for c in prom.inputs["taskSpec"]["containerSpec"]["configs"] if c["fileName"] == monitoring.RULES_FILE]
        (data,) = [c.inputs["data"] for c in result.by_type("docker:index/serviceConfig:ServiceConfig") if config["configName"] in (c.name, c.inputs.get("name"))]
        return yaml.safe_load(base64.b64decode(data))
    (kps,) = [c for c in result.by_type("kubernetes:helm.sh/v4:Chart") if c.inputs.get("name") == "kps"]
    return {"groups": kps.inputs["values"]["additionalPrometheusRulesMap"]["obs-storage"]["groups"]}


@pytest.fixture(params=sorted(PLATFORMS))
def deployed(request, plan, plan_with) -> tuple[str, Platform, dict[str, Any]]:
    platform = PLATFORMS[request.param]
    result = plan(platform.stack) if platform.thanos is None else plan_with(platform.stack, tool_overrides(platform.stack, thanos=platform.thanos))
    return request.param, platform, deployed_rules(result, platform)


# ---------------------------------------------------------------- cases -> promtool test files
def _expand_series(text: str, platform: Platform) -> str:
    def labels(match: re.Match) -> str:
        component, second = match.group(1), match.group(2) == "+"
        target = dict(platform.targets[component])
        if second:
            target = {k: (f"{v}-2" if k in ("instance", "pod") else v) for k, v in target.items()}
        return ", ".join(f'{k}="{v}"' for k, v in target.items())

    return re.sub(r"c:([a-z]+)(\+?)", labels, text)


def _expected(alert: dict[str, Any], platform: Platform) -> dict[str, str]:
    alert = dict(alert)
    out: dict[str, str] = {}
    if "of" in alert:
        target = platform.targets[alert.pop("of")]
        keep = alert.pop("keep", None)
        out.update({k: v for k, v in target.items() if keep is None or k in keep})
    if "absent_of" in alert:
        out.update(platform.absent[alert.pop("absent_of")])
    out.update({k: str(v) for k, v in alert.items()})
    return out


def case_id(case: dict[str, Any]) -> str:
    return f"{case['alert']}[{case['id']}]" if "id" in case else case["alert"]


def applies(case: dict[str, Any], platform: Platform) -> bool:
    return set(case["needs"]) <= set(platform.targets)


def promtool_tests(cases: list[dict[str, Any]], platform: Platform) -> list[dict[str, Any]]:
    tests = []
    for case in cases:
        for outcome in ("fires", "silent"):
            for scenario in case[outcome]:
                series = {_expand_series(k, platform): v for k, v in (scenario.get("series") or {}).items()}
                if "all_up" in scenario:
                    for component, target in platform.targets.items():
                        if component != scenario.get("except"):
                            series["up{" + ", ".join(f'{k}="{v}"' for k, v in target.items()) + "}"] = scenario["all_up"]
                expected = [{"exp_labels": _expected(a, platform)} for a in scenario.get("alerts", [])] if outcome == "fires" else []
                tests.append({
                    "interval": case.get("interval", "1m"),
                    "input_series": [{"series": s, "values": v} for s, v in series.items()],
                    "alert_rule_test": [{"eval_time": scenario["at"], "alertname": case["alert"], "exp_alerts": expected}],
                })
    return tests


def without_annotations(rules: dict[str, Any]) -> dict[str, Any]:
    rules = copy.deepcopy(rules)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return rules


def rule_key(rule: dict[str, Any]) -> str:
    return f"{rule['alert']}[{rule['labels']['tool']}]" if "tool" in rule.get("labels", {}) else rule["alert"]


def run_promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def write_suite(directory: Path, name: str, rules: dict[str, Any], cases: list[dict[str, Any]], platform: Platform) -> list[str]:
    """The rule file and one promtool test file per evaluation interval the cases use."""
    (directory / f"{name}.rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    files = []
    for interval in sorted({c.get("evaluation_interval", "1m") for c in cases}):
        chosen = [c for c in cases if c.get("evaluation_interval", "1m") == interval]
        test = {"rule_files": [f"{name}.rules.yml"], "evaluation_interval": interval, "tests": promtool_tests(chosen, platform)}
        files.append(f"{name}.every-{interval}.test.yml")
        (directory / files[-1]).write_text(yaml.safe_dump(test, sort_keys=False))
    return files


def outcomes(promtool: str, files: list[str], cwd: Path) -> dict[str, tuple[int, str]]:
    """Test file -> (exit code, report) of `promtool test rules` on that file alone (promtool 2.x
    and 3.x print their reports to different streams; the exit code is what both agree on)."""
    out = {}
    for name in files:
        proc = run_promtool(promtool, "test", "rules", name, cwd=cwd)
        out[name] = (proc.returncode, proc.stdout + proc.stderr)
    return out


# ---------------------------------------------------------------- tests
def test_deployed_rule_files_pass_promtool_check(promtool, deployed, tmp_path):
    name, _, rules = deployed
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    proc = run_promtool(promtool, "check", "rules", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rules['groups'])} rules found" in proc.stdout


def test_promtool_check_refuses_a_broken_rule(promtool, deployed, tmp_path):
    """The check above can fail: a typo in one expression is refused."""
    _, _, rules = deployed
    rules = copy.deepcopy(rules)
    rules["groups"][0]["rules"][0]["expr"] += " by (job"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(rules))
    assert run_promtool(promtool, "check", "rules", str(path), cwd=tmp_path).returncode != 0


def test_every_alert_fires_and_stays_silent_in_promtool(promtool, deployed, tmp_path):
    name, platform, rules = deployed
    cases = [c for c in CASES if applies(c, platform)]
    files = write_suite(tmp_path, name, without_annotations(rules), cases, platform)
    for file, (code, report) in outcomes(promtool, files, tmp_path).items():
        assert code == 0, f"{file}:\n{report}"
        assert "SUCCESS" in report, report


def test_every_deployed_alert_has_a_firing_and_a_silent_case(deployed):
    _, platform, rules = deployed
    # An always-firing alert (the Watchdog) has no silent scenario by definition.
    covered = {case_id(c) for c in CASES if applies(c, platform) and c["fires"] and (c["silent"] or c.get("always_fires"))}
    deployed_alerts = {rule_key(r) for g in rules["groups"] for r in g["rules"]}
    assert deployed_alerts - covered == set()
    # And no case is left over for an alert the platform does not deploy.
    assert covered - deployed_alerts == set()


def test_each_alerts_cases_fail_without_its_rule(promtool, deployed, tmp_path):
    """Every case can fail: with its rule removed (and everything else kept), promtool reports it.
    On the Docker and the EKS rendering, with one promtool: the cases are the same everywhere."""
    name, platform, rules = deployed
    if name not in ("local", "staging") or promtool != PROMTOOLS[0]:
        pytest.skip("the mutation check runs on local and staging, with the first promtool found")
    stripped = without_annotations(rules)
    files = []
    for key in sorted({rule_key(r) for g in stripped["groups"] for r in g["rules"]}):
        mutant = copy.deepcopy(stripped)
        for group in mutant["groups"]:
            group["rules"] = [r for r in group["rules"] if rule_key(r) != key]
        mutant["groups"] = [g for g in mutant["groups"] if g["rules"]]
        cases = [c for c in CASES if applies(c, platform) and case_id(c) == key]
        files += write_suite(tmp_path, f"{name}-without-{re.sub(r'[^A-Za-z0-9]+', '-', key)}", mutant, cases, platform)
    results = outcomes(promtool, files, tmp_path)
    # Exit code 1 is a failed unit test; anything else (a file promtool cannot read) proves nothing.
    assert {f: code for f, (code, _) in results.items() if code != 1} == {}, results


def test_every_alert_explains_itself():
    scope = alerts.Scope(prometheus='job="p"', sidecar='job="s"', receive='job="r"', store='job="st"', compact='job="c"', query='job="q"',
                         loki='job="l"', canary='job="lc"', tempo='job="t"', freshness='job="f"', alertmanager='job="a"', minio='job="m"',
                         ring='job="e"', freshness_windows={"loki": 1, "tempo": 1, "thanos": 1})
    runbook = documents.read("docs/operations.md").split("## Alerts and what to do", 1)[1].split("\n## ", 1)[0]
    for group in alerts.groups(scope):
        for rule in group["rules"]:
            # The always-firing Watchdog pages no one by its severity: it has its own route.
            assert rule["labels"]["severity"] in (("none",) if rule["alert"] == alerts.WATCHDOG else ("critical", "warning")), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            # docs/operations.md "Alerts and what to do" names every alert and says what to do.
            assert f"`{rule['alert']}`" in runbook, f"docs/operations.md, Alerts and what to do, lacks {rule['alert']}"


def test_the_runbook_annotation_points_at_the_documented_section():
    path, _, anchor = alerts.RUNBOOK.partition("#")
    assert anchor in documents.anchors(documents.read(path))


# ---------------------------------------------------------------- without promtool: metric names, thresholds, `for:`
# Every metric an alert reads, as the pinned version exports it (name, and the file at the tag it
# was read in). Histograms also export <name>_count, _sum and _bucket.
EXPORTED = {
    "up": "prometheus/prometheus v3.14.0 scrape/scrape.go (scrapeHealthMetric)",
    "process_start_time_seconds": "prometheus/client_golang v1.23.2 prometheus/process_collector.go, registered by "
                                  "thanos-io/thanos v0.42.4 cmd/thanos/main.go and client_golang's default registry (registry.go) in Tempo",
    "thanos_objstore_bucket_operation_failures_total": "thanos-io/objstore 71d60dfee488 (go.mod of thanos v0.42.4) objstore.go, "
                                                       "prefixed thanos_ by cmd/thanos/sidecar.go and receive.go",
    "thanos_objstore_bucket_last_successful_upload_time": "thanos-io/objstore 71d60dfee488 objstore.go, prefixed thanos_ (cmd/thanos/compact.go)",
    "thanos_sidecar_prometheus_up": "thanos-io/thanos v0.42.4 cmd/thanos/sidecar.go",
    "thanos_shipper_uploads_total": "thanos-io/thanos v0.42.4 pkg/shipper/shipper.go",
    "thanos_compact_halted": "thanos-io/thanos v0.42.4 cmd/thanos/compact.go",
    "http_requests_total": "thanos-io/thanos v0.42.4 pkg/extprom/http/metrics.go",
    "prometheus_tsdb_data_replay_duration_seconds": "prometheus/prometheus v3.14.0 tsdb/head.go",
    "prometheus_tsdb_compactions_failed_total": "prometheus/prometheus v3.14.0 tsdb/db.go",
    "prometheus_tsdb_storage_blocks_bytes": "prometheus/prometheus v3.14.0 tsdb/db.go",
    "prometheus_tsdb_retention_limit_bytes": "prometheus/prometheus v3.14.0 tsdb/db.go",
    "prometheus_tsdb_wal_writes_failed_total": "prometheus/prometheus v3.14.0 tsdb/wlog/wlog.go (prefix prometheus_tsdb_wal_)",
    "prometheus_tsdb_wal_storage_size_bytes": "prometheus/prometheus v3.14.0 tsdb/wlog/wlog.go",
    "loki_ingester_chunks_flush_failures_total": "grafana/loki v3.7.6 pkg/ingester/metrics.go",
    "loki_ingester_wal_disk_usage_percent": "grafana/loki v3.7.6 pkg/ingester/metrics.go",
    "loki_ingester_wal_disk_full_failures_total": "grafana/loki v3.7.6 pkg/ingester/metrics.go",
    "loki_s3_request_duration_seconds": "grafana/loki v3.7.6 pkg/storage/chunk/client/aws/s3_storage_client.go (histogram)",
    "loki_request_duration_seconds": "grafana/loki v3.7.6 vendor/github.com/grafana/dskit/server/metrics.go, namespace loki (pkg/loki/loki.go) (histogram)",
    "loki_distributor_bytes_received_total": "grafana/loki v3.7.6 pkg/loghttp/push/push.go",
    "loki_canary_missing_entries_total": "grafana/loki v3.7.6 pkg/canary/comparator/comparator.go",
    "loki_canary_spot_check_missing_entries_total": "grafana/loki v3.7.6 pkg/canary/comparator/comparator.go",
    "tempo_ingester_failed_flushes_total": "grafana/tempo v2.10.8 modules/ingester/flush.go",
    "tempo_ingester_flush_failed_retries_total": "grafana/tempo v2.10.8 modules/ingester/flush.go",
    "tempo_ingester_replay_errors_total": "grafana/tempo v2.10.8 modules/ingester/instance.go",
    "tempodb_compaction_errors_total": "grafana/tempo v2.10.8 tempodb/compactor.go",
    "tempodb_backend_request_duration_seconds": "grafana/tempo v2.10.8 tempodb/backend/instrumentation/backend_transports.go (histogram)",
    "tempo_distributor_bytes_received_total": "grafana/tempo v2.10.8 modules/distributor/distributor.go",
    "minio_cluster_capacity_usable_free_bytes": "minio/minio RELEASE.2025-09-07T16-13-09Z cmd/metrics-v2.go",
    "minio_cluster_capacity_usable_total_bytes": "minio/minio RELEASE.2025-09-07T16-13-09Z cmd/metrics-v2.go",
    "etcd_server_has_leader": "etcd-io/etcd v3.6.14 server/etcdserver/metrics.go",
    "etcd_debugging_server_alarms": "etcd-io/etcd v3.6.14 server/etcdserver/apply/metrics.go (seen with alarm_type NOSPACE on a real member)",
    "etcd_mvcc_db_total_size_in_bytes": "etcd-io/etcd v3.6.14 server/storage/mvcc/metrics.go",
    "etcd_server_quota_backend_bytes": "etcd-io/etcd v3.6.14 server/storage/metrics.go",
}
HISTOGRAMS = {"loki_s3_request_duration_seconds", "loki_request_duration_seconds", "tempodb_backend_request_duration_seconds"}
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}


def _bare(expr: str) -> str:
    """The expression without strings, label matchers, range windows and label lists."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    return re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)


def metric_names(expr: str) -> set[str]:
    """Every metric an expression reads (identifiers that are not functions or keywords)."""
    text = _bare(expr)
    return {m.group(0) for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text)
            if m.group(0) not in PROMQL_WORDS and not text[m.end():].lstrip().startswith("(")}


def unexported(name: str) -> bool:
    base = re.sub(r"_(count|sum|bucket)$", "", name)
    return name not in EXPORTED and not (base in HISTOGRAMS and base != name)


def comparisons(expr: str) -> set[tuple[str, float]]:
    """Each comparison of a series with a number, the number evaluated (`4 * 3600`)."""
    found = re.finditer(r"(==|!=|>=|<=|>|<)\s*(?:bool\s+)?(\d+(?:\.\d+)?(?:\s*\*\s*\d+(?:\.\d+)?)*)(?![\w.])", _bare(expr))
    return {(m.group(1), float(eval(m.group(2)))) for m in found}  # noqa: S307 (digits and * only, matched above)


def windows(expr: str) -> set[str]:
    return set(re.findall(r"\[(\d+[smhd])\]", re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)))


def test_the_expression_reader_finds_metrics_comparisons_and_windows():
    expr = ('sum by (job, instance) (rate(foo_count{job="a", x=~"b{c}"}[5m])) > 0 and on (job, instance) '
            '(time() - bar) > 4 * 3600 unless baz{job="c"} <= bool 0.5')
    assert metric_names(expr) == {"foo_count", "bar", "baz"}
    assert comparisons(expr) == {(">", 0.0), (">", 14400.0), ("<=", 0.5)}
    assert windows(expr) == {"5m"}
    # Refused: a misspelled metric, a histogram suffix on a counter; accepted: a histogram's _count.
    assert unexported("loki_ingester_chunk_flush_failures_total") and unexported("thanos_compact_halted_count")
    assert not unexported("loki_s3_request_duration_seconds_count") and not unexported("up")


def test_every_alert_reads_only_metrics_the_pinned_tools_export(deployed):
    _, _, rules = deployed
    read = {rule_key(r): metric_names(r["expr"]) for g in rules["groups"] for r in g["rules"]}
    own = {m for names in read.values() for m in names if m.startswith("obs_bucket_")}
    assert {k: sorted(n for n in names if unexported(n) and n not in own) for k, names in read.items() if any(unexported(n) and n not in own for n in names)} == {}
    # The probe's metrics, as the probe itself prints them.
    from probes import bucket_freshness

    probe = bucket_freshness.Probe("loki", "acme-loki", "", ["fake"], 10560, started=1.0)
    probe.run(type("Empty", (), {"list": lambda self, prefix, delimiter="": ([], [])})())
    printed = set(re.findall(r"^(obs_\w+)\{", probe.metrics(), re.M))
    assert own <= printed, own - printed


# Per alert: `for:` (None: fires at once), severity, the comparisons with numbers and the range
# windows, as the upstream mixin at the pinned tag or README ("Alerts and what to do", "Bucket
# freshness") documents them; where this project departs from a mixin, alerts.py says why.
THANOS_MIXIN, PROM_MIXIN = "thanos-io/thanos v0.42.4 mixin/alerts", "prometheus/prometheus v3.14.0 documentation/prometheus-mixin/alerts.libsonnet"
LOKI_MIXIN, TEMPO_MIXIN = "grafana/loki v3.7.6 production/loki-mixin/alerts.libsonnet", "grafana/tempo v2.10.8 operations/tempo-mixin (config: 2 per hour)"
DOCUMENTED: dict[str, tuple[str | None, str, set[tuple[str, float]], set[str], str]] = {
    "ObsStorageTargetDown": ("5m", "critical", {("==", 0)}, set(), "README: down for 5 minutes"),
    "ObsStorageTargetMissing": ("10m", "critical", set(), set(), "README: no scrape target"),
    "ThanosSidecarBucketOperationsFailed": ("5m", "critical", {(">", 0)}, {"5m"}, f"{THANOS_MIXIN}/sidecar.libsonnet"),
    "ThanosSidecarNoConnectionToStartedPrometheus": ("5m", "critical", {("==", 0), ("!=", 0)}, set(), f"{THANOS_MIXIN}/sidecar.libsonnet"),
    "ThanosSidecarNoUpload": ("15m", "critical", {("==", 0), (">", 4 * 3600)}, {"4h"}, "README: no block uploaded for 4 h"),
    "ThanosReceiveNoUpload": ("3h", "critical", {("==", 0)}, {"3h"}, f"{THANOS_MIXIN}/receive.libsonnet"),
    "ThanosReceiveBucketOperationsFailed": ("5m", "critical", {(">", 0)}, {"5m"}, f"{THANOS_MIXIN}/sidecar.libsonnet, for Receive"),
    "ThanosReceiveHttpRequestErrorRateHigh": ("5m", "critical", {(">", 5)}, {"5m"}, f"{THANOS_MIXIN}/receive.libsonnet (httpErrorThreshold 5)"),
    "ThanosCompactHalted": ("5m", "warning", {("==", 1)}, set(), f"{THANOS_MIXIN}/compact.libsonnet"),
    "ThanosCompactMultipleRunning": ("5m", "warning", {(">", 1)}, set(), f"{THANOS_MIXIN}/compact.libsonnet"),
    "ThanosCompactHasNotRun": (None, "warning", {(">", 24), (">", 86400)}, {"24h"}, f"{THANOS_MIXIN}/compact.libsonnet; README: 24 h"),
    "PrometheusTSDBCompactionsFailing": ("4h", "warning", {(">", 0)}, {"3h"}, PROM_MIXIN),
    "PrometheusTSDBWALWritesFailing": (None, "critical", {(">", 0)}, {"5m"}, "README: samples are lost now"),
    "PrometheusStorageNearSizeLimit": ("15m", "warning", {(">", 0), (">", 0.8)}, set(), "README: above 80% of its size limit"),
    "LokiIngesterFlushFailures": ("15m", "critical", {(">", 0)}, {"5m"}, "README"),
    "LokiStoreWritesFailing": ("10m", "critical", {(">", 0)}, {"5m"}, "README"),
    "LokiRequestErrors": ("15m", "critical", {(">", 10)}, {"5m"}, f"{LOKI_MIXIN} (> 10 for 15m; 5m windows for 30 s scrapes)"),
    "LokiWALDiskFilling": ("10m", "warning", {(">", 0.8)}, set(), "README: at 90% Loki throttles"),
    # grafana/loki v3.7.6 pkg/ingester/wal.go: ingester.wal-disk-full-threshold defaults to 0.90.
    "LokiWALDiskFull": (None, "critical", {(">=", 0.9), (">", 0)}, {"5m"}, "README: at 90% Loki throttles writes"),
    "LokiCanaryMissingEntries": ("5m", "critical", {(">", 0)}, {"15m"}, "README"),
    "LokiCanarySpotCheckMissing": (None, "critical", {(">", 0)}, {"1h"}, "README"),
    "TempoIngesterFlushesUnhealthy": ("5m", "warning", {(">", 2), (">", 0)}, {"1h", "5m"}, TEMPO_MIXIN),
    "TempoIngesterFlushesFailing": ("5m", "critical", {(">", 2), (">", 0)}, {"1h", "5m"}, TEMPO_MIXIN),
    "TempoCompactionsFailing": ("1h", "critical", {(">", 2), (">", 0)}, {"1h", "5m"}, TEMPO_MIXIN),
    "TempoIngesterReplayErrors": (None, "critical", {(">", 0), ("<", 3600)}, set(), "README: at the last start-up"),
    "TempoBackendWritesFailing": ("10m", "critical", {(">", 0)}, {"5m"}, "README"),
    "BucketFreshnessProbeFailing": ("15m", "critical", {("==", 0)}, set(), "README"),
    "ObjectStoreDiskFilling": ("15m", "warning", {("<", 0.1)}, set(), "README: less than 10% free"),
    "RingStoreNoLeader": ("1m", "critical", {("==", 0)}, set(), "docs/operations.md: a member sees no etcd leader"),
    "RingStoreNoSpace": (None, "critical", {(">", 0)}, set(), "docs/operations.md: the NOSPACE alarm is raised"),
    "RingStoreDatabaseFilling": ("10m", "warning", {(">", 0.8)}, set(), "docs/operations.md: above 80% of its quota"),
    "Watchdog": (None, "none", set(), set(), "docs/operations.md: always firing"),
}
# README "Bucket freshness": the limits 2 h 56 min (Loki) and 1 h (Tempo) are the windows in
# which a tenant that sent nothing keeps BucketUploadsStale silent; Thanos has no tenants.
STALE_WINDOWS = {"loki": {"10560s"}, "tempo": {"3600s"}, "thanos": set()}


def test_each_alerts_thresholds_windows_and_for_are_as_documented(deployed):
    name, _, rules = deployed
    seen = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            key = rule["alert"]
            seen.add(key)
            if key == "BucketUploadsStale":
                tool = rule["labels"]["tool"]
                assert (rule.get("for"), rule["labels"]["severity"]) == ("15m", "critical"), rule
                assert windows(rule["expr"]) == STALE_WINDOWS[tool], (name, tool, rule["expr"])
                continue
            assert key in DOCUMENTED, f"{name}: {key} has no documented thresholds here"
            for_, severity, compared, ranges, _ = DOCUMENTED[key]
            got = (rule.get("for"), rule["labels"]["severity"], comparisons(rule["expr"]), windows(rule["expr"]))
            assert got == (for_, severity, compared, ranges), f"{name}: {key}: {got} != documented {(for_, severity, compared, ranges)}"
    assert "BucketUploadsStale" in seen and "ObsStorageTargetDown" in seen


# ---------------------------------------------------------------- Alertmanager's routing, without a plan
def _alerting(**fields: Any):
    """The alerting config as the program gets it: parsed from the stack's JSON text, so equal
    names are equal strings, not one object."""
    import json

    from components.core.config import AlertingConfig

    return AlertingConfig.model_validate(json.loads(json.dumps(fields)))


def test_without_receivers_everything_goes_to_the_silent_default():
    config = alerts.alertmanager_config(_alerting(), "/s")
    assert config["receivers"] == [{"name": "default"}]
    (watchdog,) = config["route"]["routes"]
    # Repeated every 5 minutes (docs/operations.md) so a dead man's switch notices a missing
    # Watchdog within minutes; with no receiver of its own it stays with the silent default.
    assert (watchdog["receiver"], watchdog["matchers"], watchdog["repeat_interval"]) == ("default", ['alertname="Watchdog"'], "5m")
    assert "continue" not in watchdog and config["route"]["receiver"] == "default"


def test_each_receiver_reads_its_secret_from_a_file_and_hears_of_resolution():
    config = alerts.alertmanager_config(_alerting(receivers=[
        {"name": "hook", "type": "webhook"},
        {"name": "chat", "type": "slack"},
        {"name": "room", "type": "slack", "channel": "#storage"},
        {"name": "pager", "type": "pagerduty", "severities": ["critical"]},
        {"name": "mail", "type": "email", "to": "ops@example.com", "sender": "am@example.com", "smarthost": "smtp.example.com:587"},
        {"name": "authmail", "type": "email", "to": "ops@example.com", "sender": "am@example.com", "smarthost": "smtp.example.com:587",
         "username": "am"},
    ]), "/run/secrets/am")
    receivers = {r["name"]: r for r in config["receivers"]}
    # Alertmanager v0.34.0 docs/configuration.md: url_file, api_url_file, routing_key_file,
    # auth_password_file; send_resolved tells the receiver when the problem is over.
    assert receivers["hook"] == {"name": "hook", "webhook_configs": [{"url_file": "/run/secrets/am/hook", "send_resolved": True}]}
    assert receivers["chat"] == {"name": "chat", "slack_configs": [{"api_url_file": "/run/secrets/am/chat", "send_resolved": True}]}
    assert receivers["room"]["slack_configs"] == [{"api_url_file": "/run/secrets/am/room", "send_resolved": True, "channel": "#storage"}]
    assert receivers["pager"] == {"name": "pager", "pagerduty_configs": [{"routing_key_file": "/run/secrets/am/pager", "send_resolved": True}]}
    # Without a username the relay takes mail unauthenticated: no password file is named.
    assert receivers["mail"]["email_configs"] == [{"to": "ops@example.com", "from": "am@example.com", "smarthost": "smtp.example.com:587", "send_resolved": True}]
    assert receivers["authmail"]["email_configs"][0]["auth_username"] == "am"
    assert receivers["authmail"]["email_configs"][0]["auth_password_file"] == "/run/secrets/am/authmail"
    routes = {r["receiver"]: r for r in config["route"]["routes"][1:]}
    assert routes["pager"] == {"receiver": "pager", "matchers": ['severity=~"critical"'], "continue": True}
    assert {n: r["matchers"] for n, r in routes.items() if n != "pager"} == {n: ['severity=~"critical|warning"'] for n in ("hook", "chat", "room", "mail", "authmail")}


def test_the_watchdog_receiver_gets_the_watchdog_and_nothing_else():
    config = alerts.alertmanager_config(_alerting(receivers=[{"name": "deadman", "type": "webhook"}, {"name": "ops", "type": "webhook"}],
                                                  watchdogReceiver="deadman"), "/s")
    watchdog, *others = config["route"]["routes"]
    assert watchdog["receiver"] == "deadman" and watchdog["matchers"] == ['alertname="Watchdog"'] and "continue" not in watchdog
    assert [r["receiver"] for r in others] == ["ops"]
    # Its receiver still exists, with its secret file.
    assert {r["name"] for r in config["receivers"]} == {"default", "deadman", "ops"}


def test_freshness_alerts_still_fire_when_the_tools_own_metrics_are_not_scraped():
    # docs/operations.md "Bucket freshness": with the tool's metrics missing, BucketUploadsStale fires;
    # nothing is subtracted for tenants that sent nothing, and no selector of an absent component is used.
    scope = alerts.Scope(freshness='job="f"', tempo='job="t"', freshness_windows={"loki": 10560, "tempo": 3600})
    stale = {r["labels"]["tool"]: r["expr"] for g in alerts.groups(scope) for r in g["rules"] if r["alert"] == "BucketUploadsStale"}
    assert "unless" not in stale["loki"] and "None" not in stale["loki"] and "loki_distributor_bytes_received_total" not in stale["loki"]
    assert 'unless on (tenant) (sum by (tenant) (increase(tempo_distributor_bytes_received_total{job="t"}[3600s])) == 0)' in stale["tempo"]
