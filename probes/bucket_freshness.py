#!/usr/bin/env python3
"""Bucket freshness: when did each tool last put new data into its bucket, per tenant prefix?

Read from the bucket itself, so it sees a tool that silently stops uploading even when the tool's
own metrics are not scraped. One process per tool, with that tool's own (read) credentials:

    python3 bucket_freshness.py --config bucket-freshness.json     # serve /metrics, probe every interval
    python3 bucket_freshness.py --config bucket-freshness.json --once   # print the metrics once
    python3 bucket_freshness.py --health http://127.0.0.1:9109/metrics  # container health check

Standard library only: it runs unchanged in the pinned Python image (components/versions.py
"python") and is imported by `tools.verify`. What "newest upload" means per tool follows the
tool's key layout (each fact read at the pinned tag):

- Loki: the newest object under `index/<table>/<tenant>/`, today's and yesterday's daily tables.
  Ingesters upload multi-tenant TSDB files when flushed chunks are indexed (head rotation every
  15 min, upload every minute); the compactor splits them into each tenant's folder every
  compaction interval (grafana/loki v3.7.6 pkg/storage/stores/shipper/indexshipper/tsdb/
  head_manager.go, indexshipper/shipper.go, uploads/table.go, storage/client.go). Chunk keys are
  ordered by stream fingerprint, not time, so the chunks themselves cannot be listed cheaply.
- Tempo: the newest block end time in the tenant index `<prefix>/<tenant>/index.json.gz` (gzip
  JSON, `meta[].endTime`), which the compactors rebuild every blocklist poll (grafana/tempo v2.10.8
  tempodb/backend/raw.go, tenantindex.go, v1.pb.go). Block ids are random UUIDs.
- Thanos: the creation time in the ULID of the newest block that a sidecar or Receive uploaded
  (`meta.json` `thanos.source`), found by listing `<prefix>/` (thanos-io/thanos v0.42.4
  pkg/block/metadata/meta.go). Compactor output is skipped: it rewrites old data.

A prefix that holds nothing yet reports the probe's start time, so a new stack gets one interval.
"""

from __future__ import annotations

import argparse
import configparser
import datetime
import gzip
import hashlib
import hmac
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

S3_XMLNS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
STS_XMLNS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
THANOS_UPLOADERS = ("sidecar", "receive")
# How many of the newest Thanos blocks to open looking for one a sidecar or Receive uploaded.
THANOS_MAX_METAS = 50


# ---------------------------------------------------------------- credentials
@dataclass
class Credentials:
    access_key: str
    secret_key: str
    token: Optional[str] = None
    expires: Optional[float] = None  # epoch seconds


def _http_get(url: str, headers: Optional[dict[str, str]] = None, timeout: float = 20, context=None, form: Optional[bytes] = None) -> bytes:
    """GET `url`, or POST `form` (application/x-www-form-urlencoded) to it."""
    request = urllib.request.Request(url, data=form, headers={**(headers or {}), **({"Content-Type": "application/x-www-form-urlencoded"} if form else {})})
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return response.read()


