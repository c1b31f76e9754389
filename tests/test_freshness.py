"""The bucket-freshness probe without a server: its S3 signatures against botocore's, its reading
of each tool's key layout, its metrics, and the `tools.verify` check built on it.
(tests/integration/test_freshness.py runs it against real S3 servers; tests/test_monitoring.py
checks where each platform runs it.)"""

from __future__ import annotations

import datetime
import gzip
import io
import json
import re
import urllib.parse

import pytest

from probes import bucket_freshness as bf
from tools.verify import freshness as verify_freshness


# ---------------------------------------------------------------- signatures
@pytest.mark.parametrize("url", [
    "https://acme-loki.s3.ap-northeast-2.amazonaws.com/?delimiter=%2F&list-type=2&prefix=index%2F",
    "http://minio:9000/loki/?continuation-token=a%2Bb%3D&list-type=2&prefix=index%2Findex_20000%2Ffake%2F",
    # Thanos without a prefix lists from the top: an empty value is still signed.
    "http://minio:9000/thanos/?delimiter=%2F&list-type=2&prefix=",
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
    # urllib sends Host itself; a second one would break the signature.
    assert "host" not in ours
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


# ---------------------------------------------------------------- timestamps, credentials and the S3 client, without a server
@pytest.mark.parametrize("text,expected", [
    ("2026-08-01T11:55:30Z", datetime.datetime(2026, 8, 1, 11, 55, 30, tzinfo=datetime.timezone.utc)),
    ("2026-08-01T11:55:30.123456789Z", datetime.datetime(2026, 8, 1, 11, 55, 30, 123457, tzinfo=datetime.timezone.utc)),
    ("2026-08-01T13:55:30.5+02:00", datetime.datetime(2026, 8, 1, 11, 55, 30, 500000, tzinfo=datetime.timezone.utc)),
    (" 2026-08-01T11:55:30Z\n", datetime.datetime(2026, 8, 1, 11, 55, 30, tzinfo=datetime.timezone.utc)),
])
def test_timestamps_with_any_fraction_and_zone(text, expected):
    assert bf._parse_time(text) == pytest.approx(expected.timestamp(), abs=1e-6)


@pytest.mark.parametrize("text", ["2026-08-01 11:55:30Z", "2026-08-01T11:55:30", "1785585330", ""])
def test_a_timestamp_without_a_zone_is_refused(text):
    with pytest.raises(ValueError, match="not a timestamp"):
        bf._parse_time(text)


class Http:
    """Stands in for bf._http_get: records each request, answers from a list (or raises)."""

    def __init__(self, *answers):
        self.answers, self.requests = list(answers), []

    def __call__(self, url, headers=None, timeout=20, context=None, form=None):
        self.requests.append({"url": url, "headers": headers or {}, "form": form})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_static_keys_from_the_environment_come_first(tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "missing")}
    assert bf.CredentialSource("eu-central-1", env).get() == bf.Credentials("AKID", "secret", "token")
    assert bf.CredentialSource("eu-central-1", {**env, "AWS_SESSION_TOKEN": ""}).get() == bf.Credentials("AKID", "secret", None)
    # Half a key pair is no key pair: the next source is tried, and here there is none.
    with pytest.raises(RuntimeError, match="no credentials"):
        bf.CredentialSource("eu-central-1", {**env, "AWS_SECRET_ACCESS_KEY": ""}).get()


def test_the_shared_credentials_file_and_its_profile(tmp_path):
    path = tmp_path / "s3-credentials"
    path.write_text("[default]\naws_access_key_id = obs-loki\naws_secret_access_key = loki-secret\n"
                    "[other]\naws_access_key_id = other\naws_secret_access_key = other-secret\naws_session_token = t\n")
    assert bf.CredentialSource("us-east-1", {"AWS_SHARED_CREDENTIALS_FILE": str(path)}).get() == bf.Credentials("obs-loki", "loki-secret", None)
    assert bf.CredentialSource("us-east-1", {"AWS_SHARED_CREDENTIALS_FILE": str(path), "AWS_PROFILE": "other"}).get() == bf.Credentials("other", "other-secret", "t")


STS_ANSWER = (b'<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>'
              b"<Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>s1</SecretAccessKey><SessionToken>tok1</SessionToken>"
              b"<Expiration>2026-08-01T12:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>")


def test_irsa_exchanges_the_pods_token_at_the_regional_sts(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("eyJ.pod.token\n")
    http = Http(STS_ANSWER)
    monkeypatch.setattr(bf, "_http_get", http)
    env = {"AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/obs-staging-loki-querier",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "missing")}
    creds = bf.CredentialSource("ap-northeast-2", env).get()
    expires = datetime.datetime(2026, 8, 1, 12, tzinfo=datetime.timezone.utc).timestamp()
    assert creds == bf.Credentials("ASIA1", "s1", "tok1", expires)
    (request,) = http.requests
    assert request["url"] == "https://sts.ap-northeast-2.amazonaws.com/"
    form = dict(urllib.parse.parse_qsl(request["form"].decode()))
    assert form == {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": env["AWS_ROLE_ARN"],
                    "RoleSessionName": "bucket-freshness", "WebIdentityToken": "eyJ.pod.token"}


def test_irsa_honours_the_sts_endpoint_and_session_name_and_refuses_an_empty_answer(tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("t")
    env = {"AWS_WEB_IDENTITY_TOKEN_FILE": str(token), "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/r", "AWS_ROLE_SESSION_NAME": "probe-1",
           "AWS_ENDPOINT_URL": "https://127.0.0.1:9999/", "AWS_ENDPOINT_URL_STS": "https://127.0.0.1:8443/"}
    http = Http(STS_ANSWER, b'<Error xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Code>AccessDenied</Code></Error>')
    monkeypatch.setattr(bf, "_http_get", http)
    bf.CredentialSource("us-east-1", env).get()
    assert http.requests[0]["url"] == "https://127.0.0.1:8443/"
    assert dict(urllib.parse.parse_qsl(http.requests[0]["form"].decode()))["RoleSessionName"] == "probe-1"
    with pytest.raises(RuntimeError, match="STS answered without credentials"):
        bf.CredentialSource("us-east-1", {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL_STS"}).get()
    assert http.requests[1]["url"] == "https://127.0.0.1:9999/"


def test_pod_identity_asks_the_agent_with_the_mounted_token(tmp_path, monkeypatch):
    token = tmp_path / "eks-pod-identity-token"
    token.write_text("agent-token\n")
    answer = json.dumps({"AccessKeyId": "ASIA2", "SecretAccessKey": "s2", "Token": "tok2", "Expiration": "2026-08-01T12:00:00Z"}).encode()
    http = Http(answer, json.dumps({"AccessKeyId": "ASIA3", "SecretAccessKey": "s3"}).encode())
    monkeypatch.setattr(bf, "_http_get", http)
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token)}
    creds = bf.CredentialSource("us-east-1", env).get()
    assert creds == bf.Credentials("ASIA2", "s2", "tok2", datetime.datetime(2026, 8, 1, 12, tzinfo=datetime.timezone.utc).timestamp())
    assert http.requests[0]["url"] == env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] and http.requests[0]["headers"] == {"Authorization": "agent-token"}
    without_token = bf.CredentialSource("us-east-1", {"AWS_CONTAINER_CREDENTIALS_FULL_URI": env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]}).get()
    assert without_token == bf.Credentials("ASIA3", "s3", None, None) and http.requests[1]["headers"] == {}


