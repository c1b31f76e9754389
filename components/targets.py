"""The one seam per platform difference: what each target (`local`, `aws`, `hetzner`) provides.

A `Target` bundles the providers, the storage backend, the identity backend and the workload
platform for a stack. `__main__.py` asks `build(cfg)` for one and never branches on the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
import pulumi_minio as minio

from components import versions
from components.config import StackConfig, Target as TargetName
from components.local_minio import LocalMinio
from components.storage import AwsS3Backend, S3CompatibleBackend, StorageBackend


@dataclass
class Target:
    name: TargetName
    storage: StorageBackend
    # URLs of the object store for people (console) and the plan.
    urls: dict[str, str] = field(default_factory=dict)
    aws_provider: Optional[aws.Provider] = None
    docker_provider: Optional[docker.Provider] = None
    docker_network: Optional[docker.Network] = None
    minio_provider: Optional[minio.Provider] = None


def build(cfg: StackConfig) -> Target:
    return {TargetName.LOCAL: _local, TargetName.AWS: _aws, TargetName.HETZNER: _hetzner}[cfg.target](cfg)


def _local(cfg: StackConfig) -> Target:
    s = cfg.storage
    docker_provider = docker.Provider("local-docker", host="unix:///var/run/docker.sock")
    network = docker.Network(
        "obs-network",
        name="obs",
        driver="bridge",
        opts=pulumi.ResourceOptions(provider=docker_provider),
    )
    server = LocalMinio("minio", versions.image(cfg.pins, "minio"), network, docker_provider)
    backend = S3CompatibleBackend(server.provider, s.region, s.endpoint, s.path_style, s.tls)
    return Target(
        cfg.target,
        backend,
        urls={"minioConsole": server.console_url, "minioApi": server.api_url},
        docker_provider=docker_provider,
        docker_network=network,
        minio_provider=server.provider,
    )


def _aws(cfg: StackConfig) -> Target:
    s = cfg.storage
    provider = aws.Provider("aws", region=s.region)
    return Target(cfg.target, AwsS3Backend(provider, s.region, s.endpoint, s.path_style, s.tls), aws_provider=provider)


def _hetzner(cfg: StackConfig) -> Target:
    s = cfg.storage
    assert cfg.hetzner is not None and cfg.secrets.hetzner_access_key and cfg.secrets.hetzner_secret_key
    provider = minio.Provider(
        "hetzner-object-storage",
        minio_server=s.endpoint,
        minio_user=pulumi.Output.secret(cfg.secrets.hetzner_access_key.get_secret_value()),
        minio_password=pulumi.Output.secret(cfg.secrets.hetzner_secret_key.get_secret_value()),
        minio_ssl=s.tls,
        minio_region=s.region,
    )
    docker_provider = docker.Provider("swarm", host=cfg.hetzner.swarm_host, ssh_opts=["-o", "BatchMode=yes"])
    return Target(
        cfg.target,
        S3CompatibleBackend(provider, s.region, s.endpoint, s.path_style, s.tls),
        urls={"objectStorage": f"https://{s.endpoint}"},
        docker_provider=docker_provider,
        minio_provider=provider,
    )