def _parse_time(text: str) -> float:
    """RFC 3339 / ISO 8601 with any number of fractional digits (Go writes nanoseconds)."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})", text.strip())
    if not match:
        raise ValueError(f"not a timestamp: {text!r}")
    base, fraction, zone = match.groups()
    moment = datetime.datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return moment.timestamp() + (float(fraction) if fraction else 0.0)


class CredentialSource:
    """The AWS credential chain the tools themselves use, as far as these targets need it: static
    variables, a shared-credentials file (Docker targets), IRSA web identity, EKS Pod Identity."""

    def __init__(self, region: str, env: Optional[dict[str, str]] = None, context=None):
        self.env = dict(os.environ if env is None else env)
        self.region = region
        self.context = context
        self._cached: Optional[Credentials] = None

    def get(self) -> Credentials:
        if self._cached and (self._cached.expires is None or self._cached.expires - time.time() > 300):
            return self._cached
        self._cached = self._load()
        return self._cached

    def _load(self) -> Credentials:
        env = self.env
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            return Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN") or None)
        if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
            return self._web_identity()
        if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
            return self._container()
        path = env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.expanduser("~/.aws/credentials")
        parser = configparser.ConfigParser()
        if parser.read(path):
            section = parser[env.get("AWS_PROFILE") or "default"]
            return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"], section.get("aws_session_token"))
        raise RuntimeError("no credentials: set a shared-credentials file, IRSA or Pod Identity")

    def _web_identity(self) -> Credentials:
        # IRSA: the pod's projected token is exchanged at the regional STS endpoint, unsigned,
        # as the AWS SDKs do it (a form POST of the query API's parameters).
        with open(self.env["AWS_WEB_IDENTITY_TOKEN_FILE"]) as f:
            token = f.read().strip()
        endpoint = self.env.get("AWS_ENDPOINT_URL_STS") or self.env.get("AWS_ENDPOINT_URL") or f"https://sts.{self.region}.amazonaws.com"
        query = urllib.parse.urlencode({
            "Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": self.env["AWS_ROLE_ARN"],
            "RoleSessionName": self.env.get("AWS_ROLE_SESSION_NAME", "bucket-freshness"), "WebIdentityToken": token,
        })
        root = ET.fromstring(_http_get(f"{endpoint.rstrip('/')}/", context=self.context, form=query.encode()))
        creds = root.find(f".//{STS_XMLNS}Credentials")
        if creds is None:
            raise RuntimeError("STS answered without credentials")
        text = lambda tag: creds.findtext(f"{STS_XMLNS}{tag}") or ""  # noqa: E731
        return Credentials(text("AccessKeyId"), text("SecretAccessKey"), text("SessionToken"), _parse_time(text("Expiration")))

    def _container(self) -> Credentials:
        # EKS Pod Identity: the agent's endpoint, authorised by the token file the webhook mounts.
        headers = {}
        token_file = self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if token_file:
            with open(token_file) as f:
                headers["Authorization"] = f.read().strip()
        data = json.loads(_http_get(self.env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], headers))
        expires = _parse_time(data["Expiration"]) if data.get("Expiration") else None
        return Credentials(data["AccessKeyId"], data["SecretAccessKey"], data.get("Token"), expires)


# ---------------------------------------------------------------- S3 (Signature Version 4)
def _quote(text: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(text, safe=safe)


def sign(method: str, url: str, region: str, creds: Credentials, now: Optional[datetime.datetime] = None) -> dict[str, str]:
    """Headers that authenticate a body-less S3 request (AWS Signature Version 4)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query))
    headers = {"host": parts.netloc, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    if creds.token:
        headers["x-amz-security-token"] = creds.token
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        method, _quote(urllib.parse.unquote(parts.path) or "/", safe="/-_.~"), canonical_query,
        "".join(f"{k}:{headers[k].strip()}\n" for k in sorted(headers)), signed, EMPTY_SHA256,
    ])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + creds.secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {k: v for k, v in headers.items() if k != "host"}
    out["Authorization"] = f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return out


class Lister(Protocol):
    def list(self, prefix: str, delimiter: str = "") -> tuple[list[tuple[str, float]], list[str]]: ...

    def get(self, key: str) -> bytes: ...


class S3:
    """ListObjectsV2 and GetObject, nothing else."""

    def __init__(self, bucket: str, region: str, credentials: CredentialSource, endpoint: Optional[str] = None,
                 tls: bool = True, path_style: bool = False, timeout: float = 30, context=None):
        self.bucket, self.region, self.credentials, self.timeout, self.context = bucket, region, credentials, timeout, context
        scheme = "https" if tls else "http"
        host = endpoint or f"s3.{region}.amazonaws.com"
        if "://" in host:
            scheme, host = host.split("://", 1)
        self.base = f"{scheme}://{host}/{bucket}" if path_style else f"{scheme}://{bucket}.{host}"

    def _request(self, path: str, query: dict[str, str]) -> bytes:
        url = f"{self.base}/{_quote(path, safe='/-_.~')}" + (f"?{urllib.parse.urlencode(sorted(query.items()), quote_via=urllib.parse.quote)}" if query else "")
        headers = sign("GET", url, self.region, self.credentials.get())
        try:
            return _http_get(url, headers, self.timeout, self.context)
        except urllib.error.HTTPError as error:
            body = error.read()[:300].decode(errors="replace")
            code = re.search(r"<Code>([^<]+)</Code>", body)
            raise RuntimeError(f"S3 answered {error.code} {code.group(1) if code else ''}".strip()) from None

    def list(self, prefix: str, delimiter: str = "") -> tuple[list[tuple[str, float]], list[str]]:
        objects: list[tuple[str, float]] = []
        prefixes: list[str] = []
        token: Optional[str] = None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if delimiter:
                query["delimiter"] = delimiter
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(self._request("", query))
            for item in root.findall(f"{S3_XMLNS}Contents"):
                objects.append((item.findtext(f"{S3_XMLNS}Key") or "", _parse_time(item.findtext(f"{S3_XMLNS}LastModified") or "")))
            prefixes += [p.findtext(f"{S3_XMLNS}Prefix") or "" for p in root.findall(f"{S3_XMLNS}CommonPrefixes")]
            token = root.findtext(f"{S3_XMLNS}NextContinuationToken")
            if root.findtext(f"{S3_XMLNS}IsTruncated") != "true" or not token:
                return objects, prefixes

    def get(self, key: str) -> bytes:
        return self._request(key, {})


