"""The policy pack: each rule on violating, compliant and unknown-during-preview inputs; the three
stacks pass; a public bucket is refused by name; exemptions are honored and printed; the real pack
starts and answers the analyzer protocol; the pull-request workflows run what the README says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy

from policies import offline, rules
from tools import engine, plan as plan_cli

ROOT = Path(__file__).resolve().parent.parent
POLICY = {p.name: p for p in rules.POLICIES}
UNKNOWN = engine.UNKNOWN

BUCKET = "aws:s3/bucket:Bucket"
ACL_V2 = "aws:s3/bucketAclV2:BucketAclV2"
ACL = "aws:s3/bucketAcl:BucketAcl"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
MINIO_BUCKET = "minio:index/s3Bucket:S3Bucket"
MINIO_POLICY = "minio:index/s3BucketPolicy:S3BucketPolicy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
MINIO_IAM_POLICY = "minio:index/iamPolicy:IamPolicy"

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
ISSUER = "oidc.eks.ap-northeast-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
OIDC_ARN = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"


def urn(typ: str, name: str, stack: str = "staging") -> str:
    return f"urn:pulumi:{stack}::obs-storage::{typ}::{name}"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any = "*", action: Any = "s3:GetObject", resource: Any = "arn:aws:s3:::b/*", **extra) -> dict:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if principal is not None:
        statement["Principal"] = principal
    return statement


def tls_only_statement(bucket: str = "b") -> dict:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def tls_only(bucket: str = "b") -> str:
    return doc(tls_only_statement(bucket))


# ---------------------------------------------------------------- running one policy
def check_resource(policy: str, typ: str, props: dict, config: Optional[dict] = None) -> list[str]:
    """Messages `policy` reports for one resource, given as the analyzer would give it."""
    name = "r"
    args = ResourceValidationArgs(typ, offline.policy_props(props), urn(typ, name), name, None, None, config)
    messages: list[str] = []
    POLICY[policy].validate(args, lambda message, urn=None: messages.append(message))
    return messages


def check_stack(policy: str, *resources: tuple, config: Optional[dict] = None) -> list[tuple[str, str]]:
    """(urn, message) reported by stack policy `policy` for resources given as (type, name, props[, depends_on names])."""
    registrations = [
        engine.Registration(
            urn=urn(typ, name), type=typ, name=name, parent="", custom=True, inputs=props,
            depends_on=[urn(BUCKET, d) for d in (rest[0] if rest else [])],
        )
        for typ, name, props, *rest in resources
    ]
    found: list[tuple[str, str]] = []
    args = StackValidationArgs(offline.policy_resources(registrations), config)
    POLICY[policy].validate(args, lambda message, urn=None: found.append((urn or "", message)))
    return found


def resource_violations(typ: str, props: dict, configs: Optional[dict[str, dict]] = None, name: str = "r") -> list[tuple[str, str, str]]:
    """(policy, urn, message) from every resource policy of the pack for one resource, reported on
    the resource itself unless a rule names another URN."""
    target = urn(typ, name)
    found: list[tuple[str, str, str]] = []
    for policy in rules.POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            args = ResourceValidationArgs(typ, offline.policy_props(props), target, name, None, None, (configs or {}).get(policy.name))
            policy.validate(args, lambda message, reported=None, p=policy.name: found.append((p, reported or target, message)))
    return found


def stack_violations(*resources: tuple, configs: Optional[dict[str, dict]] = None) -> list[tuple[str, str, str]]:
    """(policy, urn, message) from every stack policy of the pack but the exemption notice."""
    found: list[tuple[str, str, str]] = []
    for policy in rules.POLICIES:
        if isinstance(policy, ResourceValidationPolicy) or policy.name == rules.NOTICE_POLICY:
            continue
        found += [(policy.name, u, m) for u, m in check_stack(policy.name, *resources, config=(configs or {}).get(policy.name))]
    return found


def hardened(name: str = "b", **replace: tuple) -> list[tuple]:
    """An AWS bucket with everything the stack policies ask for; `replace` swaps one part by name."""
    parts = {
        "bucket": (BUCKET, "bucket", {"bucket": name}),
        "pab": (PAB, "pab", {"bucket": name, **dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)}),
        "sse": (SSE, "sse", {"bucket": name, "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}),
        "policy": (BUCKET_POLICY, "tls", {"bucket": name, "policy": tls_only(name)}),
        "lifecycle": (LIFECYCLE, "lifecycle", {"bucket": name, "rules": [{"id": "abort", "status": "Enabled", "filter": {"prefix": ""}, "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}}]}),
    }
    parts.update(replace)
    return [part for part in parts.values() if part is not None]


# ---------------------------------------------------------------- the pack's shape
def test_policies_are_kebab_case_unique_and_carry_an_enforcement_level():
    names = [p.name for p in rules.POLICIES]
    assert len(names) == len(set(names)), names
    for policy in rules.POLICIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", policy.name), policy.name
    # Advisory: stale multipart parts cost money but expose nothing; the notice only lists exemptions.
    advisory = {p.name for p in rules.POLICIES if p.enforcement_level.value == "advisory"}
    assert advisory == {"s3-abort-incomplete-multipart", "policy-exemptions"}
    assert all(p.enforcement_level.value == "mandatory" for p in rules.POLICIES if p.name not in advisory)
    for policy in rules.POLICIES:
        assert policy.config_schema is not None and "exemptions" in policy.config_schema.properties, policy.name


def test_public_bucket_guards_are_mandatory():
    for name in ("s3-no-public-acl", "s3-no-public-bucket-policy", "s3-public-access-block", "minio-bucket-private", "minio-no-anonymous-bucket-policy"):
        assert POLICY[name].enforcement_level.value == "mandatory", name


def test_importing_the_rules_has_no_side_effects():
    proc = subprocess.run(
        [sys.executable, "-c", "import policies.rules, policies.offline"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr


def test_pack_requirements_are_exact_and_match_the_project():
    def pins(path: Path) -> dict[str, str]:
        found = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                name, sep, version = line.partition("==")
                assert sep and version, f"{path.name}: {line!r} is not pinned exactly"
                found[name.lower().replace("_", "-")] = version
        return found

    pack, project = pins(ROOT / "policies/requirements.txt"), pins(ROOT / "requirements.txt")
    assert pack["pulumi-policy"] == "1.21.0" and pack["pulumi"] == "3.272.0"
    differing = {n: (v, project[n]) for n, v in pack.items() if n in project and project[n] != v}
    assert not differing, f"the pack and the offline plan would run different versions: {differing}"


def test_pulumi_policy_yaml_runs_python_in_a_virtualenv():
    spec = yaml.safe_load((ROOT / "policies/PulumiPolicy.yaml").read_text())
    assert spec["runtime"]["name"] == "python" and spec["runtime"]["options"]["virtualenv"]


# ---------------------------------------------------------------- s3-no-public-acl
def canned(acl: str) -> str:
    return f"canned ACL '{acl}' lets anyone read the bucket; leave the ACL unset (ownership BucketOwnerEnforced)."


@pytest.mark.parametrize(
    "typ, props, message",
    [
        (BUCKET, {"bucket": "b", "acl": "public-read"}, canned("public-read")),
        (ACL_V2, {"bucket": "b", "acl": "public-read-write"}, canned("public-read-write")),
        (ACL, {"bucket": "b", "acl": "authenticated-read"}, canned("authenticated-read")),
        (ACL_V2, {"bucket": "b", "accessControlPolicy": {"grants": [{"grantee": {"type": "Group", "uri": ALL_USERS}, "permission": "READ"}], "owner": {"id": "o"}}},
         f"ACL grant to {ALL_USERS} makes the bucket public; remove it."),
        (BUCKET, {"bucket": "b", "grants": [{"type": "Group", "uri": AUTHENTICATED_USERS, "permissions": ["READ"]}]},
         f"ACL grant to {AUTHENTICATED_USERS} makes the bucket public; remove it."),
    ],
)
def test_public_acl_is_refused(typ, props, message):
    assert resource_violations(typ, props) == [("s3-no-public-acl", urn(typ, "r"), message)]


@pytest.mark.parametrize(
    "typ, props",
    [
        (BUCKET, {"bucket": "b"}),
        (ACL_V2, {"bucket": "b", "acl": "private"}),
        (ACL_V2, {"bucket": "b", "accessControlPolicy": {"grants": [{"grantee": {"type": "CanonicalUser", "id": "abc"}, "permission": "FULL_CONTROL"}], "owner": {"id": "o"}}}),
        (MINIO_BUCKET, {"bucket": "b", "acl": "public-read"}),  # minio-bucket-private's business
    ],
)
def test_private_acl_passes(typ, props):
    assert check_resource("s3-no-public-acl", typ, props) == []


@pytest.mark.parametrize("props", [{"bucket": "b", "acl": UNKNOWN}, {"bucket": "b", "accessControlPolicy": UNKNOWN}, {"bucket": "b", "grants": [{"type": "Group", "uri": UNKNOWN}]}])
def test_unknown_acl_is_not_decided(props):
    assert check_resource("s3-no-public-acl", ACL_V2, props) == []


# ---------------------------------------------------------------- s3-no-public-bucket-policy
@pytest.mark.parametrize(
    "policy",
    [
        doc(allow("*")),
        doc(allow({"AWS": "*"})),
        doc(allow({"AWS": ["arn:aws:iam::123456789012:root", "*"]})),
        doc(allow("*", Condition={"Bool": {"aws:SecureTransport": "true"}})),
        doc(allow("*", Condition={"StringEquals": {"aws:Referer": "https://grafana.example.com"}})),  # anyone can send it
        doc(allow("*", Condition={"StringLike": {"aws:SourceVpce": "*"}})),
        doc(allow("*", Condition={"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}})),
        doc(allow(None, NotPrincipal={"AWS": "arn:aws:iam::123456789012:root"})),
    ],
)
def test_bucket_policy_open_to_anyone_is_refused(policy):
    assert resource_violations(BUCKET_POLICY, {"bucket": "b", "policy": policy}) == [
        ("s3-no-public-bucket-policy", urn(BUCKET_POLICY, "r"), public_statement("statement 0"))]


def public_statement(label: str) -> str:
    return (f"{label} allows any principal without a condition that pins the caller (StringEquals/ArnEquals on one of "
            "aws:principalaccount, aws:principalarn, aws:principalorgid, aws:sourceaccount, aws:sourcearn, aws:sourceorgid, "
            "aws:sourcevpc, aws:sourcevpce, aws:userid); aws:SecureTransport alone does not.")


def test_each_public_statement_is_named_by_its_sid_or_position():
    policy = doc(tls_only_statement(), allow("*", Sid="PublicRead"), allow({"AWS": "*"}))
    assert [m for _, _, m in resource_violations(BUCKET_POLICY, {"bucket": "b", "policy": policy})] == [
        public_statement("statement PublicRead"), public_statement("statement 2")]


def test_bucket_policy_that_is_not_json_is_refused():
    assert resource_violations(BUCKET_POLICY, {"bucket": "b", "policy": "{not json"}) == [
        ("s3-no-public-bucket-policy", urn(BUCKET_POLICY, "r"), "the bucket policy is not a JSON object, so it cannot be shown to be private.")]


def test_inline_bucket_policy_is_checked_too():
    assert resource_violations(BUCKET, {"bucket": "b", "policy": doc(allow("*"))}) == [
        ("s3-no-public-bucket-policy", urn(BUCKET, "r"), public_statement("statement 0"))]


@pytest.mark.parametrize(
    "policy",
    [
        tls_only(),
        doc(allow("*", Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c"}})),
        doc(allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": ["o-abc123"]}})),
        doc(allow("*", Condition={"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/loki"}})),
        # Exact but for case (IAM's string condition operators): still one VPC.
        doc(allow("*", Condition={"StringEqualsIgnoreCase": {"aws:SourceVpc": "vpc-1a2b3c4d"}})),
        doc(allow({"AWS": "arn:aws:iam::123456789012:role/loki"})),
    ],
)
def test_bucket_policy_that_pins_the_caller_passes(policy):
    assert check_resource("s3-no-public-bucket-policy", BUCKET_POLICY, {"bucket": "b", "policy": policy}) == []


def test_unknown_bucket_policy_is_not_decided():
    assert check_resource("s3-no-public-bucket-policy", BUCKET_POLICY, {"bucket": UNKNOWN, "policy": UNKNOWN}) == []


# ---------------------------------------------------------------- s3-public-access-block
NO_PAB = "bucket b: no BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true."


def test_bucket_without_public_access_block_is_refused():
    assert stack_violations(*hardened(pab=None)) == [("s3-public-access-block", urn(BUCKET, "bucket"), NO_PAB)]


@pytest.mark.parametrize("flag", ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"])
def test_public_access_block_with_one_flag_off_is_refused(flag):
    (typ, name, props) = hardened()[1]
    assert stack_violations(*hardened(pab=(typ, name, {**props, flag: False}))) == [("s3-public-access-block", urn(BUCKET, "bucket"), NO_PAB)]


def test_public_access_block_of_another_bucket_does_not_count():
    (typ, name, props) = hardened()[1]
    assert stack_violations(*hardened(pab=(typ, name, {**props, "bucket": "other"}))) == [("s3-public-access-block", urn(BUCKET, "bucket"), NO_PAB)]


def test_bucket_without_a_known_name_is_reported_by_its_resource_name():
    found = check_stack("s3-public-access-block", (BUCKET, "logs", {"bucket": UNKNOWN}))
    assert found == [(urn(BUCKET, "logs"), NO_PAB.replace("bucket b:", "bucket logs:"))]


def test_public_access_block_passes():
    assert check_stack("s3-public-access-block", *hardened()) == []


def test_public_access_block_of_a_bucket_not_yet_created_matches_by_dependency():
    # In a preview of a new bucket, the block's `bucket` (the bucket's id) is unknown.
    (typ, name, props) = hardened()[1]
    assert check_stack("s3-public-access-block", *hardened(pab=(typ, name, {**props, "bucket": UNKNOWN}, ["bucket"]))) == []


def test_unknown_public_access_block_flags_are_not_decided():
    (typ, name, props) = hardened()[1]
    assert check_stack("s3-public-access-block", *hardened(pab=(typ, name, {**props, "restrictPublicBuckets": UNKNOWN}))) == []
    assert check_stack("s3-public-access-block", *hardened(pab=(typ, name, {**props, "bucket": UNKNOWN}))) == []


# ---------------------------------------------------------------- minio-bucket-private
@pytest.mark.parametrize("acl", ["public-read", "public-read-write", "public-write", "public"])
def test_minio_bucket_not_private_is_refused(acl):
    assert resource_violations(MINIO_BUCKET, {"bucket": "b", "acl": acl}) == [
        ("minio-bucket-private", urn(MINIO_BUCKET, "r"), f"acl '{acl}' exposes the bucket without credentials; set acl='private'.")]


@pytest.mark.parametrize("props", [{"bucket": "b", "acl": "private"}, {"bucket": "b"}, {"bucket": "b", "acl": UNKNOWN}])
def test_minio_bucket_private_or_unknown_passes(props):
    assert check_resource("minio-bucket-private", MINIO_BUCKET, props) == []


# ---------------------------------------------------------------- minio-no-anonymous-bucket-policy
@pytest.mark.parametrize(
    "policy",
    [
        doc(allow("*")),
        doc(allow({"AWS": ["*"]}, action=["s3:GetObject", "s3:ListBucket"])),
        # No condition helps: anonymous MinIO requests carry no AWS identity keys.
        doc(allow("*", Condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}})),
    ],
)
def test_minio_anonymous_policy_is_refused(policy):
    assert resource_violations(MINIO_POLICY, {"bucket": "b", "policy": policy}) == [
        ("minio-no-anonymous-bucket-policy", urn(MINIO_POLICY, "r"), "statement 0 allows anonymous access; grant access to IAM users instead.")]


def test_minio_policy_that_is_not_json_is_refused():
    assert resource_violations(MINIO_POLICY, {"bucket": "b", "policy": "[]"}) == [
        ("minio-no-anonymous-bucket-policy", urn(MINIO_POLICY, "r"), "the bucket policy is not a JSON object, so it cannot be shown to be private.")]


@pytest.mark.parametrize("policy", [doc(allow({"AWS": ["arn:aws:iam::minio:user/loki"]})), doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}), UNKNOWN])
def test_minio_policy_for_users_or_unknown_passes(policy):
    assert check_resource("minio-no-anonymous-bucket-policy", MINIO_POLICY, {"bucket": "b", "policy": policy}) == []


# ---------------------------------------------------------------- s3-default-encryption
NO_SSE = "bucket b: no BucketServerSideEncryptionConfiguration with sseAlgorithm AES256 or aws:kms or aws:kms:dsse."


@pytest.mark.parametrize("sse", [None, (SSE, "sse", {"bucket": "b", "rules": [{"bucketKeyEnabled": True}]}),
                                 (SSE, "sse", {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "none"}}]})])
def test_bucket_without_default_encryption_is_refused(sse):
    assert stack_violations(*hardened(sse=sse)) == [("s3-default-encryption", urn(BUCKET, "bucket"), NO_SSE)]


@pytest.mark.parametrize("algorithm", ["AES256", "aws:kms"])
def test_default_encryption_passes(algorithm):
    sse = (SSE, "sse", {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm}}]})
    assert check_stack("s3-default-encryption", *hardened(sse=sse)) == []


def test_unknown_encryption_is_not_decided():
    sse = (SSE, "sse", {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": UNKNOWN}}]})
    assert check_stack("s3-default-encryption", *hardened(sse=sse)) == []


# ---------------------------------------------------------------- s3-tls-only
@pytest.mark.parametrize(
    "policy",
    [
        None,
        (BUCKET_POLICY, "tls", {"bucket": "b", "policy": doc(allow({"AWS": "arn:aws:iam::123456789012:root"}))}),
        (BUCKET_POLICY, "tls", {"bucket": "b", "policy": tls_only().replace('"false"', '"true"')}),
        (BUCKET_POLICY, "tls", {"bucket": "other", "policy": tls_only("other")}),
    ],
)
def test_bucket_without_tls_only_policy_is_refused(policy):
    assert stack_violations(*hardened(policy=policy)) == [
        ("s3-tls-only", urn(BUCKET, "bucket"), 'bucket b: no bucket policy denying s3:* to "*" on the bucket and its objects when aws:SecureTransport is false.')]


def test_tls_only_policy_passes():
    assert check_stack("s3-tls-only", *hardened()) == []


def tls_policy_on(*resources: str, bucket: str = "b") -> tuple:
    return (BUCKET_POLICY, "tls", {"bucket": bucket, "policy": doc({**tls_only_statement(), "Resource": list(resources)})})


@pytest.mark.parametrize("resources", [
    ("arn:aws:s3:::b",),  # the bucket only: its objects stay readable over plain HTTP
    ("arn:aws:s3:::b/*",),  # the objects only
    ("arn:aws:s3:::b", "arn:aws:s3:::b/logs/*"),  # some objects
    ("arn:aws:s3:::b", "arn:aws:s3:::b/?"),  # one-character keys
    ("arn:aws:s3:::bb", "arn:aws:s3:::bb/*"),
    ("arn:aws:s3:::b", "arn:aws-cn:s3:::b/*"),  # two partitions, neither whole
])
def test_a_tls_deny_that_leaves_the_bucket_or_some_objects_out_is_refused(resources):
    assert stack_violations(*hardened(policy=tls_policy_on(*resources))) == [
        ("s3-tls-only", urn(BUCKET, "bucket"), 'bucket b: no bucket policy denying s3:* to "*" on the bucket and its objects when aws:SecureTransport is false.')]


@pytest.mark.parametrize("resources", [
    ("arn:aws:s3:::b/*", "arn:aws:s3:::b"),
    ("*",),
    ("arn:aws:s3:::b*",),
    ("arn:aws:s3:::*", "arn:aws:s3:::b"),
    ("arn:aws-cn:s3:::b", "arn:aws-cn:s3:::b/*"),
    ("arn:aws:s3:::?", "arn:aws:s3:::b/*"),
])
def test_a_tls_deny_on_the_bucket_and_every_object_passes(resources):
    assert check_stack("s3-tls-only", *hardened(policy=tls_policy_on(*resources))) == []


def test_a_tls_deny_for_a_bucket_whose_name_is_unknown_is_not_decided():
    assert check_stack("s3-tls-only", *hardened(policy=tls_policy_on("arn:aws:s3:::b", bucket=UNKNOWN))) == []
    # Decided all the same when no statement could ever cover it.
    assert rules.denies_insecure_transport(json.loads(tls_only()), rules.UNKNOWN) is None
    assert rules.denies_insecure_transport(json.loads(tls_only().replace('"false"', '"true"')), rules.UNKNOWN) is False


def test_unknown_tls_policy_is_not_decided():
    # The program builds the policy from bucket.arn, unknown in a preview of a new bucket.
    policy = (BUCKET_POLICY, "tls", {"bucket": UNKNOWN, "policy": UNKNOWN}, ["bucket"])
    assert check_stack("s3-tls-only", *hardened(policy=policy)) == []


# ---------------------------------------------------------------- s3-abort-incomplete-multipart
def lifecycle(**rule) -> tuple:
    base = {"id": "abort", "status": "Enabled", "filter": {"prefix": ""}, "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}}
    return (LIFECYCLE, "lifecycle", {"bucket": "b", "rules": [{k: v for k, v in {**base, **rule}.items() if v is not None}]})


@pytest.mark.parametrize(
    "part",
    [
        None,
        lifecycle(abortIncompleteMultipartUpload=None, expiration={"days": 30}),
        lifecycle(filter={"prefix": "fake/"}),
        lifecycle(status="Disabled"),
    ],
)
def test_bucket_without_whole_bucket_abort_rule_is_reported(part):
    assert stack_violations(*hardened(lifecycle=part)) == [
        ("s3-abort-incomplete-multipart", urn(BUCKET, "bucket"),
         "bucket b: no enabled whole-bucket lifecycle rule aborting incomplete multipart uploads; stale parts are billed forever.")]


@pytest.mark.parametrize("part", [lifecycle(), lifecycle(filter=None), lifecycle(filter={})])
def test_whole_bucket_abort_rule_passes(part):
    assert check_stack("s3-abort-incomplete-multipart", *hardened(lifecycle=part)) == []


@pytest.mark.parametrize("part", [lifecycle(status=UNKNOWN), lifecycle(abortIncompleteMultipartUpload={"daysAfterInitiation": UNKNOWN}), (LIFECYCLE, "lifecycle", {"bucket": "b", "rules": UNKNOWN})])
def test_unknown_abort_rule_is_not_decided(part):
    assert check_stack("s3-abort-incomplete-multipart", *hardened(lifecycle=part)) == []


def test_abort_rule_is_advisory():
    assert POLICY["s3-abort-incomplete-multipart"].enforcement_level.value == "advisory"


# ---------------------------------------------------------------- no-archive-storage-transition
def transition_rules(storage_class: Any) -> dict:
    return {"bucket": "b", "rules": [{"id": "thanos-data-all", "status": "Enabled", "transitions": [{"days": 60, "storageClass": storage_class}]}]}


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_archive_transition_is_refused(storage_class):
    message = (f"rule thanos-data-all moves objects to {storage_class}; Loki and Thanos cannot read them without a restore. "
               "Use STANDARD_IA, INTELLIGENT_TIERING or GLACIER_IR.")
    assert resource_violations(LIFECYCLE, transition_rules(storage_class)) == [("no-archive-storage-transition", urn(LIFECYCLE, "r"), message)]
    inline = {"bucket": "b", "lifecycleRules": transition_rules(storage_class)["rules"]}
    assert resource_violations(BUCKET, inline) == [("no-archive-storage-transition", urn(BUCKET, "r"), message)]


def test_every_archive_transition_of_every_rule_is_reported():
    rules_ = [{"id": "a", "transitions": [{"days": 30, "storageClass": "STANDARD_IA"}, {"days": 90, "storageClass": "GLACIER"}]},
              {"transitions": [{"days": 60, "storageClass": "DEEP_ARCHIVE"}]}]
    messages = [m for _, _, m in resource_violations(LIFECYCLE, {"bucket": "b", "rules": rules_})]
    assert [m.split(";")[0] for m in messages] == ["rule a moves objects to GLACIER", "rule ? moves objects to DEEP_ARCHIVE"]


@pytest.mark.parametrize("storage_class", ["STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR", UNKNOWN])
def test_readable_or_unknown_transition_passes(storage_class):
    assert check_resource("no-archive-storage-transition", LIFECYCLE, transition_rules(storage_class)) == []


# ---------------------------------------------------------------- iam-least-privilege
LOKI_ACCESS = doc(
    {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::acme-loki"},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::acme-loki/*"},
)


def least(where: str) -> str:
    return f"{where}; list the tool's own actions on its own bucket."


@pytest.mark.parametrize(
    "typ, props, messages",
    [
        (ROLE_POLICY, {"role": "r", "policy": doc(allow(None, action="s3:*"))}, [least("policy statement 0 allows action s3:*")]),
        (IAM_POLICY, {"policy": doc(allow(None, action=["s3:GetObject", "*"]))}, [least("policy statement 0 allows action *")]),
        (ROLE_POLICY, {"role": "r", "policy": doc(allow(None, resource="*"))}, [least("policy statement 0 allows resource *")]),
        (ROLE_POLICY, {"role": "r", "policy": doc({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::b/*"})},
         [least("policy statement 0 allows NotAction (allows everything not listed)"), least("policy statement 0 allows NotResource (allows everything not listed)")]),
        (ROLE, {"assumeRolePolicy": "{}", "inlinePolicies": [{"name": "x", "policy": doc(allow(None, action="S3:*"))}]}, [least("inlinePolicies[0] statement 0 allows action S3:*")]),
        (MINIO_IAM_POLICY, {"name": "p", "policy": doc(allow(None, resource=["arn:aws:s3:::*"]))}, [least("policy statement 0 allows resource arn:aws:s3:::*")]),
        (ROLE_POLICY, {"role": "r", "policy": "not json"}, ["policy is not a JSON object, so it cannot be shown to be least-privilege."]),
        (ROLE, {"assumeRolePolicy": "{}", "inlinePolicies": [{"name": "ok", "policy": LOKI_ACCESS}, {"name": "x", "policy": "[1]"}]},
         ["inlinePolicies[1] is not a JSON object, so it cannot be shown to be least-privilege."]),
    ],
)
def test_wildcard_iam_policy_is_refused(typ, props, messages):
    assert resource_violations(typ, props) == [("iam-least-privilege", urn(typ, "r"), m) for m in messages]


@pytest.mark.parametrize(
    "typ, props",
    [
        (ROLE_POLICY, {"role": "r", "policy": LOKI_ACCESS}),
        (MINIO_IAM_POLICY, {"name": "p", "policy": LOKI_ACCESS}),
        (IAM_POLICY, {"policy": doc({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})}),
        (ROLE_POLICY, {"role": "r", "policy": UNKNOWN}),
    ],
)
def test_scoped_or_unknown_iam_policy_passes(typ, props):
    assert check_resource("iam-least-privilege", typ, props) == []


# ---------------------------------------------------------------- irsa-trust-restricts-sub-and-aud
def irsa(conditions: Optional[dict], federated: str = OIDC_ARN) -> str:
    statement = {"Effect": "Allow", "Principal": {"Federated": federated}, "Action": "sts:AssumeRoleWithWebIdentity"}
    if conditions is not None:
        statement["Condition"] = conditions
    return doc(statement)


SUB = {f"{ISSUER}:sub": "system:serviceaccount:observability:loki"}
AUD = {f"{ISSUER}:aud": "sts.amazonaws.com"}


@pytest.mark.parametrize(
    "trust, missing",
    [
        (irsa(None), {"sub", "aud"}),
        (irsa({"StringEquals": AUD}), {"sub"}),
        (irsa({"StringEquals": SUB}), {"aud"}),
        (irsa({"StringEquals": AUD, "StringLike": {f"{ISSUER}:sub": "system:serviceaccount:*"}}), {"sub"}),
        (irsa({"StringEquals": {"oidc.eks.us-east-1.amazonaws.com/id/OTHER:sub": "system:serviceaccount:observability:loki", **AUD}}), {"sub"}),
    ],
)
def test_web_identity_trust_without_sub_or_aud_is_refused(trust, missing):
    messages = check_resource("irsa-trust-restricts-sub-and-aud", ROLE, {"assumeRolePolicy": trust})
    assert {claim for claim in ("sub", "aud") if any(f":{claim}" in m for m in messages)} == missing, messages


@pytest.mark.parametrize(
    "trust",
    [
        irsa({"StringEquals": {**SUB, **AUD}}),
        irsa({"StringEquals": {k.upper(): v for k, v in {**SUB, **AUD}.items()}}),  # condition keys are case-insensitive
        doc({"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}),
        UNKNOWN,
    ],
)
def test_pinned_pod_identity_or_unknown_trust_passes(trust):
    assert check_resource("irsa-trust-restricts-sub-and-aud", ROLE, {"assumeRolePolicy": trust}) == []


# ---------------------------------------------------------------- EC2 fleets
NLB = "aws:lb/loadBalancer:LoadBalancer"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE = "aws:ec2/instance:Instance"


@pytest.mark.parametrize("props", [{"internal": False, "loadBalancerType": "network"}, {"loadBalancerType": "network"}])
def test_internet_facing_load_balancer_is_refused(props):
    assert check_resource("load-balancer-internal", NLB, props) == [
        "the load balancer is internet-facing (internal is not true); the tools' listeners are for senders inside the network only."]


@pytest.mark.parametrize("props", [{"internal": True}, {"internal": UNKNOWN}])
def test_internal_or_unknown_load_balancer_passes(props):
    assert check_resource("load-balancer-internal", NLB, props) == []


def open_to(where: str, cidr: str) -> str:
    return f"{where} admits {cidr}: every address. Admit the senders' networks or security groups (aws.ec2.senders)."


@pytest.mark.parametrize("typ, props, messages", [
    (INGRESS_RULE, {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "tcp"}, [open_to("the rule", "0.0.0.0/0")]),
    (INGRESS_RULE, {"cidrIpv6": "::/0", "ipProtocol": "-1"}, [open_to("the rule", "::/0")]),
    (SECURITY_GROUP, {"ingress": [{"cidrBlocks": ["10.0.0.0/8"]}, {"cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"], "ipv6CidrBlocks": ["::/0"]}]},
     [open_to("ingress[1]", "0.0.0.0/0"), open_to("ingress[1]", "::/0")]),
    (SG_RULE, {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"]}, [open_to("the rule", "0.0.0.0/0")]),
])
def test_ingress_from_everywhere_is_refused(typ, props, messages):
    assert check_resource("no-open-ingress", typ, props) == messages


@pytest.mark.parametrize("typ, props", [
    (INGRESS_RULE, {"cidrIpv4": "10.20.0.0/16"}), (INGRESS_RULE, {"referencedSecurityGroupId": "sg-1"}), (INGRESS_RULE, {"cidrIpv4": UNKNOWN}),
    (SECURITY_GROUP, {"ingress": UNKNOWN}), (SECURITY_GROUP, {"egress": [{"cidrBlocks": ["0.0.0.0/0"]}]}),
    # Egress to anywhere is how instances reach S3 and the registries; only ingress is judged.
    (SG_RULE, {"type": "egress", "cidrBlocks": ["0.0.0.0/0"]}), ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", {"cidrIpv4": "0.0.0.0/0"}),
])
def test_scoped_or_egress_or_unknown_rules_pass(typ, props):
    assert check_resource("no-open-ingress", typ, props) == []


@pytest.mark.parametrize("typ, options, shown", [
    (LAUNCH_TEMPLATE, {"httpTokens": "optional"}, "optional"), (LAUNCH_TEMPLATE, {}, "unset (optional)"), (LAUNCH_TEMPLATE, None, "unset (optional)"),
    (INSTANCE, {"httpEndpoint": "enabled", "httpTokens": "optional"}, "optional"),
])
def test_imdsv1_is_refused(typ, options, shown):
    props = {} if options is None else {"metadataOptions": options}
    assert check_resource("imdsv2-required", typ, props) == [
        f"metadataOptions.httpTokens is {shown}; without \"required\" a request without an IMDSv2 token (the SSRF route) reads the instance role's credentials."]


@pytest.mark.parametrize("options", [{"httpTokens": "required"}, {"httpEndpoint": "disabled"}, {"httpTokens": UNKNOWN}, UNKNOWN])
def test_imdsv2_or_no_metadata_or_unknown_passes(options):
    assert check_resource("imdsv2-required", LAUNCH_TEMPLATE, {"metadataOptions": options}) == []


ENCRYPTED_ROOT = [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "volumeSize": 30}}]


@pytest.mark.parametrize("props, messages", [
    ({"networkInterfaces": [{"associatePublicIpAddress": "true"}], "blockDeviceMappings": ENCRYPTED_ROOT},
     ["networkInterfaces[0] gets a public address; fleet instances are private (reached through the internal load balancer)."]),
    ({"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}, {"deviceName": "/dev/sdf", "ebs": {}}]},
     ["blockDeviceMappings[0] (/dev/xvda) is not encrypted.", "blockDeviceMappings[1] (/dev/sdf) is not encrypted."]),
    ({}, ["no block device mapping: the root volume's encryption is left to the AMI and the account default. Map it encrypted."]),
    # A mapping not known until apply is skipped, and the ones after it are still checked.
    ({"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": UNKNOWN}, {"deviceName": "/dev/sdf", "ebs": {"encrypted": False}}]},
     ["blockDeviceMappings[1] (/dev/sdf) is not encrypted."]),
])
def test_public_or_unencrypted_launch_template_is_refused(props, messages):
    assert check_resource("launch-template-private-and-encrypted", LAUNCH_TEMPLATE, props) == messages


@pytest.mark.parametrize("props", [
    {"networkInterfaces": [{"associatePublicIpAddress": "false"}], "blockDeviceMappings": ENCRYPTED_ROOT},
    {"blockDeviceMappings": UNKNOWN}, {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": UNKNOWN}]},
])
def test_private_encrypted_or_unknown_launch_template_passes(props):
    assert check_resource("launch-template-private-and-encrypted", LAUNCH_TEMPLATE, props) == []


def test_the_ec2_stack_breaks_each_ec2_rule_when_its_guard_is_removed(plan):
    """The staging-ec2 plan's own resources, each with one guard taken away, are refused."""
    result = plan("staging-ec2")
    (nlb,) = result.by_type(NLB)
    lt = result.by_type(LAUNCH_TEMPLATE)[0]
    rule = next(r for r in result.by_type(INGRESS_RULE) if "cidrIpv4" in r.inputs)
    assert check_resource("load-balancer-internal", NLB, {**nlb.inputs, "internal": False})
    assert check_resource("imdsv2-required", LAUNCH_TEMPLATE, {**lt.inputs, "metadataOptions": {**lt.inputs["metadataOptions"], "httpTokens": "optional"}})
    assert check_resource("no-open-ingress", INGRESS_RULE, {**rule.inputs, "cidrIpv4": "0.0.0.0/0"})
    for policy, typ, props in (("load-balancer-internal", NLB, nlb.inputs), ("imdsv2-required", LAUNCH_TEMPLATE, lt.inputs),
                               ("no-open-ingress", INGRESS_RULE, rule.inputs), ("launch-template-private-and-encrypted", LAUNCH_TEMPLATE, lt.inputs)):
        assert check_resource(policy, typ, props) == [], policy


