"""Per-tool identities: exact trust conditions and permissions, no static keys, no secret leaks."""

from __future__ import annotations

import json

import pytest

from tests.conftest import policy_of, tool_overrides
from tools import engine

OIDC_LOOKUP = "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider"
ISSUER = f"oidc.eks.ap-northeast-2.amazonaws.com/id/{engine.OIDC_ID}"
LOKI = {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
EXPECTED_ACTIONS = {
    # Loki: one account per component that touches the bucket; only the compactor deletes.
    "loki-ingester": {"s3:ListBucket", "s3:GetObject", "s3:PutObject"},
    "loki-querier": {"s3:ListBucket", "s3:GetObject"},
    "loki-index-gateway": {"s3:ListBucket", "s3:GetObject"},
    "loki-compactor": LOKI,
    "tempo": LOKI | {"s3:GetObjectTagging", "s3:PutObjectTagging"},
    "thanos-compact": LOKI,
    "thanos-store": {"s3:ListBucket", "s3:GetObject"},
    "prometheus": {"s3:ListBucket", "s3:GetObject", "s3:PutObject"},
}
BUCKET_OF = {**{sa: "acme-staging-loki" for sa in ("loki-ingester", "loki-querier", "loki-index-gateway", "loki-compactor")}, "tempo": "acme-staging-tempo", "thanos-compact": "acme-staging-thanos",
             "thanos-store": "acme-staging-thanos", "prometheus": "acme-staging-thanos"}


def roles(result) -> dict[str, engine.Registration]:
    return {r.name.removesuffix("-role"): r for r in result.by_type("aws:iam/role:Role")}


def actions_and_resources(result, sa: str) -> tuple[set[str], set[str]]:
    doc = policy_of(result.one("aws:iam/rolePolicy:RolePolicy", f"{sa}-bucket-access"))
    actions, resources = set(), set()
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        actions |= set(statement["Action"])
        resources |= set(statement["Resource"])
    return actions, resources


def test_one_role_per_service_account(plan):
    assert set(roles(plan("staging"))) == set(EXPECTED_ACTIONS)


@pytest.mark.parametrize("sa", sorted(EXPECTED_ACTIONS))
def test_irsa_trust_pins_sub_and_aud(plan, sa):
    role = roles(plan("staging"))[sa]
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity", role.urn
    assert statement["Principal"] == {"Federated": f"arn:aws:iam::{engine.ACCOUNT_ID}:oidc-provider/{ISSUER}"}, role.urn
    assert statement["Condition"] == {
        "StringEquals": {f"{ISSUER}:sub": f"system:serviceaccount:observability:{sa}", f"{ISSUER}:aud": "sts.amazonaws.com"}
    }, role.urn


@pytest.mark.parametrize("sa", sorted(EXPECTED_ACTIONS))
def test_role_actions_are_exact_and_on_own_bucket_only(plan, sa):
    actions, resources = actions_and_resources(plan("staging"), sa)
    assert actions == EXPECTED_ACTIONS[sa]
    bucket = BUCKET_OF[sa]
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}


def test_no_wildcards_and_no_static_keys(any_stack):
    assert not any_stack.by_type("aws:iam/accessKey:AccessKey")
    for policy in any_stack.by_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in policy_of(policy)["Statement"]:
            assert "*" not in statement["Action"] and "s3:*" not in statement["Action"], policy.urn
            assert "*" not in statement["Resource"], policy.urn


