"""Loki, Tempo and Thanos on EKS: wired to their buckets and roles, installable side by side in
one namespace, and nothing that a Spot reclaim strands in a zone.

Chart facts the assertions rely on were read at the pinned chart tags (see components/eks_*.py)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import yaml

from tests.conftest import tool_overrides
from tools import engine

ROLE = "arn:aws:iam::123456789012:role/obs-staging-{}"
ROOT = Path(__file__).resolve().parent.parent
VERSIONS_DOC = (ROOT / "docs" / "versions.md").read_text()


def chart(result, release: str) -> engine.Registration:
    (found,) = [r for r in result.by_type("kubernetes:helm.sh/v4:Chart") if r.inputs["name"] == release]
    return found


def k8s(result, kind: str, name: str) -> engine.Registration:
    (found,) = [r for r in result.by_type(kind) if r.inputs["metadata"]["name"] == name]
    return found


def all_strings(value) -> str:
    return json.dumps(value)


def documented_versions() -> dict[str, str]:
    """artefact -> version, from the versions table in docs/versions.md (what the project documents)."""
    section = VERSIONS_DOC
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ") and not line.startswith("| artefact")]
    return {name.strip(): version.strip() for name, version in rows}


def key_file_header(name: str) -> dict[str, str]:
    lines = (ROOT / "tests/upstream" / name).read_text().splitlines()
    return dict(line[2:].split(": ", 1) for line in lines if line.startswith("# ") and ": " in line and " " not in line[2:].split(": ", 1)[0])


def test_charts_are_pinned_to_their_documented_versions(plan):
    result = plan("staging")
    documented = documented_versions()
    # The chart versions whose keys the values are checked against (tests/upstream/chart-*.keys),
    # from the repositories those headers name (a GitHub org's helm-charts repository publishes
    # its index at https://<org>.github.io/helm-charts).
    for release, keys in (("loki", "chart-loki.keys"), ("tempo", "chart-tempo-distributed.keys"), ("kps", "chart-kube-prometheus-stack.keys")):
        c = chart(result, release)
        source = key_file_header(keys)
        org, repository = source["repo"].split("/")
        assert (c.inputs["chart"], c.inputs["version"]) == (source["chart"], source["version"]), c.urn
        assert c.inputs["repositoryOpts"]["repo"] == f"https://{org}.github.io/{repository}", c.urn
        assert any(name.startswith(f"chart {source['chart']}") and version == source["version"] for name, version in documented.items()), c.urn
        assert c.inputs["namespace"] == "observability"
    values = chart(result, "loki").inputs["values"]
    assert values["loki"]["image"]["tag"] == documented["grafana/loki"]
    assert chart(result, "tempo").inputs["values"]["tempo"]["image"]["tag"] == documented["grafana/tempo"]
    prom = chart(result, "kps").inputs["values"]["prometheus"]["prometheusSpec"]
    assert prom["image"]["tag"] == documented["quay.io/prometheus/prometheus"]
    assert prom["thanos"]["image"] == f"quay.io/thanos/thanos:{documented['quay.io/thanos/thanos']}"


def test_loki_values_bucket_region_identity_retention(plan):
    values = chart(plan("staging"), "loki").inputs["values"]
    # The chart-wide account (distributor, query-frontend, scheduler, gateway) has no role.
    assert values["serviceAccount"] == {"create": True, "name": "loki", "annotations": {}}
    assert values["compactor"]["serviceAccount"] == {
        "create": True, "name": "loki-compactor", "annotations": {"eks.amazonaws.com/role-arn": ROLE.format("loki-compactor")}}
    storage = values["loki"]["storage"]
    assert storage["bucketNames"]["chunks"] == "acme-staging-loki" and storage["s3"]["region"] == "ap-northeast-2"
    assert storage["s3"]["s3ForcePathStyle"] is False
    structured = values["loki"]["structuredConfig"]
    assert structured["limits_config"]["retention_period"] == "744h"
    assert structured["compactor"]["retention_enabled"] is True and structured["compactor"]["delete_request_store"] == "s3"
    assert values["loki"]["schemaConfig"]["configs"][0]["schema"] == "v13" and values["loki"]["schemaConfig"]["configs"][0]["store"] == "tsdb"
    assert "accessKeyId" not in all_strings(values) and "secretAccessKey" not in all_strings(values)


# grafana-community/helm-charts tag loki-18.11.0, charts/loki/values.yaml: the replicas of the
# targets of the other deployment modes (what templates/validate.yaml checks them against).
LOKI_CHART_REPLICAS = {"singleBinary": 0, "write": 3, "read": 3, "backend": 3}
LOKI_DISTRIBUTED = ("ingester", "distributor", "querier", "queryFrontend", "queryScheduler", "indexGateway", "compactor", "ruler")


def loki_render_refusals(values: dict) -> list[str]:
    """What templates/validate.yaml (loki-18.11.0) fails the render for, of the deployment-mode and
    dependency rules, with the chart's defaults for what `values` leaves out."""
    def replicas(component: str) -> int:
        return int(values.get(component, {}).get("replicas", LOKI_CHART_REPLICAS.get(component, 0)))

    monolithic = replicas("singleBinary")
    scalable = any(replicas(c) > 0 for c in ("backend", "read", "write"))
    distributed = any(replicas(c) > 0 for c in LOKI_DISTRIBUTED)
    out = []
    if scalable and distributed and values["deploymentMode"] != "SimpleScalable<->Distributed":
        out.append("scalable and distributed targets")
    if monolithic > 0 and distributed:
        out.append("monolithic and distributed targets")
    if values.get("minio", {}).get("enabled") and not values.get("ignoreMinioDeprecation"):
        out.append("the deprecated MinIO subchart")
    if not values["lokiCanary"]["enabled"] and values.get("test", {}).get("enabled", True):
        out.append("a Helm test without the canary")
    return out


