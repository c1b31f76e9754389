"""The bucket-freshness probe without a server: its S3 signatures against botocore's, its reading
of each tool's key layout, its metrics, and the `tools.verify` check built on it.
(tests/integration/test_freshness.py runs it against real S3 servers; tests/test_monitoring.py
checks where each platform runs it.)"""

from __future__ import annotations

import datetime
import gzip
import json
import re

import pytest

from probes import bucket_freshness as bf
from tools.verify import freshness as verify_freshness


# ---------------------------------------------------------------- signatures
@pytest.mark.parametrize("url", [
    "https://acme-loki.s3.ap-northeast-2.amazonaws.com/?delimiter=%2F&list-type=2&prefix=index%2F",
    "http://minio:9000/loki/?continuation-token=a%2Bb%3D&list-type=2&prefix=index%2Findex_20000%2Ffake%2F",
    "https://fsn1.your-objectstorage.com/acme-prod-tempo/traces/single-tenant/index.json.gz",
    "https://acme-thanos.s3.us-east-1.amazonaws.com/metrics/01ARYZ6S41TSV4RRFFQ69G5FAV/meta.json",
])
@pytest.mark.parametrize("token", [None, "session-token/with+chars="])
def test_signature_equals_botocores(url, token, monkeypatch):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    region = re.search(r"s3\.([a-z0-9-]+)\.amazonaws", url)
    region = region.group(1) if region else "us-east-1"
    now = datetime.datetime(2026, 8, 1, 12, 30, 5, tzinfo=datetime.timezone.utc)
    ours = bf.sign("GET", url, region, bf.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), now)

    request = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": bf.EMPTY_SHA256})
    auth = S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), "s3", region)
    # botocore reads its clock through botocore.auth.get_current_datetime: the same instant.
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: now.replace(tzinfo=None))
    auth.add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]


# ---------------------------------------------------------------- key layouts
class FakeBucket:
    """Objects by key with their LastModified; lists like S3 (sorted, with delimiters)."""

    def __init__(self, objects: dict[str, tuple[float, bytes]]):
        self.objects = objects

    def list(self, prefix: str, delimiter: str = ""):
        found, prefixes = [], set()
        for key in sorted(self.objects):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter)[0] + delimiter)
            else:
                found.append((key, self.objects[key][0]))
        return found, sorted(prefixes)

    def get(self, key: str) -> bytes:
        if key not in self.objects:
            raise RuntimeError("S3 answered 404 NoSuchKey")
        return self.objects[key][1]


def test_loki_newest_index_file_per_tenant_across_the_two_newest_tables():
    bucket = FakeBucket({
        "index/index_20000/fake/1-compactor.tsdb.gz": (1000.0, b""),
        "index/index_20001/fake/2-compactor.tsdb.gz": (5000.0, b""),
        "index/index_20001/fake/3-compactor.tsdb.gz": (4000.0, b""),
        # An older table: ignored (today's and yesterday's tables only).
        "index/index_19990/team-a/9.tsdb.gz": (9999.0, b""),
        "index/index_20000/team-a/1.tsdb.gz": (3000.0, b""),
        # Ingesters' multi-tenant uploads and chunks are not a tenant's index.
        "index/index_20001/ingester-0-1700000000.tsdb.gz": (7000.0, b""),
        "fake/7f3a/1:2:3": (8000.0, b""),
    })
    assert bf.loki_newest(bucket, ["fake", "team-a", "team-b"]) == {"fake": 5000.0, "team-a": 3000.0, "team-b": None}


def test_tempo_newest_block_end_time_from_the_tenant_index():
    index = {"created_at": "2026-08-01T12:00:00Z", "meta": [
        {"blockID": "a", "endTime": "2026-08-01T11:40:00.123456789Z"},
        {"blockID": "b", "endTime": "2026-08-01T11:55:30.5Z"},
    ], "compacted": []}
    bucket = FakeBucket({"traces/single-tenant/index.json.gz": (0.0, gzip.compress(json.dumps(index).encode()))})
    expected = datetime.datetime(2026, 8, 1, 11, 55, 30, 500000, tzinfo=datetime.timezone.utc).timestamp()
    assert bf.tempo_newest(bucket, "traces/", ["single-tenant", "team-b"]) == {"single-tenant": expected, "team-b": None}


