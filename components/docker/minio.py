"""MinIO on the local Docker engine: the object store of the `local` target.

Creates generated root credentials (kept secret, delivered to the container as files, never as
environment values), a data volume, the MinIO container with a health check (Pulumi waits for
healthy), and the MinIO provider that later creates buckets and users only after that.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_docker as docker
import pulumi_minio as minio
import pulumi_random as random

API_PORT = 9000
CONSOLE_PORT = 9001
# Name on the private network; the tools' endpoint is `minio:9000`.
HOSTNAME = "minio"
ROOT_USER_FILE = "/run/secrets/minio_root_user"
ROOT_PASSWORD_FILE = "/run/secrets/minio_root_password"


class LocalMinio(pulumi.ComponentResource):
    """Outputs: `provider` (a MinIO provider usable once MinIO is healthy), `console_url`, `api_url`."""

    def __init__(self, name: str, image: str, network: docker.Network, docker_provider: docker.Provider, prefix: str, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("obs:local:LocalMinio", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        on_docker = pulumi.ResourceOptions(parent=self, provider=docker_provider)

        root_user = random.RandomString(f"{name}-root-user", length=20, special=False, upper=False, opts=child)
        root_password = random.RandomPassword(f"{name}-root-password", length=40, special=False, opts=child)
        self.root_user = pulumi.Output.secret(root_user.result)
        self.root_password = pulumi.Output.secret(root_password.result)

        remote_image = docker.RemoteImage(f"{name}-image", name=image, keep_locally=True, opts=on_docker)
        data = docker.Volume(f"{name}-data", name=f"{prefix}-{name}-data", opts=on_docker)
        self.container = docker.Container(
            f"{name}-server",
            name=f"{prefix}-{name}",
            image=remote_image.image_id,
            command=["server", "/data", "--console-address", f":{CONSOLE_PORT}"],
            # MinIO reads *_FILE variables as paths to its credentials; the values stay in files.
            # Metrics without a bearer token (cmd/metrics-router.go at the pinned release): they
            # name buckets and count objects, reachable only on the stack's network and loopback.
            envs=[f"MINIO_ROOT_USER_FILE={ROOT_USER_FILE}", f"MINIO_ROOT_PASSWORD_FILE={ROOT_PASSWORD_FILE}", "MINIO_PROMETHEUS_AUTH_TYPE=public"],
            uploads=[
                {"file": ROOT_USER_FILE, "content": self.root_user, "permissions": "0400"},
                {"file": ROOT_PASSWORD_FILE, "content": self.root_password, "permissions": "0400"},
            ],
            volumes=[{"volume_name": data.name, "container_path": "/data"}],
            networks_advanced=[{"name": network.name, "aliases": [HOSTNAME]}],
            # Published on loopback only: the pinned image predates the CVE-2025-62506 fix.
            ports=[
                {"internal": API_PORT, "external": API_PORT, "ip": "127.0.0.1"},
                {"internal": CONSOLE_PORT, "external": CONSOLE_PORT, "ip": "127.0.0.1"},
            ],
            healthcheck={"tests": ["CMD", "/usr/bin/mc", "ready", "local"], "interval": "5s", "timeout": "5s", "retries": 12, "start_period": "5s"},
            wait=True,
            wait_timeout=120,
            restart="unless-stopped",
            opts=on_docker,
        )
        self.provider = minio.Provider(
            f"{name}-provider",
            minio_server=f"127.0.0.1:{API_PORT}",
            minio_user=self.root_user,
            minio_password=self.root_password,
            minio_ssl=False,
            minio_region="us-east-1",
            # Buckets and users are created only once the container reports healthy.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
        )
        self.api_url = f"http://127.0.0.1:{API_PORT}"
        self.console_url = f"http://127.0.0.1:{CONSOLE_PORT}"
        self.register_outputs({"apiUrl": self.api_url, "consoleUrl": self.console_url})
