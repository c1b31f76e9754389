"""What every part of `python -m tools.verify` shares: the stack's outputs and credentials read
once (`Stack`), the report that never prints a secret, and small helpers for probing a server."""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

PARTS = ("storage", "identity", "tools", "freshness")
ROOT = Path(__file__).resolve().parents[2]


class OutputsError(Exception):
    """The stack outputs could not be read or lack what a check needs."""


@dataclass
class Result:
    part: str
    subject: str
    status: str  # PASS, FAIL or SKIP
    detail: str


@dataclass
class Report:
    """Prints each result as it comes (text) or collects them (JSON); never prints a secret."""

    as_json: bool = False
    secrets: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    stream: Any = sys.stdout

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "[secret]")
        return text

    def add(self, part: str, subject: str, status: str, detail: str) -> None:
        result = Result(part, subject, status, self.redact(detail))
        self.results.append(result)
        if not self.as_json:
            print(f"{result.status:<4}  {part:<8}  {subject:<14}  {result.detail}", file=self.stream, flush=True)

    def passed(self, part: str, subject: str, detail: str) -> None:
        self.add(part, subject, "PASS", detail)

    def failed(self, part: str, subject: str, detail: str) -> None:
        self.add(part, subject, "FAIL", detail)

    def skipped(self, part: str, subject: str, detail: str) -> None:
        self.add(part, subject, "SKIP", detail)

    def check(self, part: str, subject: str, ok: bool, detail: str, why: str = "") -> bool:
        self.add(part, subject, "PASS" if ok else "FAIL", detail if ok or not why else f"{detail}: {why}")
        return ok

    def progress(self, text: str) -> None:
        print(f"      ... {self.redact(text)}", file=sys.stderr, flush=True)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in ("PASS", "FAIL", "SKIP")}


# ---------------------------------------------------------------- the stack and its credentials
@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str
    session_token: Optional[str] = None


@dataclass
class Stack:
    name: str
    outputs: dict[str, Any]
    # Credentials the deployment gave each tool (local MinIO users; Hetzner's one key pair).
    tool_keys: dict[str, Keys] = field(default_factory=dict)
    # Credentials that may read every bucket's configuration (MinIO root, Hetzner key pair);
    # None on AWS, where the caller's own AWS credentials are used.
    admin_keys: Optional[Keys] = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def target(self) -> str:
        return self.outputs["target"]

    @property
    def buckets(self) -> dict[str, dict[str, Any]]:
        return self.outputs["buckets"]

    @property
    def identities(self) -> dict[str, dict[str, Any]]:
        return self.outputs.get("identities", {})

    @property
    def urls(self) -> dict[str, str]:
        return self.outputs.get("urls", {})

    def probe_key(self, tool: str, what: str) -> str:
        # Under the tool's prefix (its credentials reach nothing else), in a folder of its own.
        return f"{self.buckets[tool]['prefix']}obs-verify/{self.run_id}/{what}"

    def endpoint_url(self) -> Optional[str]:
        if self.target == "aws":
            return None  # the region's endpoint (boto3 also honours AWS_ENDPOINT_URL)
        if "minioApi" in self.urls:
            return self.urls["minioApi"]  # buckets.*.endpoint is the address inside the Docker network
        bucket = next(iter(self.buckets.values()))
        return f"{'https' if bucket.get('tls', True) else 'http'}://{bucket['endpoint']}"

    def owner_s3(self, report: Report, part: str):
        """An S3 client that may read every bucket and its configuration (MinIO root, the Hetzner key
        pair, the caller's AWS credentials), or None after failing every bucket's `part` check
        when the outputs give none."""
        if self.target != "aws" and self.admin_keys is None:
            for tool in self.buckets:
                report.failed(part, tool, "no credentials to read the bucket with (outputs lack minioRootUser/minioRootPassword)")
            return None
        return self.s3(self.admin_keys)

    def s3(self, keys: Optional[Keys], anonymous: bool = False):
        import boto3
        import botocore
        from botocore.config import Config

        bucket = next(iter(self.buckets.values()))
        config = Config(
            s3={"addressing_style": "path" if bucket.get("pathStyle") else "auto"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            **({"signature_version": botocore.UNSIGNED} if anonymous else {}),
        )
        credentials = {}
        if keys is not None and not anonymous:
            credentials = {"aws_access_key_id": keys.access_key, "aws_secret_access_key": keys.secret_key, "aws_session_token": keys.session_token}
        return boto3.client("s3", endpoint_url=self.endpoint_url(), region_name=bucket["region"], config=config, **credentials)

    def aws(self, service: str):
        import boto3
        from botocore.config import Config

        region = next(iter(self.buckets.values()))["region"]
        return boto3.client(service, region_name=region, config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30))

    def secrets(self) -> list[str]:
        values = [self.outputs.get(k) for k in ("minioRootUser", "minioRootPassword", "grafanaAdminPassword")]
        for keys in [*self.tool_keys.values(), self.admin_keys]:
            if keys is not None:
                values += [keys.secret_key, keys.session_token]
        return [v for v in values if isinstance(v, str) and v]


def parse_credentials_file(content: str) -> Keys:
    """The AWS shared-credentials file the deployment hands a tool ([default] profile)."""
    # No interpolation: a '%' in a key is a character, as botocore's own parser reads it.
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(content)
    section = parser["default"]
    return Keys(section["aws_access_key_id"], section["aws_secret_access_key"])


