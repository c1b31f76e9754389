"""Thanos on EKS: plain Deployments/StatefulSets of the official image (no maintained upstream
chart since Bitnami's images moved), plus kube-prometheus-stack for Prometheus itself.

- Store gateway ×2 (read-only role) behind a headless Service: Query's `dnssrv+` discovery then
  sees one SRV record per pod instead of one ClusterIP, and fans out to every replica.
- Compactor ×1 (Recreate: never two against one bucket). Scratch on a volume of its own when
  aws.thanosCompactStorageClass names one (sized for the worst case of aws.sizing), else an
  emptyDir with a size limit and the same ephemeral-storage request, at most what fits a node's
  root volume, so it lands only on a node with that much disk.
- Receive ×N (mode receive): head block on emptyDir; replication factor >= 3 keeps a lost pod's
  unshipped samples on the others.
- Every workload that reaches the bucket waits for its service account and its IAM role.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import pulumi_kubernetes as k8s

from components.eks import prometheus as eks_prometheus
from components.core import sizing, thanos_topology, versions
from components.eks.base import EksContext, irsa_annotations, spread
from components.core.identity import ToolIdentity
from components.core.renderers import dump, thanos
from components.core.storage import ToolBucket

STORE_DIR = "/var/thanos/store"
COMPACT_DIR = "/var/thanos/compact"
RECEIVE_DIR = "/var/thanos/receive"


def _ports(args: list[str], field: str) -> list[dict]:
    ports = [{"name": "http", field: thanos.HTTP_PORT}]
    if any(a.startswith("--grpc-address") for a in args):
        ports.insert(0, {"name": "grpc", field: thanos.GRPC_PORT})
    return ports


def pod_spec(ctx: EksContext, app: str, args: list[str], sa: Optional[str], objstore: bool, data: Optional[str], labels: dict,
             size: sizing.Size, scratch_limit: Optional[str] = None, scratch_class: Optional[str] = None) -> dict[str, Any]:
    mounts, volumes = [], []
    if objstore:
        mounts.append({"name": "objstore", "mountPath": "/etc/thanos", "readOnly": True})
        volumes.append({"name": "objstore", "secret": {"secretName": "thanos-objstore"}})
    if data:
        mounts.append({"name": "data", "mountPath": data})
        if scratch_class:
            # A generic ephemeral volume: a claim per pod, provisioned in the pod's zone when it is
            # scheduled (EBS classes bind WaitForFirstConsumer) and deleted with the pod, so a Spot
            # reclaim strands nothing in a zone and the node's root volume is not touched.
            volumes.append({"name": "data", "ephemeral": {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"], "storageClassName": scratch_class,
                "resources": {"requests": {"storage": scratch_limit}}}}}})
        else:
            volumes.append({"name": "data", "emptyDir": {"sizeLimit": scratch_limit} if scratch_limit else {}})
    container: dict[str, Any] = {
        "name": app,
        "image": versions.image(ctx.cfg.pins, "thanos"),
        "args": args,
        "ports": _ports(args, "containerPort"),
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": thanos.HTTP_PORT}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": thanos.HTTP_PORT}, "periodSeconds": 30},
        "volumeMounts": mounts,
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
    }
    container["resources"] = size.resources()
    if scratch_limit and not scratch_class:
        # The request makes the scheduler pick a node with that much free disk; the emptyDir limit
        # alone would only evict the pod once the node's disk is already full.
        container["resources"]["requests"]["ephemeral-storage"] = container["resources"]["limits"]["ephemeral-storage"] = scratch_limit
    pod: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1001, "fsGroup": 1001},
        "topologySpreadConstraints": spread(labels),
        "containers": [container],
        "volumes": volumes,
    }
    if sa:
        pod["serviceAccountName"] = sa
    return pod


def _pdb(ctx: EksContext, app: str, labels: dict) -> None:
    k8s.policy.v1.PodDisruptionBudget(
        f"{ctx.name}-{app}-pdb",
        metadata={"name": app, "namespace": ctx.ns},
        spec={"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        opts=ctx.opts(),
    )


def _deployment(ctx: EksContext, app: str, args: list[str], replicas: int, pod: dict, depends: list, strategy: str = "RollingUpdate",
                headless: bool = False, annotations: Optional[dict[str, str]] = None) -> k8s.apps.v1.Deployment:
    labels = {"app.kubernetes.io/name": app}
    deployment = k8s.apps.v1.Deployment(
        f"{ctx.name}-{app}",
        metadata={"name": app, "namespace": ctx.ns, "labels": labels, **({"annotations": annotations} if annotations else {})},
        spec={
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            # Recreate for the compactor: it must never run twice against one bucket.
            "strategy": {"type": strategy},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
        opts=ctx.opts(depends),
    )
    service: dict[str, Any] = {"selector": labels, "ports": _ports(args, "port")}
    if headless:
        service["clusterIP"] = "None"
    k8s.core.v1.Service(f"{ctx.name}-{app}-svc", metadata={"name": app, "namespace": ctx.ns, "labels": labels}, spec=service, opts=ctx.opts())
    if replicas > 1:
        _pdb(ctx, app, labels)
    return deployment


def _receive(ctx: EksContext, identity: ToolIdentity) -> None:
    cfg = ctx.cfg
    replicas = cfg.tools.thanos.receive_replication_factor
    account = ctx.service_account("thanos-receive", identity)
    svc = f"thanos-receive.{ctx.svc}"
    hashring = [{"hashring": "default", "endpoints": [f"thanos-receive-{i}.{svc}:{thanos.GRPC_PORT}" for i in range(replicas)]}]
    hashring_cm = k8s.core.v1.ConfigMap(
        f"{ctx.name}-thanos-receive-hashring",
        metadata={"name": "thanos-receive-hashring", "namespace": ctx.ns},
        data={"hashrings.json": json.dumps(hashring)},
        opts=ctx.opts(),
    )
    labels = {"app.kubernetes.io/name": "thanos-receive"}
    args = thanos.receive_args(cfg, "$(POD_NAME)", f"$(POD_NAME).{svc}:{thanos.GRPC_PORT}", "/etc/thanos/hashring/hashrings.json", RECEIVE_DIR)
    k8s.core.v1.Service(
        f"{ctx.name}-thanos-receive-svc",
        metadata={"name": "thanos-receive", "namespace": ctx.ns, "labels": labels},
        spec={"clusterIP": "None", "selector": labels, "ports": [
            {"name": "grpc", "port": thanos.GRPC_PORT}, {"name": "http", "port": thanos.HTTP_PORT},
            {"name": "remote-write", "port": thanos.RECEIVE_REMOTE_WRITE_PORT}]},
        opts=ctx.opts(),
    )
    size = sizing.thanos_receive(cfg.aws.sizing.metrics_samples_per_second, replicas)
    pod = pod_spec(ctx, "thanos-receive", args, "thanos-receive", True, RECEIVE_DIR, labels, size, scratch_limit=f"{size.ephemeral_gib}Gi")
    pod["containers"][0]["env"] = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    pod["containers"][0]["volumeMounts"].append({"name": "hashring", "mountPath": "/etc/thanos/hashring"})
    pod["volumes"].append({"name": "hashring", "configMap": {"name": "thanos-receive-hashring"}})
    k8s.apps.v1.StatefulSet(
        f"{ctx.name}-thanos-receive",
        metadata={"name": "thanos-receive", "namespace": ctx.ns, "labels": labels},
        spec={"serviceName": "thanos-receive", "replicas": replicas, "selector": {"matchLabels": labels},
              "template": {"metadata": {"labels": labels}, "spec": pod}},
        opts=ctx.opts([account, identity, hashring_cm]),
    )
    _pdb(ctx, "thanos-receive", labels)


def _spoke(ctx: EksContext, identity: Optional[ToolIdentity]) -> dict[str, str]:
    """A spoke: Prometheus only, its sidecar uploading to the hub's bucket under the spoke's own
    role, or remote-writing to the hub's Receive. The hub runs store, Query and the compactor."""
    cfg = ctx.cfg
    receive_url = cfg.tools.thanos.hub_bucket.receive_url if cfg.tools.thanos.mode == "receive" else None
    annotations = irsa_annotations(identity, eks_prometheus.SERVICE_ACCOUNT) if identity is not None else {}
    ctx.chart(eks_prometheus.RELEASE, "kube-prometheus-stack-chart", eks_prometheus.values(cfg, annotations, receive_url),
              [identity] if identity is not None else [], accounts=(eks_prometheus.SERVICE_ACCOUNT,))
    # The chart's Prometheus Service is <fullname>-prometheus on prometheus.service.port, 9090
    # (kube-prometheus-stack-88.5.3 templates/prometheus/service.yaml, values.yaml).
    return {"prometheus": f"http://{eks_prometheus.RELEASE}-prometheus.{ctx.svc}:9090"}


