"""Tempo 2.10 configuration (single binary on Docker/Swarm; the storage and retention blocks go
into the tempo-distributed chart on Kubernetes). Keys checked against tests/upstream/tempo-2.10.keys."""

from __future__ import annotations

from typing import Any

from components.core.config import StackConfig
from components.core.renderers import Cluster, ObjectStore, hours, memberlist_block, ring_kvstore
from components.core.renderers.loki import ring_readiness

HTTP_PORT = 3200
GRPC_PORT = 9095
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
DATA_DIR = "/var/tempo"
# Tempo reports anonymous usage to Grafana Labs by default and, to do so, keeps a seed object in the
# bucket (usage_report.reporting_enabled, default true). Off on every target: the Docker targets
# render it into the config below, the tempo-distributed chart takes it as `reportingEnabled`.
USAGE_REPORT = {"reporting_enabled": False}


# How long an ingester appends to its head block before cutting it and uploading it (Tempo's
# default 30m, modules/ingester/config.go at v2.10.8). Replicated ingesters cut every 5 minutes:
# a distributor acknowledges a trace once two of three ingesters took it, so about a third of
# the traces have two copies, and when one of those ingesters rejoins the ring without its copy
# (its live traces or its whole volume lost with its node), a query that hears the first two of
# three ingesters finds the trace only when the one holding it answers in time, until that one's
# block is in the bucket (docs/hetzner-swarm.md, "Tempo after a node loss": the mechanism, the
# citations, the measured runs). The cost: up to six times as many, smaller blocks to compact.
MAX_BLOCK_DURATION = "30m"
REPLICATED_MAX_BLOCK_DURATION = "5m"


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
    kvstore = ring_kvstore(cluster, "tempo")
    config: dict[str, Any] = {
        "multitenancy_enabled": cfg.multi_tenant,
        "usage_report": dict(USAGE_REPORT),
        "server": {"http_listen_port": HTTP_PORT, "grpc_listen_port": GRPC_PORT},
        "distributor": {
            # Receivers listen on localhost unless told otherwise; containers need all interfaces.
            "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"}, "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"}}}}
        },
        "ingester": {
            "lifecycler": {"ring": {"replication_factor": cluster.replication_factor, "kvstore": kvstore}},
            "max_block_duration": REPLICATED_MAX_BLOCK_DURATION if cluster.replicas > 1 else MAX_BLOCK_DURATION,
            # A stopped task may restart on another node without its volume: cut and flush every
            # block on shutdown (default false, modules/ingester/config.go), within the stop grace period.
            "flush_all_on_shutdown": True,
        },
        "compactor": {"compaction": compaction_block(cfg)},
        "storage": storage_block(store),
    }
    if cluster.replicas > 1:
        # Every replica runs a compactor, and without a ring each one compacts every block. A
        # compactor ring in a real KV store shards the work
        # (modules/compactor/compactor.go isSharded: store not "" and not "inmemory").
        config["compactor"]["ring"] = {"kvstore": kvstore}
        # The distributor ring (memberlist by default, modules/distributor/config.go) is read only
        # by the global rate-limit strategy; in the shared store it stays correct if that is used.
        config["distributor"]["ring"] = {"kvstore": kvstore}
        # The scalable single binary's querier does not find its own query-frontend by itself
        # (cmd/tempo/app/modules.go initQuerier: "frontend worker address not specified").
        config["querier"] = {"frontend_worker": {"frontend_address": f"127.0.0.1:{GRPC_PORT}"}}
        if cluster.kvstore in ("etcd", "memberlist"):
            # The same dskit lifecycler as Loki's (see loki.ring_readiness for why and its cost).
            # On fleets (memberlist) too: a lost instance never comes back under its name, and
            # Tempo 2.10's ingester has no autoforget, so with the default its entry would keep
            # every replacement unready until someone forgot it by hand.
            config["ingester"]["lifecycler"].update(ring_readiness())
    if cluster.address:
        # Every ring member registers this address (compactor: RingConfig.InstanceAddr, hidden in
        # the docs; grafana/tempo modules/compactor/compactor_ring.go).
        config["ingester"]["lifecycler"]["address"] = cluster.address
        for ring in ("compactor", "distributor"):
            if "ring" in config[ring]:
                config[ring]["ring"]["instance_addr"] = cluster.address
    if cluster.kvstore == "memberlist":
        config["memberlist"] = memberlist_block(cluster)
    if cluster.interface:
        config["ingester"]["lifecycler"]["interface_names"] = [cluster.interface]
        for ring in ("compactor", "distributor"):
            if "ring" in config[ring]:
                config[ring]["ring"]["instance_interface_names"] = [cluster.interface]
    return config