def test_prefix_narrows_object_resources_and_listing(plan_with):
    result = plan_with("staging", tool_overrides("staging", tempo={"prefix": "traces/"}))
    doc = policy_of(result.one("aws:iam/rolePolicy:RolePolicy", "tempo-bucket-access"))
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ObjectsInOwnBucket"]["Resource"] == ["arn:aws:s3:::acme-staging-tempo/traces/*"]
    assert by_sid["ListOwnBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["traces/*"]}}


def test_kms_actions_only_with_a_key_and_only_on_it(plan, plan_with):
    for sa in EXPECTED_ACTIONS:
        actions, _ = actions_and_resources(plan("staging"), sa)
        assert not any(a.startswith("kms:") for a in actions)
    key = "arn:aws:kms:ap-northeast-2:123456789012:key/11111111-2222-3333-4444-555555555555"
    result = plan_with("staging", {"obs-storage:storage": {"region": "ap-northeast-2", "kmsKeyArn": key}})
    for sa, expected in (("thanos-compact", {"kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"}), ("thanos-store", {"kms:Decrypt"})):
        doc = policy_of(result.one("aws:iam/rolePolicy:RolePolicy", f"{sa}-bucket-access"))
        (kms,) = [s for s in doc["Statement"] if s["Sid"] == "UseBucketKey"]
        assert set(kms["Action"]) == expected and kms["Resource"] == [key]


def test_pod_identity_variant(plan_with):
    result = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "identity": "pod-identity"}})
    for sa, role in roles(result).items():
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    associations = {r.inputs["serviceAccount"]: r for r in result.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    assert set(associations) == set(EXPECTED_ACTIONS)
    for sa, association in associations.items():
        assert association.inputs["clusterName"] == "staging-eks" and association.inputs["namespace"] == "observability"
    # Nor looked up: a cluster using Pod Identity alone often has no IAM OIDC provider, and the
    # lookup would fail the whole stack.
    assert not result.by_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert OIDC_LOOKUP not in result.invokes


def test_oidc_provider_is_created_only_when_asked(plan, plan_with):
    # Staging's irsa stack (oidcProvider existing) looks the cluster's provider up instead.
    assert not plan("staging").by_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert OIDC_LOOKUP in plan("staging").invokes
    result = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "oidcProvider": "create"}})
    (oidc,) = result.by_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert oidc.inputs["url"] == f"https://{ISSUER}" and oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_receive_mode_grants_receive_instead_of_sidecar(plan_with):
    result = plan_with("staging", tool_overrides("staging", thanos={"mode": "receive"}))
    names = set(roles(result))
    assert "thanos-receive" in names and "prometheus" not in names
    actions, _ = actions_and_resources(result, "thanos-receive")
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}


def test_local_users_are_per_tool_and_bucket_scoped(plan):
    result = plan("local")
    users = {r.inputs["name"]: r for r in result.by_type("minio:index/iamUser:IamUser")}
    assert set(users) == {"obs-loki", "obs-tempo", "obs-thanos"}
    assert all(u.inputs["secret"] == engine.SECRET for u in users.values())
    for tool in ("loki", "tempo", "thanos"):
        policy = result.one("minio:index/iamPolicy:IamPolicy", f"{tool}-identity-policy")
        resources = {r for s in policy_of(policy)["Statement"] for r in s["Resource"]}
        assert resources == {f"arn:aws:s3:::{tool}", f"arn:aws:s3:::{tool}/*"}, policy.urn
        attachment = result.one("minio:index/iamUserPolicyAttachment:IamUserPolicyAttachment", f"{tool}-identity-policy-attachment")
        assert attachment.inputs == {"userName": f"obs-{tool}", "policyName": f"obs-{tool}-bucket-access"}


def test_prod_key_pair_is_a_swarm_secret(plan):
    secrets = {r.name: r for r in plan("prod").by_type("docker:index/secret:Secret")}
    assert set(secrets) == {"s3-credentials", "tools-grafana-admin-password"}
    assert all(s.inputs["data"] == engine.SECRET for s in secrets.values())


def _secret_values(result: engine.PlanResult) -> list[str]:
    """Every value the mocks produced for a secret: generated passwords and stack placeholders."""
    values = [f"mock-{r.name}-" for r in result.resources if r.type.startswith("random:index/random")]
    return values + ["plan-placeholder-for-", "aws_secret_access_key = ", "mock-secret-"]


def test_no_secret_value_anywhere_in_the_plan(any_stack):
    dumped = json.dumps({"resources": [r.inputs for r in any_stack.resources], "outputs": any_stack.outputs})
    for value in _secret_values(any_stack):
        assert value not in dumped, f"{any_stack.stack}: secret material {value!r} appears in the plan"


def test_service_accounts_name_the_role_arn_the_provider_returns(monkeypatch):
    # An ARN built by the program would be wrong in another partition (AWS China: arn:aws-cn:...);
    # the IRSA annotation must carry the role's own ARN output.
    original = engine.StrictMocks.new_resource

    def china(self, args):
        rid, state = original(self, args)
        if args.typ == "aws:iam/role:Role":
            state = {**state, "arn": f"arn:aws-cn:iam::{engine.ACCOUNT_ID}:role/{rid}"}
        return rid, state

    monkeypatch.setattr(engine.StrictMocks, "new_resource", china)
    result = engine.run("staging")
    role = result.one("aws:iam/role:Role", "loki-compactor-role")
    (chart,) = [c for c in result.by_type("kubernetes:helm.sh/v4:Chart") if c.inputs["name"] == "loki"]
    annotations = chart.inputs["values"]["compactor"]["serviceAccount"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": f"arn:aws-cn:iam::{engine.ACCOUNT_ID}:role/{role.inputs['name']}"}


def test_credentials_file_gives_the_sdks_the_keys_it_was_made_from(tmp_path):
    from botocore.configloader import raw_config_parse

    from components.core import identity
    from tools.verify import common as verify

    # A key the user supplies (Hetzner) may hold any printable character, '%' included.
    text = identity.credentials_text("obs-loki", "Zq4secretKey0123456789abcdefghijKLMN%PQR")
    # The shared-credentials format as botocore's own parser reads it, and as tools.verify reads it.
    path = tmp_path / "s3-credentials"
    path.write_text(text)
    assert raw_config_parse(str(path)) == {"default": {"aws_access_key_id": "obs-loki", "aws_secret_access_key": "Zq4secretKey0123456789abcdefghijKLMN%PQR"}}
    assert verify.parse_credentials_file(text) == verify.Keys("obs-loki", "Zq4secretKey0123456789abcdefghijKLMN%PQR")


# What the pinned MinIO (minio/minio RELEASE.2025-09-07T16-13-09Z) checks of a login it is given.
# A user, created with the admin API's add-user (terraform-provider-minio v1.20.1
# minio/resource_minio_iam_user.go:86 -> madmin-go v1.7.5 user-commands.go:266 -> cmd/admin-handlers-users.go:532),
# passes IAMSys.CreateUser (cmd/iam.go:1400-1410); the root login passes auth.CreateCredentials
# (cmd/common-main.go:855, internal/auth/credentials.go:370-381). Neither has a maximum: the 20/40 of
# credentials.go:42/:50 are checked only in CreateNewCredentialsWithMetadata (:306-313), for service accounts.
MINIO_ACCESS_KEY_MIN = 3  # accessKeyMinLen, credentials.go:38, IsAccessKeyValid :79-81
MINIO_SECRET_KEY_MIN = 8  # secretKeyMinLen, credentials.go:45, IsSecretKeyValid :84-86
MINIO_USER_RESERVED = "=,"  # reservedChars, credentials.go:58; ContainsReservedChars for users only (cmd/iam.go:1404)


def minio_refuses(name: str, secret_length: int, user: bool = True) -> bool:
    """Whether the pinned MinIO refuses a login with this access key and a secret this long."""
    return (len(name) < MINIO_ACCESS_KEY_MIN or secret_length < MINIO_SECRET_KEY_MIN
            or (user and any(c in MINIO_USER_RESERVED for c in name)))


def test_the_minio_check_refuses_and_accepts_at_the_upstream_boundaries():
    # The neighbours of each limit, and no maximum: a 41-character secret and a 22-character user
    # name (over the service-account maxima) are accepted for a user, as is the 56-character secret
    # the provider itself generates when given none (terraform-provider-minio v1.20.1 minio/utils.go:16,
    # 40 random bytes, base64: 56 characters). So the check used below neither refuses nothing nor
    # refuses too much.
    assert minio_refuses("obs-loki", MINIO_SECRET_KEY_MIN - 1) and not minio_refuses("obs-loki", MINIO_SECRET_KEY_MIN)
    assert minio_refuses("ab", 40) and not minio_refuses("abc", 40)
    assert minio_refuses("obs=loki", 40) and minio_refuses("obs,loki", 40) and not minio_refuses("obs=loki", 40, user=False)
    assert not minio_refuses("obs-local-spoke-thanos", 41) and not minio_refuses("o" * 37, 56)


@pytest.mark.parametrize("stack", ["local", "local-spoke"])
def test_local_minio_logins_pass_the_checks_minio_makes(plan, stack):
    result = plan(stack)
    secrets = {p.name: p.inputs for p in result.by_type("random:index/randomPassword:RandomPassword")}
    users = result.by_type("minio:index/iamUser:IamUser")
    assert users, stack
    for user in users:
        key = secrets[user.name.removesuffix("-user") + "-secret-key"]
        assert not minio_refuses(user.inputs["name"], key["length"]), (user.name, user.inputs["name"], key)
    if stack == "local":
        root = result.one("random:index/randomString:RandomString", "minio-root-user").inputs
        assert not minio_refuses("r" * int(root["length"]), secrets["minio-root-password"]["length"], user=False)
    else:
        # A spoke's user is named after its stack: longer than the 20 a service account may have,
        # which a user may (no maximum, above).
        assert [u.inputs["name"] for u in users] == ["obs-local-spoke-thanos"]


# ---------------------------------------------------------------- settings the committed stacks leave at their defaults
def test_another_namespace_is_followed_everywhere(plan_with):
    from tools.verify import identity as verify_identity

    result = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "namespace": "obs-x"}})
    # Nothing keeps the default: not a trust condition, a chart, a manifest, an alert or a URL.
    dumped = json.dumps({"resources": [r.inputs for r in result.resources], "outputs": result.outputs})
    assert "observability" not in dumped
    (namespace,) = result.by_type("kubernetes:core/v1:Namespace")
    assert namespace.inputs["metadata"]["name"] == "obs-x"
    charts = result.by_type("kubernetes:helm.sh/v4:Chart")
    assert charts and {c.inputs["namespace"] for c in charts} == {"obs-x"}
    namespaced = [r for r in result.resources if r.type.startswith("kubernetes:") and "namespace" in r.inputs.get("metadata", {})]
    assert len(namespaced) > 10 and {r.inputs["metadata"]["namespace"] for r in namespaced} == {"obs-x"}
    for sa, role in roles(result).items():
        trust = json.loads(role.inputs["assumeRolePolicy"])
        assert verify_identity.irsa_trust_problem(trust, "obs-x", sa) is None, role.urn
        assert verify_identity.irsa_trust_problem(trust, "observability", sa) is not None, role.urn
    assert {i["namespace"] for i in result.outputs["identities"].values()} == {"obs-x"}


def test_another_namespace_moves_the_pod_identity_associations(plan_with):
    result = plan_with("staging", {"obs-storage:aws": {"clusterName": "staging-eks", "identity": "pod-identity", "namespace": "obs-x"}})
    associations = result.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert {a.inputs["serviceAccount"] for a in associations} == set(EXPECTED_ACTIONS)
    assert {a.inputs["namespace"] for a in associations} == {"obs-x"}


# Locally one MinIO user serves all of a tool's components: the union of their actions, written out
# from what each component does (DOMAIN_NOTES "IAM per tool"): Loki's and Thanos' compactors delete,
# Tempo tags its objects.
LOCAL_USER_ACTIONS = {
    "loki": LOKI,
    "tempo": LOKI | {"s3:GetObjectTagging", "s3:PutObjectTagging"},
    "thanos": LOKI,
}


@pytest.mark.parametrize("stack", ["local", "local-spoke"])
def test_each_local_user_may_do_exactly_what_its_components_need(plan, stack):
    result = plan(stack)
    policies = result.by_type("minio:index/iamPolicy:IamPolicy")
    assert policies
    for policy in policies:
        tool = next(t for t in LOCAL_USER_ACTIONS if policy.name.startswith(f"{t}-"))
        statements = policy_of(policy)["Statement"]
        actions = {a for s in statements for a in s["Action"]}
        assert statements and all(s["Effect"] == "Allow" for s in statements), policy.urn
        expected = LOCAL_USER_ACTIONS[tool] if stack == "local" or tool != "thanos" else {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}
        assert actions == expected, (policy.urn, sorted(actions ^ expected))
        # Listing on the bucket, everything else on its objects.
        for statement in statements:
            on_bucket = all("/" not in r.removeprefix("arn:aws:s3:::") for r in statement["Resource"])
            assert on_bucket == (statement["Action"] == ["s3:ListBucket"]), (policy.urn, statement)


# ---------------------------------------------------------------- the backends on their own
def test_aws_roles_refuse_an_unknown_mode_and_irsa_without_the_clusters_oidc_provider():
    from components.core import identity

    oidc = identity.ClusterOidc(provider_arn="arn:aws:iam::123456789012:oidc-provider/x", issuer_host="x")
    # Accepted: IRSA with the cluster's OIDC provider, Pod Identity with or without one.
    assert identity.AwsRoles(None, "staging", "c", "observability", "irsa", oidc, None).kind == "irsa"
    assert identity.AwsRoles(None, "staging", "c", "observability", "pod-identity", None, None).kind == "pod-identity"
    # Refused: IRSA has nothing to trust without the provider; a mode the backend does not know.
    for mode, provider in (("irsa", None), ("kiam", oidc), ("kiam", None)):
        with pytest.raises(AssertionError):
            identity.AwsRoles(None, "staging", "c", "observability", mode, provider, None)


@pytest.mark.parametrize("prefix", ["a", "a" * 30])
def test_every_name_prefix_the_config_accepts_names_users_minio_accepts(plan_with, prefix):
    # A spoke's user is <namePrefix>-<tool> on its hub's MinIO; the shortest and the longest prefix
    # the config takes (1 to 30 characters) give names MinIO takes (at least 3, no maximum).
    (user,) = plan_with("local-spoke", {"obs-storage:namePrefix": prefix}).by_type("minio:index/iamUser:IamUser")
    assert user.inputs["name"] == f"{prefix}-thanos" and not minio_refuses(user.inputs["name"], MINIO_SECRET_KEY_MIN)


def test_a_name_prefix_minio_would_refuse_in_a_user_name_is_refused_at_load():
    from components.core.config import ConfigError

    # '=' and ',' (MinIO's reserved characters) fail the stack before any resource is declared.
    for prefix in ("obs=x", "obs,x"):
        with pytest.raises(ConfigError) as info:
            engine.run("local-spoke", {"obs-storage:namePrefix": prefix})
        assert info.value.key == "namePrefix" and prefix in str(info.value) and str(info.value).startswith("stack 'local-spoke': "), str(info.value)


def test_local_secret_keys_are_as_long_as_the_ones_minio_generates(plan):
    # 40 characters: the length minio/minio RELEASE.2025-09-07T16-13-09Z generates its own secret
    # keys with (internal/auth/credentials.go:50 secretKeyMaxLen, used at :235), five times the
    # minimum it asks of a user's (above); letters and digits need no quoting in the
    # shared-credentials file whichever INI reader a tool's SDK uses. Changing the length would
    # replace every user's secret on the next update.
    users = [p for p in plan("local").by_type("random:index/randomPassword:RandomPassword") if p.name.endswith("-secret-key")]
    assert len(users) == 3 and all(p.inputs["length"] == 40 and p.inputs["special"] is False for p in users), [(p.name, p.inputs) for p in users]


@pytest.mark.parametrize("module", ["components.core.identity", "components.targets"])
def test_the_identities_and_targets_modules_load_no_provider_sdk(module):
    # Each backend and each target imports its SDKs when it is used: a stack pays only for its own
    # target's SDKs (every preview pays for the imports).
    import subprocess
    import sys
    from pathlib import Path

    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('pulumi_')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == []


def test_irsa_stacks_declare_no_pod_identity_association(plan):
    # With IRSA the role trusts the cluster's OIDC provider; an association would be a second,
    # unintended way into the role.
    result = plan("staging")
    assert len(roles(result)) == len(EXPECTED_ACTIONS)
    assert result.by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") == []


def test_each_tool_identity_names_what_it_holds(monkeypatch):
    # ToolIdentity's outputs (what `pulumi stack export` shows for the component): the role ARNs
    # where there are roles, the MinIO user where there is one, the backend's kind always.
    from components.core import identity

    seen: dict[str, set] = {}
    monkeypatch.setattr(identity.ToolIdentity, "register_outputs", lambda self, outputs: seen.setdefault(self.kind, set()).update(outputs))
    engine.run("staging")
    engine.run("local")
    assert seen == {"irsa": {"kind", "roleArns"}, "minio-user": {"kind", "user"}}
