"""Self-monitoring on EKS: what kube-prometheus-stack's Prometheus scrapes, the alert rules it
evaluates, where alerts go, and the bucket-freshness probes.

- Scraping through the Prometheus operator. The Loki and tempo-distributed charts create their own
  ServiceMonitors (`monitoring.serviceMonitor`, `metaMonitoring.serviceMonitor`); kube-prometheus-stack
  selects only ServiceMonitors labelled `release: <its release>` (its values.yaml
  serviceMonitorSelectorNilUsesHelmValues, templates/prometheus/prometheus.yaml), so they carry that
  label. The Thanos sidecar through the chart's `thanosServiceMonitor`; the Thanos Deployments of
  eks_thanos.py and the probes through one `additionalServiceMonitors` entry, job = the Service's
  `app.kubernetes.io/name` label.
- Job names: Loki's chart relabels job to `<namespace>/<service>` (loki-18.11.0
  templates/monitoring/servicemonitor.yaml, jobPrefix), tempo-distributed's to
  `<namespace>/<component>` (tempo-distributed-2.26.2 templates/lib/service-monitor.tpl); the
  operator names other jobs after the Service (kps-prometheus, kps-thanos-discovery, kps-alertmanager).
- Alerts: renderers/alerts.py's groups as `additionalPrometheusRulesMap` (one PrometheusRule with
  the release's labels, templates/prometheus/additionalPrometheusRules.yaml). Alertmanager runs;
  teams route alerts by adding AlertmanagerConfig objects labelled ROUTING_LABEL (README, "Alerts
  and what to do").
- Dashboards: renderers/dashboards.py as a ConfigMap for an existing Grafana's sidecar.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.core import versions
from components.core.config import StackConfig
from components.eks.base import EksContext
from components.core.identity import ToolIdentity
from components.core.renderers import alerts, dashboards, freshness
from components.core.renderers import object_store

RELEASE = "kps"  # eks_prometheus.RELEASE (not imported: that module imports this one)
ROUTING_LABEL = "obs-storage/alert-routing"
# The alert receivers' secrets (alertReceiverSecrets): one Kubernetes Secret, one key per receiver,
# which the operator mounts at /etc/alertmanager/secrets/<name>/ (prometheus-operator
# Alertmanager spec `secrets`, through kube-prometheus-stack's alertmanagerSpec.secrets).
RECEIVER_SECRET = "obs-storage-alert-receivers"
RECEIVER_SECRETS_DIR = f"/etc/alertmanager/secrets/{RECEIVER_SECRET}"
# The service account whose role each probe uses: the tool's read-only one where it has one.
PROBE_ACCOUNTS = {"loki": "loki-querier", "tempo": "tempo", "thanos": "thanos-store"}
THANOS_APPS = ("thanos-store", "thanos-compact", "thanos-query", "thanos-query-frontend", "thanos-receive")


def scope(cfg: StackConfig) -> alerts.Scope:
    ns = cfg.aws.namespace
    enabled = cfg.tools.enabled()
    receive = cfg.tools.thanos.mode == "receive"

    def job(name: str) -> str:
        return f'namespace="{ns}", job="{name}"'

    return alerts.Scope(
        prometheus=job(f"{RELEASE}-prometheus"),
        sidecar=None if receive else job(f"{RELEASE}-thanos-discovery"),
        receive=job("thanos-receive") if receive else None,
        store=job("thanos-store"), compact=job("thanos-compact"), query=job("thanos-query"),
        loki=f'namespace="{ns}", job=~"{ns}/loki-.*", job!="{ns}/loki-canary"' if "loki" in enabled else None,
        canary=job(f"{ns}/loki-canary") if "loki" in enabled else None,
        tempo=f'namespace="{ns}", job=~"{ns}/(compactor|distributor|ingester|querier|query-frontend)"' if "tempo" in enabled else None,
        freshness=job(freshness.JOB),
        alertmanager=job(f"{RELEASE}-alertmanager"),
        sidecar_join="namespace, pod",
        freshness_windows={tool: freshness.MAX_AGE_SECONDS[tool] for tool in sorted(enabled)},
    )


def kps_values(cfg: StackConfig) -> dict[str, Any]:
    """Top-level kube-prometheus-stack values: the rules and Alertmanager."""
    return {
        "additionalPrometheusRulesMap": {"obs-storage": {"groups": alerts.groups(scope(cfg))}},
        # The same alert from the chart's default rules (prometheus group) would fire twice; the
        # Watchdog is renderers/alerts.py's, routed like on every other target.
        "defaultRules": {"disabled": {"PrometheusTSDBCompactionsFailing": True, "Watchdog": True}},
        "alertmanager": {
            "enabled": True,
            "alertmanagerSpec": {
                # Routes come from AlertmanagerConfig objects with this label, and apply to every
                # alert, not only to alerts labelled with the object's namespace (the operator's
                # default OnNamespace strategy; the data-at-risk alerts aggregate that label away).
                "alertmanagerConfigSelector": {"matchLabels": {ROUTING_LABEL: "true"}},
                "alertmanagerConfigMatcherStrategy": {"type": "None"},
                "image": {"tag": cfg.pins["alertmanager"].version},
                **({"secrets": [RECEIVER_SECRET]} if cfg.receiver_secrets() else {}),
            },
            # The receivers of `alerting`; their URLs and keys stay in RECEIVER_SECRET, read as files.
            "config": alerts.alertmanager_config(cfg.alerting, RECEIVER_SECRETS_DIR),
        },
    }


def prometheus_values(cfg: StackConfig) -> dict[str, Any]:
    """Values under kube-prometheus-stack's `prometheus` key."""
    return {
        "thanosServiceMonitor": {"enabled": cfg.tools.thanos.mode == "sidecar"},
        "additionalServiceMonitors": [{
            "name": "obs-storage",
            "selector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": [*THANOS_APPS, freshness.JOB]}]},
            "jobLabel": "app.kubernetes.io/name",
            "endpoints": [{"port": "http", "path": "/metrics"}],
        }],
    }


