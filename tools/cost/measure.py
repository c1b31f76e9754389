"""The stack's own metrics (`--from-prometheus`): request rates and ingest read from a running
Prometheus, applied to the model and compared with it."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

from tools.cost.facts import DAYS_PER_MONTH, GIB, INGEST_UNITS, SECONDS_PER_DAY, CostError
from tools.cost.topology import Topology

# ---------------------------------------------------------------- the stack's own metrics
# Metric names as the pinned tools define them (tags as above):
PROMETHEUS_QUERIES = {
    # Loki pkg/loghttp/push/push.go: uncompressed bytes received, per tenant.
    "loki.received": "sum(rate(loki_distributor_bytes_received_total[{w}]))",
    # Loki pkg/ingester/metrics.go: bytes and chunks each ingester stored (every replica counts).
    "loki.stored": "sum(rate(loki_ingester_chunk_stored_bytes_total[{w}]))",
    "loki.chunks": "sum(rate(loki_ingester_chunks_stored_total[{w}]))",
    # Loki pkg/ingester/instance.go: streams held in memory, per ingester.
    "loki.streams": "sum(loki_ingester_memory_streams)",
    # Loki pkg/storage/chunk/client/aws/s3_storage_client.go: one observation per S3 request.
    "loki.requests": "sum by (operation) (rate(loki_s3_request_duration_seconds_count[{w}]))",
    # Tempo modules/distributor/distributor.go: proto bytes received, per tenant.
    "tempo.received": "sum(rate(tempo_distributor_bytes_received_total[{w}]))",
    # Tempo modules/ingester/flush.go: size of each flushed block and the number of blocks.
    "tempo.flushed": "sum(rate(tempo_ingester_flush_size_bytes_sum[{w}]))",
    "tempo.blocks": "sum(rate(tempo_ingester_blocks_flushed_total[{w}]))",
    # Tempo tempodb/backend/instrumentation/backend_transports.go: per HTTP method.
    "tempo.requests": "sum by (operation) (rate(tempodb_backend_request_duration_seconds_count[{w}]))",
    # Prometheus tsdb/head.go (v3.14.0).
    "thanos.samples": "sum(rate(prometheus_tsdb_head_samples_appended_total[{w}]))",
    # thanos-io/objstore objstore.go objstore_bucket_operations_total, registered with the thanos_
    # prefix by cmd/thanos (compact.go, store.go, sidecar.go).
    "thanos.requests": "sum by (operation) (rate(thanos_objstore_bucket_operations_total[{w}]))",
}
# The operation label of each client, by S3 price class. Tempo's label is the HTTP method, so its
# LISTs count as GETs; Thanos counts a multipart upload once and a listing once per Iter call.
REQUEST_CLASS = {
    "loki": {"S3.PutObject": "put_class", "S3.List": "put_class", "S3.GetObject": "get_class",
             "S3.ObjectExists": "get_class", "S3.GetAttributes": "get_class", "S3.DeleteObject": "delete"},
    "tempo": {"PUT": "put_class", "POST": "put_class", "GET": "get_class", "HEAD": "get_class", "DELETE": "delete"},
    "thanos": {"upload": "put_class", "iter": "put_class", "get": "get_class", "get_range": "get_class",
               "exists": "get_class", "attributes": "get_class", "delete": "delete"},
}
MEASURED_NOTES = {
    "tempo": "Tempo's client counts by HTTP method: its LISTs are in GET-class here, not PUT-class",
    "thanos": "Thanos counts a multipart upload and a paged listing once each",
}
_WINDOW = re.compile(r"^\d+[smhdwy]$")


def prometheus_query(url: str, query: str, timeout: float = 10.0) -> list[tuple[dict, float]]:
    """An instant query through the Prometheus HTTP API: (labels, value) per series."""
    full = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(full, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        # Prometheus answers a bad query with 400 and a JSON error body.
        try:
            body = json.load(error)
        except ValueError:
            raise CostError(f"Prometheus at {url} answered HTTP {error.code} to {query}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise CostError(f"cannot read Prometheus at {url}: {getattr(error, 'reason', error)}") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        raise CostError(f"Prometheus at {url} refused {query}: {body.get('error', 'no error text') if isinstance(body, dict) else body}")
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise CostError(f"Prometheus at {url} answered {data.get('resultType')!r} to {query}, not a vector")
    try:
        return [(row.get("metric") or {}, float(row["value"][1])) for row in data.get("result") or []]
    except (KeyError, IndexError, TypeError, ValueError):
        raise CostError(f"Prometheus at {url} answered {query} with a malformed vector") from None


def measure(url: str, window: str, topo: Topology) -> dict[str, Any]:
    """What the running stack reports, per day (or per second for samples), None where no series."""
    if not re.match(r"^https?://[^\s/]+", url):
        raise CostError(f"--from-prometheus {url!r}: use the Prometheus base URL, e.g. http://127.0.0.1:9090")
    if not _WINDOW.match(window):
        raise CostError(f"--window {window!r}: use a Prometheus range such as 1d or 6h")
    raw: dict[str, Any] = {}
    for key, query in PROMETHEUS_QUERIES.items():
        rows = prometheus_query(url, query.format(w=window))
        if key.endswith(".requests"):
            tool = key.split(".")[0]
            if not rows:
                raw[key] = None
                continue
            classes = dict.fromkeys(("put_class", "get_class", "delete", "other"), 0.0)
            for labels, value in rows:
                classes[REQUEST_CLASS[tool].get(labels.get("operation", ""), "other")] += value * SECONDS_PER_DAY
            raw[key] = classes
        else:
            raw[key] = sum(value for _, value in rows) if rows else None

    def per_day(key: str, divisor: float = 1.0) -> Optional[float]:
        return None if raw[key] is None else raw[key] * SECONDS_PER_DAY / divisor

    def ratio(stored: Optional[float], received: Optional[float], rf: int) -> Optional[float]:
        return None if stored is None or not received else stored / rf / received

    loki_rf, tempo_rf = topo.loki.replication_factor, topo.tempo.replication_factor
    return {
        "url": url, "window": window,
        "ingest": {
            "logs": per_day("loki.received", GIB), "traces": per_day("tempo.received", GIB),
            "metrics": None if raw["thanos.samples"] is None else raw["thanos.samples"] / topo.thanos.prometheus_replicas,
        },
        "assumptions": {
            "loki.stored_ratio": ratio(raw["loki.stored"], raw["loki.received"], loki_rf),
            "tempo.stored_ratio": ratio(raw["tempo.flushed"], raw["tempo.received"], tempo_rf),
            "loki.streams": None if raw["loki.streams"] is None else raw["loki.streams"] / loki_rf,
        },
        "figures": {"loki": {"chunks": per_day("loki.chunks", loki_rf)}, "tempo": {"blocks": per_day("tempo.blocks")}},
        "requests": {tool: raw[f"{tool}.requests"] for tool in ("loki", "tempo", "thanos")},
    }


def apply_measurement(m: dict, ingest: dict[str, float], a: dict[str, float], given: set[str]) -> tuple[dict, dict, dict]:
    """Ingest and assumptions with the measured values in, except those the user set explicitly.

    Returns (ingest, assumptions, what was used before) so the report can show both.
    """
    ingest, a = dict(ingest), dict(a)
    before: dict[str, float] = {}
    for key, value in m["ingest"].items():
        before[key] = ingest[key]
        if value is not None and value > 0 and key not in given:
            ingest[key] = value
    for key, value in m["assumptions"].items():
        before[key] = a[key]
        if value is not None and value > 0 and key not in given:
            a[key] = value
    return ingest, a, before


def compare(m: dict, before: dict, ingest: dict, a: dict, given: set[str], e: dict) -> dict[str, list[dict]]:
    """Rows of model next to measurement per tool, for the tools the stack runs."""
    out: dict[str, list[dict]] = {}
    inputs = {"loki": ("logs", "loki.stored_ratio", "loki.streams"), "tempo": ("traces", "tempo.stored_ratio"), "thanos": ("metrics",)}
    for tool, t in e["tools"].items():
        rows = []
        for key in inputs[tool]:
            measured = m["ingest"].get(key) if key in m["ingest"] else m["assumptions"].get(key)
            label = f"{key} ({INGEST_UNITS[key]})" if key in INGEST_UNITS else key
            used = "given" if key in given else ("measured" if measured else "assumed")
            rows.append({"figure": label, "model": before[key], "measured": measured, "used": used})
        for name, value in t["figures"].items():
            rows.append({"figure": f"{name} written a day", "model": value, "measured": m["figures"].get(tool, {}).get(name), "used": "model"})
        measured_requests = m["requests"].get(tool) or {}
        for cls, label in (("put_class", "PUT-class requests a day"), ("get_class", "GET-class requests a day")):
            model = sum(line["put_list_per_month" if cls == "put_class" else "get_per_month"] for line in t["request_lines"]) / DAYS_PER_MONTH
            rows.append({"figure": label, "model": model, "measured": measured_requests.get(cls), "used": "model"})
        out[tool] = rows
    return out
