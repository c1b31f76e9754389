"""Test-only: apply an offline plan (`python -m tools.plan --json`) to a real S3/IAM server.

Works from resource types and their inputs, the way each provider turns them into API calls, so
whatever the program declares (and nothing it does not) reaches the server:

- pulumi-minio 0.17.1 bridges terraform-provider-minio v1.20.1 (aminueza/terraform-provider-minio,
  minio/resource_minio_ilm_policy.go): each `rules[]` entry becomes an S3 lifecycle rule with
  `Filter.Prefix = filter` (empty when unset), `Status = Enabled`, `expiration = "<N>d"` as
  `Expiration.Days = N` and `noncurrentVersionExpirationDays` as
  `NoncurrentVersionExpiration.NoncurrentDays`. `IamPolicy` is a named policy, attached to the
  user by `IamUserPolicyAttachment`. MinIO makes the user name the access key; SeaweedFS hands
  out its own access keys, so the keys are returned per user instead.
- pulumi-aws: each S3 companion resource (`BucketPublicAccessBlock`, `BucketOwnershipControls`,
  `BucketServerSideEncryptionConfiguration`, `BucketPolicy`, `BucketVersioning`,
  `BucketLifecycleConfiguration`) is one S3 API call; `iam.Role` / `iam.RolePolicy` are
  CreateRole / PutRolePolicy.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Optional

MINIO_BUCKET = "minio:index/s3Bucket:S3Bucket"
MINIO_VERSIONING = "minio:index/s3BucketVersioning:S3BucketVersioning"
MINIO_ILM = "minio:index/ilmPolicy:IlmPolicy"
MINIO_USER = "minio:index/iamUser:IamUser"
MINIO_POLICY = "minio:index/iamPolicy:IamPolicy"
MINIO_ATTACHMENT = "minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment"

AWS_BUCKET = "aws:s3/bucket:Bucket"
AWS_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
AWS_OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
AWS_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
AWS_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
AWS_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
AWS_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
AWS_ROLE = "aws:iam/role:Role"
AWS_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

# Inputs edited by a test before applying (to break one document or rule on purpose).
Edit = Callable[[dict[str, Any]], None]


def resources(plan: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == type_]


def _in_order(plan: dict[str, Any], order: list[str]) -> list[dict[str, Any]]:
    return [r for t in order for r in resources(plan, t)]


# ---------------------------------------------------------------- MinIO provider -> S3/IAM API
def minio_lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ID": rule["id"], "Status": "Enabled", "Filter": {"Prefix": rule.get("filter", "")}}
    if rule.get("expiration"):
        match = re.fullmatch(r"(\d+)d", rule["expiration"])
        assert match, f"only '<N>d' expirations are modelled here, got {rule['expiration']!r}"
        out["Expiration"] = {"Days": int(match.group(1))}
    if rule.get("noncurrentVersionExpirationDays"):
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["noncurrentVersionExpirationDays"])}
    return out


def apply_minio(plan: dict[str, Any], s3, iam, edit: Optional[Edit] = None) -> dict[str, tuple[str, str]]:
    """Create the plan's MinIO/Hetzner buckets, versioning, ILM rules, users and policies.

    Returns {user name: (access key, secret key)}.
    """
    keys: dict[str, tuple[str, str]] = {}
    policy_arns: dict[str, str] = {}
    order = [MINIO_BUCKET, MINIO_VERSIONING, MINIO_ILM, MINIO_USER, MINIO_POLICY, MINIO_ATTACHMENT]
    for resource in _in_order(plan, order):
        inputs = json.loads(json.dumps(resource["inputs"]))
        if edit:
            edit(resource | {"inputs": inputs})
        t = resource["type"]
        if t == MINIO_BUCKET:
            assert inputs.get("acl", "private") == "private", resource["urn"]
            s3.create_bucket(Bucket=inputs["bucket"])
        elif t == MINIO_VERSIONING:
            s3.put_bucket_versioning(Bucket=inputs["bucket"], VersioningConfiguration={"Status": inputs["versioningConfiguration"]["status"]})
        elif t == MINIO_ILM:
            rules = [minio_lifecycle_rule(r) for r in inputs["rules"]]
            s3.put_bucket_lifecycle_configuration(Bucket=inputs["bucket"], LifecycleConfiguration={"Rules": rules})
        elif t == MINIO_USER:
            iam.create_user(UserName=inputs["name"])
            key = iam.create_access_key(UserName=inputs["name"])["AccessKey"]
            keys[inputs["name"]] = (key["AccessKeyId"], key["SecretAccessKey"])
        elif t == MINIO_POLICY:
            policy_arns[inputs["name"]] = iam.create_policy(PolicyName=inputs["name"], PolicyDocument=inputs["policy"])["Policy"]["Arn"]
        elif t == MINIO_ATTACHMENT:
            iam.attach_user_policy(UserName=inputs["userName"], PolicyArn=policy_arns[inputs["policyName"]])
    return keys


# ---------------------------------------------------------------- AWS provider -> S3/IAM API
def _camel_to_pascal(value: Any) -> Any:
    """pulumi-aws input names (camelCase) to the S3 API's member names (PascalCase)."""
    special = {"sseAlgorithm": "SSEAlgorithm", "kmsMasterKeyId": "KMSMasterKeyID", "id": "ID"}
    if isinstance(value, dict):
        return {special.get(k, k[:1].upper() + k[1:]): _camel_to_pascal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_to_pascal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def apply_aws(plan: dict[str, Any], s3, iam, edit: Optional[Edit] = None) -> None:
    order = [AWS_BUCKET, AWS_PUBLIC_ACCESS_BLOCK, AWS_OWNERSHIP, AWS_ENCRYPTION, AWS_POLICY, AWS_VERSIONING, AWS_LIFECYCLE, AWS_ROLE, AWS_ROLE_POLICY]
    region = s3.meta.region_name
    for resource in _in_order(plan, order):
        inputs = json.loads(json.dumps(resource["inputs"]))
        if edit:
            edit(resource | {"inputs": inputs})
        t, bucket = resource["type"], inputs.get("bucket")
        if t == AWS_BUCKET:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        elif t == AWS_PUBLIC_ACCESS_BLOCK:
            flags = {k: inputs[k[:1].lower() + k[1:]] for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=flags)
        elif t == AWS_OWNERSHIP:
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [_camel_to_pascal(inputs["rule"])]})
        elif t == AWS_ENCRYPTION:
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": _camel_to_pascal(inputs["rules"])})
        elif t == AWS_POLICY:
            s3.put_bucket_policy(Bucket=bucket, Policy=inputs["policy"])
        elif t == AWS_VERSIONING:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=_camel_to_pascal(inputs["versioningConfiguration"]))
        elif t == AWS_LIFECYCLE:
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": _camel_to_pascal(inputs["rules"])})
        elif t == AWS_ROLE:
            iam.create_role(RoleName=inputs["name"], AssumeRolePolicyDocument=inputs["assumeRolePolicy"], Description=inputs.get("description", ""))
        elif t == AWS_ROLE_POLICY:
            # The plan passes the role's id, which for aws.iam.Role is its name.
            iam.put_role_policy(RoleName=inputs["role"], PolicyName=resource["name"], PolicyDocument=inputs["policy"])
