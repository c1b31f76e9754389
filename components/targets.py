"""The one seam per platform difference: what each target (`local`, `aws`, `hetzner`) provides.

A `Target` bundles the providers, the storage backend, the identity backend and the workload
platform for a stack. `__main__.py` asks `build(cfg)` for one and never branches on the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Protocol

import pulumi

from components.core import versions
from components.core.config import StackConfig, Target as TargetName
from components.core.identity import IdentityBackend
from components.core.storage import StorageBackend
from components.core.thanos_topology import Hub

# Each target imports its provider SDKs and platform modules itself, when it is built: a stack
# never loads the SDKs of the targets it does not use (every preview and plan pays for imports).
if TYPE_CHECKING:
    import pulumi_aws as aws
    import pulumi_docker as docker
    import pulumi_minio as minio


class Platform(Protocol):
    def deploy(self, cfg: StackConfig, buckets: dict, identities: dict) -> dict[str, Any]: ...


@dataclass
class Target:
    name: TargetName
    storage: StorageBackend
    identity: IdentityBackend
    # Deploys the tools wired to their buckets and identities; returns stack outputs.
    platform: "Platform"
    # URLs of the object store for people (console) and the plan.
    urls: dict[str, str] = field(default_factory=dict)
    # Secret outputs for people (e.g. the local MinIO console login); always pulumi secrets.
    secret_outputs: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    aws_provider: Optional[aws.Provider] = None
    docker_provider: Optional[docker.Provider] = None
    docker_network: Optional[docker.Network] = None
    minio_provider: Optional[minio.Provider] = None
    # target aws: the existing EKS cluster (looked up by name)
    cluster: Optional[pulumi.Output] = None
    # Thanos spoke: the identity backend that reaches the hub's bucket.
    hub_identity: Optional[IdentityBackend] = None


def build(cfg: StackConfig, hub: Optional[Hub] = None) -> Target:
    if cfg.target is TargetName.AWS and cfg.aws.platform == "ec2":
        return _aws_ec2(cfg)
    return {TargetName.LOCAL: _local, TargetName.AWS: _aws, TargetName.HETZNER: _hetzner}[cfg.target](cfg, hub)


def _local(cfg: StackConfig, hub: Optional[Hub]) -> Target:
    import pulumi_docker as docker

    from components.docker.local import LocalPlatform
    from components.core.identity import MinioUsers
    from components.docker.minio import LocalMinio
    from components.core.storage import S3CompatibleBackend

    s = cfg.storage
    # No host: the provider follows DOCKER_HOST like the `docker info` check in `make up`.
    docker_provider = docker.Provider("local-docker")
    network = docker.Network(
        "obs-network",
        # Prefixed: the engine may run other projects' networks, containers and volumes.
        name=cfg.name_prefix,
        driver="bridge",
        opts=pulumi.ResourceOptions(provider=docker_provider),
    )
    hub_identity = _hub_minio_users(cfg, hub) if hub else None
    if not cfg.runs_minio:
        # A spoke running only Thanos keeps nothing in a bucket of its own: no MinIO to run.
        return Target(cfg.target, None, None, LocalPlatform(network, docker_provider), docker_provider=docker_provider,
                      docker_network=network, hub_identity=hub_identity)
    server = LocalMinio("minio", versions.image(cfg.pins, "minio"), network, docker_provider, cfg.name_prefix)
    backend = S3CompatibleBackend(server.provider, s.region, s.endpoint, s.path_style, s.tls)
    return Target(
        cfg.target,
        backend,
        MinioUsers(server.provider),
        LocalPlatform(network, docker_provider),
        urls={"minioConsole": server.console_url, "minioApi": server.api_url},
        secret_outputs={"minioRootUser": server.root_user, "minioRootPassword": server.root_password},
        docker_provider=docker_provider,
        docker_network=network,
        minio_provider=server.provider,
        hub_identity=hub_identity,
    )


def _hub_minio_users(cfg: StackConfig, hub: Hub):
    """A local spoke's users live on its hub's MinIO, created with the hub's root login (a secret
    output of the hub's stack): both stacks run on this machine's engine."""
    import pulumi_minio as minio

    from components.core.identity import MinioUsers

    assert hub.reference is not None and hub.bucket.minio_api
    provider = minio.Provider(
        "hub-minio",
        minio_server=hub.bucket.minio_api.removeprefix("http://"),
        minio_user=hub.reference.require_output("minioRootUser"),
        minio_password=hub.reference.require_output("minioRootPassword"),
        minio_ssl=False,
        minio_region=hub.bucket.region,
    )
    return MinioUsers(provider, prefix=cfg.name_prefix)


def _aws(cfg: StackConfig, hub: Optional[Hub]) -> Target:
    import pulumi_aws as aws
    import pulumi_kubernetes as k8s

    from components.eks.platform import EksPlatform, kubeconfig
    from components.core.identity import AwsRoles, cluster_oidc
    from components.core.storage import AwsS3Backend

    s = cfg.storage
    assert cfg.aws is not None
    provider = aws.Provider("aws", region=s.region)
    cluster = aws.eks.get_cluster_output(name=cfg.aws.cluster_name, opts=pulumi.InvokeOptions(provider=provider))
    oidc = cluster_oidc(cluster, cfg.aws.oidc_provider == "create", provider) if cfg.aws.identity == "irsa" else None
    identity = AwsRoles(provider, pulumi.get_stack(), cfg.aws.cluster_name, cfg.aws.namespace, cfg.aws.identity, oidc, s.kms_key_arn)
    config = (
        pulumi.Output.secret(cfg.secrets.kubeconfig.get_secret_value()) if cfg.secrets.kubeconfig else kubeconfig(cluster, s.region)
    )
    k8s_provider = k8s.Provider("eks", kubeconfig=config)
    # A spoke's roles live in its own account and trust its own cluster; only the KMS key (if the
    # hub encrypts with one) is the hub's.
    hub_identity = (
        AwsRoles(provider, pulumi.get_stack(), cfg.aws.cluster_name, cfg.aws.namespace, cfg.aws.identity, oidc, hub.bucket.kms_key_arn)
        if hub else None
    )
    return Target(
        cfg.target,
        AwsS3Backend(provider, s.region, s.endpoint, s.path_style, s.tls),
        identity,
        EksPlatform(k8s_provider),
        aws_provider=provider,
        cluster=cluster,
        hub_identity=hub_identity,
    )


def _aws_ec2(cfg: StackConfig) -> Target:
    """S3 buckets and the tools on EC2 fleets of this stack's own (no Kubernetes); always a
    Thanos hub (config refuses a spoke on ec2)."""
    import pulumi_aws as aws

    from components.core.storage import AwsS3Backend
    from components.ec2.identity import InstanceRoles
    from components.ec2.platform import Ec2Platform

    s = cfg.storage
    provider = aws.Provider("aws", region=s.region)
    roles = InstanceRoles(provider, pulumi.get_stack(), s.kms_key_arn)
    return Target(
        cfg.target,
        AwsS3Backend(provider, s.region, s.endpoint, s.path_style, s.tls),
        roles,
        Ec2Platform(provider, pulumi.get_stack(), roles),
        aws_provider=provider,
    )


def _hetzner(cfg: StackConfig, hub: Optional[Hub]) -> Target:
    import pulumi_docker as docker
    import pulumi_minio as minio

    from components.core.identity import HetznerKeyPair
    from components.core.storage import S3CompatibleBackend
    from components.docker.swarm import SwarmPlatform

    s = cfg.storage
    assert cfg.hetzner is not None and cfg.secrets.hetzner_access_key and cfg.secrets.hetzner_secret_key
    access_key = pulumi.Output.secret(cfg.secrets.hetzner_access_key.get_secret_value())
    secret_key = pulumi.Output.secret(cfg.secrets.hetzner_secret_key.get_secret_value())
    provider = minio.Provider(
        "hetzner-object-storage",
        minio_server=s.endpoint,
        minio_user=access_key,
        minio_password=secret_key,
        minio_ssl=s.tls,
        minio_region=s.region,
    )
    docker_provider = docker.Provider("swarm", host=cfg.hetzner.swarm_host, ssh_opts=["-o", "BatchMode=yes"])
    key_pair = HetznerKeyPair(docker_provider, access_key, secret_key)
    return Target(
        cfg.target,
        S3CompatibleBackend(provider, s.region, s.endpoint, s.path_style, s.tls),
        key_pair,
        SwarmPlatform(docker_provider, key_pair.secret, cfg.hetzner.placement_constraints),
        urls={"objectStorage": f"https://{s.endpoint}"},
        docker_provider=docker_provider,
        minio_provider=provider,
        # Hetzner has no per-bucket credentials: the spoke's key pair must be one of the hub's
        # project, and it reaches every bucket of that project (thanos_topology.HETZNER_NOTE).
        hub_identity=key_pair if hub else None,
    )
