"""Every image and chart this project deploys, pinned to an exact version, in one place.

Why each version was chosen (and what was avoided) is written next to it. A stack may override
one entry through `obs-storage:versions`; the override is validated by `components.config`
(exact version only, known-bad versions refused).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class ImageFacts:
    """What an image provides at its pinned tag, read from the Dockerfile that builds it.

    Health checks, entrypoints, users and volume mounts may use only what is listed here
    (tests/test_images.py enforces it). Bumping a version means reading these facts again at the
    new tag and updating `source`.
    """

    checked: str  # the image version these facts were read for; must equal the pin's version
    source: str  # where each fact was read: repository, tag, file
    user: str  # numeric uid the image runs as
    shell: bool  # a /bin/sh (or /busybox/sh) the container could run
    executables: tuple[str, ...]  # absolute paths a health check or entrypoint may call
    # Directories that exist in the image and are writable by `user` (or world-writable). A new
    # volume mounted on one of them takes its owner and mode (moby daemon/volumes_unix.go
    # copyOwnership); a volume mounted where the image has no directory is root-owned 0755.
    writable: tuple[str, ...] = ()


# A condition on a chart's values: (dotted value path, the chart's default for it). It holds when the
# value (the program's, else the default) is truthy; a path starting with "!" holds when it is not.
# "*." at the start stands for any top-level key (a chart component), e.g. "*.statefulSetRecreateJob.enabled".
Condition = tuple[str, Any]


@dataclass(frozen=True)
class HookObjects:
    """Objects a chart renders only as Helm hooks. Pulumi's helm.v4.Chart never creates them: it
    templates the chart with hooks disabled and registers the release manifest alone
    (pulumi-kubernetes provider/pkg/provider/helm/v4/chart.go: `cmd.DisableHooks = true`, then
    `release.Manifest`; read at commit fa8e638, 2026-07-02, the newest in the reference snapshot),
    and in pulumi_kubernetes 4.34.2 `include_hooks` only adds them to YAML rendered to a directory
    (helm/v4/Chart.py: "no effect outside of render mode, where hooks are not supported")."""

    what: str
    when: tuple[Condition, ...]  # all hold: the chart renders the hook objects
    # What the hook Jobs would create when run, and so what never exists under Pulumi.
    made: tuple[str, ...] = ()
    # Workloads of the applied manifest that mount one of `made`, each with the conditions under
    # which the chart adds that mount. Any of them holding leaves the pod stuck in ContainerCreating.
    mounted_by: tuple[tuple[str, tuple[Condition, ...]], ...] = ()


@dataclass(frozen=True)
class ClusterRbac:
    """A cluster-scoped role a chart renders when `when` holds. One that reads Secrets in every
    namespace must say why it is `accepted`, or the program's values must switch it off."""

    what: str
    when: tuple[Condition, ...]
    secrets: bool
    accepted: str = ""


@dataclass(frozen=True)
class ChartFacts:
    """What the program relies on in a chart at its pinned version, read in the chart's source at its
    tag. tests/test_chart_facts.py holds the values the program sets to them: no hook object is
    needed, nothing a hook makes is mounted, the defaults listed here are the ones the program's
    comments and docs state. Bumping the chart means reading all of it again at the new tag."""

    checked: str  # the chart version these facts were read for; must equal the pin's version
    source: str  # repository, tag (commit) and files
    hooks: tuple[HookObjects, ...]
    # Chart defaults the program relies on or overrides on purpose (dotted value path -> default).
    defaults: dict[str, Any]
    # Cluster-scoped RBAC the chart can render, and under which values.
    cluster_rbac: tuple[ClusterRbac, ...]


@dataclass(frozen=True)
class Pin:
    """One pinned artefact: an image (repository + tag) or a Helm chart (repo URL + chart + version)."""

    kind: str  # "image" or "chart"
    name: str  # image repository or chart name
    version: str
    repo: str = ""  # Helm repository URL for charts
    why: str = ""
    facts: Optional[ImageFacts] = None  # images only
    chart_facts: Optional[ChartFacts] = None  # charts only