def test_ulid_times_from_known_vectors():
    # oklog/ulid: time.Unix(1000000, 0) -> 0000XSNJG0...; rafaelsales/ulid spec: 1469918176.385 -> 01ARYZ6S41.
    assert bf.ulid_time("0000XSNJG0MQJHBF4QX1EFD6Y3") == 1_000_000.0
    assert bf.ulid_time("01ARYZ6S41" + "TSV4RRFFQ69G5FAV") == pytest.approx(1_469_918_176.385)
    assert bf.ulid_time("debug") is None


def test_thanos_newest_block_a_sidecar_uploaded_not_the_compactors():
    sidecar, compacted = "01ARYZ6S41TSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAV"  # the compactor's is newer
    bucket = FakeBucket({
        f"metrics/{sidecar}/meta.json": (0.0, json.dumps({"thanos": {"source": "sidecar"}}).encode()),
        f"metrics/{compacted}/meta.json": (0.0, json.dumps({"thanos": {"source": "compactor"}}).encode()),
        "metrics/debug/metas/x.json": (0.0, b"{}"),
    })
    assert bf.thanos_newest(bucket, "metrics/") == {"": bf.ulid_time(sidecar)}
    assert bf.thanos_newest(FakeBucket({}), "") == {"": None}


# ---------------------------------------------------------------- the exporter's metrics
def test_metrics_report_the_newest_upload_or_the_probe_start():
    bucket = FakeBucket({"index/index_20001/fake/2.tsdb.gz": (5000.0, b"")})
    probe = bf.Probe("loki", "acme-loki", "", ["fake", "team-b"], 10800, started=123.0)
    probe.run(bucket)
    text = probe.metrics()
    assert 'obs_bucket_newest_upload_timestamp_seconds{tool="loki",bucket="acme-loki",tenant="fake"} 5000.000' in text
    assert 'obs_bucket_newest_upload_timestamp_seconds{tool="loki",bucket="acme-loki",tenant="team-b"} 123.000' in text
    assert 'obs_bucket_objects_found{tool="loki",bucket="acme-loki",tenant="team-b"} 0' in text
    assert 'obs_bucket_upload_max_age_seconds{tool="loki",bucket="acme-loki",tenant="fake"} 10800' in text
    assert 'obs_bucket_probe_success{tool="loki",bucket="acme-loki"} 1' in text


def test_a_failing_bucket_keeps_the_last_newest_upload_and_reports_failure():
    probe = bf.Probe("loki", "acme-loki", "", ["fake"], 10800, started=123.0)
    probe.run(FakeBucket({"index/index_20001/fake/2.tsdb.gz": (5000.0, b"")}))

    class Refusing:
        def list(self, prefix, delimiter=""):
            raise RuntimeError("S3 answered 403 AccessDenied")

    probe.run(Refusing())
    text = probe.metrics()
    assert 'obs_bucket_probe_success{tool="loki",bucket="acme-loki"} 0' in text
    assert 'tenant="fake"} 5000.000' in text
    assert "AccessDenied" in probe.error


# ---------------------------------------------------------------- verify
def test_verify_passes_fresh_and_fails_stale_uploads():
    from tools.verify.common import Report

    bucket = FakeBucket({"index/index_20001/fake/2.tsdb.gz": (20_000.0, b""), "index/index_20001/team-a/2.tsdb.gz": (1_000.0, b"")})
    report = Report(as_json=True)
    verify_freshness.check_tool(report, "loki", {"name": "acme-loki", "prefix": ""}, bucket, now=20_000.0 + 600)
    outcome = {r.detail.split(" under ")[1].split(" ")[0]: r.status for r in report.results}
    assert outcome == {"acme-loki/fake/": "PASS", "acme-loki/team-a/": "FAIL"}


def test_verify_skips_a_bucket_without_uploads():
    from tools.verify.common import Report

    report = Report(as_json=True)
    verify_freshness.check_tool(report, "tempo", {"name": "acme-tempo", "prefix": ""}, FakeBucket({}), now=0)
    assert [r.status for r in report.results] == ["SKIP"]
