"""The stack configuration: one pydantic model, read once, validated before any resource exists.

Keys live under the `obs-storage:` namespace and are camelCase, as Pulumi stack files write them.
`loading.load()` turns the raw config map into a `StackConfig` or raises `ConfigError` with one
line that names the stack, the key, the bad value and the fix. This module holds the model, its
errors and the naming rules; it imports nothing of the project but the pins and the sizing model.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
import string
import typing
from enum import Enum
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from components.core import sizing, versions

PROJECT = "obs-storage"

# Storage classes a querier can read synchronously, and the ones that need a restore first.
READABLE_CLASSES = ("STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR")
ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
# AWS refuses transitions to STANDARD_IA earlier than 30 days after creation.
MIN_TRANSITION_DAYS = {"STANDARD_IA": 30}
S3_MAX_LIFECYCLE_RULES = 1000
# Rules every bucket carries besides the per-prefix data rules: abort multipart, noncurrent versions.
FIXED_LIFECYCLE_RULES = 2

SECRET_KEYS = ("hetznerAccessKey", "hetznerSecretKey", "kubeconfig", "alertReceiverSecrets")


class Target(str, Enum):
    LOCAL = "local"
    AWS = "aws"
    HETZNER = "hetzner"


class ConfigError(Exception):
    """Bad stack configuration, reported as one actionable line."""

    def __init__(self, stack: str, key: str, value: Any, problem: str, fix: str, prefix: bool = True):
        # A suggested command must act on the stack the error is about, not on whichever stack
        # happens to be selected.
        fix = re.sub(r"`pulumi config (set|rm) ", rf"`pulumi config \1 --stack {stack} ", fix)
        self.stack, self.key, self.value, self.problem, self.fix = stack, key, value, problem, fix
        shown = "(not set)" if value is _MISSING else json.dumps(value, default=str)
        name = f"{PROJECT}:{key}" if prefix else key
        super().__init__(f"stack '{stack}': {name} = {shown} {problem}. Fix: {fix}.")


class StackFileError(ConfigError):
    """A stack or project file that is not the YAML Pulumi reads, reported as one line with its
    file, line and column."""

    def __init__(self, stack: str, path: str, line: int, column: int, problem: str, fix: str):
        self.stack, self.key, self.value, self.problem, self.fix = stack, path, _MISSING, problem, fix
        self.path, self.line, self.column = path, line, column
        Exception.__init__(self, f"stack '{stack}': {path}:{line}:{column}: {problem}. Fix: {fix}.")


_MISSING = object()


def _fail(key: str, value: Any, problem: str, fix: str) -> PydanticCustomError:
    """An error raised inside a validator that keeps the exact config key it is about."""
    return PydanticCustomError("obs_config", "{problem}", {"key": key, "value": value, "problem": problem, "fix": fix})


class _Model(BaseModel):
    # Stack config is read by alias only (`load`): `bucketLifecycle`, never `bucket_lifecycle`, so a
    # key has one spelling. Python code and tests may build models by field name.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True)


# ---------------------------------------------------------------- storage
class Transition(_Model):
    days: int = Field(ge=1)
    storage_class: Literal[
        "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"
    ]


class StorageConfig(_Model):
    """Object storage shared by all tools of the stack. Unset fields take the target's defaults."""

    region: Optional[str] = None
    endpoint: Optional[str] = None
    path_style: Optional[bool] = None
    tls: Optional[bool] = None
    kms_key_arn: Optional[str] = None
    tags: dict[str, str] = {}
    # False: no expiration/transition rules on buckets; each tool's own retention is the only one.
    bucket_lifecycle: bool = True
    versioning: Optional[bool] = None
    noncurrent_version_days: int = Field(default=7, ge=1)
    protect: Optional[bool] = None


# ---------------------------------------------------------------- tools
_PREFIX_RE = re.compile(r"^([a-z0-9][a-z0-9._-]*/)*$")


# Marks a field that is required unless the model says otherwise (a disabled tool, a Thanos spoke):
# pydantic then sees it as optional, the error messages still list it as required.
_REQUIRED_WHEN_USED = {"requiredWhenUsed": True}


class _ToolBase(_Model):
    TOOL: typing.ClassVar[str] = ""
    enabled: bool = True
    # Required for an enabled tool whose bucket the stack owns (see `owns_bucket`).
    bucket: Optional[str] = Field(default=None, json_schema_extra=_REQUIRED_WHEN_USED)
    prefix: str = ""
    transitions: list[Transition] = []
    # Bucket expiration: a safety net only, strictly above what the tool itself still serves.
    expire_after_days: Optional[int] = Field(default=None, ge=1)

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, name: Optional[str]) -> Optional[str]:
        # None only where the model allows it: a Thanos spoke uses its hub's bucket.
        problem = bucket_name_problem(name) if name is not None else None
        if problem:
            fix = "use 3-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit"
            suggestion = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
            if bucket_name_problem(suggestion) is None:
                fix += f", e.g. {suggestion!r}"
            raise PydanticCustomError("obs_config", "{problem}", {"problem": problem, "fix": fix})
        return name

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if not _PREFIX_RE.match(prefix):
            raise PydanticCustomError(
                "obs_config",
                "is not a valid object prefix",
                {"fix": "use '' or lowercase path segments ending in '/', e.g. 'loki/'"},
            )
        return prefix

    @property
    def owns_bucket(self) -> bool:
        return True

    @model_validator(mode="after")
    def _bucket_required(self) -> "_ToolBase":
        if self.enabled and self.owns_bucket and self.bucket is None:
            raise _fail("bucket", _MISSING, "is required" + (" for a hub (the stack that owns the Thanos bucket)" if self.TOOL == "thanos" else ""),
                        f"run `pulumi config set --path '{PROJECT}:tools.{self.TOOL}.bucket' <name>`"
                        + (", or set tools.thanos.role to spoke" if self.TOOL == "thanos" else ""))
        return self

    def served_hours(self) -> Optional[int]:
        """Hours after which the tool no longer serves an object's data; None when kept forever."""
        raise NotImplementedError

    def retention_text(self) -> str:
        raise NotImplementedError


class LokiConfig(_ToolBase):
    TOOL = "loki"
    @field_validator("prefix")
    @classmethod
    def _no_prefix(cls, prefix: str) -> str:
        if prefix:
            raise PydanticCustomError(
                "obs_config",
                "is not supported for Loki: its S3 client keeps the index and loki_cluster_seed.json at the bucket root",
                {"fix": "remove tools.loki.prefix and give Loki a bucket of its own"},
            )
        return prefix

    retention_days: int = Field(default=31, ge=1)
    # compactor.retention_delete_delay: chunks marked for deletion stay readable this long.
    delete_delay_hours: int = Field(default=2, ge=0)

    def served_hours(self) -> Optional[int]:
        return self.retention_days * 24 + self.delete_delay_hours

    def retention_text(self) -> str:
        return f"retention {self.retention_days}d + {self.delete_delay_hours}h delete delay"


class TempoConfig(_ToolBase):
    TOOL = "tempo"
    retention_days: int = Field(default=14, ge=1)
    # compactor.compaction.compacted_block_retention: compacted-away blocks stay this long.
    delete_delay_hours: int = Field(default=1, ge=0)

    def served_hours(self) -> Optional[int]:
        return self.retention_days * 24 + self.delete_delay_hours

    def retention_text(self) -> str:
        return f"retention {self.retention_days}d + {self.delete_delay_hours}h delete delay"


