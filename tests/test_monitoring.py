"""Self-monitoring as each stack declares it: every component scraped, the rules and Alertmanager
wired, the dashboards provisioned and their queries valid, the EKS read path sized from config."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from components.eks import thanos as eks_thanos
from components.core.renderers import dashboards, freshness
from tests.test_alerts import promtool  # noqa: F401 (the fixture)
from tests.test_renderers import flag_names, upstream
from tools import engine


def prometheus_config(result, stack: str) -> dict:
    if stack == "local":
        (prom,) = [c for c in result.by_type("docker:index/container:Container") if c.inputs["name"].endswith("-prometheus")]
        return yaml.safe_load(next(u["content"] for u in prom.inputs["uploads"] if u["file"] == "/etc/prometheus/prometheus.yml"))
    (prom,) = [s for s in result.by_type("docker:index/service:Service") if s.inputs["name"].endswith("-prometheus")]
    (config,) = [c for c in prom.inputs["taskSpec"]["containerSpec"]["configs"] if c["fileName"] == "/etc/prometheus/prometheus.yml"]
    (data,) = [c.inputs["data"] for c in result.by_type("docker:index/serviceConfig:ServiceConfig") if config["configName"] in (c.name, c.inputs.get("name"))]
    return yaml.safe_load(base64.b64decode(data))


def targets(config: dict) -> dict[str, set[str]]:
    out = {}
    for job in config["scrape_configs"]:
        found = {t for s in job.get("static_configs", []) for t in s["targets"]}
        found |= {f"{n}:{d['port']}" for d in job.get("dns_sd_configs", []) for n in d["names"]}
        out[job["job_name"]] = found
    return out


def test_local_prometheus_scrapes_every_component_and_sends_alerts(plan):
    config = prometheus_config(plan("local"), "local")
    assert targets(config) == {
        "prometheus": {"localhost:9090"}, "thanos-sidecar": {"thanos-sidecar:10902"}, "thanos-store": {"thanos-store:10902"},
        "thanos-compact": {"thanos-compact:10902"}, "thanos-query": {"thanos-query:10902"}, "loki": {"loki:3100"}, "tempo": {"tempo:3200"},
        "alertmanager": {"alertmanager:9093"}, "minio": {"minio:9000"}, "minio-bucket": {"minio:9000"},
        "bucket-freshness": {"bucket-freshness-loki:9109", "bucket-freshness-tempo:9109", "bucket-freshness-thanos:9109"},
    }
    # One Prometheus: nothing to deduplicate, no alert relabelling (prod's pair: tests/test_swarm_ha.py).
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_swarm_prometheus_finds_every_task_of_replicated_services(plan):
    found = targets(prometheus_config(plan("prod"), "prod"))
    # Three Loki and Tempo tasks and two Query tasks: each scraped on its own, through tasks.<alias>.
    assert found["loki"] == {"tasks.loki:3100"} and found["tempo"] == {"tasks.tempo:3200"} and found["thanos-query"] == {"tasks.thanos-query:10902"}
    assert found["ring-kv"] == {"ring-kv-1:2379", "ring-kv-2:2379", "ring-kv-3:2379"}
    assert "minio" not in found


def test_local_minio_serves_metrics_without_a_token(plan):
    (minio,) = [c for c in plan("local").by_type("docker:index/container:Container") if c.inputs["name"] == "obs-local-minio"]
    assert "MINIO_PROMETHEUS_AUTH_TYPE=public" in minio.inputs["envs"]


SPOKE_WITH_LOKI = {"obs-storage:tools": {"loki": {"enabled": True, "bucket": "spoke-loki", "retentionDays": 7}, "tempo": {"enabled": False},
                                         "thanos": {"role": "spoke", "hub": "organization/obs-storage/local"}}}


def test_a_local_stack_scrapes_and_alerts_on_minio_only_where_it_runs_one(plan, plan_with):
    # A Thanos-only spoke keeps nothing in a bucket of its own and runs no MinIO; the hub's is on
    # the hub's network, which its Prometheus does not join. A `minio:9000` target there would
    # never answer: ObsStorageTargetDown would fire for as long as the spoke runs.
    stacks = {"local": plan("local"), "local-spoke": plan("local-spoke"), "local-spoke with Loki": plan_with("local-spoke", SPOKE_WITH_LOKI)}
    runs = {}
    for name, result in stacks.items():
        containers = [c.inputs["name"] for c in result.by_type("docker:index/container:Container")]
        runs[name] = any(c.endswith("-minio") for c in containers)
        (prom,) = [c for c in result.by_type("docker:index/container:Container") if c.inputs["name"].endswith("-prometheus")]
        rules = next(u["content"] for u in prom.inputs["uploads"] if u["file"] == "/etc/prometheus/rules/obs-storage.yml")
        jobs = set(targets(prometheus_config(result, "local")))
        assert jobs & {"minio", "minio-bucket"} == ({"minio", "minio-bucket"} if runs[name] else set()), name
        assert ('job="minio"' in rules) is runs[name], name
    # The neighbours: the hub and a spoke that keeps Loki's bucket run one; a Thanos-only spoke does not.
    assert runs == {"local": True, "local-spoke": False, "local-spoke with Loki": True}


def test_a_stack_probes_the_buckets_it_owns_and_not_its_hubs(plan, plan_with):
    # A Thanos spoke uploads into its hub's bucket, which the hub's own probe already watches: a
    # second probe would alert twice on one bucket, and under the spoke's user. A spoke that keeps
    # Loki's bucket probes that one.
    def probes(result):
        return sorted(c.inputs["name"].split("bucket-freshness-")[1] for c in result.by_type("docker:index/container:Container")
                      if "bucket-freshness-" in c.inputs["name"])

    assert probes(plan("local")) == ["loki", "tempo", "thanos"]
    assert probes(plan("local-spoke")) == []
    assert probes(plan_with("local-spoke", SPOKE_WITH_LOKI)) == ["loki"]


def test_dashboards_go_to_grafana_only(plan, plan_with):
    # A stack without Grafana (a Thanos spoke) provisions its dashboards nowhere, not into another
    # container; one with Grafana puts them in Grafana alone.
    for result, expected in ((plan("local"), ["grafana"]), (plan("local-spoke"), []), (plan_with("local-spoke", SPOKE_WITH_LOKI), ["grafana"])):
        holders = sorted(c.inputs["name"].rsplit("-", 1)[-1] for c in result.by_type("docker:index/container:Container")
                         if any(u["file"].startswith(dashboards.DASHBOARDS_DIR) or u["file"] == dashboards.PROVIDER_FILE for u in c.inputs.get("uploads", [])))
        assert holders == expected


def test_eks_scrapes_through_the_operator_and_routes_alerts(plan):
    result = plan("staging")
    charts = {c.inputs["name"]: c.inputs["values"] for c in result.by_type("kubernetes:helm.sh/v4:Chart")}
    # Without `release: kps` kube-prometheus-stack's Prometheus ignores a ServiceMonitor.
    assert charts["loki"]["monitoring"]["serviceMonitor"] == {"enabled": True, "labels": {"release": "kps"}}
    assert charts["tempo"]["metaMonitoring"]["serviceMonitor"] == {"enabled": True, "labels": {"release": "kps"}}
    kps = charts["kps"]
    assert kps["prometheus"]["thanosServiceMonitor"] == {"enabled": True}
    (monitor,) = kps["prometheus"]["additionalServiceMonitors"]
    assert set(monitor["selector"]["matchExpressions"][0]["values"]) == {
        "thanos-store", "thanos-compact", "thanos-query", "thanos-query-frontend", "thanos-receive", "bucket-freshness"}
    assert kps["alertmanager"]["enabled"] is True
    assert kps["alertmanager"]["alertmanagerSpec"]["alertmanagerConfigSelector"] == {"matchLabels": {"obs-storage/alert-routing": "true"}}
    groups = kps["additionalPrometheusRulesMap"]["obs-storage"]["groups"]
    assert any(r.get("alert") == "ThanosSidecarBucketOperationsFailed" for g in groups for r in g["rules"])


def test_eks_read_path_caches_follow_config(plan, plan_with):
    values = {c.inputs["name"]: c.inputs["values"] for c in plan("staging").by_type("kubernetes:helm.sh/v4:Chart")}["loki"]
    assert values["chunksCache"] == {"enabled": True, "allocatedMemory": 2048}
    assert values["resultsCache"] == {"enabled": True, "allocatedMemory": 512}
    assert values["lokiCanary"]["enabled"] is True and values["lokiCanary"]["image"]["tag"] == "3.7.8"
    off = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "lokiChunksCacheMb": 0, "thanosResponseCacheMb": 0, "thanosIndexCacheMb": 256}})
    values = {c.inputs["name"]: c.inputs["values"] for c in off.by_type("kubernetes:helm.sh/v4:Chart")}["loki"]
    assert values["chunksCache"] == {"enabled": False}
    deployments = {d.inputs["metadata"]["name"]: d for d in off.by_type("kubernetes:apps/v1:Deployment")}
    assert "thanos-query-frontend" not in deployments
    assert "--index-cache-size=256MB" in deployments["thanos-store"].inputs["spec"]["template"]["spec"]["containers"][0]["args"]


def test_query_frontend_and_store_cache_flags_exist_upstream():
    known = upstream("thanos-0.42.flags")
    args = eks_thanos.query_frontend_args("http://thanos-query:10902", 512)
    assert args[0] == "query-frontend"
    assert [f for f in flag_names(args) if f"query-frontend {f}" not in known] == []
    assert "store --index-cache-size" in known
    cache = yaml.safe_load(next(a for a in args if a.startswith("--query-range.response-cache-config=")).split("=", 1)[1])
    assert cache == {"type": "IN-MEMORY", "config": {"max_size": "512MB"}}


def test_dashboards_are_provisioned_on_every_target(plan):
    (grafana,) = [c for c in plan("local").by_type("docker:index/container:Container") if c.inputs["name"] == "obs-local-grafana"]
    files = {u["file"]: u["content"] for u in grafana.inputs["uploads"]}
    provider = yaml.safe_load(files[dashboards.PROVIDER_FILE])["providers"][0]
    board = json.loads(files[f"{provider['options']['path']}/storage-path.json"])
    assert board["uid"] == "obs-storage-path"
    (cm,) = [c for c in plan("staging").by_type("kubernetes:core/v1:ConfigMap") if c.inputs["metadata"]["name"] == "obs-storage-dashboards"]
    assert cm.inputs["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert json.loads(cm.inputs["data"]["storage-path.json"])["uid"] == "obs-storage-path"


def test_dashboard_queries_are_valid_promql(promtool, tmp_path):  # noqa: F811
    exprs = [t["expr"] for board in dashboards.dashboards().values() for p in board["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboards", "rules": [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(p["datasource"] == {"type": "prometheus", "uid": "thanos"} for b in dashboards.dashboards().values() for p in b["panels"])


def test_each_platform_runs_one_probe_per_tool_with_that_tools_identity(plan):
    local = {c.inputs["name"]: c for c in plan("local").by_type("docker:index/container:Container")}
    for tool in ("loki", "tempo", "thanos"):
        probe = local[f"obs-local-bucket-freshness-{tool}"]
        config = json.loads(next(u["content"] for u in probe.inputs["uploads"] if u["file"] == freshness.CONFIG_PATH))
        assert config["tool"] == tool and config["max_age_seconds"] == freshness.MAX_AGE_SECONDS[tool]
        assert config["endpoint"] == "http://minio:9000" and config["path_style"] is True
        # The tool's own MinIO user (its credentials file), readable by the probe's user only.
        (secret,) = [u for u in probe.inputs["uploads"] if u["file"].startswith("/run/secrets/")]
        assert secret["owner"] == 65534 and probe.inputs["user"] == "65534:65534"
    deployments = {d.inputs["metadata"]["name"]: d for d in plan("staging").by_type("kubernetes:apps/v1:Deployment")}
    accounts = {tool: deployments[f"bucket-freshness-{tool}"].inputs["spec"]["template"]["spec"]["serviceAccountName"] for tool in ("loki", "tempo", "thanos")}
    assert accounts == {"loki": "loki-querier", "tempo": "tempo", "thanos": "thanos-store"}


def test_dashboard_panels_tile_grafanas_24_column_grid_without_overlap():
    import re as _re

    for name, board in dashboards.dashboards().items():
        cells: dict[tuple[int, int], str] = {}
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["y"] >= 0, (name, panel["title"])
            # Grafana's grid is 24 columns wide.
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in cells, f"{name}: {panel['title']!r} overlaps {cells[(x, y)]!r}"
                    cells[(x, y)] = panel["title"]
            # Each query of a panel has its own refId, a letter as Grafana's editor names them.
            refs = [t["refId"] for t in panel["targets"]]
            assert len(set(refs)) == len(refs) and all(_re.fullmatch(r"[A-Z]", r) for r in refs), (name, panel["title"], refs)


def test_dashboard_panels_leave_no_hole_in_the_grid():
    # The panels are laid out two to a row of Grafana's 24 columns: together they cover a
    # rectangle 24 columns wide with no empty cell (a panel one row short or one column narrow
    # leaves a hole that Grafana shows as a gap).
    for name, board in dashboards.dashboards().items():
        covered = {(x, y) for p in board["panels"] for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
                   for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])}
        bottom = max(y for _, y in covered) + 1
        assert covered == {(x, y) for x in range(24) for y in range(bottom)}, name
        # Six panels of the same size: three rows of two.
        assert bottom == 3 * board["panels"][0]["gridPos"]["h"], name


def test_dashboard_queries_are_named_as_grafanas_editor_names_them():
    # Grafana's query editor gives a panel's queries the refIds A, B, C, ... in order (grafana/grafana
    # packages/grafana-data/src/query/refId.ts, getNextRefId, read at commit e2fa81b).
    for name, board in dashboards.dashboards().items():
        for panel in board["panels"]:
            assert [t["refId"] for t in panel["targets"]] == list("ABCDEFGHIJ"[: len(panel["targets"])]), (name, panel["title"])


def test_dashboards_are_provisioned_read_only_from_their_directory():
    # Grafana's file provisioning (docs: administration/provisioning, "Dashboards"): apiVersion 1,
    # and with disableDeletion a user cannot delete a dashboard the stack put there.
    provider = dashboards.provider()
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["disableDeletion"] is True and entry["type"] == "file"
    assert entry["options"] == {"path": dashboards.DASHBOARDS_DIR} and entry["folder"] == "obs-storage"
