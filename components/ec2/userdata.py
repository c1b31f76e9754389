"""What boots a fleet instance, as pure data: the Compose file of the fleet's workloads (the same
`containers.workloads` every Docker platform runs) and the cloud-config user data that installs
Docker and Compose from Debian, writes the rendered tool configs, the Compose file and the
instance agent (probes/ec2_agent.py), and starts them.

Validated by the tools that will read them (tests/test_ec2.py): `docker-compose config` of Debian
12's docker-compose 1.29.2 and `cloud-init schema` of its cloud-init 22.4.2, the versions the
Debian 12 AMI installs.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.containers.workloads import Workload

COMPOSE_DIR = "/etc/obs/compose"
FILES_DIR = "/etc/obs/files"
AGENT_PATH = "/usr/local/lib/obs/agent.py"
AGENT_CONFIG = "/etc/obs/agent.json"
SECRETS_DIR = "/run/obs-secrets"
# The variable the agent writes to the project's .env at boot (agent.boot); configs that name the
# instance's own address read it with -config.expand-env=true.
ADDRESS_VAR = "INSTANCE_IP"
ADDRESS_REF = "${" + ADDRESS_VAR + "}"
# Debian 12 (bookworm) main: docker.io 20.10.24, docker-compose 1.29.2, python3-boto3 1.26.27.
PACKAGES = ("docker.io", "docker-compose", "python3-boto3")
# EC2 accepts at most 16 KB of user data before base64 (EC2 user guide, "Run commands when you
# launch an EC2 instance with user data input"); cloud-init reads gzip-compressed user data
# (cloud-init docs, "User data formats": compressed content).
USER_DATA_LIMIT = 16 * 1024

BOOT_UNIT = """[Unit]
Description=obs-storage agent: instance address, secrets, tools up, Cloud Map registration
Wants=network-online.target
After=network-online.target docker.service
Requires=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/python3 {agent} boot

[Install]
WantedBy=multi-user.target
"""

WATCH_UNIT = """[Unit]
Description=obs-storage agent: drain this instance when its Auto Scaling group terminates it
After=obs-agent-boot.service

[Service]
ExecStart=/usr/bin/python3 {agent} watch
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class Secret:
    """A value from Secrets Manager the agent writes to `path` (under /run, tmpfs) at boot."""

    path: str
    secret_arn: str
    key: str
    uid: int


def _escape(value: str) -> str:
    """Compose interpolates `$` in its own file; the workloads' values are literal."""
    return value.replace("$", "$$")


def host_path(w: Workload, path: str) -> str:
    return f"{FILES_DIR}/{w.name}{path}"


def compose_file(workloads: list[Workload], secret_mounts: dict[str, list[tuple[str, str]]] | None = None,
                 host_network: bool = True) -> dict[str, Any]:
    """One Compose service per workload. On the host's network (every fleet but monitoring) the
    instance has one interface, and memberlist, Thanos and Cloud Map all see its own address;
    otherwise on the project's Compose network, where the services reach each other by name."""
    secret_mounts = secret_mounts or {}
    names = {w.name for w in workloads}
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for w in workloads:
        env = {k: _escape(v) for k, v in sorted(w.env.items())}
        if any(ADDRESS_REF in f.content for f in w.files):
            env[ADDRESS_VAR] = "${" + ADDRESS_VAR + ":?written to .env by the agent at boot}"
        mounts = [f"{v}:{path}" for v, path in sorted(w.volumes.items())]
        mounts += [f"{host_path(w, f.path)}:{f.path}:ro" for f in w.files]
        mounts += [f"{source}:{target}:ro" for source, target in secret_mounts.get(w.name, [])]
        volumes.update({v: {} for v in w.volumes})
        service: dict[str, Any] = {
            "image": w.image,
            **({"network_mode": "host"} if host_network else {}),
            "restart": "unless-stopped",
            # The agent stops the tools with this grace before the instance terminates (flush).
            "stop_grace_period": f"{w.stop_grace_seconds}s",
        }
        if w.entrypoint:
            service["entrypoint"] = [_escape(a) for a in w.entrypoint]
        if w.args:
            service["command"] = [_escape(a) for a in w.args]
        if env:
            service["environment"] = env
        if w.user:
            service["user"] = w.user
        if mounts:
            service["volumes"] = mounts
        if w.health:
            # The workload's own start window, as on Swarm: Loki's /ready waits for its WAL replay
            # and Thanos store's for its initial bucket sync (containers/workloads.py).
            service["healthcheck"] = {"test": w.health, "interval": "10s", "timeout": "5s", "retries": 6,
                                      "start_period": f"{w.health_start_seconds}s"}
        if w.labels:
            service["labels"] = dict(sorted(w.labels.items()))
        after = [name for name in w.after if name in names]
        if after:
            service["depends_on"] = after
        services[w.name] = service
    out: dict[str, Any] = {"version": "3.8", "services": services}
    if volumes:
        out["volumes"] = volumes
    return out


def agent_config(fleet: str, region: str, group: str, hook: str, service_ids: list[str], stop_grace_seconds: int,
                 secrets: list[Secret]) -> dict[str, Any]:
    """probes/ec2_agent.py's configuration (/etc/obs/agent.json): ids and names, no secret."""
    return {
        "fleet": fleet, "region": region, "composeDir": COMPOSE_DIR, "serviceIds": service_ids, "stopGraceSeconds": stop_grace_seconds,
        "autoScalingGroup": group, "lifecycleHook": hook,
        "secrets": [{"path": s.path, "secretArn": s.secret_arn, "key": s.key, "uid": s.uid} for s in secrets],
    }


def cloud_config(workloads: list[Workload], compose: dict[str, Any], agent_config: dict[str, Any]) -> str:
    """The #cloud-config document of one fleet (plain text; `encode` compresses it)."""
    files = [{"path": host_path(w, f.path), "content": f.content, "permissions": "0444"} for w in workloads for f in w.files]
    files += [
        {"path": f"{COMPOSE_DIR}/docker-compose.yml", "content": yaml.safe_dump(compose, sort_keys=False), "permissions": "0444"},
        {"path": AGENT_CONFIG, "content": json.dumps(agent_config, indent=1, sort_keys=True), "permissions": "0444"},
        {"path": AGENT_PATH, "content": (Path(__file__).resolve().parents[2] / "probes" / "ec2_agent.py").read_text(), "permissions": "0555"},
        {"path": "/etc/systemd/system/obs-agent-boot.service", "content": BOOT_UNIT.format(agent=AGENT_PATH), "permissions": "0444"},
        {"path": "/etc/systemd/system/obs-agent-watch.service", "content": WATCH_UNIT.format(agent=AGENT_PATH), "permissions": "0444"},
    ]
    document = {
        "package_update": True,
        "packages": list(PACKAGES),
        "write_files": files,
        # Both units run at every boot (secrets live in /run, a tmpfs); runcmd itself runs once.
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "docker.service"],
            ["systemctl", "enable", "--now", "obs-agent-boot.service", "obs-agent-watch.service"],
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(document, sort_keys=False, width=10_000)


def encode(text: str) -> str:
    """base64 of the gzip-compressed user data, as a launch template takes it."""
    data = gzip.compress(text.encode(), mtime=0)
    if len(data) > USER_DATA_LIMIT:
        raise ValueError(f"user data is {len(data)} bytes compressed, over EC2's {USER_DATA_LIMIT}")
    return base64.b64encode(data).decode()
