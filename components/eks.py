"""Loki, Tempo, Prometheus and Thanos on the existing EKS cluster (target aws).

Built for Spot nodes across availability zones, the incident this project exists for:
- No Loki or Tempo pod is bound to a single-AZ volume: ingester WALs are emptyDir unless
  `aws.walVolume` asks for EBS; ingesters replicate 3x, zone-aware, so losing a node (or a
  zone) loses no acknowledged data; every component spreads across zones and has a PDB.
- Prometheus' own volume is the accepted exception: two replicas in different zones (Query
  deduplicates them), 12h of local retention, everything older already uploaded as 2h blocks.

Charts render inside the Kubernetes provider (helm.v4.Chart): no local helm binary. Thanos has
no maintained upstream chart since Bitnami's images moved, so its components are plain
Deployments/StatefulSets of the official image. Grafana: datasource ConfigMaps for an existing
Grafana's sidecar (label grafana_datasource=1).
"""

from __future__ import annotations

import json
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components import versions
from components.config import StackConfig
from components.identity import ToolIdentity
from components.renderers import dump, grafana, loki, tempo, thanos
from components.storage import ToolBucket
from components.workloads import object_store

ZONE_KEY = "topology.kubernetes.io/zone"
PROMETHEUS_RETENTION = "12h"
PROMETHEUS_VOLUME = "20Gi"
KPS_RELEASE = "kps"  # kube-prometheus-stack release; fullnameOverride keeps service names short


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


