"""Every Loki, Tempo, Prometheus and Thanos pod on EKS gets requests and limits from one surface,
aws.sizing, following the tools' own sizing guides. Expected figures are typed in from the guides
(grafana/loki v3.7.6 docs/sources/setup/size/_index.md, grafana/tempo v2.10.8 .../plan/size.md),
not taken from the code."""

from __future__ import annotations

import math

import pytest

from components.core import sizing
from components.core.config import ConfigError
from tests.test_eks import chart, k8s
from tests.test_renderers import stack_cfg
from tools.cost.facts import DEFAULT_INGEST

GIB = 2**30

# Loki's guide, tier "Less than 100TB/month (3TB/day)": component -> (CPU, memory Gi, replicas).
LOKI_TIER = {
    "ingester": (2, 4, 6), "distributor": (2, 0.5, 4), "indexGateway": (0.5, 2, 4), "querier": (1, 1, 10),
    "queryFrontend": (1, 2, 2), "queryScheduler": (1, 0.5, 2), "compactor": (2, 10, 1),
}


def test_loki_at_the_top_of_the_guides_tier_is_the_guides_table():
    sizes = sizing.loki(3000)
    for component, (cpu, memory, replicas) in LOKI_TIER.items():
        size = sizes[component]
        assert (size.replicas, size.cpu_millis, size.memory_mib) == (replicas, cpu * 1000, memory * 1024), component


def test_loki_below_the_tier_keeps_the_projects_replicas_and_never_goes_below_the_floors():
    sizes = sizing.loki(1000)
    # A third of the tier: 2 of the guide's 6 ingesters' load -> the 3 zones' ingesters carry it.
    ingester = sizes["ingester"]
    assert ingester.replicas == 3
    assert ingester.cpu_millis * ingester.replicas >= 2 * 6 * 1000 / 3 and ingester.memory_mib * ingester.replicas >= 4 * 6 * 1024 / 3
    # The querier: 10 in the guide at 3 TB/day, so 4 at 1 TB/day, each at most the guide's figure.
    assert sizes["querier"].replicas == 4 and sizes["querier"].cpu_millis <= 1000
    tiny = sizing.loki(1)
    assert all(s.cpu_millis >= 10 and s.memory_mib >= 32 for s in tiny.values())
    assert tiny["ingester"].memory_mib == 512  # the measured single binary's 327 MB RSS, rounded up


def test_tempo_follows_the_guides_rate_per_replica():
    rate = 12.0  # MB/s
    sizes = sizing.tempo(rate * 86.4)
    # "1 replica per every 3-5MB/s" (4 here), in threes: 3 ingesters carry 12 MB/s at 2.5 cores each.
    assert sizes["ingester"].replicas == 3 and sizes["ingester"].cpu_millis == 2500
    # "1 replica per every 10MB/s", at least the project's 2.
    assert sizes["distributor"].replicas == 2
    # "1 replica per every 1-2MB/s" (1.5 here): 8 queriers for 12 MB/s.
    assert sizes["querier"].replicas == 8
    # Memory "4-20GB": the low end, in GiB.
    assert sizes["ingester"].memory_mib == math.ceil(4e9 / 2**20 / 16) * 16


def test_limits_are_twice_the_memory_request_and_cpu_is_never_capped():
    resources = sizing.Size(1, 250, 512, ephemeral_gib=3).resources()
    assert resources == {"requests": {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "3Gi"},
                         "limits": {"memory": "1024Mi", "ephemeral-storage": "3Gi"}}


def test_compactor_disk_is_twice_two_weeks_of_one_prometheus():
    # thanos compact.md: "2 times 2 weeks ... worth of smaller blocks"; storage.md: up to 2 bytes a sample.
    assert sizing.thanos_compact_disk_gib(30_000) == math.ceil(2 * 14 * 86400 * 30_000 * 2 / GIB) == 136
    assert sizing.compact_samples_per_second(10) == 2219


def test_defaults_are_the_cost_models_staging_ingest():
    cfg = stack_cfg("staging", {"obs-storage:aws": {"clusterName": "staging-eks"}})
    expected = DEFAULT_INGEST["staging"]
    got = cfg.aws.sizing
    assert (got.logs_gb_per_day, got.traces_gb_per_day, got.metrics_samples_per_second) == (expected["logs"], expected["traces"], expected["metrics"])