def test_loki_values_pass_the_charts_own_validation(plan):
    values = chart(plan("staging"), "loki").inputs["values"]
    assert values["deploymentMode"] == "Distributed"
    assert loki_render_refusals(values) == []
    # Every other mode's target is off: the chart's defaults (3 write, read and backend replicas)
    # would fail the render next to the distributed targets, and so would one single binary.
    assert {c: values[c]["replicas"] for c in LOKI_CHART_REPLICAS} == {"singleBinary": 0, "write": 0, "read": 0, "backend": 0}
    assert loki_render_refusals({**values, "backend": {}}) == ["scalable and distributed targets"]
    assert loki_render_refusals({**values, "singleBinary": {"replicas": 1}}) == ["monolithic and distributed targets"]
    # The program's buckets are S3: no MinIO subchart.
    assert values["minio"] == {"enabled": False}
    assert loki_render_refusals({**values, "minio": {"enabled": True}}) == ["the deprecated MinIO subchart"]


def test_no_loki_component_claims_a_zone_bound_volume(plan, plan_with):
    # docs/aws-eks.md: no pod is bound to a single-AZ volume unless aws.walVolume asks for the
    # ingesters'. The chart makes those claims itself, so the plan's own resources cannot show them.
    def claims(result) -> dict[str, bool]:
        values = chart(result, "loki").inputs["values"]
        return {c: values[c]["persistence"]["enabled"] for c in values if isinstance(values[c], dict) and "persistence" in values[c]}

    assert claims(plan("staging")) == {"ingester": False, "indexGateway": False, "compactor": False}
    asked = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "walVolume": "persistentVolume"}})
    assert claims(asked) == {"ingester": True, "indexGateway": False, "compactor": False}


def test_loki_caches_cost_what_docs_aws_eks_states(plan, plan_with):
    from tests import documents

    text = documents.read("docs/aws-eks.md")
    values = chart(plan("staging"), "loki").inputs["values"]
    for cache, key in (("chunks", "lokiChunksCacheMb"), ("results", "lokiResultsCacheMb")):
        (row,) = [line for line in text.splitlines() if line.startswith(f"| Loki {cache} cache |")]
        megabytes, requested = int(re.search(rf"`aws\.{key}: (\d+)`", row)[1]), int(re.search(r"\| (\d+) Mi", row)[1])
        assert values[f"{cache}Cache"] == {"enabled": True, "allocatedMemory": megabytes}, cache
        # The chart requests round(1.2 x allocatedMemory) MiB, in integers: (m * 12 + 5) / 10
        # (templates/memcached/_memcached-statefulset.tpl at loki-18.11.0).
        assert (megabytes * 12 + 5) // 10 == requested, cache
    # 0 turns a cache off: no memcached StatefulSet at all, not one with no memory.
    off = chart(plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "lokiResultsCacheMb": 0}}), "loki").inputs["values"]
    assert off["resultsCache"] == {"enabled": False} and off["chunksCache"]["enabled"] is True