def spread(labels: dict[str, str]) -> list[dict[str, Any]]:
    # ScheduleAnyway: a zone outage must not leave replicas Pending; the scheduler still balances.
    return [{"maxSkew": 1, "topologyKey": ZONE_KEY, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": labels}}]


def _chart_pods(release: str, component: str) -> dict[str, str]:
    # Both charts label components alike; the instance label keeps Loki's and Tempo's apart.
    return {"app.kubernetes.io/instance": release, "app.kubernetes.io/component": component}


def irsa_annotations(identity: ToolIdentity, service_account: str) -> dict[str, pulumi.Output[str]]:
    """IRSA binds a service account to its role by annotation; Pod Identity needs none."""
    if identity.kind != "irsa":
        return {}
    return {"eks.amazonaws.com/role-arn": identity.credentials.role_arns[service_account]}


# ---------------------------------------------------------------- chart values (pure, testable)
def loki_values(cfg: StackConfig, annotations: dict) -> dict[str, Any]:
    aws = cfg.aws
    store = object_store(cfg, "loki")
    wal_on_pvc = aws.wal_volume == "persistentVolume"
    zones = {f"zone{letter}": {"nodeSelector": {ZONE_KEY: zone}} for letter, zone in zip("ABC", aws.zones)}
    return {
        "deploymentMode": "Distributed",
        "loki": {
            "image": {"tag": cfg.pins["loki"].version},
            "auth_enabled": cfg.multi_tenant,
            "commonConfig": {"replication_factor": 3},
            "schemaConfig": loki.storage_sections(cfg, store)["schema_config"],
            "storage": {
                "type": "s3",
                "bucketNames": {"chunks": store.bucket, "ruler": store.bucket},
                "s3": {"region": store.region, "s3ForcePathStyle": store.path_style, "insecure": not store.tls},
            },
            # The same storage/compactor/limits sections the single binary uses.
            "structuredConfig": {k: v for k, v in loki.storage_sections(cfg, store).items() if k != "schema_config"},
            **({"runtimeConfig": loki.tenant_overrides(cfg)} if cfg.multi_tenant else {}),
        },
        "serviceAccount": {"create": True, "name": "loki", "annotations": annotations},
        "ingester": {
            "replicas": 3,
            "zoneAwareReplication": {"enabled": True, **zones},
            "persistence": {"enabled": wal_on_pvc},
            "maxUnavailable": 1,
        },
        "distributor": {"replicas": 3, "maxUnavailable": 1, "topologySpreadConstraints": spread(_chart_pods("loki", "distributor"))},
        "querier": {"replicas": 3, "maxUnavailable": 1, "topologySpreadConstraints": spread(_chart_pods("loki", "querier"))},
        "queryFrontend": {"replicas": 2, "maxUnavailable": 1},
        "queryScheduler": {"replicas": 2},
        "indexGateway": {"replicas": 2, "maxUnavailable": 1, "persistence": {"enabled": False}},
        # Single writer of retention; its working directory is disposable.
        "compactor": {"replicas": 1, "persistence": {"enabled": False}},
        "gateway": {"enabled": True, "replicas": 2},
        "singleBinary": {"replicas": 0},
        "write": {"replicas": 0},
        "read": {"replicas": 0},
        "backend": {"replicas": 0},
        # Zone-aware ingesters roll one zone at a time through the rollout operator.
        "rollout_operator": {"enabled": True},
        "minio": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        # The chart's caches default to 8 GiB of memcached each; size them for your query load.
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
    }


def tempo_values(cfg: StackConfig, annotations: dict) -> dict[str, Any]:
    store = object_store(cfg, "tempo")
    wal_on_pvc = cfg.aws.wal_volume == "persistentVolume"
    zones = [{"name": f"zone-{letter}", "nodeSelector": {ZONE_KEY: zone}} for letter, zone in zip("abc", cfg.aws.zones)]
    return {
        "tempo": {"image": {"tag": cfg.pins["tempo"].version}},
        "serviceAccount": {"create": True, "name": "tempo", "annotations": annotations},
        # The chart fixes the WAL and block paths itself; it reads only backend and s3.
        "storage": {"trace": {"backend": "s3", "s3": tempo.s3_block(store)}},
        "multitenancyEnabled": cfg.multi_tenant,
        "traces": {"otlp": {"grpc": {"enabled": True}, "http": {"enabled": True}}},
        "ingester": {
            "replicas": 3,
            "config": {"replication_factor": 3},
            "persistence": {"enabled": wal_on_pvc},
            "zoneAwareReplication": {"enabled": True, "topologyKey": ZONE_KEY, "zones": zones},
            "podDisruptionBudget": {"enabled": True},
        },
        "distributor": {"replicas": 2, "topologySpreadConstraints": json.dumps(spread(_chart_pods("tempo", "distributor")))},
        "querier": {"replicas": 2},
        "queryFrontend": {"replicas": 2},
        "compactor": {"replicas": 1, "config": {"compaction": tempo.compaction_block(cfg)}},
        "metaMonitoring": {"serviceMonitor": {"enabled": False}},
        "gateway": {"enabled": False},
        "rollout_operator": {"enabled": True},
    }


def kube_prometheus_values(cfg: StackConfig, annotations: dict, receive_url: Optional[str]) -> dict[str, Any]:
    pin = cfg.pins["prometheus"]
    registry, repository = pin.name.split("/", 1)
    spec: dict[str, Any] = {
        "image": {"registry": registry, "repository": repository, "tag": pin.version},
        # Two replicas in different zones: if one's EBS volume cannot follow it to a new zone,
        # the other keeps scraping and Query deduplicates on the replica label.
        "replicas": 2,
        "replicaExternalLabelName": thanos.REPLICA_LABEL,
        "externalLabels": {"cluster": pulumi.get_stack()},
        "retention": PROMETHEUS_RETENTION,
        "topologySpreadConstraints": spread({"app.kubernetes.io/name": "prometheus"}),
        "storageSpec": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": PROMETHEUS_VOLUME}}}}},
    }
    if receive_url:
        spec["remoteWrite"] = [{"url": receive_url}]
    else:
        spec["thanos"] = {"image": versions.image(cfg.pins, "thanos"), "objectStorageConfig": {"secret": thanos.objstore(_thanos_store(cfg))}}
    return {
        "fullnameOverride": KPS_RELEASE,
        "prometheus": {
            "serviceAccount": {"create": True, "name": "prometheus", "annotations": annotations},
            "thanosService": {"enabled": receive_url is None},
            # With two replicas, one may be evicted at a time (the chart's minAvailable form).
            "podDisruptionBudget": {"enabled": True, "minAvailable": 1},
            "prometheusSpec": spec,
        },
        "alertmanager": {"enabled": False},
        "grafana": {"enabled": False},
    }


def _thanos_store(cfg: StackConfig):
    return object_store(cfg, "thanos", aws_sdk_auth=cfg.aws.identity == "pod-identity")


# ---------------------------------------------------------------- the component
class EksTools(pulumi.ComponentResource):
    """Outputs: `urls` (in-cluster service URLs) and the chart versions deployed."""

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
        self.cfg, self.ns_name = cfg, cfg.aws.namespace
        self._provider = provider
        enabled = cfg.tools.enabled()
        self.namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": self.ns_name}, opts=self._opts())
        self.urls: dict[str, str] = {}
        svc = f"{self.ns_name}.svc.cluster.local"
        if "loki" in enabled:
            self._chart(name, "loki", "loki-chart", loki_values(cfg, irsa_annotations(identities["loki"], "loki")), [buckets["loki"], identities["loki"]])
            self.urls["lokiPush"] = f"http://loki-gateway.{svc}/loki/api/v1/push"
            self.urls["loki"] = f"http://loki-gateway.{svc}"
        if "tempo" in enabled:
            self._chart(name, "tempo", "tempo-chart", tempo_values(cfg, irsa_annotations(identities["tempo"], "tempo")), [buckets["tempo"], identities["tempo"]])
            self.urls["otlpGrpc"] = f"tempo-distributor.{svc}:{tempo.OTLP_GRPC_PORT}"
            self.urls["otlpHttp"] = f"http://tempo-distributor.{svc}:{tempo.OTLP_HTTP_PORT}"
            self.urls["tempo"] = f"http://tempo-query-frontend.{svc}:{tempo.HTTP_PORT}"
        if "thanos" in enabled:
            self._thanos(name, identities["thanos"], buckets["thanos"])
            self.urls["thanosQuery"] = f"http://thanos-query.{svc}:{thanos.HTTP_PORT}"
        self._datasources(name)
        self.register_outputs({"urls": self.urls})

    def _opts(self, depends: Optional[list] = None) -> pulumi.ResourceOptions:
        # Callers pass the namespace (objects in it need it first) and, for workloads, the bucket
        # and role they use from their first second.
        return pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=depends or [])

    def _chart(self, name: str, release: str, pin_key: str, values: dict, depends: list) -> k8s.helm.v4.Chart:
        pin = self.cfg.pins[pin_key]
        return k8s.helm.v4.Chart(
            f"{name}-{release}",
            name=release,
            namespace=self.ns_name,
            chart=pin.name,
            version=pin.version,
            repository_opts={"repo": pin.repo},
            values=values,
            # The bucket and role must exist before pods try to flush.
            opts=self._opts([self.namespace, *depends]),
        )

    def _service_account(self, name: str, sa: str, identity: ToolIdentity) -> k8s.core.v1.ServiceAccount:
        return k8s.core.v1.ServiceAccount(
            f"{name}-{sa}-sa",
            metadata={"name": sa, "namespace": self.ns_name, "annotations": irsa_annotations(identity, sa)},
            # The annotation names a role that must exist before a pod uses the account.
            opts=self._opts([self.namespace, identity]),
        )

    def _thanos(self, name: str, identity: ToolIdentity, bucket: ToolBucket) -> None:
        cfg = self.cfg
        receive = cfg.tools.thanos.mode == "receive"
        store = _thanos_store(cfg)
        svc = f"{self.ns_name}.svc.cluster.local"
        objstore = k8s.core.v1.Secret(
            f"{name}-thanos-objstore",
            metadata={"name": "thanos-objstore", "namespace": self.ns_name},
            # Bucket coordinates only: credentials come from the pod's IAM role.
            string_data={"objstore.yaml": dump(thanos.objstore(store))},
            opts=self._opts([self.namespace]),
        )
        endpoints = [f"dnssrv+_grpc._tcp.thanos-store.{svc}"]
        receive_url = None
        if receive:
            self._receive(name, identity, objstore)
            endpoints.append(f"dnssrv+_grpc._tcp.thanos-receive.{svc}")
            receive_url = f"http://thanos-receive.{svc}:{thanos.RECEIVE_REMOTE_WRITE_PORT}/api/v1/receive"
        else:
            endpoints.append(f"dnssrv+_grpc._tcp.{KPS_RELEASE}-thanos-discovery.{svc}")
        self._chart(name, KPS_RELEASE, "kube-prometheus-stack-chart",
                    kube_prometheus_values(cfg, irsa_annotations(identity, "prometheus") if not receive else {}, receive_url), [bucket, identity])
        for sa in ("thanos-store", "thanos-compact"):
            self._service_account(name, sa, identity)
        self._deployment(name, "thanos-store", thanos.store_args("/var/thanos/store"), replicas=2, sa="thanos-store", objstore=objstore, data="/var/thanos/store")
        self._deployment(name, "thanos-compact", thanos.compact_args(cfg, "/var/thanos/compact"), replicas=1, sa="thanos-compact", objstore=objstore,
                         data="/var/thanos/compact", strategy="Recreate")
        self._deployment(name, "thanos-query", thanos.query_args(endpoints), replicas=2, sa=None, objstore=None, data=None)

    def _receive(self, name: str, identity: ToolIdentity, objstore: k8s.core.v1.Secret) -> None:
        cfg = self.cfg
        replicas = cfg.tools.thanos.receive_replication_factor
        self._service_account(name, "thanos-receive", identity)
        svc = f"thanos-receive.{self.ns_name}.svc.cluster.local"
        hashring = [{"hashring": "default", "endpoints": [f"thanos-receive-{i}.{svc}:{thanos.GRPC_PORT}" for i in range(replicas)]}]
        k8s.core.v1.ConfigMap(
            f"{name}-thanos-receive-hashring",
            metadata={"name": "thanos-receive-hashring", "namespace": self.ns_name},
            data={"hashrings.json": json.dumps(hashring)},
            opts=self._opts([self.namespace]),
        )
        labels = {"app.kubernetes.io/name": "thanos-receive"}
        args = thanos.receive_args(cfg, "$(POD_NAME)", f"$(POD_NAME).{svc}:{thanos.GRPC_PORT}", "/etc/thanos/hashring/hashrings.json", "/var/thanos/receive")
        k8s.core.v1.Service(
            f"{name}-thanos-receive-svc",
            metadata={"name": "thanos-receive", "namespace": self.ns_name, "labels": labels},
            spec={"clusterIP": "None", "selector": labels, "ports": [
                {"name": "grpc", "port": thanos.GRPC_PORT}, {"name": "http", "port": thanos.HTTP_PORT},
                {"name": "remote-write", "port": thanos.RECEIVE_REMOTE_WRITE_PORT}]},
            opts=self._opts([self.namespace]),
        )
        pod = self._pod_spec("thanos-receive", args, "thanos-receive", objstore, "/var/thanos/receive", labels)
        pod["containers"][0]["env"] = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
        pod["containers"][0]["volumeMounts"].append({"name": "hashring", "mountPath": "/etc/thanos/hashring"})
        pod["volumes"].append({"name": "hashring", "configMap": {"name": "thanos-receive-hashring"}})
        k8s.apps.v1.StatefulSet(
            f"{name}-thanos-receive",
            metadata={"name": "thanos-receive", "namespace": self.ns_name, "labels": labels},
            spec={"serviceName": "thanos-receive", "replicas": replicas, "selector": {"matchLabels": labels},
                  # The head block lives on emptyDir: with replication factor >= 3 a lost pod's
                  # unshipped samples still exist on the other replicas.
                  "template": {"metadata": {"labels": labels}, "spec": pod}},
            opts=self._opts([self.namespace, identity]),
        )
        self._pdb(name, "thanos-receive", labels)

    def _pod_spec(self, app: str, args: list[str], sa: Optional[str], objstore, data: Optional[str], labels: dict) -> dict:
        mounts, volumes = [], []
        if objstore is not None:
            mounts.append({"name": "objstore", "mountPath": "/etc/thanos", "readOnly": True})
            volumes.append({"name": "objstore", "secret": {"secretName": "thanos-objstore"}})
        if data:
            mounts.append({"name": "data", "mountPath": data})
            volumes.append({"name": "data", "emptyDir": {}})
        probe = {"httpGet": {"path": "/-/ready", "port": thanos.HTTP_PORT}, "periodSeconds": 10}
        pod: dict[str, Any] = {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1001, "fsGroup": 1001},
            "topologySpreadConstraints": spread(labels),
            "containers": [{
                "name": app,
                "image": versions.image(self.cfg.pins, "thanos"),
                "args": args,
                "ports": self._ports(args, "containerPort"),
                "readinessProbe": probe,
                "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": thanos.HTTP_PORT}, "periodSeconds": 30},
                "volumeMounts": mounts,
                "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
            }],
            "volumes": volumes,
        }
        if sa:
            pod["serviceAccountName"] = sa
        return pod

    @staticmethod
    def _ports(args: list[str], field: str) -> list[dict]:
        ports = [{"name": "http", field: thanos.HTTP_PORT}]
        if any(a.startswith("--grpc-address") for a in args):
            ports.insert(0, {"name": "grpc", field: thanos.GRPC_PORT})
        return ports

    def _deployment(self, name: str, app: str, args: list[str], replicas: int, sa: Optional[str], objstore, data: Optional[str], strategy: str = "RollingUpdate") -> None:
        labels = {"app.kubernetes.io/name": app}
        k8s.apps.v1.Deployment(
            f"{name}-{app}",
            metadata={"name": app, "namespace": self.ns_name, "labels": labels},
            spec={
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                # The compactor must never run twice against one bucket.
                "strategy": {"type": strategy},
                "template": {"metadata": {"labels": labels}, "spec": self._pod_spec(app, args, sa, objstore, data, labels)},
            },
            opts=self._opts([self.namespace]),
        )
        k8s.core.v1.Service(
            f"{name}-{app}-svc",
            metadata={"name": app, "namespace": self.ns_name, "labels": labels},
            spec={"selector": labels, "ports": self._ports(args, "port")},
            opts=self._opts([self.namespace]),
        )
        if replicas > 1:
            self._pdb(name, app, labels)

    def _pdb(self, name: str, app: str, labels: dict) -> None:
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-{app}-pdb",
            metadata={"name": app, "namespace": self.ns_name},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": labels}},
            opts=self._opts([self.namespace]),
        )

    def _datasources(self, name: str) -> None:
        urls = {"thanos": self.urls.get("thanosQuery", ""), "loki": self.urls.get("loki", ""), "tempo": self.urls.get("tempo", "")}
        k8s.core.v1.ConfigMap(
            f"{name}-grafana-datasources",
            # An existing Grafana's sidecar loads ConfigMaps with this label.
            metadata={"name": "obs-storage-datasources", "namespace": self.ns_name, "labels": {"grafana_datasource": "1"}},
            data={"obs-storage.yaml": dump(grafana.render(self.cfg, urls))},
            opts=self._opts([self.namespace]),
        )


class EksPlatform:
    """Workload platform of target aws: the tools on the existing EKS cluster."""

    def __init__(self, provider: k8s.Provider):
        self.provider = provider

    def deploy(self, cfg, buckets: dict[str, ToolBucket], identities: dict[str, ToolIdentity]) -> dict:
        tools = EksTools("tools", cfg, self.provider, buckets, identities)
        return {"urls": tools.urls}

