"""The tools as Docker Swarm services on an existing Swarm (target hetzner).

One `docker.Service` per workload on a private overlay network: replicated, rolling updates with
rollback on failure, restart policy, resource limits, placement constraints, health checks on
the tools' readiness endpoints. Tool configs are `docker.ServiceConfig`s; the Hetzner key pair
and the Grafana admin password are only ever `docker.Secret` files.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Optional

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.identity import CREDENTIALS_FILE, ToolIdentity
from components.storage import ToolBucket
from components import workloads
from components.workloads import GRAFANA_ADMIN_PASSWORD_FILE, Layout, Workload

GIB = 1024**3
# Memory limit (bytes) and CPU limit (nano-CPUs) per workload; generous for a single team.
LIMITS = {
    "loki": (4 * GIB, 2_000_000_000),
    "tempo": (4 * GIB, 2_000_000_000),
    "prometheus": (4 * GIB, 2_000_000_000),
    "thanos-store": (2 * GIB, 1_000_000_000),
    "thanos-compact": (4 * GIB, 1_000_000_000),
    "grafana": (1 * GIB, 1_000_000_000),
}
DEFAULT_LIMIT = (1 * GIB, 1_000_000_000)
# Replacing these tasks must stop the old one first: a singleton (compactor), a WAL or TSDB on a
# node-local volume that two tasks must not open at once.
STOP_FIRST = ("loki", "tempo", "prometheus", "thanos-sidecar", "thanos-compact")
# Ring members advertise on their only interface: DNS round robin keeps them off the ingress
# network, so eth0 is the overlay (grafana/loki#5610).
DNSRR = ("loki", "tempo")
OVERLAY_INTERFACE = "eth0"


def swarm_layout(stack: str) -> Layout:
    return Layout(ring_replicas=3, interface=OVERLAY_INTERFACE, cluster_label=stack, query_replicas=2)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class SwarmTools(pulumi.ComponentResource):
    """Outputs: `urls` (Grafana via the Swarm ingress) and the Grafana admin password (secret)."""

    def __init__(
        self,
        name: str,
        workloads: list[Workload],
        docker_provider: docker.Provider,
        credentials_secret: docker.Secret,
        placement_constraints: list[str],
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("obs:swarm:SwarmTools", name, None, opts)
        self._provider = docker_provider
        self.network = docker.Network(
            f"{name}-network",
            name="obs",
            driver="overlay",
            # Log and trace shippers of other stacks join this network to reach Loki and Tempo.
            attachable=True,
            opts=self._opts(),
        )
        admin = random.RandomPassword(f"{name}-grafana-admin-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self))
        self.grafana_admin_password = pulumi.Output.secret(admin.result)
        grafana_secret = docker.Secret(
            f"{name}-grafana-admin-password",
            data=pulumi.Output.secret(admin.result.apply(_b64)),
            opts=self._opts(),
        )
        self.services: dict[str, docker.Service] = {}
        for w in workloads:
            # Readable by the tool's own user only (Swarm mounts secrets as root otherwise).
            owner = {"file_mode": 0o400, "file_uid": w.uid, "file_gid": w.uid}
            secrets = []
            if w.credentials:
                secrets.append({"secret_id": credentials_secret.id, "secret_name": credentials_secret.name, "file_name": CREDENTIALS_FILE, **owner})
            if w.tool == "grafana":
                secrets.append({"secret_id": grafana_secret.id, "secret_name": grafana_secret.name, "file_name": GRAFANA_ADMIN_PASSWORD_FILE, **owner})
            self.services[w.name] = self._service(name, w, secrets, placement_constraints)
        self.urls = {"grafana": "http://<any-swarm-node>:3000"}
        self.register_outputs({"urls": self.urls})

    def _opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._provider)

    def _config(self, name: str, w: Workload, path: str, content: str) -> dict:
        # Configs are immutable in Swarm; a content hash in the resource name makes a change
        # create a new config that the service then switches to.
        digest = hashlib.sha256(content.encode()).hexdigest()[:10]
        config = docker.ServiceConfig(f"{name}-{w.name}-{path.rsplit('/', 1)[-1].split('.')[0]}-{digest}", data=_b64(content), opts=self._opts())
        return {"config_id": config.id, "config_name": config.name, "file_name": path, "file_mode": 0o444}

    def _service(self, name: str, w: Workload, secrets: list[dict], constraints: list[str]) -> docker.Service:
        memory, cpus = LIMITS.get(w.name, DEFAULT_LIMIT)
        order = "stop-first" if w.name in STOP_FIRST else "start-first"
        placement = list(constraints) + ([f"node.labels.obs-storage.{w.node_label} == true"] if w.node_label else [])
        suffix = "-{{.Task.Slot}}" if w.per_replica_volumes else ""
        mounts = [{"target": path, "source": f"obs-{volume}{suffix}", "type": "volume"} for volume, path in sorted(w.volumes.items())]
        container = {
            "image": w.image,
            "commands": w.entrypoint or None,
            "args": w.args or None,
            "env": w.env or None,
            "user": w.user,
            "configs": [self._config(name, w, f.path, f.content) for f in w.files] or None,
            "secrets": secrets or None,
            "mounts": mounts or None,
            "healthcheck": {"tests": w.health, "interval": "10s", "timeout": "5s", "retries": 6, "start_period": "60s"},
            "hostname": "{{.Service.Name}}-{{.Task.Slot}}",
        }
        return docker.Service(
            f"{name}-{w.name}",
            name=w.name,
            task_spec={
                "container_spec": {k: v for k, v in container.items() if v is not None},
                "networks_advanceds": [{"name": self.network.id, "aliases": [w.name]}],
                "placement": {"constraints": placement} if placement else None,
                "resources": {"limits": {"memory_bytes": memory, "nano_cpus": cpus}},
                "restart_policy": {"condition": "any", "delay": "5s", "window": "60s"},
            },
            mode={"replicated": {"replicas": w.replicas}},
            update_config={"parallelism": 1, "delay": "10s", "order": order, "failure_action": "rollback", "monitor": "60s"},
            rollback_config={"parallelism": 1, "order": order, "failure_action": "pause", "monitor": "60s"},
            endpoint_spec=(
                {"mode": "dnsrr"}
                if w.name in DNSRR
                else {"mode": "vip", "ports": [{"target_port": p, "published_port": p} for p in w.ports if w.name == "grafana"] or None}
            ),
            labels=[{"label": "obs-storage.tool", "value": w.tool}],
            opts=self._opts(),
        )


class SwarmPlatform:
    """Workload platform of target hetzner: services on the existing Swarm."""

    def __init__(self, docker_provider: docker.Provider, credentials_secret: docker.Secret, placement_constraints: list[str]):
        self.docker_provider, self.credentials_secret, self.placement = docker_provider, credentials_secret, placement_constraints

    def deploy(self, cfg, buckets: dict[str, ToolBucket], identities: dict[str, ToolIdentity]) -> dict:
        layout = swarm_layout(pulumi.get_stack())
        # Services start flushing at once: their buckets must exist first.
        tools = SwarmTools("tools", workloads.build(cfg, layout), self.docker_provider, self.credentials_secret, self.placement,
                           opts=pulumi.ResourceOptions(depends_on=list(buckets.values())))
        return {"urls": tools.urls, "grafanaAdminPassword": tools.grafana_admin_password}