# The shortest retention the pinned compactor starts with while it downsamples (this project never
# turns downsampling off). thanos-io/thanos v0.42.4 cmd/thanos/compact.go refuses to start with a
# raw retention under downsample.ResLevel1DownsampleRange (40 hours: "raw resolution must be higher
# than the minimum block size after which 5m resolution downsampling will occur (40 hours)") or a
# 5m retention under ResLevel2DownsampleRange (10 days), both from pkg/compact/downsample/
# downsample.go; 0 (forever) skips the check. In whole days: raw at least 2, 5m at least 10.
THANOS_MIN_RETENTION = {"raw_days": ("rawDays", 40, "raw", "5m"), "five_minute_days": ("fiveMinuteDays", 240, "5m", "1h")}


class ThanosRetention(_Model):
    """Compactor retention per resolution in days; 0 keeps that resolution forever."""

    raw_days: int = Field(default=30, ge=0)
    five_minute_days: int = Field(default=90, ge=0)
    one_hour_days: int = Field(default=365, ge=0)

    @model_validator(mode="after")
    def _what_the_compactor_accepts(self) -> "ThanosRetention":
        for name, (key, hours, resolution, next_resolution) in THANOS_MIN_RETENTION.items():
            days = getattr(self, name)
            if 0 < days * 24 < hours:
                least = -(-hours // 24)
                raise _fail(key, days, f"keeps {resolution} data {days * 24} hours; the Thanos compactor refuses to start with less than "
                            f"{hours} hours of {resolution} retention (the block size after which it downsamples to {next_resolution}; "
                            "thanos v0.42.4 cmd/thanos/compact.go), so it would restart forever",
                            f"set it to at least {least}, or to 0 to keep {resolution} data forever")
        return self


_STACK_FQN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# A Prometheus external label value this project can also use in names and messages.
_CLUSTER_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_ENDPOINT_RE = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")
# Keys of tools.thanos that configure the bucket or the compactor: the hub's alone.
HUB_ONLY_KEYS = {
    "bucket": "the hub's bucket is read from its stack outputs",
    "prefix": "the hub's prefix is read from its stack outputs",
    "transitions": "bucket rules belong to the stack that owns the bucket",
    "expire_after_days": "bucket rules belong to the stack that owns the bucket",
    "retention": "retention is what the compactor applies, and only the hub runs the bucket's one compactor (two corrupt it)",
    "delete_delay_hours": "the delete delay is a compactor flag, and only the hub runs the bucket's one compactor (two corrupt it)",
    "receive_replication_factor": "Receive runs on the hub",
    "receive_url": "Receive runs on the hub",
    "spokes": "only a hub lists spokes",
}


def stack_fqn_problem(name: str) -> Optional[str]:
    return None if _STACK_FQN_RE.match(name) else "is not a fully qualified stack name"


class ThanosSpoke(_Model):
    """A spoke as its hub lists it. The list is what keeps cluster labels unique: the hub refuses a
    duplicate, and a spoke refuses to run unless the hub lists it with its own label."""

    # Fully qualified: <organization>/<project>/<stack> (DIY backends: organization/obs-storage/<stack>).
    stack: str
    cluster_label: str
    # host:port of the spoke's sidecar gRPC API, where the hub's Query can reach it (same Docker
    # engine, VPC peering, VPN). Without it the hub sees the spoke's data once uploaded (2-3 h).
    sidecar_endpoint: Optional[str] = None
    # target aws: the spoke's AWS account when it is not the hub's; the hub's bucket policy then
    # lets that account's obs-<stack>-prometheus role list, read and write (never delete).
    account: Optional[str] = None

    @field_validator("stack")
    @classmethod
    def _fqn(cls, name: str) -> str:
        if stack_fqn_problem(name):
            raise PydanticCustomError("obs_config", "is not a fully qualified stack name",
                                      {"fix": "use <organization>/<project>/<stack>, e.g. organization/obs-storage/staging-batch"})
        return name

    @field_validator("cluster_label")
    @classmethod
    def _label(cls, label: str) -> str:
        return _cluster_label(label)

    @field_validator("sidecar_endpoint")
    @classmethod
    def _endpoint(cls, endpoint: Optional[str]) -> Optional[str]:
        if endpoint is not None and not _ENDPOINT_RE.match(endpoint):
            raise PydanticCustomError("obs_config", "is not host:port", {"fix": "use the host and gRPC port (10901) the hub reaches the spoke's sidecar at"})
        return endpoint

    @field_validator("account")
    @classmethod
    def _account(cls, account: Optional[str]) -> Optional[str]:
        if account is not None and not re.match(r"^\d{12}$", account):
            raise PydanticCustomError("obs_config", "is not a 12-digit AWS account id", {"fix": "quote the spoke's account id, e.g. '210987654321'"})
        return account


def _cluster_label(label: str) -> str:
    if not label:
        raise PydanticCustomError("obs_config", "is empty; blocks of clusters without a distinct cluster label overlap",
                                  {"fix": "set a label unique among the hub and its spokes, e.g. the stack name"})
    if not _CLUSTER_LABEL_RE.match(label):
        raise PydanticCustomError("obs_config", "is not a usable cluster label",
                                  {"fix": "use 1-63 letters, digits, '.', '_' and '-', e.g. the stack name"})
    return label


class ThanosConfig(_ToolBase):
    TOOL = "thanos"
    retention: ThanosRetention = ThanosRetention()
    # --delete-delay: blocks marked for deletion stay readable this long.
    delete_delay_hours: int = Field(default=48, ge=0)
    mode: Literal["sidecar", "receive"] = "sidecar"
    receive_replication_factor: int = Field(default=3, ge=1)
    # hub: owns the bucket, store gateway, query, compactor (and Receive). spoke: Prometheus whose
    # sidecar uploads to the hub's bucket, or which remote-writes to the hub's Receive.
    role: Literal["hub", "spoke"] = "hub"
    # spoke: the hub's fully qualified stack name, read with a StackReference.
    hub: Optional[str] = None
    # The `cluster` external label of this stack's Prometheus. Default: the stack name.
    cluster_label: Optional[str] = None
    # spoke: accept a bucket in another region than this stack's (inter-region transfer is billed).
    cross_region: bool = False
    # hub: every spoke with its cluster label (see ThanosSpoke).
    spokes: list[ThanosSpoke] = []
    # hub, mode receive: the URL other clusters remote-write to (their route in: ingress, load
    # balancer, VPN). Default: none, except on target local, where spokes join the hub's network.
    receive_url: Optional[str] = None

    @field_validator("cluster_label")
    @classmethod
    def _label(cls, label: Optional[str]) -> Optional[str]:
        return None if label is None else _cluster_label(label)

    @model_validator(mode="after")
    def _role(self) -> "ThanosConfig":
        if self.role == "spoke":
            for name in sorted(HUB_ONLY_KEYS):
                if name in self.model_fields_set:
                    key = to_camel(name)
                    value = getattr(self, name)
                    shown = value.model_dump(by_alias=True) if isinstance(value, BaseModel) else value
                    if isinstance(shown, list):
                        shown = [v.model_dump(by_alias=True) if isinstance(v, BaseModel) else v for v in shown]
                    raise _fail(key, shown, f"is set on a spoke; {HUB_ONLY_KEYS[name]}", f"remove tools.thanos.{key} from the spoke (set it on the hub)")
            if self.hub is None:
                raise _fail("hub", _MISSING, "is required for a spoke",
                            "run `pulumi config set --path 'obs-storage:tools.thanos.hub' <organization>/obs-storage/<hub stack>`")
            if stack_fqn_problem(self.hub):
                raise _fail("hub", self.hub, "is not a fully qualified stack name",
                            "use <organization>/<project>/<stack>, e.g. organization/obs-storage/staging")
            return self
        if self.hub is not None:
            raise _fail("hub", self.hub, "names a hub, but this stack is a hub (tools.thanos.role)",
                        "set tools.thanos.role to spoke, or remove tools.thanos.hub")
        if self.cross_region:
            raise _fail("crossRegion", True, "is a spoke setting", "remove it from the hub")
        if self.receive_url is not None and self.mode != "receive":
            raise _fail("receiveUrl", self.receive_url, "is set but tools.thanos.mode is not receive", "remove it, or set mode to receive")
        if self.receive_url is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", self.receive_url):
            raise _fail("receiveUrl", self.receive_url, "is not an http(s) URL", "use the full remote-write URL, e.g. https://thanos-receive.example.com/api/v1/receive")
        stacks: dict[str, int] = {}
        labels: dict[str, int] = {}
        for i, spoke in enumerate(self.spokes):
            if spoke.stack in stacks:
                raise _fail(f"spokes[{i}].stack", spoke.stack, f"is also spokes[{stacks[spoke.stack]}]", "list each spoke once")
            if spoke.cluster_label in labels:
                raise _fail(f"spokes[{i}].clusterLabel", spoke.cluster_label, f"is also the label of spokes[{labels[spoke.cluster_label]}]; "
                            "their blocks would overlap in the one bucket", "give every cluster its own label")
            stacks[spoke.stack], labels[spoke.cluster_label] = i, i
        return self

    # spoke: the hub's bucket (thanos_topology.HubBucket), set once read from the hub's stack
    # outputs; never from config.
    _hub_bucket: Any = PrivateAttr(default=None)

    @property
    def owns_bucket(self) -> bool:
        return self.role == "hub"

    @property
    def hub_bucket(self) -> Any:
        return self._hub_bucket

    def use_hub(self, hub_bucket: Any) -> None:
        assert self.role == "spoke"
        self._hub_bucket = hub_bucket

    @model_validator(mode="after")
    def _odd_replication(self) -> "ThanosConfig":
        if self.mode == "receive" and self.receive_replication_factor % 2 == 0:
            raise _fail(
                "receiveReplicationFactor",
                self.receive_replication_factor,
                "is even; Receive needs a quorum of (n+1)/2 writes",
                "use an odd number such as 1 or 3",
            )
        return self

    def served_hours(self) -> Optional[int]:
        r = self.retention
        days = (r.raw_days, r.five_minute_days, r.one_hour_days)
        return None if 0 in days else max(days) * 24 + self.delete_delay_hours

    def retention_text(self) -> str:
        r = self.retention
        return (
            f"retention raw {r.raw_days}d / 5m {r.five_minute_days}d / 1h {r.one_hour_days}d "
            f"+ {self.delete_delay_hours}h delete delay (0 = forever)"
        )


class ToolsConfig(_Model):
    loki: LokiConfig
    tempo: TempoConfig
    thanos: ThanosConfig

    def enabled(self) -> dict[str, _ToolBase]:
        return {name: tool for name, tool in (("loki", self.loki), ("tempo", self.tempo), ("thanos", self.thanos)) if tool.enabled}

    def owned(self) -> dict[str, _ToolBase]:
        """Enabled tools whose bucket this stack declares (not a Thanos spoke's: its hub owns it)."""
        return {name: tool for name, tool in self.enabled().items() if name != "thanos" or self.thanos.owns_bucket}


# ---------------------------------------------------------------- platforms
_K8S_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class SizingConfig(_Model):
    """What the tools carry, in tools.cost's units: every replica count, CPU and memory request and
    limit and local disk on EKS follows from it (components/core/sizing.py)."""

    # Raw log bytes a day (Loki: loki_distributor_bytes_received_total).
    logs_gb_per_day: float = Field(default=sizing.DEFAULT_LOGS_GB_PER_DAY, gt=0)
    # OTLP bytes a day (Tempo: tempo_distributor_bytes_received_total).
    traces_gb_per_day: float = Field(default=sizing.DEFAULT_TRACES_GB_PER_DAY, gt=0)
    # Samples a second appended by one Prometheus (prometheus_tsdb_head_samples_appended_total); on
    # a hub, the largest of the hub's and its spokes' (one compactor compacts them all).
    metrics_samples_per_second: int = Field(default=sizing.DEFAULT_METRICS_SAMPLES_PER_SECOND, gt=0)

    @field_validator("logs_gb_per_day")
    @classmethod
    def _loki_tier(cls, value: float) -> float:
        if value > sizing.LOKI_TIER_GB_PER_DAY:
            raise PydanticCustomError(
                "obs_config", "is above the 3 TB/day tier of Loki's sizing guide, which this topology follows",
                {"fix": f"use at most {sizing.LOKI_TIER_GB_PER_DAY}; larger installs need the guide's next tier (more, larger pods) than this project sizes"})
        return value


_VPC_RE = re.compile(r"^vpc-[0-9a-f]{8}([0-9a-f]{9})?$")
_SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8}([0-9a-f]{9})?$")
_SG_RE = re.compile(r"^sg-[0-9a-f]{8}([0-9a-f]{9})?$")
_AMI_RE = re.compile(r"^ami-[0-9a-f]{8}([0-9a-f]{9})?$")
_SSM_PATH_RE = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
# Graviton (arm64) families put a `g` right after the generation digit: m7g, c7gn, t4g, r8gd
# (EC2 instance types guide, naming conventions: "g - AWS Graviton processors").
_ARM_TYPE_RE = re.compile(r"^[a-z]+\d+g")
_DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# Debian 12's cloud images publish their AMI ids as public SSM parameters; the instances install
# Docker and Compose from Debian 12 (components/ec2/userdata.py says why that release).
DEFAULT_AMI = "/aws/service/debian/release/12/latest/amd64"
# Loki and Tempo replicate every write three times: a fleet needs three instances for a quorum of
# two to survive one instance's loss.
RING_REPLICATION = 3


