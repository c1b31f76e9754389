"""Thanos across clusters: one hub per bucket, any number of spokes (`tools.thanos.role`).

- The hub owns the Thanos bucket and runs the store gateway, Query, the bucket's one compactor and
  Receive (mode receive). It exports `thanosHub`: everything a spoke needs, and the spokes it lists
  with their cluster labels.
- A spoke runs Prometheus whose sidecar uploads to the hub's bucket (or which remote-writes to the
  hub's Receive) under its own identity, which may list, read and write but never delete. It
  declares no bucket, store gateway, Query or compactor. It reads the hub with a Pulumi
  `StackReference` to `tools.thanos.hub`; no value of the hub is ever copied into its config.

Why the rules (thanos-io/thanos v0.42.4 docs/components/compact.md): the compactor "must be
deployed as a singleton against a bucket", and it groups blocks into streams by their external
labels, so two clusters with one label set would overlap and halt it (docs/components/sidecar.md:
external labels must be unique "in the overall Thanos system").

Cluster labels stay unique because the hub lists every spoke with its label (config refuses a
duplicate or the hub's own label) and a spoke refuses to run unless the hub lists it with the
label it uses. Everything a spoke checks against the hub fails here, as one line, before any
resource but the StackReference is declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi

from components.core.config import ConfigError, StackConfig, Target
from components.core.renderers import ObjectStore
from components.core.renderers import thanos as thanos_renderer

HUB_OUTPUT = "thanosHub"
SPOKE_OUTPUT = "thanosSpoke"
# What every thanosHub output carries; a hub exporting less predates this module.
HUB_KEYS = ("role", "target", "bucket", "endpoint", "region", "prefix", "pathStyle", "tls", "mode", "clusterLabel", "spokes")
HETZNER_NOTE = (
    "Hetzner has no per-bucket credentials: a spoke uses a key pair of the hub's Hetzner project, "
    "which reaches every bucket of that project, not only the Thanos bucket"
)


@dataclass(frozen=True)
class HubBucket:
    """The hub's Thanos bucket and services as a spoke uses them, read from `thanosHub`."""

    stack: str  # the hub's fully qualified stack name
    target: str
    bucket: str
    endpoint: str
    region: str
    prefix: str
    path_style: bool
    tls: bool
    mode: str
    cluster_label: str
    spokes: tuple[dict, ...] = ()
    arn: Optional[str] = None
    kms_key_arn: Optional[str] = None
    receive_url: Optional[str] = None
    # Docker targets: the hub's network, which a spoke on the same engine or Swarm joins.
    docker_network: Optional[str] = None
    # target local: the hub's MinIO API as seen from this machine.
    minio_api: Optional[str] = None

    @classmethod
    def from_output(cls, stack: str, out: dict[str, Any]) -> "HubBucket":
        return cls(
            stack=stack, target=out["target"], bucket=out["bucket"], endpoint=out["endpoint"], region=out["region"],
            prefix=out["prefix"], path_style=bool(out["pathStyle"]), tls=bool(out["tls"]), mode=out["mode"],
            cluster_label=out["clusterLabel"], spokes=tuple(out["spokes"]), arn=out.get("arn"), kms_key_arn=out.get("kmsKeyArn"),
            receive_url=out.get("receiveUrl"), docker_network=out.get("dockerNetwork"), minio_api=out.get("minioApi"),
        )

    def object_store(self, aws_sdk_auth: bool = False) -> ObjectStore:
        aws = self.target == Target.AWS.value
        return ObjectStore(
            bucket=self.bucket, prefix=self.prefix, region=self.region,
            # On AWS the SDKs derive the bucket's regional endpoint from its region.
            endpoint=None if aws else self.endpoint,
            path_style=self.path_style, tls=self.tls, kms_key_arn=self.kms_key_arn,
            aws_sdk_auth=aws_sdk_auth, s3_compatible=not aws,
        )


