"""What the program relies on in each pinned chart (versions.ChartFacts, read at the chart's tag)
holds for every set of values it builds: nothing it needs exists only as a Helm hook (Pulumi's
helm.v4.Chart never runs hooks), no pod mounts what only a hook makes, no ClusterRole reads every
Secret without a reason, and the facts were read for the version that is pinned."""

from __future__ import annotations

from typing import Any

import pytest

from components.core import versions
from components.eks import loki as eks_loki, prometheus as eks_prometheus, tempo as eks_tempo
from tests.conftest import tool_overrides
from tests.test_charts import ANNOTATIONS, LOKI_ANNOTATIONS, VARIANTS
from tests.test_renderers import stack_cfg

CHART_PINS = sorted(key for key, pin in versions.DEFAULT_PINS.items() if pin.kind == "chart")


def chart_values(pin_key: str, overrides: dict | None, mode: str = "sidecar") -> dict[str, Any]:
    """The values the program gives the chart of `pin_key` for the staging stack with `overrides`."""
    cfg = stack_cfg("staging", {**(overrides or {}), **tool_overrides("staging", thanos={"mode": mode})})
    if pin_key == "loki-chart":
        return eks_loki.values(cfg, LOKI_ANNOTATIONS)
    if pin_key == "tempo-chart":
        return eks_tempo.values(cfg, ANNOTATIONS)
    receive_url = "http://thanos-receive:19291/api/v1/receive" if mode == "receive" else None
    return eks_prometheus.values(cfg, ANNOTATIONS, receive_url)


def lookup(values: dict, path: str, default: Any) -> Any:
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def holds(values: dict, conditions: tuple[versions.Condition, ...]) -> bool:
    """Whether the chart renders what `conditions` guard, with these values over its defaults."""
    for path, default in conditions:
        negated = path.startswith("!")
        path = path.removeprefix("!")
        if path.startswith("*."):
            # Any component: the ones the program configures, and every other at the default.
            found = [lookup(v, path[2:], default) for v in values.values() if isinstance(v, dict)]
            value = any(found) or bool(default)
        else:
            value = bool(lookup(values, path, default))
        if value == negated:
            return False
    return True


CASES = [(pin, overrides, mode) for pin in CHART_PINS for overrides in VARIANTS for mode in ("sidecar", "receive")]


def case_id(case) -> str:
    pin, overrides, mode = case
    return f"{pin}-{VARIANTS.index(overrides)}-{mode}"


@pytest.mark.parametrize("key", CHART_PINS)
def test_chart_facts_were_read_for_the_pinned_version(key):
    pin = versions.DEFAULT_PINS[key]
    assert pin.chart_facts is not None, f"{key}: record what the program relies on in the chart (versions.ChartFacts)"
    assert pin.chart_facts.checked == pin.version, f"{key}: {pin.version} pinned, chart facts read for {pin.chart_facts.checked}: read them again"
    assert f"{pin.name}-{pin.version}" in pin.chart_facts.source, f"{key}: name the tag the facts were read at"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_no_object_the_program_applies_exists_only_as_a_hook(case):
    values = chart_values(*case)
    for hook in versions.DEFAULT_PINS[case[0]].chart_facts.hooks:
        assert not holds(values, hook.when), f"{case[0]}: these values render {hook.what} as Helm hooks, which helm.v4.Chart never runs"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_no_pod_mounts_what_only_a_hook_makes(case):
    values = chart_values(*case)
    for hook in versions.DEFAULT_PINS[case[0]].chart_facts.hooks:
        for workload, conditions in hook.mounted_by:
            assert not holds(values, conditions), (
                f"{case[0]}: {workload} mounts {', '.join(hook.made)}, which only {hook.what} make: it would never start")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_no_cluster_role_reads_every_secret_without_a_reason(case):
    values = chart_values(*case)
    for role in versions.DEFAULT_PINS[case[0]].chart_facts.cluster_rbac:
        if role.secrets and holds(values, role.when):
            assert role.accepted, f"{case[0]}: {role.what}"


def test_the_checks_refuse_what_the_chart_defaults_do():
    """With the chart's own defaults (no values), kube-prometheus-stack mounts its hook-made
    certificate and Loki grants its shared account every Secret: both checks must catch that."""
    kps = versions.DEFAULT_PINS["kube-prometheus-stack-chart"].chart_facts
    (webhook,) = [h for h in kps.hooks if h.made]
    assert holds({}, webhook.when) and holds({}, webhook.mounted_by[0][1])
    values = chart_values("kube-prometheus-stack-chart", None)
    assert not holds(values, webhook.mounted_by[0][1])
    values["prometheusOperator"].pop("tls")
    assert holds(values, webhook.mounted_by[0][1])
    loki = versions.DEFAULT_PINS["loki-chart"].chart_facts
    (secrets,) = [r for r in loki.cluster_rbac if r.secrets]
    assert holds({}, secrets.when) and not secrets.accepted
    assert holds({"rbac": {"namespaced": True}, "sidecar": {"rules": {"enabled": True}}}, secrets.when) is False
    assert holds({"ingester": {"statefulSetRecreateJob": {"enabled": True}}}, (("*.statefulSetRecreateJob.enabled", False),))


