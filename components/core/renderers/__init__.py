"""Tool configuration files, built as Python data and dumped once: one renderer per tool.

Every renderer is shared by the local Docker stack, the Swarm stack and (through chart values)
Kubernetes. What differs between platforms is passed in as parameters, never copied:
`ObjectStore` (endpoint, addressing, TLS, auth) and `Cluster` (replication and discovery).
Credentials never appear in a rendered file: tools read them from the platform (IRSA/Pod
Identity) or from a shared-credentials file named by AWS_SHARED_CREDENTIALS_FILE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import yaml

from components.core.config import StackConfig


@dataclass(frozen=True)
class ObjectStore:
    bucket: str
    prefix: str
    region: str
    # host[:port]; None on AWS, where the SDKs derive the regional endpoint themselves.
    endpoint: Optional[str]
    path_style: bool
    tls: bool
    kms_key_arn: Optional[str] = None
    # Thanos only: use the AWS SDK credential chain (needed for EKS Pod Identity).
    aws_sdk_auth: bool = False
    # Not AWS: S3-compatible stores reject the newer SDKs' default request checksums. No default:
    # whoever builds a store says which it is (a Hetzner store built as AWS would fail its uploads).
    s3_compatible: bool = field(kw_only=True)


@dataclass(frozen=True)
class Cluster:
    """How replicas of one tool find each other."""

    replicas: int = 1
    replication_factor: int = 1
    # Where the rings live: "inmemory" for a single instance, "etcd" for replicas on several
    # Swarm nodes (components/docker/swarm.py says why not memberlist there).
    kvstore: str = "inmemory"
    etcd_endpoints: tuple[str, ...] = ()
    # Network interface whose address each replica registers in the rings; None = the default.
    interface: Optional[str] = None
    # "memberlist" (EC2 fleets): the members' gossip joins these (dskit `dns+name:port`: every A
    # record of the name), and each member registers `address` (e.g. ${INSTANCE_IP}, expanded by
    # -config.expand-env=true) in the rings and as its gossip address.
    join_members: tuple[str, ...] = ()
    address: Optional[str] = None


def memberlist_block(cluster: Cluster) -> dict[str, Any]:
    """The top-level `memberlist` section of Loki and Tempo (dskit kv/memberlist)."""
    block: dict[str, Any] = {
        "join_members": list(cluster.join_members),
        # The first member of a new fleet finds nobody; it must start and wait for the others.
        "abort_if_cluster_join_fails": False,
    }
    if cluster.address:
        block["advertise_addr"] = cluster.address
    return block


def object_store(cfg: StackConfig, tool: str, aws_sdk_auth: bool = False) -> ObjectStore:
    """The bucket coordinates a tool's config file needs, on every platform."""
    s = cfg.storage
    tool_cfg = cfg.tools.enabled()[tool]
    if tool == "thanos" and not cfg.tools.thanos.owns_bucket:
        # A spoke writes to its hub's bucket, with the hub's coordinates (components/core/thanos_topology.py).
        return cfg.tools.thanos.hub_bucket.object_store(aws_sdk_auth)
    return ObjectStore(
        bucket=tool_cfg.bucket,
        prefix=tool_cfg.prefix,
        region=s.region,
        endpoint=None if cfg.target.value == "aws" else s.endpoint,
        path_style=bool(s.path_style),
        tls=bool(s.tls),
        kms_key_arn=s.kms_key_arn,
        aws_sdk_auth=aws_sdk_auth,
        s3_compatible=cfg.target.value != "aws",
    )


def ring_kvstore(cluster: Cluster, tool: str) -> dict[str, Any]:
    """A dskit `kvstore` block. Loki and Tempo share one etcd, so each keeps its own key prefix
    (dskit kv.Config `prefix`, default "collectors/": both tools would write the key "ring")."""
    if cluster.kvstore == "etcd":
        return {"store": "etcd", "prefix": f"{tool}/collectors/", "etcd": {"endpoints": list(cluster.etcd_endpoints)}}
    return {"store": cluster.kvstore}


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def hours(days: int, extra_hours: int = 0) -> str:
    return f"{days * 24 + extra_hours}h"


CHECKSUM_ENV = {
    # Only calculate/validate S3 checksums where the API requires them: S3-compatible stores
    # reject the aws-chunked trailing checksums newer AWS SDKs send by default
    # (grafana/loki#21926). Harmless on AWS, so set wherever the store is not AWS.
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}
