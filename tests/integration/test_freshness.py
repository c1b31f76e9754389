"""The bucket-freshness probe (probes/bucket_freshness.py) against real S3 servers on
127.0.0.1: SeaweedFS checks its signatures, moto answers its IRSA web-identity exchange. The
probe runs as the containers run it: `python3 bucket_freshness.py --config FILE`, standard library
only, credentials from the environment the platform gives it."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.servers import LOOPBACK, free_ports
from tools.verify.common import Report
from tools.verify import freshness as verify_freshness

pytestmark = pytest.mark.real_server
SCRIPT = Path(__file__).resolve().parents[2] / "probes" / "bucket_freshness.py"
SIDECAR_BLOCK = "01ARYZ6S41TSV4RRFFQ69G5FAV"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {**env, **extra}


def metrics(text: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+\{[^}]*\}) (\S+)$", text, re.MULTILINE)}


def write_config(tmp_path: Path, tool: str, bucket: str, endpoint: str, tls: bool, tenants: list[str], prefix: str = "", port: int = 9109) -> Path:
    path = tmp_path / f"{tool}.json"
    path.write_text(json.dumps({"tool": tool, "bucket": bucket, "prefix": prefix, "tenants": tenants, "region": "us-east-1",
                                "endpoint": endpoint, "tls": tls, "path_style": True, "max_age_seconds": 3600, "port": port}))
    return path


def fill(client, region: str = "us-east-1") -> dict[str, float]:
    """One bucket per tool in its own key layout; returns the LastModified the probe must report."""
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    for bucket in ("obs-loki", "obs-tempo", "obs-thanos"):
        client.create_bucket(Bucket=bucket, **location)
    client.put_object(Bucket="obs-loki", Key="index/index_20001/fake/1-compactor.tsdb.gz", Body=b"idx")
    client.put_object(Bucket="obs-loki", Key="fake/7f3a9/18b:18c:a1b2", Body=b"chunk")
    index = {"meta": [{"blockID": "b1", "endTime": "2026-08-01T11:55:30.123456789Z"}], "compacted": []}
    client.put_object(Bucket="obs-tempo", Key="traces/single-tenant/index.json.gz", Body=gzip.compress(json.dumps(index).encode()))
    client.put_object(Bucket="obs-thanos", Key=f"{SIDECAR_BLOCK}/meta.json", Body=json.dumps({"thanos": {"source": "sidecar"}}).encode())
    modified = client.head_object(Bucket="obs-loki", Key="index/index_20001/fake/1-compactor.tsdb.gz")["LastModified"].timestamp()
    return {"loki": modified}


def test_probe_signs_and_reads_every_tools_layout_on_seaweedfs(seaweedfs, tmp_path):
    expected = fill(seaweedfs.client("s3"))
    credentials = tmp_path / "s3-credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {seaweedfs.admin[0]}\naws_secret_access_key = {seaweedfs.admin[1]}\n")
    env = clean_env(AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    cases = {
        "loki": (write_config(tmp_path, "loki", "obs-loki", seaweedfs.endpoint, False, ["fake", "team-b"]),
                 {'tenant="fake"': expected["loki"]}),
        "tempo": (write_config(tmp_path, "tempo", "obs-tempo", seaweedfs.endpoint, False, ["single-tenant"], "traces"),
                  {'tenant="single-tenant"': 1785585330.123457}),
        "thanos": (write_config(tmp_path, "thanos", "obs-thanos", seaweedfs.endpoint, False, []), {'tenant=""': 1469918176.385}),
    }
    for tool, (config, newest) in cases.items():
        proc = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--once"], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        found = metrics(proc.stdout)
        bucket = f"obs-{tool}"
        assert found[f'obs_bucket_probe_success{{tool="{tool}",bucket="{bucket}"}}'] == 1
        for tenant, value in newest.items():
            assert found[f'obs_bucket_newest_upload_timestamp_seconds{{tool="{tool}",bucket="{bucket}",{tenant}}}'] == pytest.approx(value, abs=1e-3)
    # A tenant with nothing yet: reported as found 0.
    proc = subprocess.run([sys.executable, str(SCRIPT), "--config", str(cases["loki"][0]), "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert metrics(proc.stdout)['obs_bucket_objects_found{tool="loki",bucket="obs-loki",tenant="team-b"}'] == 0


def test_a_wrong_secret_is_refused_and_reported(seaweedfs, tmp_path):
    fill(seaweedfs.client("s3"))
    credentials = tmp_path / "s3-credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {seaweedfs.admin[0]}\naws_secret_access_key = not-the-secret\n")
    config = write_config(tmp_path, "loki", "obs-loki", seaweedfs.endpoint, False, ["fake"])
    proc = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--once"], env=clean_env(AWS_SHARED_CREDENTIALS_FILE=str(credentials)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert metrics(proc.stdout)['obs_bucket_probe_success{tool="loki",bucket="obs-loki"}'] == 0


def test_probe_serves_metrics_over_http(seaweedfs, tmp_path):
    fill(seaweedfs.client("s3"))
    credentials = tmp_path / "s3-credentials"
    credentials.write_text(f"[default]\naws_access_key_id = {seaweedfs.admin[0]}\naws_secret_access_key = {seaweedfs.admin[1]}\n")
    (port,) = free_ports(1)
    config = write_config(tmp_path, "thanos", "obs-thanos", seaweedfs.endpoint, False, [], port=port)
    # The probe listens on all interfaces in its container; here the port is a free loopback one.
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--config", str(config)], env=clean_env(AWS_SHARED_CREDENTIALS_FILE=str(credentials)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        url = f"http://{LOOPBACK}:{port}/metrics"
        deadline, text = time.monotonic() + 30, ""
        while time.monotonic() < deadline and "obs_bucket_probe_success" not in text:
            try:
                text = urllib.request.urlopen(url, timeout=2).read().decode()
            except OSError:
                time.sleep(0.3)
        assert metrics(text)['obs_bucket_probe_success{tool="thanos",bucket="obs-thanos"}'] == 1
        health = subprocess.run([sys.executable, str(SCRIPT), "--health", url], capture_output=True, timeout=30)
        assert health.returncode == 0
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert subprocess.run([sys.executable, str(SCRIPT), "--health", url], capture_output=True, timeout=30).returncode == 1


def test_probe_takes_irsa_credentials_from_sts(moto, tmp_path):
    client = moto.client("s3")
    fill(client, moto.region)
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6b2JzZXJ2YWJpbGl0eTpsb2tpLXF1ZXJpZXIifQ.c2ln")
    config = write_config(tmp_path, "loki", "obs-loki", moto.endpoint, True, ["fake"])
    env = clean_env(AWS_WEB_IDENTITY_TOKEN_FILE=str(token), AWS_ROLE_ARN="arn:aws:iam::123456789012:role/obs-staging-loki-querier",
                    AWS_ENDPOINT_URL_STS=moto.endpoint, SSL_CERT_FILE=str(moto.ca_bundle))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert metrics(proc.stdout)['obs_bucket_objects_found{tool="loki",bucket="obs-loki",tenant="fake"}'] == 1


def test_verify_freshness_reads_the_same_layouts_with_boto3(seaweedfs):
    client = seaweedfs.client("s3")
    expected = fill(client)
    report = Report(as_json=True)
    verify_freshness.check_tool(report, "loki", {"name": "obs-loki", "prefix": ""}, verify_freshness.Boto3Lister(client, "obs-loki"), now=expected["loki"] + 60)
    verify_freshness.check_tool(report, "thanos", {"name": "obs-thanos", "prefix": ""}, verify_freshness.Boto3Lister(client, "obs-thanos"))
    statuses = [(r.subject, r.status) for r in report.results]
    # Loki's index was just written; the Thanos block's ULID is from 2016: long stale.
    assert statuses == [("loki", "PASS"), ("thanos", "FAIL")], report.results