def pulumi_json(args: list[str]) -> Any:
    try:
        proc = subprocess.run(["pulumi", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise OutputsError("the Pulumi CLI is not installed; install it or pass --outputs FILE") from None
    if proc.returncode != 0:
        # stderr of a failed command carries no secret value; stdout (which may) is never shown.
        raise OutputsError(f"pulumi {' '.join(args[:3])} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return json.loads(proc.stdout)


def load_stack(name: str, outputs_file: Optional[str], parts: tuple[str, ...] = PARTS) -> Stack:
    if outputs_file:
        outputs = json.loads(Path(outputs_file).read_text())
    else:
        outputs = pulumi_json(["stack", "output", "--json", "--show-secrets", "--stack", name])
    for key in ("target", "buckets"):
        if key not in outputs:
            raise OutputsError(f"the outputs of stack {name!r} have no {key!r}: is the stack deployed (pulumi up)?")
    needed = {key for part in parts for key in SECRET_OUTPUTS[part]}
    hidden = sorted(key for key in needed if any(value in PLACEHOLDERS for _, value in _leaves(outputs.get(key))))
    if hidden:
        raise OutputsError(f"the outputs hold placeholders instead of values ({', '.join(hidden)}), as `pulumi stack output --json` "
                           "without --show-secrets or an offline plan writes them; write the file with "
                           f"`pulumi stack output --json --show-secrets --stack {name}`, or leave out --outputs")
    stack = Stack(name, outputs)
    target = outputs["target"]
    if target == "local":
        if "minioRootUser" in outputs and "minioRootPassword" in outputs:
            stack.admin_keys = Keys(outputs["minioRootUser"], outputs["minioRootPassword"])
        for tool, content in (outputs.get("s3Credentials") or {}).items():
            stack.tool_keys[tool] = parse_credentials_file(content)
    elif target == "hetzner" and {"storage", "identity", "freshness"} & set(parts):
        stack.admin_keys = _hetzner_key_pair(name, outputs)
        if stack.admin_keys is not None:
            stack.tool_keys = {tool: stack.admin_keys for tool in outputs["buckets"]}
    return stack


# What stands in for a value the outputs do not show: a secret (`pulumi stack output --json` without
# --show-secrets, and the offline plan) or a value only known after `pulumi up` (the offline plan).
PLACEHOLDERS = ("[secret]", "[unknown]")
# The secret outputs each part uses (credentials; Grafana's admin password for its datasource checks).
_KEYS = ("minioRootUser", "minioRootPassword", "s3Credentials")
SECRET_OUTPUTS = {"storage": _KEYS, "identity": _KEYS, "freshness": _KEYS, "tools": (*_KEYS, "grafanaAdminPassword")}


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def aws_credentials_problem() -> Optional[str]:
    """Why the caller's AWS credentials cannot be used, or None: every AWS check needs them, so
    without any there is one reason to give, not one failed check per bucket and role."""
    import botocore.session
    from botocore.exceptions import BotoCoreError

    try:
        found = botocore.session.get_session().get_credentials()
    except BotoCoreError as error:
        return f"the AWS credentials cannot be read ({error})"
    if found is None:
        return ("no AWS credentials found (botocore looked in the environment, the shared credentials and config files and "
                "the instance or container metadata); sign in to the account of the stack's buckets (for example "
                "`aws sso login --profile P` and `export AWS_PROFILE=P`) and run it again, or check only the tools with --only tools")
    return None


def _hetzner_key_pair(name: str, outputs: dict[str, Any]) -> Optional[Keys]:
    """Hetzner has no IAM: every tool uses the project's key pair, kept in the stack config."""
    given = outputs.get("s3Credentials") or {}
    if given:
        return parse_credentials_file(next(iter(given.values())))
    access = pulumi_json(["config", "get", "obs-storage:hetznerAccessKey", "--stack", name, "--json"])
    secret = pulumi_json(["config", "get", "obs-storage:hetznerSecretKey", "--stack", name, "--json"])
    return Keys(access["value"], secret["value"])


# ---------------------------------------------------------------- S3 call helpers
BAD_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


def attempt(call: Callable[[], Any]) -> tuple[str, Any]:
    """('allowed', response), ('denied', code) or ('error', text): the outcome of one real call."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return "allowed", call()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        # Wrong credentials are also a 403, but they prove nothing about what is allowed.
        if code not in BAD_CREDENTIALS and (code in ("AccessDenied", "Forbidden") or status == 403):
            return "denied", code or "403"
        return "error", f"{code or status}: {error.response.get('Error', {}).get('Message', '')}".strip()
    except BotoCoreError as error:
        return "error", str(error)


def delete_all_versions(client, bucket: str, key: str) -> None:
    """Remove a probe object completely: on a versioned bucket a plain delete leaves it behind."""
    from botocore.exceptions import ClientError

    try:
        page = client.list_object_versions(Bucket=bucket, Prefix=key)
    except ClientError:
        # No version listing on this server: a plain delete is all there is.
        attempt(lambda: client.delete_object(Bucket=bucket, Key=key))
        return
    # Only what exists: a plain delete of a missing key would leave a delete marker behind.
    for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
        if v["Key"] == key:
            attempt(lambda: client.delete_object(Bucket=bucket, Key=key, VersionId=v["VersionId"]))


def wait_for(report: Report, what: str, poll: Callable[[], Any], timeout: float, interval: float = 2.0) -> Any:
    """Poll until `poll` returns something truthy, showing progress; None on timeout."""
    start = last = time.monotonic()
    while True:
        value = poll()
        if value:
            return value
        now = time.monotonic()
        if now - start >= timeout:
            return None
        if now - last >= 5:
            report.progress(f"waiting for {what} ({int(now - start)}s of {int(timeout)}s)")
            last = now
        time.sleep(interval)
