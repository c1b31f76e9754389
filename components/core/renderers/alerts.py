"""Alert rules that say when stored data is at risk, as Python data: one renderer for every target.

Docker targets mount `rule_file()` into Prometheus; EKS hands `groups()` to kube-prometheus-stack,
which turns them into a PrometheusRule. What differs per platform is only how each component's
series are selected (`Scope`): job names on Docker, the charts' job names and namespace on EKS.

Every metric name and label below was read in the pinned version's source or in the upstream
mixin at that tag; the file and tag are named next to each rule. Loki is pinned to 3.7.8, whose
tag is not readable; its facts were read at v3.7.6 (the newest readable tag; release-3.7.x had
no metric change after it). What each alert means and what to do is in docs/operations.md,
"Alerts and what to do" (annotation `runbook`).

Every alert has a `promtool test rules` case that fires on a failing series and stays silent on
a healthy one (tests/alerts/, run by tests/test_alerts.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from components.core.config import RECEIVER_SECRET_FIELD

RUNBOOK = "docs/operations.md#alerts-and-what-to-do"
CRITICAL, WARNING = "critical", "warning"


@dataclass(frozen=True)
class Scope:
    """PromQL label matchers that select each component's series on one platform; None where the
    component does not run there (its rules are then left out)."""

    prometheus: Optional[str] = None
    sidecar: Optional[str] = None
    receive: Optional[str] = None
    store: Optional[str] = None
    compact: Optional[str] = None
    query: Optional[str] = None
    loki: Optional[str] = None
    canary: Optional[str] = None  # the Loki canary (EKS)
    tempo: Optional[str] = None
    freshness: Optional[str] = None
    alertmanager: Optional[str] = None
    minio: Optional[str] = None
    ring: Optional[str] = None
    # The always-firing Watchdog (renderers/alerts.py _watchdog_rules).
    watchdog: bool = True
    # Labels a Thanos sidecar's series share with its own Prometheus' series (the mixin joins on
    # them): `namespace, pod` where both run in one pod, a scrape-target label on Docker.
    sidecar_join: str = "namespace, pod"
    # Freshness alerts stay silent for a tenant that sent nothing during the whole window:
    # per tool, the window in seconds (components/core/renderers/freshness.py MAX_AGE_SECONDS).
    freshness_windows: dict[str, int] = field(default_factory=dict)

    def components(self) -> dict[str, str]:
        """Component -> its matchers, for the components that run here."""
        return {name: getattr(self, name) for name in COMPONENTS if getattr(self, name)}


COMPONENTS = ("prometheus", "sidecar", "receive", "store", "compact", "query", "loki", "canary", "tempo", "freshness", "alertmanager", "minio", "ring")


def _alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str, labels: Optional[dict[str, str]] = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": " ".join(expr.split())}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {"summary": summary, "description": description, "runbook": f"{RUNBOOK}"}
    return rule


def _scrape_rules(s: Scope) -> list[dict[str, Any]]:
    """A component that is not scraped is one no other alert can see."""
    rules = []
    down = " or ".join(f"(up{{{sel}}} == 0)" for sel in s.components().values())
    rules.append(_alert(
        "ObsStorageTargetDown", down, "5m", CRITICAL,
        "A storage-path component does not answer its metrics scrape.",
        "{{ $labels.job }} {{ $labels.instance }} has been down for 5 minutes; the alerts that watch its uploads are blind.",
    ))
    for component, sel in s.components().items():
        # absent() carries only equality matchers' labels: the component label says which one.
        rules.append(_alert(
            "ObsStorageTargetMissing", f"absent(up{{{sel}}})", "10m", CRITICAL,
            "A storage-path component has no scrape target at all.",
            f"No target of {component} ({sel}) has been scraped for 10 minutes: it is not running or not discovered.",
            {"component": component},
        ))
    return rules


def _thanos_rules(s: Scope) -> list[dict[str, Any]]:
    rules = []
    if s.sidecar:
        # thanos-io/thanos v0.42.4 mixin/alerts/sidecar.libsonnet; metric names from thanos-io/objstore
        # objstore.go (module v0.0.0-20250804093838-71d60dfee488, go.mod at v0.42.4), prefixed
        # `thanos_` by cmd/thanos/sidecar.go (extprom.WrapRegistererWithPrefix); label `bucket`.
        rules.append(_alert(
            "ThanosSidecarBucketOperationsFailed",
            f"sum by (job, instance) (rate(thanos_objstore_bucket_operation_failures_total{{{s.sidecar}}}[5m])) > 0",
            "5m", CRITICAL,
            "Thanos Sidecar cannot write to or read from the bucket.",
            "{{ $labels.instance }}: bucket operations fail. Blocks Prometheus cuts are not uploaded and are deleted with its local retention.",
        ))
        # Same mixin; thanos_sidecar_prometheus_up: cmd/thanos/sidecar.go v0.42.4;
        # prometheus_tsdb_data_replay_duration_seconds: prometheus/prometheus v3.14.0 tsdb/head.go.
        rules.append(_alert(
            "ThanosSidecarNoConnectionToStartedPrometheus",
            f"thanos_sidecar_prometheus_up{{{s.sidecar}}} == 0 and on ({s.sidecar_join}) prometheus_tsdb_data_replay_duration_seconds != 0",
            "5m", CRITICAL,
            "Thanos Sidecar cannot reach its Prometheus, which is running.",
            "{{ $labels.instance }} cannot reach Prometheus: it uploads no new blocks.",
        ))
        # Modelled on the mixin's ThanosReceiveNoUpload (mixin/alerts/receive.libsonnet v0.42.4):
        # thanos_shipper_uploads_total, pkg/shipper/shipper.go v0.42.4. Prometheus cuts a 2-hour
        # block every 2 hours; 4 hours without an upload means at least one was missed. A sidecar
        # younger than that may simply not have had a block to upload yet.
        rules.append(_alert(
            "ThanosSidecarNoUpload",
            f"sum by (job, instance) (increase(thanos_shipper_uploads_total{{{s.sidecar}}}[4h])) == 0 "
            f"and on (job, instance) (time() - process_start_time_seconds{{{s.sidecar}}}) > 4 * 3600",
            "15m", CRITICAL,
            "Thanos Sidecar has uploaded no block for 4 hours.",
            "{{ $labels.instance }} uploaded nothing in 4 hours although Prometheus cuts a block every 2 hours.",
        ))
    if s.receive:
        # thanos-io/thanos v0.42.4 mixin/alerts/receive.libsonnet (ThanosReceiveNoUpload,
        # ThanosReceiveHttpRequestErrorRateHigh); http_requests_total{code,handler,method}:
        # pkg/extprom/http/metrics.go, handler "receive": pkg/receive/handler.go.
        rules.append(_alert(
            "ThanosReceiveNoUpload",
            f"(up{{{s.receive}}} - 1) + on (job, instance) (sum by (job, instance) (increase(thanos_shipper_uploads_total{{{s.receive}}}[3h])) == 0)",
            "3h", CRITICAL,
            "Thanos Receive has not uploaded its latest data to the bucket.",
            "{{ $labels.instance }} uploaded no block in 3 hours.",
        ))
        rules.append(_alert(
            "ThanosReceiveBucketOperationsFailed",
            f"sum by (job, instance) (rate(thanos_objstore_bucket_operation_failures_total{{{s.receive}}}[5m])) > 0",
            "5m", CRITICAL,
            "Thanos Receive cannot use the bucket.",
            "{{ $labels.instance }}: bucket operations fail; its head blocks are not uploaded.",
        ))
        rules.append(_alert(
            "ThanosReceiveHttpRequestErrorRateHigh",
            f"(sum by (job) (rate(http_requests_total{{{s.receive}, handler=\"receive\", code=~\"5..\"}}[5m])) "
            f"/ sum by (job) (rate(http_requests_total{{{s.receive}, handler=\"receive\"}}[5m]))) * 100 > 5",
            "5m", CRITICAL,
            "Thanos Receive refuses remote-write requests.",
            "{{ $labels.job }} answers {{ $value | humanize }}% of remote writes with 5xx: senders retry, then drop samples.",
        ))
    if s.compact:
        # thanos-io/thanos v0.42.4 mixin/alerts/compact.libsonnet; thanos_compact_halted:
        # cmd/thanos/compact.go v0.42.4.
        rules.append(_alert(
            "ThanosCompactHalted", f"thanos_compact_halted{{{s.compact}}} == 1", "5m", WARNING,
            "Thanos Compact has halted.",
            "{{ $labels.instance }} halted on an error: no compaction, downsampling or retention until it is fixed.",
        ))
        rules.append(_alert(
            "ThanosCompactMultipleRunning", f"sum by (job) (up{{{s.compact}}}) > 1", "5m", WARNING,
            "More than one Thanos Compact runs against the bucket.",
            "{{ $value }} compactors of {{ $labels.job }} run at once; concurrent compactors create overlapping blocks.",
        ))
        # The mixin's expression, held back for the compactor's first 24 hours: a new stack has
        # nothing to compact yet (the gauge is 0, which the mixin would report at once).
        # process_start_time_seconds: client_golang's process collector, cmd/thanos/main.go v0.42.4.
        rules.append(_alert(
            "ThanosCompactHasNotRun",
            f"(time() - max by (job, instance) (max_over_time(thanos_objstore_bucket_last_successful_upload_time{{{s.compact}}}[24h]))) / 60 / 60 > 24 "
            f"and on (job, instance) (time() - process_start_time_seconds{{{s.compact}}}) > 86400",
            "0m", WARNING,
            "Thanos Compact has not uploaded anything for 24 hours.",
            "{{ $labels.instance }} has uploaded no compacted block in 24 hours.",
        ))
    return rules


def _tsdb_rules(s: Scope) -> list[dict[str, Any]]:
    """Prometheus' own TSDB and WAL, and Thanos Receive's (the same TSDB code)."""
    rules = []
    targets = [sel for sel in (s.prometheus, s.receive) if sel]
    if not targets:
        return rules

    def union(metric: str, window: str) -> str:
        return " or ".join(f"increase({metric}{{{sel}}}[{window}])" for sel in targets)

    # prometheus/prometheus v3.14.0 documentation/prometheus-mixin/alerts.libsonnet
    # (PrometheusTSDBCompactionsFailing); prometheus_tsdb_compactions_failed_total: tsdb/db.go.
    rules.append(_alert(
        "PrometheusTSDBCompactionsFailing", f"({union('prometheus_tsdb_compactions_failed_total', '3h')}) > 0", "4h", WARNING,
        "Prometheus cannot compact its head into blocks.",
        "{{ $labels.instance }}: {{ $value | humanize }} compaction failures in 3 hours; no new block means nothing to upload.",
    ))
    # prometheus_tsdb_wal_writes_failed_total: prometheus/prometheus v3.14.0 tsdb/wlog/wlog.go
    # (writes_failed_total under the prefix prometheus_tsdb_wal_).
    rules.append(_alert(
        "PrometheusTSDBWALWritesFailing", f"({union('prometheus_tsdb_wal_writes_failed_total', '5m')}) > 0", "0m", CRITICAL,
        "Prometheus cannot write its WAL.",
        "{{ $labels.instance }}: WAL writes fail (disk full or I/O errors); samples are being lost.",
    ))
    if s.prometheus:
        # prometheus_tsdb_storage_blocks_bytes, prometheus_tsdb_retention_limit_bytes (0 when no
        # size limit is set): tsdb/db.go v3.14.0; prometheus_tsdb_wal_storage_size_bytes: tsdb/wlog/wlog.go.
        rules.append(_alert(
            "PrometheusStorageNearSizeLimit",
            f"(prometheus_tsdb_storage_blocks_bytes{{{s.prometheus}}} + on (job, instance) prometheus_tsdb_wal_storage_size_bytes{{{s.prometheus}}}) "
            f"/ on (job, instance) (prometheus_tsdb_retention_limit_bytes{{{s.prometheus}}} > 0) > 0.8",
            "15m", WARNING,
            "Prometheus' local storage is above 80% of its size limit.",
            "{{ $labels.instance }} will soon delete blocks by size, shortening the window in which a stalled upload can still be repaired.",
        ))
    return rules


def _loki_rules(s: Scope) -> list[dict[str, Any]]:
    if not s.loki:
        return []
    sel = s.loki
    return [
        # loki_ingester_chunks_flush_failures_total: grafana/loki v3.7.6 pkg/ingester/metrics.go;
        # it rose during the S3 outages measured on this stack, and the ingester retries.
        _alert(
            "LokiIngesterFlushFailures",
            f"sum by (job, instance) (increase(loki_ingester_chunks_flush_failures_total{{{sel}}}[5m])) > 0",
            "15m", CRITICAL,
            "Loki ingesters fail to flush chunks to the bucket.",
            "{{ $labels.instance }} has failed chunk flushes for 15 minutes; the data waits in memory and the WAL.",
        ),
        # loki_s3_request_duration_seconds{operation,status_code}: v3.7.6
        # pkg/storage/chunk/client/aws/s3_storage_client.go; the status code is "200" or "500"
        # (dskit instrument.ErrorCode, vendored at v3.7.6): a 403 is counted as 500. Writes only:
        # a healthy Loki shows a few failed S3.GetObject.
        _alert(
            "LokiStoreWritesFailing",
            f"sum by (job, instance) (rate(loki_s3_request_duration_seconds_count{{{sel}, operation=\"S3.PutObject\", status_code!~\"2..\"}}[5m])) > 0",
            "10m", CRITICAL,
            "Loki's writes to the bucket fail.",
            "{{ $labels.instance }}: S3 PutObject has failed for 10 minutes (outage, credentials or bucket policy).",
        ),
        # grafana/loki v3.7.6 production/loki-mixin/alerts.libsonnet (LokiRequestErrors), over 5m
        # instead of 2m because scrapes are 30s apart here; loki_request_duration_seconds{method,
        # route,status_code,ws}: vendor/github.com/grafana/dskit/server/metrics.go at v3.7.6.
        _alert(
            "LokiRequestErrors",
            f"100 * sum by (job, route) (rate(loki_request_duration_seconds_count{{{sel}, status_code=~\"5..\"}}[5m])) "
            f"/ sum by (job, route) (rate(loki_request_duration_seconds_count{{{sel}}}[5m])) > 10",
            "15m", CRITICAL,
            "Loki answers more than 10% of requests on a route with errors.",
            "{{ $labels.job }} {{ $labels.route }}: {{ printf \"%.2f\" $value }}% errors; on a push route, clients' logs are refused.",
        ),
        # loki_ingester_wal_disk_usage_percent (0-1, sampled every 10s) and the throttle at
        # ingester.wal-disk-full-threshold (default 0.90): v3.7.6 pkg/ingester/wal.go, metrics.go.
        _alert(
            "LokiWALDiskFilling", f"max by (job, instance) (loki_ingester_wal_disk_usage_percent{{{sel}}}) > 0.8", "10m", WARNING,
            "The disk under Loki's WAL is more than 80% full.",
            "{{ $labels.instance }}: {{ $value | humanizePercentage }} used; at 90% Loki refuses writes.",
        ),
        _alert(
            "LokiWALDiskFull",
            f"max by (job, instance) (loki_ingester_wal_disk_usage_percent{{{sel}}}) >= 0.9 "
            f"or sum by (job, instance) (increase(loki_ingester_wal_disk_full_failures_total{{{sel}}}[5m])) > 0",
            "0m", CRITICAL,
            "Loki's WAL disk is full: Loki refuses writes.",
            "{{ $labels.instance }} throttles incoming writes because the WAL disk reached its threshold.",
        ),
    ]


def _canary_rules(s: Scope) -> list[dict[str, Any]]:
    if not s.canary:
        return []
    # loki_canary_*: grafana/loki v3.7.6 pkg/canary/comparator/comparator.go. The canary pushes a
    # line every second and reads it back (websocket, then queries for -max-wait 5m); spot checks
    # query kept entries again for -spot-check-max 4h (cmd/loki-canary/main.go), i.e. after they
    # have been flushed to the bucket.
    return [
        _alert(
            "LokiCanaryMissingEntries",
            f"sum by (job) (increase(loki_canary_missing_entries_total{{{s.canary}}}[15m])) > 0", "5m", CRITICAL,
            "Lines the Loki canary pushed cannot be read back.",
            "{{ $labels.job }}: {{ $value | humanize }} canary lines went missing in 15 minutes: ingest or queries are broken.",
        ),
        _alert(
            "LokiCanarySpotCheckMissing",
            f"sum by (job) (increase(loki_canary_spot_check_missing_entries_total{{{s.canary}}}[1h])) > 0", "0m", CRITICAL,
            "Older canary lines are gone from Loki.",
            "{{ $labels.job }}: lines found earlier are missing when queried again up to 4 hours later: stored data was lost.",
        ),
    ]


def _tempo_rules(s: Scope) -> list[dict[str, Any]]:
    if not s.tempo:
        return []
    sel = s.tempo
    # grafana/tempo v2.10.8 operations/tempo-mixin/alerts.libsonnet and config.libsonnet (thresholds:
    # flushes_per_hour_failed 2, compactions_per_hour_failed 2); grouped by job here instead of
    # cluster/namespace. Metric names: modules/ingester/flush.go, modules/ingester/instance.go,
    # tempodb/compactor.go, tempodb/backend/instrumentation/backend_transports.go at v2.10.8.
    return [
        _alert(
            "TempoIngesterFlushesUnhealthy",
            f"sum by (job) (increase(tempo_ingester_failed_flushes_total{{{sel}}}[1h])) > 2 "
            f"and sum by (job) (increase(tempo_ingester_failed_flushes_total{{{sel}}}[5m])) > 0",
            "5m", WARNING,
            "Tempo ingesters' flushes fail (and are retried).",
            "{{ $labels.job }}: more than 2 failed flushes in the past hour.",
        ),
        _alert(
            "TempoIngesterFlushesFailing",
            f"sum by (job) (increase(tempo_ingester_flush_failed_retries_total{{{sel}}}[1h])) > 2 "
            f"and sum by (job) (increase(tempo_ingester_flush_failed_retries_total{{{sel}}}[5m])) > 0",
            "5m", CRITICAL,
            "Tempo ingesters' flush retries fail.",
            "{{ $labels.job }}: more than 2 flush retries failed in the past hour; blocks stay on the ingesters' disks.",
        ),
        _alert(
            "TempoCompactionsFailing",
            f"sum by (job) (increase(tempodb_compaction_errors_total{{{sel}}}[1h])) > 2 "
            f"and sum by (job) (increase(tempodb_compaction_errors_total{{{sel}}}[5m])) > 0",
            "1h", CRITICAL,
            "Tempo compactions fail.",
            "{{ $labels.job }}: more than 2 compactions failed in the past hour; retention and block merging stall.",
        ),
        # The mixin's `increase(...[5m]) > 0 for 5m` cannot fire for the one-off errors of a single
        # start-up: the counter (per process) says at once whether this start lost WAL data.
        # process_start_time_seconds: client_golang's default registry, which Tempo registers on.
        _alert(
            "TempoIngesterReplayErrors",
            f"max by (job, instance, tenant) (tempo_ingester_replay_errors_total{{{sel}}}) > 0 "
            f"and on (job, instance) (time() - process_start_time_seconds{{{sel}}}) < 3600",
            "0m", CRITICAL,
            "A Tempo ingester could not replay WAL blocks at start-up.",
            "{{ $labels.instance }}, tenant {{ $labels.tenant }}: WAL replay errors at the last start; the traces in those blocks are lost.",
        ),
        # Not in the mixin: the signal measured on this stack during S3 outages and a removed
        # policy (status_code 403/500). operation is the HTTP method; PUT and POST are the writes.
        _alert(
            "TempoBackendWritesFailing",
            f"sum by (job, instance) (rate(tempodb_backend_request_duration_seconds_count{{{sel}, operation=~\"PUT|POST\", status_code!~\"2..\"}}[5m])) > 0",
            "10m", CRITICAL,
            "Tempo's writes to the bucket fail.",
            "{{ $labels.instance }}: backend writes have failed for 10 minutes (outage, credentials or bucket policy).",
        ),
    ]


# What shows that a tenant sent nothing, per tool: the distributors' received bytes per tenant
# (grafana/loki v3.7.6 pkg/loghttp/push/push.go; grafana/tempo v2.10.8 modules/distributor/distributor.go).
INGEST = {"loki": "loki_distributor_bytes_received_total", "tempo": "tempo_distributor_bytes_received_total"}


def _freshness_rules(s: Scope) -> list[dict[str, Any]]:
    if not s.freshness:
        return []
    sel = s.freshness
    # obs_bucket_* are this project's own metrics (probes/bucket_freshness.py).
    rules = [
        _alert(
            "BucketFreshnessProbeFailing", f"max by (tool, bucket) (obs_bucket_probe_success{{{sel}}}) == 0", "15m", CRITICAL,
            "The bucket-freshness probe cannot list a tool's bucket.",
            "{{ $labels.tool }} bucket {{ $labels.bucket }} could not be listed for 15 minutes with the tool's own credentials; the tool cannot either.",
        ),
    ]
    for tool, window in sorted(s.freshness_windows.items()):
        stale = (f"time() - obs_bucket_newest_upload_timestamp_seconds{{{sel}, tool=\"{tool}\"}} "
                 f"> obs_bucket_upload_max_age_seconds{{{sel}, tool=\"{tool}\"}}")
        tool_sel = getattr(s, tool, None)
        if tool in INGEST and tool_sel:
            # Silent for a tenant that sent nothing during the window. When the tool's metrics are
            # not scraped at all, nothing is subtracted: the alert then still fires.
            stale = f"({stale}) unless on (tenant) (sum by (tenant) (increase({INGEST[tool]}{{{tool_sel}}}[{window}s])) == 0)"
        rules.append(_alert(
            "BucketUploadsStale", stale, "15m", CRITICAL,
            "A tool has stopped putting new data into its bucket.",
            "{{ $labels.tool }} tenant {{ $labels.tenant }}: the newest upload in {{ $labels.bucket }} is older than the tool's flush interval allows.",
            {"tool": tool},
        ))
    return rules


def _ring_rules(s: Scope) -> list[dict[str, Any]]:
    """The Swarm ring store (etcd): Loki and Tempo refuse pushes when it cannot take writes.
    Metrics read at etcd-io/etcd v3.6.14: etcd_server_has_leader (server/etcdserver/metrics.go),
    etcd_mvcc_db_total_size_in_bytes (server/storage/mvcc/metrics.go),
    etcd_server_quota_backend_bytes (server/storage/metrics.go), etcd_debugging_server_alarms
    (server/etcdserver/apply/metrics.go: one series per raised alarm, alarm_type NOSPACE/CORRUPT)."""
    if not s.ring:
        return []
    sel = s.ring
    return [
        _alert(
            "RingStoreNoLeader", f"max by (job, instance) (etcd_server_has_leader{{{sel}}}) == 0", "1m", CRITICAL,
            "A ring-store member has no leader.",
            "{{ $labels.instance }} sees no etcd leader: with two of three members gone the rings take no heartbeats and Loki and Tempo refuse pushes within minutes.",
        ),
        _alert(
            "RingStoreNoSpace", f'max by (job, instance) (etcd_debugging_server_alarms{{{sel}, alarm_type="NOSPACE"}}) > 0', "0m", CRITICAL,
            "The ring store raised its NOSPACE alarm and takes no writes.",
            "{{ $labels.instance }}: etcd is read-only until it is defragmented and the alarm disarmed (README, Swarm); ring heartbeats fail meanwhile.",
        ),
        _alert(
            "RingStoreDatabaseFilling",
            f"max by (job, instance) (etcd_mvcc_db_total_size_in_bytes{{{sel}}} / etcd_server_quota_backend_bytes{{{sel}}}) > 0.8", "10m", WARNING,
            "A ring-store member's database is above 80% of its quota.",
            "{{ $labels.instance }}: at the quota etcd raises NOSPACE and refuses writes; check that compaction runs, then defragment (README, Swarm).",
        ),
    ]


WATCHDOG = "Watchdog"


def _watchdog_rules(s: Scope) -> list[dict[str, Any]]:
    """Always firing: a receiver outside the stack (a dead man's switch) pages when it stops
    arriving, i.e. when Prometheus, Alertmanager or the path between them is gone."""
    if not s.watchdog:
        return []
    return [_alert(
        WATCHDOG, "vector(1)", "0m", "none",
        "Always firing: proves that Prometheus evaluates rules and Alertmanager delivers.",
        "Route it to a dead man's switch (alerting.watchdogReceiver); when it stops arriving, alerting itself is down.",
    )]


def alertmanager_config(alerting: Any, secrets_dir: str) -> dict[str, Any]:
    """Alertmanager routing for `alerting` (components/core/config.py AlertingConfig), the same on every
    target. Each receiver reads its secret from `<secrets_dir>/<name>` (Alertmanager v0.34.0
    *_file fields, config.RECEIVER_SECRET_FIELD); nothing secret is in this config. The Watchdog
    goes only to the watchdog receiver (every 5 minutes, so its absence is noticed quickly), every
    other alert to each receiver whose severities include the alert's."""
    receivers: list[dict[str, Any]] = [{"name": "default"}]
    routes: list[dict[str, Any]] = [{
        "receiver": alerting.watchdog_receiver or "default",
        "matchers": [f'alertname="{WATCHDOG}"'],
        "group_wait": "0s", "group_interval": "1m", "repeat_interval": "5m",
    }]
    for r in alerting.receivers:
        secret = f"{secrets_dir}/{r.name}"
        if r.type == "webhook":
            receivers.append({"name": r.name, "webhook_configs": [{RECEIVER_SECRET_FIELD["webhook"]: secret, "send_resolved": True}]})
        elif r.type == "slack":
            slack: dict[str, Any] = {RECEIVER_SECRET_FIELD["slack"]: secret, "send_resolved": True}
            if r.channel:
                slack["channel"] = r.channel
            receivers.append({"name": r.name, "slack_configs": [slack]})
        elif r.type == "pagerduty":
            receivers.append({"name": r.name, "pagerduty_configs": [{RECEIVER_SECRET_FIELD["pagerduty"]: secret, "send_resolved": True}]})
        else:
            email: dict[str, Any] = {"to": r.to, "from": r.sender, "smarthost": r.smarthost, "send_resolved": True}
            if r.username:
                email.update(auth_username=r.username, **{RECEIVER_SECRET_FIELD["email"]: secret})
            receivers.append({"name": r.name, "email_configs": [email]})
        if r.name == alerting.watchdog_receiver:
            continue  # a dead man's switch gets the Watchdog only
        severities = "|".join(sorted(r.severities))
        routes.append({"receiver": r.name, "matchers": [f'severity=~"{severities}"'], "continue": True})
    return {
        "route": {"receiver": "default", "group_by": ["alertname", "job"], "group_wait": "30s", "group_interval": "5m",
                  "repeat_interval": "4h", "routes": routes},
        "receivers": receivers,
    }


def _object_store_rules(s: Scope) -> list[dict[str, Any]]:
    if not s.minio:
        return []
    # minio_cluster_capacity_usable_{free,total}_bytes: minio/minio RELEASE.2025-09-07T16-13-09Z
    # cmd/metrics-v2.go (cluster metrics, /minio/v2/metrics/cluster).
    return [_alert(
        "ObjectStoreDiskFilling",
        f"min by (job, instance) (minio_cluster_capacity_usable_free_bytes{{{s.minio}}} / minio_cluster_capacity_usable_total_bytes{{{s.minio}}}) < 0.1",
        "15m", WARNING,
        "The local MinIO has less than 10% of its disk free.",
        "{{ $labels.instance }}: when the disk is full every tool's uploads fail.",
    )]


def groups(s: Scope) -> list[dict[str, Any]]:
    """Rule groups for the components `s` selects."""
    out = [
        {"name": "obs-storage-scrape", "rules": _scrape_rules(s)},
        {"name": "obs-storage-thanos", "rules": _thanos_rules(s)},
        {"name": "obs-storage-tsdb", "rules": _tsdb_rules(s)},
        {"name": "obs-storage-loki", "rules": _loki_rules(s) + _canary_rules(s)},
        {"name": "obs-storage-tempo", "rules": _tempo_rules(s)},
        {"name": "obs-storage-freshness", "rules": _freshness_rules(s)},
        {"name": "obs-storage-object-store", "rules": _object_store_rules(s)},
        {"name": "obs-storage-ring-store", "rules": _ring_rules(s)},
        {"name": "obs-storage-watchdog", "rules": _watchdog_rules(s)},
    ]
    return [g for g in out if g["rules"]]


def rule_file(s: Scope) -> dict[str, Any]:
    """A Prometheus rule file (`rule_files` in prometheus.yml)."""
    return {"groups": groups(s)}