# ---------------------------------------------------------------- unknowns read directly
def test_a_rule_never_reads_an_unknown_itself():
    # Every resource policy on every resource type with every input unknown: none may raise
    # UnknownValueError (the analyzer would then skip the whole policy for that resource).
    for typ in sorted(rules.AWS_BUCKETS | rules.AWS_BUCKET_ACLS | rules.AWS_BUCKET_POLICIES | rules.MINIO_BUCKETS | rules.MINIO_BUCKET_POLICIES | rules.AWS_ROLES | rules.IAM_POLICY_DOCUMENTS | rules.AWS_LIFECYCLE_CONFIGS
                      | rules.AWS_LOAD_BALANCERS | rules.AWS_SECURITY_GROUPS | rules.AWS_INGRESS_RULES | rules.AWS_SECURITY_GROUP_RULES | rules.AWS_LAUNCH_TEMPLATES | rules.AWS_INSTANCES):
        props = dict.fromkeys(("bucket", "acl", "grants", "accessControlPolicy", "policy", "assumeRolePolicy", "inlinePolicies", "rules", "lifecycleRules",
                               "internal", "ingress", "cidrIpv4", "cidrIpv6", "cidrBlocks", "metadataOptions", "networkInterfaces", "blockDeviceMappings"), UNKNOWN)
        for policy in rules.POLICIES:
            if isinstance(policy, ResourceValidationPolicy):
                assert check_resource(policy.name, typ, props) == [], (policy.name, typ)


