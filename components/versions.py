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

_LOKI_CHECKSUMS = "its S3 checksum change breaks PutObject on S3-compatible stores (grafana/loki#21926); use 3.7.7 or later"

# Versions with known storage bugs, as inclusive ranges of release numbers (first, last, reason):
# refused in config however they are spelt ("v3.7.2" is 3.7.2).
KNOWN_BAD: dict[str, list[tuple[str, str, str]]] = {
    "loki": [("3.6.11", "3.6.15", _LOKI_CHECKSUMS), ("3.7.0", "3.7.6", _LOKI_CHECKSUMS)],
}

_SEMVER = r"\d+\.\d+\.\d+"
# One tag format per artefact, the one its registry publishes: any other spelling names an image
# that does not exist.
_EXACT: dict[str, re.Pattern[str]] = {
    # Docker Hub tags without a "v": the charts default the image tag to their appVersion
    # (grafana-community/helm-charts, templates/_helpers.tpl "loki.image" at loki-18.11.0 with
    # appVersion 3.7.6; "tempo.tempoImage" at tempo-distributed-2.26.1 with appVersion 2.10.7;
    # charts/grafana/values.yaml at grafana-12.11.1 with appVersion 13.2.0).
    "grafana/loki": re.compile(rf"^{_SEMVER}$"),
    "grafana/tempo": re.compile(rf"^{_SEMVER}$"),
    "grafana/grafana": re.compile(rf"^{_SEMVER}$"),
    # quay.io tags with a "v" (prometheus-community/helm-charts kube-prometheus-stack-88.5.3
    # values.yaml: quay.io/thanos/thanos v0.42.4, quay.io/prometheus/prometheus v3.14.0-distroless).
    "quay.io/thanos/thanos": re.compile(rf"^v{_SEMVER}$"),
    "quay.io/prometheus/prometheus": re.compile(rf"^v{_SEMVER}$"),
    # etcd-io/etcd scripts/release.sh: docker push "quay.io/coreos/etcd:${RELEASE_VERSION}", RELEASE_VERSION="v${VERSION}".
    "quay.io/coreos/etcd": re.compile(rf"^v{_SEMVER}$"),
    # MinIO tags releases by date (minio/minio helm/minio/values.yaml: RELEASE.2023-02-10T18-48-39Z).
    "quay.io/minio/minio": re.compile(r"^RELEASE\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$"),
    # Chart versions as the repositories' index lists them (tags tempo-distributed-2.26.1,
    # kube-prometheus-stack-88.5.3): no "v".
    "chart": re.compile(rf"^{_SEMVER}$"),
}


def _release(version: str) -> tuple[int, int, int] | None:
    """The release numbers of `version` however it is spelt ("v3.7.02" -> (3, 7, 2)), or None."""
    match = re.fullmatch(r"\s*[vV]?(\d+)\.(\d+)\.(\d+)\s*", version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def version_problem(key: str, version: str) -> str | None:
    """Why `version` cannot be used for `key`, or None when it can."""
    pin = DEFAULT_PINS[key]
    release = _release(version)
    for first, last, reason in KNOWN_BAD.get(key, []):
        if release is not None and _release(first) <= release <= _release(last):
            return f"has a known bug: {reason}"
    tag_format = _EXACT["chart"] if pin.kind == "chart" else _EXACT[pin.name]
    if not tag_format.match(version):
        return f"is not an exact {pin.name} {'chart version' if pin.kind == 'chart' else 'tag'} as its registry publishes it (expected e.g. {pin.version!r})"
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