def deploy(ctx: EksContext, identity: Optional[ToolIdentity], bucket: Optional[ToolBucket]) -> dict[str, str]:
    cfg = ctx.cfg
    if not cfg.tools.thanos.owns_bucket:
        return _spoke(ctx, identity)
    assert identity is not None and bucket is not None
    receive = cfg.tools.thanos.mode == "receive"
    objstore = k8s.core.v1.Secret(
        f"{ctx.name}-thanos-objstore",
        metadata={"name": "thanos-objstore", "namespace": ctx.ns},
        # Bucket coordinates only: credentials come from the pod's IAM role.
        string_data={"objstore.yaml": dump(thanos.objstore(eks_prometheus.object_store_for_thanos(cfg)))},
        opts=ctx.opts(),
    )
    # Spokes' sidecars where the hub can reach them (tools.thanos.spokes[].sidecarEndpoint).
    endpoints = [f"dnssrv+_grpc._tcp.thanos-store.{ctx.svc}", *thanos_topology.sidecar_endpoints(cfg)]
    receive_url = None
    if receive:
        _receive(ctx, identity)
        endpoints.append(f"dnssrv+_grpc._tcp.thanos-receive.{ctx.svc}")
        receive_url = f"http://thanos-receive.{ctx.svc}:{thanos.RECEIVE_REMOTE_WRITE_PORT}/api/v1/receive"
    else:
        endpoints.append(f"dnssrv+_grpc._tcp.{eks_prometheus.RELEASE}-thanos-discovery.{ctx.svc}")
    annotations = {} if receive else irsa_annotations(identity, eks_prometheus.SERVICE_ACCOUNT)
    ctx.chart(eks_prometheus.RELEASE, "kube-prometheus-stack-chart", eks_prometheus.values(cfg, annotations, receive_url), [bucket, identity],
              accounts=(eks_prometheus.SERVICE_ACCOUNT,))

    # Query-driven, so sized apart from ingest, with room for the configured caches (core/sizing.py).
    sizes = sizing.thanos(cfg.aws.thanos_index_cache_mb, cfg.aws.thanos_response_cache_mb)
    store_labels = {"app.kubernetes.io/name": "thanos-store"}
    store_sa = ctx.service_account("thanos-store", identity)
    store_args = thanos.store_args(STORE_DIR)
    if cfg.aws.thanos_index_cache_mb:
        # In-memory index cache (Thanos' default, 250MB when unset): postings and series of the
        # blocks queries touch, instead of range reads from the bucket for each query.
        store_args.append(f"--index-cache-size={cfg.aws.thanos_index_cache_mb}MB")
    _deployment(ctx, "thanos-store", store_args, sizes["thanos-store"].replicas,
                pod_spec(ctx, "thanos-store", store_args, "thanos-store", True, STORE_DIR, store_labels, sizes["thanos-store"]),
                [store_sa, identity, objstore], headless=True)

    compact_labels = {"app.kubernetes.io/name": "thanos-compact"}
    compact_sa = ctx.service_account("thanos-compact", identity)
    compact_args = thanos.compact_args(cfg, COMPACT_DIR)
    _deployment(ctx, "thanos-compact", compact_args, sizes["thanos-compact"].replicas,
                pod_spec(ctx, "thanos-compact", compact_args, "thanos-compact", True, COMPACT_DIR, compact_labels, sizes["thanos-compact"],
                         scratch_limit=f"{cfg.aws.thanos_compact_gib()}Gi", scratch_class=cfg.aws.thanos_compact_storage_class),
                [compact_sa, identity, objstore], strategy="Recreate",
                annotations={thanos.COMPACTOR_BUCKET_LABEL: cfg.tools.thanos.bucket})

    query_args = thanos.query_args(endpoints)
    _deployment(ctx, "thanos-query", query_args, sizes["thanos-query"].replicas,
                pod_spec(ctx, "thanos-query", query_args, None, False, None, {"app.kubernetes.io/name": "thanos-query"}, sizes["thanos-query"]), [])
    urls = {"thanosQuery": f"http://thanos-query.{ctx.svc}:{thanos.HTTP_PORT}"}
    if cfg.aws.thanos_response_cache_mb:
        frontend_args = query_frontend_args(urls["thanosQuery"], cfg.aws.thanos_response_cache_mb)
        _deployment(ctx, "thanos-query-frontend", frontend_args, sizes["thanos-query-frontend"].replicas,
                    pod_spec(ctx, "thanos-query-frontend", frontend_args, None, False, None, {"app.kubernetes.io/name": "thanos-query-frontend"},
                             sizes["thanos-query-frontend"]), [])
        urls["thanosQueryFrontend"] = f"http://thanos-query-frontend.{ctx.svc}:{thanos.HTTP_PORT}"
    return urls


def query_frontend_args(downstream: str, cache_mb: int) -> list[str]:
    """Thanos Query Frontend in front of Query: long ranges split into days (--query-range.split-interval
    default 24h) and each day's result cached in memory (thanos-io/thanos v0.42.4
    docs/components/query-frontend.md, IN-MEMORY response cache `max_size`)."""
    cache = dump({"type": "IN-MEMORY", "config": {"max_size": f"{cache_mb}MB"}}).strip()
    return [
        "query-frontend",
        f"--http-address=0.0.0.0:{thanos.HTTP_PORT}",
        "--log.level=info",
        f"--query-frontend.downstream-url={downstream}",
        f"--query-range.response-cache-config={cache}",
    ]
