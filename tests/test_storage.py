"""Each enabled tool's bucket carries the hardening its target allows (whole program, mocks)."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import policy_of, tool_overrides
from tools import engine

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


def configured(stack: str, tool: str) -> dict:
    """The tool's settings as the stack file writes them."""
    return yaml.safe_load(open(f"Pulumi.{stack}.yaml"))["config"]["obs-storage:tools"][tool]


def test_outputs_name_endpoint_region_and_prefix(plan):
    staging = plan("staging").outputs["buckets"]["loki"]
    assert (staging["name"], staging["region"], staging["prefix"]) == (configured("staging", "loki")["bucket"], "ap-northeast-2", "")
    # The SDKs derive the regional endpoint: s3.<region>.amazonaws.com.
    assert staging["endpoint"] == "s3.ap-northeast-2.amazonaws.com"
    prod = plan("prod").outputs["buckets"]["thanos"]
    assert prod["name"] == configured("prod", "thanos")["bucket"]
    assert prod["endpoint"] == "fsn1.your-objectstorage.com" and prod["region"] == "fsn1" and "arn" not in prod


def test_bucket_arn_is_the_one_the_provider_returns(monkeypatch):
    # In another partition (AWS China: arn:aws-cn:...) an ARN built by the program would be wrong;
    # outputs, the TLS-only policy and the tools' role policies must use the bucket's own.
    original = engine.StrictMocks.new_resource

    def china(self, args):
        rid, state = original(self, args)
        if args.typ == "aws:s3/bucket:Bucket":
            state = {**state, "arn": f"arn:aws-cn:s3:::{rid}"}
        return rid, state

    monkeypatch.setattr(engine.StrictMocks, "new_resource", china)
    result = engine.run("staging")
    name = configured("staging", "loki")["bucket"]
    arn = f"arn:aws-cn:s3:::{name}"
    assert result.outputs["buckets"]["loki"]["arn"] == arn
    (deny,) = policy_of(result.one("aws:s3/bucketPolicy:BucketPolicy", "loki-tls-only"))["Statement"][:1]
    assert deny["Resource"] == [arn, f"{arn}/*"]
    access = policy_of(result.one("aws:iam/rolePolicy:RolePolicy", "loki-ingester-bucket-access"))
    assert {r for s in access["Statement"] for r in s["Resource"]} == {arn, f"{arn}/*"}


def test_aws_rules_say_what_s3_does_with_each_object(plan):
    rules = {r["id"]: r for r in plan("staging").one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "thanos-lifecycle").inputs["rules"]}
    thanos = configured("staging", "thanos")
    (transition,) = thanos["transitions"]
    assert rules["thanos-data-all"] == {
        "id": "thanos-data-all", "status": "Enabled", "filter": {"prefix": thanos.get("prefix", "")},
        "transitions": [{"days": transition["days"], "storageClass": transition["storageClass"]}],
        "expiration": {"days": thanos["expireAfterDays"]},
    }
    assert rules["abort-incomplete-multipart"] == {"id": "abort-incomplete-multipart", "status": "Enabled", "filter": {"prefix": ""},
                                                   "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}}
    # storage.noncurrentVersionDays' default, 7.
    assert rules["expire-noncurrent-versions"] == {"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {"prefix": ""},
                                                   "noncurrentVersionExpiration": {"noncurrentDays": 7},
                                                   "expiration": {"expiredObjectDeleteMarker": True}}


def test_minio_ilm_rules_expire_in_days_under_the_tenant_prefix(plan):
    rules = plan("local").one("minio:index/ilmPolicy:IlmPolicy", "loki-lifecycle").inputs["rules"]
    # MinIO ILM takes an expiration as "<n>d"; a whole-bucket rule carries no filter.
    assert rules == [
        {"id": "expire-noncurrent-versions", "noncurrentVersionExpirationDays": 7},
        {"id": "loki-data-fake", "filter": "fake/", "expiration": f"{configured('local', 'loki')['expireAfterDays']}d"},
    ]


@pytest.mark.parametrize("stack, bucket, versioning, lifecycle", [
    ("staging", "aws:s3/bucket:Bucket", "aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"),
    ("local", "minio:index/s3Bucket:S3Bucket", "minio:index/s3BucketVersioning:S3BucketVersioning", "minio:index/ilmPolicy:IlmPolicy"),
])
def test_versioning_is_on_before_noncurrent_rules_apply(plan, stack, bucket, versioning, lifecycle):
    result = plan(stack)
    for tool in TOOLS:
        enabled = result.one(versioning, f"{tool}-versioning")
        assert enabled.inputs["versioningConfiguration"] == {"status": "Enabled"}
        assert enabled.inputs["bucket"] == result.one(bucket, f"{tool}-bucket").inputs["bucket"]
        assert enabled.urn in result.one(lifecycle, f"{tool}-lifecycle").depends_on, tool


def test_unversioned_buckets_get_no_versioning_and_no_noncurrent_rule(plan_with):
    result = plan_with("staging", {"obs-storage:storage": {"region": "ap-northeast-2", "versioning": False}})
    assert not result.by_type("aws:s3/bucketVersioning:BucketVersioning")
    rules = result.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "loki-lifecycle").inputs["rules"]
    assert [r["id"] for r in rules] == ["abort-incomplete-multipart", "loki-data-fake"]


def test_local_buckets_hold_throwaway_data_and_prod_buckets_are_kept(plan):
    for bucket in plan("local").by_type("minio:index/s3Bucket:S3Bucket"):
        assert (bucket.protect, bucket.inputs["forceDestroy"]) == (False, True), bucket.urn
    for bucket in plan("prod").by_type("minio:index/s3Bucket:S3Bucket"):
        assert (bucket.protect, bucket.inputs["forceDestroy"]) == (True, False), bucket.urn


