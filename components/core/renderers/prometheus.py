"""Prometheus 3 configuration and flags for the Docker/Swarm stacks (on Kubernetes the operator
renders them from kube-prometheus-stack values). Checked against tests/upstream/prometheus-3.*."""

from __future__ import annotations

from typing import Any

from components.core.config import StackConfig
from components.core.renderers import thanos

PORT = 9090
TSDB_PATH = "/prometheus"
# Recent data only: older blocks are already in the bucket, which bounds what a lost volume costs.
LOCAL_RETENTION = "6h"


def render(cfg: StackConfig, cluster_label: str, replica: str, scrape_targets: dict[str, list[str]], receive_url: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": "30s",
            "evaluation_interval": "30s",
            # Thanos Query deduplicates HA replicas on the replica label.
            "external_labels": {"cluster": cluster_label, thanos.REPLICA_LABEL: replica},
        },
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in sorted(scrape_targets.items())
        ],
    }
    if receive_url:
        config["remote_write"] = [{"url": receive_url, "queue_config": {"max_samples_per_send": 5000}}]
    return config


# Prometheus adds its external labels to every alert it sends, then applies
# alert_relabel_configs (prometheus/prometheus v3.14.0 notifier/alert.go relabelAlerts, called
# from notifier/manager.go Send). Two replicas would send two alerts that differ only in `replica`,
# and Alertmanager deduplicates only identical label sets: the label is dropped from alerts (the
# Prometheus operator does the same on EKS with its replicaExternalLabelName). A single Prometheus
# goes without, so that its config (and an EC2 launch template) does not change for nothing.
ALERT_RELABEL = [{"action": "labeldrop", "regex": thanos.REPLICA_LABEL}]


def with_monitoring(config: dict[str, Any], scrape_configs: list[dict[str, Any]], rule_files: list[str], alertmanagers: list[str],
                    replicated: bool = False) -> dict[str, Any]:
    """`config` scraping every storage-path component, evaluating the alert rules and sending
    alerts to Alertmanager (components/containers/monitoring.py decides what is scraped);
    `replicated`: one of several Prometheus replicas sending to the same Alertmanager."""
    alerting: dict[str, Any] = {"alert_relabel_configs": ALERT_RELABEL} if replicated else {}
    return {
        **config,
        "rule_files": rule_files,
        "alerting": {**alerting, "alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]},
        "scrape_configs": scrape_configs,
    }


def flags(cfg: StackConfig) -> list[str]:
    args = [
        "--config.file=/etc/prometheus/prometheus.yml",
        f"--storage.tsdb.path={TSDB_PATH}",
        f"--storage.tsdb.retention.time={LOCAL_RETENTION}",
        "--web.enable-lifecycle",
    ]
    if cfg.tools.thanos.mode == "sidecar":
        # The sidecar uploads only blocks Prometheus never compacts locally: 2h each.
        args += ["--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"]
    return args
