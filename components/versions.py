"""Every image and chart this project deploys, pinned to an exact version, in one place.

Why each version was chosen (and what was avoided) is written next to it. A stack may override
one entry through `obs-storage:versions`; the override is validated by `components.config`
(exact version only, known-bad versions refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    """One pinned artefact: an image (repository + tag) or a Helm chart (repo URL + chart + version)."""

    kind: str  # "image" or "chart"
    name: str  # image repository or chart name
    version: str
    repo: str = ""  # Helm repository URL for charts
    why: str = ""


# Exact versions only. Reasons are checked against upstream release notes and issue trackers.
DEFAULT_PINS: dict[str, Pin] = {
    "loki": Pin(
        "image",
        "grafana/loki",
        "3.7.8",
        why="Newest 3.7 patch. 3.6.11-3.6.15 and 3.7.0-3.7.6 upload with aws-chunked trailing "
        "checksums that S3-compatible stores reject (grafana/loki#21926, #21624); the fix "
        "(#22003, backported as #24215) is in 3.7.7 and later.",
    ),
    "tempo": Pin(
        "image",
        "grafana/tempo",
        "2.10.6",
        why="Last 2.x release. Tempo 3.x scales out only through Kafka (block-builders, live-stores) "
        "and its single binary cannot replicate a WAL across zones; 2.x ingesters with replication "
        "factor 3 on emptyDir survive a Spot reclaim. Retention is compactor.compaction.block_retention.",
    ),
    "thanos": Pin(
        "image",
        "quay.io/thanos/thanos",
        "v0.42.4",
        why="Current stable Thanos (no open object-storage bugs); Query takes --endpoint (--store was removed in v0.38).",
    ),
    "prometheus": Pin(
        "image",
        "quay.io/prometheus/prometheus",
        "v3.15.0",
        why="Current stable Prometheus 3.x; no known TSDB or remote-write bugs.",
    ),
    "grafana": Pin(
        "image",
        "grafana/grafana",
        "13.2.3",
        why="Stable Grafana OSS with tracesToLogsV2 datasource links.",
    ),
    "minio": Pin(
        "image",
        "quay.io/minio/minio",
        "RELEASE.2025-09-07T16-13-09Z",
        why="The MinIO OSS repository is archived and this is the last published image. It lacks "
        "the fix for CVE-2025-62506 (session-policy bypass, fixed only in source release "
        "2025-10-15): acceptable for the local stack alone, which binds 127.0.0.1 only.",
    ),
    "loki-chart": Pin(
        "chart",
        "loki",
        "18.11.0",
        repo="https://grafana-community.github.io/helm-charts",
        why="OSS Loki chart from grafana-community/helm-charts (the grafana/helm-charts copy is deprecated). "
        "Newest release whose source could be read: tag loki-18.11.0 (2026-08-20; also in the repository's "
        "gh-pages index.yaml). Later 18.13.x releases are referenced by third parties, but their source "
        "could not be read, so their values and templates cannot be checked. Its appVersion is 3.7.6 (a known-bad Loki): the image tag is "
        "set explicitly to the loki pin. Per-component service accounts and ingester.rolloutGroupPrefix / "
        "addIngesterNamePrefix / strategy are used.",
    ),
    "tempo-chart": Pin(
        "chart",
        "tempo-distributed",
        "2.26.2",
        repo="https://grafana-community.github.io/helm-charts",
        why="Last tempo-distributed chart of the 2.x line in grafana-community/helm-charts (tag "
        "tempo-distributed-2.26.2, 2026-07-07; the next tag is 3.0.0, which needs Kafka). 2.26.1 exists too "
        "and differs only in its memcached image tag. appVersion 2.10.7; the image tag is set explicitly "
        "to the tempo pin.",
    ),
    "kube-prometheus-stack-chart": Pin(
        "chart",
        "kube-prometheus-stack",
        "88.5.3",
        repo="https://prometheus-community.github.io/helm-charts",
        why="Newest kube-prometheus-stack in prometheus-community/helm-charts as read (tag "
        "kube-prometheus-stack-88.5.3, 2026-08-21; appVersion: Prometheus operator v0.93.1). Thanos "
        "sidecar via prometheusSpec.thanos; the Prometheus image is set explicitly to the prometheus pin.",
    ),
}

# Versions with known storage bugs: refused in config with the reason.
KNOWN_BAD: dict[str, list[tuple[str, str]]] = {
    "loki": [
        (
            r"^3\.6\.1[1-5]$|^3\.7\.[0-6]$",
            "its S3 checksum change breaks PutObject on S3-compatible stores (grafana/loki#21926); use 3.7.7 or later",
        ),
    ],
}

_EXACT = {
    "image": re.compile(r"^(v?\d+\.\d+\.\d+|RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z)$"),
    "chart": re.compile(r"^\d+\.\d+\.\d+$"),
}


def version_problem(key: str, version: str) -> str | None:
    """Why `version` cannot be used for `key`, or None when it can."""
    pin = DEFAULT_PINS[key]
    if not _EXACT[pin.kind].match(version):
        return f"is not an exact {pin.kind} version (expected e.g. {pin.version!r})"
    for pattern, reason in KNOWN_BAD.get(key, []):
        if re.match(pattern, version):
            return f"has a known bug: {reason}"
    return None


def resolve(overrides: dict[str, str]) -> dict[str, Pin]:
    """Default pins with a stack's (already validated) overrides applied."""
    pins = dict(DEFAULT_PINS)
    for key, version in overrides.items():
        base = pins[key]
        pins[key] = Pin(base.kind, base.name, version, base.repo, f"Overridden by stack config (default {base.version}).")
    return pins


def image(pins: dict[str, Pin], key: str) -> str:
    pin = pins[key]
    assert pin.kind == "image", key
    return f"{pin.name}:{pin.version}"
