"""What runs on a Docker-style platform (local engine or Swarm): one list of platform-neutral
workloads built from the config model and the renderers. `docker_local.LocalTools` turns it
into containers, `swarm.SwarmTools` into services; the differences are the `Layout` parameters.

Every health check, entrypoint, user and volume here must be something the pinned image provides
(`versions.ImageFacts`, enforced by tests/test_images.py): Loki and Tempo images have no shell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from components.core import thanos_topology, versions
from components.core.config import StackConfig
from components.core.identity import CREDENTIALS_FILE
from components.core.renderers import CHECKSUM_ENV, Cluster, ObjectStore, dump, object_store
from components.core.renderers import grafana, loki, prometheus, tempo, thanos

GRAFANA_PORT = 3000
GRAFANA_ADMIN_PASSWORD_FILE = "/run/secrets/grafana-admin-password"
GRAFANA_DATA = "/var/lib/grafana"
ETCD_PORT = 2379
ETCD_PEER_PORT = 2380
# dskit memberlist's default bind port (memberlist.bind_port).
MEMBERLIST_PORT = 7946
ETCD_DATA = "/var/lib/etcd"  # the image's WORKDIR (etcd runs as root)
# etcd's backend quota. The rings are small: with history compacted every 5 minutes the database
# holds a few MB (heartbeats rewrite about 520 KB/min with 6 members), so 256 MiB leaves two orders
# of magnitude before the NOSPACE alarm (etcd v3.6.14 server/storage/quota.go: default 2 GiB)
# while keeping the memory-mapped file well inside the service's 512 MiB limit.
ETCD_QUOTA_BYTES = 256 * 1024**2
# A restarting member defragments its database first when that frees at least this much
# (--bootstrap-defrag-threshold-megabytes, etcd v3.6.14 server/embed/config.go): every rolling
# update or restart compacts the file; docs/hetzner-swarm.md says how to defragment by hand.
ETCD_BOOTSTRAP_DEFRAG_MB = 16
# Between restarts only a defragmentation returns the pages that compaction frees (etcd v3.6.14
# server/storage/backend/backend.go defrag), and the image has no shell to loop on one: a one-shot
# `etcdctl defrag --cluster` task that Swarm starts again this long after it exits
# (components/docker/swarm.py, `every_seconds`).
RING_DEFRAG_EVERY_SECONDS = 24 * 3600
# Per member; etcdctl's default is 5 s (etcdctl/ctlv3/ctl.go at v3.6.14). Measured with v3.6.14:
# 26-74 ms for a member of the rings' size (2 MB), 1.8-2.3 s for one holding 100 MB; the quota
# allows 256 MiB.
RING_DEFRAG_TIMEOUT_SECONDS = 60
# Health check windows (Docker: failures during start_period do not count). Loki answers /ready
# only after replaying its WAL, and Thanos store only after its initial bucket sync (its index
# headers): both can take many minutes on a large WAL or bucket, so they get longer windows than
# the default; a window too short kills the task in a loop and never lets it start.
DEFAULT_HEALTH_START_SECONDS = 60
LOKI_HEALTH_START_SECONDS = 600
THANOS_STORE_HEALTH_START_SECONDS = 900
RECEIVE_DATA = "/tmp"
# Long enough for an ingester to flush every in-memory chunk/block on a normal stop (Loki
# `ingester.wal.flush_on_shutdown`, Tempo `flush_all_on_shutdown`); a Spot reclaim gives 2 min.
FLUSH_GRACE_SECONDS = 90


@dataclass(frozen=True)
class File:
    path: str
    content: str


@dataclass
class Workload:
    name: str  # the workload's DNS name on the stack's private network
    tool: str  # loki | tempo | thanos | grafana | ring: whose bucket and identity it needs
    pin: str  # key of components/core/versions.py DEFAULT_PINS
    image: str
    args: list[str]
    # Docker health check test (["CMD", <executable>, ...]); None where the image has nothing that
    # could probe it (say why in `health_note`).
    health: Optional[list[str]]
    health_note: str = ""
    env: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)  # published for users
    files: list[File] = field(default_factory=list)  # rendered configs (never secrets)
    credentials: bool = False  # mount the S3 shared-credentials file
    volumes: dict[str, str] = field(default_factory=dict)  # volume -> mount path (WAL, TSDB, database)
    user: Optional[str] = None  # only when not the image's own user
    replicas: int = 1
    # Tasks of one service need distinct volumes (WAL) on a shared node: suffix the task slot.
    per_replica_volumes: bool = False
    # Keeps state on a node-local volume that must not move (Swarm: pinned to `node`, else to
    # hetzner.stateNode).
    node_local_state: bool = False
    entrypoint: list[str] = field(default_factory=list)
    stop_grace_seconds: int = 10
    # Workloads that must exist first (by name), e.g. the ring store.
    after: list[str] = field(default_factory=list)
    # Labels on the container or service (the compactor names the bucket it compacts, which the
    # policy pack checks against the buckets the stack owns).
    labels: dict[str, str] = field(default_factory=dict)
    # Thanos spoke on target local: also attach to the hub's network (its MinIO, its Receive, and
    # the hub's Query reaching this sidecar).
    joins_hub_network: bool = False
    # Swarm: the one node (hostname) this workload runs on, for state that is per node by design
    # (one ring-store member each).
    node: Optional[str] = None
    # Seconds after start during which a failing health check does not count.
    health_start_seconds: int = DEFAULT_HEALTH_START_SECONDS
    # Swarm: also attach to the shared network that other stacks' shippers join (push endpoints).
    shipper_facing: bool = False
    # Prometheus and its Thanos sidecar: the `replica` external label of their pair, which also
    # joins the sidecar's series to its own Prometheus' (monitoring.PAIR_LABEL).
    prometheus_replica: Optional[str] = None
    # Secret files the platform mounts: path -> receiver name in `StackConfig.receiver_secrets()`.
    receiver_secret_files: dict[str, str] = field(default_factory=dict)
    # Swarm: a one-shot command, started again this many seconds after each run ends (None: a
    # long-running service).
    every_seconds: Optional[int] = None

    @property
    def uid(self) -> str:
        """The user the container runs as, who must be able to read its secret files."""
        if self.user:
            return self.user.split(":")[0]
        return versions.DEFAULT_PINS[self.pin].facts.user


@dataclass(frozen=True)
class Layout:
    """Platform parameters: how many replicas, how they find each other."""

    ring_replicas: int  # Loki/Tempo replicas (each with its own WAL)
    interface: Optional[str]  # interface replicas register in the rings (Swarm overlay: eth0)
    cluster_label: str
    query_replicas: int = 1
    # Swarm: the nodes that each run one ring-store member (hetzner.nodes).
    ring_nodes: tuple[str, ...] = ()
    # Swarm: one node per Prometheus + sidecar pair, each pair pinned to its node with a volume
    # there. Empty: one pair, wherever the platform puts it (local engine, EC2 monitoring host).
    prometheus_nodes: tuple[str, ...] = ()

    def ring_members(self) -> list[str]:
        return [f"ring-kv-{i}" for i in range(1, len(self.ring_nodes) + 1)]
    # EC2 fleets (components/ec2): the Cloud Map namespace every workload is found in as
    # <name>.<domain>, rings in memberlist joined through those names, each member's address from
    # the environment (`address`). Names in `colocated` run beside their callers (one Compose
    # project) and keep their short names.
    domain: str = ""
    ring_store: str = "etcd"
    address: Optional[str] = None
    colocated: frozenset[str] = frozenset()

    def host(self, name: str) -> str:
        """The name `name` is reached at from another workload."""
        return f"{name}.{self.domain}" if self.domain and name not in self.colocated else name

    def endpoint(self, name: str, port: int) -> str:
        """A Thanos --endpoint: every instance behind a Cloud Map name (dns+: one per A record)."""
        return f"dns+{self.host(name)}:{port}" if self.domain else f"{name}:{port}"

    def peers(self, name: str) -> str:
        """The DNS name that lists every replica of `name` (Swarm: tasks.<name>)."""
        return self.host(name) if self.domain else f"tasks.{name}"

    def cluster(self, tool: str = "") -> Cluster:
        if self.ring_replicas == 1:
            return Cluster()
        if self.ring_store == "memberlist":
            return Cluster(
                replicas=self.ring_replicas,
                replication_factor=self.ring_replicas,
                kvstore="memberlist",
                join_members=(f"dns+{self.host(tool)}:{MEMBERLIST_PORT}",),
                address=self.address,
            )
        return Cluster(
            replicas=self.ring_replicas,
            replication_factor=self.ring_replicas,
            kvstore="etcd",
            # Every member: the client fails over to the others when one is gone.
            etcd_endpoints=tuple(f"{m}:{ETCD_PORT}" for m in self.ring_members()),
            interface=self.interface,
        )


def _wget(executable: str, url: str) -> list[str]:
    return ["CMD", executable, "-q", "-O", "/dev/null", url]




def _credentials_env(store: ObjectStore) -> dict[str, str]:
    env = {"AWS_SHARED_CREDENTIALS_FILE": CREDENTIALS_FILE}
    return {**env, **CHECKSUM_ENV} if store.s3_compatible else env


def build(cfg: StackConfig, layout: Layout) -> list[Workload]:
    pins = cfg.pins
    enabled = cfg.tools.enabled()
    cluster = layout.cluster()
    # memberlist: each tool joins its own members (etcd and the in-memory store ignore the name).
    loki_cluster, tempo_cluster = layout.cluster("loki"), layout.cluster("tempo")
    out: list[Workload] = []
    ring = layout.ring_members() if cluster.kvstore == "etcd" and ({"loki", "tempo"} & set(enabled)) else []
    out += [_ring_member(cfg, layout, i) for i in range(len(ring))]
    if ring:
        out.append(_ring_defrag(cfg, layout))
    if "loki" in enabled:
        store = object_store(cfg, "loki")
        files = [File("/etc/loki/config.yaml", dump(loki.render(cfg, store, loki_cluster)))]
        if cfg.multi_tenant:
            files.append(File("/etc/loki/runtime.yaml", dump(loki.tenant_overrides(cfg))))
        out.append(Workload(
            name="loki", tool="loki", pin="loki", image=versions.image(pins, "loki"),
            args=["-config.file=/etc/loki/config.yaml", "-target=all"],
            # The image has no shell or wget; Loki checks itself (cmd/loki/health.go, >= 3.6.5).
            health=["CMD", "/usr/bin/loki", "-health", f"-health.url=http://127.0.0.1:{loki.HTTP_PORT}/ready"],
            health_note="loki -health (GET /ready)", health_start_seconds=LOKI_HEALTH_START_SECONDS, shipper_facing=True,
            env=_credentials_env(store), ports=[loki.HTTP_PORT], files=files, credentials=True,
            volumes={"loki-data": loki.DATA_DIR}, replicas=layout.ring_replicas, per_replica_volumes=layout.ring_replicas > 1,
            stop_grace_seconds=FLUSH_GRACE_SECONDS, after=ring,
        ))
    if "tempo" in enabled:
        store = object_store(cfg, "tempo")
        out.append(Workload(
            name="tempo", tool="tempo", pin="tempo", image=versions.image(pins, "tempo"),
            # `-target=all` forces the ingester ring in memory with replication factor 1 on
            # 127.0.0.1 (cmd/tempo/main.go at v2.10.8, "if we're in single binary mode force all
            # rings ... in memory"): several replicas would be islands. The scalable single binary
            # runs the same modules (cmd/tempo/app/modules.go) and keeps the configured rings.
            args=["-config.file=/etc/tempo/config.yaml", f"-target={'all' if cluster.replicas == 1 else 'scalable-single-binary'}"],
            # Tempo 2.x is distroless with no shell, no wget and no self-check (grafana/tempo#6536,
            # fixed only in 3.0): nothing inside the container can probe it. Crashes still restart
            # the task and roll back a Swarm update; readiness is checked from outside by
            # `tools.verify --only tools` (GET /ready on the published port).
            health=None,
            health_note="none in the image; tools.verify checks GET /ready from outside", shipper_facing=True,
            env=_credentials_env(store), ports=[tempo.HTTP_PORT, tempo.OTLP_GRPC_PORT, tempo.OTLP_HTTP_PORT],
            files=[File("/etc/tempo/config.yaml", dump(tempo.render(cfg, store, tempo_cluster)))], credentials=True,
            volumes={"tempo-data": tempo.DATA_DIR}, replicas=layout.ring_replicas, per_replica_volumes=layout.ring_replicas > 1,
            stop_grace_seconds=FLUSH_GRACE_SECONDS, after=ring,
        ))
    if "thanos" in enabled:
        out += _thanos(cfg, layout)
    # A Thanos spoke has no Query of its own: the hub's Grafana shows its data.
    shown = {tool for tool in enabled if tool != "thanos" or cfg.tools.thanos.owns_bucket}
    if shown:
        urls = {"thanos": f"http://{layout.host('thanos-query')}:{thanos.HTTP_PORT}", "loki": f"http://{layout.host('loki')}:{loki.HTTP_PORT}",
                "tempo": f"http://{layout.host('tempo')}:{tempo.HTTP_PORT}"}
        urls = {tool: url for tool, url in urls.items() if tool in shown}
        out.append(Workload(
            name="grafana", tool="grafana", pin="grafana", image=versions.image(pins, "grafana"), args=[],
            health=_wget("/usr/bin/wget", f"http://127.0.0.1:{GRAFANA_PORT}/api/health"), health_note="wget /api/health",
            env={
                # Grafana reads `<VAR>__FILE` as a path to the value: the password stays a file.
                "GF_SECURITY_ADMIN_PASSWORD__FILE": GRAFANA_ADMIN_PASSWORD_FILE,
                "GF_ANALYTICS_REPORTING_ENABLED": "false",
            },
            ports=[GRAFANA_PORT],
            files=[File("/etc/grafana/provisioning/datasources/obs-storage.yaml", dump(grafana.render(cfg, urls)))],
            # Users and UI changes (SQLite) outlive the container. Not pinned to the state node:
            # datasources and dashboards are provisioned from files, so after a node loss Swarm
            # starts Grafana on another node (a new, empty volume there) and it shows the same data.
            volumes={"grafana-data": GRAFANA_DATA},
        ))
    return out


def _ring_member(cfg: StackConfig, layout: Layout, index: int) -> Workload:
    """One member of the three-member etcd that holds the rings, pinned to its own node: any one
    node can be lost and the other two keep a quorum (docs/hetzner-swarm.md has the measured costs)."""
    members = layout.ring_members()
    name = members[index]
    peers = ",".join(f"{m}=http://{m}:{ETCD_PEER_PORT}" for m in members)
    return Workload(
        name=name, tool="ring", pin="etcd", image=versions.image(cfg.pins, "etcd"),
        entrypoint=["/usr/local/bin/etcd"],
        args=[
            f"--name={name}",
            f"--data-dir={ETCD_DATA}/default.etcd",
            f"--listen-client-urls=http://0.0.0.0:{ETCD_PORT}",
            f"--advertise-client-urls=http://{name}:{ETCD_PORT}",
            f"--listen-peer-urls=http://0.0.0.0:{ETCD_PEER_PORT}",
            # Service names: each member's Swarm service keeps one virtual IP whatever node or
            # task runs it, so a peer URL stays valid across restarts.
            f"--initial-advertise-peer-urls=http://{name}:{ETCD_PEER_PORT}",
            f"--initial-cluster={peers}",
            # Read only when the data directory is empty (first start); a restart rejoins from it.
            "--initial-cluster-state=new",
            f"--initial-cluster-token={cfg.name_prefix}-ring-kv",
            # Heartbeats rewrite the ring every few seconds; without compaction the history fills
            # the quota (auto compaction is off by default, server/embed/config.go at v3.6.14).
            "--auto-compaction-mode=periodic",
            "--auto-compaction-retention=5m",
            f"--quota-backend-bytes={ETCD_QUOTA_BYTES}",
            f"--bootstrap-defrag-threshold-megabytes={ETCD_BOOTSTRAP_DEFRAG_MB}",
        ],
        # A serializable read answers from this member alone: the check restarts a member that no
        # longer serves, not one that has lost its quorum or raised the NOSPACE alarm, which
        # `etcdctl endpoint health` reports as failures (etcdctl/ctlv3/command/ep_command.go at
        # v3.6.14: a quorum read, then the alarm list) and a restart cures neither; alerts watch
        # those (renderers/alerts.py _ring_rules). etcdctl's default endpoint is 127.0.0.1:2379.
        health=["CMD", "/usr/local/bin/etcdctl", "get", "--consistency=s", "obs-storage-liveness"],
        health_note="etcdctl get --consistency=s (this member serves reads)",
        # The member's identity and the rings' revision live here: a member that restarts empty
        # cannot rejoin under its name, and ring clients would resume their watch at a revision
        # the store no longer has (docs/hetzner-swarm.md).
        volumes={f"{name}-data": ETCD_DATA},
        node=layout.ring_nodes[index],
        # One member at a time on a rolling update: the previous must have converged first.
        after=members[:index][-1:],
    )


def _ring_defrag(cfg: StackConfig, layout: Layout) -> Workload:
    """Defragments every ring-store member once a day. `--cluster` takes the member list from any
    endpoint that answers and defragments the members one after another, each within
    --command-timeout (etcdctl/ctlv3/command/defrag_command.go at v3.6.14); a defragmenting member
    answers nothing until it is done, the other two keep the quorum (docs/hetzner-swarm.md has the
    measured durations). Not `ring-kv-*`: that name would make it a scrape target."""
    members = layout.ring_members()
    return Workload(
        name="ring-defrag", tool="ring", pin="etcd", image=versions.image(cfg.pins, "etcd"),
        entrypoint=["/usr/local/bin/etcdctl"],
        args=[
            "--endpoints=" + ",".join(f"http://{m}:{ETCD_PORT}" for m in members),
            f"--command-timeout={RING_DEFRAG_TIMEOUT_SECONDS}s",
            "defrag", "--cluster",
        ],
        health=None,
        health_note="a one-shot command that exits when every member is defragmented",
        every_seconds=RING_DEFRAG_EVERY_SECONDS,
        after=members[-1:],
    )


def _thanos(cfg: StackConfig, layout: Layout) -> list[Workload]:
    pins = cfg.pins
    image = versions.image(pins, "thanos")
    store = object_store(cfg, "thanos")
    objstore = File(thanos.OBJSTORE_FILE, dump(thanos.objstore(store)))
    env = _credentials_env(store)
    ready = _wget("/bin/wget", f"http://127.0.0.1:{thanos.HTTP_PORT}/-/ready")
    thanos_cfg = cfg.tools.thanos
    receive = thanos_cfg.mode == "receive"
    spoke = not thanos_cfg.owns_bucket
    endpoints = [layout.endpoint("thanos-store", thanos.GRPC_PORT), *thanos_topology.sidecar_endpoints(cfg)]
    out: list[Workload] = []
    receive_names = [f"thanos-receive-{i}" for i in range(thanos_cfg.receive_replication_factor)] if receive and not spoke else []

    receive_url = f"http://{layout.host(receive_names[0])}:{thanos.RECEIVE_REMOTE_WRITE_PORT}/api/v1/receive" if receive_names else None
    if spoke:
        receive_url = thanos_cfg.hub_bucket.receive_url if receive else None
    pairs = prometheus_pairs(layout)
    for pair in pairs:
        # No scrape jobs here: every platform passes these workloads through monitoring.attach,
        # whose jobs (one per workload it finds) replace the config's (prometheus.with_monitoring).
        prom_config = prometheus.render(cfg, layout.cluster_label, pair.replica, {}, receive_url)
        out.append(Workload(
            name=pair.prometheus, tool="thanos", pin="prometheus", image=versions.image(pins, "prometheus"), args=prometheus.flags(cfg),
            health=_wget("/bin/wget", f"http://127.0.0.1:{prometheus.PORT}/-/ready"), health_note="wget /-/ready", ports=[prometheus.PORT],
            files=[File("/etc/prometheus/prometheus.yml", dump(prom_config))],
            # Recent blocks only (prometheus.LOCAL_RETENTION); older ones are in the bucket.
            volumes={pair.volume: prometheus.TSDB_PATH}, node_local_state=True, node=pair.node,
            joins_hub_network=spoke and receive, prometheus_replica=pair.replica,
        ))
        if not receive:
            out.append(_sidecar(cfg, image, env, objstore, ready, spoke, pair))
    if spoke:
        # Only this cluster's Prometheus and sidecars: the hub runs the rest.
        return out
    if receive:
        hashring = json.dumps([{"hashring": "default", "endpoints": [f"{layout.host(n)}:{thanos.GRPC_PORT}" for n in receive_names]}])
        for name in receive_names:
            out.append(Workload(
                name=name, tool="thanos", pin="thanos", image=image,
                args=thanos.receive_args(cfg, name, f"{layout.host(name)}:{thanos.GRPC_PORT}", "/etc/thanos/hashrings.json", data_dir=f"{RECEIVE_DATA}/receive"),
                health=ready, health_note="wget /-/ready", env=env,
                files=[objstore, File("/etc/thanos/hashrings.json", hashring)], credentials=True,
                # Acknowledged samples live in the TSDB/WAL until the next 2h upload: keep them on a
                # volume. The image's user (1001) can write only /tmp, whose mode (1777) a new
                # volume mounted there takes over.
                volumes={f"{name}-data": RECEIVE_DATA},
            ))
            endpoints.append(layout.endpoint(name, thanos.GRPC_PORT))
    else:
        endpoints += [f"{pair.sidecar}:{thanos.GRPC_PORT}" for pair in pairs]
    # Store and compactor keep only disposable caches and working files: no volume to lose.
    out.append(Workload(
        name="thanos-store", tool="thanos", pin="thanos", image=image, args=thanos.store_args(data_dir="/tmp/thanos-store"),
        health=ready, health_note="wget /-/ready", env=env, files=[objstore], credentials=True,
        health_start_seconds=THANOS_STORE_HEALTH_START_SECONDS,
    ))
    out.append(Workload(
        name="thanos-compact", tool="thanos", pin="thanos", image=image, args=thanos.compact_args(cfg, data_dir="/tmp/thanos-compact"),
        health=ready, health_note="wget /-/ready", env=env, files=[objstore], credentials=True,
        labels={thanos.COMPACTOR_BUCKET_LABEL: thanos_cfg.bucket},
    ))
    out.append(Workload(
        name="thanos-query", tool="thanos", pin="thanos", image=image, args=thanos.query_args(endpoints),
        health=ready, health_note="wget /-/ready", ports=[thanos.HTTP_PORT], replicas=layout.query_replicas,
    ))
    return out


@dataclass(frozen=True)
class PrometheusPair:
    """One Prometheus and the Thanos sidecar that reads its TSDB: one volume, one node."""

    prometheus: str  # workload names
    sidecar: str
    volume: str
    replica: str  # the `replica` external label (renderers/thanos.py REPLICA_LABEL)
    node: Optional[str]  # Swarm: the node both are pinned to


def prometheus_pairs(layout: Layout) -> list[PrometheusPair]:
    """One pair per node of `layout.prometheus_nodes` (Swarm: two), else one. The first pair keeps
    the names, volume and replica label a single Prometheus has always had, so that adding the
    second one replaces nothing and loses no local data."""
    nodes: tuple[Optional[str], ...] = layout.prometheus_nodes or (None,)
    return [
        PrometheusPair("prometheus", "thanos-sidecar", "prometheus-data", "prometheus-0", node) if i == 0
        else PrometheusPair(f"prometheus-{i}", f"thanos-sidecar-{i}", f"prometheus-{i}-data", f"prometheus-{i}", node)
        for i, node in enumerate(nodes)
    ]


def _sidecar(cfg: StackConfig, image: str, env: dict[str, str], objstore: File, ready: list[str], spoke: bool, pair: PrometheusPair) -> Workload:
    # On a spoke the sidecar also sits on the hub's network, where `prometheus` is the hub's:
    # it finds its own Prometheus by container/service name, unique on both networks.
    host = f"{cfg.name_prefix}-{pair.prometheus}" if spoke else pair.prometheus
    return Workload(
        name=pair.sidecar, tool="thanos", pin="thanos", image=image,
        args=thanos.sidecar_args(f"http://{host}:{prometheus.PORT}", prometheus.TSDB_PATH),
        health=ready, health_note="wget /-/ready", env=env, files=[objstore], credentials=True,
        # Reads the TSDB Prometheus writes: same volume, same node, same user (nobody). The
        # volume's owner comes from the Prometheus image, which has /prometheus; this image
        # does not, so its mount never changes the owner (moby CopyImagePathContent).
        volumes={pair.volume: prometheus.TSDB_PATH}, node_local_state=True, node=pair.node,
        user="65534:65534",
        joins_hub_network=spoke, prometheus_replica=pair.replica,
    )
