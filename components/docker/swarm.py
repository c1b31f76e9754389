"""The tools as Docker Swarm services on an existing Swarm (target hetzner).

One `docker.Service` per workload on the stack's own attachable overlay network: replicated,
rolling updates with rollback on failure, restart policy, resource limits, placement
constraints, health checks where the image can run one. Tool configs are `docker.ServiceConfig`s;
the Hetzner key pair and the Grafana admin password are only ever `docker.Secret` files. Every
Docker name starts with the stack's `namePrefix`; on the overlay each service is also reachable
by its short name (a network alias: `loki`, `tempo`, `thanos-query`, ...).

Network assumptions (docs/hetzner-swarm.md, "Swarm"):
- Loki and Tempo replicas register their ring address from `eth0`. A task attached to one
  overlay network gets it as eth0 and docker_gwbridge (the default route, for reaching Hetzner
  Object Storage) as the last interface. Loki and Tempo also join the shippers' network; the
  internal network comes first in their spec, and moby's executor creates the container on the
  first network and connects the others afterwards, so eth0 is the internal overlay (either
  overlay reaches every replica; only docker_gwbridge would not).
- The rings live in a three-member etcd (`ring-kv-1..3`, one per node of `hetzner.nodes`), not
  memberlist. Memberlist gossips with the address it
  advertises, and without `memberlist.advertise_addr` (an IP literal: dskit
  kv/memberlist/tcp_transport.go FinalAdvertiseAddr) it advertises the private IP of the
  default-route interface (hashicorp/go-sockaddr GetPrivateIP), which in a Swarm task is
  docker_gwbridge, unreachable from other nodes (grafana/loki#5610). Neither Loki 3.7 nor Tempo
  2.10 derives that address from an interface name (Loki's config_wrapper.go maps only
  `common.instance_addr` to it), and their images have no shell that could look it up. Ring
  members registered in etcd carry the eth0 address from `instance_interface_names`.
- Prometheus and its Thanos sidecar share a node-local volume, so each pair is pinned by
  hostname (a hostname matches one node; a label could match several and split Prometheus from
  the sidecar that reads its TSDB). Two pairs run on two distinct nodes (`prometheus_nodes`):
  alert evaluation and recent metrics survive the loss of either node. Both scrape everything,
  each with its own `replica` external label; Thanos Query and the compactor deduplicate on it,
  and Alertmanager receives one alert, not two (prometheus.ALERT_RELABEL drops the label).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Optional

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.core.identity import CREDENTIALS_FILE, ToolIdentity
from components.core.storage import ToolBucket
from components.containers import monitoring, workloads
from components.containers.workloads import GRAFANA_ADMIN_PASSWORD_FILE, Layout, Workload

# Hetzner Cloud private networks carry packets of at most 1450 bytes (Hetzner docs, Networks:
# "MTU 1450"). The overlay driver takes this as the underlay MTU and subtracts the VXLAN header
# and, on an encrypted network, the ESP expansion itself (moby libnetwork
# drivers/overlay/encryption.go maxMTU): without it the overlay assumes 1500 and large packets
# between nodes are dropped.
UNDERLAY_MTU = 1450
# Swarm's update/rollback settings, also the basis of how long `pulumi up` waits (converge_config).
HEALTH_INTERVAL_SECONDS, HEALTH_RETRIES = 10, 6
UPDATE_DELAY_SECONDS, UPDATE_MONITOR_SECONDS = 10, 60

GIB = 1024**3
# Memory limit (bytes) and CPU limit (nano-CPUs) per workload; generous for a single team.
LIMITS = {
    "loki": (4 * GIB, 2_000_000_000),
    "tempo": (4 * GIB, 2_000_000_000),
    "prometheus": (4 * GIB, 2_000_000_000),
    "thanos-store": (2 * GIB, 1_000_000_000),
    "thanos-compact": (4 * GIB, 1_000_000_000),
    "grafana": (1 * GIB, 1_000_000_000),
    "ring-kv": (512 * 1024**2, 500_000_000),
}
DEFAULT_LIMIT = (1 * GIB, 1_000_000_000)
# Ring members find their address on this interface (see the module docstring).
OVERLAY_INTERFACE = "eth0"
# DNS round robin: `tasks.<name>` and `<name>` both list every task, and no virtual IP is added.
DNSRR = ("loki", "tempo")


def prometheus_nodes(state_node: str, nodes: tuple[str, ...]) -> tuple[str, ...]:
    """The nodes of the two Prometheus + sidecar pairs: `hetzner.stateNode`, which has always held
    Prometheus' volume, and the first of `hetzner.nodes` that is another node."""
    first = state_node or (nodes[0] if nodes else "")
    second = next((n for n in nodes if n != first), None)
    return (first, second) if first and second else ()