class Ec2Fleet(_Model):
    instance_type: str
    size: int = Field(default=1, ge=1)

    @field_validator("instance_type")
    @classmethod
    def _type(cls, value: str) -> str:
        if not _INSTANCE_TYPE_RE.match(value):
            raise PydanticCustomError("obs_config", "is not an EC2 instance type", {"fix": "use a type such as m7i.large"})
        return value


def _fleet(instance_type: str, size: int = 1) -> Any:
    return Field(default_factory=lambda: Ec2Fleet(instance_type=instance_type, size=size))


class Ec2Fleets(_Model):
    """Instance type and size per fleet. Receive runs one single-instance group per replica slot
    (tools.thanos.receiveReplicationFactor: the hashring names each slot); the compactor and the
    monitoring instance are singletons (one compactor per bucket; Prometheus and Alertmanager keep
    local state)."""

    loki: Ec2Fleet = _fleet("m7i.large", RING_REPLICATION)
    tempo: Ec2Fleet = _fleet("m7i.large", RING_REPLICATION)
    grafana: Ec2Fleet = _fleet("t3.medium", 2)
    thanos_receive: Ec2Fleet = _fleet("m7i.large")
    thanos_store: Ec2Fleet = _fleet("m7i.large", 2)
    thanos_query: Ec2Fleet = _fleet("t3.medium", 2)
    thanos_compact: Ec2Fleet = _fleet("m7i.large")
    monitoring: Ec2Fleet = _fleet("t3.medium")

    @model_validator(mode="after")
    def _sizes(self) -> "Ec2Fleets":
        for name in ("loki", "tempo"):
            fleet = getattr(self, name)
            if fleet.size < RING_REPLICATION:
                raise _fail(f"{name}.size", fleet.size, f"is below the replication factor {RING_REPLICATION}; a write needs two of three replicas",
                            f"use {RING_REPLICATION} or more instances")
        for name in ("thanos_receive", "thanos_compact", "monitoring"):
            fleet = getattr(self, name)
            if fleet.size != 1:
                why = {"thanos_receive": "Receive runs one instance per replica slot; set tools.thanos.receiveReplicationFactor instead",
                       "thanos_compact": "two compactors on one bucket corrupt it",
                       "monitoring": "Prometheus and Alertmanager keep state on the instance"}[name]
                raise _fail(f"{to_camel(name)}.size", fleet.size, f"must be 1: {why}", "remove the size")
        return self


