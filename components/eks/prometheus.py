"""Prometheus on EKS: the prometheus-community `kube-prometheus-stack` chart, with the Thanos
sidecar (mode sidecar) or remote-write to Thanos Receive (mode receive).

Chart facts below were read in prometheus-community/helm-charts at tag
kube-prometheus-stack-88.5.3 (the pinned version, components/core/versions.py
"kube-prometheus-stack-chart"); key names are checked against
tests/upstream/chart-kube-prometheus-stack.keys, generated from that tag.

Spot: Prometheus keeps its TSDB on emptyDir, never on an EBS volume, so a replica whose node is
reclaimed starts again at once in whatever zone has room. What it had not uploaded yet is lost
with the node (up to 3 hours: Prometheus cuts the 2-hour block only once its head spans 1.5 block
ranges, prometheus/prometheus tag v3.14.0 tsdb/head.go `compactable`); the other replica, kept in
another zone, still has those hours and Thanos Query deduplicates the two.
"""

from __future__ import annotations

from typing import Any, Optional

from components.eks import monitoring as eks_monitoring
from components.core import sizing, versions
from components.core.config import StackConfig
from components.eks.base import spread
from components.core.renderers import thanos
from components.core.renderers import object_store

RELEASE = "kps"  # fullnameOverride keeps service names short (kps-thanos-discovery, ...)
SERVICE_ACCOUNT = "prometheus"
RETENTION = f"{sizing.PROMETHEUS_RETENTION_HOURS}h"
# Prometheus prunes at retentionSize (it counts blocks, WAL and head chunks; units base 2), a fifth
# below the emptyDir's limit, so the kubelet never evicts it for the size limit.
RETENTION_SHARE = 0.8
# Small fixed parts of the release (not driven by ingest): the operator, the config reloader next
# to each Prometheus and Alertmanager, and Alertmanager itself.
OPERATOR = sizing.Size(1, 100, 128)
CONFIG_RELOADER = sizing.Size(1, 10, 32)
ALERTMANAGER = sizing.Size(1, 50, 128)
# A restarted replica comes back without its head (emptyDir): up to 3 hours not yet in an uploaded
# block (sizing.HEAD_HOURS). If the operator's StatefulSet restarted the other replica minutes later,
# both would lack those hours. Counting a new pod available only after 3 h 30 min makes the rolling
# update wait until the restarted replica has cut and its sidecar uploaded a block covering its
# restart, and the other replica's head holds nothing the first lacks. The operator's StatefulSet is
# RollingUpdate with the Prometheus resource's minReadySeconds (prometheus-operator v0.93.0
# pkg/prometheus/server/statefulset.go, pkg/operator/statefulset.go; the chart's operator is
# v0.93.1), and a rolling update waits that long before the next pod. Meanwhile
# kube-prometheus-stack's KubeStatefulSetUpdateNotRolledOut warning fires for it (docs/aws-eks.md).
# Drains do not wait for it (a PodDisruptionBudget counts Ready pods).
MIN_READY_SECONDS = (sizing.HEAD_HOURS * 60 + 30) * 60


def object_store_for_thanos(cfg: StackConfig):
    return object_store(cfg, "thanos", aws_sdk_auth=cfg.aws.identity == "pod-identity")