class SharedBucket:
    """The hub's bucket where an identity backend expects a `ToolBucket`: same attributes, no
    resource. A spoke grants its own identity access to it and declares nothing on it."""

    def __init__(self, hub: HubBucket):
        self.hub = hub
        self.bucket_name: pulumi.Output[str] = pulumi.Output.from_input(hub.bucket)
        self.arn: Optional[pulumi.Output[str]] = pulumi.Output.from_input(hub.arn) if hub.arn else None
        self.endpoint, self.region, self.prefix = hub.endpoint, hub.region, hub.prefix


@dataclass
class Hub:
    """What a spoke knows of its hub: the checked bucket coordinates and the reference itself
    (for secret outputs such as the local MinIO's root login)."""

    bucket: HubBucket
    reference: Optional[pulumi.StackReference] = None
    shared: SharedBucket = field(init=False)

    def __post_init__(self) -> None:
        self.shared = SharedBucket(self.bucket)


# ---------------------------------------------------------------- the spoke's checks
def own_stack_name() -> str:
    return f"{pulumi.get_organization() or 'organization'}/{pulumi.get_project()}/{pulumi.get_stack()}"


def check_hub(cfg: StackConfig, stack: str, own_name: str, hub_out: Any, spoke_out: Any = None) -> HubBucket:
    """The hub's bucket from what `tools.thanos.hub` exports, or ConfigError naming key and fix."""
    thanos = cfg.tools.thanos
    name = thanos.hub
    assert thanos.role == "spoke" and name is not None
    if not isinstance(hub_out, dict):
        if isinstance(spoke_out, dict):
            why = f"is itself a spoke (of {spoke_out.get('hub', '?')})"
        else:
            why = "exports no thanosHub output (Thanos disabled there, not a hub, or not yet deployed)"
        raise ConfigError(stack, "tools.thanos.hub", name, f"names a stack that is not a Thanos hub: it {why}",
                          "name the stack that owns the Thanos bucket, and run `pulumi up` on it first")
    missing = [k for k in HUB_KEYS if k not in hub_out]
    if missing or hub_out.get("role") != "hub":
        raise ConfigError(stack, "tools.thanos.hub", name, f"exports a thanosHub output without {', '.join(missing) or 'role hub'}",
                          "run `pulumi up` on the hub with this version first")
    hub = HubBucket.from_output(name, hub_out)
    if hub.target != cfg.target.value:
        raise ConfigError(stack, "tools.thanos.hub", name, f"is a hub on target {hub.target}, this spoke is on {cfg.target.value}",
                          f"run the spoke on target {hub.target}, or point it at a hub on {cfg.target.value}")
    if thanos.mode == "receive" and not hub.receive_url:
        raise ConfigError(stack, "tools.thanos.mode", "receive",
                          f"remote-writes to the hub, but {name} exports no Receive URL" + ("" if hub.mode == "receive" else " (it runs no Receive)"),
                          "set tools.thanos.mode to sidecar, or give the hub mode receive and tools.thanos.receiveUrl")
    region = cfg.storage.region
    if region != hub.region and not thanos.cross_region:
        raise ConfigError(stack, "storage.region", region,
                          f"differs from the region of the hub's bucket ({hub.region}); every upload and read would cross regions, "
                          "and inter-region transfer is billed per GB",
                          f"run the spoke in {hub.region}, or set tools.thanos.crossRegion to true to accept the transfer cost")
    listed = {s.get("stack"): s for s in hub.spokes if isinstance(s, dict)}
    if own_name not in listed:
        raise ConfigError(stack, "tools.thanos.hub", name, f"does not list this stack ({own_name}) among its spokes",
                          f"add {{stack: {own_name}, clusterLabel: {thanos.cluster_label}}} to the hub's tools.thanos.spokes "
                          "and run `pulumi up` on the hub first")
    label = thanos.cluster_label
    if label == hub.cluster_label:
        raise ConfigError(stack, "tools.thanos.clusterLabel", label, "is the hub's own cluster label; their blocks would overlap in the one bucket",
                          "give the spoke the label the hub lists for it")
    if listed[own_name].get("clusterLabel") != label:
        raise ConfigError(stack, "tools.thanos.clusterLabel", label,
                          f"differs from the label the hub lists for this stack ({listed[own_name].get('clusterLabel')}); "
                          "the hub's list is what keeps labels unique",
                          f"set tools.thanos.clusterLabel to {listed[own_name].get('clusterLabel')}, or change the hub's entry and update the hub first")
    return hub