class Ec2Senders(_Model):
    """Who may reach the internal load balancer: IPv4 CIDRs and/or security groups. Never the world."""

    cidrs: list[str] = []
    security_groups: list[str] = []

    @field_validator("cidrs")
    @classmethod
    def _cidrs(cls, cidrs: list[str]) -> list[str]:
        for i, cidr in enumerate(cidrs):
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise _fail(f"[{i}]", cidr, "is not a network in CIDR notation", "use the network address and prefix, e.g. 10.20.0.0/16") from None
            if network.prefixlen == 0:
                raise _fail(f"[{i}]", cidr, "admits every address", "name the networks that send logs, traces and metrics")
            # The load balancer is internal, and an internal load balancer answers on IPv4 only
            # (Elastic Load Balancing API, CreateLoadBalancer IpAddressType: "Internal load
            # balancers must use ipv4"; botocore 1.44.8 elbv2 model, pulumi_aws 7.51.1
            # lb.LoadBalancerArgs): a rule for an IPv6 network would admit senders that can never
            # connect.
            if network.version != 4:
                raise _fail(f"[{i}]", cidr, "is an IPv6 network, and the internal load balancer has IPv4 addresses only",
                            "name the senders' IPv4 networks (or their security groups)")
        return cidrs

    @field_validator("security_groups")
    @classmethod
    def _groups(cls, groups: list[str]) -> list[str]:
        for i, group in enumerate(groups):
            if not _SG_RE.match(group):
                raise _fail(f"[{i}]", group, "is not a security group id", "use the id, e.g. sg-0123456789abcdef0")
        return groups

    @model_validator(mode="after")
    def _someone(self) -> "Ec2Senders":
        if not self.cidrs and not self.security_groups:
            raise _fail("cidrs", [], "is empty and so is securityGroups: nothing could send data",
                        "list the senders' CIDRs or security groups")
        return self


class Ec2Database(_Model):
    """Grafana's Aurora PostgreSQL Serverless v2 cluster (capacity in Aurora capacity units)."""

    min_capacity: float = Field(default=0.5, ge=0.5)
    max_capacity: float = Field(default=2, ge=1)
    # Required: AWS retires Aurora minor versions; `aws rds describe-db-engine-versions --engine
    # aurora-postgresql` lists the current ones.
    engine_version: str

    @field_validator("engine_version")
    @classmethod
    def _engine(cls, value: str) -> str:
        if not re.match(r"^\d+\.\d+$", value):
            raise PydanticCustomError("obs_config", "is not an Aurora PostgreSQL version", {"fix": "use major.minor, e.g. 16.13"})
        return value

    @model_validator(mode="after")
    def _range(self) -> "Ec2Database":
        if self.max_capacity < self.min_capacity:
            raise _fail("maxCapacity", self.max_capacity, f"is below minCapacity {self.min_capacity:g}", "raise maxCapacity")
        return self


class Ec2Config(_Model):
    vpc_id: str
    # availability zone -> private subnet id: the zones are known before anything is declared.
    subnets: dict[str, str]
    ami: str = DEFAULT_AMI
    senders: Ec2Senders
    # The Cloud Map private DNS namespace (a private hosted zone in the VPC). Default: obs-<stack>.internal
    namespace: Optional[str] = None
    fleets: Ec2Fleets = Field(default_factory=Ec2Fleets)
    database: Ec2Database
    root_volume_gi: int = Field(default=30, ge=8)
    # The AMI's root device: the launch template's encrypted mapping must name it, or the instance
    # gets an extra volume and an unencrypted root. Debian's AMIs boot from /dev/xvda.
    root_device_name: str = "/dev/xvda"

    @field_validator("vpc_id")
    @classmethod
    def _vpc(cls, value: str) -> str:
        if not _VPC_RE.match(value):
            raise PydanticCustomError("obs_config", "is not a VPC id", {"fix": "use the id, e.g. vpc-0123456789abcdef0"})
        return value

    @field_validator("subnets")
    @classmethod
    def _subnets(cls, subnets: dict[str, str]) -> dict[str, str]:
        for zone, subnet in subnets.items():
            if not _SUBNET_RE.match(subnet):
                raise _fail(zone, subnet, "is not a subnet id", "use the id of a private subnet in that zone, e.g. subnet-0123456789abcdef0")
        if len(subnets) < 2:
            raise PydanticCustomError("obs_config", "names fewer than two availability zones; one zone's loss would stop every tool",
                                      {"fix": "map at least two zones (three recommended) to a private subnet each"})
        if len(set(subnets.values())) != len(subnets):
            raise PydanticCustomError("obs_config", "lists a subnet under two zones; a subnet lives in one zone", {"fix": "give each zone its own subnet"})
        return subnets

    @field_validator("ami")
    @classmethod
    def _ami(cls, value: str) -> str:
        if not (_AMI_RE.match(value) or _SSM_PATH_RE.match(value)):
            raise PydanticCustomError("obs_config", "is neither an AMI id nor an SSM parameter path",
                                      {"fix": f"use an ami-... id or a parameter path such as {DEFAULT_AMI}"})
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not _DNS_NAME_RE.match(value):
            raise PydanticCustomError("obs_config", "is not a DNS domain name", {"fix": "use lowercase labels, e.g. obs-staging.internal"})
        return value

    @model_validator(mode="after")
    def _architecture(self) -> "Ec2Config":
        arch = self.ami.rsplit("/", 1)[-1] if self.ami.startswith("/") else None
        if arch not in ("amd64", "arm64"):
            return self
        for name in Ec2Fleets.model_fields:
            fleet = getattr(self.fleets, name)
            arm = bool(_ARM_TYPE_RE.match(fleet.instance_type))
            if arm != (arch == "arm64"):
                raise _fail(f"fleets.{to_camel(name)}.instanceType", fleet.instance_type,
                            f"is {'an arm64 (Graviton)' if arm else 'an x86_64'} type, and ami {self.ami} is {arch}",
                            f"use a{'n x86_64' if arch == 'amd64' else ' Graviton'} type, or an AMI of the other architecture")
        return self

    def namespace_for(self, stack: str) -> str:
        return self.namespace or f"{default_name_prefix(stack)}.internal"


# EKS-only keys of AwsConfig, refused on aws.platform ec2 (where nothing reads them).
EKS_ONLY_KEYS = ("cluster_name", "identity", "oidc_provider", "namespace", "zones", "wal_volume", "prometheus_crds", "node_exporter",
                 "sizing", "thanos_compact_disk_gi", "thanos_compact_storage_class", "loki_chunks_cache_mb", "loki_results_cache_mb",
                 "thanos_index_cache_mb", "thanos_response_cache_mb")