# ---------------------------------------------------------------- exemptions in the pack's config
def test_exempted_urn_is_skipped_only_with_a_reason():
    props = {"bucket": "b", "acl": "public-read"}
    target = urn(ACL_V2, "r")
    refused = [("s3-no-public-acl", target, canned("public-read"))]

    def exempting(*items: dict) -> list:
        return resource_violations(ACL_V2, props, {"s3-no-public-acl": {"exemptions": list(items)}})

    assert exempting({"urn": target, "reason": "static website, reviewed (SEC-1)"}) == []
    assert exempting({"urn": target, "reason": "  "}) == refused
    assert exempting({"urn": target}) == refused
    assert exempting({"urn": urn(ACL_V2, "other"), "reason": "x"}) == refused
    # An exemption applies to the policy whose config carries it, not to the others.
    assert resource_violations(ACL_V2, props, {"minio-bucket-private": {"exemptions": [{"urn": target, "reason": "x"}]}}) == refused


def test_stack_policy_exemption_drops_only_the_exempted_bucket():
    # Stack policies name the bucket in each report; their args carry no URN of their own.
    second = (BUCKET, "second", {"bucket": "c"})
    both = [("s3-public-access-block", urn(BUCKET, "bucket"), NO_PAB), ("s3-public-access-block", urn(BUCKET, "second"), NO_PAB.replace("bucket b:", "bucket c:"))]
    assert [v for v in stack_violations(*hardened(pab=None), second) if v[0] == "s3-public-access-block"] == both

    def exempting(*items: dict) -> list:
        found = stack_violations(*hardened(pab=None), second, configs={"s3-public-access-block": {"exemptions": list(items)}})
        return [v for v in found if v[0] == "s3-public-access-block"]

    assert exempting({"urn": urn(BUCKET, "bucket"), "reason": "CDN origin, reviewed (SEC-9)"}) == both[1:]
    assert exempting({"urn": urn(BUCKET, "bucket"), "reason": ""}) == both
    assert exempting({"urn": urn(PAB, "pab"), "reason": "x"}) == both


