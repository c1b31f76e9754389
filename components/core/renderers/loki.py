"""Loki 3.7 configuration (single binary on Docker/Swarm; the same sections go into the chart's
`loki.structuredConfig` on Kubernetes). Keys checked against tests/upstream/loki-3.7.keys."""

from __future__ import annotations

from typing import Any

from components.core.config import StackConfig
from components.core.renderers import Cluster, ObjectStore, hours, memberlist_block, ring_kvstore

HTTP_PORT = 3100
GRPC_PORT = 9095
DATA_DIR = "/loki"
# Day the v13/tsdb schema starts; data before it does not exist for a new install.
SCHEMA_FROM = "2025-01-01"
# Usage reporting to Grafana Labs (default on) makes every component read, and the ingesters write, a
# seed object in the bucket. Off on every target (the chart's structuredConfig takes the same block).
ANALYTICS = {"reporting_enabled": False}


def s3_block(store: ObjectStore) -> dict[str, Any]:
    block: dict[str, Any] = {"bucketnames": store.bucket, "region": store.region, "s3forcepathstyle": store.path_style, "insecure": not store.tls}
    if store.endpoint:
        block["endpoint"] = store.endpoint
    if store.kms_key_arn:
        block["sse"] = {"type": "SSE-KMS", "kms_key_id": store.kms_key_arn}
    return block


def storage_sections(cfg: StackConfig, store: ObjectStore, data_dir: str = DATA_DIR) -> dict[str, Any]:
    """Schema, storage, compactor and limits: what makes Loki keep its data in the bucket.

    `data_dir` must be a writable volume: the image's /loki on Docker; the Helm chart runs with a
    read-only root filesystem and mounts its data volume at /var/loki instead."""
    loki = cfg.tools.loki
    return {
        "schema_config": {
            "configs": [
                {"from": SCHEMA_FROM, "store": "tsdb", "object_store": "s3", "schema": "v13", "index": {"prefix": "index_", "period": "24h"}}
            ]
        },
        "storage_config": {
            "aws": s3_block(store),
            "tsdb_shipper": {"active_index_directory": f"{data_dir}/tsdb-index", "cache_location": f"{data_dir}/tsdb-cache"},
        },
        "compactor": {
            "working_directory": f"{data_dir}/compactor",
            "compaction_interval": "10m",
            "retention_enabled": True,
            "retention_delete_delay": f"{loki.delete_delay_hours}h",
            # Loki refuses to start with retention on unless delete requests have a store.
            "delete_request_store": "s3",
        },
        "limits_config": {"retention_period": hours(loki.retention_days)},
    }


def tenant_overrides(cfg: StackConfig) -> dict[str, Any]:
    """Runtime overrides: each tenant's own limits (multi-tenant stacks only)."""
    retention = hours(cfg.tools.loki.retention_days)
    return {"overrides": {tenant: {"retention_period": retention} for tenant in cfg.tenants}}


def render(cfg: StackConfig, store: ObjectStore, cluster: Cluster, runtime_config_path: str = "/etc/loki/runtime.yaml") -> dict[str, Any]:
    common: dict[str, Any] = {
        "path_prefix": DATA_DIR,
        "replication_factor": cluster.replication_factor,
        # Applied to every ring of the single binary (pkg/loki/config_wrapper.go applyConfigToRings).
        "ring": {"kvstore": ring_kvstore(cluster, "loki")},
    }
    if cluster.interface:
        common["instance_interface_names"] = [cluster.interface]
    if cluster.address:
        # Applied to every ring of the single binary, like the interface names.
        common["instance_addr"] = cluster.address
    config: dict[str, Any] = {
        "auth_enabled": cfg.multi_tenant,
        "server": {"http_listen_port": HTTP_PORT, "grpc_listen_port": GRPC_PORT, "log_level": "info"},
        "common": common,
        "ingester": {
            # A stopped task may restart on another node without its volume: flush what only the
            # WAL holds before exiting (default false, pkg/ingester/wal.go), within the platform's
            # stop grace period.
            "wal": {"enabled": True, "dir": f"{DATA_DIR}/wal", "flush_on_shutdown": True},
        },
        **storage_sections(cfg, store),
        "analytics": dict(ANALYTICS),
    }
    if cluster.kvstore == "memberlist":
        config["memberlist"] = memberlist_block(cluster)
        # Fleet instances never come back under their old name: an ingester lost without a clean
        # stop stays in the ring, unhealthy, and keeps every new ingester unready
        # (readiness_check_ring_health) until forgotten. Loki forgets such ingesters itself with
        # this (pkg/ingester/ingester.go Config.AutoForgetUnhealthy; grafana/loki#8615).
        config["ingester"]["autoforget_unhealthy"] = True
    if cfg.multi_tenant:
        config["runtime_config"] = {"file": runtime_config_path}
    return config
