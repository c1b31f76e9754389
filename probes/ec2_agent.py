"""The instance agent: runs on every fleet instance (Debian 12, python3 + python3-boto3 from the
distribution), never inside Pulumi. The user data ships this file verbatim with its JSON config.

    python3 agent.py boot    # address file, secrets, `docker-compose up`, register in Cloud Map
    python3 agent.py watch   # until the Auto Scaling group terminates this instance: then
                             # deregister, stop the tools (they flush), complete the lifecycle hook

Why polling IMDS: the terminating lifecycle hook puts the instance in Terminating:Wait and EC2
shows it as `autoscaling/target-lifecycle-state` = Terminated in the instance metadata (EC2 Auto
Scaling user guide, "Retrieve the target lifecycle state through instance metadata"), so the
instance drains itself with no queue or function outside it. The hook's timeout covers the stop
grace period; if this agent dies, the hook's default result lets the termination go on.

Credentials: the instance profile's role through IMDSv2 (boto3's default chain); nothing secret
is in the user data. Secrets (Grafana's) are read from Secrets Manager at boot into /run (tmpfs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any, Callable, Optional

CONFIG = "/etc/obs/agent.json"
IMDS = "http://169.254.169.254"
# IMDSv2 session tokens live at most 6 hours (EC2 user guide, "Use IMDSv2": X-aws-ec2-metadata-token-ttl-seconds).
TOKEN_TTL = 21600


class Imds:
    """IMDSv2 only: the launch template refuses token-less requests (http_tokens = required)."""

    def __init__(self, base: str = IMDS, opener: Callable[..., Any] = urllib.request.urlopen):
        self.base, self.opener, self.token = base, opener, ""

    def _token(self) -> str:
        request = urllib.request.Request(f"{self.base}/latest/api/token", method="PUT",
                                         headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL)})
        with self.opener(request, timeout=5) as response:
            return response.read().decode()

    def get(self, path: str) -> Optional[str]:
        """The metadata value at `path`, or None where the instance has none (HTTP 404)."""
        import urllib.error

        for attempt in (1, 2):
            if not self.token:
                self.token = self._token()
            request = urllib.request.Request(f"{self.base}/latest/meta-data/{path}", headers={"X-aws-ec2-metadata-token": self.token})
            try:
                with self.opener(request, timeout=5) as response:
                    return response.read().decode()
            except urllib.error.HTTPError as error:
                if error.code == 404:
                    return None
                if error.code == 401 and attempt == 1:
                    self.token = ""  # expired: fetch a new one once
                    continue
                raise
        return None


def write_private(path: str, content: str, uid: int) -> None:
    """A file only `uid` can read (the container's user), created with that mode from the start."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    os.chown(path, uid, uid)
    os.chmod(path, 0o400)


def fetch_secrets(secretsmanager: Any, secrets: list[dict[str, Any]]) -> dict[str, str]:
    """path -> value for each {path, secretArn, key, uid}: `key` picks a field of a JSON secret."""
    out = {}
    for item in secrets:
        value = secretsmanager.get_secret_value(SecretId=item["secretArn"])["SecretString"]
        out[item["path"]] = json.loads(value)[item["key"]] if item.get("key") else value
    return out


def register(servicediscovery: Any, service_ids: list[str], instance_id: str, address: str) -> list[str]:
    """Register this instance (its private IPv4 as the A record) in each of its fleet's services;
    returns the operation ids. Re-registering the same id updates the record (Cloud Map API
    RegisterInstance), so a reboot is harmless."""
    return [
        servicediscovery.register_instance(ServiceId=service, InstanceId=instance_id, Attributes={"AWS_INSTANCE_IPV4": address})["OperationId"]
        for service in service_ids
    ]


def deregister(servicediscovery: Any, service_ids: list[str], instance_id: str) -> list[str]:
    """Remove this instance's records before it stops: peers and queriers stop being sent here."""
    from botocore.exceptions import ClientError

    operations = []
    for service in service_ids:
        try:
            operations.append(servicediscovery.deregister_instance(ServiceId=service, InstanceId=instance_id)["OperationId"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "InstanceNotFound":
                raise
    return operations


def compose(config: dict[str, Any], *args: str) -> None:
    subprocess.run(["docker-compose", "--project-directory", config["composeDir"], "-f", f"{config['composeDir']}/docker-compose.yml", *args], check=True)


def boot(config: dict[str, Any], imds: Imds, session: Any) -> None:
    instance_id, address = imds.get("instance-id"), imds.get("local-ipv4")
    # Docker Compose reads .env from the project directory: the tools' configs take the
    # instance's address from ${INSTANCE_IP} (-config.expand-env=true), not from an interface name.
    with open(f"{config['composeDir']}/.env", "w") as f:
        f.write(f"INSTANCE_IP={address}\n")
    if config.get("secrets"):
        values = fetch_secrets(session.client("secretsmanager"), config["secrets"])
        for item in config["secrets"]:
            write_private(item["path"], values[item["path"]], item["uid"])
    compose(config, "up", "-d", "--no-build")
    register(session.client("servicediscovery"), config["serviceIds"], instance_id, address)


def drain(config: dict[str, Any], imds: Imds, session: Any) -> None:
    instance_id = imds.get("instance-id")
    deregister(session.client("servicediscovery"), config["serviceIds"], instance_id)
    # Loki (flush_on_shutdown) and Tempo (flush_all_on_shutdown) flush within the grace period.
    compose(config, "stop", "-t", str(config["stopGraceSeconds"]))
    session.client("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=config["autoScalingGroup"], LifecycleHookName=config["lifecycleHook"],
        InstanceId=instance_id, LifecycleActionResult="CONTINUE",
    )


def watch(config: dict[str, Any], imds: Imds, session: Any, sleep: Callable[[float], None] = time.sleep) -> None:
    while imds.get("autoscaling/target-lifecycle-state") != "Terminated":
        sleep(5)
    drain(config, imds, session)


def main(argv: list[str]) -> int:
    import boto3

    with open(CONFIG) as f:
        config = json.load(f)
    session = boto3.session.Session(region_name=config["region"])
    command = {"boot": boot, "watch": watch}.get(argv[1] if len(argv) > 1 else "")
    if command is None:
        print("usage: agent.py boot|watch", file=sys.stderr)
        return 2
    command(config, Imds(), session)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