# ---------------------------------------------------------------- newest upload per tool and tenant
def _join(prefix: str, *parts: str) -> str:
    return "/".join(p.strip("/") for p in (prefix, *parts) if p.strip("/")) + "/"


def loki_newest(s3: Lister, tenants: list[str], table_prefix: str = "index_", index_prefix: str = "index/") -> dict[str, Optional[float]]:
    _, tables = s3.list(index_prefix, "/")
    numbered = sorted(
        (int(m.group(1)), t) for t in tables if (m := re.fullmatch(re.escape(index_prefix + table_prefix) + r"(\d+)/", t))
    )
    newest: dict[str, Optional[float]] = {tenant: None for tenant in tenants}
    # Today's table and the one before: just after midnight today's may still be empty.
    for _, table in numbered[-2:]:
        for tenant in tenants:
            objects, _ = s3.list(f"{table}{tenant}/")
            if objects:
                latest = max(modified for _, modified in objects)
                newest[tenant] = max(newest[tenant] or 0.0, latest)
    return newest


def tempo_newest(s3: Lister, prefix: str, tenants: list[str]) -> dict[str, Optional[float]]:
    newest: dict[str, Optional[float]] = {}
    for tenant in tenants:
        key = _join(prefix, tenant) + "index.json.gz"
        try:
            index = json.loads(gzip.decompress(s3.get(key)))
        except RuntimeError as error:
            if "404" in str(error) or "NoSuchKey" in str(error):
                newest[tenant] = None  # nothing flushed (or indexed) for this tenant yet
                continue
            raise
        ends = [_parse_time(m["endTime"]) for m in index.get("meta") or [] if m.get("endTime")]
        newest[tenant] = max(ends) if ends else None
    return newest


def ulid_time(ulid: str) -> Optional[float]:
    """Seconds since the epoch encoded in a ULID's first 10 characters (48-bit milliseconds)."""
    if not re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", ulid):
        return None
    millis = 0
    for char in ulid[:10]:
        millis = millis * 32 + CROCKFORD.index(char)
    return millis / 1000


def thanos_newest(s3: Lister, prefix: str) -> dict[str, Optional[float]]:
    _, dirs = s3.list(_join(prefix) if prefix else "", "/")
    blocks = sorted(((t, d) for d in dirs if (t := ulid_time(d.rstrip("/").rsplit("/", 1)[-1])) is not None), reverse=True)
    for created, block in blocks[:THANOS_MAX_METAS]:
        try:
            meta = json.loads(s3.get(block + "meta.json"))
        except RuntimeError:
            continue  # a block still being uploaded has no meta.json yet
        if (meta.get("thanos") or {}).get("source") in THANOS_UPLOADERS:
            return {"": created}
    return {"": None}


def newest_uploads(tool: str, s3: Lister, prefix: str, tenants: list[str]) -> dict[str, Optional[float]]:
    """Tenant -> epoch seconds of the tool's newest upload there (None: nothing yet)."""
    if tool == "loki":
        return loki_newest(s3, tenants)
    if tool == "tempo":
        return tempo_newest(s3, prefix, tenants)
    if tool == "thanos":
        return thanos_newest(s3, prefix)
    raise ValueError(f"unknown tool {tool!r}")


