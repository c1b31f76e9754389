"""Loki on EKS: the grafana-community `loki` chart in Distributed mode.

Chart facts below were read in grafana-community/helm-charts at tag loki-18.11.0 (the pinned
version, components/core/versions.py "loki-chart"); key names are checked against
tests/upstream/chart-loki.keys, generated from that tag.
"""

from __future__ import annotations

from typing import Any

from components.eks import monitoring as eks_monitoring
from components.core import sizing
from components.core.config import StackConfig
from components.eks.base import (INGESTER_STOP_GRACE_SECONDS, ZONE_KEY, EksContext, chart_pods, irsa_annotations, operator_release,
                                 rollout_operator_release, spread)
from components.core.identity import ToolIdentity
from components.core.renderers import loki
from components.core.storage import ToolBucket
from components.core.renderers import object_store

RELEASE = "loki"
# templates/_pod.tpl mounts the data volume at /var/loki and /tmp as an emptyDir; everything else
# is read-only (values.yaml loki.containerSecurityContext.readOnlyRootFilesystem: true).
DATA_DIR = "/var/loki"
# The ingester StatefulSets and pods carry `rollout-group: <prefix>-ingester` and
# `name: loki-ingester-zone-<x>` with these two settings (templates/_workload.tpl, _pod.tpl,
# ingester/_helpers.tpl). Without them they carry `rollout-group: ingester` and
# `name: ingester-zone-<x>`, exactly what tempo-distributed's ingesters carry: Tempo's zone
# anti-affinity (`rollout-group In [ingester]`, `zone NotIn [...]`) would then match Loki's
# ingesters, and the one rollout-operator, which finds a StatefulSet's pods by their `name`
# label alone, would count and delete the other tool's pods.
ROLLOUT_GROUP_PREFIX = "loki"

# Chart component -> its own service account (templates/<component>/serviceaccount.yaml renders
# it when `<component>.serviceAccount.create`; templates/_pod.tpl uses it for the pods). Only
# these components touch the bucket; the rest (distributor, query-frontend, query-scheduler,
# gateway) run under the chart-wide `loki` account, which has no role.
COMPONENT_ACCOUNTS = {
    "ingester": "loki-ingester",
    "querier": "loki-querier",
    "indexGateway": "loki-index-gateway",
    "compactor": "loki-compactor",
}
SHARED_ACCOUNT = "loki"


def _account(name: str, annotations: dict) -> dict[str, Any]:
    return {"create": True, "name": name, "annotations": annotations}