def test_exemption_notice_lists_each_exemption():
    config = {"exemptions": [{"policy": "s3-tls-only", "urn": urn(BUCKET, "bucket"), "reason": "legacy client (OPS-7)"}]}
    found = check_stack("policy-exemptions", *hardened(), config=config)
    assert found == [(urn(BUCKET, "bucket"), f"{urn(BUCKET, 'bucket')} is exempt from s3-tls-only: legacy client (OPS-7)")]
    assert POLICY["policy-exemptions"].enforcement_level.value == "advisory"


# ---------------------------------------------------------------- the stacks as committed
@pytest.mark.parametrize("stack", ["local", "staging", "prod", "staging-ec2"])
def test_stack_has_no_mandatory_violation(plan, stack):
    violations = offline.evaluate(plan(stack))
    assert [v for v in violations if v["enforcement"] == "mandatory"] == []


@pytest.mark.parametrize("identity", [{"identity": "pod-identity"}, {"identity": "irsa", "oidcProvider": "create"}])
def test_other_aws_identity_modes_have_no_mandatory_violation(plan_with, identity):
    result = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "namespace": "observability", **identity}})
    assert result.by_type(ROLE), "the identity mode declares roles for the policies to check"
    assert [v for v in offline.evaluate(result) if v["enforcement"] == "mandatory"] == []


def test_committed_exemptions_file_is_valid():
    for stack in engine.available_stacks():
        assert offline.load_exemptions(stack)[1] == [], stack


# ---------------------------------------------------------------- a deliberately public bucket
PUBLIC_AWS_PROGRAM = """
import pulumi
import pulumi_aws as aws
provider = aws.Provider("aws", region="ap-northeast-2")
opts = pulumi.ResourceOptions(provider=provider)
bucket = aws.s3.Bucket("open-bucket", bucket="acme-open", opts=opts)
aws.s3.BucketAclV2("open-bucket-acl", bucket=bucket.id, acl="public-read", opts=opts)
"""

PUBLIC_MINIO_PROGRAM = """
import json
import pulumi
import pulumi_minio as minio
provider = minio.Provider("minio", minio_server="localhost:9000", minio_user="u", minio_password="p")
opts = pulumi.ResourceOptions(provider=provider)
bucket = minio.S3Bucket("open-bucket", bucket="open", acl="public-read", opts=opts)
minio.S3BucketPolicy("open-bucket-policy", bucket=bucket.bucket, opts=opts, policy=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::open/*"]}],
}))
"""


def run_program(tmp_path: Path, stack: str, source: str) -> engine.PlanResult:
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(source))
    return engine.run(stack, program=program)


def refusals(violations: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(v["policy"], v["urn"]) for v in violations if v["enforcement"] == "mandatory"}


def test_public_aws_bucket_is_refused_by_name(tmp_path):
    result = run_program(tmp_path, "staging", PUBLIC_AWS_PROGRAM)
    acl = result.one(ACL_V2, "open-bucket-acl")
    bucket = result.one(BUCKET, "open-bucket")
    violations = offline.evaluate(result)
    assert ("s3-no-public-acl", acl.urn) in refusals(violations)
    for policy in ("s3-public-access-block", "s3-default-encryption", "s3-tls-only"):
        assert (policy, bucket.urn) in refusals(violations), policy
    text = plan_cli.as_text(result, violations)
    assert f"[mandatory] s3-no-public-acl: {acl.urn}: canned ACL 'public-read'" in text


def test_public_minio_bucket_is_refused_by_name(tmp_path):
    result = run_program(tmp_path, "local", PUBLIC_MINIO_PROGRAM)
    violations = refusals(offline.evaluate(result))
    assert ("minio-bucket-private", result.one(MINIO_BUCKET, "open-bucket").urn) in violations
    assert ("minio-no-anonymous-bucket-policy", result.one(MINIO_POLICY, "open-bucket-policy").urn) in violations


def test_offline_unknowns_are_not_decided(tmp_path):
    # "[unknown]" in a recorded input reaches the rules as the SDK's unknown, not as a string.
    result = run_program(tmp_path, "local", PUBLIC_MINIO_PROGRAM)
    bucket = result.one(MINIO_BUCKET, "open-bucket")
    bucket.inputs["acl"] = UNKNOWN
    assert ("minio-bucket-private", bucket.urn) not in refusals(offline.evaluate(result))


# ---------------------------------------------------------------- exemptions file (offline)
def write_exemptions(tmp_path: Path, entries: list[dict], stack: str = "staging") -> Path:
    path = tmp_path / "exemptions.yaml"
    path.write_text(yaml.safe_dump({stack: entries}))
    return path


def test_offline_exemption_is_honored_and_printed(tmp_path):
    result = run_program(tmp_path, "staging", PUBLIC_AWS_PROGRAM)
    acl = result.one(ACL_V2, "open-bucket-acl")
    reason = "public download mirror, reviewed in SEC-42"
    path = write_exemptions(tmp_path, [{"policy": "s3-no-public-acl", "urn": acl.urn, "reason": reason}])
    violations = offline.evaluate(result, exemptions_file=path)
    assert ("s3-no-public-acl", acl.urn) not in refusals(violations)
    notice = {"policy": "policy-exemptions", "enforcement": "advisory", "urn": acl.urn, "message": f"{acl.urn} is exempt from s3-no-public-acl: {reason}"}
    assert notice in violations
    assert f"[advisory] policy-exemptions: {acl.urn}: {acl.urn} is exempt from s3-no-public-acl: {reason}" in plan_cli.as_text(result, violations)