def read_hub(cfg: StackConfig, stack: str) -> Hub:
    """Read and check the hub a spoke names. The values are needed as plain data (they go into
    rendered configs and policies, which are built before any resource), so the reference's
    outputs are awaited here, the way the SDK's own synchronous invokes wait
    (pulumi/runtime/invoke.py). A preview reads stack references for real, so they are known."""
    from pulumi.runtime.sync_await import _sync_await

    reference = pulumi.StackReference("thanos-hub", stack_name=cfg.tools.thanos.hub)
    hub_out = _sync_await(reference.get_output_details(HUB_OUTPUT)).value
    spoke_out = None if hub_out is not None else _sync_await(reference.get_output_details(SPOKE_OUTPUT)).value
    hub = check_hub(cfg, stack, own_stack_name(), hub_out, spoke_out)
    cfg.tools.thanos.use_hub(hub)
    return Hub(hub, reference)


# ---------------------------------------------------------------- what each role exports
def hub_output(cfg: StackConfig, bucket, docker_network: Any = None, minio_api: Optional[str] = None) -> dict[str, Any]:
    """The hub's `thanosHub` output. `bucket` is its Thanos ToolBucket; on target local,
    `docker_network` is the network spokes on the same engine join and `minio_api` the MinIO API
    URL their provider creates their user through."""
    s, thanos = cfg.storage, cfg.tools.thanos
    receive_url = hub_receive_url(cfg)
    local = cfg.target is Target.LOCAL
    out: dict[str, Any] = {
        "role": "hub",
        "target": cfg.target.value,
        "bucket": bucket.bucket_name,
        "endpoint": s.endpoint,
        "region": s.region,
        "prefix": thanos.prefix,
        "pathStyle": bool(s.path_style),
        "tls": bool(s.tls),
        "mode": thanos.mode,
        "clusterLabel": thanos.cluster_label,
        "spokes": [{"stack": sp.stack, "clusterLabel": sp.cluster_label} for sp in thanos.spokes],
    }
    if bucket.arn is not None:
        out["arn"] = bucket.arn
    if s.kms_key_arn:
        out["kmsKeyArn"] = s.kms_key_arn
    if receive_url:
        out["receiveUrl"] = receive_url
    if local and docker_network is not None:
        out["dockerNetwork"] = docker_network.name
    if local and minio_api:
        out["minioApi"] = minio_api
    if cfg.target is Target.HETZNER:
        out["note"] = HETZNER_NOTE
    return out


def spoke_output(cfg: StackConfig, hub: HubBucket) -> dict[str, Any]:
    out: dict[str, Any] = {
        "role": "spoke",
        "hub": hub.stack,
        "clusterLabel": cfg.tools.thanos.cluster_label,
        "mode": cfg.tools.thanos.mode,
        "bucket": hub.bucket,
        "region": hub.region,
    }
    if cfg.target is Target.HETZNER:
        out["note"] = HETZNER_NOTE
    return out


def hub_receive_url(cfg: StackConfig) -> Optional[str]:
    """The Receive URL spokes remote-write to: the configured one, or on target local (where
    spokes join the hub's network) the first Receive replica's in-network one."""
    thanos = cfg.tools.thanos
    if thanos.mode != "receive":
        return None
    in_network = f"http://thanos-receive-0:{thanos_renderer.RECEIVE_REMOTE_WRITE_PORT}/api/v1/receive"
    return thanos.receive_url or (in_network if cfg.target is Target.LOCAL else None)


def sidecar_endpoints(cfg: StackConfig) -> list[str]:
    """Spoke sidecars the hub's Query asks for recent data (where the network lets it)."""
    if not cfg.tools.thanos.owns_bucket:
        return []
    return [s.sidecar_endpoint for s in cfg.tools.thanos.spokes if s.sidecar_endpoint]
