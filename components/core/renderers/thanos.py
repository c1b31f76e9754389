"""Thanos v0.42: the objstore file and each component's arguments. Flags checked against
tests/upstream/thanos-0.42.flags, objstore keys against tests/upstream/thanos-objstore-s3.keys."""

from __future__ import annotations

from typing import Any

from components.core.config import StackConfig
from components.core.renderers import ObjectStore

GRPC_PORT = 10901
HTTP_PORT = 10902
RECEIVE_REMOTE_WRITE_PORT = 19291
OBJSTORE_FILE = "/etc/thanos/objstore.yaml"
REPLICA_LABEL = "replica"
# Label (Docker) or annotation (Kubernetes) naming the bucket a compactor compacts: the policy pack
# refuses a compactor for a bucket the stack does not own (one compactor per bucket).
COMPACTOR_BUCKET_LABEL = "obs-storage.thanos-bucket"
RECEIVE_REPLICA_LABEL = "receive_replica"


def objstore(store: ObjectStore) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bucket": store.bucket,
        "region": store.region,
        "endpoint": store.endpoint or f"s3.{store.region}.amazonaws.com",
        "insecure": not store.tls,
        "bucket_lookup_type": "path" if store.path_style else "virtual-hosted",
    }
    if store.aws_sdk_auth:
        # minio-go's default chain does not understand EKS Pod Identity; the AWS SDK chain does.
        config["aws_sdk_auth"] = True
    if store.kms_key_arn:
        config["sse_config"] = {"type": "SSE-KMS", "kms_key_id": store.kms_key_arn}
    out: dict[str, Any] = {"type": "S3", "config": config}
    if store.prefix:
        out["prefix"] = store.prefix.rstrip("/")
    return out


def _common(data_dir: str | None = None, grpc: bool = True) -> list[str]:
    args = ([f"--grpc-address=0.0.0.0:{GRPC_PORT}"] if grpc else []) + [f"--http-address=0.0.0.0:{HTTP_PORT}", "--log.level=info"]
    if data_dir:
        args.append(f"--data-dir={data_dir}")
    return args


def sidecar_args(prometheus_url: str, tsdb_path: str) -> list[str]:
    return ["sidecar", *_common(), f"--tsdb.path={tsdb_path}", f"--prometheus.url={prometheus_url}", f"--objstore.config-file={OBJSTORE_FILE}"]


def store_args(data_dir: str = "/var/thanos/store") -> list[str]:
    return ["store", *_common(data_dir), f"--objstore.config-file={OBJSTORE_FILE}"]


def query_args(endpoints: list[str]) -> list[str]:
    # --store was removed in v0.38; --endpoint takes its place.
    return [
        "query",
        *_common(),
        f"--query.replica-label={REPLICA_LABEL}",
        f"--query.replica-label={RECEIVE_REPLICA_LABEL}",
        *(f"--endpoint={e}" for e in endpoints),
    ]


def compact_args(cfg: StackConfig, data_dir: str = "/var/thanos/compact") -> list[str]:
    thanos = cfg.tools.thanos
    r = thanos.retention
    return [
        "compact",
        # The compactor serves HTTP only (metrics, readiness); it has no gRPC API.
        *_common(data_dir, grpc=False),
        f"--objstore.config-file={OBJSTORE_FILE}",
        # Run continuously; one compactor per bucket (and prefix) at a time.
        "--wait",
        f"--retention.resolution-raw={r.raw_days}d",
        f"--retention.resolution-5m={r.five_minute_days}d",
        f"--retention.resolution-1h={r.one_hour_days}d",
        f"--delete-delay={thanos.delete_delay_hours}h",
        f"--deduplication.replica-label={REPLICA_LABEL}",
        # Receive replicates every series to several replicas, each stamping its own label.
        *([f"--deduplication.replica-label={RECEIVE_REPLICA_LABEL}"] if thanos.mode == "receive" else []),
        # HA Prometheus replicas scrape at different instants; the 1:1 merger would interleave
        # their samples for good. The penalty algorithm is the one built for HA pairs.
        "--deduplication.func=penalty",
    ]


def receive_args(cfg: StackConfig, replica_name: str, local_endpoint: str, hashrings_file: str, data_dir: str = "/var/thanos/receive") -> list[str]:
    return [
        "receive",
        *_common(),
        f"--tsdb.path={data_dir}",
        f"--objstore.config-file={OBJSTORE_FILE}",
        f"--remote-write.address=0.0.0.0:{RECEIVE_REMOTE_WRITE_PORT}",
        f"--receive.replication-factor={cfg.tools.thanos.receive_replication_factor}",
        f"--receive.local-endpoint={local_endpoint}",
        f"--receive.hashrings-file={hashrings_file}",
        f'--label={RECEIVE_REPLICA_LABEL}="{replica_name}"',
        "--tsdb.retention=1d",
    ]
