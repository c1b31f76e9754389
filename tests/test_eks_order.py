"""Order across releases on EKS is declared, not left to retries: Loki's and Tempo's ServiceMonitors
after the CRDs kube-prometheus-stack installs, and each bucket-freshness probe after the service
account it runs as."""

from __future__ import annotations

from tests.conftest import tool_overrides
from tests.test_eks import chart, k8s


def test_loki_and_tempo_releases_wait_for_the_operator_release(plan):
    result = plan("staging")
    kps = chart(result, "kps").urn
    for release in ("loki", "tempo"):
        c = chart(result, release)
        assert kps in c.depends_on, c.urn
    # ... for the ServiceMonitors they render.
    assert chart(result, "loki").inputs["values"]["monitoring"]["serviceMonitor"]["enabled"] is True
    assert chart(result, "tempo").inputs["values"]["metaMonitoring"]["serviceMonitor"]["enabled"] is True


def test_probes_wait_for_the_account_they_run_as(plan):
    result = plan("staging")
    made_by = {
        "loki": chart(result, "loki").urn,  # loki-querier, made by the Loki chart
        "tempo": chart(result, "tempo").urn,  # tempo, made by the tempo-distributed chart
        "thanos": k8s(result, "kubernetes:core/v1:ServiceAccount", "thanos-store").urn,
    }
    for tool, urn in made_by.items():
        probe = k8s(result, "kubernetes:apps/v1:Deployment", f"bucket-freshness-{tool}")
        assert urn in probe.depends_on, probe.urn


def test_no_service_monitor_without_the_operator_crds(plan_with):
    # Without Thanos there is no kube-prometheus-stack here: a ServiceMonitor could never be created.
    alone = plan_with("staging", tool_overrides("staging", thanos={"enabled": False}))
    assert [c for c in alone.by_type("kubernetes:helm.sh/v4:Chart") if c.inputs["name"] == "kps"] == []
    assert chart(alone, "loki").inputs["values"]["monitoring"]["serviceMonitor"]["enabled"] is False
    assert chart(alone, "tempo").inputs["values"]["metaMonitoring"]["serviceMonitor"]["enabled"] is False
    assert all("kps" not in urn for urn in chart(alone, "loki").depends_on)
    # The cluster has the CRDs already: the ServiceMonitors are created, with nothing to wait for.
    existing = plan_with("staging", {**tool_overrides("staging", thanos={"enabled": False}),
                                     "obs-storage:aws": {"clusterName": "staging-eks", "prometheusCrds": "existing"}})
    assert chart(existing, "loki").inputs["values"]["monitoring"]["serviceMonitor"]["enabled"] is True