def test_bucket_key_only_with_a_kms_key(plan, plan_with):
    def encryption(result):
        (rule,) = result.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "tempo-encryption").inputs["rules"]
        return rule

    assert encryption(plan("staging"))["bucketKeyEnabled"] is False
    key = "arn:aws:kms:ap-northeast-2:123456789012:key/11111111-2222-3333-4444-555555555555"
    # An S3 Bucket Key cuts the KMS requests SSE-KMS makes per object; with SSE-S3 it does nothing.
    assert encryption(plan_with("staging", {"obs-storage:storage": {"region": "ap-northeast-2", "kmsKeyArn": key}}))["bucketKeyEnabled"] is True


def test_storage_tags_reach_every_aws_bucket(plan, plan_with):
    tags = {"team": "observability", "cost-center": "42"}
    result = plan_with("staging", {"obs-storage:storage": {"region": "ap-northeast-2", "tags": tags}})
    for bucket in result.by_type("aws:s3/bucket:Bucket"):
        assert bucket.inputs["tags"] == tags, bucket.urn
    assert all("tags" not in b.inputs for b in plan("staging").by_type("aws:s3/bucket:Bucket"))


# ---------------------------------------------------------------- Thanos spokes in other AWS accounts
def thanos_spec(prefix: str = "", writers: tuple[str, ...] = ()):
    from components.core import lifecycle, storage

    return storage.BucketSpec(tool="thanos", bucket="acme-thanos", prefix=prefix, lifecycle=lifecycle.LifecyclePlan(),
                              versioning=False, protect=True, cross_account_writers=writers)


SPOKE_ROLE = "arn:aws:iam::210987654321:role/obs-staging-batch-prometheus"


@pytest.mark.parametrize("prefix", ["", "metrics/"])
def test_spokes_in_other_accounts_list_read_and_write_their_prefix_only(prefix):
    import json

    from components.core import storage

    arn = "arn:aws:s3:::acme-thanos"
    statements = {s["Sid"]: s for s in json.loads(storage._bucket_policy(arn, thanos_spec(prefix, (SPOKE_ROLE,))))["Statement"]}
    who = {"ArnEquals": {"aws:PrincipalArn": [SPOKE_ROLE]}}
    listing = statements["SpokesList"]
    assert listing["Principal"] == {"AWS": ["arn:aws:iam::210987654321:root"]} and listing["Resource"] == [arn]
    assert listing["Condition"] == ({**who, "StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else who)
    objects = statements["SpokesReadWrite"]
    assert objects["Action"] == ["s3:GetObject", "s3:PutObject"] and objects["Resource"] == [f"{arn}/{prefix}*"]
    assert objects["Condition"] == who
    assert set(statements) == {"DenyInsecureTransport", "SpokesList", "SpokesReadWrite"}


def test_spoke_roles_are_named_as_the_spokes_own_stack_names_them():
    import json

    from components.core import config, loading, storage

    def hub_with(batch_stack: str) -> config.StackConfig:
        spokes = [{"stack": f"organization/obs-storage/{batch_stack}", "clusterLabel": "batch", "account": "210987654321"},
                  {"stack": "organization/obs-storage/staging-us", "clusterLabel": "us"}]
        raw, secret = engine.stack_config("staging")
        tools = json.loads(raw["obs-storage:tools"]) if isinstance(raw["obs-storage:tools"], str) else raw["obs-storage:tools"]
        tools["thanos"] = {**tools["thanos"], "spokes": spokes}
        return loading.load("staging", {**raw, "obs-storage:tools": json.dumps(tools)}, set(secret))

    # The spoke's own stack names its role obs-<stack>-prometheus, whole: IAM's 64 characters allow
    # a stack name of up to 49 here. A spoke in the hub's own account needs no bucket policy.
    longest = "team-" + "x" * (64 - len("obs--prometheus") - 5)
    cfg = hub_with(longest)
    assert storage.bucket_spec(cfg, "thanos").cross_account_writers == (f"arn:aws:iam::210987654321:role/obs-{longest}-prometheus",)
    assert storage.bucket_spec(cfg, "loki").cross_account_writers == ()
    with pytest.raises(config.ConfigError) as info:
        hub_with(longest + "x")
    assert info.value.key == "tools.thanos.spokes[0].stack" and "65 characters long, over IAM's 64" in info.value.problem


def test_a_bucket_spec_is_a_value_no_backend_can_change():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        thanos_spec().protect = False


def test_bucket_components_record_their_arn_only_where_it_exists(monkeypatch):
    # What `pulumi stack export` shows as each ToolBucket's outputs.
    import pulumi

    from components.core import storage

    recorded: dict[str, dict] = {}
    original = pulumi.ComponentResource.register_outputs

    def record(self, outputs):
        if isinstance(self, storage.ToolBucket):
            recorded[f"ToolBucket:{self.spec.tool}"] = dict(outputs)
        return original(self, outputs)

    monkeypatch.setattr(pulumi.ComponentResource, "register_outputs", record)
    engine.run("staging")
    assert set(recorded["ToolBucket:loki"]) == {"bucketName", "endpoint", "region", "prefix", "arn"}
    recorded.clear()
    engine.run("local")
    assert set(recorded["ToolBucket:loki"]) == {"bucketName", "endpoint", "region", "prefix"}


def test_the_storage_module_loads_no_provider_sdk():
    # Each backend imports its provider SDK when it declares a bucket: a stack pays only for its
    # own target's SDK (every preview pays for the imports; tests/test_identity.py checks the same
    # of the identities and targets modules).
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, components.core.storage; print(' '.join(m for m in sys.modules if m.startswith('pulumi_')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == []
