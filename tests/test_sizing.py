"""Every Loki, Tempo, Prometheus and Thanos pod on EKS gets requests and limits from one surface,
aws.sizing, following the tools' own sizing guides. Expected figures are typed in from the guides
(grafana/loki v3.7.6 docs/sources/setup/size/_index.md, grafana/tempo v2.10.8 .../plan/size.md),
not taken from the code."""

from __future__ import annotations

import math
import re

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


def test_loki_between_the_floors_and_the_tier_top_gets_the_guides_figures_for_its_share():
    # 2000 GB/day, two thirds of the tier's 3000. Per pod the guide carries 3000 / replicas GB/day;
    # replicas = the load over that, rounded up (ingesters to threes), at least the project's count;
    # each pod requests the guide's CPU and memory times load / (replicas x per-pod load),
    # rounded up to 10m and 16Mi.
    expected = {
        # 3000/6 = 500 a pod: 2000/500 = 4 -> 6 (threes); share 2000/3000 = 2/3: 2 x 2/3 = 1.333 cores, 4096 x 2/3 = 2730.7 Mi.
        "ingester": (6, 1340, 2736),
        # 3000/4 = 750: 2.67 -> 3 (the project's 3 too); share 2000/2250 = 0.889: 1.778 cores, 512 x 0.889 = 455.1 Mi.
        "distributor": (3, 1780, 464),
        # 750: 2.67 -> 3 (above the project's 2); share 0.889: 0.444 cores, 2048 x 0.889 = 1820.4 Mi.
        "indexGateway": (3, 450, 1824),
        # 3000/10 = 300: 6.67 -> 7; share 2000/2100 = 0.952: 0.952 cores, 1024 x 0.952 = 975.2 Mi.
        "querier": (7, 960, 976),
        # 3000/2 = 1500: 1.33 -> 2; share 2000/3000 = 0.667: 0.667 cores, 2048 x 0.667 = 1365.3 Mi.
        "queryFrontend": (2, 670, 1376),
        # 1500: 2; share 0.667: 0.667 cores, 512 x 0.667 = 341.3 Mi.
        "queryScheduler": (2, 670, 352),
        # 3000/1: 1; share 0.667: 2 x 0.667 = 1.333 cores, 10240 x 0.667 = 6826.7 Mi.
        "compactor": (1, 1340, 6832),
    }
    sizes = sizing.loki(2000)
    assert {c: (sizes[c].replicas, sizes[c].cpu_millis, sizes[c].memory_mib) for c in expected} == expected
    # Neither the nginx gateway nor the canary follows ingest.
    assert (sizes["gateway"], sizes["lokiCanary"]) == (sizing.loki(1)["gateway"], sizing.loki(1)["lokiCanary"])


def test_tempo_at_20_mb_per_s_gets_the_guides_replicas_and_figures():
    # 1728 GB/day = 1728e9 B / 86400 s = 20 MB/s.
    sizes = sizing.tempo(1728)
    got = {c: (sizes[c].replicas, sizes[c].cpu_millis, sizes[c].memory_mib) for c in ("distributor", "ingester", "querier", "compactor")}
    gb = 1e9 / 2**20  # MiB in the guide's GB
    assert got == {
        # "1 replica per every 10MB/s": 2, each at the guide's full 2 cores and 2 GB (1907.3 Mi -> 1920).
        "distributor": (2, 2000, math.ceil(2 * gb / 16) * 16),
        # One per 4 MB/s: 5 -> 6 (threes); share 20 / (6 x 4) = 0.833: 2.5 x 0.833 = 2.083 cores, 4 GB x 0.833 = 3178.9 Mi.
        "ingester": (6, 2090, 3184),
        # One per 1.5 MB/s: 13.3 -> 14; share 20 / 21 = 0.952: 0.952 cores, 4 GB x 0.952 = 3633.1 Mi.
        "querier": (14, 960, 3648),
        # One per 4 MB/s, not zoned: 5, each at the full 1 core and 4 GB (3814.7 Mi -> 3824).
        "compactor": (5, 1000, math.ceil(4 * gb / 16) * 16),
    }
    # Query-driven, not by ingest: the same at any rate.
    small = sizing.tempo(1)
    assert (sizes["queryFrontend"], sizes["memcached"]) == (small["queryFrontend"], small["memcached"])