class AwsConfig(_Model):
    # Required on eks (see `_platform`).
    cluster_name: Optional[str] = Field(default=None, json_schema_extra=_REQUIRED_WHEN_USED)
    identity: Literal["irsa", "pod-identity"] = "irsa"
    # "existing": look the cluster's IAM OIDC provider up; "create": declare it (cluster has none).
    oidc_provider: Literal["existing", "create"] = "existing"
    namespace: str = "observability"
    # Availability zones the ring members spread over (zone-aware replication needs three).
    zones: list[str] = []
    # Ingester WAL: emptyDir survives a move to another zone; persistentVolume (EBS) does not.
    wal_volume: Literal["emptyDir", "persistentVolume"] = "emptyDir"
    # Prometheus operator CRDs: "install" with kube-prometheus-stack, or "existing" when the cluster
    # already has them (a second install of the same cluster-wide CRDs fails).
    prometheus_crds: Literal["install", "existing"] = "install"
    # A node-exporter DaemonSet (hostNetwork, port 9100); off because clusters often run one already.
    node_exporter: bool = False
    # What the tools carry; requests, limits, replicas and disks follow from it.
    sizing: SizingConfig = SizingConfig()
    # Thanos compactor scratch space in GiB. Default: the worst case for sizing.metricsSamplesPerSecond
    # (twice two weeks of one Prometheus' blocks, thanos-io/thanos v0.42.4 docs/components/compact.md),
    # cut to sizing.NODE_DISK_GIB on a node's root volume (see thanos_compact_gib).
    thanos_compact_disk_gi: Optional[int] = Field(default=None, ge=10)
    # A StorageClass (EBS CSI driver) for a compactor volume of its own, created in the pod's zone and
    # deleted with the pod. Without it the scratch is an emptyDir on the node's root volume, which
    # holds at most sizing.NODE_DISK_GIB.
    thanos_compact_storage_class: Optional[str] = None
    # Read-path caches in MB (0 = off): Loki's memcached chunks and results caches (chart defaults
    # 8192 and 1024, loki-18.11.0 values.yaml), the Thanos store gateways' in-memory index cache
    # (Thanos' default 250 MB, --index-cache-size) and Thanos Query Frontend's response cache.
    loki_chunks_cache_mb: int = Field(default=2048, ge=0)
    loki_results_cache_mb: int = Field(default=512, ge=0)
    thanos_index_cache_mb: int = Field(default=1024, ge=0)
    thanos_response_cache_mb: int = Field(default=512, ge=0)
    # eks: the tools on an existing EKS cluster; ec2: on EC2 fleets of this stack's own.
    platform: Literal["eks", "ec2"] = "eks"
    # platform ec2: the fleets, their network and Grafana's database.
    ec2: Optional[Ec2Config] = None

    @model_validator(mode="after")
    def _platform(self) -> "AwsConfig":
        if self.platform == "ec2":
            for name in EKS_ONLY_KEYS:
                if name in self.model_fields_set:
                    value = getattr(self, name)
                    raise _fail(to_camel(name), value, "is an EKS setting, and aws.platform is ec2", f"remove aws.{to_camel(name)}")
            if self.ec2 is None:
                raise _fail("ec2.vpcId", _MISSING, "is required for aws.platform ec2",
                            "set aws.ec2 (vpcId, subnets, senders, database.engineVersion) as README.md's ec2 section shows")
        else:
            if self.ec2 is not None:
                raise _fail("ec2", self.ec2.model_dump(by_alias=True, exclude_defaults=True), "configures EC2 fleets, and aws.platform is eks",
                            "set aws.platform to ec2, or remove aws.ec2")
            if self.cluster_name is None:
                raise _fail("clusterName", _MISSING, "is required", "set it with `pulumi config set --path 'obs-storage:aws.clusterName' <value>`")
        return self

    @field_validator("thanos_compact_storage_class")
    @classmethod
    def _storage_class(cls, name: Optional[str]) -> Optional[str]:
        if name is not None and not _K8S_NAME_RE.match(name):
            raise PydanticCustomError("obs_config", "is not a Kubernetes object name", {"fix": "use the NAME column of `kubectl get storageclass`, e.g. gp3"})
        return name

    def thanos_compact_gib(self) -> int:
        """The compactor's scratch: as set, else the worst case for the sizing, which on a node's
        root volume is cut to what fits there (enough for the 14-day compactions of up to
        sizing.compact_samples_per_second(NODE_DISK_GIB) samples/s; docs/aws-eks.md)."""
        if self.thanos_compact_disk_gi is not None:
            return self.thanos_compact_disk_gi
        need = sizing.thanos_compact_disk_gib(self.sizing.metrics_samples_per_second)
        return need if self.thanos_compact_storage_class else min(need, sizing.NODE_DISK_GIB)

    @field_validator("zones")
    @classmethod
    def _zones(cls, zones: list[str]) -> list[str]:
        if zones and (len(zones) != 3 or len(set(zones)) != 3):
            raise PydanticCustomError("obs_config", "must list exactly three distinct zones", {"fix": "list three zones, e.g. [ap-northeast-2a, ap-northeast-2b, ap-northeast-2c]"})
        return zones


_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class HetznerConfig(_Model):
    location: Literal["fsn1", "nbg1", "hel1"] = "fsn1"
    swarm_host: str
    placement_constraints: list[str] = []
    # Hostname of the Swarm node that keeps the first Prometheus' TSDB (which its Thanos sidecar
    # must read on the same node); the second pair runs on the first other node of `nodes`. A node
    # label could match several nodes and split Prometheus from its sidecar; a hostname cannot.
    state_node: str
    # Hostnames of the three Swarm nodes that each run one ring-store (etcd) member and at most one
    # replica of Loki and of Tempo: with replication factor 3 and a three-member etcd, any one of
    # them can be lost without losing ingest (docs/hetzner-swarm.md).
    nodes: list[str]

    @field_validator("state_node")
    @classmethod
    def _hostname(cls, node: str) -> str:
        if not _HOSTNAME_RE.match(node):
            raise PydanticCustomError(
                "obs_config", "is not a node hostname", {"fix": "use the HOSTNAME column of `docker node ls` for the node that keeps Prometheus' data"}
            )
        return node

    @field_validator("nodes")
    @classmethod
    def _three_nodes(cls, nodes: list[str]) -> list[str]:
        for i, node in enumerate(nodes):
            if not _HOSTNAME_RE.match(node):
                raise _fail(f"[{i}]", node, "is not a node hostname", "use the HOSTNAME column of `docker node ls`")
        if len(nodes) != 3 or len(set(nodes)) != 3:
            raise PydanticCustomError(
                "obs_config", "must list exactly three distinct node hostnames (one ring-store member and one Loki and Tempo replica each)",
                {"fix": "list three HOSTNAMEs from `docker node ls`, e.g. [swarm-worker-1, swarm-worker-2, swarm-worker-3]"},
            )
        return nodes

    @field_validator("swarm_host")
    @classmethod
    def _ssh(cls, host: str) -> str:
        if not re.match(r"^ssh://[^\s/]+$", host):
            raise PydanticCustomError(
                "obs_config", "is not an ssh:// Docker host", {"fix": "use the form ssh://user@swarm-manager.example.com"}
            )
        return host


class Secrets(BaseModel):
    """Credentials, only ever read from Pulumi secrets."""

    model_config = ConfigDict(extra="forbid")
    hetzner_access_key: Optional[SecretStr] = None
    hetzner_secret_key: Optional[SecretStr] = None
    kubeconfig: Optional[SecretStr] = None
    # Object: receiver name -> its secret (webhook or Slack URL, PagerDuty routing key, SMTP
    # password), each set with `pulumi config set --path --secret 'alertReceiverSecrets.<name>'`.
    alert_receiver_secrets: Optional[SecretStr] = None


# ---------------------------------------------------------------- alerting
_RECEIVER_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# What each receiver type reads from its secret file (Alertmanager v0.34.0: notify/webhook/config.go
# url_file, config/notifiers.go api_url_file (Slack) and auth_password_file (email),
# notify/pagerduty/config.go routing_key_file). Email needs a password only with auth_username.
RECEIVER_SECRET_FIELD = {"webhook": "url_file", "slack": "api_url_file", "pagerduty": "routing_key_file", "email": "auth_password_file"}


