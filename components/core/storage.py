"""One tool's bucket, hardened, with its lifecycle rules; the storage backend is the platform seam.

- `AwsS3Backend`: S3 bucket with public access block (all four flags), BucketOwnerEnforced,
  default encryption (SSE-S3 or the configured KMS key), a TLS-only bucket policy, versioning and
  lifecycle rules.
- `S3CompatibleBackend`: MinIO (local) or Hetzner Object Storage through the MinIO provider:
  private bucket, versioning where enabled, ILM expiration rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Protocol

import pulumi

from components.core import lifecycle

# Each backend imports its provider SDK when it declares a bucket: a stack loads only the SDK of
# the target it runs on (every preview pays for imports).
if TYPE_CHECKING:
    import pulumi_aws as aws
    import pulumi_minio as minio


@dataclass(frozen=True)
class BucketSpec:
    tool: str
    bucket: str
    prefix: str
    lifecycle: lifecycle.LifecyclePlan
    versioning: bool
    # Buckets hold production data: `pulumi destroy` must not empty them by accident.
    protect: bool
    kms_key_arn: Optional[str] = None
    tags: Optional[dict[str, str]] = None
    # Roles in other AWS accounts (Thanos spokes) that may list, read and write, never delete.
    cross_account_writers: tuple[str, ...] = ()


@dataclass
class BucketOutputs:
    name: pulumi.Output[str]
    arn: Optional[pulumi.Output[str]]


class StorageBackend(Protocol):
    endpoint: str
    region: str
    path_style: bool
    tls: bool

    def declare(self, parent: pulumi.ComponentResource, name: str, spec: BucketSpec) -> BucketOutputs: ...


class ToolBucket(pulumi.ComponentResource):
    """A tool's bucket on the stack's storage backend. Outputs: name, endpoint, region, arn."""

    def __init__(self, name: str, spec: BucketSpec, backend: StorageBackend, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("obs:storage:ToolBucket", name, None, opts)
        self.spec = spec
        created = backend.declare(self, name, spec)
        self.bucket_name: pulumi.Output[str] = created.name
        self.arn: Optional[pulumi.Output[str]] = created.arn
        self.endpoint: str = backend.endpoint
        self.region: str = backend.region
        self.prefix: str = spec.prefix
        outputs = {"bucketName": self.bucket_name, "endpoint": self.endpoint, "region": self.region, "prefix": self.prefix}
        if self.arn is not None:
            outputs["arn"] = self.arn
        self.register_outputs(outputs)


class AwsS3Backend:
    def __init__(self, provider: aws.Provider, region: str, endpoint: str, path_style: bool = False, tls: bool = True):
        self.provider, self.region, self.endpoint, self.path_style, self.tls = provider, region, endpoint, path_style, tls

    def declare(self, parent: pulumi.ComponentResource, name: str, spec: BucketSpec) -> BucketOutputs:
        import pulumi_aws as aws

        child = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=spec.bucket,
            force_destroy=False,
            tags=spec.tags or None,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=spec.protect)),
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        sse = (
            {"sse_algorithm": "aws:kms", "kms_master_key_id": spec.kms_key_arn}
            if spec.kms_key_arn
            else {"sse_algorithm": "AES256"}
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": sse, "bucket_key_enabled": bool(spec.kms_key_arn)}],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: _bucket_policy(arn, spec)),
            opts=child,
        )
        depends: list[pulumi.Resource] = []
        if spec.versioning:
            depends.append(
                aws.s3.BucketVersioning(
                    f"{name}-versioning",
                    bucket=bucket.id,
                    versioning_configuration={"status": "Enabled"},
                    opts=child,
                )
            )
        if spec.lifecycle.rules:
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-lifecycle",
                bucket=bucket.id,
                rules=[_aws_rule(rule) for rule in spec.lifecycle.rules],
                # AWS applies noncurrent-version rules only once versioning is in place.
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends)),
            )
        return BucketOutputs(name=bucket.bucket, arn=bucket.arn)


def _bucket_policy(arn: str, spec: BucketSpec) -> str:
    statements: list[dict] = [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    if spec.cross_account_writers:
        # Another account's role needs the bucket's consent as well as its own role policy. The
        # principal is the account and the condition the exact role: a policy naming a role that
        # does not exist yet (the spoke is deployed after its hub) would be refused.
        accounts = sorted({f"arn:aws:iam::{role.split(':')[4]}:root" for role in spec.cross_account_writers})
        who = {"ArnEquals": {"aws:PrincipalArn": sorted(spec.cross_account_writers)}}
        listing: dict = {"Sid": "SpokesList", "Effect": "Allow", "Principal": {"AWS": accounts}, "Action": ["s3:ListBucket"],
                         "Resource": [arn], "Condition": who}
        if spec.prefix:
            listing["Condition"] = {**who, "StringLike": {"s3:prefix": [f"{spec.prefix}*"]}}
        statements.append(listing)
        statements.append({"Sid": "SpokesReadWrite", "Effect": "Allow", "Principal": {"AWS": accounts},
                           "Action": ["s3:GetObject", "s3:PutObject"], "Resource": [f"{arn}/{spec.prefix}*"], "Condition": who})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _aws_rule(rule: lifecycle.Rule) -> dict:
    out: dict = {"id": rule.id, "status": "Enabled", "filter": {"prefix": rule.prefix}}
    if rule.transitions:
        out["transitions"] = [{"days": days, "storage_class": cls} for days, cls in rule.transitions]
    if rule.expire_days:
        out["expiration"] = {"days": rule.expire_days}
    if rule.expired_delete_markers:
        assert not rule.expire_days, f"{rule.id}: S3 refuses Days and ExpiredObjectDeleteMarker in one Expiration"
        out["expiration"] = {"expired_object_delete_marker": True}
    if rule.abort_multipart_days:
        out["abort_incomplete_multipart_upload"] = {"days_after_initiation": rule.abort_multipart_days}
    if rule.noncurrent_days:
        out["noncurrent_version_expiration"] = {"noncurrent_days": rule.noncurrent_days}
    return out


class S3CompatibleBackend:
    """MinIO or Hetzner Object Storage, managed through the MinIO provider (S3 API)."""

    def __init__(self, provider: minio.Provider, region: str, endpoint: str, path_style: bool, tls: bool, supports_versioning: bool = True):
        self.provider, self.region, self.endpoint, self.path_style, self.tls = provider, region, endpoint, path_style, tls
        self.supports_versioning = supports_versioning

    def declare(self, parent: pulumi.ComponentResource, name: str, spec: BucketSpec) -> BucketOutputs:
        import pulumi_minio as minio

        child = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        bucket = minio.S3Bucket(
            f"{name}-bucket",
            bucket=spec.bucket,
            acl="private",
            # Unprotected buckets (the local stack) hold throwaway data: `make down` empties them.
            force_destroy=not spec.protect,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=spec.protect)),
        )
        depends: list[pulumi.Resource] = [bucket]
        if spec.versioning and self.supports_versioning:
            depends.append(
                minio.S3BucketVersioning(
                    f"{name}-versioning",
                    bucket=bucket.bucket,
                    versioning_configuration={"status": "Enabled"},
                    opts=child,
                )
            )
        ilm_rules = [_ilm_rule(rule) for rule in spec.lifecycle.rules if rule.expire_days or rule.noncurrent_days]
        if ilm_rules:
            minio.IlmPolicy(
                f"{name}-lifecycle",
                bucket=bucket.bucket,
                rules=ilm_rules,
                # Noncurrent-version rules need versioning enabled first.
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends)),
            )
        return BucketOutputs(name=bucket.bucket, arn=None)


def _ilm_rule(rule: lifecycle.Rule) -> dict:
    # No `status`: terraform-provider-minio v1.20.1 (bridged by pulumi-minio 0.17.1) computes it and
    # always writes "Enabled" (minio/resource_minio_ilm_policy.go); setting it fails the preview.
    out: dict = {"id": rule.id}
    if rule.prefix:
        out["filter"] = rule.prefix
    if rule.expire_days:
        out["expiration"] = f"{rule.expire_days}d"
    if rule.noncurrent_days:
        out["noncurrent_version_expiration_days"] = rule.noncurrent_days
    return out


def bucket_spec(cfg, tool: str) -> BucketSpec:
    tool_cfg = cfg.tools.enabled()[tool]
    return BucketSpec(
        tool=tool,
        bucket=tool_cfg.bucket,
        prefix=tool_cfg.prefix,
        lifecycle=lifecycle.plan(cfg, tool),
        versioning=bool(cfg.storage.versioning),
        protect=bool(cfg.storage.protect),
        kms_key_arn=cfg.storage.kms_key_arn,
        tags=dict(cfg.storage.tags) or None,
        cross_account_writers=_spoke_roles(cfg) if tool == "thanos" else (),
    )


def _spoke_roles(cfg) -> tuple[str, ...]:
    """Roles of Thanos spokes in other accounts: the role the spoke's own stack declares for its
    Prometheus service account (identity.AwsRoles names it config.role_name(stack, service account))."""
    from components.core.access import SPOKE_SERVICE_ACCOUNT
    from components.core.config import role_name

    return tuple(
        f"arn:aws:iam::{spoke.account}:role/{role_name(spoke.stack.rsplit('/', 1)[-1], SPOKE_SERVICE_ACCOUNT)}"
        for spoke in cfg.tools.thanos.spokes
        if spoke.account
    )