def test_prometheus_memory_cpu_and_disk_follow_the_measurement_and_storage_md():
    # 60,000 samples/s at the operator's 30 s scrape interval: 1,800,000 head series x 3,209 bytes
    # x 1.5 = 8,664,300,000 B = 8262.9 Mi -> 8272; CPU 60,000 x 0.032 / 20,000 cores x 2 = 0.192 ->
    # 200m; disk (storage.md) 60,000 x (12 + 3) h x 3600 s x 2 B x 1.2 = 7.776e9 B = 7.24 GiB -> 8.
    size = sizing.prometheus(60_000, 12)
    assert (size.replicas, size.cpu_millis, size.memory_mib, size.ephemeral_gib) == (2, 200, 8272, 8)
    # 1,000 samples/s: 30,000 series x 3,209 x 1.5 = 137.7 Mi, under the 512 Mi floor; 0.0032 cores,
    # under 100m; 0.24 GiB of disk, 1 GiB at least.
    size = sizing.prometheus(1_000, 12)
    assert (size.cpu_millis, size.memory_mib, size.ephemeral_gib) == (100, 512, 1)


def test_prometheus_tsdb_up_to_the_nodes_10_gib_is_accepted_and_over_it_refused():
    # 10 GiB = 10,737,418,240 B over (12 + 3) h x 3600 s x 2 B x 1.2 = 129,600 B a sample/s:
    # 82,850.4 samples/s fill it.
    assert (sizing.prometheus_disk_gib(82_850, 12), sizing.prometheus_disk_gib(82_851, 12)) == (10, 11)
    aws = {"clusterName": "staging-eks", "thanosCompactStorageClass": "gp3"}
    stack_cfg("staging", {"obs-storage:aws": {**aws, "sizing": {"metricsSamplesPerSecond": 82_850}}})
    with pytest.raises(ConfigError, match="needs 11 GiB of Prometheus TSDB .* over the 10 GiB"):
        stack_cfg("staging", {"obs-storage:aws": {**aws, "sizing": {"metricsSamplesPerSecond": 82_851}}})


def test_receive_is_one_prometheus_of_this_size_per_replica_with_a_days_tsdb():
    from tests.conftest import tool_overrides

    # 40,000 samples/s: 1,200,000 series x 3,209 x 1.5 = 5,776,200,000 B = 5508.6 Mi -> 5520;
    # 40,000 x 0.032 / 20,000 x 2 = 0.128 cores -> 130m; (24 + 3) h x 3600 s x 2 B x 1.2 x 40,000 =
    # 9.33e9 B = 8.69 GiB -> 9. As many replicas as the replication factor.
    size = sizing.thanos_receive(40_000, 3)
    assert (size.replicas, size.cpu_millis, size.memory_mib, size.ephemeral_gib) == (3, 130, 5520, 9)
    assert sizing.thanos_receive(1_000, 2) == sizing.Size(2, 100, 512, ephemeral_gib=1)
    # 10 GiB over 27 h x 3600 s x 2 B x 1.2 = 233,280 B a sample/s: 46,028.0 samples/s fill it.
    receive = tool_overrides("staging", thanos={"mode": "receive"})
    stack_cfg("staging", {**receive, "obs-storage:aws": {"clusterName": "staging-eks", "sizing": {"metricsSamplesPerSecond": 46_028}}})
    with pytest.raises(ConfigError, match="needs 11 GiB of Thanos Receive TSDB"):
        stack_cfg("staging", {**receive, "obs-storage:aws": {"clusterName": "staging-eks", "sizing": {"metricsSamplesPerSecond": 46_029}}})