class AlertReceiver(_Model):
    name: str
    type: Literal["webhook", "email", "slack", "pagerduty"]
    # Which alerts it gets (the always-firing Watchdog goes only to `alerting.watchdogReceiver`,
    # which gets nothing else).
    severities: list[Literal["critical", "warning"]] = ["critical", "warning"]
    # email only
    to: Optional[str] = None
    sender: Optional[str] = None
    smarthost: Optional[str] = None  # host:port of the SMTP relay
    username: Optional[str] = None  # SMTP auth user; its password is the receiver's secret
    # slack only (the webhook URL's own channel when unset)
    channel: Optional[str] = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _RECEIVER_RE.match(name):
            raise PydanticCustomError("obs_config", "is not a usable receiver name", {"fix": "use 1-40 lowercase letters, digits and '-', starting with a letter"})
        return name

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> "AlertReceiver":
        email = ("to", "sender", "smarthost", "username")
        wanted = {"email": email, "slack": ("channel",)}.get(self.type, ())
        for key in ("to", "sender", "smarthost", "username", "channel"):
            if getattr(self, key) is not None and key not in wanted:
                raise _fail(key, getattr(self, key), f"does not apply to a {self.type} receiver", f"remove it from receiver {self.name!r}")
        if self.type == "email":
            for key in ("to", "sender", "smarthost"):
                if getattr(self, key) is None:
                    raise _fail(key, _MISSING, "is required for an email receiver", f"set {key} on receiver {self.name!r}")
            if not re.match(r"^[^\s:]+:\d{1,5}$", self.smarthost):
                raise _fail("smarthost", self.smarthost, "is not host:port", "use the SMTP relay as host:port, e.g. smtp.example.com:587")
        if not self.severities:
            raise _fail("severities", self.severities, "is empty", "list critical, warning or both")
        return self

    @property
    def needs_secret(self) -> bool:
        return self.type != "email" or self.username is not None


class AlertingConfig(_Model):
    """Where Alertmanager sends alerts, on every target (Docker Alertmanager and
    kube-prometheus-stack's). Each receiver's secret is a Pulumi secret (`alertReceiverSecrets`)."""

    receivers: list[AlertReceiver] = []
    # Receiver of the always-firing Watchdog: a dead man's switch outside this stack that pages
    # when the Watchdog stops arriving (Prometheus, Alertmanager or their node is gone).
    watchdog_receiver: Optional[str] = None

    @model_validator(mode="after")
    def _names(self) -> "AlertingConfig":
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names):
            raise _fail("receivers", names, "repeats a receiver name", "give each receiver its own name")
        if self.watchdog_receiver is not None and self.watchdog_receiver not in names:
            raise _fail("watchdogReceiver", self.watchdog_receiver, "is not the name of a receiver", f"use one of {names} or add that receiver")
        return self