# The chart's own default of every value a recorded condition names, read in values.yaml at the
# pinned tag: grafana-community/helm-charts loki-18.11.0 charts/loki/values.yaml (every component's
# statefulSetRecreateJob.enabled is false) and tempo-distributed-2.26.2
# charts/tempo-distributed/values.yaml; prometheus-community/helm-charts kube-prometheus-stack-88.5.3
# (commit ea930ba) charts/kube-prometheus-stack/values.yaml.
VALUES_YAML_DEFAULTS = {
    "loki-chart": {
        "*.statefulSetRecreateJob.enabled": False, "test.enabled": True, "lokiCanary.enabled": True, "rbac.namespaced": False,
        "sidecar.rules.enabled": True, "rollout_operator.enabled": False,
    },
    "tempo-chart": {
        "ingester.persistence.enabled": False, "ingester.persistence.enableStatefulSetRecreationForSizeChange": False,
        "metricsGenerator.persistence.enabled": False, "metricsGenerator.persistence.enableStatefulSetRecreationForSizeChange": False,
        "enterprise.enabled": False, "tokengenJob.enable": True, "provisioner.enabled": False, "tests.integration.enabled": False,
        "rollout_operator.enabled": False,
    },
    "kube-prometheus-stack-chart": {
        "prometheusOperator.enabled": True, "prometheusOperator.admissionWebhooks.enabled": True,
        "prometheusOperator.admissionWebhooks.patch.enabled": True, "prometheusOperator.admissionWebhooks.certManager.enabled": False,
        "prometheusOperator.tls.enabled": True, "crds.enabled": True, "crds.upgradeJob.enabled": False, "grafana.enabled": True,
        "kubeStateMetrics.enabled": True, "prometheus.enabled": True,
    },
}


@pytest.mark.parametrize("key", CHART_PINS)
def test_every_condition_starts_from_the_charts_own_default(key):
    # A wrong default here decides whether a hook or a role is thought rendered whenever the
    # program's values leave that key alone.
    facts = versions.DEFAULT_PINS[key].chart_facts
    conditions = [c for h in facts.hooks for c in h.when] + [c for h in facts.hooks for _, cs in h.mounted_by for c in cs]
    conditions += [c for r in facts.cluster_rbac for c in r.when]
    # As pairs: a value named by two conditions must have the same default in both.
    assert {(path.removeprefix("!"), default) for path, default in conditions} == set(VALUES_YAML_DEFAULTS[key].items())


@pytest.mark.parametrize("key", CHART_PINS)
def test_a_reason_is_recorded_only_for_a_role_that_reads_secrets(key):
    # `accepted` says why a role reading every Secret may stay; on a role marked as reading none it
    # means the mark is wrong, and the check above would let that role through unexamined.
    for role in versions.DEFAULT_PINS[key].chart_facts.cluster_rbac:
        assert role.secrets or not role.accepted, f"{key}: {role.what}"


def test_defaults_the_program_relies_on_are_the_recorded_ones():
    """The charts' defaults the program keeps (it states them in comments and docs), each
    compared with what the program's values end up as."""
    loki = versions.DEFAULT_PINS["loki-chart"].chart_facts.defaults
    tempo = versions.DEFAULT_PINS["tempo-chart"].chart_facts.defaults
    assert loki["loki.ingester.wal.flush_on_shutdown"] is True
    assert tempo["ingester.config.flush_all_on_shutdown"] is False and tempo["reportingEnabled"] is True
    kps = versions.DEFAULT_PINS["kube-prometheus-stack-chart"].chart_facts.defaults
    assert kps["prometheus.prometheusSpec.scrapeInterval"] == "30s"
    # The rest as each chart's values.yaml has them at the pinned tag: grafana-community/helm-charts
    # loki-18.11.0 charts/loki/values.yaml (ingester.terminationGracePeriodSeconds 300 at line
    # 3106, rbac.namespaced false at 1139, sidecar.rules.enabled true at 7001) and
    # tempo-distributed-2.26.2 (ingester.terminationGracePeriodSeconds 300 at line 255);
    # prometheus-community/helm-charts kube-prometheus-stack-88.5.3 (commit ea930ba) values.yaml
    # (crds.upgradeJob.enabled false at line 40, prometheusOperator.tls.enabled true at 2842,
    # prometheusOperator.admissionWebhooks.enabled true at 2875). tests/test_eks_rollout.py holds
    # the ingesters to at least the 300 s grace.
    assert (loki["ingester.terminationGracePeriodSeconds"], loki["rbac.namespaced"], loki["sidecar.rules.enabled"]) == (300, False, True)
    assert tempo["ingester.terminationGracePeriodSeconds"] == 300
    assert (kps["crds.upgradeJob.enabled"], kps["prometheusOperator.tls.enabled"], kps["prometheusOperator.admissionWebhooks.enabled"]) == (False, True, True)
