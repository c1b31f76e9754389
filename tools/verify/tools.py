"""`tools.verify` tools checks: readiness, and on local a log line and a trace end to end.

An address this machine cannot reach (cluster-internal names on EKS, a placeholder host on Swarm)
gives SKIP with the reason; an address that answers wrongly gives FAIL.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from tools.verify.common import Report, Stack, attempt, wait_for

PART = "tools"
TIMEOUT = 5.0


class Unreachable(Exception):
    pass


def http(method: str, url: str, body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None) -> tuple[int, bytes]:
    try:
        # Inside the try: an address without a scheme in the outputs is unreachable, not a crash.
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, socket.timeout, ConnectionError, ValueError) as error:
        raise Unreachable(str(getattr(error, "reason", error))) from None


def base_urls(stack: Stack) -> dict[str, str]:
    urls = stack.urls
    out: dict[str, str] = {}
    if "loki" in urls:
        out["loki"] = urls["loki"]
    elif "lokiPush" in urls:
        out["loki"] = urls["lokiPush"].removesuffix("/loki/api/v1/push")
    if "tempo" in urls:
        out["tempo"] = urls["tempo"]
    elif stack.target == "local" and "otlpHttp" in urls:
        from components.core.renderers import tempo

        # The local stack publishes Tempo's HTTP port on the same address as OTLP (components/containers/workloads.py).
        out["tempo"] = f"http://{urllib.parse.urlparse(urls['otlpHttp']).hostname}:{tempo.HTTP_PORT}"
    for name, key in (("thanos-query", "thanosQuery"), ("prometheus", "prometheus"), ("grafana", "grafana")):
        if key in urls:
            out[name] = urls[key]
    return out


READY_PATHS = {"loki": "/ready", "tempo": "/ready", "thanos-query": "/-/ready", "prometheus": "/-/ready", "grafana": "/api/health"}


def check(stack: Stack, report: Report) -> None:
    urls = base_urls(stack)
    reachable: dict[str, str] = {}
    for name, path in READY_PATHS.items():
        if name not in urls:
            report.skipped(PART, name, "no address in the stack outputs (urls)")
            continue
        url = urls[name].rstrip("/") + path
        try:
            status, body = http("GET", url)
        except Unreachable as why:
            report.skipped(PART, name, f"{url} not reachable from here ({why}); run where that address resolves, or port-forward it")
            continue
        if report.check(PART, name, status == 200, f"ready: GET {url} answered 200", f"answered {status} {body[:120]!r}"):
            reachable[name] = urls[name].rstrip("/")
    if "grafana" in reachable:
        _grafana_datasources(stack, report, reachable["grafana"])
    if stack.outputs.get("fleets"):
        # EC2 fleets: their groups, Cloud Map registrations and target groups, through the AWS APIs.
        from tools.verify import fleets

        fleets.check(stack, report)
    if stack.target != "local":
        report.skipped(PART, "ingest", f"log and trace round trips run on the local stack only (target {stack.target}: its buckets are shared with real data)")
        return
    started = datetime.now(timezone.utc).replace(microsecond=0)
    if "loki" in reachable:
        _loki_round_trip(stack, report, reachable["loki"], started)
    else:
        report.skipped(PART, "loki", "log round trip not run: Loki is not reachable")
    if "tempo" in reachable and "otlpHttp" in stack.urls:
        _tempo_round_trip(stack, report, reachable["tempo"], stack.urls["otlpHttp"], started)
    else:
        report.skipped(PART, "tempo", "trace round trip not run: Tempo or its OTLP/HTTP address is not reachable")


def _grafana_datasources(stack: Stack, report: Report, grafana: str) -> None:
    password = stack.outputs.get("grafanaAdminPassword")
    if not password:
        report.skipped(PART, "grafana", "datasource health not checked: no grafanaAdminPassword in the outputs")
        return
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}
    status, body = http("GET", f"{grafana}/api/datasources", headers=auth)
    if not report.check(PART, "grafana", status == 200, "datasources listed", f"GET /api/datasources answered {status}"):
        return
    for ds in json.loads(body):
        status, body = http("GET", f"{grafana}/api/datasources/uid/{ds['uid']}/health", headers=auth)
        message = _json(body).get("message", body[:160].decode(errors="replace"))
        report.check(PART, "grafana", status == 200 and _json(body).get("status") == "OK",
                     f"datasource {ds['name']} ({ds['type']}) healthy", f"{status} {message}")


def _loki_round_trip(stack: Stack, report: Report, loki: str, started: datetime) -> None:
    line = f"obs-verify {stack.run_id}"
    now_ns = str(time.time_ns())
    payload = {"streams": [{"stream": {"job": "obs-verify"}, "values": [[now_ns, line]]}]}
    status, body = http("POST", f"{loki}/loki/api/v1/push", json.dumps(payload).encode(), {"Content-Type": "application/json"})
    if not report.check(PART, "loki", status == 204, "log line pushed", f"push answered {status} {body[:160]!r}"):
        return
    query = urllib.parse.urlencode({"query": f'{{job="obs-verify"}} |= "{line}"', "start": str(int(now_ns) - 60 * 10**9), "end": str(int(now_ns) + 60 * 10**9), "limit": "10"})

    def found() -> bool:
        code, answer = http("GET", f"{loki}/loki/api/v1/query_range?{query}")
        return code == 200 and line in answer.decode(errors="replace")

    report.check(PART, "loki", bool(wait_for(report, "Loki to return the log line", found, 60)), "log line queried back", "not returned within 60s")
    status, body = http("POST", f"{loki}/flush")
    report.check(PART, "loki", status in (200, 204), "flush accepted", f"answered {status}")
    _objects_appear(stack, report, "loki", started)


def _tempo_round_trip(stack: Stack, report: Report, tempo: str, otlp_http: str, started: datetime) -> None:
    trace_id = os.urandom(16).hex()
    now = time.time_ns()
    span = {"traceId": trace_id, "spanId": os.urandom(8).hex(), "name": "obs-verify", "kind": 1,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1_000_000)}
    payload = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "obs-verify"}}]},
                                  "scopeSpans": [{"spans": [span]}]}]}
    status, body = http("POST", f"{otlp_http.rstrip('/')}/v1/traces", json.dumps(payload).encode(), {"Content-Type": "application/json"})
    if not report.check(PART, "tempo", status == 200, "trace sent over OTLP/HTTP", f"answered {status} {body[:160]!r}"):
        return

    def found() -> bool:
        return http("GET", f"{tempo}/api/traces/{trace_id}")[0] == 200

    report.check(PART, "tempo", bool(wait_for(report, "Tempo to return the trace", found, 60)), f"trace {trace_id} queried back", "not returned within 60s")
    status, _ = http("GET", f"{tempo}/flush")
    report.check(PART, "tempo", status in (200, 204), "flush accepted", f"answered {status}")
    _objects_appear(stack, report, "tempo", started)


def flushed_data(tool: str, prefix: str, key: str, read: Callable[[str], bytes]) -> bool:
    """Whether `key` is data an ingester flush wrote, not an object the tool writes on its own
    schedule (which would pass the check with nothing flushed). Loki keeps its index tables and
    delete requests under index/, chunks under <tenant>/ (grafana/loki v3.7.6
    pkg/storage/config/schema_config.go IndexTables.PathPrefix and ExternalKey,
    pkg/compactor/config.go delete-request-store key prefix). Tempo's compactor rewrites the
    tenant index <tenant>/index.json.gz every blocklist poll and writes merged blocks; a block is
    complete once <tenant>/<block id>/meta.json exists, and only a flushed one has
    compactionLevel 0 (grafana/tempo v2.10.8 tempodb/backend/raw.go, v1.pb.go,
    encoding/vparquet4/compactor.go)."""
    rest = key[len(prefix):] if key.startswith(prefix) else key
    if rest.startswith("obs-verify/"):
        return False
    if tool == "loki":
        return not rest.startswith("index/")
    if tool == "tempo":
        parts = rest.split("/")
        return len(parts) == 3 and parts[2] == "meta.json" and json.loads(read(key)).get("compactionLevel") == 0
    return True


def _objects_appear(stack: Stack, report: Report, tool: str, since: datetime) -> None:
    bucket = stack.buckets[tool]
    client = stack.s3(stack.tool_keys.get(tool) or stack.admin_keys)

    def read(key: str) -> bytes:
        outcome, answer = attempt(lambda: client.get_object(Bucket=bucket["name"], Key=key))
        return answer["Body"].read() if outcome == "allowed" else b"{}"

    def new_objects() -> list[str]:
        outcome, response = attempt(lambda: client.list_objects_v2(Bucket=bucket["name"], Prefix=bucket["prefix"]))
        if outcome != "allowed":
            return []
        return [o["Key"] for o in response.get("Contents", []) if o["LastModified"] >= since and flushed_data(tool, bucket["prefix"], o["Key"], read)]

    keys = wait_for(report, f"{tool}'s flush to reach bucket {bucket['name']}", new_objects, 120, interval=5)
    report.check(PART, tool, bool(keys), f"objects written to bucket {bucket['name']} after the flush: {', '.join((keys or [])[:3])}",
                 "none within 120s")


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}
