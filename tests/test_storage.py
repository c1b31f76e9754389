"""Each enabled tool's bucket carries the hardening its target allows (whole program, mocks)."""

from __future__ import annotations

import pytest

from tests.conftest import policy_of, tool_overrides

TOOLS = ("loki", "tempo", "thanos")


def by_name(result, typ):
    return {r.name: r for r in result.by_type(typ)}


@pytest.mark.parametrize("tool", TOOLS)
def test_aws_bucket_is_hardened(plan, tool):
    result = plan("staging")
    bucket = result.one("aws:s3/bucket:Bucket", f"{tool}-bucket")
    name = bucket.inputs["bucket"]
    assert bucket.protect, f"{bucket.urn} must be protected"
    assert bucket.inputs["forceDestroy"] is False

    pab = result.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{tool}-public-access-block")
    flags = {k: pab.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")}
    assert flags == dict.fromkeys(flags, True) and pab.inputs["bucket"] == name, pab.urn

    ownership = result.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"{tool}-ownership")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, ownership.urn

    sse = result.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", f"{tool}-encryption")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256", sse.urn

    policy = policy_of(result.one("aws:s3/bucketPolicy:BucketPolicy", f"{tool}-tls-only"))
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(statement["Resource"]) == sorted([f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"])


@pytest.mark.parametrize("tool", TOOLS)
def test_aws_lifecycle_aborts_multipart_and_never_expires_whole_bucket(plan, tool):
    result = plan("staging")
    rules = result.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{tool}-lifecycle").inputs["rules"]
    abort = [r for r in rules if "abortIncompleteMultipartUpload" in r]
    assert abort and abort[0]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1} and abort[0]["filter"] == {"prefix": ""}
    for rule in rules:
        for transition in rule.get("transitions", []):
            assert transition["storageClass"] in ("STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR"), rule
        # An expiration with days deletes data; ExpiredObjectDeleteMarker only drops markers that
        # hide no version any more.
        if rule.get("expiration", {}).get("days") and tool in ("loki", "tempo"):
            # Loki's single-tenant id is "fake", Tempo's "single-tenant".
            expected = {"loki": "fake/", "tempo": "single-tenant/"}[tool]
            assert rule["filter"]["prefix"] == expected, f"{tool} expiration must be scoped to its tenant prefix: {rule}"


def test_loki_rules_follow_tenants(plan_with):
    result = plan_with("staging", {"obs-storage:tenants": ["team-a", "team-b"]})
    rules = result.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "loki-lifecycle").inputs["rules"]
    expiring = [r for r in rules if r.get("expiration", {}).get("days")]
    assert sorted(r["filter"]["prefix"] for r in expiring) == ["team-a/", "team-b/"]
    assert all(r["expiration"]["days"] == 35 for r in expiring)


def test_thanos_safety_net_is_above_longest_retention(plan):
    rules = plan("staging").one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "thanos-lifecycle").inputs["rules"]
    (data,) = [r for r in rules if r.get("expiration", {}).get("days")]
    assert data["expiration"]["days"] * 24 > 395 * 24 + 48


def test_kms_key_switches_default_encryption(plan_with):
    key = "arn:aws:kms:ap-northeast-2:123456789012:key/11111111-2222-3333-4444-555555555555"
    result = plan_with("staging", {"obs-storage:storage": {"region": "ap-northeast-2", "kmsKeyArn": key}})
    sse = result.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "loki-encryption")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key}


def test_disabled_tool_gets_no_bucket(plan_with):
    result = plan_with("staging", tool_overrides("staging", tempo={"enabled": False}))
    assert "tempo-bucket" not in by_name(result, "aws:s3/bucket:Bucket")
    assert "tempo" not in result.outputs["buckets"]


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_s3_compatible_buckets_are_private(plan, stack):
    result = plan(stack)
    buckets = by_name(result, "minio:index/s3Bucket:S3Bucket")
    assert set(buckets) == {f"{t}-bucket" for t in TOOLS}
    for bucket in buckets.values():
        assert bucket.inputs["acl"] == "private", bucket.urn


def test_local_ilm_scopes_loki_and_tempo_to_tenant_prefixes(plan):
    result = plan("local")
    for tool, prefix in (("loki", "fake/"), ("tempo", "single-tenant/")):
        rules = result.one("minio:index/ilmPolicy:IlmPolicy", f"{tool}-lifecycle").inputs["rules"]
        expiring = [r for r in rules if "expiration" in r]
        assert expiring and all(r.get("filter") == prefix for r in expiring), rules


def test_prod_relies_on_tool_retention_and_says_so(plan):
    result = plan("prod")
    assert not result.by_type("minio:index/ilmPolicy:IlmPolicy")
    assert not result.by_type("minio:index/s3BucketVersioning:S3BucketVersioning")
    for tool in TOOLS:
        notes = " ".join(result.outputs["buckets"][tool]["lifecycle"])
        assert "tool's own retention is the only one" in notes


def test_outputs_name_endpoint_region_and_arn(plan):
    staging = plan("staging").outputs["buckets"]["loki"]
    assert staging["arn"] == f"arn:aws:s3:::{staging['name']}" and staging["region"] == "ap-northeast-2"
    prod = plan("prod").outputs["buckets"]["thanos"]
    assert prod["endpoint"] == "fsn1.your-objectstorage.com" and "arn" not in prod