def test_a_drain_evicts_one_pod_of_each_replicated_loki_component_at_a_time(plan):
    values = chart(plan("staging"), "loki").inputs["values"]
    # loki-18.11.0 templates/_pdb.tpl: a component with more than one replica and
    # podDisruptionBudget.enabled (every one's default) gets a budget with its `maxUnavailable`;
    # the zone-aware ingesters share one over the whole rollout group (ingester/pdb-zone.yaml).
    # Replication factor 3 needs a quorum of 3 // 2 + 1 = 2, so only 3 - 2 = 1 ingester may be down;
    # 0 would block every drain of a node running one of these pods.
    factor = values["loki"]["commonConfig"]["replication_factor"]
    assert factor - (factor // 2 + 1) == 1
    budgets = {c: values[c].get("maxUnavailable") for c in ("ingester", "distributor", "querier", "queryFrontend", "indexGateway")}
    assert all(values[c]["replicas"] > 1 for c in budgets)
    assert budgets == dict.fromkeys(budgets, 1)


def test_the_stacks_loki_urls_name_a_service_the_chart_renders(plan):
    result = plan("staging")
    values = chart(result, "loki").inputs["values"]
    # Shippers push to, and Grafana and the canary read from, loki-gateway: the chart renders
    # that Service (port 80, values.yaml gateway.service.port) only with gateway.enabled
    # (templates/gateway/service.yaml at loki-18.11.0).
    assert values["gateway"]["enabled"] is True
    svc = "loki-gateway.observability.svc.cluster.local"
    assert result.outputs["urls"]["lokiPush"] == f"http://{svc}/loki/api/v1/push" and result.outputs["urls"]["loki"] == f"http://{svc}"


def test_tempo_values_bucket_identity_retention_receivers(plan):
    values = chart(plan("staging"), "tempo").inputs["values"]
    assert values["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE.format("tempo")}
    s3 = values["storage"]["trace"]["s3"]
    assert (s3["bucket"], s3["region"], s3["forcepathstyle"]) == ("acme-staging-tempo", "ap-northeast-2", False)
    assert values["compactor"]["config"]["compaction"]["block_retention"] == "336h"
    assert values["traces"]["otlp"] == {"grpc": {"enabled": True}, "http": {"enabled": True}}


def test_tempo_chart_makes_its_service_account_exposes_no_gateway_and_guards_its_ingesters(plan):
    result = plan("staging")
    values = chart(result, "tempo").inputs["values"]
    # The IRSA role trusts system:serviceaccount:observability:tempo, and no other resource of the
    # plan makes that account (only Thanos' two are made outside their chart): the chart must.
    assert (values["serviceAccount"]["create"], values["serviceAccount"]["name"]) == (True, "tempo")
    assert "tempo" not in {r.inputs["metadata"]["name"] for r in result.by_type("kubernetes:core/v1:ServiceAccount")}
    # Shippers and Grafana reach the distributor and the query frontend directly (the stack's
    # outputs), so the chart's nginx gateway would be one more hop and one more thing to run.
    assert values["gateway"] == {"enabled": False}
    assert result.outputs["urls"]["otlpGrpc"].startswith("tempo-distributor.") and result.outputs["urls"]["tempo"].startswith("http://tempo-query-frontend.")
    # A node drain may evict at most replicas - (RF/2 + 1) ingesters, so every trace keeps a quorum
    # of its copies (templates/ingester/poddisruptionbudget-ingester.yaml at tempo-distributed-2.26.2).
    assert values["ingester"]["podDisruptionBudget"] == {"enabled": True}


def test_no_ingester_volume_claim_unless_asked(plan, plan_with):
    values = {r: chart(plan("staging"), r).inputs["values"] for r in ("loki", "tempo")}
    assert values["loki"]["ingester"]["persistence"]["enabled"] is False
    assert values["tempo"]["ingester"]["persistence"]["enabled"] is False
    assert not plan("staging").by_type("kubernetes:core/v1:PersistentVolumeClaim")
    asked = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "walVolume": "persistentVolume"}})
    assert chart(asked, "loki").inputs["values"]["ingester"]["persistence"]["enabled"] is True
    assert chart(asked, "tempo").inputs["values"]["ingester"]["persistence"]["enabled"] is True