def test_offline_exemption_of_a_stack_policy_drops_that_bucket_for_that_policy_only(tmp_path):
    result = run_program(tmp_path, "staging", PUBLIC_AWS_PROGRAM)
    bucket = result.one(BUCKET, "open-bucket")
    before = refusals(offline.evaluate(result))
    assert {("s3-tls-only", bucket.urn), ("s3-default-encryption", bucket.urn)} <= before
    path = write_exemptions(tmp_path, [{"policy": "s3-tls-only", "urn": bucket.urn, "reason": "legacy client (OPS-7)"}])
    violations = offline.evaluate(result, exemptions_file=path)
    assert refusals(violations) == before - {("s3-tls-only", bucket.urn)}
    notices = [v for v in violations if v["policy"] == "policy-exemptions"]
    assert notices == [{"policy": "policy-exemptions", "enforcement": "advisory", "urn": bucket.urn,
                        "message": f"{bucket.urn} is exempt from s3-tls-only: legacy client (OPS-7)"}]


@pytest.mark.parametrize(
    "entry, problem",
    [
        ({"policy": "s3-no-public-acl", "reason": ""}, "reason is empty"),
        ({"policy": "s3-no-public-acl"}, "reason is empty"),
        ({"policy": "no-such-policy", "reason": "x"}, "'no-such-policy' is not one of"),
        ({"policy": "s3-no-public-acl", "reason": "x", "expires": "2030"}, "unknown keys ['expires']"),
    ],
)
def test_offline_exemption_without_reason_or_policy_is_refused_and_not_applied(tmp_path, entry, problem):
    result = run_program(tmp_path, "staging", PUBLIC_AWS_PROGRAM)
    acl = result.one(ACL_V2, "open-bucket-acl")
    path = write_exemptions(tmp_path, [{"urn": acl.urn, **entry}])
    violations = offline.evaluate(result, exemptions_file=path)
    assert ("s3-no-public-acl", acl.urn) in refusals(violations)
    messages = [v["message"] for v in violations if v["policy"] == "policy-exemptions" and v["enforcement"] == "mandatory"]
    assert len(messages) == 1 and problem in messages[0] and "staging[0]" in messages[0], messages


def test_offline_exemption_for_another_stack_is_refused(tmp_path):
    path = write_exemptions(tmp_path, [{"policy": "s3-tls-only", "urn": urn(BUCKET, "b", stack="prod"), "reason": "x"}])
    exemptions, problems = offline.load_exemptions("staging", path)
    assert exemptions == [] and "is not a URN of stack staging" in problems[0]


