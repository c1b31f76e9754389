"""Tempo 2.10 configuration (single binary on Docker/Swarm; the storage and retention blocks go
into the tempo-distributed chart on Kubernetes). Keys checked against tests/upstream/tempo-2.10.keys."""

from __future__ import annotations

from typing import Any

from components.config import StackConfig
from components.renderers import Cluster, ObjectStore, hours

HTTP_PORT = 3200
GRPC_PORT = 9095
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
MEMBERLIST_PORT = 7946
DATA_DIR = "/var/tempo"


def s3_block(store: ObjectStore) -> dict[str, Any]:
    block: dict[str, Any] = {
        "bucket": store.bucket,
        "region": store.region,
        # Tempo needs an endpoint even on AWS.
        "endpoint": store.endpoint or f"s3.{store.region}.amazonaws.com",
        "forcepathstyle": store.path_style,
        "insecure": not store.tls,
    }
    if store.prefix:
        block["prefix"] = store.prefix.rstrip("/")
    if store.kms_key_arn:
        block["sse"] = {"type": "SSE-KMS", "kms_key_id": store.kms_key_arn}
    return block


def storage_block(store: ObjectStore) -> dict[str, Any]:
    return {
        "trace": {
            "backend": "s3",
            "s3": s3_block(store),
            "wal": {"path": f"{DATA_DIR}/wal"},
            "local": {"path": f"{DATA_DIR}/blocks"},
        }
    }


def compaction_block(cfg: StackConfig) -> dict[str, Any]:
    tempo = cfg.tools.tempo
    return {"block_retention": hours(tempo.retention_days), "compacted_block_retention": f"{tempo.delete_delay_hours}h"}


def render(cfg: StackConfig, store: ObjectStore, cluster: Cluster) -> dict[str, Any]:
    ring_store = "memberlist" if cluster.join_members else "inmemory"
    config: dict[str, Any] = {
        "multitenancy_enabled": cfg.multi_tenant,
        "usage_report": {"reporting_enabled": False},
        "server": {"http_listen_port": HTTP_PORT, "grpc_listen_port": GRPC_PORT},
        "distributor": {
            # Receivers listen on localhost unless told otherwise; containers need all interfaces.
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"}, "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"}}}}
        },
        "ingester": {
            "lifecycler": {"ring": {"replication_factor": cluster.replication_factor, "kvstore": {"store": ring_store}}},
            "max_block_duration": "30m",
        },
        "compactor": {"compaction": compaction_block(cfg)},
        "storage": storage_block(store),
    }
    if cluster.interface:
        config["ingester"]["lifecycler"]["interface_names"] = [cluster.interface]
    if cluster.join_members:
        config["memberlist"] = {"join_members": list(cluster.join_members), "bind_port": MEMBERLIST_PORT, "abort_if_cluster_join_fails": False}
        if cluster.advertise_env:
            config["memberlist"]["advertise_addr"] = f"${{{cluster.advertise_env}}}"
    return config