def test_credentials_are_kept_until_five_minutes_before_they_expire(monkeypatch):
    source = bf.CredentialSource("us-east-1", {})
    loads = []

    def load():
        loads.append(1)
        return bf.Credentials("AKID", "s", None, expires)

    monkeypatch.setattr(source, "_load", load)
    monkeypatch.setattr(bf.time, "time", lambda: 1000.0)
    expires = 1000.0 + 301
    source.get(), source.get()
    assert len(loads) == 1
    expires = 1000.0 + 300  # the cached ones now expire within 5 minutes
    source._cached = bf.Credentials("AKID", "s", None, expires)
    source.get()
    assert len(loads) == 2
    expires = 1000.0 + 299
    source._cached = bf.Credentials("AKID", "s", None, expires)
    source.get()
    assert len(loads) == 3
    expires = None  # static keys never expire
    source._cached = None
    source.get(), source.get()
    assert len(loads) == 4


@pytest.mark.parametrize("endpoint,tls,path_style,base", [
    (None, True, False, "https://acme-loki.s3.eu-central-1.amazonaws.com"),
    (None, True, True, "https://s3.eu-central-1.amazonaws.com/acme-loki"),
    ("minio:9000", False, True, "http://minio:9000/acme-loki"),
    ("fsn1.your-objectstorage.com", True, False, "https://acme-loki.fsn1.your-objectstorage.com"),
    # A scheme in the endpoint wins over `tls`.
    ("http://127.0.0.1:8333", True, True, "http://127.0.0.1:8333/acme-loki"),
])
def test_bucket_addresses(endpoint, tls, path_style, base):
    assert bf.S3("acme-loki", "eu-central-1", bf.CredentialSource("eu-central-1", {}), endpoint, tls, path_style).base == base