def test_ingesters_replicate_across_zones(plan):
    loki = chart(plan("staging"), "loki").inputs["values"]
    assert loki["loki"]["commonConfig"]["replication_factor"] == 3
    zones = loki["ingester"]["zoneAwareReplication"]
    assert zones["enabled"] is True
    assert [zones[z]["nodeSelector"]["topology.kubernetes.io/zone"] for z in ("zoneA", "zoneB", "zoneC")] == [
        "ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c"]
    tempo = chart(plan("staging"), "tempo").inputs["values"]
    assert tempo["ingester"]["config"]["replication_factor"] == 3 and tempo["ingester"]["zoneAwareReplication"]["enabled"] is True


def test_sidecar_mode(plan):
    result = plan("staging")
    prom = chart(result, "kps").inputs["values"]["prometheus"]
    assert prom["serviceAccount"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE.format("prometheus")}
    objstore = prom["prometheusSpec"]["thanos"]["objectStorageConfig"]["secret"]
    assert objstore["config"]["bucket"] == "acme-staging-thanos" and "aws_sdk_auth" not in objstore["config"]
    assert prom["prometheusSpec"]["replicaExternalLabelName"] == "replica" and prom["prometheusSpec"]["replicas"] == 2
    query = k8s(result, "kubernetes:apps/v1:Deployment", "thanos-query").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--query.replica-label=replica" in query
    assert any("kps-thanos-discovery" in a for a in query) and not any(a.startswith("--store") for a in query)
    compact = k8s(result, "kubernetes:apps/v1:Deployment", "thanos-compact")
    assert compact.inputs["spec"]["replicas"] == 1 and compact.inputs["spec"]["strategy"]["type"] == "Recreate"
    args = compact.inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {"--retention.resolution-raw=30d", "--retention.resolution-5m=90d", "--retention.resolution-1h=395d"} <= set(args)
    for sa in ("thanos-store", "thanos-compact"):
        account = k8s(result, "kubernetes:core/v1:ServiceAccount", sa)
        assert account.inputs["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE.format(sa)}
    assert not result.by_type("kubernetes:apps/v1:StatefulSet")


def test_receive_mode(plan_with):
    result = plan_with("staging", tool_overrides("staging", thanos={"mode": "receive"}))
    receive = k8s(result, "kubernetes:apps/v1:StatefulSet", "thanos-receive")
    assert receive.inputs["spec"]["replicas"] == 3
    pod = receive.inputs["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "thanos-receive"
    assert "--receive.replication-factor=3" in pod["containers"][0]["args"]
    assert all("emptyDir" in v or "secret" in v or "configMap" in v for v in pod["volumes"])
    prom = chart(result, "kps").inputs["values"]["prometheus"]
    assert prom["prometheusSpec"]["remoteWrite"][0]["url"].endswith(":19291/api/v1/receive")
    assert "thanos" not in prom["prometheusSpec"]
    query = k8s(result, "kubernetes:apps/v1:Deployment", "thanos-query").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert any("thanos-receive" in a for a in query)
    hashring = json.loads(k8s(result, "kubernetes:core/v1:ConfigMap", "thanos-receive-hashring").inputs["data"]["hashrings.json"])
    assert len(hashring[0]["endpoints"]) == 3


def test_pod_identity_switches_thanos_to_the_aws_sdk(plan_with):
    result = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "identity": "pod-identity"}})
    prom = chart(result, "kps").inputs["values"]["prometheus"]
    assert prom["prometheusSpec"]["thanos"]["objectStorageConfig"]["secret"]["config"]["aws_sdk_auth"] is True
    assert prom["serviceAccount"]["annotations"] == {}
    loki = chart(result, "loki").inputs["values"]
    assert all(loki[c]["serviceAccount"]["annotations"] == {} for c in ("ingester", "querier", "indexGateway", "compactor"))


def test_grafana_datasources_for_existing_grafana(plan):
    cm = k8s(plan("staging"), "kubernetes:core/v1:ConfigMap", "obs-storage-datasources")
    assert cm.inputs["metadata"]["labels"] == {"grafana_datasource": "1"}
    datasources = {d["uid"]: d for d in yaml.safe_load(cm.inputs["data"]["obs-storage.yaml"])["datasources"]}
    # Through the query frontend's response cache (aws.thanosResponseCacheMb, on by default).
    assert datasources["thanos"]["url"] == "http://thanos-query-frontend.observability.svc.cluster.local:10902"
    assert datasources["tempo"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert datasources["loki"]["url"] == "http://loki-gateway.observability.svc.cluster.local"


def test_multi_tenancy_matches_lifecycle_prefixes(plan_with):
    result = plan_with("staging", {"obs-storage:tenants": ["team-a", "team-b"]})
    loki = chart(result, "loki").inputs["values"]["loki"]
    assert loki["auth_enabled"] is True
    assert set(loki["runtimeConfig"]["overrides"]) == {"team-a", "team-b"}
    assert chart(result, "tempo").inputs["values"]["multitenancyEnabled"] is True
    rules = result.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "loki-lifecycle").inputs["rules"]
    assert sorted(r["filter"]["prefix"] for r in rules if r.get("expiration", {}).get("days")) == ["team-a/", "team-b/"]


