"""Tempo on EKS: the grafana-community `tempo-distributed` chart.

Chart facts below were read in grafana-community/helm-charts at tag tempo-distributed-2.26.2
(the pinned version, components/core/versions.py "tempo-chart"); key names are checked against
tests/upstream/chart-tempo-distributed.keys, generated from that tag.
"""

from __future__ import annotations

import json
from typing import Any

from components.eks import monitoring as eks_monitoring
from components.core import sizing
from components.core.config import StackConfig
from components.eks.base import (INGESTER_STOP_GRACE_SECONDS, ZONE_KEY, EksContext, chart_pods, irsa_annotations, operator_release,
                                 rollout_operator_release, spread)
from components.core.identity import ToolIdentity
from components.core.renderers import tempo
from components.core.storage import ToolBucket
from components.core.renderers import object_store

RELEASE = "tempo"
SERVICE_ACCOUNT = "tempo"


def values(cfg: StackConfig, annotations: dict) -> dict[str, Any]:
    store = object_store(cfg, "tempo")
    wal_on_pvc = cfg.aws.wal_volume == "persistentVolume"
    zones = [{"name": f"zone-{letter}", "nodeSelector": {ZONE_KEY: zone}} for letter, zone in zip("abc", cfg.aws.zones)]
    out: dict[str, Any] = {
        "tempo": {"image": {"tag": cfg.pins["tempo"].version}},
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT, "annotations": annotations},
        # The chart fixes the WAL and block paths itself (under its /var/tempo volume); its
        # `config` template passes storage.trace.s3 through as is.
        "storage": {"trace": {"backend": "s3", "s3": tempo.s3_block(store)}},
        "multitenancyEnabled": cfg.multi_tenant,
        # The chart's default is true (versions.ChartFacts); its config template writes this value
        # into usage_report.reporting_enabled.
        "reportingEnabled": tempo.USAGE_REPORT["reporting_enabled"],
        "traces": {"otlp": {"grpc": {"enabled": True}, "http": {"enabled": True}}},
        "ingester": {
            # On stop Tempo only cuts its live traces into the WAL unless flush_all_on_shutdown
            # (default false, modules/ingester/ingester.go `stopping`); the WAL is on an emptyDir, so
            # the zone-by-zone rollout would drop each zone's unflushed blocks in turn, and after the
            # third zone every trace not yet uploaded. With it, the ingester uploads everything first.
            "config": {"replication_factor": 3, "flush_all_on_shutdown": True},
            "terminationGracePeriodSeconds": INGESTER_STOP_GRACE_SECONDS,
            "persistence": {"enabled": wal_on_pvc},
            # templates/ingester/_helpers-ingester.tpl hard-codes the zone-aware ingesters' labels
            # `rollout-group: ingester`, `name: ingester-zone-<x>` and the anti-affinity
            # `rollout-group In [ingester]`, `zone NotIn [<own zone>]` (so Loki's ingesters must
            # use another group, eks_loki.py); statefulset-ingester.yaml sets `updateStrategy:
            # OnDelete` with zone awareness, so the rollout-operator restarts one zone at a time.
            "zoneAwareReplication": {"enabled": True, "topologyKey": ZONE_KEY, "zones": zones},
            "podDisruptionBudget": {"enabled": True},
        },
        # This chart's topologySpreadConstraints is a template string, not a list.
        "distributor": {"topologySpreadConstraints": json.dumps(spread(chart_pods(RELEASE, "distributor")))},
        "querier": {},
        "queryFrontend": {},
        "compactor": {"config": {"compaction": tempo.compaction_block(cfg)}},
        # Metrics through the operator (eks_monitoring.py).
        "metaMonitoring": {"serviceMonitor": eks_monitoring.chart_service_monitor(cfg)},
        "gateway": {"enabled": False},
        # Installed by the Loki release when Loki is deployed too; it manages this group as well.
        "rollout_operator": {"enabled": rollout_operator_release(cfg) == RELEASE},
        "memcached": {},
    }
    # Replicas (the project's own counts, more where the load needs them), requests and limits from
    # aws.sizing.tracesGbPerDay (core/sizing.py: Tempo's sizing guide).
    for component, size in sizing.tempo(cfg.aws.sizing.traces_gb_per_day).items():
        out[component].update({"replicas": size.replicas, "resources": size.resources()})
    return out


def deploy(ctx: EksContext, identity: ToolIdentity, bucket: ToolBucket) -> dict[str, str]:
    ctx.chart(RELEASE, "tempo-chart", values(ctx.cfg, irsa_annotations(identity, SERVICE_ACCOUNT)), [bucket, identity, *operator_release(ctx)],
              accounts=(SERVICE_ACCOUNT,))
    return {
        "otlpGrpc": f"tempo-distributor.{ctx.svc}:{tempo.OTLP_GRPC_PORT}",
        "otlpHttp": f"http://tempo-distributor.{ctx.svc}:{tempo.OTLP_HTTP_PORT}",
        "tempo": f"http://tempo-query-frontend.{ctx.svc}:{tempo.HTTP_PORT}",
    }