def test_loki_requests_round_up_to_the_next_10m_and_16_mi_never_down():
    # The compactor: 2 cores and 10 GiB carry the tier's 3000 GB/day on 1 pod. At 1500 GB/day, half:
    # 1 core and 5120 Mi exactly, kept as they are. At 1500.3, a share of 0.5001: 1.0002 cores and
    # 5121.0 Mi, one step up each, not cut down to the figures of 1500.
    assert (sizing.loki(1500)["compactor"].cpu_millis, sizing.loki(1500)["compactor"].memory_mib) == (1000, 10 * 1024 // 2)
    assert (sizing.loki(1500.3)["compactor"].cpu_millis, sizing.loki(1500.3)["compactor"].memory_mib) == (1010, 5120 + 16)


def test_a_trickle_still_gets_the_projects_replicas_of_every_component():
    # 100 bytes a day: the guides' per-pod loads round to no pod at all; the project's own counts
    # (docs/aws-eks.md's staging table) stay: Loki's ingesters one per zone, one compactor each.
    loki, tempo = sizing.loki(1e-7), sizing.tempo(1e-7)
    assert {c: s.replicas for c, s in loki.items() if c in LOKI_TIER} == {
        "ingester": 3, "distributor": 3, "indexGateway": 2, "querier": 3, "queryFrontend": 2, "queryScheduler": 2, "compactor": 1}
    assert {c: tempo[c].replicas for c in ("distributor", "ingester", "querier", "compactor")} == {
        "distributor": 2, "ingester": 3, "querier": 2, "compactor": 1}


def test_tempo_adds_a_distributor_past_each_10_mb_per_s():
    # "1 replica per every 10MB/s": 2592 GB/day = 2592e9 B / 86400 s = 30 MB/s exactly fills 3;
    # 10 MB a day more (30.0001 MB/s) needs a fourth.
    assert (sizing.tempo(2592)["distributor"].replicas, sizing.tempo(2592.01)["distributor"].replicas) == (3, 4)


@pytest.mark.parametrize("size", [lambda s: sizing.prometheus(s, 12), lambda s: sizing.thanos_receive(s, 2)], ids=["prometheus", "receive"])
def test_prometheus_memory_and_cpu_at_their_rounding_steps(size):
    # Memory: samples/s x 30 s x 3,209 B x 1.5 = 144,405 B per sample/s, rounded up to 16 Mi.
    # 8272 Mi = 8,673,820,672 B holds 60,065 samples/s (8,673,686,325 B) but not 60,066 (8,673,830,730 B).
    per_sample = 30 * 3209 * 3 // 2
    assert 60_065 * per_sample <= 8272 * 2**20 < 60_066 * per_sample
    assert (size(60_065).memory_mib, size(60_066).memory_mib) == (8272, 8272 + 16)
    # CPU: 0.032 cores at 20,000 samples/s, twice: 62,500 samples/s take 0.2 cores, 200m exactly;
    # one more sample/s, 200.0032m, rounds up to 210m.
    assert (size(62_500).cpu_millis, size(62_501).cpu_millis) == (200, 210)


def test_compactor_disk_and_the_largest_prometheus_it_holds_agree():
    # compact_samples_per_second(d) is the largest rate whose worst case, 2 x 14 days x 86,400 s
    # x 2 B a sample, fits d GiB: that rate fits, one sample/s more does not.
    for disk in range(1, 300):
        most = sizing.compact_samples_per_second(disk)
        assert most == disk * GIB // (2 * 14 * 86400 * 2), disk
        assert sizing.thanos_compact_disk_gib(most) <= disk < sizing.thanos_compact_disk_gib(most + 1), disk


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
    ({"logsGbPerDay": 3001}, "aws.sizing.logsGbPerDay", "3 TB/day tier"),
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


# Pods the charts render with requests the program does not set, at the pinned chart versions.
# grafana-community/helm-charts loki-18.11.0 charts/loki: each memcached cache (chunks-cache/statefulset.yaml,
# results-cache/statefulset.yaml), rendered when its `enabled` and `memcached.enabled` (values.yaml:6187,
# true) hold, is a StatefulSet of `replicas` (values.yaml:6501 and :6339: 1) whose
# memcached container requests `allocatedCPU` (values.yaml:6507 and :6345: 500m) and
# round(1.2 x allocatedMemory) Mi (templates/memcached/_memcached-statefulset.tpl:99-104,
# `div (add (mul .allocatedMemory 12) 5) 10`); its exporter sidecar requests nothing
# (values.yaml:6274-6275 `requests: {}`). grafana/helm-charts rollout-operator-0.51.1
# charts/rollout-operator: one replica (templates/deployment.yaml:13) requesting 100m and 100Mi
# (values.yaml:95-101; loki-18.11.0 values.yaml:6814 sets no resources for it; the same at
# rollout-operator-0.50.0, which tempo-distributed-2.26.2 installs when Loki is off). kube-state-metrics
# 8.4.0 (kube-prometheus-stack's subchart) requests nothing (values.yaml:515 `resources: {}`).
MEMCACHED_CPU_MILLIS, MEMCACHED_REPLICAS = 500, 1
ROLLOUT_OPERATOR = (100, 100)  # CPU millis, memory Mi


def _millis(cpu: str) -> int:
    return int(cpu.removesuffix("m")) if cpu.endswith("m") else int(float(cpu) * 1000)


def _mib(memory: str) -> int:
    assert memory.endswith("Mi") or memory.endswith("Gi"), memory
    return int(memory[:-2]) * (1024 if memory.endswith("Gi") else 1)


def staging_requests(result) -> list[tuple[str, int, int, int]]:
    """(pod, replicas, CPU millis, memory Mi) of every container a staging install schedules."""
    rows = []
    # The chart pods whose resources the program's values set (the docs' sizing table).
    for component, resources in _resources_everywhere(result).items():
        if not component.startswith("thanos-") or component == "thanos-sidecar":
            requests = resources["requests"]
            rows.append((component, _replicas(result, component), _millis(requests["cpu"]), _mib(requests["memory"])))
    # Every workload the program declares itself (the Thanos Deployments, the bucket-freshness probes).
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        for workload in result.by_type(f"kubernetes:apps/v1:{kind}"):
            assert kind != "DaemonSet", workload.urn  # one pod a node: the sum below would not hold
            for container in workload.inputs["spec"]["template"]["spec"]["containers"]:
                requests = container["resources"]["requests"]
                rows.append((workload.inputs["metadata"]["name"], int(workload.inputs["spec"]["replicas"]), _millis(requests["cpu"]), _mib(requests["memory"])))
    loki = chart(result, "loki").inputs["values"]
    assert "memcached" not in loki
    for cache in ("chunksCache", "resultsCache"):
        values = loki[cache]
        assert "resources" not in values and "replicas" not in values and "allocatedCPU" not in values, cache
        if values["enabled"]:
            rows.append((f"loki {cache}", MEMCACHED_REPLICAS, MEMCACHED_CPU_MILLIS, (int(values["allocatedMemory"]) * 12 + 5) // 10))
    operators = [release for release in ("loki", "tempo") if chart(result, release).inputs["values"]["rollout_operator"]["enabled"]]
    assert len(operators) == 1 and "resources" not in chart(result, operators[0]).inputs["values"]["rollout_operator"], operators
    rows.append(("rollout-operator", 1, *ROLLOUT_OPERATOR))
    return rows


def test_docs_state_the_staging_installs_total_requests(plan):
    from tests import documents

    rows = staging_requests(plan("staging"))
    cpu = sum(n * c for _, n, c, _ in rows) / 1000
    memory = sum(n * m for _, n, _, m in rows) / 1024
    text = " ".join(documents.read("docs/aws-eks.md").split())
    (documented,) = re.findall(r"([\d.]+) CPU and ([\d.]+) GiB of memory requested in all", text)
    assert documented == (f"{cpu:.1f}", f"{memory:.1f}"), rows


def test_the_caches_and_the_operator_are_counted_as_their_charts_render_them(plan):
    rows = {name: (n, c, m) for name, n, c, m in staging_requests(plan("staging"))}
    # aws.lokiChunksCacheMb 2048 and lokiResultsCacheMb 512 by default: 1.2 x, rounded.
    assert rows["loki chunksCache"] == (1, 500, 2458) and rows["loki resultsCache"] == (1, 500, 614)
    assert rows["rollout-operator"] == (1, 100, 100)
    assert {n for n in rows if "bucket-freshness" in n} == {f"bucket-freshness-{t}" for t in ("loki", "tempo", "thanos")}
