"""The bucket-freshness probe (probes/bucket_freshness.py): its per-tool configuration and the
age beyond which each tool's newest upload means it has stopped uploading.

Every platform runs one probe per enabled tool, with that tool's own credentials, as a container
of the pinned Python image (components/core/versions.py "python") that runs the script shipped as a
file; Prometheus scrapes it (job `bucket-freshness`) and alerts.py's BucketUploadsStale fires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.core.config import StackConfig
from components.core.lifecycle import tenant_ids
from components.core.renderers import ObjectStore

PORT = 9109
JOB = "bucket-freshness"
SCRIPT_PATH = "/etc/obs/bucket_freshness.py"
CONFIG_PATH = "/etc/obs/bucket-freshness.json"
INTERVAL_SECONDS = 300
MINUTE, HOUR = 60, 3600

# How old a tool's newest upload may get while the tool works, from the intervals that bound it.
MAX_AGE_SECONDS = {
    # A stream's chunk is flushed at the latest after max_chunk_age (2h default, grafana/loki
    # v3.7.6 pkg/ingester/ingester.go), indexed at the next 15-min head rotation and uploaded
    # within a minute (indexshipper/tsdb/head_manager.go, indexshipper/shipper.go), then moved
    # into the tenant's folder by the next compaction (compaction_interval 10m, renderers/loki.py);
    # plus 30 min for a probe interval and slow flushes.
    "loki": 2 * HOUR + 15 * MINUTE + 1 * MINUTE + 10 * MINUTE + 30 * MINUTE,
    # A block is cut after max_block_duration (30m, 5m with replicas: renderers/tempo.py), completed and flushed,
    # and appears in the tenant index at the next blocklist poll (5m default, grafana/tempo
    # v2.10.8 tempodb/config.go); plus 25 min for a probe interval and slow flushes.
    "tempo": 30 * MINUTE + 5 * MINUTE + 25 * MINUTE,
    # Prometheus (and Receive) cut a 2-hour block every 2 hours and the shipper uploads it within
    # a minute; plus 1 hour for the first block (cut once the head spans 3 hours) and slack.
    "thanos": 3 * HOUR,
}


def script() -> str:
    """The probe itself, shipped into its container as a file."""
    return (Path(__file__).resolve().parents[3] / "probes" / "bucket_freshness.py").read_text()


def tenants(cfg: StackConfig, tool: str) -> list[str]:
    """The tenant prefixes the probe watches (Thanos keeps no per-tenant prefix)."""
    return [] if tool == "thanos" else tenant_ids(cfg, tool)


def config(cfg: StackConfig, tool: str, store: ObjectStore) -> dict[str, Any]:
    """The probe's JSON configuration for one tool (no credentials: those come from the platform)."""
    endpoint = store.endpoint
    if endpoint and "://" not in endpoint:
        endpoint = f"{'https' if store.tls else 'http'}://{endpoint}"
    return {
        "tool": tool,
        "bucket": store.bucket,
        "prefix": store.prefix if tool != "loki" else "",
        "tenants": tenants(cfg, tool),
        "region": store.region,
        "endpoint": endpoint,
        "tls": store.tls,
        "path_style": store.path_style,
        "max_age_seconds": MAX_AGE_SECONDS[tool],
        "interval_seconds": INTERVAL_SECONDS,
        "port": PORT,
    }


def command() -> list[str]:
    return ["/usr/local/bin/python3", SCRIPT_PATH, "--config", CONFIG_PATH]


def health() -> list[str]:
    return ["CMD", "/usr/local/bin/python3", SCRIPT_PATH, "--health", f"http://127.0.0.1:{PORT}/metrics"]
