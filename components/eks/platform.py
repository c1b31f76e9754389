"""Loki, Tempo, Prometheus and Thanos on the existing EKS cluster (target aws): the seam.

One module per tool: eks_loki (loki chart), eks_tempo (tempo-distributed chart), eks_prometheus
(kube-prometheus-stack values) and eks_thanos (Thanos manifests + the kube-prometheus-stack
release); eks_base holds what they share. Charts render inside the Kubernetes provider
(helm.v4.Chart): no local helm binary. Grafana: datasource ConfigMaps for an existing Grafana's
sidecar (label grafana_datasource=1).

Built for Spot nodes across availability zones, the incident this project exists for. No pod
is bound to a single-AZ volume unless `aws.walVolume` asks for EBS:
- Loki and Tempo ingesters: WAL on emptyDir, one StatefulSet per zone, replication factor 3, so
  a reclaimed node (or a lost zone) loses no acknowledged write. Both groups are OnDelete and
  restarted one zone at a time by one rollout-operator.
- Prometheus: TSDB on emptyDir, two replicas in different zones, 2-hour blocks uploaded by the
  Thanos sidecar; a reclaim loses that replica's last hours only, which the other replica has.
- Thanos: stateless apart from scratch space; the compactor's is size-limited.
"""

from __future__ import annotations

import json
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.eks import loki as eks_loki, monitoring as eks_monitoring, tempo as eks_tempo, thanos as eks_thanos
from components.core.config import StackConfig
from components.eks.base import EksContext
from components.core.identity import ToolIdentity
from components.core.renderers import dump, grafana
from components.core.storage import ToolBucket


def kubeconfig(cluster: pulumi.Output, region: str) -> pulumi.Output[str]:
    """A kubeconfig for the cluster that fetches short-lived tokens with `aws eks get-token`."""

    def build(args: list) -> str:
        name, endpoint, ca = args
        return json.dumps({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [{"name": name, "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "aws",
                "args": ["eks", "get-token", "--cluster-name", name, "--region", region],
            }}}],
        })

    ca = cluster.certificate_authorities.apply(lambda cas: cas[0].data)
    return pulumi.Output.all(cluster.name, cluster.endpoint, ca).apply(build)


class EksTools(pulumi.ComponentResource):
    """The namespace, each enabled tool (one module per tool), and Grafana datasources.
    Outputs: `urls` (in-cluster service URLs)."""

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        provider: k8s.Provider,
        buckets: dict[str, ToolBucket],
        identities: dict[str, ToolIdentity],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("obs:eks:EksTools", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": cfg.aws.namespace}, opts=pulumi.ResourceOptions(parent=self, provider=provider)
        )
        ctx = EksContext(name, cfg, provider, self, namespace)
        enabled = cfg.tools.enabled()
        self.urls: dict[str, str] = {}
        # Thanos first: its kube-prometheus-stack release installs the CRDs of Loki's and Tempo's
        # ServiceMonitors, and their releases wait for it (base.operator_release).
        for tool, module in (("thanos", eks_thanos), ("loki", eks_loki), ("tempo", eks_tempo)):
            if tool in enabled:
                # A Thanos spoke has no bucket (its hub's) and, remote-writing, no identity.
                self.urls.update(module.deploy(ctx, identities.get(tool), buckets.get(tool)))
        # Bucket-freshness probes (scraped by the Prometheus of eks_prometheus.py) and dashboards.
        eks_monitoring.deploy(ctx, identities, buckets)
        # Grafana reads through the query frontend's cache when there is one.
        thanos_url = self.urls.get("thanosQueryFrontend") or self.urls.get("thanosQuery", "")
        urls = {"thanos": thanos_url, "loki": self.urls.get("loki", ""), "tempo": self.urls.get("tempo", "")}
        datasources = grafana.render(cfg, urls)
        # A Thanos spoke alone has nothing to show: the hub's Grafana shows its data.
        if datasources["datasources"]:
            k8s.core.v1.ConfigMap(
                f"{name}-grafana-datasources",
                # An existing Grafana's sidecar loads ConfigMaps with this label.
                metadata={"name": "obs-storage-datasources", "namespace": ctx.ns, "labels": {"grafana_datasource": "1"}},
                data={"obs-storage.yaml": dump(datasources)},
                opts=ctx.opts(),
            )
        self.register_outputs({"urls": self.urls})


class EksPlatform:
    """Workload platform of target aws: the tools on the existing EKS cluster."""

    def __init__(self, provider: k8s.Provider):
        self.provider = provider

    def deploy(self, cfg, buckets: dict[str, ToolBucket], identities: dict[str, ToolIdentity]) -> dict:
        tools = EksTools("tools", cfg, self.provider, buckets, identities)
        return {"urls": tools.urls}