def test_pack_config_cli_writes_the_exemptions_for_the_pack(tmp_path):
    target = urn(BUCKET, "bucket")
    path = write_exemptions(tmp_path, [{"policy": "s3-tls-only", "urn": target, "reason": "legacy client (OPS-7)"}])
    proc = subprocess.run(
        [sys.executable, "-m", "policies.offline", "--stack", "staging", "--exemptions", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "s3-tls-only": {"exemptions": [{"urn": target, "reason": "legacy client (OPS-7)"}]},
        "policy-exemptions": {"exemptions": [{"policy": "s3-tls-only", "urn": target, "reason": "legacy client (OPS-7)"}]},
    }
    assert "legacy client (OPS-7)" in proc.stderr

    bad = write_exemptions(tmp_path, [{"policy": "s3-tls-only", "urn": target, "reason": ""}])
    proc = subprocess.run([sys.executable, "-m", "policies.offline", "--stack", "staging", "--exemptions", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "reason is empty" in proc.stderr


# ---------------------------------------------------------------- the real pack, over the analyzer protocol
@pytest.fixture
def analyzer():
    """A stub talking to policies/ started the way the Pulumi CLI starts a Python policy pack."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", "."],
        cwd=ROOT / "policies", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"the pack did not start: {port!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)


def struct(value: dict):
    from google.protobuf import struct_pb2

    message = struct_pb2.Struct()
    message.update(value)
    return message


def test_real_pack_declares_every_policy_with_its_level(analyzer):
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    levels = {p.name: analyzer_pb2.EnforcementLevel.Name(p.enforcementLevel).lower() for p in info.policies}
    assert levels == {p.name: p.enforcement_level.value for p in rules.POLICIES}
    assert info.supportsConfig


def test_real_pack_refuses_a_public_bucket_and_honors_an_exemption(analyzer):
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    target = urn(MINIO_BUCKET, "open-bucket", stack="local")

    def analyze(props: dict) -> list:
        response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type=MINIO_BUCKET, properties=struct(props), urn=target, name="open-bucket"))
        return [(d.policyName, analyzer_pb2.EnforcementLevel.Name(d.enforcementLevel)) for d in response.diagnostics]

    assert analyze({"bucket": "open", "acl": "public-read"}) == [("minio-bucket-private", "MANDATORY")]
    assert analyze({"bucket": "open", "acl": UNKNOWN_STRING_VALUE}) == []

    config = analyzer_pb2.PolicyConfig(
        enforcementLevel=analyzer_pb2.MANDATORY,
        properties=struct({"exemptions": [{"urn": target, "reason": "demo bucket, SEC-1"}]}),
    )
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"minio-bucket-private": config}))
    assert analyze({"bucket": "open", "acl": "public-read"}) == []


def test_real_pack_matches_a_preview_public_access_block_by_property_dependency(analyzer):
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    bucket, block = urn(BUCKET, "loki-bucket"), urn(PAB, "loki-public-access-block")
    flags = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)

    def analyze_stack(dependencies: list[str]) -> list[tuple[str, str]]:
        resources = [
            analyzer_pb2.AnalyzerResource(type=BUCKET, properties=struct({"bucket": "acme-loki"}), urn=bucket, name="loki-bucket"),
            analyzer_pb2.AnalyzerResource(
                type=PAB, properties=struct({"bucket": UNKNOWN_STRING_VALUE, **flags}), urn=block, name="loki-public-access-block",
                propertyDependencies={"bucket": analyzer_pb2.AnalyzerPropertyDependencies(urns=dependencies)},
            ),
        ]
        response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources))
        return [(d.policyName, d.urn) for d in response.diagnostics if d.policyName == "s3-public-access-block"]

    assert analyze_stack([bucket]) == []
    assert analyze_stack([urn(BUCKET, "other-bucket")]) == [("s3-public-access-block", bucket)]


# ---------------------------------------------------------------- pull-request checks
def workflows() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / ".github/workflows").glob("*.yml"))}


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_every_action_is_pinned_to_a_full_version_or_commit():
    for name, workflow in workflows().items():
        for step in steps(workflow):
            if "uses" in step:
                assert re.search(r"@(v\d+\.\d+\.\d+|[0-9a-f]{40})$", step["uses"]), f"{name}: {step['uses']} is not pinned exactly"


def test_pull_requests_run_tests_offline_plans_and_policy_previews():
    pr = workflows()["pull-request.yml"]
    triggers = pr[True] if True in pr else pr["on"]  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    offline_job = pr["jobs"]["offline"]
    commands = "\n".join(step.get("run", "") for step in offline_job["steps"])
    assert "make test" in commands and "python -m tools.plan --stack" in commands and "--json" in commands
    # Every stack file, the Thanos spokes too (tests/test_makefile.py runs this loop).
    assert "for file in Pulumi.*.yaml" in commands
    assert "secrets." not in json.dumps(offline_job), "the offline job must work for forks, without secrets"

    preview = pr["jobs"]["preview"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in preview["if"]
    (pulumi_step,) = [s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi_step["with"]["command"] == "preview" and pulumi_step["with"]["policyPacks"] == "policies"
    assert pulumi_step["with"]["comment-on-pr"] is True
    assert set(preview["strategy"]["matrix"]["stack"]) == {"local", "staging", "prod"}


def test_staging_deploys_on_main_and_prod_only_by_hand_behind_an_environment():
    deploy = workflows()["deploy.yml"]
    triggers = deploy[True] if True in deploy else deploy["on"]
    assert triggers["push"]["branches"] == ["main"] and "workflow_dispatch" in triggers
    staging, prod = deploy["jobs"]["staging"], deploy["jobs"]["prod"]
    assert staging["if"] == "github.event_name == 'push'" and "github.event_name == 'workflow_dispatch'" in prod["if"]
    assert prod["environment"] == "production"
    for job, stack in ((staging, "staging"), (prod, "prod")):
        (up,) = [s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@")]
        assert up["with"]["command"] == "up" and up["with"]["stack-name"] == stack and up["with"]["policyPacks"] == "policies"


# ---------------------------------------------------------------- each statement, rule and condition is looked at
def test_unknowns_behind_the_analyzers_proxy_become_unknown():
    props = offline.policy_props({"a": UNKNOWN, "b": [UNKNOWN, 1], "c": {"d": UNKNOWN, "e": "x"}})
    assert rules.plain(props) == {"a": rules.UNKNOWN, "b": [rules.UNKNOWN, 1], "c": {"d": rules.UNKNOWN, "e": "x"}}


def test_a_statement_without_effect_allows_nothing():
    assert check_resource("s3-no-public-bucket-policy", BUCKET_POLICY, {"bucket": "b", "policy": doc({"Principal": "*", "Action": "s3:GetObject", "Resource": "*"})}) == []


def test_every_statement_and_condition_of_a_bucket_policy_is_checked():
    pinned = allow("*", Condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}})
    named = allow({"AWS": "arn:aws:iam::123456789012:role/loki"})
    for first in (tls_only_statement(), named, pinned):
        messages = check_resource("s3-no-public-bucket-policy", BUCKET_POLICY, {"bucket": "b", "policy": doc(first, allow("*"))})
        assert messages == [public_statement("statement 1")], first
    # A condition pins the caller when any of its operators does.
    either = allow("*", Condition={"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"aws:SourceVpce": "vpce-1"}})
    assert check_resource("s3-no-public-bucket-policy", BUCKET_POLICY, {"bucket": "b", "policy": doc(either)}) == []


@pytest.mark.parametrize("values", ["", [""], ["vpce-1", ""], ["vpce-*"]])
def test_an_empty_or_wildcard_condition_value_pins_nobody(values):
    policy = doc(allow("*", Condition={"StringEquals": {"aws:SourceVpce": values}}))
    assert check_resource("s3-no-public-bucket-policy", BUCKET_POLICY, {"bucket": "b", "policy": policy}) == [public_statement("statement 0")]


def test_a_public_access_block_counts_for_the_bucket_it_names_only():
    (typ, name, props) = hardened()[1]
    # "a" sorts before "b": only equality of names attaches a block to a bucket.
    assert stack_violations(*hardened(pab=(typ, name, {**props, "bucket": "a"}))) == [("s3-public-access-block", urn(BUCKET, "bucket"), NO_PAB)]


def test_public_access_block_flags_must_be_the_boolean_true():
    (typ, name, props) = hardened()[1]
    assert stack_violations(*hardened(pab=(typ, name, {**props, "blockPublicAcls": 1}))) == [("s3-public-access-block", urn(BUCKET, "bucket"), NO_PAB)]


@pytest.mark.parametrize("statement", [
    # An Allow is no denial, whatever its condition.
    {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    # A denial of one principal leaves everyone else on plain HTTP.
    {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    # A denial of reads only leaves writes on plain HTTP.
    {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": ""}}},
])
def test_only_a_denial_of_everything_without_tls_is_tls_only(statement):
    part = (BUCKET_POLICY, "tls", {"bucket": "b", "policy": doc(statement)})
    assert [u for p, u, _ in stack_violations(*hardened(policy=part)) if p == "s3-tls-only"] == [urn(BUCKET, "bucket")]
    # Followed by the real denial, the same statement does no harm.
    part = (BUCKET_POLICY, "tls", {"bucket": "b", "policy": doc(statement, tls_only_statement())})
    assert [v for v in stack_violations(*hardened(policy=part)) if v[0] == "s3-tls-only"] == []


@pytest.mark.parametrize("abort", [{"daysAfterInitiation": 0}, {"daysAfterInitiation": True}, {"daysAfterInitiation": -1}])
def test_abort_rule_needs_a_positive_number_of_days(abort):
    assert [v[0] for v in stack_violations(*hardened(lifecycle=lifecycle(abortIncompleteMultipartUpload=abort)))] == ["s3-abort-incomplete-multipart"]


def test_abort_rule_after_other_rules_counts_and_status_is_compared_by_value():
    expire = {"id": "expire", "status": "Enabled", "filter": {"prefix": "fake/"}, "expiration": {"days": 30}}
    abort = {"id": "abort", "status": "".join(["Enab", "led"]), "filter": {"prefix": ""}, "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1.0}}
    part = (LIFECYCLE, "lifecycle", {"bucket": "b", "rules": [expire, abort]})
    assert stack_violations(*hardened(lifecycle=part)) == []
    wrong_everywhere = lifecycle(status="Disabled", abortIncompleteMultipartUpload={"daysAfterInitiation": 0}, filter={"prefix": "x/"})
    assert [v[0] for v in stack_violations(*hardened(lifecycle=wrong_everywhere))] == ["s3-abort-incomplete-multipart"]


def test_archive_transition_after_a_rule_that_is_not_an_object_is_still_found():
    props = {"bucket": "b", "rules": ["not a rule", {"id": "x", "transitions": [{"days": 60, "storageClass": "GLACIER"}]}]}
    assert [m.split(";")[0] for _, _, m in resource_violations(LIFECYCLE, props)] == ["rule x moves objects to GLACIER"]


def test_every_inline_policy_and_statement_is_checked_for_wildcards():
    wildcard = doc({"Effect": "Deny", "Action": "s3:*", "Resource": "*"}, allow(None, action="s3:*"))
    props = {"assumeRolePolicy": "{}", "inlinePolicies": [{"name": "a", "policy": UNKNOWN}, {"name": "b", "policy": "not json"},
                                                          {"name": "c", "policy": wildcard}]}
    assert [m for _, _, m in resource_violations(ROLE, props)] == [
        "inlinePolicies[1] is not a JSON object, so it cannot be shown to be least-privilege.",
        least("inlinePolicies[2] statement 1 allows action s3:*")]


def test_minio_bucket_with_any_acl_but_private_is_refused():
    assert [p for p, _, _ in resource_violations(MINIO_BUCKET, {"bucket": "b", "acl": "authenticated-read"})] == ["minio-bucket-private"]


def test_web_identity_trust_names_the_issuer_it_trusts():
    messages = check_resource("irsa-trust-restricts-sub-and-aud", ROLE, {"assumeRolePolicy": irsa({"StringEquals": AUD})})
    # Condition keys are case-insensitive; the rule compares and names them in lower case.
    assert messages == [f"statement 0 trusts web identities without StringEquals {ISSUER.lower()}:sub = system:serviceaccount:<ns>:<sa>; "
                        "any service account in the cluster could assume the role."]


def test_every_trust_statement_is_checked_whatever_its_action():
    service = {"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
    federated = {"Effect": "Allow", "Principal": {"Federated": OIDC_ARN}, "Action": "sts:AssumeRole"}
    messages = check_resource("irsa-trust-restricts-sub-and-aud", ROLE, {"assumeRolePolicy": doc(service, federated)})
    assert [m.split(" trusts")[0] + (":sub" if ":sub" in m else ":aud") for m in messages] == ["statement 1:sub", "statement 1:aud"]


def test_rule_annotations_name_real_types():
    # As in the renderers: whatever evaluates the (string) annotations must find real types.
    import inspect
    import typing

    typing.get_type_hints(rules)
    for name, function in inspect.getmembers(rules, inspect.isfunction):
        if function.__module__ == rules.__name__:
            typing.get_type_hints(function)


# ---------------------------------------------------------------- more of what each rule decides
def test_the_engines_unknown_is_unknown_however_the_string_was_built():
    # The plan's JSON gives a new string object, never the constant itself.
    assert rules.plain("".join(["[unk", "nown]"])) is rules.UNKNOWN
    assert rules.plain({"a": "[unknown]x"}) == {"a": "[unknown]x"}


@pytest.mark.parametrize("statement", [
    # A Deny without a principal (an identity-policy statement) binds no caller of the bucket.
    {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    # A statement without an effect denies nothing.
    {"Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
])
def test_a_denial_must_name_every_principal_and_say_deny(statement):
    part = (BUCKET_POLICY, "tls", {"bucket": "b", "policy": doc(statement)})
    assert [u for p, u, _ in stack_violations(*hardened(policy=part)) if p == "s3-tls-only"] == [urn(BUCKET, "bucket")]


def test_a_bucket_policy_that_is_not_json_is_no_tls_only_policy():
    part = (BUCKET_POLICY, "tls", {"bucket": "b", "policy": "{not json"})
    assert check_stack("s3-tls-only", *hardened(policy=part)) == [
        (urn(BUCKET, "bucket"), 'bucket b: no bucket policy denying s3:* to "*" on the bucket and its objects when aws:SecureTransport is false.')]


def test_abort_rule_with_a_legacy_prefix_covers_only_that_prefix():
    part = (LIFECYCLE, "lifecycle", {"bucket": "b", "rules": [{"id": "abort", "status": "Enabled", "prefix": "logs/",
                                                                 "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}}]})
    assert [(p, u) for p, u, _ in stack_violations(*hardened(lifecycle=part))] == [("s3-abort-incomplete-multipart", urn(BUCKET, "bucket"))]


def test_abort_rule_with_an_unknown_legacy_prefix_is_not_decided():
    part = (LIFECYCLE, "lifecycle", {"bucket": "b", "rules": [{"id": "abort", "status": "Enabled", "prefix": UNKNOWN,
                                                                 "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}}]})
    assert check_stack("s3-abort-incomplete-multipart", *hardened(lifecycle=part)) == []


def test_abort_rule_status_is_exactly_enabled():
    # S3 knows "Enabled" and "Disabled"; anything else enables nothing.
    assert [p for p, _, _ in stack_violations(*hardened(lifecycle=lifecycle(status="enabled")))] == ["s3-abort-incomplete-multipart"]


def test_a_federated_principal_that_is_not_a_string_is_skipped():
    statement = {"Effect": "Allow", "Principal": {"Federated": [7, OIDC_ARN]}, "Action": "sts:AssumeRoleWithWebIdentity",
                 "Condition": {"StringEquals": {**SUB, **AUD}}}
    assert check_resource("irsa-trust-restricts-sub-and-aud", ROLE, {"assumeRolePolicy": doc(statement)}) == []


# ---------------------------------------------------------------- which bucket a preview's block configures
def preview_stack(sources: Optional[list[str]]) -> list[tuple[str, str]]:
    """s3-public-access-block on two new buckets (names unknown) and one block whose `bucket` input
    comes from `sources` (bucket resource names), as the analyzer gives a preview; None: the engine
    does not say where the input comes from."""
    names = ("a-bucket", "c-bucket")
    flags = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)
    registrations = [engine.Registration(urn=urn(BUCKET, n), type=BUCKET, name=n, parent="", custom=True, inputs={"bucket": UNKNOWN}) for n in names]
    registrations.append(engine.Registration(urn=urn(PAB, "pab"), type=PAB, name="pab", parent="", custom=True, inputs={"bucket": UNKNOWN, **flags}))
    resources = offline.policy_resources(registrations)
    if sources is not None:
        # The analyzer builds each dependency as its own object: equal URNs, not the same string.
        by_name = {r.name: r for r in resources}
        resources[-1].property_dependencies = {"bucket": [
            rules.PolicyResource(BUCKET, {}, "".join(list(by_name[s].urn)), s, by_name[s].opts, None, None, [], {}) for s in sources]}
    found: list[tuple[str, str]] = []
    POLICY["s3-public-access-block"].validate(StackValidationArgs(resources, None), lambda message, urn=None: found.append((urn or "", message)))
    return found


def test_a_preview_block_configures_the_bucket_its_input_comes_from_and_no_other():
    def refused(sources):
        return [u.rsplit("::", 1)[1] for u, _ in preview_stack(sources)]

    assert refused(["a-bucket"]) == ["c-bucket"]
    assert refused(["c-bucket"]) == ["a-bucket"]
    assert refused(["a-bucket", "c-bucket"]) == []
    assert refused([]) == ["a-bucket", "c-bucket"]
    # Without the engine saying where the input comes from, the block might be either's.
    assert refused(None) == []


def test_a_failing_block_before_the_right_one_does_not_hide_it():
    (typ, name, props) = hardened()[1]
    first = (typ, "pab-off", {**props, "blockPublicAcls": False})
    assert stack_violations(first, *hardened()) == []


# ---------------------------------------------------------------- exemption config schema
def schema_errors(schema, config: dict) -> list[str]:
    import jsonschema

    # The engine checks a policy's config against its config schema, an object schema of these properties.
    validator = jsonschema.Draft7Validator({"type": "object", "properties": schema.properties})
    return [e.message for e in validator.iter_errors(config)]


def test_exemption_config_needs_a_urn_and_a_reason_with_some_text():
    ok = {"urn": "u", "reason": "r"}
    assert schema_errors(rules.EXEMPTIONS_SCHEMA, {"exemptions": [ok]}) == []
    for bad in ({"urn": "", "reason": "r"}, {"urn": "u", "reason": ""}, {"urn": "u", "reason": " \t"}, {"urn": "u"}, {"reason": "r"}):
        assert schema_errors(rules.EXEMPTIONS_SCHEMA, {"exemptions": [bad]}) != [], bad


def test_exemption_notice_config_also_needs_the_policy():
    ok = {"policy": "p", "urn": "u", "reason": "r"}
    assert schema_errors(rules.NOTICE_SCHEMA, {"exemptions": [ok]}) == []
    for bad in ({**ok, "policy": ""}, {"urn": "u", "reason": "r"}, {**ok, "urn": ""}, {**ok, "reason": " "}):
        assert schema_errors(rules.NOTICE_SCHEMA, {"exemptions": [bad]}) != [], bad


# ---------------------------------------------------------------- thanos-one-compactor-per-bucket
CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
ASG = "aws:autoscaling/group:Group"
DEPLOYMENT, STATEFULSET, DAEMONSET = (f"kubernetes:apps/v1:{kind}" for kind in ("Deployment", "StatefulSet", "DaemonSet"))
THANOS_BUCKET = (MINIO_BUCKET, "thanos-bucket", {"bucket": "thanos"})
# components/core/renderers/thanos.py writes this label (Docker) or annotation (Kubernetes).
BUCKET_LABEL = "obs-storage.thanos-bucket"


def docker_labels(bucket: Any) -> list[dict]:
    # Swarm adds labels of its own; the bucket's is found among them.
    return [{"label": "com.docker.stack.namespace", "value": "other"}] + ([{"label": BUCKET_LABEL, "value": bucket}] if bucket is not None else [])


def container(bucket: Any, command: Any = ("compact", "--wait"), key: str = "command", name: str = "compact") -> tuple:
    return (CONTAINER, name, {"name": name, key: list(command), "labels": docker_labels(bucket)})


def service(bucket: Any, mode: Any = None, args: Any = ("compact", "--wait"), name: str = "compact") -> tuple:
    props = {"name": name, "taskSpec": {"containerSpec": {"image": "quay.io/thanos/thanos:v0.42.4", "args": list(args)}},
             "labels": docker_labels(bucket)}
    if mode is not None:
        props["mode"] = mode
    return (SERVICE, name, props)


def workload(bucket: Any, kind: str = STATEFULSET, replicas: Any = "unset", key: str = "args", command: Any = ("compact", "--wait")) -> tuple:
    spec = {"template": {"spec": {"containers": [{"name": "sidecar", "args": ["sidecar"]}, {"name": "c", key: list(command)}]}}}
    if replicas != "unset":
        spec["replicas"] = replicas
    metadata = {"name": "compact", **({"annotations": {BUCKET_LABEL: bucket}} if bucket is not None else {})}
    return (kind, "compact", {"metadata": metadata, "spec": spec})


def compaction(*resources: tuple) -> list[tuple[str, str]]:
    """(resource name, message) the compactor policy reports."""
    return [(u.rsplit("::", 1)[1], m) for u, m in check_stack("thanos-one-compactor-per-bucket", *resources)]


def test_policy_label_is_the_one_the_workloads_carry():
    from components.core.renderers import thanos as thanos_renderer

    assert BUCKET_LABEL == rules.COMPACTOR_BUCKET_LABEL == thanos_renderer.COMPACTOR_BUCKET_LABEL


@pytest.mark.parametrize("words", [["compact", "--wait"], ["thanos", "compact"], ["/bin/thanos", "compact", "--wait"], "compact"])
def test_a_command_line_running_thanos_compact_is_a_compactor(words):
    assert rules.runs_thanos_compact(words) is True


@pytest.mark.parametrize("words", [["store"], ["thanos", "query"], ["thanos"], [], None, ["compactor"], ["/bin/thanos-compact"],
                                   ["thanos", "tools", "bucket", "compact"], ["sidecar", "compact"],
                                   # Another program's compact subcommand (its name sorts after "thanos").
                                   ["/usr/bin/tsdb-tool", "compact"]])
def test_other_command_lines_are_not_compactors(words):
    assert rules.runs_thanos_compact(words) is False


NO_NAME = (f"a Thanos compactor that does not name its bucket ({BUCKET_LABEL} label or annotation); "
           "the pack cannot show it compacts a bucket this stack owns.")


def not_owned(bucket: str) -> str:
    return (f"compacts bucket {bucket}, which this stack does not declare; only the stack that owns a bucket (the Thanos hub) "
            "runs its one compactor. Remove it (a spoke only uploads).")


def fleet_group(bucket: Any, max_size: Any = 1, name: str = "compact") -> tuple:
    """An EC2 Auto Scaling group whose instances run the compactor (components/ec2/fleet.py tags it)."""
    tags = [{"key": "obs-storage:fleet", "value": "thanos-compact", "propagateAtLaunch": True}]
    tags += [{"key": BUCKET_LABEL, "value": bucket, "propagateAtLaunch": True}] if bucket is not None else []
    return (ASG, name, {"name": name, "minSize": 1, "maxSize": max_size, "tags": tags})


KINDS = {
    "ec2 fleet group": lambda bucket: fleet_group(bucket),
    "container command": lambda bucket: container(bucket),
    "container entrypoints": lambda bucket: container(bucket, ("/bin/thanos", "compact"), key="entrypoints"),
    "swarm service": lambda bucket: service(bucket),
    "deployment command": lambda bucket: workload(bucket, DEPLOYMENT, key="command", command=("thanos", "compact")),
    "statefulset args": lambda bucket: workload(bucket, STATEFULSET),
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_compactor_of_each_kind_must_name_a_bucket_its_stack_owns(kind):
    make = KINDS[kind]
    assert compaction(THANOS_BUCKET, make("thanos")) == []
    assert compaction((BUCKET, "aws-bucket", {"bucket": "thanos"}), make("thanos")) == []
    assert compaction(THANOS_BUCKET, make("hub-thanos")) == [("compact", not_owned("hub-thanos"))]
    # A group is found by its tag: without one it is no compactor to the pack (fleet.py always tags it).
    assert compaction(THANOS_BUCKET, make(None)) == ([] if kind == "ec2 fleet group" else [("compact", NO_NAME)])
    assert compaction(THANOS_BUCKET, make("")) == [("compact", NO_NAME)]


def test_a_compactor_of_an_unknown_bucket_is_not_decided_and_the_next_one_still_is():
    assert compaction(THANOS_BUCKET, container(UNKNOWN, name="a"), container(None, name="b")) == [("b", NO_NAME)]


def test_a_compactor_that_names_no_bucket_does_not_hide_the_next_one():
    refused = compaction(THANOS_BUCKET, container(None, name="a"), service("thanos", {"replicated": {"replicas": 2}}, name="b"))
    assert [name for name, _ in refused] == ["a", "b"]


def test_a_bucket_of_unknown_name_might_be_the_compacted_one():
    assert compaction((MINIO_BUCKET, "new", {"bucket": UNKNOWN}), container("thanos")) == []
    assert compaction((MINIO_BUCKET, "new", {"bucket": UNKNOWN}), THANOS_BUCKET, container("hub-thanos")) == []


def replicated(bucket: str, replicas: Any) -> str:
    return f"the compactor of bucket {bucket} runs {replicas} replicas; two compactors on one bucket corrupt it. Run one."


@pytest.mark.parametrize("compactor", [
    workload("thanos"), workload("thanos", replicas=1), workload("thanos", replicas=1.0), workload("thanos", replicas=0),
    workload("thanos", DEPLOYMENT, replicas=UNKNOWN), service("thanos"), service("thanos", {}), service("thanos", {"replicated": {}}),
    service("thanos", {"replicated": {"replicas": 1}}), service("thanos", {"global": False}), fleet_group("thanos"),
])
def test_one_replica_or_the_default_passes(compactor):
    assert compaction(THANOS_BUCKET, compactor) == []


@pytest.mark.parametrize("compactor, replicas", [
    (workload("thanos", replicas=2), 2), (workload("thanos", DEPLOYMENT, replicas=3.0), 3.0), (workload("thanos", DAEMONSET), "every node"),
    (service("thanos", {"replicated": {"replicas": 2}}), 2), (service("thanos", {"global": True}), "every node"),
    (fleet_group("thanos", max_size=2), 2),
])
def test_more_than_one_replica_is_refused(compactor, replicas):
    assert compaction(THANOS_BUCKET, compactor) == [("compact", replicated("thanos", replicas))]


def test_a_second_compactor_of_a_bucket_is_refused_and_names_the_first():
    first = container("thanos", name="a")
    assert compaction(THANOS_BUCKET, first, service("thanos", name="b"), container("other", name="c"), (MINIO_BUCKET, "o", {"bucket": "other"})) == [
        ("b", f"a second compactor of bucket thanos (the first is {urn(CONTAINER, 'a')}); two compactors on one bucket corrupt it.")]


def test_other_thanos_components_and_other_resource_types_are_not_compactors():
    compact_args = {"args": ["compact"], "command": ["compact"], "entrypoints": ["compact"]}
    assert compaction(container(None, ("store",)), service(None, args=("query",)), workload(None, command=("receive",)),
                      ("kubernetes:batch/v1:Job", "job", {"spec": {"template": {"spec": {"containers": [compact_args]}}}}),
                      ("kubernetes:apps/v1:ReplicaSet", "rs", {"spec": {"template": {"spec": {"containers": [compact_args]}}}})) == []


@pytest.mark.parametrize("props", [{"spec": "x"}, {"spec": {"template": "x"}}, {"spec": {"template": {"spec": None}}}, {"metadata": "x"}])
def test_a_workload_of_odd_shape_is_no_compactor_and_no_crash(props):
    assert compaction((DEPLOYMENT, "odd", props)) == []


# ---------------------------------------------------------------- the offline run presents the plan as the analyzer would
def test_offline_secrets_and_unknowns_reach_the_rules_as_the_analyzer_gives_them():
    from pulumi_policy.proxy import UnknownValueError

    props = offline.policy_props({"acl": "[secret]", "nested": {"a": ["[unknown]", "x"]}})
    with pytest.raises(UnknownValueError):
        props["acl"]
    with pytest.raises(UnknownValueError):
        props["nested"]["a"][0]
    assert rules.plain(props) == {"acl": rules.UNKNOWN, "nested": {"a": [rules.UNKNOWN, "x"]}}
    # A value the plan keeps secret is not judged: it is not the string "[secret]".
    assert check_resource("minio-bucket-private", MINIO_BUCKET, {"bucket": "b", "acl": "[secret]"}) == []


def test_offline_links_parents_and_dependencies_as_the_analyzer_does():
    bucket_urn = urn(BUCKET, "bucket")
    registrations = [
        engine.Registration(urn=bucket_urn, type=BUCKET, name="bucket", parent="", custom=True, inputs={"bucket": "b"}),
        engine.Registration(urn=urn(PAB, "pab"), type=PAB, name="pab", parent=bucket_urn, custom=True, inputs={"bucket": "b"},
                            depends_on=[bucket_urn, urn(BUCKET, "not-in-this-plan")]),
    ]
    bucket, block = offline.policy_resources(registrations)
    assert block.parent is bucket and block.dependencies == [bucket]
    assert bucket.parent is None and bucket.dependencies == []


def test_offline_rule_that_reads_an_unknown_itself_gets_a_note_not_a_verdict():
    from pulumi_policy import EnforcementLevel

    def reads_acl(args, report_violation):
        report_violation(f"acl is {args.props['acl']}")

    policy = ResourceValidationPolicy(name="reads-acl", description="test", validate=reads_acl, enforcement_level=EnforcementLevel.MANDATORY)
    target = urn(MINIO_BUCKET, "r")
    args = ResourceValidationArgs(MINIO_BUCKET, offline.policy_props({"acl": "[unknown]"}), target, "r", None, None, None)
    found: list[dict[str, str]] = []
    offline._run(policy, args, target, found)
    assert [(v["policy"], v["enforcement"], v["urn"]) for v in found] == [("reads-acl", "advisory", target)]
    assert found[0]["message"].startswith("can't run policy during preview: ")


def test_exemptions_file_that_is_not_yaml_is_one_problem(tmp_path):
    path = tmp_path / "exemptions.yaml"
    path.write_text("staging: [\n")
    valid, problems = offline.load_exemptions("staging", path)
    assert valid == [] and len(problems) == 1
    assert problems[0].startswith("exemptions.yaml: not valid YAML (") and problems[0].endswith("); fix the file.")


def test_an_exemption_that_is_not_a_mapping_does_not_hide_the_next(tmp_path):
    path = tmp_path / "exemptions.yaml"
    good = {"policy": "s3-tls-only", "urn": urn(BUCKET, "bucket"), "reason": "legacy client (OPS-7)"}
    path.write_text(yaml.safe_dump({"staging": ["s3-tls-only", good]}))
    assert offline.load_exemptions("staging", path) == ([good], ["exemptions.yaml: staging[0]: expected a mapping with policy, urn and reason."])


def test_pack_config_cli_needs_a_stack(capsys):
    with pytest.raises(SystemExit) as info:
        offline.main([])
    assert info.value.code == 2 and "--stack" in capsys.readouterr().err


# ---------------------------------------------------------------- documents and statements of every shape
def test_a_bucket_policy_given_as_an_object_is_judged_as_its_json():
    # pulumi_aws 7.51.1 (requirements.txt), pulumi_aws/s3/bucket_policy.py: BucketPolicy's `policy`
    # is Input[Union[str, PolicyDocumentArgs]], so a program may hand the document as an object.
    assert resource_violations(BUCKET_POLICY, {"bucket": "b", "policy": json.loads(doc(allow("*")))}) == [("s3-no-public-bucket-policy", urn(BUCKET_POLICY, "r"), public_statement("statement 0"))]
    tls = (BUCKET_POLICY, "tls", {"bucket": "b", "policy": json.loads(tls_only())})
    assert resource_violations(BUCKET_POLICY, tls[2]) == [] and stack_violations(*hardened(policy=tls)) == []
    # An object that is no document (a list of statements) is refused like text that is not JSON.
    assert check_resource("s3-no-public-bucket-policy", BUCKET_POLICY, {"bucket": "b", "policy": [allow("*")]}) == [
        "the bucket policy is not a JSON object, so it cannot be shown to be private."]


def test_a_statement_that_is_not_an_object_is_skipped_and_the_next_keeps_its_position():
    policy = json.dumps({"Version": "2012-10-17", "Statement": ["junk", allow("*")]})
    assert check_resource("s3-no-public-bucket-policy", BUCKET_POLICY, {"bucket": "b", "policy": policy}) == [public_statement("statement 1")]


def test_a_tls_deny_resource_that_is_not_a_string_covers_nothing():
    # Only strings are ARNs: an object beside the bucket's ARN leaves its objects uncovered.
    part = (BUCKET_POLICY, "tls", {"bucket": "b", "policy": doc({**tls_only_statement(), "Resource": ["arn:aws:s3:::b", {"Ref": "b/*"}]})})
    assert [u for p, u, _ in stack_violations(*hardened(policy=part)) if p == "s3-tls-only"] == [urn(BUCKET, "bucket")]


def test_a_tls_deny_under_bool_if_exists_and_any_key_case_counts():
    # IAM: condition key names are not case-sensitive, and a ...IfExists operator also matches when
    # the key is present (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html,
    # reference_policies_elements_condition_operators.html#Conditions_IfExists); aws:SecureTransport
    # is present on every S3 request, so the deny holds for plain HTTP either way.
    statement = {**tls_only_statement(), "Condition": {"BoolIfExists": {"AWS:SECURETRANSPORT": "false"}}}
    assert check_stack("s3-tls-only", *hardened(policy=(BUCKET_POLICY, "tls", {"bucket": "b", "policy": doc(statement)}))) == []
    statement["Condition"]["BoolIfExists"]["AWS:SECURETRANSPORT"] = "true"
    assert check_stack("s3-tls-only", *hardened(policy=(BUCKET_POLICY, "tls", {"bucket": "b", "policy": doc(statement)}))) == [
        (urn(BUCKET, "bucket"), 'bucket b: no bucket policy denying s3:* to "*" on the bucket and its objects when aws:SecureTransport is false.')]


GOOGLE = {"Effect": "Allow", "Principal": {"Federated": "accounts.google.com"}, "Action": "sts:AssumeRoleWithWebIdentity"}


def test_a_web_identity_trust_of_an_issuer_without_an_oidc_provider_arn_needs_sub_and_aud_too():
    # Google's keys are accounts.google.com:sub and accounts.google.com:aud
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#condition-keys-wif);
    # no oidc-provider/ ARN names the issuer, so the messages say <issuer>.
    assert check_resource("irsa-trust-restricts-sub-and-aud", ROLE, {"assumeRolePolicy": doc(GOOGLE)}) == [
        "statement 0 trusts web identities without StringEquals <issuer>:sub = system:serviceaccount:<ns>:<sa>; "
        "any service account in the cluster could assume the role.",
        "statement 0 trusts web identities without StringEquals <issuer>:aud = sts.amazonaws.com."]
    pinned = {**GOOGLE, "Condition": {"StringEquals": {"accounts.google.com:sub": "110123456789", "accounts.google.com:aud": "app.apps.googleusercontent.com"}}}
    assert check_resource("irsa-trust-restricts-sub-and-aud", ROLE, {"assumeRolePolicy": doc(pinned)}) == []


def test_an_exemption_of_a_resource_the_stack_lacks_is_listed_as_stale():
    gone = urn(BUCKET, "gone")
    config = {"exemptions": [{"policy": "s3-tls-only", "urn": gone, "reason": " legacy client (OPS-7) "},
                             {"policy": "s3-tls-only", "urn": urn(BUCKET, "bucket"), "reason": "x"}]}
    # The stale one is reported on no resource (there is none), the other on its bucket.
    assert check_stack("policy-exemptions", *hardened(), config=config) == [
        ("", f"{gone} is exempt from s3-tls-only: legacy client (OPS-7) (no such resource in this stack: remove the stale exemption)"),
        (urn(BUCKET, "bucket"), f"{urn(BUCKET, 'bucket')} is exempt from s3-tls-only: x")]


def test_each_policy_runs_the_rule_of_its_name_as_the_kind_of_policy_the_rule_is_written_for():
    """s3-no-public-acl runs rules.s3_no_public_acl (through the exemption filter, which keeps the
    rule reachable as __wrapped__); a rule reading StackValidationArgs is a stack policy, one reading
    ResourceValidationArgs a resource policy: the analyzer hands each kind only its own arguments."""
    import inspect
    import typing

    def callback(policy):
        # pulumi_policy 1.21.0 (requirements.txt) keeps the `validate` argument in a private attribute
        # (pulumi_policy/policy.py, `__validate`).
        (found,) = [v for k, v in vars(policy).items() if k.endswith("__validate")]
        return found

    for policy in rules.POLICIES:
        rule = getattr(rules, policy.name.replace("-", "_"))
        assert inspect.unwrap(callback(policy)) is rule, policy.name
        reads = typing.get_type_hints(rule)["args"]
        kind = StackValidationPolicy if reads is StackValidationArgs else ResourceValidationPolicy
        assert reads in (StackValidationArgs, ResourceValidationArgs) and isinstance(policy, kind), policy.name
    # Every policy but the notice drops the violations its config exempts.
    assert [p.name for p in rules.POLICIES if callback(p) is getattr(rules, p.name.replace("-", "_"))] == [rules.NOTICE_POLICY]


# ---------------------------------------------------------------- every resource type a rule names
# Written out here, not read from rules.py: a type dropped from a rule's set must fail a test.
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
SSE_V2 = "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
LIFECYCLE_V2 = "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"
IDENTITY_POLICY_TYPES = [IAM_POLICY, ROLE_POLICY, "aws:iam/userPolicy:UserPolicy", "aws:iam/groupPolicy:GroupPolicy",
                         MINIO_IAM_POLICY, "minio:index/iamGroupPolicy:IamGroupPolicy", "minio:index/iamServiceAccount:IamServiceAccount"]
LOAD_BALANCER_TYPES = ["aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"]


@pytest.mark.parametrize("token", [BUCKET, BUCKET_V2, ACL, ACL_V2, BUCKET_POLICY, PAB, SSE, SSE_V2, LIFECYCLE, LIFECYCLE_V2, MINIO_BUCKET, MINIO_POLICY,
                                   ROLE, *IDENTITY_POLICY_TYPES, *LOAD_BALANCER_TYPES])
def test_each_type_a_rule_names_is_one_the_pinned_provider_declares(token):
    # A misspelt token would make its rule apply to nothing. The SDKs are the pinned ones
    # (requirements.txt); each declares its type tokens (or their aliases) in its own source.
    import importlib.util

    provider, module = token.split(":")[0], token.split(":")[1].split("/")[0]
    root = Path(importlib.util.find_spec(f"pulumi_{provider}").origin).parent
    where = root if module == "index" else root / module
    assert any(f"'{token}'" in p.read_text() or f'"{token}"' in p.read_text() for p in where.glob("*.py")), token


@pytest.mark.parametrize("typ", IDENTITY_POLICY_TYPES)
def test_every_identity_policy_type_is_checked_for_wildcards(typ):
    assert check_resource("iam-least-privilege", typ, {"policy": doc(allow(None, action="s3:*"))}) == [least("policy statement 0 allows action s3:*")]
    assert check_resource("iam-least-privilege", typ, {"policy": LOKI_ACCESS}) == []


@pytest.mark.parametrize("typ", LOAD_BALANCER_TYPES)
def test_every_load_balancer_type_must_be_internal(typ):
    assert len(check_resource("load-balancer-internal", typ, {"internal": False})) == 1
    assert check_resource("load-balancer-internal", typ, {"internal": True}) == []


def test_a_bucket_v2_is_judged_like_a_bucket():
    assert [p for p, _, _ in resource_violations(BUCKET_V2, {"bucket": "b", "acl": "public-read"})] == ["s3-no-public-acl"]
    v2 = [(BUCKET_V2, "bucket", {"bucket": "b"}), *hardened(bucket=None)]
    assert stack_violations(*v2) == []
    assert [p for p, _, _ in stack_violations(*[part for part in v2 if part[0] != PAB])] == ["s3-public-access-block"]


def test_the_v2_encryption_and_lifecycle_configurations_count():
    sse_v2 = (SSE_V2, "sse", {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]})
    lifecycle_v2 = (LIFECYCLE_V2, "lifecycle", lifecycle()[2])
    assert stack_violations(*hardened(sse=sse_v2, lifecycle=lifecycle_v2)) == []


def test_dual_layer_kms_is_default_encryption():
    # SSEAlgorithm: AES256 | aws:kms | aws:kms:dsse
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ServerSideEncryptionByDefault.html).
    sse = (SSE, "sse", {"bucket": "b", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms:dsse"}}]})
    assert check_stack("s3-default-encryption", *hardened(sse=sse)) == []
