"""The decisions of `tools.verify`, without a server: for each PASS/FAIL decision a case it must
refuse and a neighbour it must accept. S3 and IAM answers are played by small fakes that raise
botocore's own ClientError, shaped as the servers answer (codes and statuses as
tests/integration/ sees them from SeaweedFS and moto). The same checks against real servers:
tests/integration/."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from components.core.renderers import freshness
from pathlib import Path

from tools.verify import cli, common as verify, freshness as verify_freshness, identity as verify_identity, storage as verify_storage, tools as verify_tools

ARN = "arn:aws:s3:::acme-loki"
ROOT = Path(__file__).resolve().parent.parent


def client_error(code: str, status: int | None, message: str = "") -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}
    if status is not None:
        response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, "Operation")


DENIED = client_error("AccessDenied", 403, "Access Denied")
BROKEN_KEY = client_error("SignatureDoesNotMatch", 403, "The request signature we calculated does not match")


def raising(error: Exception):
    def call():
        raise error

    return call


def report() -> verify.Report:
    return verify.Report(stream=io.StringIO())


def outcomes(r: verify.Report) -> list[tuple[str, str]]:
    return [(x.status, x.detail) for x in r.results]


# ---------------------------------------------------------------- one real call: allowed, denied or error
@pytest.mark.parametrize("error,expected", [
    (client_error("AccessDenied", 403, "Access Denied"), ("denied", "AccessDenied")),
    (client_error("Forbidden", 403), ("denied", "Forbidden")),
    # HEAD answers carry no body: botocore reports the status as the code.
    (client_error("403", 403), ("denied", "403")),
    (client_error("", 403), ("denied", "403")),
    (client_error("AccessDenied", None), ("denied", "AccessDenied")),
    # A broken or expired key is also a 403, but it proves nothing about what the identity may do.
    (client_error("SignatureDoesNotMatch", 403, "bad signature"), ("error", "SignatureDoesNotMatch: bad signature")),
    (client_error("InvalidAccessKeyId", 403, "no such key"), ("error", "InvalidAccessKeyId: no such key")),
    (client_error("InvalidToken", 400, "malformed token"), ("error", "InvalidToken: malformed token")),
    (client_error("ExpiredToken", 400, "expired"), ("error", "ExpiredToken: expired")),
    (client_error("NoSuchKey", 404, "The specified key does not exist."), ("error", "NoSuchKey: The specified key does not exist.")),
    (client_error("", 500), ("error", "500:")),
    (client_error("", 400), ("error", "400:")),
])
def test_a_403_is_a_denial_and_a_broken_key_is_an_error(error, expected):
    assert verify.attempt(raising(error)) == expected


def test_an_answered_call_is_allowed_and_an_unreachable_server_an_error():
    assert verify.attempt(lambda: {"Contents": []}) == ("allowed", {"Contents": []})
    outcome, detail = verify.attempt(raising(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")))
    assert outcome == "error" and "127.0.0.1:1" in detail


def test_report_check_passes_or_fails_with_the_reason():
    r = report()
    assert r.check("storage", "loki", True, "versioning Enabled", "never shown") is True
    assert r.check("storage", "loki", False, "versioning Enabled", "differs") is False
    assert r.check("storage", "loki", False, "bucket exists") is False
    r.skipped("tools", "loki", "not reachable")
    assert outcomes(r) == [("PASS", "versioning Enabled"), ("FAIL", "versioning Enabled: differs"), ("FAIL", "bucket exists"), ("SKIP", "not reachable")]
    assert r.counts() == {"PASS": 1, "FAIL": 2, "SKIP": 1}


# ---------------------------------------------------------------- TLS-only bucket policy
def tls_policy(**changes: Any) -> dict[str, Any]:
    statement = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [ARN, f"{ARN}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    statement.update(changes)
    return {"Version": "2012-10-17", "Statement": [{k: v for k, v in statement.items() if v is not None}]}


@pytest.mark.parametrize("changes", [
    {},
    {"Principal": {"AWS": "*"}},
    {"Action": "*"},
    {"Action": ["s3:GetObject", "s3:*"]},
    {"Resource": [f"{ARN}/*", ARN, "arn:aws:s3:::other"]},
    {"Condition": {"Bool": {"aws:SecureTransport": False}}},
])
def test_a_deny_of_plain_http_on_bucket_and_objects_passes(changes):
    assert verify_storage.denies_insecure_transport(tls_policy(**changes), ARN)


@pytest.mark.parametrize("changes", [
    {"Resource": [ARN]},  # the bucket only: objects readable over plain HTTP
    {"Resource": [f"{ARN}/*"]},  # the objects only
    {"Resource": ["arn:aws:s3:::acme-loki-other", "arn:aws:s3:::acme-loki-other/*"]},
    {"Effect": "Allow"},
    {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}},
    {"Action": ["s3:GetObject", "s3:PutObject"]},
    {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    {"Condition": {"StringEquals": {"aws:SecureTransport": "false"}}},
    {"Condition": None},
    # IAM's grammar: the effect is "Allow" or "Deny", and a Bool condition compares with "true" or "false".
    {"Effect": "deny"},
    {"Condition": {"Bool": {"aws:SecureTransport": "0"}}},
    {"Condition": {"Bool": {"aws:SecureTransport": ""}}},
])
def test_a_policy_that_leaves_plain_http_open_somewhere_fails(changes):
    assert not verify_storage.denies_insecure_transport(tls_policy(**changes), ARN)


def test_the_deny_may_be_any_statement_of_the_policy():
    policy = tls_policy()
    policy["Statement"].insert(0, {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject", "Resource": f"{ARN}/*"})
    assert verify_storage.denies_insecure_transport(policy, ARN)
    single = tls_policy()
    single["Statement"] = single["Statement"][0]  # one statement, not in a list
    assert verify_storage.denies_insecure_transport(single, ARN)
    assert not verify_storage.denies_insecure_transport({"Version": "2012-10-17"}, ARN)


# ---------------------------------------------------------------- storage checks on a fake bucket owner
def fresh(value: Any) -> Any:
    """`value` with new string objects, as a parsed answer has: never the interned literals of the code."""
    if isinstance(value, dict):
        return {fresh(k): fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fresh(v) for v in value]
    return "".join(list(value)) if isinstance(value, str) and len(value) > 1 else value


class FakeS3:
    """Answers per method name: a value, or an exception to raise. Records every call."""

    def __init__(self, **answers: Any):
        self.answers = answers
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, method: str):
        if method not in self.answers:
            raise AttributeError(method)

        def call(**kwargs):
            self.calls.append((method, kwargs))
            answer = self.answers[method]
            if isinstance(answer, Exception):
                raise answer
            return answer(**kwargs) if callable(answer) else fresh(answer)

        return call


def local_stack(**buckets: dict) -> verify.Stack:
    buckets = buckets or {"loki": {"name": "obs-loki", "prefix": "", "region": "us-east-1", "endpoint": "minio:9000"}}
    return verify.Stack("local", {"target": "local", "buckets": buckets}, run_id="run1")


@pytest.mark.parametrize("declared,answer,status", [
    (True, {"Status": "Enabled"}, "PASS"),
    (True, {"Status": "Suspended"}, "FAIL"),
    (True, {}, "FAIL"),
    (False, {}, "PASS"),
    (False, {"Status": "Suspended"}, "PASS"),
    (False, {"Status": "Enabled"}, "FAIL"),
])
def test_versioning_must_read_back_as_declared(declared, answer, status):
    r = report()
    verify_storage._versioning(r, "loki", "obs-loki", {"versioning": declared}, FakeS3(get_bucket_versioning=answer))
    assert [x.status for x in r.results] == [status]
    assert r.results[0].detail.startswith(f"versioning {answer.get('Status', 'never enabled')} (declared {'Enabled' if declared else 'off'})")


def test_unreadable_versioning_fails():
    r = report()
    verify_storage._versioning(r, "loki", "obs-loki", {"versioning": True}, FakeS3(get_bucket_versioning=DENIED))
    assert outcomes(r) == [("FAIL", "versioning of obs-loki not readable: denied AccessDenied")]


def anonymous_case(list_answer: Any, get_answer: Any, put_answer: Any = None):
    stack = local_stack()
    admin = FakeS3(put_object=put_answer or {}, list_object_versions={"Versions": [{"Key": "obs-verify/run1/anonymous-get", "VersionId": "v1"}]},
                   delete_object={})
    anonymous = FakeS3(list_objects_v2=list_answer, get_object=get_answer)
    r = report()
    verify_storage._anonymous_denied(stack, r, "loki", "obs-loki", admin, anonymous)
    return r, admin


def test_anonymous_list_and_get_denied_pass_and_the_probe_object_is_removed():
    r, admin = anonymous_case(DENIED, DENIED)
    assert [x.status for x in r.results] == ["PASS", "PASS"]
    assert ("delete_object", {"Bucket": "obs-loki", "Key": "obs-verify/run1/anonymous-get", "VersionId": "v1"}) in admin.calls


@pytest.mark.parametrize("list_answer,get_answer,expected", [
    ({"Contents": []}, DENIED, ["FAIL", "PASS"]),
    (DENIED, {"Body": io.BytesIO(b"x")}, ["PASS", "FAIL"]),
    # Not a denial either: the bucket answered something else (missing, broken, unreachable).
    (client_error("NoSuchBucket", 404), DENIED, ["FAIL", "PASS"]),
    (DENIED, client_error("NoSuchKey", 404), ["PASS", "FAIL"]),
])
def test_anonymous_access_other_than_a_denial_fails(list_answer, get_answer, expected):
    r, _ = anonymous_case(list_answer, get_answer)
    assert [x.status for x in r.results] == expected


def test_anonymous_get_unchecked_when_the_probe_object_cannot_be_written():
    r, _ = anonymous_case(DENIED, DENIED, put_answer=DENIED)
    assert [x.status for x in r.results] == ["PASS", "FAIL"]
    assert r.results[1].detail.startswith("anonymous GET not checked: cannot write probe object obs-verify/run1/anonymous-get: denied")


RULE = {"id": "loki-fake", "prefix": "fake/", "expire_days": 31, "transitions": [], "abort_multipart_days": None, "noncurrent_days": None}
LIVE = {"ID": "loki-fake", "Status": "Enabled", "Filter": {"Prefix": "fake/"}, "Expiration": {"Days": 31}}


def lifecycle_case(declared: list[dict], live: Any, target: str = "local") -> verify.Report:
    stack = verify.Stack(target, json.loads(json.dumps({"target": target, "buckets": {}})))
    r = report()
    verify_storage._lifecycle(stack, r, "loki", "obs-loki", {"lifecycleRules": declared}, FakeS3(get_bucket_lifecycle_configuration=live))
    return r


def test_lifecycle_read_back_as_declared_passes():
    assert outcomes(lifecycle_case([RULE], {"Rules": [LIVE]})) == [("PASS", "lifecycle rules read back as declared: loki-fake")]
    # No configuration at all, and none declared.
    assert outcomes(lifecycle_case([], client_error("NoSuchLifecycleConfiguration", 404))) == [("PASS", "lifecycle rules read back as declared: none")]


@pytest.mark.parametrize("live,problem", [
    (client_error("NoSuchLifecycleConfiguration", 404), "loki-fake missing"),
    ({"Rules": [{**LIVE, "Expiration": {"Days": 30}}]}, "loki-fake: expireDays 30 != declared 31"),
    ({"Rules": [{**LIVE, "Filter": {"Prefix": ""}}]}, "loki-fake: prefix '' != declared 'fake/'"),
    ({"Rules": [{**LIVE, "Status": "Disabled"}]}, "loki-fake: status 'Disabled' != declared 'Enabled'"),
    ({"Rules": [LIVE, {"ID": "everything", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]},
     "everything not declared (expireDays=1, status='Enabled')"),
])
def test_a_lifecycle_that_differs_fails_naming_the_rule(live, problem):
    (result,) = outcomes(lifecycle_case([RULE], live))
    assert result == ("FAIL", f"lifecycle rules of obs-loki differ from the declaration: {problem}")


def test_a_lifecycle_that_cannot_be_read_fails_even_with_no_rule_declared():
    # Only "no configuration" means no rules; any other error is not an empty configuration.
    assert outcomes(lifecycle_case([], client_error("InternalError", 500, "try again"))) == [
        ("FAIL", "lifecycle of obs-loki not readable: error InternalError: try again")]


def test_a_hetzner_lifecycle_difference_says_what_deletes_data_and_an_unreadable_one_fails():
    (status, detail), = outcomes(lifecycle_case([RULE], {"Rules": []}, target="hetzner"))
    assert status == "FAIL" and detail.endswith(f"loki-fake missing ({verify_storage.HETZNER_LIFECYCLE})")
    assert outcomes(lifecycle_case([RULE], DENIED)) == [("FAIL", "lifecycle of obs-loki not readable: denied AccessDenied")]


FLAGS = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def hardening(**answers: Any) -> list[tuple[str, str]]:
    defaults = {
        "get_public_access_block": {"PublicAccessBlockConfiguration": FLAGS},
        "get_bucket_ownership_controls": {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}},
        "get_bucket_encryption": {"ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}},
        "get_bucket_policy": {"Policy": json.dumps(tls_policy())},
    }
    r = report()
    verify_storage._aws_hardening(r, "loki", "acme-loki", {"arn": ARN}, FakeS3(**{**defaults, **answers}))
    return outcomes(r)


def test_aws_hardening_as_declared_passes_all_four():
    assert [s for s, _ in hardening()] == ["PASS"] * 4
    assert hardening(get_bucket_encryption={"ServerSideEncryptionConfiguration": {"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k"}}]}})[2] == ("PASS", "default encryption aws:kms")


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_each_public_access_block_flag_off_fails(flag):
    assert hardening(get_public_access_block={"PublicAccessBlockConfiguration": {**FLAGS, flag: False}})[0] == (
        "FAIL", f"public access block: all four flags on: off: {flag}")
    missing = {k: v for k, v in FLAGS.items() if k != flag}
    assert hardening(get_public_access_block={"PublicAccessBlockConfiguration": missing})[0][0] == "FAIL"


@pytest.mark.parametrize("answers,index", [
    ({"get_public_access_block": client_error("NoSuchPublicAccessBlockConfiguration", 404)}, 0),
    ({"get_bucket_ownership_controls": {"OwnershipControls": {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}}}, 1),
    ({"get_bucket_ownership_controls": {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}}}, 1),
    ({"get_bucket_ownership_controls": client_error("OwnershipControlsNotFoundError", 404)}, 1),
    ({"get_bucket_encryption": client_error("ServerSideEncryptionConfigurationNotFoundError", 404)}, 2),
    ({"get_bucket_encryption": {"ServerSideEncryptionConfiguration": {"Rules": []}}}, 2),
    ({"get_bucket_encryption": {"ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "SSE-C"}}]}}}, 2),
    ({"get_bucket_policy": client_error("NoSuchBucketPolicy", 404)}, 3),
    ({"get_bucket_policy": {"Policy": json.dumps(tls_policy(Resource=[ARN]))}}, 3),
])
def test_each_hardening_setting_missing_or_weaker_fails(answers, index):
    results = hardening(**answers)
    assert [s for s, _ in results] == ["FAIL" if i == index else "PASS" for i in range(4)], results


def test_what_a_failed_hardening_check_read_back():
    results = hardening(get_public_access_block=DENIED, get_bucket_ownership_controls={"OwnershipControls": {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}},
                        get_bucket_encryption=client_error("ServerSideEncryptionConfigurationNotFoundError", 404),
                        get_bucket_policy=client_error("NoSuchBucketPolicy", 404, "The bucket policy does not exist"))
    assert results == [
        ("FAIL", "public access block: all four flags on: denied AccessDenied"),
        ("FAIL", "ownership controls BucketOwnerEnforced (ACLs disabled): read back ['ObjectWriter']"),
        ("FAIL", "default encryption none: read back ServerSideEncryptionConfigurationNotFoundError:"),
        ("FAIL", "bucket policy denies every request without TLS (aws:SecureTransport false): error NoSuchBucketPolicy: The bucket policy does not exist"),
    ]
    assert hardening(get_bucket_ownership_controls=client_error("OwnershipControlsNotFoundError", 404, "none"))[1] == (
        "FAIL", "ownership controls BucketOwnerEnforced (ACLs disabled): read back OwnershipControlsNotFoundError: none")
    assert hardening(get_bucket_encryption={"ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "SSE-C"}}]}})[2] == (
        "FAIL", "default encryption SSE-C: read back ['SSE-C']")


@pytest.mark.parametrize("length,shown", [(0, ""), (160, "x" * 160), (161, "x" * 157 + "..."), (400, "x" * 157 + "...")])
def test_long_answers_are_cut_to_160_characters(length, shown):
    assert verify_storage._short("x" * length) == shown
    assert verify_storage._short({"not": "text"}) == ""


def owner_stack(target: str, head: dict[str, Any]) -> tuple[verify.Stack, list[bool]]:
    """A stack whose owner's client answers HEAD per bucket and is a FakeS3 for everything else."""
    outputs = json.loads(json.dumps({"target": target, "buckets": {
        "loki": {"name": "acme-loki", "arn": ARN, "prefix": "", "region": "us-east-1", "endpoint": "minio:9000", "versioning": False, "lifecycleRules": []},
        "tempo": {"name": "acme-tempo", "arn": "arn:aws:s3:::acme-tempo", "prefix": "", "region": "us-east-1", "endpoint": "minio:9000",
                  "versioning": False, "lifecycleRules": []}}}))
    stack = verify.Stack("s", outputs, admin_keys=verify.Keys("root", "root-secret"), run_id="run1")
    anonymous_flags: list[bool] = []

    def head_bucket(Bucket):
        if isinstance(head[Bucket], Exception):
            raise head[Bucket]
        return {}

    owner = FakeS3(head_bucket=head_bucket, put_object={}, list_object_versions={}, get_bucket_versioning={},
                   get_bucket_lifecycle_configuration=client_error("NoSuchLifecycleConfiguration", 404),
                   get_public_access_block={"PublicAccessBlockConfiguration": FLAGS},
                   get_bucket_ownership_controls={"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}},
                   get_bucket_encryption={"ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}},
                   get_bucket_policy={"Policy": json.dumps(tls_policy())})
    anonymous_client = FakeS3(list_objects_v2=DENIED, get_object=DENIED)

    def s3(keys, anonymous=False):
        anonymous_flags.append(anonymous)
        return anonymous_client if anonymous else owner

    stack.s3 = s3  # type: ignore[method-assign]
    return stack, anonymous_flags


def test_storage_checks_each_bucket_and_stops_at_a_missing_one():
    stack, anonymous_flags = owner_stack("local", {"acme-loki": {}, "acme-tempo": client_error("NoSuchBucket", 404, "gone")})
    r = report()
    verify_storage.check(stack, r)
    assert [(x.subject, x.status) for x in r.results] == [("loki", "PASS")] * 5 + [("tempo", "FAIL")]
    assert r.results[-1].detail == "bucket acme-tempo exists: HEAD bucket: error NoSuchBucket: gone"
    assert sorted(anonymous_flags) == [False, True]  # the owner's client, and one without credentials
    # A missing bucket first: the next one is still checked.
    stack, _ = owner_stack("local", {"acme-loki": client_error("NoSuchBucket", 404, "gone"), "acme-tempo": {}})
    r = report()
    verify_storage.check(stack, r)
    assert [(x.subject, x.status) for x in r.results] == [("loki", "FAIL")] + [("tempo", "PASS")] * 5


def test_storage_checks_aws_hardening_on_aws_only():
    stack, _ = owner_stack("aws", {"acme-loki": {}, "acme-tempo": DENIED})
    r = report()
    verify_storage.check(stack, r)
    assert [(x.subject, x.status) for x in r.results] == [("loki", "PASS")] * 9 + [("tempo", "FAIL")]
    assert r.results[-1].detail == "bucket acme-tempo exists: HEAD bucket: denied AccessDenied"


def test_a_hint_about_hetzner_lifecycle_only_on_hetzner():
    stack = verify.Stack("staging", json.loads(json.dumps({"target": "aws", "buckets": {}})))
    r = report()
    verify_storage._lifecycle(stack, r, "loki", "acme-loki", {"lifecycleRules": [RULE]}, FakeS3(get_bucket_lifecycle_configuration={"Rules": []}))
    assert outcomes(r) == [("FAIL", "lifecycle rules of acme-loki differ from the declaration: loki-fake missing")]


def test_a_bucket_policy_without_the_deny_says_so():
    assert hardening(get_bucket_policy={"Policy": json.dumps(tls_policy(Resource=[ARN]))})[3] == (
        "FAIL", "bucket policy denies every request without TLS (aws:SecureTransport false): no such Deny statement")


# ---------------------------------------------------------------- identity: trust policies
ISSUER = "oidc.eks.ap-northeast-2.amazonaws.com/id/ABC"
PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"


def irsa_trust(**changes: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity",
                 "Condition": {"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:observability:loki-compactor", f"{ISSUER}:aud": "sts.amazonaws.com"}}}
    statement.update(changes)
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_irsa_trust_of_exactly_the_service_account_passes():
    assert verify_identity.irsa_trust_problem(irsa_trust(), "observability", "loki-compactor") is None
    assert verify_identity.irsa_trust_problem(irsa_trust(Action=["sts:AssumeRoleWithWebIdentity"]), "observability", "loki-compactor") is None
    china = irsa_trust(Principal={"Federated": f"arn:aws-cn:iam::123456789012:oidc-provider/{ISSUER}"})
    assert verify_identity.irsa_trust_problem(china, "observability", "loki-compactor") is None


@pytest.mark.parametrize("trust,why", [
    ({"Statement": []}, "0 statements, expected exactly one"),
    ({"Statement": [irsa_trust()["Statement"][0]] * 2}, "2 statements, expected exactly one"),
    (irsa_trust(Effect="Deny"), "statement is Deny sts:AssumeRoleWithWebIdentity, expected Allow sts:AssumeRoleWithWebIdentity"),
    (irsa_trust(Action="sts:AssumeRole"), "statement is Allow sts:AssumeRole, expected Allow sts:AssumeRoleWithWebIdentity"),
    (irsa_trust(Action=["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]), "expected Allow sts:AssumeRoleWithWebIdentity"),
    (irsa_trust(Principal={"Service": "pods.eks.amazonaws.com"}), "is not one OIDC provider"),
    (irsa_trust(Principal={"Federated": [PROVIDER, PROVIDER]}), "is not one OIDC provider"),
    (irsa_trust(Principal={"Federated": f"arn:aws:iam::123456789012:saml-provider/{ISSUER}"}), "is not one OIDC provider"),
    (irsa_trust(Principal={"Federated": f"arn:aws:iam::1234:oidc-provider/{ISSUER}"}), "is not one OIDC provider"),
    (irsa_trust(Principal=None), "is not one OIDC provider"),
])
def test_irsa_trust_of_another_shape_fails(trust, why):
    problem = verify_identity.irsa_trust_problem(trust, "observability", "loki-compactor")
    assert problem is not None and why in problem, problem


@pytest.mark.parametrize("namespace,service_account,condition", [
    ("observability", "loki-querier", None),  # another service account of the cluster
    ("other", "loki-compactor", None),
    ("observability", "loki-compactor", {"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:observability:loki-compactor"}}),  # no aud
    ("observability", "loki-compactor", {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}}),  # no sub: any service account
    ("observability", "loki-compactor", {"StringLike": {f"{ISSUER}:sub": "system:serviceaccount:observability:*", f"{ISSUER}:aud": "sts.amazonaws.com"}}),
    ("observability", "loki-compactor", {"StringEquals": {"other-issuer:sub": "system:serviceaccount:observability:loki-compactor", "other-issuer:aud": "sts.amazonaws.com"}}),
])
def test_irsa_trust_of_another_service_account_or_condition_fails(namespace, service_account, condition):
    trust = irsa_trust() if condition is None else irsa_trust(Condition=condition)
    problem = verify_identity.irsa_trust_problem(trust, namespace, service_account)
    assert problem is not None and problem.startswith("condition "), problem


POD_IDENTITY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:TagSession", "sts:AssumeRole"]}]}


@pytest.mark.parametrize("change", [
    {"Effect": "Deny"},
    {"Effect": "ALLOW"},  # IAM's effects are "Allow" and "Deny", exactly
    {"Principal": {"Service": "ec2.amazonaws.com"}},
    {"Principal": {"AWS": "*"}},
    {"Action": ["sts:AssumeRole"]},
    {"Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]},
    {"Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}},
])
def test_pod_identity_trust_is_exactly_the_eks_service(change):
    assert verify_identity.pod_identity_trust_ok(POD_IDENTITY)
    assert not verify_identity.pod_identity_trust_ok({"Statement": [{**POD_IDENTITY["Statement"][0], **change}]})
    assert not verify_identity.pod_identity_trust_ok({"Statement": POD_IDENTITY["Statement"] * 2})
    assert not verify_identity.pod_identity_trust_ok({"Statement": []})


# ---------------------------------------------------------------- identity: the role's policy and IAM's simulation
LOKI_COMPACTOR = {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
KEY = "arn:aws:kms:ap-northeast-2:123456789012:key/1111"


def role_document(objects: list[str], listing: list[str] = ["s3:ListBucket"], prefix: str = "", extra: list[dict] = []) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": listing, "Resource": [ARN]},
        {"Effect": "Allow", "Action": objects, "Resource": [f"{ARN}/{prefix}*"]},
        *extra,
    ]}


def problems(document: dict, declared: set[str] = LOKI_COMPACTOR, attached: list = [], prefix: str = "") -> list[str]:
    return verify_identity.role_policy_problems({"bucket-access": document}, attached, ARN, prefix, declared)


def test_a_role_policy_of_exactly_the_grant_passes():
    assert problems(role_document(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"])) == []
    assert problems(role_document(["s3:GetObject"], prefix="logs/"), {"s3:ListBucket", "s3:GetObject"}, prefix="logs/") == []
    kms = {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [KEY]}
    assert problems(role_document(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], extra=[kms])) == []
    # The grant may be split over several inline policies.
    split = verify_identity.role_policy_problems(
        {"list": {"Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ARN}},
         "objects": {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": f"{ARN}/*"}]}},
        [], ARN, "", LOKI_COMPACTOR)
    assert split == []


def test_a_role_missing_an_action_it_was_granted_fails():
    # The compactor without its deletes: retention silently stops.
    assert problems(role_document(["s3:GetObject", "s3:PutObject"])) == [
        "S3 actions ['s3:GetObject', 's3:ListBucket', 's3:PutObject'] != declared ['s3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject']"]
    assert problems(role_document(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], listing=[]))[-1].startswith("S3 actions")


def test_a_role_with_an_extra_action_fails():
    assert problems(role_document(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging"])) == [
        "S3 actions ['s3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject', 's3:PutObjectTagging'] != declared "
        "['s3:DeleteObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject']"]


@pytest.mark.parametrize("extra,why", [
    ({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::acme-tempo/*"]}, "bucket-access: S3 actions on ['arn:aws:s3:::acme-tempo/*']"),
    ({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}, "bucket-access: S3 actions on ['*']"),
    ({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": ["*"]}, "bucket-access: kms:Decrypt on ['*']"),
    ({"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": ["arn:aws:iam::123456789012:role/x"]}, "bucket-access: iam:PassRole on"),
    ({"Effect": "Deny", "NotAction": ["s3:GetObject"], "Resource": ["*"]}, "bucket-access: NotAction/NotResource"),
    ({"Effect": "Allow", "Action": ["s3:GetObject"], "NotResource": [ARN]}, "bucket-access: NotAction/NotResource"),
])
def test_a_role_reaching_beyond_its_bucket_fails(extra, why):
    found = problems(role_document(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], extra=[extra]))
    assert any(p.startswith(why) for p in found), found


def test_a_wider_prefix_or_an_attached_managed_policy_fails():
    assert problems(role_document(["s3:GetObject"]), {"s3:ListBucket", "s3:GetObject"}, prefix="logs/") == [f"bucket-access: S3 actions on ['{ARN}/*']"]
    assert problems(role_document(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]), attached=[{"PolicyName": "AmazonS3FullAccess"}]) == [
        "managed policies attached: ['AmazonS3FullAccess']"]


def test_simulation_allows_exactly_the_grant():
    decisions = {"s3:ListBucket": "allowed", "s3:DeleteBucket": "implicitDeny", "s3:GetObject": "allowed", "s3:PutObject": "allowed",
                 "s3:DeleteObject": "allowed", "s3:GetObjectTagging": "implicitDeny", "s3:PutObjectTagging": "explicitDeny"}
    assert verify_identity.simulation_problems(decisions, LOKI_COMPACTOR) == []
    # Granted but not allowed (a missing action), and allowed but not granted (an extra one).
    assert verify_identity.simulation_problems({**decisions, "s3:DeleteObject": "implicitDeny"}, LOKI_COMPACTOR) == ["s3:DeleteObject implicitDeny"]
    assert verify_identity.simulation_problems({**decisions, "s3:DeleteBucket": "allowed"}, LOKI_COMPACTOR) == ["s3:DeleteBucket allowed"]


def test_granted_actions_are_the_union_of_the_tools_service_accounts():
    stack = verify.Stack("staging", {"target": "aws", "buckets": {}, "identities": {"loki": {"serviceAccounts": {
        "loki-querier": ["s3:ListBucket", "s3:GetObject"], "loki-compactor": ["s3:ListBucket", "s3:DeleteObject"]}}}})
    assert verify_identity.granted_actions(stack, "loki") == {"s3:ListBucket", "s3:GetObject", "s3:DeleteObject"}
    assert verify_identity.granted_actions(stack, "tempo") == set()


# ---------------------------------------------------------------- identity: real calls with a tool's own key
class PolicyClient:
    """A tool's S3 client under a policy: the actions in `allowed` succeed on its own bucket, every
    other call is refused; `broken_key` refuses every call as a wrong secret does."""

    OPERATIONS = {"list_objects_v2": "s3:ListBucket", "put_object": "s3:PutObject", "get_object": "s3:GetObject",
                  "put_object_tagging": "s3:PutObjectTagging", "get_object_tagging": "s3:GetObjectTagging",
                  "delete_object": "s3:DeleteObject", "get_bucket_policy": "s3:GetBucketPolicy",
                  "get_bucket_lifecycle_configuration": "s3:GetLifecycleConfiguration"}

    def __init__(self, bucket: str, allowed: set[str], broken_key: bool = False, other_buckets: set[str] = frozenset()):
        self.bucket, self.allowed, self.broken_key, self.other_buckets = bucket, allowed, broken_key, other_buckets

    def __getattr__(self, method: str):
        action = self.OPERATIONS[method]

        def call(Bucket: str, **kwargs):
            if self.broken_key:
                raise BROKEN_KEY
            if (Bucket == self.bucket and action in self.allowed) or Bucket in self.other_buckets:
                if method == "get_bucket_policy":
                    raise client_error("NoSuchBucketPolicy", 404)  # let in, nothing configured
                return {"Body": io.BytesIO(b"obs-verify probe")} if method == "get_object" else {}
            raise DENIED

        return call


def three_buckets() -> verify.Stack:
    return local_stack(**{tool: {"name": f"obs-{tool}", "prefix": "", "region": "us-east-1"} for tool in ("loki", "tempo", "thanos")})


def probe(client, granted: set[str], shared_key: bool = False) -> tuple[verify.Report, FakeS3]:
    admin = FakeS3(put_object={}, list_object_versions={}, delete_object={})
    r = report()
    # Without shared_key by default: each tool has a key of its own (MinIO users, and moto in tests/integration/).
    verify_identity.probe(three_buckets(), r, "loki", "loki", client, granted, admin, **({"shared_key": True} if shared_key else {}))
    return r, admin


def by_status(r: verify.Report) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for x in r.results:
        out.setdefault(x.status, []).append(x.detail)
    return out


def test_an_identity_that_may_do_exactly_its_grant_passes_every_probe():
    r, admin = probe(PolicyClient("obs-loki", LOKI_COMPACTOR), LOKI_COMPACTOR)
    assert set(by_status(r)) == {"PASS"} and len(r.results) == 12
    assert "s3:DeleteObject on obs-loki/obs-verify/run1/own-loki allowed" in by_status(r)["PASS"]
    assert "s3:PutObjectTagging on obs-loki/obs-verify/run1/own-loki denied" in by_status(r)["PASS"]
    assert "s3:PutObject on tempo's bucket obs-tempo denied" in by_status(r)["PASS"]
    # Its own PutObject made the probe object: the owner did not have to.
    assert [c for c in admin.calls if c[0] == "put_object"] == []


def test_an_identity_missing_a_granted_action_fails():
    r, _ = probe(PolicyClient("obs-loki", LOKI_COMPACTOR - {"s3:DeleteObject"}), LOKI_COMPACTOR)
    assert by_status(r)["FAIL"] == ["s3:DeleteObject on obs-loki/obs-verify/run1/own-loki allowed: got denied"]


def test_an_identity_with_an_action_it_was_not_granted_fails():
    r, _ = probe(PolicyClient("obs-loki", LOKI_COMPACTOR | {"s3:GetObjectTagging", "s3:GetLifecycleConfiguration"}), LOKI_COMPACTOR)
    assert by_status(r)["FAIL"] == ["s3:GetObjectTagging on obs-loki/obs-verify/run1/own-loki denied: got allowed",
                                    "s3:GetLifecycleConfiguration on obs-loki denied: got allowed"]


def test_reading_bucket_configuration_that_is_not_there_still_counts_as_let_in():
    # GetBucketPolicy answers NoSuchBucketPolicy to a caller that may read it.
    r, _ = probe(PolicyClient("obs-loki", LOKI_COMPACTOR | {"s3:GetBucketPolicy"}), LOKI_COMPACTOR)
    assert by_status(r)["FAIL"] == ["s3:GetBucketPolicy on obs-loki denied: got allowed"]
    with pytest.raises(ClientError):
        verify_identity._config_read(lambda Bucket: (_ for _ in ()).throw(DENIED), "obs-loki")


def test_a_broken_key_never_passes_as_a_denial():
    r, _ = probe(PolicyClient("obs-loki", LOKI_COMPACTOR, broken_key=True), LOKI_COMPACTOR)
    assert set(by_status(r)) == {"FAIL"} and len(r.results) == 12
    assert all("got error SignatureDoesNotMatch" in d for d in by_status(r)["FAIL"]), by_status(r)["FAIL"]


def test_writing_into_another_tools_bucket_fails():
    r, _ = probe(PolicyClient("obs-loki", LOKI_COMPACTOR, other_buckets={"obs-tempo"}), LOKI_COMPACTOR)
    assert len(r.results) == 12 and by_status(r)["FAIL"] == ["s3:PutObject on tempo's bucket obs-tempo denied: got allowed",
                                    "s3:ListBucket on tempo's bucket obs-tempo denied: got allowed"]


def test_without_put_the_owner_writes_the_probe_object_and_removes_it():
    reader = {"s3:ListBucket", "s3:GetObject"}
    r, admin = probe(PolicyClient("obs-loki", reader), reader)
    assert set(by_status(r)) == {"PASS"}
    key = "obs-verify/run1/own-loki"
    assert ("put_object", {"Bucket": "obs-loki", "Key": key, "Body": b"obs-verify probe"}) in admin.calls
    assert ("list_object_versions", {"Bucket": "obs-loki", "Prefix": key}) in admin.calls


def test_one_shared_key_pair_skips_the_denials_it_cannot_prove():
    everything = set(PolicyClient.OPERATIONS.values())
    r, _ = probe(PolicyClient("obs-loki", everything, other_buckets={"obs-tempo"}), LOKI_COMPACTOR, shared_key=True)
    statuses = by_status(r)
    assert "FAIL" not in statuses and len(statuses["PASS"]) == 4 and len(statuses["SKIP"]) == 6
    assert all(d.endswith(verify_identity.HETZNER_SHARED) for d in statuses["SKIP"])
    # A granted action that fails is still a failure with the shared key.
    r, _ = probe(PolicyClient("obs-loki", LOKI_COMPACTOR - {"s3:PutObject"}), LOKI_COMPACTOR, shared_key=True)
    assert by_status(r)["FAIL"] == ["s3:PutObject on obs-loki/obs-verify/run1/own-loki allowed: got denied"]


# ---------------------------------------------------------------- tools: what counts as flushed data, where the tools answer
def meta(level: int) -> bytes:
    return json.dumps({"compactionLevel": level}).encode()


@pytest.mark.parametrize("tool,prefix,key,body,flushed", [
    ("loki", "", "fake/6770cd34d2b4c706/1a221ad5c3b:1a221ad5c3c:398aa82b", b"", True),
    ("loki", "", "index/index_20785/fake/1795861901-compactor.tsdb.gz", b"", False),
    ("loki", "", "index/delete_requests/delete_requests.gz", b"", False),
    ("loki", "logs/", "logs/fake/6770cd34d2b4c706/1a2", b"", True),
    ("loki", "logs/", "logs/index/index_20785/x", b"", False),
    ("loki", "", "obs-verify/run1/own-loki", b"", False),
    ("tempo", "", "single-tenant/1adb8574-b0a8-4b62-9477-c280a3b963e2/meta.json", meta(0), True),
    ("tempo", "traces/", "traces/single-tenant/1adb8574-b0a8-4b62-9477-c280a3b963e2/meta.json", meta(0), True),
    ("tempo", "", "single-tenant/c3a3ff82-162a-4b2c-a6e5-eba9b920df8e/meta.json", meta(1), False),
    ("tempo", "", "single-tenant/1adb8574-b0a8-4b62-9477-c280a3b963e2/data.parquet", b"", False),
    ("tempo", "", "single-tenant/1adb8574-b0a8-4b62-9477-c280a3b963e2/meta.compacted.json", meta(0), False),
    ("tempo", "", "single-tenant/index.json.gz", b"", False),
    ("tempo", "", "obs-verify/run1/x/meta.json", meta(0), False),
    ("thanos", "", "01ARYZ6S41TSV4RRFFQ69G5FAV/chunks/000001", b"", True),
    ("thanos", "", "obs-verify/run1/x", b"", False),
])
def test_flushed_data_is_what_a_flush_writes(tool, prefix, key, body, flushed):
    assert verify_tools.flushed_data(tool, prefix, key, lambda k: body) is flushed


def test_tool_addresses_from_the_outputs():
    local = verify.Stack("local", {"target": "local", "buckets": {}, "urls": {
        "lokiPush": "http://127.0.0.1:3100/loki/api/v1/push", "otlpHttp": "http://127.0.0.1:4318", "grafana": "http://127.0.0.1:3000"}})
    from components.core.renderers import tempo

    assert verify_tools.base_urls(local) == {"loki": "http://127.0.0.1:3100", "tempo": f"http://127.0.0.1:{tempo.HTTP_PORT}", "grafana": "http://127.0.0.1:3000"}
    # Elsewhere the OTLP address is a collector's, not Tempo's: no Tempo address is made up.
    swarm = verify.Stack("prod", {"target": "hetzner", "buckets": {}, "urls": {"otlpHttp": "http://tempo.example:4318", "loki": "http://loki.example:3100",
                                                                                "thanosQuery": "http://q:10902", "prometheus": "http://p:9090"}})
    assert verify_tools.base_urls(swarm) == {"loki": "http://loki.example:3100", "thanos-query": "http://q:10902", "prometheus": "http://p:9090"}


# ---------------------------------------------------------------- freshness
class Listing:
    """A bucket for the freshness check: objects by key with their LastModified."""

    def __init__(self, objects: dict[str, float], fail: Exception | None = None):
        self.objects, self.fail = objects, fail

    def list(self, prefix: str, delimiter: str = ""):
        if self.fail:
            raise self.fail
        found, prefixes = [], set()
        for key, modified in sorted(self.objects.items()):
            if key.startswith(prefix):
                rest = key[len(prefix):]
                if delimiter and delimiter in rest:
                    prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
                else:
                    found.append((key, modified))
        return found, sorted(prefixes)

    def get(self, key: str) -> bytes:
        raise RuntimeError("S3 answered 404 NoSuchKey")


@pytest.mark.parametrize("age_beyond,status", [(-1, "PASS"), (0, "PASS"), (1, "FAIL")])
def test_an_upload_older_than_the_tools_limit_fails(age_beyond, status):
    limit = freshness.MAX_AGE_SECONDS["loki"]
    r = report()
    verify_freshness.check_tool(r, "loki", {"name": "acme-loki"}, Listing({"index/index_20001/fake/1.tsdb.gz": 1000.0}), now=1000.0 + limit + age_beyond)
    assert [x.status for x in r.results] == [status]


def test_an_unreadable_bucket_fails_and_an_empty_one_is_skipped():
    r = report()
    verify_freshness.check_tool(r, "loki", {"name": "acme-loki"}, Listing({}, fail=RuntimeError("S3 answered 403 AccessDenied")), now=0)
    assert outcomes(r) == [("FAIL", "cannot read the newest uploads in acme-loki: RuntimeError: S3 answered 403 AccessDenied")]
    r = report()
    verify_freshness.check_tool(r, "loki", {"name": "acme-loki"}, Listing({}), now=0)
    assert outcomes(r) == [("SKIP", "no tenant has uploaded to acme-loki yet")]


def test_tenants_are_read_from_each_tools_layout():
    loki = Listing({"index/index_19999/old/1.gz": 1.0, "index/index_20000/fake/1.gz": 1.0, "index/index_20001/team-a/1.gz": 1.0,
                    "index/index_20001/fake/2.gz": 1.0, "index/delete_requests/x.gz": 1.0})
    # The two newest daily tables only (delete_requests sorts before the tables' index_ names).
    assert verify_freshness.tenants("loki", loki, "") == ["fake", "team-a"]
    tempo = Listing({"traces/single-tenant/index.json.gz": 1.0, "traces/team-b/index.json.gz": 1.0, "traces/obs-verify/run1/x": 1.0})
    assert verify_freshness.tenants("tempo", tempo, "traces/") == ["single-tenant", "team-b"]
    assert verify_freshness.tenants("thanos", Listing({"01ARYZ6S41TSV4RRFFQ69G5FAV/meta.json": 1.0}), "") == []


@pytest.mark.parametrize("seconds,text", [(0, "0 min"), (89 * 60, "89 min"), (5399, "90 min"), (5400, "1.5 h"), (10800, "3.0 h")])
def test_ages_read_in_minutes_then_hours(seconds, text):
    assert verify_freshness._age(seconds) == text


# ---------------------------------------------------------------- the command's exit status
def outputs_file(tmp_path) -> str:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"target": "local", "buckets": {"loki": {"name": "obs-loki", "prefix": "", "region": "us-east-1", "endpoint": "minio:9000"}}}))
    return str(path)


def part(*statuses: str):
    def check(stack, r):
        for status in statuses:
            r.add("storage", "loki", status, f"a {status}")

    return check


@pytest.mark.parametrize("statuses,code", [(("PASS", "SKIP"), 0), (("PASS",), 0), ((), 0), (("PASS", "FAIL", "SKIP"), 1), (("FAIL",), 1)])
def test_any_fail_exits_1(monkeypatch, tmp_path, capsys, statuses, code):
    monkeypatch.setattr(verify_storage, "check", part(*statuses))
    assert cli.main(["--stack", "local", "--outputs", outputs_file(tmp_path), "--only", "storage"]) == code
    out = capsys.readouterr().out
    assert f"summary: {statuses.count('PASS')} PASS, {statuses.count('FAIL')} FAIL, {statuses.count('SKIP')} SKIP" in out


def test_a_part_that_breaks_fails_and_the_other_parts_still_run(monkeypatch, tmp_path, capsys):
    def broken(stack, r):
        raise KeyError("arn")

    monkeypatch.setattr(verify_storage, "check", broken)
    monkeypatch.setattr(verify_identity, "check", part("PASS"))
    assert cli.main(["--stack", "local", "--outputs", outputs_file(tmp_path), "--only", "storage", "--only", "identity", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [(x["part"], x["status"]) for x in data["results"]] == [("storage", "FAIL"), ("storage", "PASS")]
    assert data["results"][0]["detail"] == "checks aborted: KeyError: 'arn'"
    assert data["summary"] == {"PASS": 1, "FAIL": 1, "SKIP": 0}


# ---------------------------------------------------------------- identity on AWS: roles read back and simulated, with fake IAM
class FakeIam:
    """IAM for one or more roles: trust, inline policy documents, attached policies, and a simulator
    that allows what the role's documents allow (on the resources they name)."""

    def __init__(self, roles: dict[str, dict], missing: set[str] = frozenset(), simulation: Exception | None = None, unreadable: set[str] = frozenset()):
        self.roles, self.missing, self.simulation, self.unreadable = roles, missing, simulation, unreadable
        self.simulated: list[tuple[str, list]] = []

    def refuse(self, call: str) -> None:
        if call in self.unreadable:
            raise DENIED

    def get_role(self, RoleName):
        if RoleName in self.missing:
            raise client_error("NoSuchEntity", 404, f"The role with name {RoleName} cannot be found.")
        return {"Role": {"AssumeRolePolicyDocument": self.roles[RoleName]["trust"]}}

    def list_role_policies(self, RoleName):
        self.refuse("list_role_policies")
        return {"PolicyNames": sorted(self.roles[RoleName]["policies"])}

    def get_role_policy(self, RoleName, PolicyName):
        # As IAM sends it: URL-encoded JSON.
        import urllib.parse

        return {"PolicyDocument": urllib.parse.quote(json.dumps(self.roles[RoleName]["policies"][PolicyName]))}

    def list_attached_role_policies(self, RoleName):
        self.refuse("list_attached_role_policies")
        return {"AttachedPolicies": self.roles[RoleName].get("attached", [])}

    def simulate_principal_policy(self, PolicySourceArn, ActionNames, ResourceArns, ContextEntries=()):
        if self.simulation:
            raise self.simulation
        role = self.roles[PolicySourceArn.rsplit("/", 1)[-1]]
        (resource,) = ResourceArns
        allowed = set()
        for document in role["policies"].values():
            for st in document["Statement"]:
                for pattern in _as_list(st["Resource"]):
                    if pattern == resource or (pattern.endswith("*") and resource.startswith(pattern[:-1])):
                        allowed |= set(_as_list(st["Action"]))
        self.simulated.append((ResourceArns[0], [(c["ContextKeyName"], c["ContextKeyValues"]) for c in ContextEntries]))
        return fresh({"EvaluationResults": [{"EvalActionName": a, "EvalDecision": "allowed" if a in allowed else "implicitDeny"} for a in ActionNames]})


def _as_list(value):
    return value if isinstance(value, list) else [value]


AWS_BUCKETS = {"loki": {"name": "acme-loki", "arn": ARN, "prefix": "", "region": "ap-northeast-2"},
               "tempo": {"name": "acme-tempo", "arn": "arn:aws:s3:::acme-tempo", "prefix": "", "region": "ap-northeast-2"}}


def aws_stack(kind: str = "irsa", tool: str = "loki", sa: str = "loki-compactor", prefix: str = "") -> verify.Stack:
    identities = {tool: {"kind": kind, "namespace": "observability", "cluster": "staging-eks",
                         "roleArns": {sa: f"arn:aws:iam::123456789012:role/obs-staging-{sa}"},
                         "serviceAccounts": {sa: sorted(LOKI_COMPACTOR)}}}
    buckets = {**AWS_BUCKETS, "thanos": {"name": "acme-thanos", "arn": "arn:aws:s3:::acme-thanos", "prefix": "", "region": "ap-northeast-2"}}
    buckets[tool] = {**buckets[tool], "prefix": prefix}
    # Parsed, as `pulumi stack output --json` gives them: no string is one of the code's literals.
    return verify.Stack("staging", json.loads(json.dumps({"target": "aws", "buckets": buckets, "identities": identities})), run_id="run1")


def compactor_role(objects=("s3:GetObject", "s3:PutObject", "s3:DeleteObject"), trust=None, **extra) -> dict:
    return {"obs-staging-loki-compactor": {"trust": trust or irsa_trust(), "policies": {"bucket-access": role_document(list(objects))}, **extra}}


def aws_check(monkeypatch, iam: FakeIam, stack: verify.Stack | None = None, eks=None) -> verify.Report:
    stack = stack or aws_stack()
    monkeypatch.setattr(stack, "aws", lambda service: {"iam": iam, "eks": eks}[service])
    r = report()
    verify_identity.check(stack, r)
    return r


def test_a_role_as_declared_passes_every_aws_check(monkeypatch):
    r = aws_check(monkeypatch, FakeIam(compactor_role()))
    assert [x.status for x in r.results] == ["PASS"] * 5, outcomes(r)
    assert [x.detail for x in r.results][0] == "role obs-staging-loki-compactor exists"


def test_a_role_missing_its_delete_fails_read_back_and_simulation(monkeypatch):
    r = aws_check(monkeypatch, FakeIam(compactor_role(objects=("s3:GetObject", "s3:PutObject"))))
    failed = by_status(r)["FAIL"]
    assert len(failed) == 2 and failed[0].startswith("role policy reads back as") and "!= declared" in failed[0]
    assert failed[1].endswith(": s3:DeleteObject implicitDeny")


def test_a_role_reaching_another_bucket_fails_the_leak_simulation(monkeypatch):
    roles = compactor_role()
    roles["obs-staging-loki-compactor"]["policies"]["more"] = {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::acme-tempo/*"]}]}
    failed = by_status(aws_check(monkeypatch, FakeIam(roles)))["FAIL"]
    assert failed[-1] == "simulation: every action on the other tools' buckets denied: allowed: s3:GetObject on acme-tempo"


def test_a_missing_role_or_a_wrong_trust_fails(monkeypatch):
    r = aws_check(monkeypatch, FakeIam(compactor_role(), missing={"obs-staging-loki-compactor"}))
    assert [x.status for x in r.results] == ["FAIL"] and r.results[0].detail.startswith("role obs-staging-loki-compactor exists: error NoSuchEntity")
    loose = irsa_trust(Condition={"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}})
    r = aws_check(monkeypatch, FakeIam(compactor_role(trust=loose)))
    assert [x.status for x in r.results] == ["PASS", "FAIL", "PASS", "PASS", "PASS"]
    assert r.results[1].detail.startswith("trust: only system:serviceaccount:observability:loki-compactor (aud sts.amazonaws.com)")
    assert r.results[1].detail.endswith(": " + verify_identity.irsa_trust_problem(loose, "observability", "loki-compactor"))


def test_without_policy_simulation_the_check_fails_and_says_which_permission(monkeypatch):
    r = aws_check(monkeypatch, FakeIam(compactor_role(), simulation=client_error("AccessDenied", 403, "not authorized")))
    assert r.results[-1].status == "FAIL" and r.results[-1].detail.endswith("the caller needs iam:SimulatePrincipalPolicy")
    assert len(r.results) == 4


class FakeEks:
    def __init__(self, roles: list[str]):
        self.roles = roles
        self.asked: list[dict] = []

    def list_pod_identity_associations(self, **kwargs):
        self.asked.append(kwargs)
        return {"associations": [{"associationId": f"a-{i}"} for i in range(len(self.roles))]}

    def describe_pod_identity_association(self, clusterName, associationId):
        return {"association": {"roleArn": self.roles[int(associationId.split("-")[1])]}}


def test_pod_identity_needs_exactly_one_association_with_the_role(monkeypatch):
    arn = "arn:aws:iam::123456789012:role/obs-staging-loki-compactor"
    for roles, status in (([arn], "PASS"), ([], "FAIL"), ([arn, "arn:aws:iam::123456789012:role/other"], "FAIL")):
        eks = FakeEks(roles)
        r = aws_check(monkeypatch, FakeIam(compactor_role(trust=POD_IDENTITY)), aws_stack("pod-identity"), eks)
        assert [x.status for x in r.results][:3] == ["PASS", "PASS", status], outcomes(r)
        assert eks.asked == [{"clusterName": "staging-eks", "namespace": "observability", "serviceAccount": "loki-compactor"}]


# ---------------------------------------------------------------- tools: readiness, Grafana, the local round trips (fake HTTP)
class Web:
    """verify_tools.http for tests: (method, url) -> (status, body), or Unreachable for unknown addresses."""

    def __init__(self, answers: dict[tuple[str, str], Any]):
        self.answers, self.calls = answers, []

    def __call__(self, method, url, body=None, headers=None):
        self.calls.append((method, url, body, headers))
        for (m, prefix), answer in self.answers.items():
            if m == method and url.startswith(prefix):
                return answer(url, body) if callable(answer) else answer
        raise verify_tools.Unreachable("Name or service not known")


def test_readiness_200_passes_another_status_fails_and_unreachable_is_skipped(monkeypatch):
    stack = verify.Stack("staging", {"target": "aws", "buckets": {}, "urls": {"loki": "http://loki:3100", "tempo": "http://tempo.internal:3200",
                                                                              "thanosQuery": "http://q:10902/"}})
    monkeypatch.setattr(verify_tools, "http", Web({("GET", "http://loki:3100/ready"): (200, b"ready"), ("GET", "http://q:10902/-/ready"): (503, b"not ready")}))
    r = report()
    verify_tools.check(stack, r)
    assert [(x.subject, x.status) for x in r.results] == [
        ("loki", "PASS"), ("tempo", "SKIP"), ("thanos-query", "FAIL"), ("prometheus", "SKIP"), ("grafana", "SKIP"), ("ingest", "SKIP")]
    assert r.results[2].detail == "ready: GET http://q:10902/-/ready answered 200: answered 503 b'not ready'"
    assert r.results[1].detail.startswith("http://tempo.internal:3200/ready not reachable from here (Name or service not known)")


def test_grafana_datasources_must_each_be_healthy(monkeypatch):
    stack = verify.Stack("prod", {"target": "hetzner", "buckets": {}, "urls": {"grafana": "http://g:3000"}, "grafanaAdminPassword": "pw"})
    datasources = json.dumps([{"uid": "a", "name": "Loki", "type": "loki"}, {"uid": "b", "name": "Tempo", "type": "tempo"},
                              {"uid": "c", "name": "Thanos", "type": "prometheus"}, {"uid": "d", "name": "Alertmanager", "type": "alertmanager"}]).encode()
    web = Web({("GET", "http://g:3000/api/health"): (200, b"{}"), ("GET", "http://g:3000/api/datasources/uid/a/health"): (200, b'{"status": "OK"}'),
               ("GET", "http://g:3000/api/datasources/uid/c/health"): (200, b'{"status": "ERROR", "message": "bad gateway"}'),
               ("GET", "http://g:3000/api/datasources/uid/d/health"): (500, b'{"status": "OK"}'),
               ("GET", "http://g:3000/api/datasources/uid/b/health"): (400, b'{"status": "ERROR", "message": "connection refused"}'),
               ("GET", "http://g:3000/api/datasources"): (200, datasources)})
    monkeypatch.setattr(verify_tools, "http", web)
    r = report()
    verify_tools.check(stack, r)
    grafana = [(x.status, x.detail) for x in r.results if x.subject == "grafana"]
    assert grafana == [("PASS", "ready: GET http://g:3000/api/health answered 200"), ("PASS", "datasources listed"),
                       ("PASS", "datasource Loki (loki) healthy"), ("FAIL", "datasource Tempo (tempo) healthy: 400 connection refused"),
                       ("FAIL", "datasource Thanos (prometheus) healthy: 200 bad gateway"), ("FAIL", "datasource Alertmanager (alertmanager) healthy: 500 {\"status\": \"OK\"}")]
    assert web.calls[1][3]["Authorization"] == "Basic YWRtaW46cHc="  # admin:pw
    stack.outputs.pop("grafanaAdminPassword")
    r = report()
    verify_tools.check(stack, r)
    assert ("SKIP", "datasource health not checked: no grafanaAdminPassword in the outputs") in outcomes(r)


def test_an_ec2_stack_has_its_fleets_checked_and_other_stacks_do_not(monkeypatch):
    """An ec2 stack outputs its fleets (components/ec2/platform.py): `make verify` checks their
    groups, registrations and target groups; the other stacks have none to check."""
    from tools.verify import fleets

    checked = []
    monkeypatch.setattr(fleets, "check", lambda stack, r: checked.append(stack.name))
    monkeypatch.setattr(verify_tools, "http", Web({}))
    ec2 = verify.Stack("staging-ec2", {"target": "aws", "buckets": {}, "urls": {}, "fleets": {"loki": {"group": "staging-ec2-loki"}}})
    verify_tools.check(ec2, report())
    assert checked == ["staging-ec2"]
    verify_tools.check(verify.Stack("staging", {"target": "aws", "buckets": {}, "urls": {}}), report())
    assert checked == ["staging-ec2"]


def local_tools(monkeypatch, answers) -> verify.Report:
    outputs = json.loads(json.dumps({"target": "local", "buckets": {}, "urls": {"lokiPush": "http://127.0.0.1:3100/loki/api/v1/push",
                                                                              "otlpHttp": "http://127.0.0.1:4318"}}))
    stack = verify.Stack("local", outputs, run_id="run1")
    monkeypatch.setattr(verify_tools, "http", Web(answers))
    monkeypatch.setattr(verify_tools, "wait_for", lambda report, what, poll, timeout, interval=2.0: poll())
    monkeypatch.setattr(verify_tools, "_objects_appear", lambda stack, r, tool, since: r.passed("tools", tool, "objects written"))
    r = report()
    verify_tools.check(stack, r)
    return r


def test_the_local_round_trips_pass_only_when_each_step_answers_as_expected(monkeypatch):
    from components.core.renderers import tempo

    t = f"http://127.0.0.1:{tempo.HTTP_PORT}"
    good = {("GET", "http://127.0.0.1:3100/ready"): (200, b""), ("GET", f"{t}/ready"): (200, b""),
            ("POST", "http://127.0.0.1:3100/loki/api/v1/push"): (204, b""),
            ("GET", "http://127.0.0.1:3100/loki/api/v1/query_range"): (200, b'{"result": "obs-verify run1"}'),
            ("POST", "http://127.0.0.1:3100/flush"): (204, b""),
            ("POST", "http://127.0.0.1:4318/v1/traces"): (200, b"{}"), ("GET", f"{t}/api/traces/"): (200, b"{}"), ("GET", f"{t}/flush"): (204, b"")}
    results = [(x.subject, x.status) for x in local_tools(monkeypatch, good).results if x.subject in ("loki", "tempo")]
    assert results == [("loki", "PASS"), ("tempo", "PASS")] + [("loki", "PASS")] * 4 + [("tempo", "PASS")] * 4
    for step, answer, subject in [
        (("POST", "http://127.0.0.1:3100/loki/api/v1/push"), (400, b"bad"), "loki"),
        (("GET", "http://127.0.0.1:3100/loki/api/v1/query_range"), (200, b'{"result": []}'), "loki"),
        (("POST", "http://127.0.0.1:3100/flush"), (500, b""), "loki"),
        (("POST", "http://127.0.0.1:4318/v1/traces"), (503, b""), "tempo"),
        (("GET", f"{t}/api/traces/"), (404, b""), "tempo"),
        (("GET", f"{t}/flush"), (500, b""), "tempo"),
        # Loki answers a push with 204: a 200 comes from something else (a proxy's page).
        (("POST", "http://127.0.0.1:3100/loki/api/v1/push"), (200, b"<html>"), "loki"),
        (("GET", "http://127.0.0.1:3100/loki/api/v1/query_range"), (500, b"obs-verify run1"), "loki"),
    ]:
        r = local_tools(monkeypatch, {**good, step: answer})
        assert [x.subject for x in r.results if x.status == "FAIL"] == [subject], (step, outcomes(r))
    # Either success status of a flush passes.
    r = local_tools(monkeypatch, {**good, ("POST", "http://127.0.0.1:3100/flush"): (200, b""), ("GET", f"{t}/flush"): (200, b"")})
    assert "FAIL" not in {x.status for x in r.results}


def test_the_test_data_is_what_loki_and_otlp_accept(monkeypatch):
    """The pushed line is inside the queried window, and the span has OTLP's id sizes (16-byte trace
    id, 8-byte span id, hex in OTLP/JSON) and ends after it starts."""
    import urllib.parse

    from components.core.renderers import tempo

    t = f"http://127.0.0.1:{tempo.HTTP_PORT}"
    sent = {}

    def push(url, body):
        sent["loki"] = json.loads(body)
        return (204, b"")

    def query(url, body):
        sent["query"] = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        return (200, b"obs-verify run1")

    def otlp(url, body):
        sent["otlp"] = json.loads(body)
        return (200, b"{}")

    local_tools(monkeypatch, {("GET", "http://127.0.0.1:3100/ready"): (200, b""), ("GET", f"{t}/ready"): (200, b""),
                              ("POST", "http://127.0.0.1:3100/loki/api/v1/push"): push, ("GET", "http://127.0.0.1:3100/loki/api/v1/query_range"): query,
                              ("POST", "http://127.0.0.1:3100/flush"): (204, b""), ("POST", "http://127.0.0.1:4318/v1/traces"): otlp,
                              ("GET", f"{t}/api/traces/"): (200, b"{}"), ("GET", f"{t}/flush"): (204, b"")})
    ((stamp, line),) = sent["loki"]["streams"][0]["values"]
    assert line == "obs-verify run1" and sent["query"]["query"] == '{job="obs-verify"} |= "obs-verify run1"'
    start, end = int(sent["query"]["start"]), int(sent["query"]["end"])
    assert start < int(stamp) < end and end - start <= 10 * 60 * 10**9
    (span,) = sent["otlp"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert len(bytes.fromhex(span["traceId"])) == 16 and len(bytes.fromhex(span["spanId"])) == 8
    assert 0 < int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"]) < 10**9


# ---------------------------------------------------------------- the stack: where to connect, with which keys
def test_endpoints_per_target():
    bucket = {"name": "b", "prefix": "", "region": "eu-central-1", "endpoint": "fsn1.your-objectstorage.com"}
    assert verify.Stack("staging", json.loads(json.dumps({"target": "aws", "buckets": {"loki": bucket}}))).endpoint_url() is None
    assert verify.Stack("prod", {"target": "hetzner", "buckets": {"loki": bucket}}).endpoint_url() == "https://fsn1.your-objectstorage.com"
    plain = {**bucket, "endpoint": "minio:9000", "tls": False}
    assert verify.Stack("x", {"target": "hetzner", "buckets": {"loki": plain}}).endpoint_url() == "http://minio:9000"
    # Locally the buckets' endpoint is the address inside the Docker network; the host's is in urls.
    local = verify.Stack("local", {"target": "local", "buckets": {"loki": plain}, "urls": {"minioApi": "http://127.0.0.1:9000"}})
    assert local.endpoint_url() == "http://127.0.0.1:9000"


def test_s3_clients_address_and_sign_as_the_outputs_say():
    import botocore

    stack = verify.Stack("local", {"target": "local", "buckets": {"loki": {"name": "obs-loki", "prefix": "", "region": "us-east-1", "pathStyle": True,
                                                                          "endpoint": "minio:9000", "tls": False}}, "urls": {"minioApi": "http://127.0.0.1:9000"}})
    client = stack.s3(verify.Keys("obs-loki", "secret"))
    assert client.meta.endpoint_url == "http://127.0.0.1:9000" and client.meta.region_name == "us-east-1"
    assert client.meta.config.s3["addressing_style"] == "path" and client.meta.config.signature_version != botocore.UNSIGNED
    assert client._request_signer._credentials.access_key == "obs-loki"
    anonymous = stack.s3(verify.Keys("obs-loki", "secret"), anonymous=True)
    assert anonymous.meta.config.signature_version == botocore.UNSIGNED
    stack.outputs["buckets"]["loki"]["pathStyle"] = False
    assert stack.s3(None).meta.config.s3["addressing_style"] == "auto"


def test_hetzner_outputs_give_every_tool_the_projects_key_pair(tmp_path):
    credentials = "[default]\naws_access_key_id = HETZNERKEY\naws_secret_access_key = hetzner-secret\n"
    outputs = {"target": "hetzner", "buckets": {t: {"name": t, "prefix": "", "region": "fsn1", "endpoint": "fsn1.your-objectstorage.com"} for t in ("loki", "tempo")},
               "s3Credentials": {"loki": credentials}, "grafanaAdminPassword": "grafana-pw"}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    stack = verify.load_stack("prod", str(path))
    keys = verify.Keys("HETZNERKEY", "hetzner-secret")
    assert stack.admin_keys == keys and stack.tool_keys == {"loki": keys, "tempo": keys}
    assert set(stack.secrets()) == {"hetzner-secret", "grafana-pw"}
    # Only the tools part: no key pair is read at all (it would ask the Pulumi CLI).
    tools_only = verify.load_stack("prod", str(path), ("tools",))
    assert tools_only.admin_keys is None and tools_only.tool_keys == {}


# ---------------------------------------------------------------- the report, polling and clean-up
def test_each_result_is_one_aligned_line_and_json_prints_nothing_until_the_end():
    out = io.StringIO()
    r = verify.Report(stream=out)
    r.passed("storage", "loki", "bucket acme-loki exists")
    r.failed("identity", "loki-compactor", "s3:DeleteObject allowed: got denied")
    assert out.getvalue() == ("PASS  storage   loki            bucket acme-loki exists\n"
                              "FAIL  identity  loki-compactor  s3:DeleteObject allowed: got denied\n")
    quiet = io.StringIO()
    verify.Report(as_json=True, stream=quiet).passed("storage", "loki", "x")
    assert quiet.getvalue() == ""


def test_the_longest_secret_is_hidden_first_and_progress_is_redacted_too(capsys):
    r = verify.Report(secrets=["", "abc", "abcdef-secret"], stream=io.StringIO())
    assert r.redact("key abcdef-secret and abc") == "key [secret] and [secret]"
    r.progress("waiting with abcdef-secret")
    assert capsys.readouterr().err == "      ... waiting with [secret]\n"


def test_wait_for_polls_until_something_comes_or_time_is_up(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(verify.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(verify.time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    r = verify.Report(stream=io.StringIO())
    answers = iter([[], [], ["key"]])
    assert verify.wait_for(r, "objects", lambda: next(answers), timeout=60) == ["key"] and clock[0] == 4.0
    progress = []
    monkeypatch.setattr(r, "progress", progress.append)
    clock[0] = 0.0
    assert verify.wait_for(r, "Loki", lambda: None, timeout=12, interval=3.0) is None
    assert clock[0] == 12.0 and progress == ["waiting for Loki (6s of 12s)"]
    # A clock that does not start at zero, and progress once 5 s have passed since the last.
    clock[0], progress[:] = 1000.0, []
    assert verify.wait_for(r, "Tempo", lambda: None, timeout=11, interval=2.5) is None
    assert clock[0] == 1012.5 and progress == ["waiting for Tempo (5s of 11s)", "waiting for Tempo (10s of 11s)"]


def test_a_probe_object_is_removed_with_every_version_and_nothing_else():
    listed = {"Versions": [{"Key": "p/obs-verify/run1/x", "VersionId": "v1"}, {"Key": "p/obs-verify/run1/x2", "VersionId": "v9"}],
              "DeleteMarkers": [{"Key": "p/obs-verify/run1/x", "VersionId": "m1"}]}
    owner = FakeS3(list_object_versions=listed, delete_object={})
    verify.delete_all_versions(owner, "b", "p/obs-verify/run1/x")
    assert [c[1] for c in owner.calls if c[0] == "delete_object"] == [
        {"Bucket": "b", "Key": "p/obs-verify/run1/x", "VersionId": "v1"}, {"Bucket": "b", "Key": "p/obs-verify/run1/x", "VersionId": "m1"}]
    # A server without version listing: one plain delete.
    plain = FakeS3(list_object_versions=client_error("NotImplemented", 501), delete_object={})
    verify.delete_all_versions(plain, "b", "k")
    assert [c for c in plain.calls if c[0] == "delete_object"] == [("delete_object", {"Bucket": "b", "Key": "k"})]


def test_probe_keys_sit_under_the_tools_prefix_and_secrets_include_session_tokens():
    stack = verify.Stack("local", {"target": "local", "buckets": {"tempo": {"prefix": "traces/"}}, "minioRootPassword": "root-pw", "grafanaAdminPassword": ""},
                         tool_keys={"tempo": verify.Keys("a", "tempo-secret", "tempo-token")}, admin_keys=verify.Keys("root", "root-pw"), run_id="run1")
    assert stack.probe_key("tempo", "own-tempo") == "traces/obs-verify/run1/own-tempo"
    assert sorted(stack.secrets()) == ["root-pw", "root-pw", "tempo-secret", "tempo-token"]


def test_the_json_summary(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(verify_storage, "check", part("PASS", "SKIP"))
    assert cli.main(["--stack", "local", "--outputs", outputs_file(tmp_path), "--only", "storage", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {"stack": "local", "target": "local", "parts": ["storage"], "summary": {"PASS": 1, "FAIL": 0, "SKIP": 1},
                    "results": [{"part": "storage", "subject": "loki", "status": "PASS", "detail": "a PASS"},
                                {"part": "storage", "subject": "loki", "status": "SKIP", "detail": "a SKIP"}]}


def test_the_text_report_names_the_stack_and_parts_in_order(monkeypatch, tmp_path, capsys):
    for module in (verify_storage, verify_identity, verify_tools, verify_freshness):
        monkeypatch.setattr(module, "check", part())
    assert cli.main(["--stack", "local", "--outputs", outputs_file(tmp_path), "--only", "freshness", "--only", "storage"]) == 0
    assert capsys.readouterr().out.splitlines() == ["verify stack local (target local): storage, freshness", "summary: 0 PASS, 0 FAIL, 0 SKIP"]


def test_each_role_is_simulated_as_a_listing_of_its_prefix_and_of_the_other_buckets():
    iam = FakeIam(compactor_role())
    stack = aws_stack(prefix="logs/")
    stack.aws = {"iam": iam}.get  # type: ignore[method-assign]
    verify_identity.check(stack, report())
    assert iam.simulated == [
        (ARN, [("s3:prefix", ["logs/"])]),
        (f"{ARN}/logs/obs-verify/run1/simulated", []),
        ("arn:aws:s3:::acme-tempo", [("s3:prefix", [""])]), ("arn:aws:s3:::acme-tempo/x", []),
        ("arn:aws:s3:::acme-thanos", [("s3:prefix", [""])]), ("arn:aws:s3:::acme-thanos/x", []),
    ]


def test_a_leak_into_any_other_bucket_is_found_whatever_the_order():
    roles = {"obs-staging-thanos-compact": {"trust": irsa_trust(Condition={"StringEquals": {
        f"{ISSUER}:sub": "system:serviceaccount:observability:thanos-compact", f"{ISSUER}:aud": "sts.amazonaws.com"}}), "policies": {
        "bucket-access": {"Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::acme-thanos"]},
                                        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], "Resource": ["arn:aws:s3:::acme-thanos/*"]},
                                        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"{ARN}/*"]}]}}}}
    stack = aws_stack(tool="thanos", sa="thanos-compact")
    stack.aws = {"iam": FakeIam(roles)}.get  # type: ignore[method-assign]
    r = report()
    verify_identity.check(stack, r)
    assert r.results[-1].detail == "simulation: every action on the other tools' buckets denied: allowed: s3:GetObject on acme-loki"


def test_unreadable_role_policies_fail_and_an_unreadable_attachment_list_is_not_a_finding(monkeypatch):
    r = aws_check(monkeypatch, FakeIam(compactor_role(), unreadable={"list_role_policies"}))
    assert ("FAIL", "role policies of obs-staging-loki-compactor not readable: denied AccessDenied") in outcomes(r)
    r = aws_check(monkeypatch, FakeIam(compactor_role(), unreadable={"list_attached_role_policies"}))
    assert [x.status for x in r.results] == ["PASS"] * 5
    r = aws_check(monkeypatch, FakeIam(compactor_role(attached=[{"PolicyName": "AmazonS3FullAccess"}])))
    assert r.results[2].status == "FAIL" and r.results[2].detail.endswith(": managed policies attached: ['AmazonS3FullAccess']")


def test_the_simulation_failure_message_is_cut_to_160_characters(monkeypatch):
    r = aws_check(monkeypatch, FakeIam(compactor_role(), simulation=RuntimeError("x" * 400)))
    assert r.results[-1].detail == ("IAM policy simulation unavailable (RuntimeError: " + "x" * 160 + "); the caller needs iam:SimulatePrincipalPolicy")


def test_trust_failures_show_the_documents_in_one_order():
    condition = {"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:observability:other", f"{ISSUER}:aud": "sts.amazonaws.com"}}
    problem = verify_identity.irsa_trust_problem(irsa_trust(Condition=condition), "observability", "loki-compactor")
    wanted = {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com", f"{ISSUER}:sub": "system:serviceaccount:observability:loki-compactor"}}
    assert problem == f"condition {json.dumps(condition, sort_keys=True)} != {json.dumps(wanted, sort_keys=True)}"
    assert json.dumps(condition, sort_keys=True) != json.dumps(condition)  # the order is the sorted one, not the document's
    for effect in ("", "ALLOW", "allow"):
        problem = verify_identity.irsa_trust_problem(irsa_trust(Effect=effect), "observability", "loki-compactor")
        assert problem is not None and problem.startswith(f"statement is {effect} "), problem


def pod_identity_check(monkeypatch, eks, trust=POD_IDENTITY) -> verify.Report:
    return aws_check(monkeypatch, FakeIam(compactor_role(trust=trust)), aws_stack("pod-identity"), eks)


def test_pod_identity_findings_say_what_was_read(monkeypatch):
    wrong = {"Version": "2012-10-17", "Statement": [{"Principal": {"Service": "ec2.amazonaws.com"}, "Effect": "Allow", "Action": "sts:AssumeRole"}]}
    r = pod_identity_check(monkeypatch, FakeEks([]), wrong)
    assert r.results[1] == verify.Result("identity", "loki-compactor", "FAIL", "trust: EKS Pod Identity (pods.eks.amazonaws.com, sts:AssumeRole + "
                                         f"sts:TagSession): {json.dumps(wrong, sort_keys=True)}")

    class Refusing(FakeEks):
        def list_pod_identity_associations(self, **kwargs):
            raise DENIED

    r = pod_identity_check(monkeypatch, Refusing([]))
    assert r.results[2].detail == "pod identity associations of staging-eks/observability/loki-compactor not readable: denied AccessDenied"

    class Undescribable(FakeEks):
        def describe_pod_identity_association(self, clusterName, associationId):
            raise DENIED

    r = pod_identity_check(monkeypatch, Undescribable(["x"]))
    assert r.results[2].detail.endswith("is associated with arn:aws:iam::123456789012:role/obs-staging-loki-compactor only: associations: ['unreadable (AccessDenied)']")


def test_identity_checks_real_calls_with_each_tools_own_key_off_aws(monkeypatch):
    outputs = json.loads(json.dumps({"target": "local", "buckets": {t: {"name": f"obs-{t}", "prefix": "", "region": "us-east-1"} for t in ("loki", "tempo", "thanos")},
                                     "identities": {"loki": {"serviceAccounts": {"loki": sorted(LOKI_COMPACTOR)}},
                                                    "tempo": {"serviceAccounts": {"tempo": sorted(LOKI_COMPACTOR)}}}}))
    keys = {"loki": verify.Keys("obs-loki", "a"), "tempo": verify.Keys("obs-tempo", "b")}
    stack = verify.Stack("local", outputs, tool_keys=keys, admin_keys=verify.Keys("root", "r"), run_id="run1")
    owner = FakeS3(put_object={}, list_object_versions={}, delete_object={})
    clients = {keys["loki"]: PolicyClient("obs-loki", LOKI_COMPACTOR), keys["tempo"]: PolicyClient("obs-tempo", LOKI_COMPACTOR), stack.admin_keys: owner}
    stack.s3 = lambda k, anonymous=False: clients[k]  # type: ignore[method-assign]
    r = report()
    verify_identity.check(stack, r)
    assert [(x.subject, x.status) for x in r.results] == [("loki", "PASS")] * 12 + [("tempo", "PASS")] * 12 + [("thanos", "FAIL")]
    assert r.results[-1].detail == "the outputs carry no credentials of this tool (s3Credentials)"
    # Hetzner: one key pair, so no denial can be proven.
    outputs["target"] = json.loads('"hetzner"')
    r = report()
    verify_identity.check(stack, r)
    assert {x.status for x in r.results if x.subject == "loki"} == {"PASS", "SKIP"}
    stack.admin_keys = None
    r = report()
    verify_identity.check(stack, r)
    assert outcomes(r) == [("FAIL", "no credentials to clean up probe objects with (outputs lack minioRootUser/minioRootPassword)")]


def test_http_returns_any_status_and_raises_only_when_nothing_answers():
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            status = 200 if self.path == "/ready" else 503
            self.send_response(status)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"ready" if status == 200 else b"later")

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204 if body == b"{}" and self.headers["Content-Type"] == "application/json" else 400)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert verify_tools.http("GET", f"{base}/ready") == (200, b"ready")
        assert verify_tools.http("GET", f"{base}/other") == (503, b"later")
        assert verify_tools.http("POST", f"{base}/push", b"{}", {"Content-Type": "application/json"})[0] == 204
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(verify_tools.Unreachable):
        verify_tools.http("GET", f"{base}/ready")
    with pytest.raises(verify_tools.Unreachable):
        verify_tools.http("GET", "not a url")


def test_json_answers_that_are_not_an_object_read_as_empty():
    assert verify_tools._json(b'{"status": "OK"}') == {"status": "OK"}
    assert verify_tools._json(b"[1]") == {} and verify_tools._json(b"<html>") == {}


def test_round_trips_are_skipped_with_the_reason_when_a_tool_is_not_reachable(monkeypatch):
    stack = verify.Stack("local", {"target": "local", "buckets": {}, "urls": {"lokiPush": "http://127.0.0.1:3100/loki/api/v1/push",
                                                                             "otlpHttp": "http://127.0.0.1:4318"}}, run_id="run1")
    monkeypatch.setattr(verify_tools, "http", Web({}))
    r = report()
    verify_tools.check(stack, r)
    assert ("SKIP", "log round trip not run: Loki is not reachable") in outcomes(r)
    assert ("SKIP", "trace round trip not run: Tempo or its OTLP/HTTP address is not reachable") in outcomes(r)
    # Tempo answers, but there is no OTLP address to send a trace to.
    stack.outputs["urls"] = {"tempo": "http://127.0.0.1:3200"}
    monkeypatch.setattr(verify_tools, "http", Web({("GET", "http://127.0.0.1:3200/ready"): (200, b"")}))
    r = report()
    verify_tools.check(stack, r)
    assert outcomes(r)[-1] == ("SKIP", "trace round trip not run: Tempo or its OTLP/HTTP address is not reachable")
    assert ("PASS", "ready: GET http://127.0.0.1:3200/ready answered 200") in outcomes(r)


def test_the_freshness_lister_pages_through_boto3_and_names_a_refusal():
    from datetime import datetime, timezone

    modified = datetime(2026, 8, 1, 12, tzinfo=timezone.utc)
    pages = [{"Contents": [{"Key": "index/index_20001/fake/1.gz", "LastModified": modified}], "CommonPrefixes": [{"Prefix": "index/index_20001/"}]},
             {"Contents": [{"Key": "index/index_20001/fake/2.gz", "LastModified": modified}]}, {}]
    asked = []

    class Paginator:
        def paginate(self, **kwargs):
            asked.append(kwargs)
            return iter(pages)

    class Client:
        def get_paginator(self, operation):
            assert operation == "list_objects_v2"
            return Paginator()

        def get_object(self, Bucket, Key):
            raise client_error("AccessDenied", 403, "denied")

    client = Client()
    lister = verify_freshness.Boto3Lister(client, "acme-loki")
    assert lister.list("index/", "/") == ([("index/index_20001/fake/1.gz", modified.timestamp()), ("index/index_20001/fake/2.gz", modified.timestamp())],
                                          ["index/index_20001/"])
    lister.list("fake/")
    assert asked == [{"Bucket": "acme-loki", "Prefix": "index/", "Delimiter": "/"}, {"Bucket": "acme-loki", "Prefix": "fake/"}]
    with pytest.raises(RuntimeError, match=r"^S3 answered 403 AccessDenied$"):
        lister.get("traces/single-tenant/index.json.gz")


def test_freshness_checks_each_tool_it_has_a_limit_for(monkeypatch):
    checked = []
    monkeypatch.setattr(verify_freshness, "check_tool", lambda r, tool, bucket, lister: checked.append((tool, bucket["name"], lister.bucket)))
    buckets = {t: {"name": f"acme-{t}", "prefix": ""} for t in ("loki", "tempo", "thanos", "pyroscope")}
    stack = verify.Stack("staging", {"target": "aws", "buckets": buckets})
    monkeypatch.setattr(stack, "s3", lambda keys: FakeS3())
    verify_freshness.check(stack, report())
    assert checked == [(t, f"acme-{t}", f"acme-{t}") for t in ("loki", "tempo", "thanos")]
    assert set(freshness.MAX_AGE_SECONDS) == {"loki", "tempo", "thanos"}


# ---------------------------------------------------------------- reading the outputs through the Pulumi CLI
def test_the_pulumi_cli_failing_shows_its_last_error_line_and_never_its_output(monkeypatch):
    import subprocess

    ran = []

    def pulumi(command, **kwargs):
        ran.append(command)
        # Run from the project, its output captured as text: `--show-secrets` output never reaches the terminal.
        assert (kwargs["cwd"], kwargs["capture_output"], kwargs["text"]) == (ROOT, True, True)
        return subprocess.CompletedProcess(command, 255, stdout='{"minioRootPassword": "root-secret"}',
                                           stderr="warning: a newer version is available\nsee the docs\nerror: no stack named 'local' found\n")

    monkeypatch.setattr(verify.subprocess, "run", pulumi)
    with pytest.raises(verify.OutputsError) as error:
        verify.pulumi_json(["stack", "output", "--json", "--show-secrets", "--stack", "local"])
    assert str(error.value) == "pulumi stack output --json failed: error: no stack named 'local' found"
    assert ran == [["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", "local"]]
    monkeypatch.setattr(verify.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(command, 3, stdout="secret", stderr=""))
    with pytest.raises(verify.OutputsError, match=r"^pulumi stack output --json failed: 3$"):
        verify.pulumi_json(["stack", "output", "--json"])
    # Killed by a signal: a negative status is a failure too.
    monkeypatch.setattr(verify.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(command, -9, stdout="{}", stderr=""))
    with pytest.raises(verify.OutputsError, match=r"failed: -9$"):
        verify.pulumi_json(["stack", "output", "--json"])
    monkeypatch.setattr(verify.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(command, 0, stdout='{"target": "aws"}', stderr=""))
    assert verify.pulumi_json(["stack", "output", "--json"]) == {"target": "aws"}


def test_without_the_pulumi_cli_the_outputs_file_is_the_way(monkeypatch):
    def missing(command, **kwargs):
        raise FileNotFoundError("pulumi")

    monkeypatch.setattr(verify.subprocess, "run", missing)
    with pytest.raises(verify.OutputsError, match="--outputs FILE"):
        verify.load_stack("local", None)


def test_the_hetzner_key_pair_comes_from_the_stack_config_when_the_outputs_lack_it(monkeypatch):
    asked = []

    def config(args):
        asked.append(args)
        return {"value": {"obs-storage:hetznerAccessKey": "HKEY", "obs-storage:hetznerSecretKey": "hsecret"}[args[2]]}

    monkeypatch.setattr(verify, "pulumi_json", config)
    outputs = {"target": "hetzner", "buckets": {"loki": {"name": "l"}, "tempo": {"name": "t"}}}
    assert verify._hetzner_key_pair("prod", outputs) == verify.Keys("HKEY", "hsecret")
    assert asked == [["config", "get", "obs-storage:hetznerAccessKey", "--stack", "prod", "--json"],
                     ["config", "get", "obs-storage:hetznerSecretKey", "--stack", "prod", "--json"]]


def test_outputs_without_buckets_are_refused(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"target": "local"}))
    with pytest.raises(verify.OutputsError, match=r"^the outputs of stack 'local' have no 'buckets': is the stack deployed \(pulumi up\)\?$"):
        verify.load_stack("local", str(path))


def test_a_deny_in_a_role_policy_is_no_grant_and_hides_no_statement_after_it():
    deny = {"Effect": "Deny", "Action": ["s3:DeleteBucket", "s3:PutBucketPolicy"], "Resource": [ARN]}
    document = role_document(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"])
    document["Statement"].insert(0, deny)
    assert problems(document) == []
    # IAM's effects are "Allow" and "Deny": a statement without one grants nothing either.
    document["Statement"].insert(0, {"Action": ["s3:PutObjectTagging"], "Resource": [f"{ARN}/*"]})
    assert problems(document) == []


def test_one_statement_on_the_bucket_and_its_objects_is_within_the_bucket():
    document = {"Statement": [{"Effect": "Allow", "Action": sorted(LOKI_COMPACTOR), "Resource": [ARN, f"{ARN}/*"]}]}
    assert problems(document) == []


def test_a_missing_role_does_not_end_the_check_of_the_next_one(monkeypatch):
    stack = aws_stack()
    identity = stack.outputs["identities"]["loki"]
    identity["roleArns"] = {"loki-querier": "arn:aws:iam::123456789012:role/obs-staging-loki-querier", **identity["roleArns"]}
    identity["serviceAccounts"]["loki-querier"] = ["s3:GetObject", "s3:ListBucket"]
    r = aws_check(monkeypatch, FakeIam(compactor_role(), missing={"obs-staging-loki-querier"}), stack)
    assert [(x.subject, x.status) for x in r.results] == [("loki-querier", "FAIL")] + [("loki-compactor", "PASS")] * 5


def test_a_tool_without_keys_does_not_end_the_check_of_the_next_one():
    outputs = {"target": "local", "buckets": {t: {"name": f"obs-{t}", "prefix": "", "region": "us-east-1"} for t in ("loki", "tempo")},
               "identities": {"tempo": {"serviceAccounts": {"tempo": sorted(LOKI_COMPACTOR)}}}}
    keys = verify.Keys("obs-tempo", "b")
    stack = verify.Stack("local", outputs, tool_keys={"tempo": keys}, admin_keys=verify.Keys("root", "r"), run_id="run1")
    owner = FakeS3(put_object={}, list_object_versions={}, delete_object={})
    stack.s3 = lambda k, anonymous=False: PolicyClient("obs-tempo", LOKI_COMPACTOR) if k == keys else owner  # type: ignore[method-assign]
    r = report()
    verify_identity.check(stack, r)
    assert [(x.subject, x.status) for x in r.results] == [("loki", "FAIL")] + [("tempo", "PASS")] * 10


def test_owner_credentials_per_target(tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "pulumi_json", lambda args: pytest.fail("no Pulumi CLI call for this target"))
    path = tmp_path / "outputs.json"
    # AWS: the caller's own credentials, never a key pair from the stack config.
    path.write_text(json.dumps({"target": "aws", "buckets": {"loki": {"name": "acme-loki", "region": "ap-northeast-2"}}}))
    stack = verify.load_stack("staging", str(path))
    assert stack.admin_keys is None and stack.tool_keys == {}
    asked = []
    monkeypatch.setattr(stack, "s3", lambda keys, anonymous=False: asked.append(keys) or "client")
    r = report()
    assert stack.owner_s3(r, "storage") == "client" and asked == [None] and r.results == []
    # Local: the MinIO root only when both halves are there.
    path.write_text(json.dumps({"target": "local", "buckets": {"loki": {"name": "loki", "region": "us-east-1"}}, "minioRootUser": "root"}))
    local = verify.load_stack("local", str(path))
    assert local.admin_keys is None
    r = report()
    assert local.owner_s3(r, "storage") is None and [x.status for x in r.results] == ["FAIL"]
    assert verify.load_stack("local", str(path), ("tools",)).admin_keys is None


def test_the_command_needs_a_stack_and_says_what_it_does(capsys):
    import tools.verify

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--only", "storage"])
    assert exit_.value.code == 2 and "the following arguments are required: --stack" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0 and tools.verify.__doc__.splitlines()[0] in " ".join(capsys.readouterr().out.split())


def test_grafana_refusing_the_datasource_list_fails(monkeypatch):
    stack = verify.Stack("prod", {"target": "hetzner", "buckets": {}, "urls": {"grafana": "http://g:3000"}, "grafanaAdminPassword": "pw"})
    monkeypatch.setattr(verify_tools, "http", Web({("GET", "http://g:3000/api/health"): (200, b"{}"), ("GET", "http://g:3000/api/datasources"): (500, b"")}))
    r = report()
    verify_tools.check(stack, r)
    assert ("FAIL", "datasources listed: GET /api/datasources answered 500") in outcomes(r)


def objects_appear(objects: dict[str, tuple[Any, bytes]], tool: str = "tempo", list_answer: Any = None) -> verify.Result:
    """_objects_appear against a bucket of (LastModified, body) by key; a body of None cannot be read."""
    from datetime import datetime, timezone

    since = datetime(2026, 11, 28, 10, 26, 30, tzinfo=timezone.utc)

    def get_object(Bucket, Key):
        if objects[Key][1] is None:
            raise DENIED
        return {"Body": io.BytesIO(objects[Key][1])}

    listing = list_answer if list_answer is not None else {"Contents": [{"Key": k, "LastModified": since + m} for k, (m, _) in objects.items()]}
    client = FakeS3(list_objects_v2=listing, get_object=get_object)
    stack = verify.Stack("local", {"target": "local", "buckets": {tool: {"name": tool, "prefix": "", "region": "us-east-1"}}})
    stack.s3 = lambda keys: client  # type: ignore[method-assign]
    r = report()
    import unittest.mock

    with unittest.mock.patch.object(verify_tools, "wait_for", lambda report, what, poll, timeout, interval=2.0: poll()):
        verify_tools._objects_appear(stack, r, tool, since)
    return r.results[-1]


def test_only_objects_written_since_the_push_count_and_unreadable_ones_do_not():
    from datetime import timedelta

    block = "single-tenant/1adb8574-b0a8-4b62-9477-c280a3b963e2/meta.json"
    flushed = json.dumps({"compactionLevel": 0}).encode()
    assert objects_appear({block: (timedelta(0), flushed)}).status == "PASS"  # written the second the run started
    assert objects_appear({block: (timedelta(seconds=-1), flushed)}).status == "FAIL"  # older than the run
    assert objects_appear({block: (timedelta(seconds=5), None)}).status == "FAIL"  # its meta.json cannot be read
    assert objects_appear({}, list_answer=DENIED).detail.endswith("none within 120s")


def local_flush_check(monkeypatch, modified: Any, now: Any, tool_keys: dict | None = None) -> tuple[verify.Report, list]:
    """check() on a local stack with Loki alone, started at `now`, whose bucket lists one chunk
    written at `modified`; returns the report and the keys each S3 client was made with."""
    from datetime import datetime

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return now

    outputs = json.loads(json.dumps({"target": "local", "urls": {"lokiPush": "http://127.0.0.1:3100/loki/api/v1/push"},
                                     "buckets": {"loki": {"name": "loki", "prefix": "", "region": "us-east-1", "endpoint": "minio:9000"}}}))
    stack = verify.Stack("local", outputs, run_id="run1", admin_keys=verify.Keys("root", "root-secret"), tool_keys=tool_keys or {})
    made = []
    client = FakeS3(list_objects_v2={"Contents": [{"Key": "fake/1b2c3d4e5f", "LastModified": modified}]})
    stack.s3 = lambda keys: made.append(keys) or client  # type: ignore[method-assign]
    monkeypatch.setattr(verify_tools, "datetime", Clock)
    monkeypatch.setattr(verify_tools, "wait_for", lambda report, what, poll, timeout, interval=2.0: poll())
    monkeypatch.setattr(verify_tools, "http", Web({("GET", "http://127.0.0.1:3100/ready"): (200, b""),
                                                   ("POST", "http://127.0.0.1:3100/loki/api/v1/push"): (204, b""),
                                                   ("GET", "http://127.0.0.1:3100/loki/api/v1/query_range"): (200, b"obs-verify run1"),
                                                   ("POST", "http://127.0.0.1:3100/flush"): (204, b"")}))
    r = report()
    verify_tools.check(stack, r)
    return r, made


def test_a_chunk_flushed_in_the_second_the_run_started_counts(monkeypatch):
    """The run's start is taken at its whole second: a listing dates objects to the second or the
    millisecond (MinIO: internal/amztime/iso8601_time.go at the pinned release, `.000Z` format),
    and the container's clock may trail this machine's, so a chunk flushed within that second
    must not read as older than the run (a false "none within 120s"). One second earlier is."""
    from datetime import datetime, timezone

    now = datetime(2026, 11, 28, 10, 26, 30, 500000, tzinfo=timezone.utc)
    for modified, status in [(datetime(2026, 11, 28, 10, 26, 30, tzinfo=timezone.utc), "PASS"),
                             (datetime(2026, 11, 28, 10, 26, 29, 999000, tzinfo=timezone.utc), "FAIL")]:
        r, _ = local_flush_check(monkeypatch, modified, now)
        (flushed,) = [x for x in r.results if x.detail.startswith("objects written to bucket loki")]
        assert flushed.status == status, (modified, outcomes(r))


def test_the_flushed_chunks_are_listed_with_the_tools_own_key_else_the_owners(monkeypatch):
    """The round trip reads the bucket as the tool does, with its own MinIO user's key; outputs
    without a key for the tool (no `s3Credentials`) fall back to MinIO's root, never to no key
    at all (boto3 would then sign with whatever AWS credentials this machine has)."""
    from datetime import datetime, timezone

    now = datetime(2026, 11, 28, 10, 26, 30, tzinfo=timezone.utc)
    own = verify.Keys("obs-loki", "loki-secret")
    r, made = local_flush_check(monkeypatch, now, now, tool_keys={"loki": own})
    assert made == [own] and "FAIL" not in {x.status for x in r.results}, outcomes(r)
    r, made = local_flush_check(monkeypatch, now, now)
    assert made == [verify.Keys("root", "root-secret")] and "FAIL" not in {x.status for x in r.results}, outcomes(r)


def test_a_datasource_whose_health_is_unknown_is_not_healthy(monkeypatch):
    stack = verify.Stack("prod", {"target": "hetzner", "buckets": {}, "urls": {"grafana": "http://g:3000"}, "grafanaAdminPassword": "pw"})
    monkeypatch.setattr(verify_tools, "http", Web({
        ("GET", "http://g:3000/api/health"): (200, b"{}"),
        ("GET", "http://g:3000/api/datasources/uid/a/health"): (200, b'{"status": "UNKNOWN", "message": "no health check"}'),
        ("GET", "http://g:3000/api/datasources"): (200, json.dumps([{"uid": "a", "name": "Loki", "type": "loki"}]).encode())}))
    r = report()
    verify_tools.check(stack, r)
    assert ("FAIL", "datasource Loki (loki) healthy: 200 no health check") in outcomes(r)


# ---------------------------------------------------------------- EC2 fleets: Auto Scaling, Cloud Map, target health
# Stand-ins shaped as boto3's answers (DescribeAutoScalingGroups, ListInstances, DescribeInstances,
# DescribeTargetHealth); the same check against moto's servers: tests/integration/test_ec2.py.
from tools.verify import fleets as verify_fleets

TG = "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/obs-loki/0123456789abcdef"


class FleetAws:
    def __init__(self, instances=None, registered=None, addresses=None, health=None, denied=(), group=True):
        # instances: id -> (LifecycleState, HealthStatus); registered: id -> address in Cloud Map;
        # addresses: id -> PrivateIpAddress in EC2; health: target group ARN -> {id: state}.
        self.instances = instances if instances is not None else {"i-1": ("InService", "Healthy"), "i-2": ("InService", "Healthy")}
        self.registered = registered if registered is not None else {"i-1": "10.0.0.1", "i-2": "10.0.1.2"}
        self.addresses = addresses if addresses is not None else {"i-1": "10.0.0.1", "i-2": "10.0.1.2"}
        self.health = health if health is not None else {TG: {"i-1": "healthy", "i-2": "healthy"}}
        self.denied = set(denied)
        self.group = group  # False: Auto Scaling knows no such group
        self.calls: list[str] = []

    def _call(self, name, answer):
        self.calls.append(name)
        if name in self.denied:
            raise DENIED
        return answer()

    def describe_auto_scaling_groups(self, AutoScalingGroupNames):
        (group,) = AutoScalingGroupNames
        return self._call("groups", lambda: {"AutoScalingGroups": [] if not self.group or group != "obs-loki" else [
            {"AutoScalingGroupName": group, "Instances": [{"InstanceId": i, "LifecycleState": s, "HealthStatus": h} for i, (s, h) in self.instances.items()]}]})

    def list_instances(self, ServiceId):
        assert ServiceId == "srv-loki"
        return self._call("discovery", lambda: {"Instances": [{"Id": i, "Attributes": {"AWS_INSTANCE_IPV4": a}} for i, a in self.registered.items()]})

    def describe_instances(self, InstanceIds):
        return self._call("ec2", lambda: {"Reservations": [{"Instances": [{"InstanceId": i, "PrivateIpAddress": self.addresses[i]}
                                                                          for i in InstanceIds if i in self.addresses]}]})

    def describe_target_health(self, TargetGroupArn):
        return self._call("targets", lambda: {"TargetHealthDescriptions": [{"Target": {"Id": i, "Port": 3100}, "TargetHealth": {"State": s}}
                                                                           for i, s in self.health[TargetGroupArn].items()]})


def fleet_check(aws: FleetAws, **fleet: Any) -> verify.Report:
    out = {"group": "obs-loki", "service": "loki.obs.internal", "serviceId": "srv-loki", "targetGroups": [TG], **fleet}
    stack = verify.Stack("staging-ec2", {"target": "aws", "buckets": {"loki": {"region": "ap-northeast-2"}}, "fleets": {"loki": out}})
    stack.aws = lambda service: aws  # type: ignore[method-assign]
    r = report()
    verify_fleets.check(stack, r)
    return r


def test_a_fleet_whose_group_cloud_map_and_targets_agree_passes():
    r = fleet_check(FleetAws())
    assert outcomes(r) == [
        ("PASS", "group obs-loki exists"),
        ("PASS", "2 healthy InService instance(s)"),
        ("PASS", "Cloud Map loki.obs.internal lists exactly the healthy instances"),
        ("PASS", "Cloud Map loki.obs.internal records carry the instances' private addresses"),
        ("PASS", "2 target(s), all healthy"),
    ]
    assert [x.subject for x in r.results] == ["loki"] * 4 + ["targetgroup/obs-loki/0123456789abcdef"]


def test_a_missing_group_fails_and_nothing_else_of_its_fleet_is_asked():
    aws = FleetAws(group=False)
    r = fleet_check(aws)
    assert outcomes(r)[0] == ("FAIL", "group obs-loki exists: allowed not found")
    assert "discovery" not in aws.calls and "ec2" not in aws.calls
    denied = fleet_check(FleetAws(denied={"groups"}))
    assert outcomes(denied)[0] == ("FAIL", "group obs-loki exists: denied AccessDenied")


def test_an_instance_that_is_leaving_or_unhealthy_must_not_stay_in_cloud_map():
    # The agent deregisters before termination: a Terminating or Unhealthy instance still listed fails.
    leaving = {"i-1": ("InService", "Healthy"), "i-2": ("Terminating", "Healthy"), "i-3": ("InService", "Unhealthy"),
               # Auto Scaling's other lifecycle states, those that sort before InService among them.
               "i-4": ("Detaching", "Healthy"), "i-5": ("EnteringStandby", "Healthy"), "i-6": ("Standby", "Healthy")}
    stale = fleet_check(FleetAws(instances=leaving, registered={"i-1": "10.0.0.1", "i-2": "10.0.1.2"}))
    assert ("FAIL", "Cloud Map loki.obs.internal lists exactly the healthy instances: registered ['i-1', 'i-2'], healthy ['i-1']") in outcomes(stale)
    assert ("PASS", "1 healthy InService instance(s)") in outcomes(stale)
    clean = fleet_check(FleetAws(instances=leaving, registered={"i-1": "10.0.0.1"}))
    assert ("PASS", "Cloud Map loki.obs.internal lists exactly the healthy instances") in outcomes(clean)
    # A healthy instance that never registered is as wrong as a stale one.
    missing = fleet_check(FleetAws(registered={"i-1": "10.0.0.1"}))
    assert ("FAIL", "Cloud Map loki.obs.internal lists exactly the healthy instances: registered ['i-1'], healthy ['i-1', 'i-2']") in outcomes(missing)


def test_a_group_without_a_healthy_instance_fails():
    r = fleet_check(FleetAws(instances={"i-1": ("Pending", "Healthy")}, registered={}, health={TG: {}}))
    assert ("FAIL", "0 healthy InService instance(s): no healthy InService instance") in outcomes(r)
    assert ("FAIL", "0 target(s), all healthy: no targets") in outcomes(r)
    # Nothing healthy to look up: EC2 is not asked.
    aws = FleetAws(instances={"i-1": ("Pending", "Healthy")}, registered={})
    fleet_check(aws)
    assert "ec2" not in aws.calls


def test_a_cloud_map_record_with_another_address_fails_naming_the_instance():
    r = fleet_check(FleetAws(registered={"i-1": "10.0.0.1", "i-2": "10.0.9.9"}))
    assert ("FAIL", "Cloud Map loki.obs.internal records carry the instances' private addresses: allowed: wrong address for ['i-2']") in outcomes(r)


def test_unreadable_cloud_map_instances_or_target_health_fail():
    aws = FleetAws(denied={"discovery"})
    r = fleet_check(aws)
    assert ("FAIL", "Cloud Map service loki.obs.internal not readable: denied AccessDenied") in outcomes(r)
    assert "ec2" not in aws.calls and not any(d.startswith("Cloud Map loki") for _, d in outcomes(r))
    r = fleet_check(FleetAws(denied={"ec2"}))
    assert ("FAIL", "Cloud Map loki.obs.internal records carry the instances' private addresses: instances not readable: denied AccessDenied") in outcomes(r)
    r = fleet_check(FleetAws(denied={"targets"}))
    assert outcomes(r)[-1] == ("FAIL", "target health not readable: denied AccessDenied")


@pytest.mark.parametrize("state", ["unhealthy", "initial", "draining", "unused"])
def test_a_target_group_with_any_target_not_healthy_fails(state):
    r = fleet_check(FleetAws(health={TG: {"i-1": "healthy", "i-2": state}}))
    assert outcomes(r)[-1] == ("FAIL", f"2 target(s), all healthy: targets {{'i-1': 'healthy', 'i-2': '{state}'}}")


def test_a_fleet_outside_cloud_map_checks_only_its_group_and_targets():
    # Grafana's fleet is reached through the load balancer only: its outputs carry no serviceId.
    out = {"group": "obs-loki", "targetGroups": [TG]}
    stack = verify.Stack("staging-ec2", {"target": "aws", "buckets": {"loki": {"region": "ap-northeast-2"}}, "fleets": {"grafana": out}})
    aws = FleetAws()
    stack.aws = lambda service: aws  # type: ignore[method-assign]
    r = report()
    verify_fleets.check(stack, r)
    assert [d for _, d in outcomes(r)] == ["group obs-loki exists", "2 healthy InService instance(s)", "2 target(s), all healthy"]
    assert "discovery" not in aws.calls


def test_a_stack_without_fleets_asks_aws_nothing():
    stack = verify.Stack("staging", {"target": "aws", "buckets": {"loki": {"region": "ap-northeast-2"}}, "fleets": {}})
    stack.aws = lambda service: pytest.fail("no AWS client for a stack without fleets")  # type: ignore[method-assign]
    r = report()
    verify_fleets.check(stack, r)
    assert r.results == []


def fresh_text(text: str) -> str:
    """The same text as a new string object, as a parsed AWS answer carries it (a literal of the
    test would be the very object the check compares with, hiding an `is` where `==` belongs)."""
    return "".join(list(text))


class Fleets:
    """Several fleets' answers: each group name, Cloud Map service and target group to its own
    FleetAws (whose `group`/`denied` settings apply to that fleet only)."""

    def __init__(self, by_group: dict[str, FleetAws], by_service: dict[str, FleetAws], health: dict[str, Any]):
        self.by_group, self.by_service, self.health = by_group, by_service, health
        self.calls: list[str] = []

    def describe_auto_scaling_groups(self, AutoScalingGroupNames):
        (group,) = AutoScalingGroupNames
        fleet = self.by_group[group]
        answer = fleet._call("groups", lambda: {"AutoScalingGroups": [] if not fleet.group else [
            {"AutoScalingGroupName": group, "Instances": [{"InstanceId": i, "LifecycleState": fresh_text(s), "HealthStatus": fresh_text(h)}
                                                          for i, (s, h) in fleet.instances.items()]}]})
        self.calls.append(f"groups {group}")
        return answer

    def list_instances(self, ServiceId):
        fleet = self.by_service[ServiceId]
        self.calls.append(f"discovery {ServiceId}")
        return fleet._call("discovery", lambda: {"Instances": [{"Id": i, "Attributes": {"AWS_INSTANCE_IPV4": fresh_text(a)}} for i, a in fleet.registered.items()]})

    def describe_instances(self, InstanceIds):
        fleet = next(f for f in self.by_group.values() if set(InstanceIds) <= set(f.instances))
        return fleet.describe_instances(InstanceIds)

    def describe_target_health(self, TargetGroupArn):
        self.calls.append(f"targets {TargetGroupArn.rsplit('/', 2)[1]}")
        answer = self.health[TargetGroupArn]
        if isinstance(answer, Exception):
            raise answer
        return {"TargetHealthDescriptions": [{"Target": {"Id": i, "Port": 3100}, "TargetHealth": {"State": fresh_text(s)}} for i, s in answer.items()]}


def two_fleets(first: FleetAws, first_health: Any = None, first_in_cloud_map: bool = True) -> tuple[verify.Report, Fleets]:
    tg = {name: f"arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/obs-{name}/0123456789abcdef" for name in ("a", "b")}
    second = FleetAws(instances={"i-7": ("InService", "Healthy")}, registered={"i-7": "10.0.2.7"}, addresses={"i-7": "10.0.2.7"})
    aws = Fleets({"obs-a": first, "obs-b": second}, {"srv-a": first, "srv-b": second},
                 {tg["a"]: first_health if first_health is not None else {"i-1": "healthy", "i-2": "healthy"}, tg["b"]: {"i-7": "healthy"}})
    outputs = {name: {"group": f"obs-{name}", "service": f"{name}.obs.internal", "serviceId": f"srv-{name}", "targetGroups": [tg[name]]} for name in ("a", "b")}
    if not first_in_cloud_map:
        outputs["a"] = {"group": "obs-a", "targetGroups": [tg["a"]]}
    stack = verify.Stack("staging-ec2", {"target": "aws", "buckets": {"loki": {"region": "ap-northeast-2"}}, "fleets": outputs})
    stack.aws = lambda service: aws  # type: ignore[method-assign]
    r = report()
    verify_fleets.check(stack, r)
    return r, aws


SECOND_FLEET_PASSES = [("PASS", "group obs-b exists"), ("PASS", "1 healthy InService instance(s)"),
                       ("PASS", "Cloud Map b.obs.internal lists exactly the healthy instances"),
                       ("PASS", "Cloud Map b.obs.internal records carry the instances' private addresses")]


@pytest.mark.parametrize("first", [FleetAws(group=False), FleetAws(instances={}, registered={}), FleetAws(denied={"discovery"})],
                         ids=["no group", "no instance", "Cloud Map unreadable"])
def test_a_failing_fleet_does_not_stop_the_check_of_the_next(first):
    r, aws = two_fleets(first)
    assert r.counts()["FAIL"] >= 1
    assert [o for o, x in zip(outcomes(r), r.results) if x.subject == "b"] == SECOND_FLEET_PASSES
    assert "discovery srv-b" in aws.calls


def test_a_fleet_outside_cloud_map_does_not_stop_the_check_of_the_next():
    # Sorted by name, Grafana's fleet (no Cloud Map service) comes before Loki's.
    r, aws = two_fleets(FleetAws(), first_in_cloud_map=False)
    assert [o for o, x in zip(outcomes(r), r.results) if x.subject == "b"] == SECOND_FLEET_PASSES
    assert "discovery srv-a" not in aws.calls


def test_an_unreadable_target_group_does_not_stop_the_check_of_the_next():
    r, aws = two_fleets(FleetAws(), first_health=DENIED)
    assert outcomes(r)[-2:] == [("FAIL", "target health not readable: denied AccessDenied"), ("PASS", "1 target(s), all healthy")]
    assert aws.calls[-2:] == ["targets obs-a", "targets obs-b"]


def test_answers_are_compared_by_value_not_by_identity():
    # Addresses, states and health as new string objects, as boto3 parses them: all still match.
    first = FleetAws(addresses={"i-1": fresh_text("10.0.0.1"), "i-2": fresh_text("10.0.1.2")})
    r, _ = two_fleets(first)
    assert r.counts() == {"PASS": 10, "FAIL": 0, "SKIP": 0}, outcomes(r)
