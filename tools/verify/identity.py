"""`tools.verify` identity checks: least privilege proven by real calls, or by IAM on AWS.

- local (MinIO users) and hetzner (the key pair): with the tool's own credentials, each granted
  action succeeds on a probe object under the tool's prefix, actions it was not granted and
  every call on another tool's bucket are denied.
- aws: each role's trust names exactly its service account (IRSA) or is the EKS Pod Identity
  principal with an association for exactly that service account; its policy reads back as the
  declared actions on its own bucket; IAM policy simulation allows the granted actions there and
  denies the rest (the roles trust only the cluster's service accounts, so nothing outside the
  cluster can make real calls with them).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any, Callable

from tools.verify.common import Report, Stack, attempt, delete_all_versions

PART = "identity"
HETZNER_SHARED = "Hetzner has no IAM: the project's one key pair reaches every bucket of the project (docs/identities-and-secrets.md)"
# Object actions a tool may or may not be granted; each is probed either way.
OBJECT_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObject")
# Bucket administration no tool is ever granted.
ADMIN_ACTIONS = ("s3:GetBucketPolicy", "s3:GetLifecycleConfiguration")


def granted_actions(stack: Stack, tool: str) -> set[str]:
    """The union of the tool's grants (locally one user serves all of a tool's components)."""
    return {a for actions in stack.identities.get(tool, {}).get("serviceAccounts", {}).values() for a in actions}


def check(stack: Stack, report: Report) -> None:
    if stack.target == "aws":
        _aws(stack, report)
    else:
        _s3_compatible(stack, report)


# ---------------------------------------------------------------- real calls (MinIO, Hetzner)
def _s3_compatible(stack: Stack, report: Report) -> None:
    if stack.admin_keys is None:
        report.failed(PART, "-", "no credentials to clean up probe objects with (outputs lack minioRootUser/minioRootPassword)")
        return
    admin = stack.s3(stack.admin_keys)
    for tool in stack.buckets:
        keys = stack.tool_keys.get(tool)
        if keys is None:
            report.failed(PART, tool, "the outputs carry no credentials of this tool (s3Credentials)")
            continue
        probe(stack, report, tool, tool, stack.s3(keys), granted_actions(stack, tool), admin, shared_key=stack.target == "hetzner")


def probe(stack: Stack, report: Report, subject: str, tool: str, client, granted: set[str], admin, shared_key: bool = False) -> None:
    """Real calls with one identity's credentials: each action on a probe object under the tool's
    prefix succeeds exactly when granted; calls on the other tools' buckets are denied."""
    bucket = stack.buckets[tool]
    name, prefix = bucket["name"], bucket["prefix"]
    key = stack.probe_key(tool, f"own-{subject}")

    def expect(action: str, call: Callable[[], Any], where: str) -> str:
        wanted = "allowed" if action in granted else "denied"
        if shared_key and wanted == "denied":
            report.skipped(PART, subject, f"{action} on {where} not checked for denial: {HETZNER_SHARED}")
            return "skipped"
        outcome, detail = attempt(call)
        report.check(PART, subject, outcome == wanted, f"{action} on {where} {wanted}",
                     f"got {outcome}{' ' + str(detail) if outcome == 'error' else ''}")
        return outcome

    try:
        expect("s3:ListBucket", lambda: client.list_objects_v2(Bucket=name, Prefix=prefix, MaxKeys=1), f"{name} (prefix {prefix!r})")
        if expect("s3:PutObject", lambda: client.put_object(Bucket=name, Key=key, Body=b"obs-verify probe"), f"{name}/{key}") != "allowed":
            admin.put_object(Bucket=name, Key=key, Body=b"obs-verify probe")  # so the next actions have an object
        expect("s3:GetObject", lambda: client.get_object(Bucket=name, Key=key)["Body"].read(), f"{name}/{key}")
        expect("s3:PutObjectTagging", lambda: client.put_object_tagging(Bucket=name, Key=key, Tagging={"TagSet": [{"Key": "obs-verify", "Value": "probe"}]}), f"{name}/{key}")
        expect("s3:GetObjectTagging", lambda: client.get_object_tagging(Bucket=name, Key=key), f"{name}/{key}")
        expect("s3:DeleteObject", lambda: client.delete_object(Bucket=name, Key=key), f"{name}/{key}")
        expect("s3:GetBucketPolicy", lambda: _config_read(client.get_bucket_policy, name), name)
        expect("s3:GetLifecycleConfiguration", lambda: _config_read(client.get_bucket_lifecycle_configuration, name), name)
    finally:
        delete_all_versions(admin, name, key)

    for other, other_bucket in stack.buckets.items():
        if other == tool:
            continue
        if shared_key:
            report.skipped(PART, subject, f"writes to {other_bucket['name']} not checked for denial: {HETZNER_SHARED}")
            continue
        other_name, other_key = other_bucket["name"], stack.probe_key(other, f"from-{subject}")
        try:
            outcome, detail = attempt(lambda: client.put_object(Bucket=other_name, Key=other_key, Body=b"obs-verify probe"))
            report.check(PART, subject, outcome == "denied", f"s3:PutObject on {other}'s bucket {other_name} denied", f"got {outcome} {detail if outcome == 'error' else ''}".strip())
            outcome, detail = attempt(lambda: client.list_objects_v2(Bucket=other_name, MaxKeys=1))
            report.check(PART, subject, outcome == "denied", f"s3:ListBucket on {other}'s bucket {other_name} denied", f"got {outcome} {detail if outcome == 'error' else ''}".strip())
        finally:
            delete_all_versions(admin, other_name, other_key)