# ---------------------------------------------------------------- exporter
@dataclass
class Probe:
    tool: str
    bucket: str
    prefix: str
    tenants: list[str]
    max_age_seconds: int
    started: float = field(default_factory=time.time)
    newest: dict[str, float] = field(default_factory=dict)
    found: dict[str, bool] = field(default_factory=dict)
    success: Optional[bool] = None
    last_probe: float = 0.0
    duration: float = 0.0
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, s3: Lister) -> None:
        start = time.time()
        try:
            result = newest_uploads(self.tool, s3, self.prefix, self.tenants)
        except Exception as error:  # an unreachable or refusing bucket is what this reports
            with self.lock:
                self.success, self.error = False, f"{type(error).__name__}: {error}"
                self.last_probe, self.duration = start, time.time() - start
            return
        with self.lock:
            for tenant, newest in result.items():
                self.found[tenant] = newest is not None
                # Nothing yet: the probe's start, so a new stack gets one interval to upload.
                self.newest[tenant] = newest if newest is not None else self.started
            self.success, self.error = True, ""
            self.last_probe, self.duration = start, time.time() - start

    def metrics(self) -> str:
        def labels(**extra: str) -> str:
            items = {"tool": self.tool, "bucket": self.bucket, **extra}
            return ",".join(f'{k}="{v}"' for k, v in items.items())

        with self.lock:
            lines = [
                "# HELP obs_bucket_newest_upload_timestamp_seconds Newest upload of the tool under the tenant's prefix (the probe's start while there is none).",
                "# TYPE obs_bucket_newest_upload_timestamp_seconds gauge",
                *(f"obs_bucket_newest_upload_timestamp_seconds{{{labels(tenant=t)}}} {v:.3f}" for t, v in sorted(self.newest.items())),
                "# HELP obs_bucket_upload_max_age_seconds Age beyond which the tool's newest upload means it stopped uploading.",
                "# TYPE obs_bucket_upload_max_age_seconds gauge",
                *(f"obs_bucket_upload_max_age_seconds{{{labels(tenant=t)}}} {self.max_age_seconds}" for t in sorted(self.newest)),
                "# HELP obs_bucket_objects_found 1 when the tenant's prefix holds an upload of the tool.",
                "# TYPE obs_bucket_objects_found gauge",
                *(f"obs_bucket_objects_found{{{labels(tenant=t)}}} {int(v)}" for t, v in sorted(self.found.items())),
                "# HELP obs_bucket_probe_success 1 when the last listing of the bucket succeeded.",
                "# TYPE obs_bucket_probe_success gauge",
            ]
            if self.success is not None:
                lines.append(f"obs_bucket_probe_success{{{labels()}}} {int(self.success)}")
            lines += [
                "# HELP obs_bucket_probe_timestamp_seconds When the bucket was last probed.",
                "# TYPE obs_bucket_probe_timestamp_seconds gauge",
                f"obs_bucket_probe_timestamp_seconds{{{labels()}}} {self.last_probe:.3f}",
                "# HELP obs_bucket_probe_duration_seconds How long the last probe took.",
                "# TYPE obs_bucket_probe_duration_seconds gauge",
                f"obs_bucket_probe_duration_seconds{{{labels()}}} {self.duration:.3f}",
            ]
        return "\n".join(lines) + "\n"


def load(config_path: str, env: Optional[dict[str, str]] = None) -> tuple[Probe, S3, dict]:
    with open(config_path) as f:
        config = json.load(f)
    credentials = CredentialSource(config["region"], env)
    s3 = S3(config["bucket"], config["region"], credentials, config.get("endpoint"), config.get("tls", True), config.get("path_style", False))
    probe = Probe(config["tool"], config["bucket"], config.get("prefix", ""), list(config["tenants"]), int(config["max_age_seconds"]))
    return probe, s3, config


def serve(probe: Probe, port: int) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = probe.metrics().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes every 30 s would flood the log
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: Optional[list[str]] = None, sleep: Callable[[float], None] = time.sleep) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="JSON: tool, bucket, prefix, tenants, region, endpoint, tls, path_style, max_age_seconds, interval_seconds, port")
    parser.add_argument("--once", action="store_true", help="probe once and print the metrics")
    parser.add_argument("--health", metavar="URL", help="exit 0 when URL answers 200 (container health check)")
    args = parser.parse_args(argv)
    if args.health:
        try:
            _http_get(args.health, timeout=5)
            return 0
        except Exception:
            return 1
    if not args.config:
        parser.error("--config is required")
    probe, s3, config = load(args.config)
    if args.once:
        probe.run(s3)
        sys.stdout.write(probe.metrics())
        if not probe.success:
            print(f"probe of {probe.bucket} failed: {probe.error}", file=sys.stderr)
        return 0 if probe.success else 1
    serve(probe, int(config.get("port", 9109)))
    interval = int(config.get("interval_seconds", 300))
    while True:
        probe.run(s3)
        if not probe.success:
            print(f"probe of {probe.bucket} failed: {probe.error}", file=sys.stderr, flush=True)
        sleep(interval)


if __name__ == "__main__":
    sys.exit(main())
