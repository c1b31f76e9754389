"""components/eks/monitoring.py: what kube-prometheus-stack's Prometheus selects and alerts on, per
Thanos mode and enabled tools, and the bucket-freshness probes' pods."""

from __future__ import annotations

import json

import pytest

from components.core import versions
from components.core.renderers import alerts, freshness
from components.eks import monitoring
from tests.conftest import aws_config, aws_stack_config

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def _with_aws(**aws: str):
    from components.core import loading

    raw = aws_config()
    raw["obs-storage:aws"] = json.dumps({"clusterName": "stg", **aws})
    return raw, loading


def _in_namespace(namespace: str, mode: str):
    raw, loading = _with_aws(namespace=namespace)
    tools = json.loads(raw["obs-storage:tools"])
    tools["thanos"]["mode"] = mode
    raw["obs-storage:tools"] = json.dumps(tools)
    return loading.load("staging", raw, set())


def test_the_alert_scope_follows_the_thanos_mode():
    # The operator names a job after its Service: the sidecar's is the chart's thanos-discovery
    # Service; Receive's is eks/thanos.py's thanos-receive. The mode that is off has no selector,
    # or its alerts would fire on a job that never exists (absent() rules) or never fire.
    # A namespace other than the default one: every selector names it.
    sidecar = monitoring.scope(_in_namespace("telemetry", "sidecar"))
    assert (sidecar.sidecar, sidecar.receive) == ('namespace="telemetry", job="kps-thanos-discovery"', None)
    receive = monitoring.scope(_in_namespace("telemetry", "receive"))
    assert (receive.sidecar, receive.receive) == (None, 'namespace="telemetry", job="thanos-receive"')
    assert receive.loki == 'namespace="telemetry", job=~"telemetry/loki-.*", job!="telemetry/loki-canary"'
    assert receive.canary == 'namespace="telemetry", job="telemetry/loki-canary"'


@pytest.mark.parametrize("off", ["loki", "tempo"])
def test_the_alert_scope_has_no_selector_for_a_disabled_tool(off):
    on = monitoring.scope(aws_stack_config())
    assert on.loki and on.canary and on.tempo
    scope = monitoring.scope(aws_stack_config(**{off: {"enabled": False}}))
    selectors = {"loki": (scope.loki, scope.canary), "tempo": (scope.tempo,)}
    assert selectors[off] == (None,) * len(selectors[off])
    other = "tempo" if off == "loki" else "loki"
    assert all(selectors[other])
    assert sorted(scope.freshness_windows) == sorted({"loki", "tempo", "thanos"} - {off})


def test_the_chart_rules_disabled_are_the_ones_obs_storage_defines_itself():
    values = monitoring.kps_values(aws_stack_config())
    disabled = values["defaultRules"]["disabled"]
    # Disabled means True (kube-prometheus-stack values.yaml defaultRules.disabled: {<rule>: true}).
    assert disabled and all(v is True for v in disabled.values())
    ours = {r["alert"] for g in values["additionalPrometheusRulesMap"]["obs-storage"]["groups"] for r in g["rules"] if "alert" in r}
    # Each one is replaced by a rule of the same name in renderers/alerts.py, so nothing is lost
    # and nothing fires twice.
    assert set(disabled) <= ours and alerts.WATCHDOG in disabled


def test_the_sidecar_service_monitor_exists_in_sidecar_mode_only():
    assert monitoring.prometheus_values(aws_stack_config(mode="sidecar"))["thanosServiceMonitor"] == {"enabled": True}
    assert monitoring.prometheus_values(aws_stack_config(mode="receive"))["thanosServiceMonitor"] == {"enabled": False}


@pytest.mark.parametrize("thanos, crds, expected", [(True, "install", True), (True, "existing", True), (False, "install", False), (False, "existing", True)])
def test_the_charts_service_monitors_only_where_the_operators_crds_exist(thanos, crds, expected):
    # Installed by the kube-prometheus-stack release (only with Thanos), or already in the cluster.
    raw, loading = _with_aws(prometheusCrds=crds)
    if not thanos:
        tools = json.loads(raw["obs-storage:tools"])
        tools["thanos"] = {"enabled": False}
        raw["obs-storage:tools"] = json.dumps(tools)
    cfg = loading.load("staging", raw, set())
    assert monitoring.chart_service_monitor(cfg) == {"enabled": expected, "labels": {"release": "kps"}}


def test_each_probe_pod_runs_unprivileged_with_its_files_where_its_command_reads_them(plan):
    result = plan("staging")
    deployments = {d.inputs["metadata"]["name"]: d.inputs for d in result.by_type(DEPLOYMENT) if d.inputs["metadata"]["name"].startswith("bucket-freshness-")}
    maps = {m.inputs["metadata"]["name"]: m.inputs for m in result.by_type(CONFIG_MAP)}
    assert sorted(deployments) == ["bucket-freshness-loki", "bucket-freshness-tempo", "bucket-freshness-thanos"]
    for name, deployment in deployments.items():
        # One probe per bucket: a second would export every series twice.
        assert deployment["spec"]["replicas"] == 1, name
        pod = deployment["spec"]["template"]["spec"]
        # The image's "nobody" (versions.py python facts: debian:trixie-slim, user nobody 65534);
        # the Pod Security Standard "restricted" asks runAsNonRoot and no privilege escalation.
        assert "nobody 65534" in versions.DEFAULT_PINS["python"].facts.source
        assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534}, name
        (container,) = pod["containers"]
        assert container["securityContext"] == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}, name
        # Every file of its ConfigMap lands where the command reads it, read-only.
        (mount,) = container["volumeMounts"]
        (volume,) = pod["volumes"]
        assert mount["name"] == volume["name"] and mount["readOnly"] is True, name
        files = {f"{mount['mountPath']}/{key}" for key in maps[volume["configMap"]["name"]]["data"]}
        assert files == {freshness.SCRIPT_PATH, freshness.CONFIG_PATH}, name
        assert freshness.SCRIPT_PATH in container["command"] and freshness.CONFIG_PATH in container["command"], name


def test_a_thanos_spoke_on_eks_probes_no_bucket_it_does_not_own(plan):
    # staging-us: a Thanos spoke (Loki and Tempo off) writing to its hub's bucket, which the hub's
    # own probe watches. It has an identity for Thanos but declares no bucket.
    result = plan("staging-us")
    names = [d.inputs["metadata"]["name"] for d in result.by_type(DEPLOYMENT)]
    assert not [n for n in names if n.startswith("bucket-freshness-")], names
    # The neighbour: its monitoring is deployed (the dashboards), only the probe is left out.
    assert "obs-storage-dashboards" in [m.inputs["metadata"]["name"] for m in result.by_type(CONFIG_MAP)]