def chart_service_monitor(cfg: StackConfig) -> dict[str, Any]:
    """`serviceMonitor` values for the Loki and tempo-distributed charts. A ServiceMonitor needs the
    operator's CRDs: the kube-prometheus-stack release installs them with Thanos (which the charts
    then wait for, platform.py), or the cluster has them already (aws.prometheusCrds: existing).
    Without either, the object could never be created and the whole release would fail."""
    operator = "thanos" in cfg.tools.enabled() or cfg.aws.prometheus_crds == "existing"
    return {"enabled": operator, "labels": {"release": RELEASE}}


def _probe(ctx: EksContext, tool: str, identity: ToolIdentity, bucket) -> None:
    cfg = ctx.cfg
    # The probe finds IRSA's or Pod Identity's credentials from its environment itself
    # (probes/bucket_freshness.py), so its config has no auth setting (renderers/freshness.py).
    store = object_store(cfg, tool)
    name = f"{freshness.JOB}-{tool}"
    labels = {"app.kubernetes.io/name": freshness.JOB, "app.kubernetes.io/instance": name}
    files = k8s.core.v1.ConfigMap(
        f"{ctx.name}-{name}",
        metadata={"name": name, "namespace": ctx.ns},
        data={"bucket_freshness.py": freshness.script(), "bucket-freshness.json": json.dumps(freshness.config(cfg, tool, store), indent=2)},
        opts=ctx.opts(),
    )
    container = {
        "name": "probe",
        "image": versions.image(cfg.pins, "python"),
        "command": freshness.command(),
        "ports": [{"name": "http", "containerPort": freshness.PORT}],
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": freshness.PORT}, "periodSeconds": 30},
        "volumeMounts": [{"name": "probe", "mountPath": freshness.SCRIPT_PATH.rsplit("/", 1)[0], "readOnly": True}],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
    }
    k8s.apps.v1.Deployment(
        f"{ctx.name}-{name}",
        metadata={"name": name, "namespace": ctx.ns, "labels": labels},
        spec={
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                # The tool's own read access: the probe sees what the tool's readers see.
                "serviceAccountName": PROBE_ACCOUNTS[tool],
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534},
                "containers": [container],
                "volumes": [{"name": "probe", "configMap": {"name": name}}],
            }},
        },
        # The account is the tool's own, made by its chart release (or by thanos.py): without it
        # the ReplicaSet cannot create the pod and only retries until the chart has run.
        opts=ctx.opts([identity, bucket, files, ctx.accounts[PROBE_ACCOUNTS[tool]]]),
    )
    k8s.core.v1.Service(
        f"{ctx.name}-{name}-svc",
        metadata={"name": name, "namespace": ctx.ns, "labels": labels},
        spec={"selector": labels, "ports": [{"name": "http", "port": freshness.PORT}]},
        opts=ctx.opts(),
    )


def deploy(ctx: EksContext, identities: dict[str, ToolIdentity], buckets: dict) -> None:
    """The storage-path dashboards, and one bucket-freshness probe per enabled tool (only with
    Thanos: its Prometheus scrapes them, and its Query is the dashboards' datasource)."""
    enabled = ctx.cfg.tools.enabled()
    if "thanos" not in enabled:
        return
    secrets = ctx.cfg.receiver_secrets()
    if secrets:
        k8s.core.v1.Secret(
            f"{ctx.name}-alert-receivers",
            metadata={"name": RECEIVER_SECRET, "namespace": ctx.ns},
            string_data={name: pulumi.Output.secret(value) for name, value in sorted(secrets.items())},
            opts=ctx.opts(),
        )
    k8s.core.v1.ConfigMap(
        f"{ctx.name}-grafana-dashboards",
        # An existing Grafana's sidecar loads ConfigMaps with this label (as the datasources).
        metadata={"name": "obs-storage-dashboards", "namespace": ctx.ns, "labels": {"grafana_dashboard": "1"}},
        data={name: json.dumps(board) for name, board in dashboards.dashboards().items()},
        opts=ctx.opts(),
    )
    for tool in sorted(enabled):
        # Only buckets this stack declares (a Thanos spoke writes to its hub's, probed there).
        if buckets.get(tool) is not None and identities.get(tool) is not None:
            _probe(ctx, tool, identities[tool], buckets[tool])