def swarm_layout(cluster_label: str, nodes: tuple[str, ...], state_node: str = "") -> Layout:
    return Layout(ring_replicas=3, interface=OVERLAY_INTERFACE, cluster_label=cluster_label, query_replicas=2, ring_nodes=nodes,
                  prometheus_nodes=prometheus_nodes(state_node, nodes))


def converge_timeout_seconds(w: Workload) -> int:
    """How long `pulumi up` waits for a service: a rolling update replaces one task at a time, each
    stopped (grace period), started and healthy (start period plus retries), then watched (monitor)
    before the next (delay); plus a minute of scheduling."""
    per_task = w.stop_grace_seconds + w.health_start_seconds + HEALTH_INTERVAL_SECONDS * HEALTH_RETRIES + UPDATE_MONITOR_SECONDS + UPDATE_DELAY_SECONDS
    return w.replicas * per_task + 60


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _restart_policy(w: Workload) -> dict:
    if w.every_seconds:
        # Condition "any" restarts a task that exited 0 too, after `delay`; the waiting task keeps
        # its start time across a manager failover (moby/swarmkit v2.1.2
        # manager/orchestrator/restart/restart.go Restart, DelayStart; taskinit/init.go CheckTasks).
        # No max_attempts: a failed run is tried again the next day, as a successful one.
        return {"condition": "any", "delay": f"{w.every_seconds}s"}
    return {"condition": "any", "delay": "5s", "window": "60s"}


def _failure_action(w: Workload, action: str) -> str:
    """Swarm counts a task that ends within the monitor period as a failed update ("failure or early
    termination", moby/swarmkit v2.1.2 manager/orchestrator/update/updater.go): a one-shot task
    always does, so its updates must not roll back or pause on that."""
    return "continue" if w.every_seconds else action


def _stop_first(w: Workload) -> bool:
    """Replacing these tasks must stop the old one first: a singleton (compactor, ring store), or
    a WAL, TSDB or database on a volume that two tasks must not open at once."""
    return bool(w.volumes) or w.name == "thanos-compact" or w.tool == "ring"


