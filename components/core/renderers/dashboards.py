"""Grafana dashboards of the storage path, written here as data (not copied from the mixins): is
data reaching the buckets, is anything failing, are the compactors keeping up, how much is stored.

Every query reads the Thanos datasource (renderers/grafana.py, uid `thanos`), so the same
dashboard works on every target; metric names are those alerts.py cites, read at the pinned tags.
Provisioned from files on Docker targets (`provider()`), as a ConfigMap for an existing Grafana's
sidecar on EKS (label grafana_dashboard=1).
"""

from __future__ import annotations

from typing import Any

FOLDER = "obs-storage"
DASHBOARDS_DIR = "/etc/grafana/dashboards/obs-storage"
PROVIDER_FILE = "/etc/grafana/provisioning/dashboards/obs-storage.yaml"
DATASOURCE = {"type": "prometheus", "uid": "thanos"}


def _panel(title: str, targets: list[tuple[str, str]], x: int, y: int, unit: str = "short", description: str = "", kind: str = "timeseries") -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend} for i, (expr, legend) in enumerate(targets)],
    }


def storage_path() -> dict[str, Any]:
    panels = [
        _panel("Age of the newest upload, per tool and tenant", [
            ("time() - obs_bucket_newest_upload_timestamp_seconds", "{{tool}} {{tenant}}"),
            ("obs_bucket_upload_max_age_seconds", "limit {{tool}}"),
        ], 0, 0, unit="s", description="Read from the buckets by the bucket-freshness probes; an age above its limit fires BucketUploadsStale."),
        _panel("Uploads and flushes", [
            ("sum by (job) (rate(thanos_shipper_uploads_total[1h])) * 3600", "{{job}} blocks/h"),
            ("sum by (job) (rate(loki_ingester_chunks_flushed_total[5m]))", "{{job}} chunks/s"),
            ("sum by (job) (rate(tempo_ingester_blocks_flushed_total[5m])) * 3600", "{{job}} blocks/h"),
        ], 12, 0),
        _panel("Failures writing to the buckets", [
            ("sum by (job) (rate(thanos_objstore_bucket_operation_failures_total[5m]))", "{{job}} objstore"),
            ("sum by (job) (rate(loki_ingester_chunks_flush_failures_total[5m]))", "{{job}} chunk flushes"),
            ("sum by (job) (rate(loki_s3_request_duration_seconds_count{operation=\"S3.PutObject\", status_code!~\"2..\"}[5m]))", "{{job}} S3 PutObject"),
            ("sum by (job) (rate(tempo_ingester_failed_flushes_total[5m]))", "{{job}} flushes"),
            ("sum by (job) (rate(tempodb_backend_request_duration_seconds_count{operation=~\"PUT|POST\", status_code!~\"2..\"}[5m]))", "{{job}} backend writes"),
        ], 0, 8, unit="reqps"),
        _panel("Waiting to be flushed", [
            ("sum by (instance) (loki_ingester_flush_queue_length)", "Loki flush queue {{instance}}"),
            ("max by (instance) (loki_ingester_wal_disk_usage_percent)", "Loki WAL disk used {{instance}}"),
        ], 12, 8),
        _panel("Compactors", [
            ("sum by (job) (increase(thanos_compact_iterations_total[1h]))", "{{job}} iterations/h"),
            ("max by (job) (thanos_compact_halted)", "{{job}} halted"),
            ("time() - max by (job) (loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds > 0)", "Loki: s since last compaction"),
            ("sum by (job) (increase(tempodb_compaction_errors_total[1h]))", "{{job}} Tempo compaction errors/h"),
        ], 0, 16),
        _panel("Objects stored", [
            ("max by (bucket) (minio_bucket_usage_object_total)", "{{bucket}} objects (MinIO)"),
            ("max by (tenant) (tempodb_blocklist_length)", "Tempo blocks {{tenant}}"),
            ("max by (job) (thanos_blocks_meta_synced{state=\"loaded\"})", "Thanos blocks seen by {{job}}"),
        ], 12, 16, description="MinIO counts objects on the local target only; Tempo and Thanos count the blocks their readers see in the bucket."),
    ]
    return {
        "uid": "obs-storage-path",
        "title": "Storage path: uploads, failures, freshness",
        "tags": ["obs-storage"],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-12h", "to": "now"},
        "refresh": "1m",
        "panels": panels,
    }


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> dashboard."""
    return {"storage-path.json": storage_path()}


def provider() -> dict[str, Any]:
    """Grafana's dashboard provisioning file: the dashboards above, from their directory."""
    return {"apiVersion": 1, "providers": [{
        "name": "obs-storage", "folder": FOLDER, "type": "file", "disableDeletion": True,
        "options": {"path": DASHBOARDS_DIR},
    }]}