def spread_constraints(value, path: str = "") -> list[tuple[str, dict]]:
    """(where, constraint) for every topologySpreadConstraints in chart values or a pod spec."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "topologySpreadConstraints":
                # tempo-distributed takes them as a template string (components/eks/tempo.py).
                found += [(path, c) for c in (json.loads(item) if isinstance(item, str) else item)]
            else:
                found += spread_constraints(item, f"{path}.{key}")
    return found


def test_only_prometheus_replicas_refuse_to_share_a_zone(plan):
    # DoNotSchedule leaves a pod Pending when its zone is full or gone: right for the two
    # Prometheus replicas (two in one zone defeat the pair), wrong for stateless replicas, which
    # must keep running through a zone outage (ScheduleAnyway).
    result = plan("staging")
    found = [(c.inputs["name"] + where, constraint) for c in result.by_type("kubernetes:helm.sh/v4:Chart")
             for where, constraint in spread_constraints(c.inputs["values"])]
    for kind in ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"):
        for workload in result.by_type(kind):
            pod = workload.inputs["spec"]["template"]
            for where, constraint in spread_constraints(pod["spec"]):
                # The constraint must select this workload's own pods.
                assert constraint["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(), workload.urn
                found.append((workload.inputs["metadata"]["name"] + where, constraint))
    policies = {where: c["whenUnsatisfiable"] for where, c in found}
    assert policies.pop("kps.prometheus.prometheusSpec") == "DoNotSchedule"
    assert {"loki.distributor", "loki.querier", "tempo.distributor", "thanos-store", "thanos-query"} <= set(policies)
    assert set(policies.values()) == {"ScheduleAnyway"}, policies
    for where, constraint in found:
        assert (constraint["topologyKey"], constraint["maxSkew"]) == ("topology.kubernetes.io/zone", 1), where


def test_thanos_pods_are_spread_and_probed(plan):
    for name in ("thanos-store", "thanos-query"):
        spec = k8s(plan("staging"), "kubernetes:apps/v1:Deployment", name).inputs["spec"]["template"]["spec"]
        assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
        assert spec["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/-/ready"
        pdb = k8s(plan("staging"), "kubernetes:policy/v1:PodDisruptionBudget", name)
        assert pdb.inputs["spec"]["maxUnavailable"] == 1


def test_thanos_deployments_run_as_the_images_user_with_budgets_where_replicated(plan_with):
    from components.core import versions

    uid = int(versions.DEFAULT_PINS["thanos"].facts.user)
    result = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "thanosResponseCacheMb": 256}})
    budgets = {p.inputs["metadata"]["name"]: p.inputs["spec"] for p in result.by_type("kubernetes:policy/v1:PodDisruptionBudget")}
    # Thanos' own ports: gRPC 10901 (StoreAPI, what Query fans out to), HTTP 10902.
    grpc, http = {"name": "grpc", "containerPort": 10901}, {"name": "http", "containerPort": 10902}
    expected = {"thanos-store": (2, "RollingUpdate", [grpc, http]), "thanos-query": (2, "RollingUpdate", [grpc, http]),
                "thanos-compact": (1, "Recreate", [http]), "thanos-query-frontend": (2, "RollingUpdate", [http])}
    for name, (replicas, strategy, ports) in expected.items():
        spec = k8s(result, "kubernetes:apps/v1:Deployment", name).inputs["spec"]
        pod = spec["template"]["spec"]
        container = pod["containers"][0]
        assert (spec["replicas"], spec["strategy"]["type"], container["ports"]) == (replicas, strategy, ports), name
        assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": uid, "fsGroup": uid}, name
        assert container["securityContext"] == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}, name
        assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": 10902}, name
        # A budget lets a node drain take one replica at a time; a singleton has nothing to keep.
        assert (budgets[name] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}}) if replicas > 1 \
            else name not in budgets, name
        service = k8s(result, "kubernetes:core/v1:Service", name).inputs["spec"]
        assert service["ports"] == [{"name": p["name"], "port": p["containerPort"]} for p in ports], name


# ---------------------------------------------------------------- 1. read-only root filesystem
def _paths(value, found=None) -> list[str]:
    found = [] if found is None else found
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and (key.endswith(("_directory", "_location", "_dir")) or key in ("dir", "path", "path_prefix")):
                found.append(item)
            _paths(item, found)
    return found


def test_loki_paths_follow_the_platform(plan):
    structured = chart(plan("staging"), "loki").inputs["values"]["loki"]["structuredConfig"]
    paths = _paths(structured)
    assert {"storage_config", "compactor"} <= set(structured) and len(paths) >= 3
    # The chart's containers have a read-only root filesystem; its data volume is /var/loki.
    assert all(p.startswith("/var/loki/") for p in paths), paths
    # The Docker image's own data directory stays /loki.
    from components.containers import workloads
    from components.core.renderers import loki
    from tests.test_renderers import stack_cfg
    cfg = stack_cfg("local")
    docker = _paths(loki.storage_sections(cfg, workloads.object_store(cfg, "loki")))
    assert len(docker) >= 3 and all(p.startswith("/loki/") for p in docker), docker


# ---------------------------------------------------------------- 2.-4. rollout operator and groups
def _operators(result) -> list[str]:
    return [r.inputs["name"] for r in result.by_type("kubernetes:helm.sh/v4:Chart")
            if r.inputs["values"].get("rollout_operator", {}).get("enabled")]


def test_one_rollout_operator_per_namespace(plan, plan_with):
    assert len(_operators(plan("staging"))) == 1
    # Whichever of the two tools is deployed alone brings its own.
    assert _operators(plan_with("staging", tool_overrides("staging", loki={"enabled": False}))) == ["tempo"]
    assert _operators(plan_with("staging", tool_overrides("staging", tempo={"enabled": False}))) == ["loki"]


def test_loki_and_tempo_ingesters_are_different_rollout_groups(plan):
    ingester = chart(plan("staging"), "loki").inputs["values"]["ingester"]
    # tempo-distributed hard-codes `rollout-group: ingester` and `name: ingester-zone-<x>` on its
    # ingesters; the Loki chart renders the same unless told to prefix both.
    prefix = ingester.get("rolloutGroupPrefix")
    assert isinstance(prefix, str) and prefix and f"{prefix}-ingester" != "ingester"
    assert ingester.get("addIngesterNamePrefix") is True


def test_zone_by_zone_rollouts_are_real(plan):
    result = plan("staging")
    # The rollout-operator skips a group unless every StatefulSet in it is OnDelete; the Loki chart
    # defaults to RollingUpdate, tempo-distributed switches to OnDelete with zone awareness.
    assert chart(result, "loki").inputs["values"]["ingester"]["strategy"] == {"type": "OnDelete"}
    assert chart(result, "tempo").inputs["values"]["ingester"]["zoneAwareReplication"]["enabled"] is True


# ---------------------------------------------------------------- 5. Prometheus
def test_prometheus_has_no_zone_bound_volume(plan):
    result = plan("staging")
    spec = chart(result, "kps").inputs["values"]["prometheus"]["prometheusSpec"]
    # Prometheus docs/storage.md: retention x samples/s x 2 bytes, here 12 h plus the 3-hour head at
    # staging's 30,000 samples/s, with a fifth of headroom: 3.6 GiB, so 4 GiB; pruned at 80%.
    disk = math.ceil(30_000 * (12 + 3) * 3600 * 2 * 1.2 / 2**30)
    assert disk == 4
    assert list(spec["storageSpec"]) == ["emptyDir"] and spec["storageSpec"]["emptyDir"]["sizeLimit"] == f"{disk}Gi"
    assert spec["resources"]["requests"]["ephemeral-storage"] == f"{disk}Gi"
    assert spec["retentionSize"] == f"{int(disk * 1024 * 0.8)}MB" and spec["retention"] == "12h"
    # Two replicas never share a zone.
    (constraint,) = spec["topologySpreadConstraints"]
    assert (constraint["topologyKey"], constraint["whenUnsatisfiable"]) == ("topology.kubernetes.io/zone", "DoNotSchedule")
    assert spec["replicas"] == 2


def test_prometheus_chart_makes_its_service_account_and_the_sidecars_discovery_service(plan, plan_with):
    result = plan("staging")
    prom = chart(result, "kps").inputs["values"]["prometheus"]
    # The IRSA role trusts system:serviceaccount:observability:prometheus and no other resource of
    # the plan makes that account: the chart must (templates/prometheus/serviceaccount.yaml renders
    # only with serviceAccount.create, kube-prometheus-stack-88.5.3), or no Prometheus pod starts.
    assert (prom["serviceAccount"]["create"], prom["serviceAccount"]["name"]) == (True, "prometheus")
    assert "prometheus" not in {r.inputs["metadata"]["name"] for r in result.by_type("kubernetes:core/v1:ServiceAccount")}
    # Query finds the sidecars through <fullname>-thanos-discovery, a Service the chart renders only
    # with prometheus.thanosService.enabled (templates/prometheus/serviceThanosSidecar.yaml): without
    # it Query would answer without the last hours no block holds yet.
    query = k8s(result, "kubernetes:apps/v1:Deployment", "thanos-query").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--endpoint=dnssrv+_grpc._tcp.kps-thanos-discovery.observability.svc.cluster.local" in query
    assert prom["thanosService"] == {"enabled": True}
    # Mode receive: no sidecar, so no Service selecting a gRPC port no container serves.
    receive = chart(plan_with("staging", tool_overrides("staging", thanos={"mode": "receive"})), "kps").inputs["values"]["prometheus"]
    assert receive["thanosService"] == {"enabled": False}


def test_one_prometheus_replica_at_a_time_may_be_evicted(plan):
    prom = chart(plan("staging"), "kps").inputs["values"]["prometheus"]
    # Two replicas: a drain may take one (minAvailable 0 would let it take both heads at once, 2
    # would block every drain of a node running one). The chart's template renders the budget
    # only with podDisruptionBudget.enabled (templates/prometheus/podDisruptionBudget.yaml).
    replicas = prom["prometheusSpec"]["replicas"]
    assert replicas == 2
    assert prom["podDisruptionBudget"] == {"enabled": True, "minAvailable": replicas - 1}


def test_kube_prometheus_stack_fits_a_managed_control_plane(plan, plan_with):
    values = chart(plan("staging"), "kps").inputs["values"]
    for part in ("kubeEtcd", "kubeControllerManager", "kubeScheduler", "kubeProxy", "nodeExporter"):
        assert values[part] == {"enabled": False}, part
    assert values["crds"] == {"enabled": True}
    asked = chart(plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "nodeExporter": True, "prometheusCrds": "existing"}}), "kps")
    assert asked.inputs["values"]["nodeExporter"] == {"enabled": True} and asked.inputs["values"]["crds"] == {"enabled": False}


# ---------------------------------------------------------------- 6. Thanos
def test_thanos_store_service_is_headless_for_dnssrv(plan):
    result = plan("staging")
    assert k8s(result, "kubernetes:core/v1:Service", "thanos-store").inputs["spec"]["clusterIP"] == "None"
    query = k8s(result, "kubernetes:apps/v1:Deployment", "thanos-query").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--endpoint=dnssrv+_grpc._tcp.thanos-store.observability.svc.cluster.local" in query
    # Grafana talks to Query through an ordinary ClusterIP.
    assert "clusterIP" not in k8s(result, "kubernetes:core/v1:Service", "thanos-query").inputs["spec"]


def test_thanos_compactor_scratch_is_bounded(plan, plan_with):
    def scratch(result):
        pod = k8s(result, "kubernetes:apps/v1:Deployment", "thanos-compact").inputs["spec"]["template"]["spec"]
        (data,) = [v for v in pod["volumes"] if v["name"] == "data"]
        return data, pod["containers"][0]["resources"]

    # Staging names a StorageClass: a volume of its own, sized for the worst case of Thanos'
    # compact.md (twice 14 days of one Prometheus' blocks at 30,000 samples/s x 2 bytes: 135.2 GiB).
    data, resources = scratch(plan("staging"))
    template = data["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert template["storageClassName"] == "gp3" and template["resources"]["requests"]["storage"] == "136Gi"
    assert "ephemeral-storage" not in resources["requests"]
    # Without one, an emptyDir of what fits a 20 GiB node root volume, requested from the node.
    aws = {"clusterName": "staging-eks"}
    data, resources = scratch(plan_with("staging", {"obs-storage:aws": aws}))
    assert data["emptyDir"] == {"sizeLimit": "10Gi"}
    assert resources["requests"]["ephemeral-storage"] == resources["limits"]["ephemeral-storage"] == "10Gi"


def test_thanos_compactor_disk_that_no_node_root_volume_holds_is_refused():
    import pytest

    from components.core.config import ConfigError
    from tests.test_renderers import stack_cfg

    with pytest.raises(ConfigError, match=r"^stack 'staging': obs-storage:aws\.thanosCompactDiskGi = 40 does not fit .*Fix: set aws\.thanosCompactStorageClass"):
        stack_cfg("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "thanosCompactDiskGi": 40}})
    cfg = stack_cfg("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "thanosCompactDiskGi": 40, "thanosCompactStorageClass": "gp3"}})
    assert cfg.aws.thanos_compact_gib() == 40


def test_thanos_compactor_disk_below_minimum_is_refused():
    import pytest

    from components.core.config import ConfigError
    from tests.test_renderers import stack_cfg

    with pytest.raises(ConfigError, match=r"^stack 'staging': obs-storage:aws\.thanosCompactDiskGi = 1 .*greater than or equal to 10.*Fix:"):
        stack_cfg("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "thanosCompactDiskGi": 1}})


def test_thanos_workloads_wait_for_their_account_and_role(plan, plan_with):
    for result, kind, app in ((plan("staging"), "Deployment", "thanos-store"), (plan("staging"), "Deployment", "thanos-compact"),
                              (plan_with("staging", tool_overrides("staging", thanos={"mode": "receive"})), "StatefulSet", "thanos-receive")):
        workload = k8s(result, f"kubernetes:apps/v1:{kind}", app)
        account = k8s(result, "kubernetes:core/v1:ServiceAccount", app)
        role = result.one("aws:iam/role:Role", f"{app}-role")
        assert account.urn in workload.depends_on, app
        assert role.urn in workload.depends_on, app


def test_receive_mode_compactor_deduplicates_receive_replicas(plan, plan_with):
    def compact(result):
        return k8s(result, "kubernetes:apps/v1:Deployment", "thanos-compact").inputs["spec"]["template"]["spec"]["containers"][0]["args"]

    receive = compact(plan_with("staging", tool_overrides("staging", thanos={"mode": "receive"})))
    assert {"--deduplication.replica-label=replica", "--deduplication.replica-label=receive_replica"} <= set(receive)
    assert "--deduplication.replica-label=receive_replica" not in compact(plan("staging"))


# ---------------------------------------------------------------- least privilege, buckets
def test_each_loki_component_with_bucket_access_has_its_own_role(plan):
    result = plan("staging")
    values = chart(result, "loki").inputs["values"]
    annotated = {values[c]["serviceAccount"]["name"]: values[c]["serviceAccount"]["annotations"]
                 for c in values if isinstance(values[c], dict) and "serviceAccount" in values[c] and values[c]["serviceAccount"]["annotations"]}
    loki_roles = {r.name.removesuffix("-role") for r in result.by_type("aws:iam/role:Role") if r.name.startswith("loki")}
    assert set(annotated) == loki_roles == {"loki-ingester", "loki-querier", "loki-index-gateway", "loki-compactor"}
    assert all(a == {"eks.amazonaws.com/role-arn": ROLE.format(sa)} for sa, a in annotated.items())
    deleters = {sa for sa in loki_roles
                if "s3:DeleteObject" in result.one("aws:iam/rolePolicy:RolePolicy", f"{sa}-bucket-access").inputs["policy"]}
    assert deleters == {"loki-compactor"}


def test_versioned_aws_buckets_expire_delete_markers(plan, plan_with):
    rules = plan("staging").one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "thanos-lifecycle").inputs["rules"]
    (versions_rule,) = [r for r in rules if r["id"] == "expire-noncurrent-versions"]
    assert versions_rule["expiration"] == {"expiredObjectDeleteMarker": True}
    assert versions_rule["noncurrentVersionExpiration"] == {"noncurrentDays": 7}
    unversioned = plan_with("staging", {"obs-storage:storage": {"region": "ap-northeast-2", "versioning": False}})
    rules = unversioned.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "thanos-lifecycle").inputs["rules"]
    assert not any("expiredObjectDeleteMarker" in r.get("expiration", {}) for r in rules)