@pytest.mark.parametrize("sizing_value,key,message", [
    ({"logsGbPerDay": 4000}, "aws.sizing.logsGbPerDay", "3 TB/day tier"),
    ({"tracesGbPerDay": 0}, "aws.sizing.tracesGbPerDay", "greater than 0"),
    ({"metricsSamplesPerSecond": 200_000}, "aws.sizing.metricsSamplesPerSecond", "GiB of Prometheus TSDB"),
    ({"logsGbPerDy": 10}, "aws.sizing.logsGbPerDy", "unknown key"),
])
def test_bad_sizing_is_one_line_naming_the_key(sizing_value, key, message):
    with pytest.raises(ConfigError) as err:
        stack_cfg("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "sizing": sizing_value}})
    text = str(err.value)
    assert err.value.key == key and message in text and "\n" not in text and text.startswith("stack 'staging': ") and "Fix: " in text
    # Its accepted neighbour.
    stack_cfg("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "sizing": {"logsGbPerDay": 3000, "metricsSamplesPerSecond": 60_000}}})


def _resources_everywhere(result) -> dict[str, dict]:
    """Component -> resources, for every Loki, Tempo, Prometheus and Thanos pod of a plan."""
    out = {}
    loki = chart(result, "loki").inputs["values"]
    for component in ("ingester", "distributor", "querier", "queryFrontend", "queryScheduler", "indexGateway", "compactor", "gateway", "lokiCanary"):
        out[f"loki {component}"] = loki[component]["resources"]
    tempo = chart(result, "tempo").inputs["values"]
    for component in ("ingester", "distributor", "querier", "queryFrontend", "compactor", "memcached"):
        out[f"tempo {component}"] = tempo[component]["resources"]
    kps = chart(result, "kps").inputs["values"]
    out["prometheus"] = kps["prometheus"]["prometheusSpec"]["resources"]
    out["thanos-sidecar"] = kps["prometheus"]["prometheusSpec"]["thanos"]["resources"]
    out["alertmanager"] = kps["alertmanager"]["alertmanagerSpec"]["resources"]
    out["operator"] = kps["prometheusOperator"]["resources"]
    out["config-reloader"] = kps["prometheusOperator"]["prometheusConfigReloader"]["resources"]
    for app in ("thanos-store", "thanos-compact", "thanos-query", "thanos-query-frontend"):
        out[app] = k8s(result, "kubernetes:apps/v1:Deployment", app).inputs["spec"]["template"]["spec"]["containers"][0]["resources"]
    return out


def test_every_component_requests_cpu_and_memory_and_has_a_memory_limit(plan):
    for component, resources in _resources_everywhere(plan("staging")).items():
        assert {"cpu", "memory"} <= set(resources["requests"]), component
        assert "memory" in resources["limits"] and "cpu" not in resources["limits"], component


def test_the_sizing_moves_the_requests(plan_with):
    small = _resources_everywhere(plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "sizing": {"logsGbPerDay": 10, "tracesGbPerDay": 10}}}))
    large = _resources_everywhere(plan_with("staging", {"obs-storage:aws": {
        "clusterName": "staging-eks", "thanosCompactStorageClass": "gp3", "sizing": {"logsGbPerDay": 2000, "tracesGbPerDay": 800, "metricsSamplesPerSecond": 60_000}}}))
    for component in ("loki ingester", "loki compactor", "tempo ingester", "tempo querier", "prometheus"):
        assert int(large[component]["requests"]["memory"].removesuffix("Mi")) > int(small[component]["requests"]["memory"].removesuffix("Mi")), component


def _replicas(result, component: str) -> int:
    tool, _, name = component.partition(" ")
    if tool in ("loki", "tempo"):
        return int(chart(result, tool).inputs["values"][name]["replicas"])
    if component in ("prometheus", "thanos-sidecar"):
        return int(chart(result, "kps").inputs["values"]["prometheus"]["prometheusSpec"]["replicas"])
    if component == "config-reloader":  # next to each Prometheus and Alertmanager pod
        return _replicas(result, "prometheus") + 1
    if component == "alertmanager":
        return int(chart(result, "kps").inputs["values"]["alertmanager"]["alertmanagerSpec"]["replicas"])
    if component == "operator":
        return 1  # kube-prometheus-stack-88.5.3 templates/prometheus-operator/deployment.yaml: `replicas: 1`, no value
    return int(k8s(result, "kubernetes:apps/v1:Deployment", component).inputs["spec"]["replicas"])


def staging_rows(result) -> list[str]:
    """The docs' staging sizing table, row by row, as the plan has it."""
    rows = []
    for component, r in _resources_everywhere(result).items():
        req, lim = r["requests"], r["limits"]
        rows.append(f"| {component} | {_replicas(result, component)} | {req['cpu']} | {req['memory']} | {lim['memory']} | {req.get('ephemeral-storage', '')} |")
    return rows


def test_docs_show_the_staging_requests(plan):
    from tests import documents

    text = documents.read("docs/aws-eks.md")
    table = text.split("| pod | replicas | CPU request |", 1)[1].split("\n\n", 1)[0]
    documented = [line.strip() for line in table.splitlines()[2:]]
    assert documented == staging_rows(plan("staging"))


def test_receive_requests_its_days_tsdb_from_the_node(plan_with):
    from tests.conftest import tool_overrides

    result = plan_with("staging", tool_overrides("staging", thanos={"mode": "receive"}))
    pod = k8s(result, "kubernetes:apps/v1:StatefulSet", "thanos-receive").inputs["spec"]["template"]["spec"]
    # docs/storage.md's formula for the day Receive keeps (--tsdb.retention=1d) plus the 3-hour head, and a fifth.
    disk = math.ceil(30_000 * (24 + 3) * 3600 * 2 * 1.2 / GIB)
    (data,) = [v for v in pod["volumes"] if v["name"] == "data"]
    assert data["emptyDir"] == {"sizeLimit": f"{disk}Gi"}
    assert pod["containers"][0]["resources"]["requests"]["ephemeral-storage"] == f"{disk}Gi"
    with pytest.raises(ConfigError, match="Thanos Receive TSDB"):
        stack_cfg("staging", {**tool_overrides("staging", thanos={"mode": "receive"}),
                              "obs-storage:aws": {"clusterName": "staging-eks", "sizing": {"metricsSamplesPerSecond": 60_000}}})


def test_sizing_is_an_eks_setting(plan_with):
    import yaml


    aws = yaml.safe_load(open("Pulumi.staging-ec2.yaml"))["config"]["obs-storage:aws"]
    with pytest.raises(ConfigError, match=r"obs-storage:aws\.sizing = .* is an EKS setting"):
        stack_cfg("staging-ec2", {"obs-storage:aws": {**aws, "sizing": {"logsGbPerDay": 10}}})
    stack_cfg("staging-ec2")
