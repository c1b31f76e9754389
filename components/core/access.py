"""Who touches which bucket, and with exactly which S3 actions: pure data, shared by the identity
backends (IAM roles, MinIO policies) and the Kubernetes workloads (service account names).

A tool whose components run under separate service accounts gets one grant per account, each
with the fewest actions that component needs (the Thanos store gateway only reads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from components.core.config import StackConfig

READ = ("s3:ListBucket", "s3:GetObject")
WRITE = READ + ("s3:PutObject",)
READ_WRITE_DELETE = WRITE + ("s3:DeleteObject",)
# Tempo tags objects it writes and reads the tags back.
TEMPO = READ_WRITE_DELETE + ("s3:GetObjectTagging", "s3:PutObjectTagging")

# The service account a Thanos spoke's sidecar runs under (kube-prometheus-stack's Prometheus).
SPOKE_SERVICE_ACCOUNT = "prometheus"

KMS_WRITE = ("kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt")
KMS_READ = ("kms:Decrypt",)


@dataclass(frozen=True)
class Grant:
    """One service account's access to its tool's bucket."""

    tool: str
    service_account: str
    actions: tuple[str, ...]
    purpose: str

    @property
    def writes(self) -> bool:
        return "s3:PutObject" in self.actions


def grants(cfg: StackConfig) -> list[Grant]:
    """Every grant for the stack's enabled tools."""
    enabled = cfg.tools.enabled()
    if cfg.aws is not None and cfg.aws.platform == "ec2":
        return _fleet_grants(enabled)
    out: list[Grant] = []
    if "loki" in enabled:
        # Each Loki component that touches the bucket has its own service account (the chart's
        # <component>.serviceAccount, components/eks/loki.py); only the compactor deletes.
        out.append(Grant("loki", "loki-ingester", WRITE, "ingesters flush chunks and index files"))
        out.append(Grant("loki", "loki-querier", READ, "queriers read chunks and index (read-only)"))
        out.append(Grant("loki", "loki-index-gateway", READ, "index gateways serve the index (read-only)"))
        out.append(Grant("loki", "loki-compactor", READ_WRITE_DELETE, "index compaction, retention and delete requests"))
    if "tempo" in enabled:
        out.append(Grant("tempo", "tempo", TEMPO, "ingesters flush blocks, compactor applies retention"))
    if "thanos" in enabled and not enabled["thanos"].owns_bucket:
        # A spoke uploads to its hub's bucket and never deletes there: the hub's compactor alone
        # rewrites and deletes blocks. Remote-writing to the hub's Receive needs no bucket access.
        if enabled["thanos"].mode == "sidecar":
            out.append(Grant("thanos", SPOKE_SERVICE_ACCOUNT, WRITE, "Thanos sidecar uploads 2h blocks to the hub's bucket"))
    elif "thanos" in enabled:
        out.append(Grant("thanos", "thanos-compact", READ_WRITE_DELETE, "compaction, downsampling, retention"))
        out.append(Grant("thanos", "thanos-store", READ, "store gateway serves history (read-only)"))
        if enabled["thanos"].mode == "sidecar":
            out.append(Grant("thanos", "prometheus", WRITE, "Thanos sidecar uploads 2h blocks"))
        else:
            out.append(Grant("thanos", "thanos-receive", WRITE, "Receive uploads 2h blocks"))
    return out


def _fleet_grants(enabled: dict) -> list[Grant]:
    """aws.platform ec2: one grant per fleet family (components/ec2/topology.py), each fleet's
    instance role. Loki runs as one process (-target=all) per instance, so its fleet needs what
    its ingester, querier and compactor need together."""
    out = []
    if "loki" in enabled:
        out.append(Grant("loki", "loki", READ_WRITE_DELETE, "single-binary Loki: ingester flushes, querier reads, compactor retention"))
    if "tempo" in enabled:
        out.append(Grant("tempo", "tempo", TEMPO, "ingesters flush blocks, compactor applies retention"))
    if "thanos" in enabled:
        out.append(Grant("thanos", "thanos-compact", READ_WRITE_DELETE, "compaction, downsampling, retention"))
        out.append(Grant("thanos", "thanos-store", READ, "store gateway serves history (read-only)"))
        out.append(Grant("thanos", "thanos-receive", WRITE, "Receive uploads 2h blocks"))
    return out


def bucket_policy_document(bucket_arn: str, prefix: str, actions: tuple[str, ...], kms_key_arn: Optional[str] = None) -> str:
    """An IAM/MinIO policy limited to one bucket (and its prefix), with exactly `actions`."""
    bucket_actions = sorted(a for a in actions if a == "s3:ListBucket")
    object_actions = sorted(a for a in actions if a != "s3:ListBucket")
    statements: list[dict] = []
    if bucket_actions:
        listing: dict = {"Sid": "ListOwnBucket", "Effect": "Allow", "Action": bucket_actions, "Resource": [bucket_arn]}
        if prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
        statements.append(listing)
    if object_actions:
        statements.append({"Sid": "ObjectsInOwnBucket", "Effect": "Allow", "Action": object_actions, "Resource": [f"{bucket_arn}/{prefix}*"]})
    if kms_key_arn:
        kms = KMS_WRITE if "s3:PutObject" in actions else KMS_READ
        statements.append({"Sid": "UseBucketKey", "Effect": "Allow", "Action": sorted(kms), "Resource": [kms_key_arn]})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
