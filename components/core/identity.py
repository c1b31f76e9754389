"""Per-tool identities with least privilege; the identity backend is the platform seam.

- `AwsRoles` (target aws): one IAM role per service account in `access.grants`, trusted through
  IRSA (the cluster's OIDC provider, `sub` AND `aud` pinned) or EKS Pod Identity, with an inline
  policy of exactly the grant's actions on the tool's own bucket. No static keys exist.
- `MinioUsers` (target local): one MinIO user per tool with a policy limited to its bucket; the
  tool gets an AWS shared-credentials file (secret), never the root credentials.
- `HetznerKeyPair` (target hetzner): Hetzner has no IAM API, so the project's key pair is the
  credential; it becomes one Swarm secret holding a shared-credentials file.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Protocol

import pulumi

from components.core.access import Grant, bucket_policy_document
from components.core.config import role_name
from components.core.storage import ToolBucket

# Each backend imports its provider SDKs when it is used: a stack loads only the SDKs of the
# target it runs on (every preview pays for imports).
if TYPE_CHECKING:
    import pulumi_aws as aws
    import pulumi_docker as docker
    import pulumi_minio as minio

# Where every tool reads S3 credentials when it has no role: the AWS SDKs and minio-go all honour
# AWS_SHARED_CREDENTIALS_FILE, so configs and environment variables never carry a key.
CREDENTIALS_FILE = "/run/secrets/s3-credentials"


def credentials_text(access_key: str, secret_key: str) -> str:
    """A shared-credentials file with one [default] profile."""
    return f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"


def credentials_file(access_key: pulumi.Input[str], secret_key: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(pulumi.Output.all(access_key, secret_key).apply(lambda keys: credentials_text(*keys)))


@dataclass
class Credentials:
    """What the workload platform needs to give a tool access to its bucket."""

    # target aws: service account -> role ARN
    role_arns: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    # target local: the shared-credentials file content (secret)
    file_content: Optional[pulumi.Output[str]] = None
    # target hetzner: the Swarm secret holding the shared-credentials file
    swarm_secret: Optional[docker.Secret] = None
    user: Optional[pulumi.Output[str]] = None


class IdentityBackend(Protocol):
    kind: str

    def declare(self, parent: pulumi.ComponentResource, name: str, grants: list[Grant], bucket: ToolBucket) -> Credentials: ...


class ToolIdentity(pulumi.ComponentResource):
    """A tool's identities. Outputs: role ARNs per service account, or the MinIO user name."""

    def __init__(self, name: str, grants: list[Grant], bucket: ToolBucket, backend: IdentityBackend, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("obs:identity:ToolIdentity", name, None, opts)
        self.kind = backend.kind
        self.grants = grants
        self.credentials = backend.declare(self, name, grants, bucket)
        outputs: dict = {"kind": self.kind}
        if self.credentials.role_arns:
            outputs["roleArns"] = self.credentials.role_arns
        if self.credentials.user is not None:
            outputs["user"] = self.credentials.user
        self.register_outputs(outputs)


# ---------------------------------------------------------------- AWS
@dataclass(frozen=True)
class ClusterOidc:
    provider_arn: pulumi.Output[str]
    issuer_host: pulumi.Output[str]  # issuer URL without https://, the condition key prefix


def cluster_oidc(cluster: pulumi.Output, create: bool, provider: aws.Provider) -> ClusterOidc:
    """The cluster's IAM OIDC provider: looked up, or declared when the cluster has none."""
    import pulumi_aws as aws

    issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
    if create:
        oidc = aws.iam.OpenIdConnectProvider(
            "eks-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            opts=pulumi.ResourceOptions(provider=provider),
        )
        arn = oidc.arn
    else:
        arn = aws.iam.get_open_id_connect_provider_output(url=issuer, opts=pulumi.InvokeOptions(provider=provider)).arn
    return ClusterOidc(provider_arn=arn, issuer_host=issuer.apply(lambda url: url.removeprefix("https://")))


def irsa_trust_policy(provider_arn: str, issuer_host: str, namespace: str, service_account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    # Without `sub` any service account in the cluster could take the role.
                    "Condition": {
                        "StringEquals": {
                            f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                            f"{issuer_host}:aud": "sts.amazonaws.com",
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def pod_identity_trust_policy() -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "pods.eks.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        },
        sort_keys=True,
    )


class AwsRoles:
    """IAM roles per service account, trusted through IRSA or EKS Pod Identity."""

    def __init__(self, provider: aws.Provider, stack: str, cluster_name: str, namespace: str, mode: str, oidc: Optional[ClusterOidc], kms_key_arn: Optional[str]):
        assert mode in ("irsa", "pod-identity") and (mode == "pod-identity" or oidc is not None)
        self.kind = mode
        self.provider, self.stack, self.cluster_name, self.namespace, self.oidc, self.kms_key_arn = provider, stack, cluster_name, namespace, oidc, kms_key_arn

    def declare(self, parent: pulumi.ComponentResource, name: str, grants: list[Grant], bucket: ToolBucket) -> Credentials:
        import pulumi_aws as aws

        child = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        assert bucket.arn is not None
        arns: dict[str, pulumi.Output[str]] = {}
        for grant in grants:
            if self.kind == "irsa":
                trust = pulumi.Output.all(self.oidc.provider_arn, self.oidc.issuer_host).apply(
                    lambda v, sa=grant.service_account: irsa_trust_policy(v[0], v[1], self.namespace, sa)
                )
            else:
                trust = pod_identity_trust_policy()
            role = aws.iam.Role(
                f"{grant.service_account}-role",
                name=role_name(self.stack, grant.service_account),  # at most 64 characters: loading.load checks
                description=f"{grant.tool}: {grant.purpose} ({self.namespace}/{grant.service_account})",
                assume_role_policy=trust,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{grant.service_account}-bucket-access",
                role=role.id,
                policy=bucket.arn.apply(lambda arn, g=grant: bucket_policy_document(arn, bucket.prefix, g.actions, self.kms_key_arn)),
                opts=child,
            )
            if self.kind == "pod-identity":
                aws.eks.PodIdentityAssociation(
                    f"{grant.service_account}-pod-identity",
                    cluster_name=self.cluster_name,
                    namespace=self.namespace,
                    service_account=grant.service_account,
                    role_arn=role.arn,
                    opts=child,
                )
            arns[grant.service_account] = role.arn
        return Credentials(role_arns=arns)


# ---------------------------------------------------------------- MinIO (local)
class MinioUsers:
    """One MinIO user per tool, limited to its bucket; tools never see the root credentials."""

    kind = "minio-user"

    def __init__(self, provider: minio.Provider, prefix: str = "obs"):
        # A spoke creating its user on its hub's MinIO prefixes it with its stack: the hub's own
        # tools already use obs-<tool>.
        self.provider, self.prefix = provider, prefix

    def declare(self, parent: pulumi.ComponentResource, name: str, grants: list[Grant], bucket: ToolBucket) -> Credentials:
        import pulumi_minio as minio
        import pulumi_random as random

        child = pulumi.ResourceOptions(parent=parent, provider=self.provider)
        # The union of the tool's grants: locally one user serves all of a tool's components.
        actions = tuple(sorted({a for g in grants for a in g.actions}))
        tool = grants[0].tool
        # The provider creates the user with the admin API's add-user (terraform-provider-minio
        # v1.20.1, which pulumi_minio 0.17.1 bundles per pulumi/pulumi-minio v0.17.1
        # provider/go.mod:8: minio/resource_minio_iam_user.go:86; madmin-go v1.7.5
        # user-commands.go:266). At the pinned minio/minio
        # RELEASE.2025-09-07T16-13-09Z that reaches IAMSys.CreateUser (cmd/iam.go:1395-1410),
        # which asks the user name for at least 3 characters without '=' or ',' and the secret key
        # for at least 8 (internal/auth/credentials.go:38, :45, :58, :79-86), with no maximum for
        # either. The 20/40 maxima (credentials.go:42, :50) are enforced only by
        # CreateNewCredentialsWithMetadata (:306-313), i.e. service accounts (cmd/iam.go:1130),
        # not users, although the error a short secret gets reads "between 8 and 40" (:64). 40 is
        # the length MinIO generates its own secret keys with (credentials.go:235);
        # letters and digits need no quoting in the shared-credentials file.
        secret = random.RandomPassword(f"{name}-secret-key", length=40, special=False, opts=pulumi.ResourceOptions(parent=parent))
        user = minio.IamUser(f"{name}-user", name=f"{self.prefix}-{tool}", secret=secret.result, opts=child)
        policy = minio.IamPolicy(
            f"{name}-policy",
            name=f"{self.prefix}-{tool}-bucket-access",
            policy=bucket.bucket_name.apply(lambda b: bucket_policy_document(f"arn:aws:s3:::{b}", bucket.prefix, actions)),
            opts=child,
        )
        minio.IamUserPolicyAttachment(f"{name}-policy-attachment", user_name=user.name, policy_name=policy.name, opts=child)
        return Credentials(file_content=credentials_file(user.name, secret.result), user=user.name)


# ---------------------------------------------------------------- Hetzner
class HetznerKeyPair:
    """The Hetzner project's key pair, as one Swarm secret every tool mounts as a file."""

    kind = "hetzner-key-pair"

    def __init__(self, docker_provider: docker.Provider, access_key: pulumi.Output[str], secret_key: pulumi.Output[str]):
        import pulumi_docker as docker

        content = credentials_file(access_key, secret_key)
        # Swarm secrets are immutable: an auto-generated name lets Pulumi create the new secret
        # and move the services to it before deleting the old one when the key pair rotates.
        self.secret = docker.Secret(
            "s3-credentials",
            data=pulumi.Output.secret(content.apply(lambda c: base64.b64encode(c.encode()).decode())),
            labels=[{"label": "obs-storage.purpose", "value": "s3-credentials"}],
            opts=pulumi.ResourceOptions(provider=docker_provider),
        )

    def declare(self, parent: pulumi.ComponentResource, name: str, grants: list[Grant], bucket: ToolBucket) -> Credentials:
        return Credentials(swarm_secret=self.secret)