def values(cfg: StackConfig, annotations: dict[str, dict]) -> dict[str, Any]:
    """`annotations`: service account -> its IRSA annotation (empty with Pod Identity)."""
    aws = cfg.aws
    store = object_store(cfg, "loki")
    sections = loki.storage_sections(cfg, store, DATA_DIR)
    wal_on_pvc = aws.wal_volume == "persistentVolume"
    zones = {f"zone{letter}": {"nodeSelector": {ZONE_KEY: zone}} for letter, zone in zip("ABC", aws.zones)}
    accounts = {component: {"serviceAccount": _account(sa, annotations.get(sa, {}))} for component, sa in COMPONENT_ACCOUNTS.items()}
    out: dict[str, Any] = {
        "deploymentMode": "Distributed",
        "loki": {
            "image": {"tag": cfg.pins["loki"].version},
            "auth_enabled": cfg.multi_tenant,
            "commonConfig": {"replication_factor": 3},
            "schemaConfig": sections["schema_config"],
            "storage": {
                "type": "s3",
                "bucketNames": {"chunks": store.bucket, "ruler": store.bucket},
                "s3": {"region": store.region, "s3ForcePathStyle": store.path_style, "insecure": not store.tls},
            },
            # The same storage/compactor/limits sections the single binary uses, under the chart's
            # writable path. Usage reporting would make every component read (and the ingesters
            # write) a seed object, which the accounts without a role cannot.
            "structuredConfig": {
                **{k: v for k, v in sections.items() if k != "schema_config"},
                "analytics": dict(loki.ANALYTICS),
                # The chart's default too (versions.ChartFacts): a stopping ingester uploads every
                # chunk its WAL (emptyDir) holds, so a zone-by-zone rollout loses nothing.
                "ingester": {"wal": {"flush_on_shutdown": True}},
            },
            **({"runtimeConfig": loki.tenant_overrides(cfg)} if cfg.multi_tenant else {}),
        },
        "serviceAccount": _account(SHARED_ACCOUNT, {}),
        # The chart's default grants the shared account get/watch/list on every ConfigMap and Secret of
        # the cluster (a ClusterRole for its rules sidecar). Nothing here loads rules from ConfigMaps:
        # without the sidecar and cluster-wide RBAC the chart renders no such role at all
        # (templates/backend/clusterrole.yaml, templates/role.yaml).
        "rbac": {"namespaced": True},
        "sidecar": {"rules": {"enabled": False}},
        "ingester": {
            **accounts["ingester"],
            "zoneAwareReplication": {"enabled": True, **zones},
            "rolloutGroupPrefix": ROLLOUT_GROUP_PREFIX,
            "addIngesterNamePrefix": True,
            # The chart defaults to RollingUpdate; the rollout-operator skips a group unless every
            # StatefulSet in it is OnDelete, and then restarts one zone at a time.
            "strategy": {"type": "OnDelete"},
            "persistence": {"enabled": wal_on_pvc},
            "maxUnavailable": 1,
            "terminationGracePeriodSeconds": INGESTER_STOP_GRACE_SECONDS,
        },
        "distributor": {"maxUnavailable": 1, "topologySpreadConstraints": spread(chart_pods(RELEASE, "distributor"))},
        "querier": {**accounts["querier"], "maxUnavailable": 1, "topologySpreadConstraints": spread(chart_pods(RELEASE, "querier"))},
        "queryFrontend": {"maxUnavailable": 1},
        "queryScheduler": {},
        "indexGateway": {**accounts["indexGateway"], "maxUnavailable": 1, "persistence": {"enabled": False}},
        # Single writer of retention; its working directory is disposable.
        "compactor": {**accounts["compactor"], "persistence": {"enabled": False}},
        "gateway": {"enabled": True},
        "singleBinary": {"replicas": 0},
        "write": {"replicas": 0},
        "read": {"replicas": 0},
        "backend": {"replicas": 0},
        "rollout_operator": {"enabled": rollout_operator_release(cfg) == RELEASE},
        "minio": {"enabled": False},
        # Pushes a line every second through the gateway and reads it back (alerts.py
        # LokiCanaryMissingEntries): broken ingest shows within minutes. One Deployment replica,
        # not the chart's DaemonSet default; the image tag follows the Loki pin (the chart would
        # use its appVersion, templates/loki-canary/daemonset.yaml; Loki's release workflow
        # publishes grafana/loki-canary for every release, .github/release-workflows.jsonnet).
        "lokiCanary": {"enabled": True, "kind": "Deployment", "image": {"tag": cfg.pins["loki"].version}},
        "test": {"enabled": False},
        # Metrics through the operator (eks_monitoring.py); the chart's own rules stay off, the
        # project's rules cover Loki (renderers/alerts.py).
        "monitoring": {"serviceMonitor": eks_monitoring.chart_service_monitor(cfg)},
        # Memcached caches, chart default on (memcached 1.6.45-alpine, loki-18.11.0 values.yaml), sized
        # from aws.lokiChunksCacheMb / lokiResultsCacheMb; each pod requests 1.2 x that memory
        # (templates/memcached/_memcached-statefulset.tpl). The chunks cache saves re-reading
        # recent chunks from the bucket on every query; the results cache answers repeated
        # dashboard queries.
        "chunksCache": _cache(aws.loki_chunks_cache_mb),
        "resultsCache": _cache(aws.loki_results_cache_mb),
    }
    # Replicas (the project's own counts, more where the load needs them), requests and limits from
    # aws.sizing.logsGbPerDay (core/sizing.py: Loki's sizing guide).
    for component, size in sizing.loki(aws.sizing.logs_gb_per_day).items():
        out[component].update({"replicas": size.replicas, "resources": size.resources()})
    return out


def _cache(megabytes: int) -> dict[str, Any]:
    return {"enabled": megabytes > 0, **({"allocatedMemory": megabytes} if megabytes else {})}


def deploy(ctx: EksContext, identity: ToolIdentity, bucket: ToolBucket) -> dict[str, str]:
    annotations = {sa: irsa_annotations(identity, sa) for sa in COMPONENT_ACCOUNTS.values()}
    ctx.chart(RELEASE, "loki-chart", values(ctx.cfg, annotations), [bucket, identity, *operator_release(ctx)],
              accounts=(*COMPONENT_ACCOUNTS.values(), SHARED_ACCOUNT))
    return {"lokiPush": f"http://loki-gateway.{ctx.svc}/loki/api/v1/push", "loki": f"http://loki-gateway.{ctx.svc}"}