def _config_read(call: Callable[..., Any], bucket: str) -> Any:
    """A read of bucket configuration: 'nothing configured' still means the caller was let in."""
    from botocore.exceptions import ClientError

    try:
        return call(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchBucketPolicy", "NoSuchLifecycleConfiguration"):
            return "allowed, nothing configured"
        raise


# ---------------------------------------------------------------- AWS: roles read back and simulated
def _aws(stack: Stack, report: Report) -> None:
    iam = stack.aws("iam")
    for tool, identity in stack.identities.items():
        bucket = stack.buckets[tool]
        for service_account, role_arn in identity.get("roleArns", {}).items():
            subject = service_account
            role_name = role_arn.rsplit("/", 1)[-1]
            outcome, response = attempt(lambda: iam.get_role(RoleName=role_name))
            if not report.check(PART, subject, outcome == "allowed", f"role {role_name} exists", f"{outcome} {response if outcome != 'allowed' else ''}"):
                continue
            trust = _document(response["Role"]["AssumeRolePolicyDocument"])
            if identity["kind"] == "pod-identity":
                _pod_identity_trust(stack, report, subject, trust, identity, service_account, role_arn)
            elif identity["kind"] == "ec2-instance-profile":
                problem = ec2_trust_problem(trust)
                report.check(PART, subject, problem is None, "trust: EC2 instances only (ec2.amazonaws.com, sts:AssumeRole, no other principal)", problem or "")
            else:
                problem = irsa_trust_problem(trust, identity.get("namespace", ""), service_account)
                report.check(PART, subject, problem is None,
                             f"trust: only system:serviceaccount:{identity.get('namespace')}:{service_account} (aud sts.amazonaws.com) through the cluster's OIDC provider",
                             problem or "")
            declared = set(identity["serviceAccounts"][service_account])
            _role_policy(report, iam, subject, role_name, bucket, declared, identity["kind"] == "ec2-instance-profile")
            _simulate(stack, report, iam, subject, tool, role_arn, declared)


def _document(value: Any) -> dict[str, Any]:
    # IAM returns policy documents URL-encoded; boto3 decodes them, other clients may not.
    return value if isinstance(value, dict) else json.loads(urllib.parse.unquote(value))


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


def irsa_trust_problem(trust: dict[str, Any], namespace: str, service_account: str) -> str | None:
    """None when the trust lets exactly this service account's web identity in, else why not."""
    statements = _list(trust.get("Statement"))
    if len(statements) != 1:
        return f"{len(statements)} statements, expected exactly one"
    st = statements[0]
    if st.get("Effect") != "Allow" or _list(st.get("Action")) != ["sts:AssumeRoleWithWebIdentity"]:
        return f"statement is {st.get('Effect')} {st.get('Action')}, expected Allow sts:AssumeRoleWithWebIdentity"
    federated = _list((st.get("Principal") or {}).get("Federated"))
    match = re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:oidc-provider/(.+)", federated[0]) if len(federated) == 1 else None
    if match is None:
        return f"principal {st.get('Principal')} is not one OIDC provider"
    issuer = match.group(1)
    wanted = {"StringEquals": {f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}", f"{issuer}:aud": "sts.amazonaws.com"}}
    if st.get("Condition") != wanted:
        return f"condition {json.dumps(st.get('Condition'), sort_keys=True)} != {json.dumps(wanted, sort_keys=True)}"
    return None


def ec2_trust_problem(trust: dict[str, Any]) -> str | None:
    """None when only EC2 (an instance profile) may take the role, else why not."""
    statements = _list(trust.get("Statement"))
    if len(statements) != 1:
        return f"{len(statements)} statements, expected exactly one"
    st = statements[0]
    if (st.get("Effect"), _list(st.get("Action")), st.get("Principal")) != ("Allow", ["sts:AssumeRole"], {"Service": "ec2.amazonaws.com"}) or "Condition" in st:
        return f"statement {json.dumps(st, sort_keys=True)} is not Allow sts:AssumeRole for ec2.amazonaws.com alone"
    return None


# What an EC2 fleet's instances do besides their bucket (components/ec2/identity.py instance_policy):
# accepted in a fleet role's policies only on named resources, never on "*".
EC2_INSTANCE_ACTIONS = frozenset({"servicediscovery:RegisterInstance", "servicediscovery:DeregisterInstance", "route53:ChangeResourceRecordSets",
                                  "route53:GetHostedZone", "autoscaling:CompleteLifecycleAction", "secretsmanager:GetSecretValue"})


def pod_identity_trust_ok(trust: dict[str, Any]) -> bool:
    """Whether the trust is exactly EKS Pod Identity's: the pods.eks.amazonaws.com service may
    assume the role and tag the session, nothing else (the association names the service account)."""
    statements = _list(trust.get("Statement"))
    return (
        len(statements) == 1
        and statements[0].get("Effect") == "Allow"
        and statements[0].get("Principal") == {"Service": "pods.eks.amazonaws.com"}
        and set(_list(statements[0].get("Action"))) == {"sts:AssumeRole", "sts:TagSession"}
        and "Condition" not in statements[0]
    )


def _pod_identity_trust(stack: Stack, report: Report, subject: str, trust: dict, identity: dict, service_account: str, role_arn: str) -> None:
    report.check(PART, subject, pod_identity_trust_ok(trust), "trust: EKS Pod Identity (pods.eks.amazonaws.com, sts:AssumeRole + sts:TagSession)", json.dumps(trust, sort_keys=True))
    eks = stack.aws("eks")
    cluster, namespace = identity.get("cluster", ""), identity.get("namespace", "")
    outcome, response = attempt(lambda: eks.list_pod_identity_associations(clusterName=cluster, namespace=namespace, serviceAccount=service_account))
    if outcome != "allowed":
        report.failed(PART, subject, f"pod identity associations of {cluster}/{namespace}/{service_account} not readable: {outcome} {response}")
        return
    associations = response.get("associations", [])
    roles = []
    for a in associations:
        got, described = attempt(lambda: eks.describe_pod_identity_association(clusterName=cluster, associationId=a["associationId"]))
        roles.append(described["association"]["roleArn"] if got == "allowed" else f"unreadable ({described})")
    report.check(PART, subject, roles == [role_arn], f"pod identity: {namespace}/{service_account} is associated with {role_arn} only", f"associations: {roles}")


def _role_policy(report: Report, iam, subject: str, role_name: str, bucket: dict, declared: set[str], instance: bool = False) -> None:
    arn, prefix = bucket["arn"], bucket["prefix"]
    outcome, names = attempt(lambda: iam.list_role_policies(RoleName=role_name)["PolicyNames"])
    if outcome != "allowed":
        report.failed(PART, subject, f"role policies of {role_name} not readable: {outcome} {names}")
        return
    documents = {name: _document(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]) for name in names}
    attached_outcome, attached = attempt(lambda: iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"])
    problems = role_policy_problems(documents, attached if attached_outcome == "allowed" else [], arn, prefix, declared, instance)
    report.check(PART, subject, not problems, f"role policy reads back as {', '.join(sorted(declared))} on {arn} only", "; ".join(problems))


def role_policy_problems(documents: dict[str, dict[str, Any]], attached: list[dict[str, Any]], arn: str, prefix: str, declared: set[str],
                         instance: bool = False) -> list[str]:
    """Why a role's policies (inline documents by name, attached managed policies) are not exactly
    the declared S3 actions on its own bucket and prefix (KMS only on a named key; for an EC2
    instance profile, `EC2_INSTANCE_ACTIONS` on named resources); [] when they are."""
    allowed_resources = {arn, f"{arn}/{prefix}*"}
    s3_actions: set[str] = set()
    problems = []
    for policy_name, document in documents.items():
        for st in _list(document.get("Statement")):
            if "NotAction" in st or "NotResource" in st:
                problems.append(f"{policy_name}: NotAction/NotResource")
            if st.get("Effect") != "Allow":
                continue
            actions = set(_list(st.get("Action")))
            resources = set(_list(st.get("Resource")))
            s3 = {a for a in actions if a.lower().startswith("s3:")}
            s3_actions |= s3
            if s3 and not resources <= allowed_resources:
                problems.append(f"{policy_name}: S3 actions on {sorted(resources - allowed_resources)}")
            for other in actions - s3:
                if instance and other in EC2_INSTANCE_ACTIONS and resources and "*" not in resources:
                    continue
                if not other.startswith("kms:") or "*" in resources:
                    problems.append(f"{policy_name}: {other} on {sorted(resources)}")
    if attached:
        problems.append(f"managed policies attached: {[p['PolicyName'] for p in attached]}")
    # Both ways: an action granted but missing breaks the tool as surely as an extra one widens it.
    if s3_actions != declared:
        problems.append(f"S3 actions {sorted(s3_actions)} != declared {sorted(declared)}")
    return problems


def _simulate(stack: Stack, report: Report, iam, subject: str, tool: str, role_arn: str, declared: set[str]) -> None:
    bucket = stack.buckets[tool]
    arn, prefix = bucket["arn"], bucket["prefix"]
    probe_arn = f"{arn}/{stack.probe_key(tool, 'simulated')}"

    def decide(actions: list[str], resource: str, prefix_context: str | None = None) -> dict[str, str]:
        extra = {"ContextEntries": [{"ContextKeyName": "s3:prefix", "ContextKeyValues": [prefix_context], "ContextKeyType": "string"}]} if prefix_context is not None else {}
        response = iam.simulate_principal_policy(PolicySourceArn=role_arn, ActionNames=actions, ResourceArns=[resource], **extra)
        return {r["EvalActionName"]: r["EvalDecision"] for r in response["EvaluationResults"]}

    try:
        own_bucket = decide(["s3:ListBucket", "s3:DeleteBucket", "s3:PutBucketPolicy"], arn, prefix)
    except Exception as error:  # an API error, or an endpoint that does not implement the call
        report.failed(PART, subject, f"IAM policy simulation unavailable ({type(error).__name__}: {str(error)[:160]}); the caller needs "
                      "iam:SimulatePrincipalPolicy")
        return
    own_objects = decide(list(OBJECT_ACTIONS), probe_arn)
    wrong = simulation_problems({**own_bucket, **own_objects}, declared)
    report.check(PART, subject, not wrong, f"simulation on own bucket: allowed exactly {', '.join(sorted(declared))}", "; ".join(wrong))
    leaks = []
    for other, other_bucket in stack.buckets.items():
        if other == tool or "arn" not in other_bucket:
            continue
        for action, decision in {**decide(["s3:ListBucket"], other_bucket["arn"], ""), **decide(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], f"{other_bucket['arn']}/x")}.items():
            if decision == "allowed":
                leaks.append(f"{action} on {other_bucket['name']}")
    report.check(PART, subject, not leaks, "simulation: every action on the other tools' buckets denied", "allowed: " + ", ".join(leaks))


def simulation_problems(decisions: dict[str, str], declared: set[str]) -> list[str]:
    """IAM's simulated decisions (action -> "allowed", "implicitDeny", "explicitDeny") that differ
    from the grant: a declared action not allowed, or an undeclared one allowed."""
    return [f"{a} {d}" for a, d in sorted(decisions.items()) if (d == "allowed") != (a in declared)]