# Exact versions only. Reasons are checked against upstream release notes and issue trackers.
DEFAULT_PINS: dict[str, Pin] = {
    "loki": Pin(
        "image",
        "grafana/loki",
        "3.7.8",
        why="Newest 3.7 patch (release notes: grafana/loki#24587). 3.6.11-3.6.15 and 3.7.0-3.7.6 upload "
        "with aws-chunked trailing checksums that S3-compatible stores reject (grafana/loki#21926, "
        "#24206); the fix (#22003, backported as #24215) is in 3.7.7 and later.",
        facts=ImageFacts(
            checked="3.7.8",
            source="grafana/loki cmd/loki/Dockerfile (read at v3.7.6; cmd/loki/ unchanged on release-3.7.x "
            "through 2026-08-21): FROM gcr.io/distroless/static:nonroot, COPY .../loki /usr/bin/loki, "
            "/loki chown 10001, USER 10001. `-health` self-check: cmd/loki/health.go (#20313, in every "
            "tag since v3.6.5): GET -health.url (default http://localhost:3100/ready), exit 0 on 200.",
            user="10001",
            shell=False,
            executables=("/usr/bin/loki",),
            writable=("/loki",),
        ),
    ),
    "tempo": Pin(
        "image",
        "grafana/tempo",
        "2.10.8",
        why="Newest 2.x release (v2.10.8, 2026-08-13: security fixes only; 2.10.7 fixed --version). "
        "Tempo 3.x scales out only through Kafka (block-builders, live-stores) and its single binary "
        "cannot replicate a WAL across zones; 2.x ingesters with replication factor 3 survive a Spot "
        "reclaim. Retention is compactor.compaction.block_retention.",
        facts=ImageFacts(
            checked="2.10.8",
            source="grafana/tempo v2.10.8 cmd/tempo/Dockerfile: FROM gcr.io/distroless/static-debian12 "
            "(busybox only in a build stage), COPY tempo /tempo, /var/tempo chown 10001 mode 0700, "
            "USER 10001:10001, ENTRYPOINT [/tempo]. No health subcommand in 2.x (cmd/tempo/main.go "
            "has only -version; -health arrived in v3.0.0-rc.0, grafana/tempo#6608).",
            user="10001",
            shell=False,
            executables=("/tempo",),
            writable=("/var/tempo",),
        ),
    ),
    "thanos": Pin(
        "image",
        "quay.io/thanos/thanos",
        "v0.42.4",
        why="Newest Thanos release (v0.42.4, 2026-07-30; no v0.43 tag); Query takes --endpoint "
        "(--store was removed in v0.38, CHANGELOG #7890).",
        facts=ImageFacts(
            checked="v0.42.4",
            source="thanos-io/thanos v0.42.4 Dockerfile.multi-arch (what `make docker-build` publishes): "
            "FROM quay.io/prometheus/busybox (busybox:glibc, /tmp 1777 per docker-library/busybox), "
            "COPY thanos /bin/thanos, adduser -H -u 1001 thanos (no home), USER 1001.",
            user="1001",
            shell=True,
            executables=("/bin/thanos", "/bin/sh", "/bin/wget"),
            writable=("/tmp",),
        ),
    ),
    "prometheus": Pin(
        "image",
        "quay.io/prometheus/prometheus",
        "v3.14.0",
        why="Newest Prometheus 3.x whose tag and Dockerfile could be read (v3.14.0, 2026-08-17); "
        "3.15.0 was still at release candidates in the sources checked.",
        facts=ImageFacts(
            checked="v3.14.0",
            source="prometheus/prometheus v3.14.0 Dockerfile: FROM quay.io/prometheus/busybox-linux-amd64, "
            "/bin/prometheus, /bin/promtool, WORKDIR /prometheus chown nobody, USER nobody (65534), "
            "VOLUME /prometheus.",
            user="65534",
            shell=True,
            executables=("/bin/prometheus", "/bin/promtool", "/bin/sh", "/bin/wget"),
            writable=("/prometheus",),
        ),
    ),
    "grafana": Pin(
        "image",
        "grafana/grafana",
        "13.2.3",
        why="Stable Grafana OSS 13.2 (CHANGELOG \"13.2.3 (2026-09-29)\") with tracesToLogsV2 datasource links.",
        facts=ImageFacts(
            checked="13.2.3",
            source="grafana.com docs v13.2 configure-docker: the default tag is the Alpine image (distroless "
            "variants start with 13.3); grafana/grafana Dockerfile (read at commit 78515af, not at the "
            "tag): FROM alpine, apk add curl, USER 472, GF_PATHS_DATA=/var/lib/grafana owned by 472, "
            "packaging/docker/run.sh reads GF_*__FILE.",
            user="472",
            shell=True,
            executables=("/bin/sh", "/usr/bin/wget", "/usr/bin/curl", "/run.sh"),
            writable=("/var/lib/grafana",),
        ),
    ),
    "minio": Pin(
        "image",
        "quay.io/minio/minio",
        "RELEASE.2025-09-07T16-13-09Z",
        why="The MinIO OSS repository is archived and this is the last published image. It lacks "
        "the fix for CVE-2025-62506 (session-policy bypass, fixed only in source release "
        "2025-10-15): acceptable for the local stack alone, which binds 127.0.0.1 only.",
        facts=ImageFacts(
            checked="RELEASE.2025-09-07T16-13-09Z",
            source="minio/minio RELEASE.2025-09-07T16-13-09Z Dockerfile.release: FROM ubi9/ubi-micro, "
            "/usr/bin/mc and a static /usr/bin/curl, no USER (root), VOLUME /data; `mc ready local` "
            "polls mc's default alias local=http://localhost:9000 without credentials.",
            user="0",
            shell=True,
            executables=("/usr/bin/minio", "/usr/bin/mc", "/usr/bin/curl", "/bin/sh"),
            writable=("/data",),
        ),
    ),
    "etcd": Pin(
        "image",
        "quay.io/coreos/etcd",
        "v3.6.14",
        why="Ring store of the Swarm target (see components/docker/swarm.py for why not memberlist). Newest "
        "v3.6 release (2026-07-23); a single member holds only soft ring state that replicas rewrite "
        "on every heartbeat.",
        facts=ImageFacts(
            checked="v3.6.14",
            source="etcd-io/etcd v3.6.14 Dockerfile and scripts/build-docker.sh (pushes quay.io/coreos/etcd): "
            "FROM gcr.io/distroless/static-debian12, ADD etcd etcdctl etcdutl /usr/local/bin/, "
            "WORKDIR /var/lib/etcd, no USER (root); etcdctl's --endpoints default 127.0.0.1:2379 "
            "(etcdctl/ctlv3/ctl.go).",
            user="0",
            shell=False,
            executables=("/usr/local/bin/etcd", "/usr/local/bin/etcdctl"),
            writable=("/var/lib/etcd",),
        ),
    ),
    "alertmanager": Pin(
        "image",
        "quay.io/prometheus/alertmanager",
        "v0.34.0",
        why="Routes the alert rules' alerts (Docker targets; on EKS kube-prometheus-stack-88.5.3 runs the "
        "same version, its values.yaml alertmanagerSpec.image.tag). Newest release (tag v0.34.0, 2026-08-16).",
        facts=ImageFacts(
            checked="v0.34.0",
            source="prometheus/alertmanager v0.34.0 Dockerfile: FROM quay.io/prometheus/busybox, /bin/alertmanager, "
            "/bin/amtool, /alertmanager chown nobody, USER nobody (65534), VOLUME /alertmanager.",
            user="65534",
            shell=True,
            executables=("/bin/alertmanager", "/bin/amtool", "/bin/sh", "/bin/wget"),
            writable=("/alertmanager",),
        ),
    ),
    "python": Pin(
        "image",
        "python",
        "3.14.6-slim-trixie",
        why="Runs the bucket-freshness probe (probes/bucket_freshness.py, standard library only), shipped "
        "as a file. Newest 3.14 release in docker-library/python versions.json (commit 4f07059, 2026-06-23).",
        facts=ImageFacts(
            checked="3.14.6-slim-trixie",
            source="docker-library/python 3.14/slim-trixie/Dockerfile (commit 7914d06): FROM debian:trixie-slim "
            "(/bin/sh, /tmp 1777, user nobody 65534), ca-certificates installed, Python built into /usr/local "
            "(/usr/local/bin/python3), no USER (root), CMD python3.",
            user="0",
            shell=True,
            executables=("/usr/local/bin/python3", "/bin/sh"),
            writable=("/tmp",),
        ),
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
        chart_facts=ChartFacts(
            checked="18.11.0",
            source="grafana-community/helm-charts tag loki-18.11.0 (commit 3386a11) charts/loki: values.yaml, "
            "templates/_workload.tpl, templates/tests/test-canary.yaml, templates/backend/clusterrole.yaml, "
            "templates/role.yaml; subchart rollout-operator 0.51.1 (grafana/helm-charts tag rollout-operator-0.51.1). "
            "Checked with `helm template` (with and without --no-hooks) of the staging values.",
            hooks=(
                # Only on `helm upgrade` and when `lookup` finds the StatefulSet's claims or service changed.
                HookObjects("Job, ServiceAccount, Role and RoleBinding <statefulset>-recreate (pre-upgrade)",
                            when=(("*.statefulSetRecreateJob.enabled", False),)),
                HookObjects("Pod <fullname>-helm-test (test hook)", when=(("test.enabled", True), ("lokiCanary.enabled", True))),
            ),
            defaults={
                # values.yaml `loki.ingester`, rendered into config.yaml's ingester section.
                "loki.ingester.wal.flush_on_shutdown": True,
                "ingester.terminationGracePeriodSeconds": 300,
                "rbac.namespaced": False,
                "sidecar.rules.enabled": True,
            },
            cluster_rbac=(
                ClusterRbac("ClusterRole <fullname>-clusterrole: get/watch/list configmaps and secrets in every namespace, "
                            "bound to the backend's service account (here the shared `loki`), for the rules sidecar",
                            when=(("!rbac.namespaced", False), ("sidecar.rules.enabled", True)), secrets=True),
                ClusterRbac("ClusterRole <release>-rollout-operator-webhook-clusterrole: list/patch/watch admission webhook "
                            "configurations (the operator patches its self-signed CA into them)",
                            when=(("rollout_operator.enabled", False),), secrets=False),
            ),
        ),
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
        chart_facts=ChartFacts(
            checked="2.26.2",
            source="grafana-community/helm-charts tag tempo-distributed-2.26.2 (commit 3da7885) charts/tempo-distributed: "
            "values.yaml (reportingEnabled, ingester.config, the config template's usage_report and ingester sections), "
            "templates/_helpers.tpl tempo.statefulset.recreateOnSizeChangeHook, templates/tokengen/, templates/provisioner/, "
            "templates/tests/; subcharts rollout-operator 0.50.0, grafana-agent-operator 0.5.2 (tests only). Checked with "
            "`helm template` (with and without --no-hooks) of the staging values.",
            hooks=(
                HookObjects("Job, ServiceAccount, Role and RoleBinding recreating the ingester StatefulSet (pre-upgrade)",
                            when=(("ingester.persistence.enabled", False), ("ingester.persistence.enableStatefulSetRecreationForSizeChange", False))),
                HookObjects("The same for the metrics-generator",
                            when=(("metricsGenerator.persistence.enabled", False),
                                  ("metricsGenerator.persistence.enableStatefulSetRecreationForSizeChange", False))),
                HookObjects("Job tokengen (enterprise)", when=(("enterprise.enabled", False), ("tokengenJob.enable", True))),
                HookObjects("Job provisioner (enterprise)", when=(("provisioner.enabled", False), ("enterprise.enabled", False))),
                HookObjects("Pod and ConfigMap of the integration test (test hook)", when=(("tests.integration.enabled", False),)),
            ),
            defaults={
                # `usage_report: reporting_enabled: {{ .Values.reportingEnabled }}` in the config template.
                "reportingEnabled": True,
                # Rendered only when truthy; Tempo's own default is false too (modules/ingester/config.go).
                "ingester.config.flush_all_on_shutdown": False,
                "ingester.terminationGracePeriodSeconds": 300,
            },
            cluster_rbac=(
                ClusterRbac("ClusterRole <release>-rollout-operator-webhook-clusterrole (rollout-operator 0.50.0): "
                            "admission webhook configurations only", when=(("rollout_operator.enabled", False),), secrets=False),
            ),
        ),
    ),
    "kube-prometheus-stack-chart": Pin(
        "chart",
        "kube-prometheus-stack",
        "88.5.3",
        repo="https://prometheus-community.github.io/helm-charts",
        why="Newest kube-prometheus-stack in prometheus-community/helm-charts as read (tag "
        "kube-prometheus-stack-88.5.3, 2026-08-21; appVersion: Prometheus operator v0.93.1). Thanos "
        "sidecar via prometheusSpec.thanos; the Prometheus image is set explicitly to the prometheus pin.",
        chart_facts=ChartFacts(
            checked="88.5.3",
            source="prometheus-community/helm-charts tag kube-prometheus-stack-88.5.3 (commit ea930ba) "
            "charts/kube-prometheus-stack: values.yaml, templates/prometheus-operator/deployment.yaml, "
            "templates/prometheus-operator/admission-webhooks/job-patch/*.yaml, templates/prometheus-operator/clusterrole.yaml, "
            "charts/crds/templates/upgrade/, charts/crds/crds/crd-prometheuses.yaml; subchart kube-state-metrics 8.4.0 "
            "templates/role.yaml. Checked with `helm template` (with and without --no-hooks) of the staging values.",
            hooks=(
                HookObjects("ServiceAccount, ClusterRole, ClusterRoleBinding, Role, RoleBinding <fullname>-admission and Jobs "
                            "<fullname>-admission-create (pre-install, pre-upgrade) and -patch (post-install, post-upgrade)",
                            when=(("prometheusOperator.enabled", True), ("prometheusOperator.admissionWebhooks.enabled", True),
                                  ("prometheusOperator.admissionWebhooks.patch.enabled", True),
                                  ("!prometheusOperator.admissionWebhooks.certManager.enabled", False)),
                            # The create Job writes the webhook certificate into this Secret (kube-webhook-certgen).
                            made=("Secret <fullname>-admission",),
                            # deployment.yaml: volume tls-secret (secretName <fullname>-admission, not optional)
                            # whenever the operator serves TLS, whatever admissionWebhooks says.
                            mounted_by=(("Deployment <fullname>-operator",
                                         (("prometheusOperator.enabled", True), ("prometheusOperator.tls.enabled", True))),)),
                HookObjects("Job, ServiceAccount, ClusterRole, ClusterRoleBinding upgrading the CRDs",
                            when=(("crds.enabled", True), ("crds.upgradeJob.enabled", False))),
                HookObjects("Grafana subchart test Pod (test hook)", when=(("grafana.enabled", True),)),
            ),
            defaults={
                "prometheusOperator.tls.enabled": True,
                "prometheusOperator.admissionWebhooks.enabled": True,
                "crds.upgradeJob.enabled": False,
                # values.yaml leaves it empty; the Prometheus CRD's default is 30s (crd-prometheuses.yaml).
                "prometheus.prometheusSpec.scrapeInterval": "30s",
            },
            cluster_rbac=(
                ClusterRbac("ClusterRole <fullname>-operator: every verb on configmaps and secrets in every namespace",
                            when=(("prometheusOperator.enabled", True),), secrets=True,
                            accepted="the operator writes each Prometheus' and Alertmanager's generated configuration as a "
                            "Secret; it is the cluster's Prometheus operator"),
                ClusterRbac("ClusterRole <fullname>-kube-state-metrics: list/watch secrets (its `secrets` collector, on by default)",
                            when=(("kubeStateMetrics.enabled", True),), secrets=True,
                            accepted="kube_secret_* metrics; kube-state-metrics' collectorsExclude could drop it, but the "
                            "subchart's keys are not in tests/upstream/chart-kube-prometheus-stack.keys yet"),
                ClusterRbac("ClusterRole <fullname>-prometheus: read nodes, services, endpoints, pods (scraping)",
                            when=(("prometheus.enabled", True),), secrets=False),
            ),
        ),
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
    "quay.io/prometheus/alertmanager": re.compile(rf"^v{_SEMVER}$"),
    # Docker Hub's official image: full version and Debian variant (docker-library/python
    # generate-stackbrew-library.sh tags every variant with the full version).
    "python": re.compile(rf"^{_SEMVER}-slim-trixie$"),
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
