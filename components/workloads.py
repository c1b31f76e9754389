"""What runs on a Docker-style platform (local engine or Swarm): one list of platform-neutral
workloads built from the config model and the renderers. `docker_local.LocalTools` turns it
into containers, `swarm.SwarmTools` into services; the differences are the `Layout` parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from components import versions
from components.config import StackConfig
from components.identity import CREDENTIALS_FILE
from components.renderers import CHECKSUM_ENV, Cluster, ObjectStore, dump
from components.renderers import grafana, loki, prometheus, tempo, thanos

GRAFANA_PORT = 3000
GRAFANA_ADMIN_PASSWORD_FILE = "/run/secrets/grafana-admin-password"
# Numeric users the images run as, so secret files can be readable by that user only.
IMAGE_USERS = {"loki": "10001", "tempo": "10001", "thanos": "1001", "prometheus": "65534", "grafana": "472", "minio": "0"}
ADVERTISE_ENV = "MEMBERLIST_ADVERTISE_ADDR"


@dataclass(frozen=True)
class File:
    path: str
    content: str


@dataclass
class Workload:
    name: str  # container/service name, also its DNS name on the private network
    tool: str  # loki | tempo | thanos | grafana: whose bucket and identity it needs
    image: str
    args: list[str]
    health: list[str]  # Docker health check test, ["CMD", ...]
    env: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)  # published for users
    files: list[File] = field(default_factory=list)  # rendered configs (never secrets)
    credentials: bool = False  # mount the S3 shared-credentials file
    volumes: dict[str, str] = field(default_factory=dict)  # volume -> mount path (WAL, recent blocks)
    user: Optional[str] = None
    replicas: int = 1
    # Tasks of one service need distinct volumes (WAL) on a shared node: suffix the task slot.
    per_replica_volumes: bool = False
    # Workloads sharing a node-local volume must run on the same node (Swarm: a node label).
    node_label: Optional[str] = None
    # Replaces the image's entrypoint (a shell wrapper that exports this task's address).
    entrypoint: list[str] = field(default_factory=list)

    @property
    def uid(self) -> str:
        """The user the container runs as, who must be able to read its secret files."""
        if self.user:
            return self.user.split(":")[0]
        return IMAGE_USERS[self.image.split("/")[-1].split(":")[0]]


@dataclass(frozen=True)
class Layout:
    """Platform parameters: how many replicas, how they discover each other."""

    ring_replicas: int  # Loki/Tempo replicas (each with its own WAL)
    interface: Optional[str]  # interface replicas advertise on (Swarm overlay: eth0)
    cluster_label: str
    query_replicas: int = 1

    def cluster(self, service: str, port: int) -> Cluster:
        if self.ring_replicas == 1:
            return Cluster()
        return Cluster(
            replicas=self.ring_replicas,
            replication_factor=self.ring_replicas,
            join_members=(f"dns+tasks.{service}:{port}",),
            interface=self.interface,
            advertise_env=ADVERTISE_ENV,
        )


def _advertising(shell: str, binary: str, args: list[str]) -> tuple[list[str], list[str]]:
    """Entrypoint and args that export this task's own address before starting the tool.

    Memberlist would otherwise advertise the default-route interface, which in a Swarm task is
    docker_gwbridge, unreachable from other nodes (grafana/loki#5610). The hostname resolves to
    the task's address on its only service network.
    """
    script = f'{ADVERTISE_ENV}="$(hostname -i | cut -d" " -f1)"; export {ADVERTISE_ENV}; exec {binary} "$@"'
    return [shell, "-c", script, binary], [*args, "-config.expand-env=true"]


def _wget(url: str, binary: str = "wget") -> list[str]:
    return ["CMD", binary, "-q", "-O", "/dev/null", url]


def object_store(cfg: StackConfig, tool: str, aws_sdk_auth: bool = False) -> ObjectStore:
    s = cfg.storage
    tool_cfg = cfg.tools.enabled()[tool]
    return ObjectStore(
        bucket=tool_cfg.bucket,
        prefix=tool_cfg.prefix,
        region=s.region,
        endpoint=None if cfg.target.value == "aws" else s.endpoint,
        path_style=bool(s.path_style),
        tls=bool(s.tls),
        kms_key_arn=s.kms_key_arn,
        aws_sdk_auth=aws_sdk_auth,
        s3_compatible=cfg.target.value != "aws",
    )


def _credentials_env(store: ObjectStore) -> dict[str, str]:
    env = {"AWS_SHARED_CREDENTIALS_FILE": CREDENTIALS_FILE}
    return {**env, **CHECKSUM_ENV} if store.s3_compatible else env


def build(cfg: StackConfig, layout: Layout) -> list[Workload]:
    pins = cfg.pins
    enabled = cfg.tools.enabled()
    out: list[Workload] = []
    if "loki" in enabled:
        store = object_store(cfg, "loki")
        cluster = layout.cluster("loki", loki.MEMBERLIST_PORT)
        files = [File("/etc/loki/config.yaml", dump(loki.render(cfg, store, cluster)))]
        if cfg.multi_tenant:
            files.append(File("/etc/loki/runtime.yaml", dump(loki.tenant_overrides(cfg))))
        args = ["-config.file=/etc/loki/config.yaml", "-target=all"]
        entrypoint, args = _advertising("/busybox/sh", "/usr/bin/loki", args) if cluster.advertise_env else ([], args)
        out.append(Workload(
            name="loki", tool="loki", image=versions.image(pins, "loki"), args=args, entrypoint=entrypoint,
            health=_wget(f"http://127.0.0.1:{loki.HTTP_PORT}/ready", "/busybox/wget"),
            env=_credentials_env(store), ports=[loki.HTTP_PORT], files=files, credentials=True,
            volumes={"loki-data": loki.DATA_DIR}, replicas=layout.ring_replicas, per_replica_volumes=layout.ring_replicas > 1,
        ))
    if "tempo" in enabled:
        store = object_store(cfg, "tempo")
        cluster = layout.cluster("tempo", tempo.MEMBERLIST_PORT)
        config = tempo.render(cfg, store, cluster)
        args = ["-config.file=/etc/tempo/config.yaml", "-target=all"]
        entrypoint, args = _advertising("/bin/sh", "/tempo", args) if cluster.advertise_env else ([], args)
        out.append(Workload(
            name="tempo", tool="tempo", image=versions.image(pins, "tempo"), args=args, entrypoint=entrypoint,
            health=_wget(f"http://127.0.0.1:{tempo.HTTP_PORT}/ready"),
            env=_credentials_env(store), ports=[tempo.HTTP_PORT, tempo.OTLP_GRPC_PORT, tempo.OTLP_HTTP_PORT],
            files=[File("/etc/tempo/config.yaml", dump(config))], credentials=True,
            volumes={"tempo-data": tempo.DATA_DIR}, replicas=layout.ring_replicas, per_replica_volumes=layout.ring_replicas > 1,
        ))
    if "thanos" in enabled:
        out += _thanos(cfg, layout)
    if enabled:
        urls = {"thanos": f"http://thanos-query:{thanos.HTTP_PORT}", "loki": f"http://loki:{loki.HTTP_PORT}", "tempo": f"http://tempo:{tempo.HTTP_PORT}"}
        out.append(Workload(
            name="grafana", tool="grafana", image=versions.image(pins, "grafana"), args=[],
            health=_wget(f"http://127.0.0.1:{GRAFANA_PORT}/api/health"),
            env={
                # Grafana reads `<VAR>__FILE` as a path to the value: the password stays a file.
                "GF_SECURITY_ADMIN_PASSWORD__FILE": GRAFANA_ADMIN_PASSWORD_FILE,
                "GF_ANALYTICS_REPORTING_ENABLED": "false",
            },
            ports=[GRAFANA_PORT],
            files=[File("/etc/grafana/provisioning/datasources/obs-storage.yaml", dump(grafana.render(cfg, urls)))],
        ))
    return out


def _thanos(cfg: StackConfig, layout: Layout) -> list[Workload]:
    pins = cfg.pins
    image = versions.image(pins, "thanos")
    store = object_store(cfg, "thanos")
    objstore = File(thanos.OBJSTORE_FILE, dump(thanos.objstore(store)))
    env = _credentials_env(store)
    ready = _wget(f"http://127.0.0.1:{thanos.HTTP_PORT}/-/ready")
    thanos_cfg = cfg.tools.thanos
    receive = thanos_cfg.mode == "receive"
    endpoints = [f"thanos-store:{thanos.GRPC_PORT}"]
    out: list[Workload] = []
    receive_names = [f"thanos-receive-{i}" for i in range(thanos_cfg.receive_replication_factor)] if receive else []

    scrape = {"prometheus": [f"localhost:{prometheus.PORT}"], "thanos": [f"thanos-query:{thanos.HTTP_PORT}", f"thanos-store:{thanos.HTTP_PORT}"]}
    receive_url = f"http://{receive_names[0]}:{thanos.RECEIVE_REMOTE_WRITE_PORT}/api/v1/receive" if receive else None
    prom_config = prometheus.render(cfg, layout.cluster_label, "prometheus-0", scrape, receive_url)
    out.append(Workload(
        name="prometheus", tool="thanos", image=versions.image(pins, "prometheus"), args=prometheus.flags(cfg),
        health=_wget(f"http://127.0.0.1:{prometheus.PORT}/-/ready"), ports=[prometheus.PORT],
        files=[File("/etc/prometheus/prometheus.yml", dump(prom_config))],
        # Recent blocks only (prometheus.LOCAL_RETENTION); older ones are in the bucket.
        volumes={"prometheus-data": prometheus.TSDB_PATH}, node_label="prometheus",
    ))
    if receive:
        hashring = json.dumps([{"hashring": "default", "endpoints": [f"{n}:{thanos.GRPC_PORT}" for n in receive_names]}])
        for name in receive_names:
            out.append(Workload(
                name=name, tool="thanos", image=image,
                args=thanos.receive_args(cfg, name, f"{name}:{thanos.GRPC_PORT}", "/etc/thanos/hashrings.json", data_dir="/tmp/thanos-receive"),
                health=ready, env=env, files=[objstore, File("/etc/thanos/hashrings.json", hashring)], credentials=True,
            ))
            endpoints.append(f"{name}:{thanos.GRPC_PORT}")
    else:
        out.append(Workload(
            name="thanos-sidecar", tool="thanos", image=image,
            args=thanos.sidecar_args(f"http://prometheus:{prometheus.PORT}", prometheus.TSDB_PATH),
            health=ready, env=env, files=[objstore], credentials=True,
            volumes={"prometheus-data": prometheus.TSDB_PATH}, node_label="prometheus",
            # Shares Prometheus' TSDB volume, so it runs as Prometheus' user (nobody).
            user="65534:65534",
        ))
        endpoints.append(f"thanos-sidecar:{thanos.GRPC_PORT}")
    # Store and compactor keep only disposable caches and working files: no volume to lose.
    out.append(Workload(
        name="thanos-store", tool="thanos", image=image, args=thanos.store_args(data_dir="/tmp/thanos-store"),
        health=ready, env=env, files=[objstore], credentials=True,
    ))
    out.append(Workload(
        name="thanos-compact", tool="thanos", image=image, args=thanos.compact_args(cfg, data_dir="/tmp/thanos-compact"),
        health=ready, env=env, files=[objstore], credentials=True,
    ))
    out.append(Workload(
        name="thanos-query", tool="thanos", image=image, args=thanos.query_args(endpoints),
        health=ready, ports=[thanos.HTTP_PORT], replicas=layout.query_replicas,
    ))
    return out
