"""Integration suite: the plans meet real servers (SeaweedFS, moto, Prometheus) on 127.0.0.1.

Every test here is marked `integration` (run alone with `make test-integration`; `make test`
leaves them out); those that talk to a server started here are also marked `real_server`, and the
run ends with how many of those ran.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.servers import LOOPBACK, Server, binary, free_ports

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


_real_server_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report):
    if "real_server" in report.keywords and (report.when == "call" or report.outcome != "passed"):
        _real_server_outcomes[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter):
    if not _real_server_outcomes:
        return
    outcomes = list(_real_server_outcomes.values())
    terminalreporter.write_line(
        f"real servers: {len(outcomes)} tests ran against real servers "
        f"({outcomes.count('passed')} passed, {outcomes.count('failed')} failed, {outcomes.count('skipped')} skipped)"
    )


@functools.lru_cache(maxsize=None)
def _plan(stack: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "tools.plan", "--stack", stack, "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"tools.plan --stack {stack} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


@pytest.fixture
def plan_json():
    """plan_json(stack) -> a fresh copy of `python -m tools.plan --stack S --json` (run once per stack)."""
    return lambda stack: json.loads(_plan(stack))


# ---------------------------------------------------------------- SeaweedFS
# Throwaway credentials of the server's admin identity: `weed` turns AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY in its environment into a static admin (seaweedfs 4.44,
# weed/s3api/auth_credentials.go, loadEnvironmentVariableCredentials).
ADMIN = ("obs-test-admin", "obs-test-admin-secret-key-0123456789")


@dataclass
class S3Server:
    endpoint: str
    admin: tuple[str, str]
    region: str = "us-east-1"
    ca_bundle: str | None = None

    def client(self, service: str, keys: tuple[str, str] | None = None):
        import boto3
        from botocore.config import Config

        access, secret = keys or self.admin
        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region, aws_access_key_id=access, aws_secret_access_key=secret,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}), verify=self.ca_bundle)


@pytest.fixture
def seaweedfs(tmp_path) -> Iterator[S3Server]:
    """A fresh SeaweedFS (master, volume, filer, S3 with the embedded IAM API) per test.

    Flags read from `weed help server` and weed/command/server.go at seaweedfs 4.44: every port
    explicit (gRPC ports too), -ip and -ip.bind on loopback, telemetry off (it would report to a
    public address), Iceberg/Lance ports off, IAM writes on (`-s3.iam.readOnly` defaults to true).
    """
    names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc"]
    ports = dict(zip(names, free_ports(len(names))))
    args = [binary("weed"), "server", f"-dir={tmp_path / 'data'}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}", "-master.telemetry=false",
            "-filer", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.iam.readOnly=false",
            # Every bucket is a collection that grows several volumes at once: many small volumes.
            "-master.volumeSizeLimitMB=64", "-volume.max=100",
            *(f"-{name}={port}" for name, port in ports.items())]
    (tmp_path / "data").mkdir()
    server = Server("seaweedfs", args, tmp_path, env={"AWS_ACCESS_KEY_ID": ADMIN[0], "AWS_SECRET_ACCESS_KEY": ADMIN[1]}).start()
    s3 = S3Server(f"http://{LOOPBACK}:{ports['s3.port']}", ADMIN)
    try:
        client = s3.client("s3")

        def writable() -> bool:
            # Writes fail until the volume server has registered with the master.
            if "obs-test-warm-up" not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
                client.create_bucket(Bucket="obs-test-warm-up")
            client.put_object(Bucket="obs-test-warm-up", Key="x", Body=b"x")
            client.delete_object(Bucket="obs-test-warm-up", Key="x")
            client.delete_bucket(Bucket="obs-test-warm-up")
            return True

        server.wait_ready(writable, timeout=90)
        yield s3
    finally:
        server.stop()


# ---------------------------------------------------------------- moto (AWS S3, IAM, STS)
def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1: moto serves TLS, so the buckets' TLS-only policy lets the
    suite in the way AWS would (plain-HTTP requests are denied by it)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOOPBACK)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Moto:
    endpoint: str
    ca_bundle: Path

    def post(self, path: str, data: bytes = b"") -> None:
        import ssl

        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        # text/plain: a form content type would hide the body from moto (Flask parses forms).
        request = urllib.request.Request(f"{self.endpoint}{path}", data=data, method="POST", headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10, context=context)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory) -> Iterator[Moto]:
    (port,) = free_ports(1)
    workdir = tmp_path_factory.mktemp("moto")
    cert, key = _self_signed_certificate(workdir)
    server = Server("moto", [binary("moto_server"), "-H", LOOPBACK, "-p", str(port), "-c", str(cert), "-k", str(key)], workdir).start()
    moto = Moto(f"https://{LOOPBACK}:{port}", cert)
    try:
        server.wait_ready(lambda: moto.post("/moto-api/reset") is None, timeout=60)
        yield moto
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server, monkeypatch) -> Iterator[S3Server]:
    """The session's moto server, emptied and with authentication off before each test; AWS
    clients here and in `tools.verify` subprocesses reach it through AWS_ENDPOINT_URL."""
    moto_server.post("/moto-api/reset")
    # moto authenticates requests once its count of unauthenticated ones is used up (moto 5.2.5,
    # moto/core/authorization.py; POST /moto-api/reset-auth sets the count).
    moto_server.post("/moto-api/reset-auth", b"inf")
    for name, value in {"AWS_ENDPOINT_URL": moto_server.endpoint, "AWS_CA_BUNDLE": str(moto_server.ca_bundle),
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    yield S3Server(moto_server.endpoint, ("testing", "testing"), region="ap-northeast-2", ca_bundle=str(moto_server.ca_bundle))
    moto_server.post("/moto-api/reset-auth", b"inf")


def run_verify(outputs: dict[str, Any], tmp_path: Path, stack: str, *only: str, env: dict[str, str] | None = None, extra: list[str] = ()) -> tuple[int, dict[str, Any], str]:
    """`python -m tools.verify --json` on an outputs file; returns (exit code, JSON, stderr)."""
    import os

    path = tmp_path / f"outputs-{stack}.json"
    path.write_text(json.dumps(outputs))
    args = [sys.executable, "-m", "tools.verify", "--stack", stack, "--outputs", str(path), "--json", *(a for part in only for a in ("--only", part)), *extra]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})
    assert proc.stdout.strip(), f"tools.verify printed nothing (exit {proc.returncode}): {proc.stderr}"
    return proc.returncode, json.loads(proc.stdout), proc.stderr
