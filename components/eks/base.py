"""What every tool's EKS deployment shares: the namespace, the provider, pinned charts, zone spread
and the IRSA annotation. Pure helpers plus one small context object; no tool logic here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.core.config import StackConfig
from components.core.identity import ToolIdentity

ZONE_KEY = "topology.kubernetes.io/zone"
# How long a stopping Loki or Tempo ingester may take: leave the ring, then upload what it holds
# only in memory and in its WAL (an emptyDir, gone with the pod). That is Tempo's head block, cut at
# 500 MiB or 30 min anyway (grafana/tempo v2.10.8 modules/ingester/config.go), and Loki's open chunk
# of each stream (cut at about 1.5 MB compressed, pkg/ingester -ingester.chunk-target-size): the
# rest was flushed as it filled. Both charts default to 300 s too (versions.ChartFacts); it is set
# here, not inherited, so that a chart bump cannot shorten it. A Spot reclaim gives 2 minutes,
# whatever is set here: the other two zones' replicas still hold the data then.
INGESTER_STOP_GRACE_SECONDS = 300


def spread(labels: dict[str, str], when: Literal["ScheduleAnyway", "DoNotSchedule"] = "ScheduleAnyway") -> list[dict[str, Any]]:
    """Zone spread. ScheduleAnyway for stateless replicas: a zone outage must not leave them Pending.
    DoNotSchedule where two replicas in one zone would defeat the point of having two."""
    return [{"maxSkew": 1, "topologyKey": ZONE_KEY, "whenUnsatisfiable": when, "labelSelector": {"matchLabels": labels}}]


def chart_pods(release: str, component: str) -> dict[str, str]:
    # Both Grafana charts label components alike; the instance label keeps Loki's and Tempo's apart.
    return {"app.kubernetes.io/instance": release, "app.kubernetes.io/component": component}


def irsa_annotations(identity: ToolIdentity, service_account: str) -> dict[str, pulumi.Output[str]]:
    """IRSA binds a service account to its role by annotation; Pod Identity needs none."""
    if identity.kind != "irsa":
        return {}
    return {"eks.amazonaws.com/role-arn": identity.credentials.role_arns[service_account]}


@dataclass
class EksContext:
    """Where the tools go: one namespace on one cluster, through one provider."""

    name: str  # Pulumi name prefix
    cfg: StackConfig
    provider: k8s.Provider
    parent: pulumi.Resource
    namespace: k8s.core.v1.Namespace
    # What the deployment has declared so far, for the objects of other releases that need it:
    # chart releases by release name, and the resource that creates each service account.
    releases: dict[str, pulumi.Resource] = field(default_factory=dict)
    accounts: dict[str, pulumi.Resource] = field(default_factory=dict)

    @property
    def ns(self) -> str:
        return self.cfg.aws.namespace

    @property
    def svc(self) -> str:
        return f"{self.ns}.svc.cluster.local"

    def opts(self, depends: Optional[list] = None) -> pulumi.ResourceOptions:
        # Everything in the namespace waits for it; workloads also wait for the bucket, role and
        # service account they use from their first second.
        return pulumi.ResourceOptions(parent=self.parent, provider=self.provider, depends_on=[self.namespace, *(depends or [])])

    def chart(self, release: str, pin_key: str, values: dict, depends: list, accounts: tuple[str, ...] = ()) -> k8s.helm.v4.Chart:
        """A pinned chart release; `accounts`: the service accounts it creates."""
        pin = self.cfg.pins[pin_key]
        chart = k8s.helm.v4.Chart(
            f"{self.name}-{release}",
            name=release,
            namespace=self.ns,
            chart=pin.name,
            version=pin.version,
            repository_opts={"repo": pin.repo},
            values=values,
            # The bucket and roles must exist before pods try to flush.
            opts=self.opts(depends),
        )
        self.releases[release] = chart
        self.accounts.update(dict.fromkeys(accounts, chart))
        return chart

    def service_account(self, sa: str, identity: ToolIdentity) -> k8s.core.v1.ServiceAccount:
        account = k8s.core.v1.ServiceAccount(
            f"{self.name}-{sa}-sa",
            metadata={"name": sa, "namespace": self.ns, "annotations": irsa_annotations(identity, sa)},
            # The annotation names a role that must exist before a pod uses the account.
            opts=self.opts([identity]),
        )
        self.accounts[sa] = account
        return account


def operator_release(ctx: EksContext) -> list[pulumi.Resource]:
    """The kube-prometheus-stack release, for a release whose ServiceMonitors need its CRDs: one
    created before the CRDs fails (no such kind) and succeeds only on a later retry. Depending on
    the Chart waits for all of its objects to be ready (pulumi_kubernetes 4.34.2 helm/v4/Chart.py,
    `skip_await`: "waits until all resources are in a ready state")."""
    kps = ctx.releases.get("kps")
    return [kps] if kps is not None else []


def rollout_operator_release(cfg: StackConfig) -> Optional[str]:
    """The one chart release in the namespace that installs Grafana's rollout-operator.

    Both the Loki and the tempo-distributed chart can install it, but its validating webhooks
    are cluster-scoped and named after the namespace (`no-downscale-<namespace>`,
    `pod-eviction-<namespace>`, ...: grafana/helm-charts tag rollout-operator-0.51.1 and -0.50.0,
    charts/rollout-operator/templates/*-webhook.yaml) and its CRDs are cluster-wide, so a second
    install in the same namespace fails with AlreadyExists. One operator is enough: it coordinates
    every StatefulSet group labelled `rollout-group` in its namespace, each group on its own
    (grafana/rollout-operator tag v0.38.0, README "How updates work"; pkg/controller/controller.go
    selects StatefulSets on the label's existence and groups them by its value)."""
    enabled = cfg.tools.enabled()
    if "loki" in enabled:
        return "loki"
    if "tempo" in enabled:
        return "tempo"
    return None