# ---------------------------------------------------------------- the whole stack
_NAME_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class StackConfig(_Model):
    target: Target
    storage: StorageConfig = StorageConfig()
    tools: ToolsConfig
    # Loki/Tempo tenant ids; the single-tenant default is Loki's built-in "fake".
    tenants: list[str] = ["fake"]
    versions: dict[str, str] = {}
    # Prefix of every Docker name this stack creates (containers, services, networks, volumes) on
    # an engine or Swarm it may share with other stacks. Default: obs-<stack>.
    name_prefix: Optional[str] = None
    aws: Optional[AwsConfig] = None
    hetzner: Optional[HetznerConfig] = None
    alerting: AlertingConfig = AlertingConfig()
    secrets: Secrets = Secrets()

    @field_validator("tenants")
    @classmethod
    def _tenants(cls, tenants: list[str]) -> list[str]:
        for i, tenant in enumerate(tenants):
            if not _TENANT_RE.match(tenant):
                raise _fail(f"[{i}]", tenant, "cannot be used as a tenant id and object prefix",
                            "use lowercase letters, digits, '-' and '_' (max 63)")
        if not tenants or len(set(tenants)) != len(tenants):
            raise PydanticCustomError("obs_config", "must be a non-empty list of distinct ids", {"fix": "list each tenant once"})
        return tenants

    @field_validator("name_prefix")
    @classmethod
    def _name_prefix(cls, prefix: Optional[str]) -> Optional[str]:
        if prefix is not None and not _NAME_PREFIX_RE.match(prefix):
            raise PydanticCustomError("obs_config", "is not a usable Docker name prefix",
                                      {"fix": "use 1-30 lowercase letters, digits and '-', starting with a letter, e.g. obs-prod"})
        return prefix

    @field_validator("versions")
    @classmethod
    def _versions(cls, overrides: dict[str, str]) -> dict[str, str]:
        for key, version in overrides.items():
            if key not in versions.DEFAULT_PINS:
                raise _fail(key, version, "is not an artefact this project deploys",
                            f"use one of {', '.join(sorted(versions.DEFAULT_PINS))}")
            problem = versions.version_problem(key, version)
            if problem:
                raise _fail(key, version, problem,
                            f"pin an exact, known-good version such as {versions.DEFAULT_PINS[key].version!r}")
        return overrides

    # -- derived, target-dependent defaults
    @property
    def multi_tenant(self) -> bool:
        return self.tenants != ["fake"]

    @property
    def pins(self) -> dict[str, versions.Pin]:
        return versions.resolve(self.versions)

    @property
    def runs_minio(self) -> bool:
        """Target local with a bucket of its own: the stack runs a MinIO (components/targets.py). A
        spoke running only Thanos keeps nothing in a bucket of its own, and its hub's MinIO is not
        on its network."""
        return self.target is Target.LOCAL and bool(self.tools.owned())

    @model_validator(mode="after")
    def _resolve_and_check(self) -> "StackConfig":
        self._apply_target_defaults()
        self._check_target_support()
        self._check_buckets()
        if self.target is Target.AWS and self.aws.platform == "eks":
            self._check_node_disks()
        for name, tool in self.tools.enabled().items():
            self._check_lifecycle(name, tool)
        self._check_receiver_secrets()
        return self

    def receiver_secrets(self) -> dict[str, str]:
        """Receiver name -> its secret, for the receivers that need one (checked at load)."""
        raw = self.secrets.alert_receiver_secrets
        return json.loads(raw.get_secret_value()) if raw is not None else {}

    def _check_receiver_secrets(self) -> None:
        hidden = "(secret value hidden)"
        try:
            given = self.receiver_secrets()
        except json.JSONDecodeError:
            given = None
        if given is not None and not (isinstance(given, dict) and all(isinstance(v, str) and v for v in given.values())):
            given = None
        if given is None:
            raise _fail("alertReceiverSecrets", hidden, "is not an object of receiver name to non-empty secret string",
                        "set one secret per receiver: `pulumi config set --path --secret 'alertReceiverSecrets.<receiver>' <url or key>`")
        receivers = {r.name: r for r in self.alerting.receivers}
        for name in sorted(set(given) - {n for n, r in receivers.items() if r.needs_secret}):
            raise _fail("alertReceiverSecrets", hidden, f"has a secret for {name!r}, which is not a receiver that takes one",
                        "remove that entry, or add the receiver under alerting.receivers (an email receiver takes one only with username)")
        for name, r in sorted(receivers.items()):
            if r.needs_secret and name not in given:
                what = {"webhook": "its URL", "slack": "its webhook URL", "pagerduty": "its routing key", "email": "the SMTP password"}[r.type]
                raise _fail("alertReceiverSecrets", hidden if given else _MISSING, f"has no entry for receiver {name!r} ({what})",
                            f"run `pulumi config set --path --secret 'alertReceiverSecrets.{name}' <{what.split()[-1]}>`")

    def _apply_target_defaults(self) -> None:
        s = self.storage
        if self.target is Target.LOCAL:
            s.region = s.region or "us-east-1"
            # Inside the Docker network the tools reach MinIO by its container name.
            s.endpoint = s.endpoint or "minio:9000"
            s.path_style = True if s.path_style is None else s.path_style
            s.tls = False if s.tls is None else s.tls
            s.protect = False if s.protect is None else s.protect
        elif self.target is Target.AWS:
            if self.aws is None:
                raise _fail("aws.clusterName", _MISSING, "is required for target aws", "run `pulumi config set --path 'obs-storage:aws.clusterName' <name>` with the existing EKS cluster's name")
            if not s.region:
                raise _fail("storage.region", _MISSING, "is required for target aws", "set it, e.g. ap-northeast-2")
            problem = aws_region_problem(s.region, AWS_SERVICES)
            if problem:
                raise _fail("storage.region", s.region, problem[0], problem[1])
            s.endpoint = s.endpoint or f"s3.{s.region}.amazonaws.com"
            if self.aws.ec2 is not None:
                self._check_ec2(self.aws.ec2)
            elif not self.aws.zones:
                self.aws.zones = [f"{s.region}{letter}" for letter in "abc"]
            for zone in self.aws.zones:
                if not zone.startswith(s.region):
                    raise _fail("aws.zones", self.aws.zones, f"has {zone!r}, which is not in region {s.region}", f"use zones of {s.region}")
            s.path_style = False if s.path_style is None else s.path_style
            s.tls = True if s.tls is None else s.tls
            s.protect = True if s.protect is None else s.protect
        else:
            if self.hetzner is None:
                raise _fail("hetzner.swarmHost", _MISSING, "is required for target hetzner", "run `pulumi config set --path 'obs-storage:hetzner.swarmHost' ssh://<user>@<swarm manager>`")
            location = self.hetzner.location
            if s.region and s.region != location:
                raise _fail("storage.region", s.region, f"differs from hetzner.location {location!r}", "remove storage.region; it follows hetzner.location")
            s.region = location
            s.endpoint = s.endpoint or f"{location}.your-objectstorage.com"
            # Hetzner serves path-style URLs; virtual-hosted names need a wildcard cert per bucket.
            s.path_style = True if s.path_style is None else s.path_style
            s.tls = True if s.tls is None else s.tls
            s.protect = True if s.protect is None else s.protect
        if s.versioning is None:
            # Versioning keeps deleted objects until the noncurrent rule expires them, so it needs lifecycle.
            s.versioning = s.bucket_lifecycle and self.target is not Target.HETZNER

    def _check_ec2(self, ec2: Ec2Config) -> None:
        region = self.storage.region
        for zone in ec2.subnets:
            if not re.match(rf"^{re.escape(region)}[a-z]$", zone):
                raise _fail(f"aws.ec2.subnets.{zone}", ec2.subnets[zone], f"is under {zone!r}, which is not an availability zone of {region}",
                            f"use zones of {region}, e.g. {region}a")
        thanos = self.tools.thanos
        if thanos.enabled and thanos.role != "hub":
            raise _fail("tools.thanos.role", thanos.role, "is not supported on aws.platform ec2 (the fleets run a whole hub)",
                        "use role hub, or run the spoke on eks")
        if thanos.enabled and thanos.mode != "receive":
            raise _fail("tools.thanos.mode", thanos.mode,
                        "is not supported on aws.platform ec2: metrics arrive by remote-write to the Receive fleet (no Prometheus sidecar fleet)",
                        "set tools.thanos.mode to receive")

    def _check_target_support(self) -> None:
        s, t = self.storage, self.target.value
        if self.name_prefix is not None and self.target is Target.AWS:
            raise _fail("namePrefix", self.name_prefix, "names Docker resources, which target aws does not create",
                        "remove it; on aws the tools are kept apart by aws.namespace")
        # Any URI scheme (RFC 3986: a letter, then letters, digits, '+', '-', '.'), s3:// included.
        if s.endpoint and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", s.endpoint):
            raise _fail("storage.endpoint", s.endpoint, "must be host[:port] without a scheme", "drop the scheme; TLS is set by storage.tls")
        if s.kms_key_arn and self.target is not Target.AWS:
            raise _fail("storage.kmsKeyArn", s.kms_key_arn, f"asks for SSE-KMS, which target {t} does not support", "remove it (SSE-KMS exists on AWS only)")
        if s.kms_key_arn and not re.match(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$", s.kms_key_arn):
            raise _fail("storage.kmsKeyArn", s.kms_key_arn, "is not a KMS key ARN", "use arn:aws:kms:REGION:ACCOUNT:key/KEY-ID")
        if s.tags and self.target is not Target.AWS:
            raise _fail("storage.tags", s.tags, f"sets bucket tags, which target {t} does not support", "remove storage.tags")
        if s.versioning and not s.bucket_lifecycle:
            raise _fail(
                "storage.versioning", True,
                "keeps every deleted object forever when storage.bucketLifecycle is false (no noncurrent-version rule)",
                "set storage.versioning to false, or enable storage.bucketLifecycle",
            )
        if self.target is not Target.AWS and not s.tls and self.target is Target.HETZNER:
            raise _fail("storage.tls", False, "would send the Hetzner key pair in clear text", "remove storage.tls (TLS is the default)")
        for name, tool in self.tools.enabled().items():
            if tool.transitions and self.target is not Target.AWS:
                why = "Hetzner has no storage classes" if self.target is Target.HETZNER else "MinIO transitions need ILM tiers, not storage classes"
                raise _fail(f"tools.{name}.transitions", [x.model_dump(by_alias=True) for x in tool.transitions],
                            f"asks for storage-class transitions, which target {t} does not support ({why})", "remove the transitions")
            if (tool.transitions or tool.expire_after_days) and not s.bucket_lifecycle:
                rule = ("transitions", [x.model_dump(by_alias=True) for x in tool.transitions]) if tool.transitions else ("expireAfterDays", tool.expire_after_days)
                raise _fail(f"tools.{name}.{rule[0]}", rule[1],
                            "sets a bucket rule while storage.bucketLifecycle is false",
                            "remove the rule, or set storage.bucketLifecycle to true")
        if self.secrets.hetzner_access_key is None and self.target is Target.HETZNER:
            raise _fail("hetznerAccessKey", _MISSING, "is required for target hetzner",
                        "run `pulumi config set --secret hetznerAccessKey <key>` with the Hetzner project's S3 key")
        if self.secrets.hetzner_secret_key is None and self.target is Target.HETZNER:
            raise _fail("hetznerSecretKey", _MISSING, "is required for target hetzner",
                        "run `pulumi config set --secret hetznerSecretKey <secret>`")

    def _check_node_disks(self) -> None:
        """Scratch on a node's root volume must fit it, or the pod stays Pending on every node."""
        aws = self.aws
        samples = aws.sizing.metrics_samples_per_second
        if "thanos" in self.tools.enabled():
            disk = sizing.prometheus_disk_gib(samples, sizing.PROMETHEUS_RETENTION_HOURS)
            if disk > sizing.NODE_DISK_GIB:
                most = samples * sizing.NODE_DISK_GIB // disk
                raise _fail("aws.sizing.metricsSamplesPerSecond", samples,
                            f"needs {disk} GiB of Prometheus TSDB on its node's root volume, over the {sizing.NODE_DISK_GIB} GiB a pod may take there",
                            f"use at most about {most} samples/s per Prometheus (split the targets over more clusters, each a Thanos spoke)")
        if not ("thanos" in self.tools.enabled() and self.tools.thanos.owns_bucket):
            return
        if self.tools.thanos.mode == "receive":
            disk = sizing.prometheus_disk_gib(samples, sizing.RECEIVE_RETENTION_HOURS)
            if disk > sizing.NODE_DISK_GIB:
                raise _fail("aws.sizing.metricsSamplesPerSecond", samples,
                            f"needs {disk} GiB of Thanos Receive TSDB (a day) on each replica's node root volume, over the "
                            f"{sizing.NODE_DISK_GIB} GiB a pod may take there", "lower it, or use mode sidecar")
        disk = aws.thanos_compact_disk_gi
        if aws.thanos_compact_storage_class is None and disk is not None and disk > sizing.NODE_DISK_GIB:
            raise _fail("aws.thanosCompactDiskGi", disk,
                        f"does not fit the {sizing.NODE_DISK_GIB} GiB a pod may take of a node's root volume (EKS' default volume is 20 GiB): "
                        "the compactor would stay Pending", f"set aws.thanosCompactStorageClass (e.g. gp3, EBS CSI driver) for a volume "
                        f"of its own, or use at most {sizing.NODE_DISK_GIB}")

    def _check_buckets(self) -> None:
        seen: dict[str, str] = {}
        for name, tool in self.tools.owned().items():
            if tool.bucket in seen:
                raise _fail(f"tools.{name}.bucket", tool.bucket, f"is also tools.{seen[tool.bucket]}.bucket",
                            "give every tool its own bucket (identities and lifecycle rules are per bucket)")
            seen[tool.bucket] = name

    def _check_lifecycle(self, name: str, tool: _ToolBase) -> None:
        served = tool.served_hours()
        label = name.capitalize()
        last_day = 0
        for i, tr in enumerate(tool.transitions):
            key = f"tools.{name}.transitions[{i}]"
            if tr.days <= last_day:
                raise _fail(key, tr.days, "is not later than the previous transition", "list transitions in increasing days")
            last_day = tr.days
            if tr.storage_class == "ONEZONE_IA":
                raise _fail(key, tr.storage_class, "stores data in one availability zone, the failure this project exists to avoid",
                            "use STANDARD_IA, INTELLIGENT_TIERING or GLACIER_IR")
            if tr.storage_class in ARCHIVE_CLASSES and (served is None or tr.days * 24 <= served):
                until = "forever" if served is None else f"until hour {served}"
                raise _fail(key, tr.model_dump(by_alias=True),
                            f"moves data {label} still serves ({tool.retention_text()}, i.e. {until}) to {tr.storage_class}, "
                            "which cannot be read without a restore (403 InvalidObjectState)",
                            f"use one of {', '.join(READABLE_CLASSES)}, or remove the transition")
            minimum = MIN_TRANSITION_DAYS.get(tr.storage_class)
            if minimum and tr.days < minimum:
                raise _fail(key, tr.days, f"is below the {minimum}-day minimum AWS allows for {tr.storage_class}", f"use {minimum} or more days")
        if tool.expire_after_days is not None:
            key = f"tools.{name}.expireAfterDays"
            if served is None:
                raise _fail(key, tool.expire_after_days, f"would delete data {label} keeps forever ({tool.retention_text()})",
                            "remove expireAfterDays, or give every resolution a finite retention")
            if tool.expire_after_days * 24 <= served:
                minimum = served // 24 + 1
                raise _fail(key, tool.expire_after_days,
                            f"deletes data {label} still serves ({tool.retention_text()}); a bucket rule is only a safety net above it",
                            f"set it to at least {minimum}, or remove it")
            if tool.expire_after_days <= last_day:
                raise _fail(key, tool.expire_after_days, "is not after the last transition", "expire after the last transition")
        # Loki and Tempo get one data rule per tenant prefix (components/core/lifecycle.py), and only
        # when they have transitions or an expiration.
        if name in ("loki", "tempo") and (tool.transitions or tool.expire_after_days):
            rules = len(self.tenants) + FIXED_LIFECYCLE_RULES
            if rules > S3_MAX_LIFECYCLE_RULES:
                raise _fail("tenants", f"{len(self.tenants)} tenants",
                            f"needs {rules} lifecycle rules on the {label} bucket (per-tenant data prefixes); S3 allows {S3_MAX_LIFECYCLE_RULES}",
                            f"reduce the tenants, or remove tools.{name}.expireAfterDays and tools.{name}.transitions")


_BUCKET_EDGE = set(string.ascii_lowercase + string.digits)
_BUCKET_CHARS = _BUCKET_EDGE | {"-"}
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", "--x-s3", "--table-s3")


# The AWS services target aws needs in the stack's region: the buckets and the cluster.
AWS_SERVICES = ("s3", "eks")


@functools.lru_cache(maxsize=None)
def aws_regions(service: str) -> frozenset[str]:
    """Every region of every AWS partition where `service` has an endpoint, from the endpoint data
    the pinned botocore ships (requirements.txt), as the AWS SDKs know them. The offline plan runs
    no provider, so without this a misspelt region plans cleanly and only a real provider, with
    credentials, would notice it."""
    import botocore.session

    session = botocore.session.get_session()
    return frozenset(r for partition in session.get_available_partitions() for r in session.get_available_regions(service, partition))


def aws_region_problem(region: str, services: tuple[str, ...]) -> Optional[tuple[str, str]]:
    """(problem, fix) when `region` lacks one of `services`, else None."""
    import botocore

    missing = [svc for svc in services if region not in aws_regions(svc)]
    if not missing:
        return None
    offered = sorted(set.intersection(*(set(aws_regions(svc)) for svc in services)))
    nearest = difflib.get_close_matches(region, offered, n=1, cutoff=0.6)
    names = " and ".join(svc.upper() for svc in missing)
    return (f"is not a region where AWS offers {names} (the endpoint data of botocore {botocore.__version__})",
            f"use {nearest[0]} (the nearest name)" if nearest else f"use one of {', '.join(offered)}")


def bucket_name_problem(name: str) -> Optional[str]:
    """Every reason `name` cannot be a bucket on S3, Hetzner and MinIO alike ('; '-separated), or None."""
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append(f"is {len(name)} characters long (3-63 allowed)")
    if "." in name:
        problems.append("contains a dot, which breaks TLS for virtual-hosted bucket URLs")
    if any(c in string.ascii_uppercase for c in name):
        problems.append("has uppercase letters")
    others = sorted(set(name) - _BUCKET_CHARS - set(string.ascii_uppercase) - {"."})
    if others:
        problems.append(f"has characters other than lowercase letters, digits and hyphens: {' '.join(repr(c) for c in others)}")
    if name and (name[0] not in _BUCKET_EDGE or name[-1] not in _BUCKET_EDGE):
        problems.append("does not start and end with a lowercase letter or digit")
    try:
        ipaddress.ip_address(name)
        problems.append("is formatted as an IP address")
    except ValueError:
        pass
    problems += [f"starts with the reserved prefix {p!r}" for p in _RESERVED_PREFIXES if name.startswith(p)]
    problems += [f"ends with the reserved suffix {s!r}" for s in _RESERVED_SUFFIXES if name.endswith(s)]
    return "; ".join(problems) or None


# ---------------------------------------------------------------- naming
# IAM role names are at most 64 characters (IAM API reference, CreateRole: RoleName "Maximum length
# of 64"). Roles are named obs-<stack>-<service account> (components/core/identity.py), and a hub names
# its spokes' obs-<spoke>-prometheus roles, so a name is never shortened: it is refused here.
IAM_ROLE_NAME_MAX = 64


def role_name(stack: str, service_account: str) -> str:
    return f"obs-{stack}-{service_account}"


def default_name_prefix(stack: str) -> str:
    """obs-<stack>, lowercased and cut to a valid Docker name prefix."""
    slug = re.sub(r"[^a-z0-9-]+", "-", stack.lower()).strip("-") or "stack"
    return f"obs-{slug}"[:30].rstrip("-")