def values(cfg: StackConfig, annotations: dict, receive_url: Optional[str]) -> dict[str, Any]:
    pin = cfg.pins["prometheus"]
    registry, repository = pin.name.split("/", 1)
    size = sizing.prometheus(cfg.aws.sizing.metrics_samples_per_second, sizing.PROMETHEUS_RETENTION_HOURS)
    spec: dict[str, Any] = {
        "image": {"registry": registry, "repository": repository, "tag": pin.version},
        "replicas": size.replicas,
        "minReadySeconds": MIN_READY_SECONDS,
        "replicaExternalLabelName": thanos.REPLICA_LABEL,
        # Unique per cluster (tools.thanos.clusterLabel): blocks of two clusters with one label overlap.
        "externalLabels": {"cluster": cfg.tools.thanos.cluster_label},
        "retention": RETENTION,
        "retentionSize": f"{int(size.ephemeral_gib * 1024 * RETENTION_SHARE)}MB",
        # CPU, memory and the TSDB's share of the node's disk from aws.sizing (core/sizing.py):
        # the ephemeral-storage request makes the scheduler pick a node with that much free disk.
        "resources": size.resources(),
        # DoNotSchedule: both replicas in one zone would lose the same hours in one zone outage.
        "topologySpreadConstraints": spread({"app.kubernetes.io/name": "prometheus"}, when="DoNotSchedule"),
        # prometheusSpec.storageSpec becomes the Prometheus resource's `storage` as is
        # (templates/prometheus/prometheus.yaml); emptyDir is one of its forms.
        "storageSpec": {"emptyDir": {"sizeLimit": f"{size.ephemeral_gib}Gi"}},
    }
    if receive_url:
        spec["remoteWrite"] = [{"url": receive_url}]
    else:
        spec["thanos"] = {"image": versions.image(cfg.pins, "thanos"), "objectStorageConfig": {"secret": thanos.objstore(object_store_for_thanos(cfg))},
                          "resources": sizing.thanos(0, 0)["thanos-sidecar"].resources()}
    out = {
        "fullnameOverride": RELEASE,
        # The Prometheus operator's CRDs are cluster-wide: a cluster that already has them (another
        # kube-prometheus-stack or operator install) sets aws.prometheusCrds: existing.
        "crds": {"enabled": cfg.aws.prometheus_crds == "install"},
        # The chart makes the admission webhooks' certificate Secret (<fullname>-admission) only with
        # Helm hook Jobs, which helm.v4.Chart never runs, and the operator mounts that Secret whenever
        # it serves TLS: it would never start (versions.ChartFacts, tests/test_chart_facts.py). Without
        # the webhooks nothing needs the certificate. What they would check, PrometheusRule syntax,
        # the project's own rules pass `promtool check rules` in tests/test_alerts.py; the operator still reports rules it
        # cannot load (kube-prometheus-stack's PrometheusOperatorRejectedResources alert).
        "prometheusOperator": {"admissionWebhooks": {"enabled": False}, "tls": {"enabled": False}, "resources": OPERATOR.resources(),
                               "prometheusConfigReloader": {"resources": CONFIG_RELOADER.resources()}},
        "prometheus": {
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT, "annotations": annotations},
            "thanosService": {"enabled": receive_url is None},
            # With two replicas, one may be evicted at a time (the chart's minAvailable form).
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "prometheusSpec": spec,
            # Scrape the Thanos sidecar, the Thanos Deployments and the bucket-freshness probes.
            **eks_monitoring.prometheus_values(cfg),
        },
        # EKS runs etcd, the controller manager and the scheduler in its managed control plane:
        # the chart would create Services in kube-system selecting pods (component:
        # kube-controller-manager, ...) that do not exist there
        # (templates/exporters/kube-*/service.yaml), and their targets would be down for good.
        # kube-proxy is an EKS add-on whose metrics address is the add-on's configuration, not
        # this project's: its scraping is left to the cluster's own monitoring.
        "kubeEtcd": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeProxy": {"enabled": False},
        # The node-exporter subchart (prometheus-node-exporter 4.56.1) runs with hostNetwork on
        # port 9100 (its values.yaml hostNetwork: true, service.port: 9100): a cluster that already
        # runs one would get a crash-looping second DaemonSet. Opt in with aws.nodeExporter.
        "nodeExporter": {"enabled": cfg.aws.node_exporter},
        "grafana": {"enabled": False},
        # The storage-path alert rules, and the Alertmanager that routes them.
        **eks_monitoring.kps_values(cfg),
    }
    # alertmanagerSpec.replicas (values.yaml default 1 at kube-prometheus-stack-88.5.3) is set from
    # ALERTMANAGER like its resources; the operator's Deployment has no such value (its template,
    # templates/prometheus-operator/deployment.yaml, fixes `replicas: 1`).
    out["alertmanager"]["alertmanagerSpec"].update({"replicas": ALERTMANAGER.replicas, "resources": ALERTMANAGER.resources()})
    return out
