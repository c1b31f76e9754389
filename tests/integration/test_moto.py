"""The staging plan's S3 and IAM resources applied to moto (AWS APIs in server mode, over TLS)
through boto3: moto refuses malformed documents as AWS does, `tools.verify` reads everything back,
and the roles' policies are judged by real calls made with each role's credentials.

What moto 5.2.5 cannot judge, and so what these tests leave to AWS itself:
- anonymous requests: moto authenticates nothing until told to, and then answers an unsigned
  request with HTTP 500 (moto/iam/access_control.py reads the Authorization header unconditionally);
- condition operators other than StringEquals in bucket policies are ignored
  (moto/iam/policy_conditions.py), so the TLS-only Deny (a `Bool` condition) denies every object
  request, over TLS too;
- iam:SimulatePrincipalPolicy is not implemented (HTTP 500);
- trust documents are validated on UpdateAssumeRolePolicy only, not on CreateRole
  (moto/iam/models.py), so the trust read-back check is what judges them here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration import adapter
from tests.integration.conftest import run_verify
from tools.verify import common as verify, identity as verify_identity

pytestmark = pytest.mark.real_server

# The non-PASS lines moto's limits (module docstring) produce, and nothing else may fail.
MOTO_LIMITS = [
    re.compile(r"\w+: anonymous LIST of \S+ denied: got allowed"),
    re.compile(r"\w+: anonymous GET not checked: cannot write probe object \S+: denied 403"),
    re.compile(r"[\w-]+: IAM policy simulation unavailable \(ResponseParserError: .*500", re.S),
]


def lines(result: dict[str, Any], status: str) -> list[str]:
    return [f"{r['subject']}: {r['detail']}" for r in result["results"] if r["status"] == status]


def test_staging_plan_applies_and_reads_back_as_declared(moto, plan_json, tmp_path):
    plan = plan_json("staging")
    adapter.apply_aws(plan, moto.client("s3"), moto.client("iam"))
    code, result, stderr = run_verify(plan["outputs"], tmp_path, "staging", "storage", "identity")
    passed, failed = lines(result, "PASS"), lines(result, "FAIL")
    unexplained = [f for f in failed if not any(p.match(f) for p in MOTO_LIMITS)]
    assert not unexplained, unexplained
    assert not lines(result, "SKIP")
    roles = {sa for identity in plan["outputs"]["identities"].values() for sa in identity["roleArns"]}
    namespace = next(iter(plan["outputs"]["identities"].values()))["namespace"]
    for tool, bucket in plan["outputs"]["buckets"].items():
        for wanted in ("public access block: all four flags on", "ownership controls BucketOwnerEnforced (ACLs disabled)", "default encryption AES256",
                       "bucket policy denies every request without TLS (aws:SecureTransport false)", "versioning Enabled (declared Enabled)"):
            assert f"{tool}: {wanted}" in passed, (tool, wanted)
        rule_ids = ", ".join(sorted(r["id"] for r in bucket["lifecycleRules"]))
        assert f"{tool}: lifecycle rules read back as declared: {rule_ids}" in passed
    for sa in roles:
        assert any(p.startswith(f"{sa}: trust: only system:serviceaccount:{namespace}:{sa} ") for p in passed), sa
        assert any(p.startswith(f"{sa}: role policy reads back as ") for p in passed), sa
    assert len(failed) == 2 * len(plan["outputs"]["buckets"]) + len(roles)


def _without_tls_policy(plan: dict[str, Any]) -> dict[str, Any]:
    """moto applies the TLS-only Deny to every object request (its condition is ignored), so the
    real-call tests leave it out; the read-back test above checks it."""
    return {**plan, "resources": [r for r in plan["resources"] if r["type"] != adapter.AWS_POLICY]}


def _role_calls(moto, moto_server, plan, tmp_path) -> verify.Report:
    """Each role's own credentials making the real calls `tools.verify` makes for local users.
    The sessions are opened before moto enforces authentication: with it on, moto refuses
    sts:AssumeRole into these roles, as AWS does, because they trust only web identities."""
    iam = moto.client("iam")
    iam.create_user(UserName="obs-test-admin")
    iam.put_user_policy(UserName="obs-test-admin", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="obs-test-admin")["AccessKey"]
    admin_keys = verify.Keys(key["AccessKeyId"], key["SecretAccessKey"])
    sts = moto.client("sts")
    sessions = {sa: sts.assume_role(RoleArn=arn, RoleSessionName="obs-test")["Credentials"]
                for identity in plan["outputs"]["identities"].values() for sa, arn in identity["roleArns"].items()}
    moto_server.post("/moto-api/reset-auth", b"0")  # from here on moto evaluates every request's policies
    stack = verify.Stack("staging", plan["outputs"])
    report = verify.Report(as_json=True)
    admin = stack.s3(admin_keys)
    for tool, identity in plan["outputs"]["identities"].items():
        for sa in identity["roleArns"]:
            c = sessions[sa]
            client = stack.s3(verify.Keys(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]))
            verify_identity.probe(stack, report, sa, tool, client, set(identity["serviceAccounts"][sa]), admin)
    return report


def test_each_role_may_do_exactly_its_grants_by_real_calls(moto, moto_server, plan_json, tmp_path):
    plan = _without_tls_policy(plan_json("staging"))
    adapter.apply_aws(plan, moto.client("s3"), moto.client("iam"))
    report = _role_calls(moto, moto_server, plan, tmp_path)
    failed = [f"{r.subject}: {r.detail}" for r in report.results if r.status != "PASS"]
    assert not failed, failed
    passed = [f"{r.subject}: {r.detail}" for r in report.results]
    # The store gateway reads only: its own write is refused by a real call.
    assert any(p.startswith("thanos-store: s3:PutObject on acme-staging-thanos/") and p.endswith(" denied") for p in passed), passed


@pytest.mark.parametrize(
    "role_policy, change, expected",
    [
        ("loki", lambda st: st.__setitem__("Resource", ["*"]), "s3:PutObject on tempo's bucket acme-staging-tempo denied: got allowed"),
        ("thanos-compact", lambda st: st.__setitem__("Action", [a for a in st["Action"] if a != "s3:DeleteObject"]), "s3:DeleteObject on acme-staging-thanos/"),
    ],
    ids=["too-wide", "too-narrow"],
)
def test_a_broken_role_policy_fails_by_a_real_call(moto, moto_server, plan_json, tmp_path, role_policy, change, expected):
    plan = _without_tls_policy(plan_json("staging"))
    sa = next(sa for identity in plan["outputs"]["identities"].values() for sa in identity["roleArns"] if sa.startswith(role_policy))

    def edit(resource):
        if resource["type"] == adapter.AWS_ROLE_POLICY and resource["name"] == f"{sa}-bucket-access":
            document = json.loads(resource["inputs"]["policy"])
            for st in document["Statement"]:
                if st["Sid"] == "ObjectsInOwnBucket":
                    change(st)
            resource["inputs"]["policy"] = json.dumps(document)

    adapter.apply_aws(plan, moto.client("s3"), moto.client("iam"), edit=edit)
    report = _role_calls(moto, moto_server, plan, tmp_path)
    failed = [f"{r.subject}: {r.detail}" for r in report.results if r.status == "FAIL"]
    assert any(f.startswith(f"{sa}: {expected}") for f in failed), failed


def _action_without_vendor(resource):
    if resource["type"] == adapter.AWS_ROLE_POLICY:
        document = json.loads(resource["inputs"]["policy"])
        document["Statement"][0]["Action"] = ["ListBucket"]
        resource["inputs"]["policy"] = json.dumps(document)


def _policy_without_resource(resource):
    if resource["type"] == adapter.AWS_ROLE_POLICY:
        document = json.loads(resource["inputs"]["policy"])
        del document["Statement"][0]["Resource"]
        resource["inputs"]["policy"] = json.dumps(document)


@pytest.mark.parametrize("edit, message", [(_action_without_vendor, "must be prefaced by a vendor"), (_policy_without_resource, "must contain resources")],
                         ids=["action-without-vendor", "policy-without-resource"])
def test_malformed_documents_are_refused_as_aws_refuses_them(moto, plan_json, edit, message):
    with pytest.raises(ClientError, match=message) as refused:
        adapter.apply_aws(plan_json("staging"), moto.client("s3"), moto.client("iam"), edit=edit)
    assert refused.value.response["Error"]["Code"] == "MalformedPolicyDocument"