class SwarmTools(pulumi.ComponentResource):
    """Outputs: `urls` (Grafana via the Swarm ingress) and the Grafana admin password (secret)."""

    def __init__(
        self,
        name: str,
        workloads: list[Workload],
        docker_provider: docker.Provider,
        credentials_secret: docker.Secret,
        placement_constraints: list[str],
        state_node: str,
        prefix: str,
        buckets: dict[str, ToolBucket],
        identities: dict[str, ToolIdentity],
        receiver_secrets: Optional[dict[str, str]] = None,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        super().__init__("obs:swarm:SwarmTools", name, None, opts)
        receiver_secrets = receiver_secrets or {}
        self._provider = docker_provider
        self._prefix = prefix
        # Both overlays are encrypted (IPsec between nodes: ESP must pass the nodes' firewall) and
        # sized for the Hetzner network they ride on.
        overlay_options = {"encrypted": "true", "com.docker.network.driver.mtu": str(UNDERLAY_MTU)}
        self.network = docker.Network(
            f"{name}-network",
            name=prefix,
            driver="overlay",
            # Log and trace shippers of other stacks join this network to reach Loki and Tempo,
            # the only services on it.
            attachable=True,
            options=overlay_options,
            opts=self._opts(),
        )
        # Everything else, the ring store above all (etcd without auth: whoever reaches it can
        # rewrite the rings), talks on a network no container outside this stack can join.
        self.internal_network = docker.Network(
            f"{name}-internal-network",
            name=f"{prefix}-internal",
            driver="overlay",
            attachable=False,
            options=overlay_options,
            opts=self._opts(),
        )
        self._receiver_secrets = {
            receiver: docker.Secret(f"{name}-alert-receiver-{receiver}", data=pulumi.Output.secret(_b64(value)), opts=self._opts())
            for receiver, value in sorted(receiver_secrets.items())
        }
        self.grafana_admin_password: Optional[pulumi.Output[str]] = None
        # A Thanos spoke running nothing else has no Grafana: the hub's shows its data.
        if any(w.tool == "grafana" for w in workloads):
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
            for path, receiver in sorted(w.receiver_secret_files.items()):
                secret = self._receiver_secrets[receiver]
                secrets.append({"secret_id": secret.id, "secret_name": secret.name, "file_name": path, **owner})
            node = w.node or (state_node if w.node_local_state else None)
            placement = list(placement_constraints) + ([f"node.hostname == {node}"] if node else [])
            # A service flushes to its bucket from its first second, with its credentials: both
            # must exist first. depends_on on this component would not reach its children.
            depends: list[pulumi.Resource] = [buckets[w.tool], identities[w.tool]] if w.tool in buckets else []
            depends += [self.services[other] for other in w.after]
            self.services[w.name] = self._service(name, w, secrets, placement, depends)
        self.urls = {"grafana": "http://<any-swarm-node>:3000"} if "grafana" in self.services else {}
        self.register_outputs({"urls": self.urls})

    def _opts(self, depends: Optional[list[pulumi.Resource]] = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._provider, depends_on=depends or [])

    def _config(self, name: str, w: Workload, path: str, content: str) -> dict:
        # Configs are immutable in Swarm; a content hash in the resource name makes a change
        # create a new config that the service then switches to.
        digest = hashlib.sha256(content.encode()).hexdigest()[:10]
        config = docker.ServiceConfig(f"{name}-{w.name}-{path.rsplit('/', 1)[-1].split('.')[0]}-{digest}", data=_b64(content), opts=self._opts())
        return {"config_id": config.id, "config_name": config.name, "file_name": path, "file_mode": 0o444}

    def _service(self, name: str, w: Workload, secrets: list[dict], placement: list[str], depends: list[pulumi.Resource]) -> docker.Service:
        memory, cpus = LIMITS.get("ring-kv" if w.tool == "ring" else "prometheus" if w.prometheus_replica and w.pin == "prometheus" else w.name, DEFAULT_LIMIT)
        order = "stop-first" if _stop_first(w) else "start-first"
        suffix = "-{{.Task.Slot}}" if w.per_replica_volumes else ""
        mounts = [{"target": path, "source": f"{self._prefix}-{volume}{suffix}", "type": "volume"} for volume, path in sorted(w.volumes.items())]
        container = {
            "image": w.image,
            "commands": w.entrypoint or None,
            "args": w.args or None,
            "env": w.env or None,
            "user": w.user,
            "configs": [self._config(name, w, f.path, f.content) for f in w.files] or None,
            "secrets": secrets or None,
            "mounts": mounts or None,
            "healthcheck": {
                "tests": w.health, "interval": f"{HEALTH_INTERVAL_SECONDS}s", "timeout": "5s", "retries": HEALTH_RETRIES,
                "start_period": f"{w.health_start_seconds}s",
            } if w.health else None,
            "hostname": "{{.Service.Name}}-{{.Task.Slot}}",
            # Ingesters flush on shutdown (workloads.FLUSH_GRACE_SECONDS); Swarm kills after this.
            "stop_grace_period": f"{w.stop_grace_seconds}s",
        }
        return docker.Service(
            f"{name}-{w.name}",
            name=f"{self._prefix}-{w.name}",
            task_spec={
                "container_spec": {k: v for k, v in container.items() if v is not None},
                # The internal network first: it is the task's eth0, the interface Loki and Tempo
                # register in their rings (moby's executor creates the container on the first
                # network of the spec and connects the others after).
                "networks_advanceds": [{"name": self.internal_network.id, "aliases": [w.name]}]
                + ([{"name": self.network.id, "aliases": [w.name]}] if w.shipper_facing else []),
                "placement": {
                    **({"constraints": placement} if placement else {}),
                    # Replicas on distinct nodes: replication factor 3 (Loki, Tempo) protects data
                    # only if one node's loss takes one replica and its WAL volume, not two.
                    **({"max_replicas": 1} if w.replicas > 1 else {}),
                } or None,
                "resources": {"limits": {"memory_bytes": memory, "nano_cpus": cpus}},
                "restart_policy": _restart_policy(w),
            },
            mode={"replicated": {"replicas": w.replicas}},
            update_config={"parallelism": 1, "delay": f"{UPDATE_DELAY_SECONDS}s", "order": order, "failure_action": _failure_action(w, "rollback"),
                           "monitor": f"{UPDATE_MONITOR_SECONDS}s"},
            rollback_config={"parallelism": 1, "order": order, "failure_action": _failure_action(w, "pause"), "monitor": f"{UPDATE_MONITOR_SECONDS}s"},
            # `pulumi up` waits until every task runs (healthy where the service has a health check)
            # or the update completed, and fails on a rollback or timeout, instead of reporting a
            # crash-looping service as deployed. Without a health check (Tempo) "running" only
            # means started (kreuzwerker/terraform-provider-docker v4.5.0, bridged by
            # pulumi-docker: resource_docker_service_funcs.go replicatedConsoleLogUpdater). A
            # periodic task is running for seconds a day: waiting for it would time out.
            converge_config=None if w.every_seconds else {"delay": "7s", "timeout": f"{converge_timeout_seconds(w)}s"},
            endpoint_spec=(
                {"mode": "dnsrr"}
                if w.name in DNSRR
                else {"mode": "vip", "ports": [{"target_port": p, "published_port": p} for p in w.ports if w.name == "grafana"] or None}
            ),
            labels=[{"label": "obs-storage.tool", "value": w.tool}] + [{"label": k, "value": v} for k, v in sorted(w.labels.items())],
            opts=self._opts(depends),
        )


class SwarmPlatform:
    """Workload platform of target hetzner: services on the existing Swarm."""

    def __init__(self, docker_provider: docker.Provider, credentials_secret: docker.Secret, placement_constraints: list[str]):
        self.docker_provider, self.credentials_secret, self.placement = docker_provider, credentials_secret, placement_constraints

    def deploy(self, cfg, buckets: dict[str, ToolBucket], identities: dict[str, ToolIdentity]) -> dict:
        layout = swarm_layout(cfg.tools.thanos.cluster_label, tuple(cfg.hetzner.nodes), cfg.hetzner.state_node)
        # The tools, then what watches them: scrape jobs, alert rules, Alertmanager, freshness probes.
        declared = monitoring.attach(cfg, layout, workloads.build(cfg, layout))
        tools = SwarmTools("tools", declared, self.docker_provider, self.credentials_secret, self.placement,
                           cfg.hetzner.state_node, cfg.name_prefix, buckets, identities, receiver_secrets=cfg.receiver_secrets())
        out: dict = {"urls": tools.urls}
        if tools.grafana_admin_password is not None:
            out["grafanaAdminPassword"] = tools.grafana_admin_password
        return out