LISTING = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{contents}{prefixes}<IsTruncated>{truncated}</IsTruncated>{token}</ListBucketResult>"""


def listing(keys=(), prefixes=(), token=None) -> bytes:
    contents = "".join(f"<Contents><Key>{k}</Key><LastModified>2026-08-01T12:00:0{i}.000Z</LastModified></Contents>" for i, k in enumerate(keys))
    common = "".join(f"<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>" for p in prefixes)
    return LISTING.format(contents=contents, prefixes=common, truncated="true" if token else "false",
                          token=f"<NextContinuationToken>{token}</NextContinuationToken>" if token else "").encode()


def s3_client(monkeypatch, *answers) -> tuple[bf.S3, Http]:
    http = Http(*answers)
    monkeypatch.setattr(bf, "_http_get", http)
    creds = bf.CredentialSource("us-east-1", {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"})
    return bf.S3("obs-loki", "us-east-1", creds, "http://minio:9000", path_style=True), http


def test_listing_follows_continuation_tokens_and_signs_each_page(monkeypatch):
    s3, http = s3_client(monkeypatch, listing(["index/a"], ["index/index_20000/"], token="next+page/="), listing(["index/b"], ["index/index_20001/"]))
    objects, prefixes = s3.list("index/", "/")
    t0 = datetime.datetime(2026, 8, 1, 12, tzinfo=datetime.timezone.utc).timestamp()
    assert objects == [("index/a", t0), ("index/b", t0)]
    assert prefixes == ["index/index_20000/", "index/index_20001/"]
    first, second = (urllib.parse.urlsplit(r["url"]) for r in http.requests)
    assert first.path == second.path == "/obs-loki/"
    assert dict(urllib.parse.parse_qsl(first.query)) == {"delimiter": "/", "list-type": "2", "prefix": "index/"}
    assert dict(urllib.parse.parse_qsl(second.query)) == {"continuation-token": "next+page/=", "delimiter": "/", "list-type": "2", "prefix": "index/"}
    for request in http.requests:
        assert request["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
        assert request["headers"] == {**bf.sign("GET", request["url"], "us-east-1", bf.Credentials("AKID", "secret"),
                                                datetime.datetime.strptime(request["headers"]["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc))}


def test_listing_without_a_delimiter_and_a_truncated_page_without_token_ends(monkeypatch):
    broken = LISTING.format(contents="", prefixes="", truncated="true", token="").encode()
    s3, http = s3_client(monkeypatch, broken)
    assert s3.list("fake/") == ([], [])
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(http.requests[0]["url"]).query)) == {"list-type": "2", "prefix": "fake/"}


def test_get_reads_the_key_and_a_refusal_names_status_and_code(monkeypatch):
    import urllib.error

    refusal = urllib.error.HTTPError("http://minio:9000/obs-loki/x", 403, "Forbidden", {},
                                     io.BytesIO(b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"))
    s3, http = s3_client(monkeypatch, b"body", refusal, urllib.error.HTTPError("u", 500, "err", {}, io.BytesIO(b"")))
    assert s3.get("traces/single-tenant/index.json.gz") == b"body"
    assert http.requests[0]["url"] == "http://minio:9000/obs-loki/traces/single-tenant/index.json.gz"
    with pytest.raises(RuntimeError, match=r"^S3 answered 403 AccessDenied$"):
        s3.get("x")
    with pytest.raises(RuntimeError, match=r"^S3 answered 500$"):
        s3.get("x")


def test_a_tempo_index_that_cannot_be_read_for_another_reason_is_an_error():
    class Refusing(FakeBucket):
        def get(self, key):
            raise RuntimeError("S3 answered 403 AccessDenied")

    with pytest.raises(RuntimeError, match="AccessDenied"):
        bf.tempo_newest(Refusing({}), "", ["single-tenant"])
    empty = gzip.compress(json.dumps({"meta": [{"blockID": "a"}], "compacted": []}).encode())
    assert bf.tempo_newest(FakeBucket({"single-tenant/index.json.gz": (0.0, empty)}), "", ["single-tenant"]) == {"single-tenant": None}


def test_thanos_skips_blocks_still_uploading_and_looks_at_the_newest_fifty_only():
    blocks = [bf.CROCKFORD[0] * 4 + f"{i:06d}" + "TSV4RRFFQ69G5FAV" for i in range(60)]
    # The newest has no meta.json yet; the next is the sidecar's.
    objects = {f"{b}/meta.json": (0.0, json.dumps({"thanos": {"source": "compactor"}}).encode()) for b in blocks[:-2]}
    objects[f"{blocks[-2]}/meta.json"] = (0.0, json.dumps({"thanos": {"source": "sidecar"}}).encode())
    objects[f"{blocks[-1]}/chunks/000001"] = (0.0, b"")
    assert bf.thanos_newest(FakeBucket(objects), "") == {"": bf.ulid_time(blocks[-2])}
    # A sidecar block older than the 50 newest is not looked for.
    objects[f"{blocks[-2]}/meta.json"] = (0.0, json.dumps({"thanos": {"source": "compactor"}}).encode())
    objects[f"{blocks[0]}/meta.json"] = (0.0, json.dumps({"thanos": {"source": "receive"}}).encode())
    assert bf.thanos_newest(FakeBucket(objects), "") == {"": None}
    assert bf.thanos_newest(FakeBucket({k: v for k, v in objects.items() if k.startswith(tuple(blocks[:5]))}), "") == {"": bf.ulid_time(blocks[0])}


def test_each_tool_reads_its_own_layout_and_an_unknown_tool_is_refused():
    index = gzip.compress(json.dumps({"meta": [{"blockID": "a", "endTime": "2026-08-01T11:55:30Z"}]}).encode())
    bucket = FakeBucket({"index/index_20001/fake/1.tsdb.gz": (5000.0, b""), "single-tenant/index.json.gz": (0.0, index),
                         "01ARYZ6S41TSV4RRFFQ69G5FAV/meta.json": (0.0, json.dumps({"thanos": {"source": "sidecar"}}).encode())})
    # Tool names as the probe's config file gives them.
    loki, tempo, thanos = json.loads('["loki", "tempo", "thanos"]')
    assert bf.newest_uploads(loki, bucket, "", ["fake"]) == {"fake": 5000.0}
    assert bf.newest_uploads(tempo, bucket, "", ["single-tenant"]) == {"single-tenant": bf._parse_time("2026-08-01T11:55:30Z")}
    assert bf.newest_uploads(thanos, bucket, "", []) == {"": bf.ulid_time("01ARYZ6S41TSV4RRFFQ69G5FAV")}
    # A name sorting before each tool's and one after: refused, not read as the nearest layout.
    for unknown in ("grafana", "mimir", "zipkin"):
        with pytest.raises(ValueError, match=f"unknown tool '{unknown}'"):
            bf.newest_uploads(unknown, FakeBucket({}), "", [])


def test_a_bucket_is_reached_over_https_by_its_virtual_host_unless_told_otherwise():
    assert bf.S3("acme-loki", "eu-central-1", bf.CredentialSource("eu-central-1", {})).base == "https://acme-loki.s3.eu-central-1.amazonaws.com"


def test_metrics_before_the_first_probe_have_no_success_line():
    text = bf.Probe("tempo", "acme-tempo", "", ["single-tenant"], 3600, started=5.0).metrics()
    assert "obs_bucket_probe_success{" not in text and 'obs_bucket_probe_timestamp_seconds{tool="tempo",bucket="acme-tempo"} 0.000' in text
    # The probe serves before its first run ends: no probe has taken any time yet.
    assert 'obs_bucket_probe_duration_seconds{tool="tempo",bucket="acme-tempo"} 0.000' in text


def write_probe_config(tmp_path, **extra) -> str:
    path = tmp_path / "bucket-freshness.json"
    path.write_text(json.dumps({"tool": "loki", "bucket": "obs-loki", "tenants": ["fake"], "region": "us-east-1", "endpoint": "http://minio:9000",
                                "path_style": True, "max_age_seconds": 10560, **extra}))
    return str(path)


def test_once_prints_the_metrics_and_exits_by_the_probes_success(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    http = Http(listing([], ["index/index_20001/"]), listing(["index/index_20001/fake/1.tsdb.gz"]))
    monkeypatch.setattr(bf, "_http_get", http)
    assert bf.main(["--config", write_probe_config(tmp_path), "--once"]) == 0
    out = capsys.readouterr().out
    assert 'obs_bucket_probe_success{tool="loki",bucket="obs-loki"} 1' in out and 'obs_bucket_upload_max_age_seconds{tool="loki",bucket="obs-loki",tenant="fake"} 10560' in out
    import urllib.error

    monkeypatch.setattr(bf, "_http_get", Http(urllib.error.HTTPError("u", 403, "Forbidden", {}, io.BytesIO(b"<Code>AccessDenied</Code>"))))
    assert bf.main(["--config", write_probe_config(tmp_path), "--once"]) == 1
    captured = capsys.readouterr()
    assert 'obs_bucket_probe_success{tool="loki",bucket="obs-loki"} 0' in captured.out
    assert captured.err == "probe of obs-loki failed: RuntimeError: S3 answered 403 AccessDenied\n"


def test_health_check_exit_codes_and_a_missing_config(monkeypatch):
    monkeypatch.setattr(bf, "_http_get", Http(b"ok", OSError("connection refused")))
    assert bf.main(["--health", "http://127.0.0.1:9109/metrics"]) == 0
    assert bf.main(["--health", "http://127.0.0.1:9109/metrics"]) == 1
    with pytest.raises(SystemExit) as exit_:
        bf.main([])
    assert exit_.value.code == 2


def test_the_loop_serves_and_probes_every_interval(tmp_path, monkeypatch, capsys):
    served, slept = [], []
    monkeypatch.setattr(bf, "serve", lambda probe, port: served.append(port))
    monkeypatch.setattr(bf, "_http_get", Http(listing([], []), listing([], [])))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    class Stop(Exception):
        pass

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            raise Stop

    with pytest.raises(Stop):
        bf.main(["--config", write_probe_config(tmp_path, port=9200, interval_seconds=60)], sleep=sleep)
    assert served == [9200] and slept == [60, 60]
    with pytest.raises(Stop):
        slept.clear()
        monkeypatch.setattr(bf, "_http_get", Http(listing([], []), listing([], [])))
        bf.main(["--config", write_probe_config(tmp_path)], sleep=sleep)
    assert served == [9200, 9109] and slept == [300, 300]
    assert capsys.readouterr().err == ""
    # A refused listing is said on stderr (the container's log) at every interval, and the loop goes on.
    import urllib.error

    refused = urllib.error.HTTPError("u", 403, "Forbidden", {}, io.BytesIO(b"<Code>AccessDenied</Code>"))
    refused_again = urllib.error.HTTPError("u", 403, "Forbidden", {}, io.BytesIO(b"<Code>AccessDenied</Code>"))
    monkeypatch.setattr(bf, "_http_get", Http(refused, refused_again))
    slept.clear()
    with pytest.raises(Stop):
        bf.main(["--config", write_probe_config(tmp_path)], sleep=sleep)
    assert slept == [300, 300]
    assert capsys.readouterr().err == "probe of obs-loki failed: RuntimeError: S3 answered 403 AccessDenied\n" * 2


def test_half_an_irsa_setting_is_no_credential(tmp_path):
    token = tmp_path / "token"
    token.write_text("t")
    for env in ({"AWS_WEB_IDENTITY_TOKEN_FILE": str(token)}, {"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/r"}):
        with pytest.raises(RuntimeError, match="no credentials"):
            bf.CredentialSource("us-east-1", {**env, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "missing")}).get()


def test_a_last_page_ends_the_listing_even_with_a_token(monkeypatch):
    last = LISTING.format(contents="", prefixes="", truncated="false", token="<NextContinuationToken>stale</NextContinuationToken>").encode()
    s3, http = s3_client(monkeypatch, last)
    assert s3.list("fake/") == ([], []) and len(http.requests) == 1


def test_each_tempo_tenant_is_read_after_one_without_an_index():
    index = gzip.compress(json.dumps({"meta": [{"blockID": "a", "endTime": "2026-08-01T11:55:30Z"}]}).encode())

    class Missing(FakeBucket):
        def get(self, key):
            if key not in self.objects:
                raise RuntimeError("S3 answered NoSuchKey")  # a server that names the code only
            return self.objects[key][1]

    newest = bf.tempo_newest(Missing({"team-b/index.json.gz": (0.0, index)}), "", ["single-tenant", "team-b"])
    assert newest == {"single-tenant": None, "team-b": datetime.datetime(2026, 8, 1, 11, 55, 30, tzinfo=datetime.timezone.utc).timestamp()}


# ---------------------------------------------------------------- the probe's configuration (components/core/renderers/freshness.py)
def test_each_tools_limit_is_the_sum_docs_operations_gives():
    from components.core.renderers import freshness

    # docs/operations.md "Bucket freshness": Loki 2 h + 15 min + 1 min + 10 min + 30 min, Tempo
    # 30 min + 5 min + 25 min, Thanos a 2-hour block every 2 hours + 1 h.
    assert freshness.MAX_AGE_SECONDS == {"loki": 2 * 3600 + 56 * 60, "tempo": 3600, "thanos": 3 * 3600}


def test_probe_config_per_tool_and_endpoint():
    from components.core import loading
    from components.core.renderers import ObjectStore, freshness
    from tests.conftest import aws_config

    cfg = loading.load("staging", aws_config(tenants=["team-a", "team-b"]), set())
    store = ObjectStore(bucket="b", prefix="p/", region="eu-central-1", endpoint="minio:9000", path_style=True, tls=False, s3_compatible=True)
    loki, tempo, thanos = (freshness.config(cfg, tool, store) for tool in ("loki", "tempo", "thanos"))
    # A host without a scheme gets the one its TLS setting says; one with a scheme keeps it.
    assert loki["endpoint"] == "http://minio:9000"
    assert freshness.config(cfg, "loki", ObjectStore("b", "", "r", "s3.example.com", False, True, s3_compatible=True))["endpoint"] == "https://s3.example.com"
    assert freshness.config(cfg, "loki", ObjectStore("b", "", "r", "http://10.0.0.1:9000", True, True, s3_compatible=True))["endpoint"] == "http://10.0.0.1:9000"
    assert freshness.config(cfg, "loki", ObjectStore("b", "", "r", None, False, True, s3_compatible=False))["endpoint"] is None
    # Loki's index is at the bucket's top whatever the prefix; Tempo's tenants live under it.
    assert (loki["prefix"], tempo["prefix"], thanos["prefix"]) == ("", "p/", "p/")
    # Thanos keeps no tenant prefix; Loki and Tempo watch each tenant.
    assert loki["tenants"] == tempo["tenants"] == ["team-a", "team-b"] and thanos["tenants"] == []
    assert {k: loki[k] for k in ("tool", "bucket", "region", "tls", "path_style", "max_age_seconds", "interval_seconds", "port")} == {
        "tool": "loki", "bucket": "b", "region": "eu-central-1", "tls": False, "path_style": True, "max_age_seconds": 10560,
        # docs/operations.md: every 5 minutes; the port Prometheus scrapes (job bucket-freshness).
        "interval_seconds": 300, "port": 9109}



def test_the_container_runs_the_shipped_probe_on_its_config_and_checks_the_port_it_serves():
    import pathlib

    from components.core.renderers import freshness

    # The file shipped into the container is the probe itself, run on the config file beside it.
    assert freshness.script() == (pathlib.Path(bf.__file__)).read_text()
    command = freshness.command()
    assert command[1] == freshness.SCRIPT_PATH and command[command.index("--config") + 1] == freshness.CONFIG_PATH
    # The health check (`--health URL`, exit 0 on a 200) asks the port the config makes the probe serve.
    health = freshness.health()
    assert health[:2] == ["CMD", command[0]] and health[2] == freshness.SCRIPT_PATH
    assert health[health.index("--health") + 1] == f"http://127.0.0.1:{freshness.PORT}/metrics" and freshness.PORT == 9109

# ---------------------------------------------------------------- the probe's edges
def test_thanos_opens_exactly_the_fifty_newest_blocks():
    blocks = [bf.CROCKFORD[0] * 4 + f"{i:06d}" + "TSV4RRFFQ69G5FAV" for i in range(60)]  # oldest first
    compactor = json.dumps({"thanos": {"source": "compactor"}}).encode()
    for rank, found in ((50, True), (51, False)):  # the sidecar's block is the rank-th newest
        objects = {f"{b}/meta.json": (0.0, compactor) for b in blocks}
        sidecar = blocks[-rank]
        objects[f"{sidecar}/meta.json"] = (0.0, json.dumps({"thanos": {"source": "sidecar"}}).encode())
        assert bf.thanos_newest(FakeBucket(objects), "") == {"": bf.ulid_time(sidecar) if found else None}, rank


def test_the_probe_reports_how_long_its_last_probe_took(monkeypatch):
    class Slow:
        def __init__(self, fail: bool):
            self.fail = fail

        def list(self, prefix, delimiter=""):
            clock.append(clock[-1] + 2.5)  # the listing takes 2.5 s
            if self.fail:
                raise RuntimeError("AccessDenied")
            return [], []

    clock = [1000.0]
    monkeypatch.setattr(bf.time, "time", lambda: clock[-1])
    for fail in (False, True):
        probe = bf.Probe("thanos", "acme-thanos", "", [], 10800, started=1.0)
        probe.run(Slow(fail))
        line = 'obs_bucket_probe_duration_seconds{tool="thanos",bucket="acme-thanos"} 2.500'
        assert line in probe.metrics().splitlines(), (fail, probe.metrics())
        assert probe.success is (not fail)


def test_a_config_without_tls_and_path_style_reaches_the_bucket_over_https_by_its_virtual_host(tmp_path):
    path = tmp_path / "bucket-freshness.json"
    path.write_text(json.dumps({"tool": "tempo", "bucket": "acme-tempo", "tenants": ["single-tenant"], "region": "eu-central-1",
                                "endpoint": "s3.example.com", "max_age_seconds": 3600}))
    probe, s3, _ = bf.load(str(path), env={})
    assert s3.base == "https://acme-tempo.s3.example.com"
    assert (probe.prefix, probe.tenants, probe.max_age_seconds) == ("", ["single-tenant"], 3600)


def test_the_exporter_serves_metrics_and_nothing_else():
    """What Prometheus scrapes and the container health check asks for (`--health` reads /metrics):
    the probe's metrics at /metrics, with or without a query, in the text format; 404 elsewhere."""
    import urllib.error
    import urllib.request

    probe = bf.Probe("loki", "obs-loki", "", ["fake"], 10560, started=5.0)
    server = bf.serve(probe, 0)  # port 0: any free port
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert bf._http_get(f"{base}/metrics", timeout=5).decode() == probe.metrics()
        with urllib.request.urlopen(f"{base}/metrics?debug=1", timeout=5) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "text/plain; version=0.0.4"
            assert int(response.headers["Content-Length"]) == len(probe.metrics().encode())
        for path in ("/", "/metric", "/metrics/x"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                bf._http_get(base + path, timeout=5)
            assert refused.value.code == 404, path
        assert bf.main(["--health", f"{base}/metrics"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert bf.main(["--health", f"{base}/metrics"]) == 1
