"""The tools as containers on the local Docker engine (target local).

Every container: pinned image, private network, ports published on 127.0.0.1 only, configs
uploaded as files, the tool's own MinIO user's credentials as a file (never an environment
value), and a health check Pulumi waits for wherever the image can run one (not Tempo 2.x: see
components/containers/workloads.py). Containers start only after their bucket and identity exist, which
themselves wait for MinIO to be healthy. Every Docker name starts with the stack's `namePrefix`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.core.identity import CREDENTIALS_FILE, ToolIdentity
from components.core.storage import ToolBucket
from components.containers import monitoring, workloads
from components.containers.workloads import GRAFANA_ADMIN_PASSWORD_FILE, Workload


class LocalTools(pulumi.ComponentResource):
    """Outputs: `urls` (Grafana, Loki push, OTLP, Thanos Query) and the Grafana admin password (secret)."""

    def __init__(
        self,
        name: str,
        workloads: list[Workload],
        network: docker.Network,
        docker_provider: docker.Provider,
        buckets: dict[str, ToolBucket],
        identities: dict[str, ToolIdentity],
        prefix: str,
        hub_network: Optional[str] = None,
        receiver_secrets: Optional[dict[str, str]] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("obs:local:LocalTools", name, None, opts)
        self._provider = docker_provider
        self._prefix = prefix
        self._network = network
        self._hub_network = hub_network
        images = {w.image for w in workloads}
        self._images = {
            image: docker.RemoteImage(f"{name}-image-{image.split('/')[-1].split(':')[0]}", name=image, keep_locally=True, opts=self._opts())
            for image in sorted(images)
        }
        self.grafana_admin_password: Optional[pulumi.Output[str]] = None
        if any(w.tool == "grafana" for w in workloads):
            admin = random.RandomPassword(f"{name}-grafana-admin-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self))
            self.grafana_admin_password = pulumi.Output.secret(admin.result)
        volumes = sorted({v for w in workloads for v in w.volumes})
        self._volumes = {v: docker.Volume(f"{name}-{v}", name=f"{prefix}-{v}", opts=self._opts()) for v in volumes}
        self.containers: dict[str, docker.Container] = {}
        for workload in workloads:
            depends: list[pulumi.Resource] = []
            secret_files: list[dict] = []
            if workload.tool in buckets:
                # Buckets and users first (they wait for MinIO), then the tool.
                depends += [buckets[workload.tool], identities[workload.tool]]
            elif workload.tool in identities:
                # A spoke's user on its hub's MinIO (the bucket is the hub's).
                depends.append(identities[workload.tool])
            if workload.credentials:
                secret_files.append({"file": CREDENTIALS_FILE, "content": identities[workload.tool].credentials.file_content})
            depends += [self.containers[other] for other in workload.after]
            # Alert receivers' URLs, keys and passwords, from the stack's Pulumi secrets.
            secret_files += [{"file": path, "content": pulumi.Output.secret((receiver_secrets or {})[receiver])}
                             for path, receiver in sorted(workload.receiver_secret_files.items())]
            if workload.tool == "grafana":
                secret_files.append({"file": GRAFANA_ADMIN_PASSWORD_FILE, "content": self.grafana_admin_password})
                depends += [c for c in self.containers.values()]
            self.containers[workload.name] = self._container(name, workload, secret_files, depends)
        urls = {
            "grafana": ("grafana", "http://127.0.0.1:3000"),
            "lokiPush": ("loki", "http://127.0.0.1:3100/loki/api/v1/push"),
            "otlpGrpc": ("tempo", "127.0.0.1:4317"),
            "otlpHttp": ("tempo", "http://127.0.0.1:4318"),
            "thanosQuery": ("thanos-query", "http://127.0.0.1:10902"),
            # Readiness and query APIs, for people and `tools.verify` (published on loopback).
            "loki": ("loki", "http://127.0.0.1:3100"),
            "tempo": ("tempo", "http://127.0.0.1:3200"),
            "prometheus": ("prometheus", "http://127.0.0.1:9090"),
        }
        # Only what this stack runs and publishes (a Thanos spoke runs no Query and publishes nothing).
        published = {w.name for w in workloads if w.ports}
        self.urls = {key: url for key, (workload, url) in urls.items() if workload in published}
        self.register_outputs({"urls": self.urls})

    def _opts(self, depends: Optional[list[pulumi.Resource]] = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=depends or [])

    def _container(self, name: str, w: Workload, secret_files: list[dict], depends: list[pulumi.Resource]) -> docker.Container:
        owner = w.uid
        uploads = [{"file": f.path, "content": f.content, "permissions": "0444"} for f in w.files]
        uploads += [{"file": s["file"], "content": s["content"], "permissions": "0400", "owner": int(owner)} for s in secret_files]
        # Pulumi can wait for "healthy" only where the container has a health check; elsewhere the
        # provider refuses `wait` (kreuzwerker/docker v4.5.0 resource_docker_container_funcs.go).
        health = (
            {"healthcheck": {"tests": w.health, "interval": "10s", "timeout": "5s", "retries": 12, "start_period": "20s"}, "wait": True, "wait_timeout": 240}
            if w.health
            else {}
        )
        return docker.Container(
            f"{name}-{w.name}",
            name=f"{self._prefix}-{w.name}",
            image=self._images[w.image].image_id,
            entrypoints=w.entrypoint or None,
            command=w.args or None,
            envs=[f"{k}={v}" for k, v in sorted(w.env.items())] or None,
            uploads=uploads or None,
            volumes=[{"volume_name": self._volumes[v].name, "container_path": path} for v, path in sorted(w.volumes.items())] or None,
            # On the hub's network a spoke's container answers to its unique container name only:
            # the short names there are the hub's.
            networks_advanced=[{"name": self._network.name, "aliases": [w.name]}]
            + ([{"name": self._hub_network}] if w.joins_hub_network and self._hub_network else []),
            labels=[{"label": k, "value": v} for k, v in sorted(w.labels.items())] or None,
            # Loopback only: nothing of the local stack is reachable from other machines.
            ports=[{"internal": p, "external": p, "ip": "127.0.0.1"} for p in w.ports] or None,
            user=w.user,
            **health,
            # `docker stop` and `pulumi destroy` give ingesters time to flush (workloads.FLUSH_GRACE_SECONDS).
            stop_timeout=w.stop_grace_seconds,
            destroy_grace_seconds=w.stop_grace_seconds,
            restart="unless-stopped",
            opts=self._opts(depends),
        )


class LocalPlatform:
    """Workload platform of target local: containers on this machine's Docker engine."""

    def __init__(self, network: docker.Network, docker_provider: docker.Provider):
        self.network, self.docker_provider = network, docker_provider

    def deploy(self, cfg, buckets: dict[str, ToolBucket], identities: dict[str, ToolIdentity]) -> dict:
        layout = workloads.Layout(ring_replicas=1, interface=None, cluster_label=cfg.tools.thanos.cluster_label)
        hub = cfg.tools.thanos.hub_bucket
        # The tools, then what watches them: scrape jobs, alert rules, Alertmanager, freshness probes.
        declared = monitoring.attach(cfg, layout, workloads.build(cfg, layout))
        if hub:
            # A spoke publishes nothing: it shares this engine with its hub, whose containers
            # already hold the ports, and the hub's Grafana is where the spoke's data is seen.
            declared = [dataclasses.replace(w, ports=[]) for w in declared]
        tools = LocalTools("tools", declared, self.network, self.docker_provider, buckets, identities, cfg.name_prefix,
                           hub_network=hub.docker_network if hub else None, receiver_secrets=cfg.receiver_secrets())
        out: dict = {"urls": tools.urls}
        if "grafana" in tools.containers:
            out["grafanaAdminPassword"] = tools.grafana_admin_password
        return out
