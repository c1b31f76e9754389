"""The policy pack's rules: one validate function per rule, and the `POLICIES` built from them.

Imported by `policies/__main__.py` (which builds the PolicyPack), `policies/offline.py` (which runs
the same rules against an offline plan) and the tests. Building the PolicyPack here would start a
gRPC server that never returns, so this module only declares.

Values unknown during preview: a rule never reports what it cannot decide. Resource policies run
again at `pulumi up` with resolved inputs before each resource is created, and the offline plan
(`python -m tools.plan`) resolves everything under mocks, so an unknown is still checked before it
can matter. Stack policies see resolved values only after `pulumi up`, which is why the offline plan
runs on every pull request.

Exemptions: every policy accepts config `{"exemptions": [{"urn": ..., "reason": ...}]}`; a violation
on an exempted URN is dropped, and the advisory `policy-exemptions` policy reports every exemption
on every run so it stays visible. `python -m policies.offline --stack S` writes that config from
policies/exemptions.yaml.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterable, Iterator, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy import proxy as _proxy


# ---------------------------------------------------------------- values and documents
class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()
"""What `plain` turns a value unknown during preview into."""

# The offline engine (tools/engine.py) writes unknowns as this string.
ENGINE_UNKNOWN = "[unknown]"

_SDK_UNKNOWNS = frozenset(
    {
        _proxy.UNKNOWN_BOOLEAN_VALUE,
        _proxy.UNKNOWN_NUMBER_VALUE,
        _proxy.UNKNOWN_STRING_VALUE,
        _proxy.UNKNOWN_ARRAY_VALUE,
        _proxy.UNKNOWN_ASSET_VALUE,
        _proxy.UNKNOWN_ARCHIVE_VALUE,
        _proxy.UNKNOWN_OBJECT_VALUE,
    }
)


def plain(value: Any) -> Any:
    """`value` as plain dicts and lists, with every unknown replaced by `UNKNOWN`.

    The analyzer hands rules a proxy that raises on reading an unknown; a rule that let that escape
    would be skipped whole ("can't run policy during preview"), hiding what it could still decide.
    """
    if isinstance(value, str):
        return UNKNOWN if value in _SDK_UNKNOWNS or value == ENGINE_UNKNOWN else value
    if isinstance(value, Mapping):
        out = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except _proxy.UnknownValueError:
                out[key] = UNKNOWN
        return out
    if isinstance(value, Sequence):
        items = []
        for i in range(len(value)):
            try:
                items.append(plain(value[i]))
            except _proxy.UnknownValueError:
                items.append(UNKNOWN)
        return items
    return value


def _known_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class _Invalid:
    def __repr__(self) -> str:
        return "<invalid>"


INVALID = _Invalid()
"""A policy document that is not a JSON object: AWS and MinIO refuse it, and no rule can vouch for it."""


def document(value: Any) -> Any:
    """A policy document input (JSON string or object) as a dict, `UNKNOWN`, `INVALID` or None."""
    if value is None or value is UNKNOWN:
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return INVALID
    return value if isinstance(value, dict) else INVALID


def decidable_document(args: ResourceValidationArgs, key: str, report_violation: ReportViolation, invalid: str) -> Optional[dict]:
    """The policy document in input `key`, or None when the rule cannot or need not decide.

    Unset and unknown (preview) documents are skipped; one that is not a JSON object is reported
    with `invalid`, since no rule can vouch for it.
    """
    doc = document(plain(args.props).get(key))
    if doc is None or doc is UNKNOWN:
        return None
    if doc is INVALID:
        report_violation(invalid)
        return None
    return doc


def statements(doc: dict) -> Iterator[tuple[str, dict]]:
    """(label, statement) for each statement; the label names it in messages (Sid or index)."""
    for i, statement in enumerate(_as_list(doc.get("Statement"))):
        if isinstance(statement, dict):
            yield f"statement {statement.get('Sid') or i}", statement


def _allows(statement: dict) -> bool:
    return statement.get("Effect") == "Allow"


def principal_is_anyone(principal: Any) -> bool:
    """True for "*", {"AWS": "*"} and lists holding "*": every caller, signed or anonymous."""
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in _as_list(principal.get("AWS"))
    return False


# Condition keys that pin the caller to our own network, organization, account or principals.
# aws:SecureTransport, aws:SourceIp and aws:Referer are left out on purpose: they describe how a request
# arrives, not who sends it, and anyone on the internet can satisfy them.
RESTRICTING_CONDITION_KEYS = frozenset(
    key.lower()
    for key in (
        "aws:SourceVpce",
        "aws:SourceVpc",
        "aws:PrincipalOrgID",
        "aws:PrincipalAccount",
        "aws:SourceAccount",
        "aws:SourceOrgID",
        "aws:PrincipalArn",
        "aws:SourceArn",
        "aws:userid",
    )
)
# Exact-match operators only: *Like with a wildcard, *IfExists (passes when the key is absent) and
# ForAllValues: (passes on an empty set) all let an unrelated caller through.
RESTRICTING_OPERATORS = frozenset({"StringEquals", "StringEqualsIgnoreCase", "ArnEquals"})


def restricts_caller(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator, tests in condition.items():
        if operator not in RESTRICTING_OPERATORS or not isinstance(tests, dict):
            continue
        for key, values in tests.items():
            values = _as_list(values)
            if key.lower() in RESTRICTING_CONDITION_KEYS and values and all(
                isinstance(v, str) and v and "*" not in v for v in values
            ):
                return True
    return False


def public_statements(doc: dict, conditions_can_restrict: bool) -> Iterator[str]:
    """Labels of Allow statements that reach every caller."""
    for label, statement in statements(doc):
        if not _allows(statement):
            continue
        # Allow + NotPrincipal grants everyone except the listed principals.
        if not (principal_is_anyone(statement.get("Principal")) or "NotPrincipal" in statement):
            continue
        if conditions_can_restrict and restricts_caller(statement.get("Condition")):
            continue
        yield label


# ---------------------------------------------------------------- resource types
AWS_BUCKETS = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
AWS_BUCKET_ACLS = frozenset({"aws:s3/bucketAclV2:BucketAclV2", "aws:s3/bucketAcl:BucketAcl"})
AWS_BUCKET_POLICIES = frozenset({"aws:s3/bucketPolicy:BucketPolicy"})
AWS_PUBLIC_ACCESS_BLOCKS = frozenset({"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"})
AWS_ENCRYPTION_CONFIGS = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
AWS_LIFECYCLE_CONFIGS = frozenset(
    {
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
    }
)
MINIO_BUCKETS = frozenset({"minio:index/s3Bucket:S3Bucket"})
MINIO_BUCKET_POLICIES = frozenset({"minio:index/s3BucketPolicy:S3BucketPolicy"})
AWS_ROLES = frozenset({"aws:iam/role:Role"})
# Resources whose `policy` input is an identity policy document.
IAM_POLICY_DOCUMENTS = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
        "minio:index/iamPolicy:IamPolicy",
        "minio:index/iamGroupPolicy:IamGroupPolicy",
        "minio:index/iamServiceAccount:IamServiceAccount",
    }
)

PUBLIC_CANNED_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GRANTEE_GROUPS = ("/global/AllUsers", "/global/AuthenticatedUsers")
# Only these stay readable synchronously; Glacier Flexible Retrieval and Deep Archive objects need a
# restore first, so Loki queriers and the Thanos store gateway fail on them (403 InvalidObjectState).
ARCHIVE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
SSE_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
WILDCARD_ACTIONS = frozenset({"*", "*:*", "s3:*"})
# "arn:aws:s3:::*" is every bucket the key can reach: on Hetzner that is the whole project.
WILDCARD_RESOURCES = frozenset({"*", "arn:aws:s3:::*"})


# ---------------------------------------------------------------- attaching resources to buckets
def _may_configure(candidate: PolicyResource, bucket: PolicyResource) -> bool:
    """False only when `candidate` (a PublicAccessBlock, policy, ...) certainly configures another bucket.

    By name when both are known (an S3 bucket's id is its name); else by the resources the
    candidate's `bucket` input comes from, when the engine says which (a preview of a new bucket).
    Otherwise it might configure any bucket, and no rule reports what it cannot decide.
    """
    target = plain(candidate.props).get("bucket")
    name = plain(bucket.props).get("bucket")
    if isinstance(target, str) and isinstance(name, str):
        return target == name
    sources = (candidate.property_dependencies or {}).get("bucket")
    if sources is not None:
        return any(d.urn == bucket.urn for d in sources)
    return True


def _bucket_lacks(bucket: PolicyResource, candidates: Iterable[PolicyResource], satisfies: Callable[[dict], Optional[bool]]) -> bool:
    """True when no candidate that satisfies, or might once its unknowns are known, might configure `bucket`."""
    return not any(satisfies(plain(c.props)) is not False and _may_configure(c, bucket) for c in candidates)


def _each_bucket_needs(
    args: StackValidationArgs,
    report_violation: ReportViolation,
    candidate_types: frozenset[str],
    satisfies: Callable[[dict], Optional[bool]],
    missing: str,
) -> None:
    candidates = [r for r in args.resources if r.resource_type in candidate_types]
    for bucket in args.resources:
        if bucket.resource_type not in AWS_BUCKETS:
            continue
        if _bucket_lacks(bucket, candidates, satisfies):
            name = _known_str(plain(bucket.props).get("bucket")) or bucket.name
            report_violation(f"bucket {name}: {missing}", bucket.urn)


def _all_true(values: Iterable[Any]) -> Optional[bool]:
    values = list(values)
    if any(v is not True and v is not UNKNOWN for v in values):
        return False
    return None if UNKNOWN in values else True


# ---------------------------------------------------------------- public-bucket guards (mandatory)
def s3_no_public_acl(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in AWS_BUCKETS | AWS_BUCKET_ACLS:
        return
    props = plain(args.props)
    acl = props.get("acl")
    if acl in PUBLIC_CANNED_ACLS:
        report_violation(f"canned ACL '{acl}' lets anyone read the bucket; leave the ACL unset (ownership BucketOwnerEnforced).")
    grants = props.get("grants")  # inline grants of Bucket/BucketV2
    access_control_policy = props.get("accessControlPolicy")
    if isinstance(access_control_policy, dict):
        grants = [g.get("grantee") for g in _as_list(access_control_policy.get("grants")) if isinstance(g, dict)]
    for grantee in _as_list(grants):
        uri = _known_str(grantee.get("uri")) if isinstance(grantee, dict) else None
        if uri and uri.endswith(PUBLIC_GRANTEE_GROUPS):
            report_violation(f"ACL grant to {uri} makes the bucket public; remove it.")


def s3_no_public_bucket_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in AWS_BUCKET_POLICIES | AWS_BUCKETS:
        return
    doc = decidable_document(args, "policy", report_violation, "the bucket policy is not a JSON object, so it cannot be shown to be private.")
    if doc is None:
        return
    for label in public_statements(doc, conditions_can_restrict=True):
        report_violation(
            f"{label} allows any principal without a condition that pins the caller "
            f"(StringEquals/ArnEquals on one of {', '.join(sorted(RESTRICTING_CONDITION_KEYS))}); "
            "aws:SecureTransport alone does not."
        )


def s3_public_access_block(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    _each_bucket_needs(
        args,
        report_violation,
        AWS_PUBLIC_ACCESS_BLOCKS,
        lambda p: _all_true(p.get(k) for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")),
        "no BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets all true.",
    )


def minio_bucket_private(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in MINIO_BUCKETS:
        return
    # An absent acl is the provider's default, "private".
    acl = plain(args.props).get("acl", "private")
    if isinstance(acl, str) and acl != "private":
        report_violation(f"acl '{acl}' exposes the bucket without credentials; set acl='private'.")


def minio_no_anonymous_bucket_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in MINIO_BUCKET_POLICIES:
        return
    doc = decidable_document(args, "policy", report_violation, "the bucket policy is not a JSON object, so it cannot be shown to be private.")
    if doc is None:
        return
    # MinIO and Hetzner apply a "*" principal to anonymous requests, which carry none of the AWS
    # identity keys a condition could pin, so no condition makes such a statement private.
    for label in public_statements(doc, conditions_can_restrict=False):
        report_violation(f"{label} allows anonymous access; grant access to IAM users instead.")


# ---------------------------------------------------------------- further guards
def encrypts_by_default(props: dict) -> Optional[bool]:
    algorithms = []
    for rule in _as_list(props.get("rules")):
        default = rule.get("applyServerSideEncryptionByDefault") if isinstance(rule, dict) else rule
        algorithms.append(default.get("sseAlgorithm") if isinstance(default, dict) else default)
    if any(a in SSE_ALGORITHMS for a in algorithms):
        return True
    return None if UNKNOWN in algorithms else False


def s3_default_encryption(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    _each_bucket_needs(
        args,
        report_violation,
        AWS_ENCRYPTION_CONFIGS,
        encrypts_by_default,
        f"no BucketServerSideEncryptionConfiguration with sseAlgorithm {' or '.join(sorted(SSE_ALGORITHMS))}.",
    )


def _resource_matches(pattern: Any, arn: str) -> bool:
    """IAM's wildcards in a Resource: `*` any run of characters, `?` one (never the `*` that
    stands for "every object" in `arn`)."""
    if not isinstance(pattern, str):
        return False
    regex = "".join(".*" if c == "*" else "[^*]" if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


S3_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def covers_bucket_and_objects(resources: Any, bucket: Any) -> Optional[bool]:
    """Whether a statement's Resource names the bucket itself and every object in it (a deny of
    plain HTTP on the bucket alone leaves its objects readable without TLS); None while the
    bucket's name is unknown."""
    if not isinstance(bucket, str):
        return None
    patterns = _as_list(resources)
    return any(
        all(any(_resource_matches(p, arn) for p in patterns) for arn in (f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"))
        for partition in S3_PARTITIONS
    )


def denies_insecure_transport(doc: Any, bucket: Any = UNKNOWN) -> Optional[bool]:
    """True if `doc` has a Deny of every S3 action to every principal when aws:SecureTransport is
    false, on bucket `bucket` and every object in it; None while that cannot be known yet."""
    if doc is UNKNOWN:
        return None
    if not isinstance(doc, dict):
        return False
    undecided = False
    for _, statement in statements(doc):
        if statement.get("Effect") != "Deny" or not principal_is_anyone(statement.get("Principal")):
            continue
        if not {"s3:*", "*"} & set(_as_list(statement.get("Action"))):
            continue
        condition = statement.get("Condition")
        if not isinstance(condition, dict):
            continue
        tests = {**(condition.get("Bool") or {}), **(condition.get("BoolIfExists") or {})}
        secure = {k.lower(): v for k, v in tests.items()}.get("aws:securetransport")
        if str(secure).lower() == "false":
            covered = covers_bucket_and_objects(statement.get("Resource"), bucket)
            if covered:
                return True
            undecided = undecided or covered is None
    return None if undecided else False


def s3_tls_only(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    _each_bucket_needs(
        args,
        report_violation,
        AWS_BUCKET_POLICIES,
        lambda p: denies_insecure_transport(document(p.get("policy")), p.get("bucket")),
        'no bucket policy denying s3:* to "*" on the bucket and its objects when aws:SecureTransport is false.',
    )


def _decide(value: Any, test: Callable[[Any], bool]) -> Optional[bool]:
    return None if value is UNKNOWN else bool(test(value))


def _whole_bucket(rule: dict) -> Optional[bool]:
    prefix, filter_ = rule.get("prefix"), rule.get("filter")
    if prefix is UNKNOWN or filter_ is UNKNOWN:
        return None
    if prefix:
        return False
    if not filter_:
        return True
    if not isinstance(filter_, dict):
        return None
    narrowing = [v for v in filter_.values() if v not in (None, "")]
    return None if UNKNOWN in narrowing else not narrowing


def _is_days(value: Any) -> bool:
    # Numbers cross the engine's wire as doubles: 1 arrives as 1.0.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def aborts_incomplete_multipart(props: dict) -> Optional[bool]:
    undecided = False
    for rule in _as_list(props.get("rules")):
        if rule is UNKNOWN:
            undecided = True
        if not isinstance(rule, dict) or not rule.get("abortIncompleteMultipartUpload"):
            continue
        abort = rule["abortIncompleteMultipartUpload"]
        days = abort.get("daysAfterInitiation") if isinstance(abort, dict) else abort
        verdicts = [_decide(rule.get("status"), lambda status: status == "Enabled"), _decide(days, _is_days), _whole_bucket(rule)]
        if all(v is True for v in verdicts):
            return True
        if False not in verdicts:
            undecided = True
    return None if undecided else False


def s3_abort_incomplete_multipart(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    _each_bucket_needs(
        args,
        report_violation,
        AWS_LIFECYCLE_CONFIGS,
        aborts_incomplete_multipart,
        "no enabled whole-bucket lifecycle rule aborting incomplete multipart uploads; stale parts are billed forever.",
    )


def no_archive_storage_transition(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in AWS_LIFECYCLE_CONFIGS | AWS_BUCKETS:
        return
    props = plain(args.props)
    # Bucket/BucketV2 carry the deprecated inline form under lifecycleRules.
    for rule in _as_list(props.get("rules")) + _as_list(props.get("lifecycleRules")):
        if not isinstance(rule, dict):
            continue
        for transition in _as_list(rule.get("transitions")):
            storage_class = transition.get("storageClass") if isinstance(transition, dict) else None
            if storage_class in ARCHIVE_STORAGE_CLASSES:
                report_violation(
                    f"rule {rule.get('id', '?')} moves objects to {storage_class}; Loki and Thanos cannot read them "
                    "without a restore. Use STANDARD_IA, INTELLIGENT_TIERING or GLACIER_IR."
                )


def _identity_documents(props: dict, resource_type: str) -> Iterator[tuple[str, Any]]:
    if resource_type in IAM_POLICY_DOCUMENTS:
        yield "policy", props.get("policy")
    elif resource_type in AWS_ROLES:
        for i, inline in enumerate(_as_list(props.get("inlinePolicies"))):
            if isinstance(inline, dict):
                yield f"inlinePolicies[{i}]", inline.get("policy")


def iam_least_privilege(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in IAM_POLICY_DOCUMENTS | AWS_ROLES:
        return
    for where, value in _identity_documents(plain(args.props), args.resource_type):
        doc = document(value)
        if doc is None or doc is UNKNOWN:
            continue
        if doc is INVALID:
            report_violation(f"{where} is not a JSON object, so it cannot be shown to be least-privilege.")
            continue
        for label, statement in statements(doc):
            if not _allows(statement):
                continue
            actions = {a for a in _as_list(statement.get("Action")) if isinstance(a, str) and a.lower() in WILDCARD_ACTIONS}
            resources = {r for r in _as_list(statement.get("Resource")) if isinstance(r, str) and r in WILDCARD_RESOURCES}
            for problem in (
                [f"action {a}" for a in sorted(actions)]
                + [f"resource {r}" for r in sorted(resources)]
                + [f"{k} (allows everything not listed)" for k in ("NotAction", "NotResource") if k in statement]
            ):
                report_violation(f"{where} {label} allows {problem}; list the tool's own actions on its own bucket.")


def _web_identity_issuer(statement: dict) -> Optional[str]:
    """The OIDC issuer a web-identity statement trusts ("" if not derivable), or None if not web identity."""
    federated = _as_list((statement.get("Principal") or {}).get("Federated")) if isinstance(statement.get("Principal"), dict) else []
    actions = {a.lower() for a in _as_list(statement.get("Action")) if isinstance(a, str)}
    if not federated and "sts:assumerolewithwebidentity" not in actions:
        return None
    for principal in federated:
        if isinstance(principal, str) and "oidc-provider/" in principal:
            return principal.split("oidc-provider/", 1)[1].lower()
    return ""


def _pins(condition: Any, issuer: str, claim: str) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator in ("StringEquals", "StringLike"):
        for key, values in (condition.get(operator) or {}).items():
            key = key.lower()
            wanted = key == f"{issuer}:{claim}" if issuer else key.endswith(f":{claim}")
            values = _as_list(values)
            exact = values and all(isinstance(v, str) and v and not set(v) & {"*", "?"} for v in values)
            if wanted and exact:
                return True
    return False


def irsa_trust_restricts_sub_and_aud(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in AWS_ROLES:
        return
    doc = decidable_document(args, "assumeRolePolicy", report_violation, "assumeRolePolicy is not a JSON object, so its trust cannot be checked.")
    if doc is None:
        return
    for label, statement in statements(doc):
        issuer = _web_identity_issuer(statement) if _allows(statement) else None
        if issuer is None:
            continue
        shown = issuer or "<issuer>"
        if not _pins(statement.get("Condition"), issuer, "sub"):
            report_violation(
                f"{label} trusts web identities without StringEquals {shown}:sub = system:serviceaccount:<ns>:<sa>; "
                "any service account in the cluster could assume the role."
            )
        if not _pins(statement.get("Condition"), issuer, "aud"):
            report_violation(f"{label} trusts web identities without StringEquals {shown}:aud = sts.amazonaws.com.")


# ---------------------------------------------------------------- one Thanos compactor per bucket
# components/core/renderers/thanos.py COMPACTOR_BUCKET_LABEL: a Docker label or Kubernetes annotation.
COMPACTOR_BUCKET_LABEL = "obs-storage.thanos-bucket"
K8S_WORKLOADS = frozenset({"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet"})
DOCKER_CONTAINERS = frozenset({"docker:index/container:Container"})
DOCKER_SERVICES = frozenset({"docker:index/service:Service"})
# EC2 fleets: the group running a compactor carries the label as a tag (components/ec2/fleet.py).
AWS_AUTOSCALING_GROUPS = frozenset({"aws:autoscaling/group:Group"})


def runs_thanos_compact(words: Any) -> bool:
    """True for a command line running `thanos compact` (the image's entrypoint is the binary, so
    the arguments alone start with the subcommand)."""
    words = [w for w in _as_list(words) if isinstance(w, str)]
    while words and words[0].rsplit("/", 1)[-1] == "thanos":
        words = words[1:]
    return words[:1] == ["compact"]


def _docker_label(labels: Any) -> Any:
    for item in _as_list(labels):
        if isinstance(item, dict) and item.get("label") == COMPACTOR_BUCKET_LABEL:
            return item.get("value")
    return None


def _at(value: Any, *keys: str) -> Any:
    """value[key][key]..., or None where a level is missing or not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def compactors(resources: Iterable[PolicyResource]) -> Iterator[tuple[PolicyResource, Any, Any]]:
    """(resource, bucket it names or None, replicas) for every Thanos compactor a stack declares.

    Replicas is a number, "every node", or None where unset: one, the default of a Kubernetes
    workload and of a replicated Swarm service.
    """
    for r in resources:
        props = plain(r.props)
        if r.resource_type in K8S_WORKLOADS:
            containers = [c for c in _as_list(_at(props, "spec", "template", "spec", "containers")) if isinstance(c, dict)]
            if any(runs_thanos_compact(_as_list(c.get("command")) + _as_list(c.get("args"))) for c in containers):
                replicas = "every node" if r.resource_type.endswith(":DaemonSet") else _at(props, "spec", "replicas")
                yield r, _at(props, "metadata", "annotations", COMPACTOR_BUCKET_LABEL), replicas
        elif r.resource_type in DOCKER_CONTAINERS:
            if runs_thanos_compact(_as_list(props.get("entrypoints")) + _as_list(props.get("command"))):
                yield r, _docker_label(props.get("labels")), 1
        elif r.resource_type in AWS_AUTOSCALING_GROUPS:
            tags = [t for t in _as_list(props.get("tags")) if isinstance(t, dict) and t.get("key") == COMPACTOR_BUCKET_LABEL]
            if tags:
                yield r, tags[0].get("value"), props.get("maxSize")
        elif r.resource_type in DOCKER_SERVICES:
            container = _at(props, "taskSpec", "containerSpec") or {}
            if runs_thanos_compact(_as_list(_at(container, "commands")) + _as_list(_at(container, "args"))):
                replicas = "every node" if _at(props, "mode", "global") else _at(props, "mode", "replicated", "replicas")
                yield r, _docker_label(props.get("labels")), replicas


def thanos_one_compactor_per_bucket(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    owned: set[str] = set()
    undecided = False
    for r in args.resources:
        if r.resource_type in AWS_BUCKETS | MINIO_BUCKETS:
            name = plain(r.props).get("bucket")
            if isinstance(name, str):
                owned.add(name)
            else:
                undecided = True
    first: dict[str, str] = {}
    for r, bucket, replicas in compactors(args.resources):
        if bucket is UNKNOWN:
            continue
        if not isinstance(bucket, str) or not bucket:
            report_violation(
                f"a Thanos compactor that does not name its bucket ({COMPACTOR_BUCKET_LABEL} label or annotation); "
                "the pack cannot show it compacts a bucket this stack owns.", r.urn)
            continue
        if replicas == "every node" or (isinstance(replicas, (int, float)) and replicas > 1):
            report_violation(f"the compactor of bucket {bucket} runs {replicas} replicas; two compactors on one bucket corrupt it. Run one.", r.urn)
        if bucket in first:
            report_violation(f"a second compactor of bucket {bucket} (the first is {first[bucket]}); two compactors on one bucket corrupt it.", r.urn)
        first.setdefault(bucket, r.urn)
        if bucket not in owned and not undecided:
            report_violation(
                f"compacts bucket {bucket}, which this stack does not declare; only the stack that owns a bucket (the Thanos hub) "
                "runs its one compactor. Remove it (a spoke only uploads).", r.urn)


# ---------------------------------------------------------------- EC2 fleets (aws.platform ec2)
AWS_LOAD_BALANCERS = frozenset({"aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"})
AWS_SECURITY_GROUPS = frozenset({"aws:ec2/securityGroup:SecurityGroup"})
AWS_INGRESS_RULES = frozenset({"aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"})
AWS_SECURITY_GROUP_RULES = frozenset({"aws:ec2/securityGroupRule:SecurityGroupRule"})
AWS_LAUNCH_TEMPLATES = frozenset({"aws:ec2/launchTemplate:LaunchTemplate"})
AWS_INSTANCES = frozenset({"aws:ec2/instance:Instance"})
ANYWHERE = frozenset({"0.0.0.0/0", "::/0"})


def load_balancer_internal(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in AWS_LOAD_BALANCERS:
        return
    internal = plain(args.props).get("internal")
    if internal is UNKNOWN:
        return
    if internal is not True:
        report_violation("the load balancer is internet-facing (internal is not true); the tools' listeners are for senders inside the network only.")


def _open_cidrs(*values: Any) -> list[str]:
    return [c for value in values for c in _as_list(value) if isinstance(c, str) and c in ANYWHERE]


def no_open_ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props = plain(args.props)
    found: list[tuple[str, str]] = []
    if args.resource_type in AWS_SECURITY_GROUPS:
        for i, rule in enumerate(_as_list(props.get("ingress"))):
            if isinstance(rule, dict):
                found += [(f"ingress[{i}]", c) for c in _open_cidrs(rule.get("cidrBlocks"), rule.get("ipv6CidrBlocks"))]
    elif args.resource_type in AWS_INGRESS_RULES:
        found += [("the rule", c) for c in _open_cidrs(props.get("cidrIpv4"), props.get("cidrIpv6"))]
    elif args.resource_type in AWS_SECURITY_GROUP_RULES and props.get("type") == "ingress":
        found += [("the rule", c) for c in _open_cidrs(props.get("cidrBlocks"), props.get("ipv6CidrBlocks"))]
    for where, cidr in found:
        report_violation(f"{where} admits {cidr}: every address. Admit the senders' networks or security groups (aws.ec2.senders).")


def imdsv2_required(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in AWS_LAUNCH_TEMPLATES | AWS_INSTANCES:
        return
    options = plain(args.props).get("metadataOptions")
    if options is UNKNOWN:
        return
    options = options if isinstance(options, dict) else {}
    if options.get("httpEndpoint") == "disabled":
        return  # no metadata service at all: nothing to steal credentials from
    tokens = options.get("httpTokens")
    if tokens is UNKNOWN:
        return
    if tokens != "required":
        report_violation(f"metadataOptions.httpTokens is {tokens or 'unset (optional)'}; without \"required\" a request without an IMDSv2 token "
                         "(the SSRF route) reads the instance role's credentials.")


def launch_template_private_and_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in AWS_LAUNCH_TEMPLATES:
        return
    props = plain(args.props)
    for i, interface in enumerate(_as_list(props.get("networkInterfaces"))):
        if isinstance(interface, dict) and str(interface.get("associatePublicIpAddress")).lower() == "true":
            report_violation(f"networkInterfaces[{i}] gets a public address; fleet instances are private (reached through the internal load balancer).")
    if props.get("blockDeviceMappings") is UNKNOWN:
        return
    mappings = [m for m in _as_list(props.get("blockDeviceMappings")) if isinstance(m, dict)]
    if not mappings:
        report_violation("no block device mapping: the root volume's encryption is left to the AMI and the account default. Map it encrypted.")
    for i, mapping in enumerate(mappings):
        ebs = mapping.get("ebs")
        encrypted = ebs.get("encrypted") if isinstance(ebs, dict) else None
        if ebs is UNKNOWN or encrypted is UNKNOWN:
            continue
        if str(encrypted).lower() != "true":
            report_violation(f"blockDeviceMappings[{i}] ({mapping.get('deviceName', '?')}) is not encrypted.")


# ---------------------------------------------------------------- exemptions
EXEMPTION_ITEM = {
    "type": "object",
    "properties": {
        "urn": {"type": "string", "minLength": 1},
        # pattern: a reason of blanks is no reason.
        "reason": {"type": "string", "pattern": "\\S"},
    },
    "required": ["urn", "reason"],
}
EXEMPTIONS_SCHEMA = PolicyConfigSchema({"exemptions": {"type": "array", "items": EXEMPTION_ITEM}})
NOTICE_SCHEMA = PolicyConfigSchema(
    {
        "exemptions": {
            "type": "array",
            "items": {
                **EXEMPTION_ITEM,
                "properties": {**EXEMPTION_ITEM["properties"], "policy": {"type": "string", "minLength": 1}},
                "required": ["policy", "urn", "reason"],
            },
        }
    }
)


def exemptions_in(config: Mapping[str, Any]) -> list[dict]:
    """The exemptions in a policy's config that carry a reason; one without is not honored."""
    found = []
    for item in _as_list(plain(config or {}).get("exemptions")):
        if isinstance(item, dict) and isinstance(item.get("urn"), str) and str(item.get("reason") or "").strip():
            found.append(item)
    return found


def exempting(validate: Callable[[Any, ReportViolation], None]) -> Callable[[Any, ReportViolation], None]:
    """`validate`, dropping violations on the URNs the policy's config exempts."""

    @functools.wraps(validate)
    def run(args: Any, report_violation: ReportViolation) -> None:
        exempt = {item["urn"] for item in exemptions_in(args.get_config())}

        def report(message: str, urn: Optional[str] = None) -> None:
            if (urn or getattr(args, "urn", None)) not in exempt:
                report_violation(message, urn)

        validate(args, report)

    return run


def policy_exemptions(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    present = {r.urn for r in args.resources}
    for item in exemptions_in(args.get_config()):
        note = f"{item['urn']} is exempt from {item.get('policy', '?')}: {item['reason'].strip()}"
        if item["urn"] in present:
            report_violation(note, item["urn"])
        else:
            report_violation(f"{note} (no such resource in this stack: remove the stale exemption)")


# ---------------------------------------------------------------- the policies
MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY


def _resource(name: str, description: str, validate, level: EnforcementLevel) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=description, validate=exempting(validate), enforcement_level=level, config_schema=EXEMPTIONS_SCHEMA
    )


def _stack(name: str, description: str, validate, level: EnforcementLevel) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name, description=description, validate=exempting(validate), enforcement_level=level, config_schema=EXEMPTIONS_SCHEMA
    )


POLICIES: list[ResourceValidationPolicy | StackValidationPolicy] = [
    _resource("s3-no-public-acl", "S3 buckets carry no public canned ACL and no grant to AllUsers or AuthenticatedUsers.", s3_no_public_acl, MANDATORY),
    _resource("s3-no-public-bucket-policy", "S3 bucket policies allow no principal \"*\" unless a condition pins the caller.", s3_no_public_bucket_policy, MANDATORY),
    _stack("s3-public-access-block", "Every S3 bucket has a public access block with all four flags true.", s3_public_access_block, MANDATORY),
    _resource("minio-bucket-private", "MinIO and Hetzner buckets are private.", minio_bucket_private, MANDATORY),
    _resource("minio-no-anonymous-bucket-policy", "MinIO and Hetzner bucket policies allow no anonymous access.", minio_no_anonymous_bucket_policy, MANDATORY),
    _stack("s3-default-encryption", "Every S3 bucket has a default-encryption configuration.", s3_default_encryption, MANDATORY),
    _stack("s3-tls-only", "Every S3 bucket has a policy denying requests without TLS.", s3_tls_only, MANDATORY),
    _stack("s3-abort-incomplete-multipart", "Every S3 bucket aborts incomplete multipart uploads.", s3_abort_incomplete_multipart, ADVISORY),
    _resource("no-archive-storage-transition", "Observability data never moves to GLACIER or DEEP_ARCHIVE.", no_archive_storage_transition, MANDATORY),
    _resource("iam-least-privilege", "IAM policies for the tools allow no \"*\"/\"s3:*\" action and no \"*\" resource.", iam_least_privilege, MANDATORY),
    _resource("irsa-trust-restricts-sub-and-aud", "IRSA trust policies pin both the service account (sub) and the audience (aud).", irsa_trust_restricts_sub_and_aud, MANDATORY),
    _resource("load-balancer-internal", "Load balancers are internal, never internet-facing.", load_balancer_internal, MANDATORY),
    _resource("no-open-ingress", "No security group admits 0.0.0.0/0 or ::/0.", no_open_ingress, MANDATORY),
    _resource("imdsv2-required", "Launch templates and instances require IMDSv2 tokens.", imdsv2_required, MANDATORY),
    _resource("launch-template-private-and-encrypted", "Launch templates give no public address and encrypt every mapped volume.",
              launch_template_private_and_encrypted, MANDATORY),
    _stack("thanos-one-compactor-per-bucket", "A Thanos compactor runs once, for a bucket its stack owns.", thanos_one_compactor_per_bucket, MANDATORY),
    StackValidationPolicy(
        name="policy-exemptions",
        description="Lists every exemption in force, on every run.",
        validate=policy_exemptions,
        enforcement_level=ADVISORY,
        config_schema=NOTICE_SCHEMA,
    ),
]

POLICY_NAMES = tuple(p.name for p in POLICIES)
NOTICE_POLICY = "policy-exemptions"
