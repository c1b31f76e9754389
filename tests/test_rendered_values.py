"""The values the tools act on, not just the key names: each renderer's output for known inputs,
with the expected value derived from the input and what the upstream setting means (its unit,
its default, which port speaks which protocol)."""

from __future__ import annotations

import json

import pytest
import yaml

from components.core import config, loading, thanos_topology
from components.core.renderers import (CHECKSUM_ENV, Cluster, ObjectStore, dump, grafana, hours, loki, memberlist_block, object_store, prometheus,
                                       ring_kvstore, tempo, thanos)
from tests.conftest import aws_stack_config
from tools import engine

KEY = "arn:aws:kms:ap-northeast-2:123456789012:key/11111111-2222-3333-4444-555555555555"
AWS_STORE = ObjectStore(bucket="acme-loki", prefix="", region="ap-northeast-2", endpoint=None, path_style=False, tls=True, s3_compatible=False)
MINIO_STORE = ObjectStore(bucket="loki", prefix="", region="us-east-1", endpoint="minio:9000", path_style=True, tls=False, s3_compatible=True)
SWARM = Cluster(replicas=3, replication_factor=3, kvstore="etcd", etcd_endpoints=("ring-kv:2379",), interface="eth0")


cfg_of = aws_stack_config


# ---------------------------------------------------------------- shared helpers
def test_hours_is_whole_days_plus_hours_in_go_duration_syntax():
    assert hours(31) == "744h"
    assert hours(1, 2) == "26h"
    assert hours(0, 48) == "48h"


def test_rings_in_etcd_keep_one_prefix_per_tool():
    # dskit's kv.Config `prefix` defaults to "collectors/": Loki and Tempo in one etcd would share keys.
    assert ring_kvstore(SWARM, "loki") == {"store": "etcd", "prefix": "loki/collectors/", "etcd": {"endpoints": ["ring-kv:2379"]}}
    assert ring_kvstore(SWARM, "tempo")["prefix"] == "tempo/collectors/"
    assert ring_kvstore(Cluster(), "loki") == {"store": "inmemory"}


def test_checksums_only_when_required():
    # aws-sdk-go-v2: AWS_REQUEST_CHECKSUM_CALCULATION / AWS_RESPONSE_CHECKSUM_VALIDATION take
    # when_supported (the default) or when_required.
    assert CHECKSUM_ENV == {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}


def test_dump_keeps_the_order_a_reader_expects():
    assert dump({"b": 1, "a": {"c": [1, 2]}}) == "b: 1\na:\n  c:\n  - 1\n  - 2\n"


def test_memberlist_lets_a_new_fleets_first_member_start_alone():
    # EC2 fleets: the first instance of a new fleet finds no member to join; if joining had to
    # succeed it would exit, and so would every instance after it.
    fleet = Cluster(replicas=3, replication_factor=3, kvstore="memberlist", join_members=("dns+loki.obs.internal:7946",), address="${INSTANCE_IP}")
    assert memberlist_block(fleet) == {"join_members": ["dns+loki.obs.internal:7946"], "abort_if_cluster_join_fails": False,
                                       "advertise_addr": "${INSTANCE_IP}"}
    # Without an address of its own, dskit advertises the interface's: no advertise_addr key.
    assert memberlist_block(Cluster(join_members=("a:7946", "b:7946"))) == {"join_members": ["a:7946", "b:7946"], "abort_if_cluster_join_fails": False}


def committed_config(stack: str, **tools: dict) -> config.StackConfig:
    """The committed stack's config, with some tools' fields replaced."""
    raw, secret = engine.stack_config(stack)
    declared = json.loads(raw["obs-storage:tools"])
    for tool, fields in tools.items():
        declared[tool] = {**declared.get(tool, {}), **fields}
    raw["obs-storage:tools"] = json.dumps(declared)
    return loading.load(stack, raw, set(secret))


def test_object_store_on_aws_lets_the_sdk_find_the_endpoint_and_elsewhere_is_a_generic_s3_store():
    aws = object_store(committed_config("staging"), "loki")
    # No endpoint: the SDKs derive the regional one; and AWS takes the SDKs' default checksums.
    assert (aws.endpoint, aws.s3_compatible, aws.tls, aws.aws_sdk_auth) == (None, False, True, False)
    assert object_store(committed_config("staging"), "thanos", aws_sdk_auth=True).aws_sdk_auth is True
    prod = committed_config("prod")
    for tool in ("loki", "tempo", "thanos"):
        store = object_store(prod, tool)
        assert (store.endpoint, store.s3_compatible, store.bucket) == (prod.storage.endpoint, True, prod.tools.enabled()[tool].bucket)
    local = object_store(committed_config("local"), "tempo")
    assert (local.endpoint, local.s3_compatible, local.tls) == ("minio:9000", True, False)


def test_a_spokes_thanos_writes_to_the_hubs_bucket_and_its_other_tools_to_their_own():
    spoke = committed_config("local-spoke", loki={"enabled": True, "bucket": "spoke-loki"})
    spoke.tools.thanos.use_hub(thanos_topology.HubBucket(stack="organization/obs-storage/local", target="local", bucket="thanos", endpoint="minio:9000",
                                                         region="us-east-1", prefix="m/", path_style=True, tls=False, mode="sidecar", cluster_label="local"))
    thanos_store = object_store(spoke, "thanos", aws_sdk_auth=True)
    assert (thanos_store.bucket, thanos_store.prefix, thanos_store.aws_sdk_auth) == ("thanos", "m/", True)
    assert (object_store(spoke, "loki").bucket, object_store(spoke, "loki").prefix) == ("spoke-loki", "")


# ---------------------------------------------------------------- Loki
def test_loki_s3_block_addresses_the_store_as_configured():
    assert loki.s3_block(MINIO_STORE) == {"bucketnames": "loki", "region": "us-east-1", "s3forcepathstyle": True, "insecure": True, "endpoint": "minio:9000"}
    # On AWS the SDK derives the regional endpoint; TLS on.
    assert loki.s3_block(AWS_STORE) == {"bucketnames": "acme-loki", "region": "ap-northeast-2", "s3forcepathstyle": False, "insecure": False}
    kms = ObjectStore(**{**AWS_STORE.__dict__, "kms_key_arn": KEY})
    assert loki.s3_block(kms)["sse"] == {"type": "SSE-KMS", "kms_key_id": KEY}


def test_loki_retention_and_delete_delay_in_loki_durations():
    cfg = cfg_of(loki={"retentionDays": 10, "deleteDelayHours": 5})
    sections = loki.storage_sections(cfg, AWS_STORE)
    # limits_config.retention_period and compactor.retention_delete_delay are Go durations.
    assert sections["limits_config"] == {"retention_period": "240h"}
    compactor = sections["compactor"]
    assert compactor["retention_delete_delay"] == "5h"
    assert compactor["retention_enabled"] is True and compactor["delete_request_store"] == "s3"
    assert sections["storage_config"]["aws"] == loki.s3_block(AWS_STORE)
    (schema,) = sections["schema_config"]["configs"]
    assert schema == {"from": "2025-01-01", "store": "tsdb", "object_store": "s3", "schema": "v13", "index": {"prefix": "index_", "period": "24h"}}


def test_loki_local_paths_follow_the_data_directory():
    cfg = cfg_of()
    sections = loki.storage_sections(cfg, AWS_STORE, data_dir="/var/loki")
    assert sections["storage_config"]["tsdb_shipper"] == {"active_index_directory": "/var/loki/tsdb-index", "cache_location": "/var/loki/tsdb-cache"}
    assert sections["compactor"]["working_directory"] == "/var/loki/compactor"
    assert loki.storage_sections(cfg, AWS_STORE)["compactor"]["working_directory"] == "/loki/compactor"


def test_loki_single_binary_ports_rings_and_wal():
    cfg = cfg_of()
    rendered = loki.render(cfg, MINIO_STORE, SWARM)
    assert rendered["auth_enabled"] is False
    assert rendered["server"] == {"http_listen_port": 3100, "grpc_listen_port": 9095, "log_level": "info"}
    assert rendered["common"] == {
        "path_prefix": "/loki",
        "replication_factor": 3,
        "ring": {"kvstore": {"store": "etcd", "prefix": "loki/collectors/", "etcd": {"endpoints": ["ring-kv:2379"]}}},
        "instance_interface_names": ["eth0"],
    }
    assert rendered["ingester"] == {"wal": {"enabled": True, "dir": "/loki/wal", "flush_on_shutdown": True},
                                    "lifecycler": {"readiness_check_ring_health": False}}
    assert rendered["analytics"] == {"reporting_enabled": False}
    assert "runtime_config" not in rendered
    single = loki.render(cfg, MINIO_STORE, Cluster())
    assert single["common"]["replication_factor"] == 1 and "instance_interface_names" not in single["common"]
    # One instance keeps Loki's own ring readiness and has no gossip.
    assert single["ingester"] == {"wal": {"enabled": True, "dir": "/loki/wal", "flush_on_shutdown": True}}
    assert "memberlist" not in single and "memberlist" not in rendered


def test_loki_on_a_fleet_gossips_and_forgets_ingesters_lost_without_a_clean_stop():
    fleet = Cluster(replicas=3, replication_factor=3, kvstore="memberlist", join_members=("dns+loki.obs.internal:7946",), address="${INSTANCE_IP}")
    rendered = loki.render(cfg_of(), AWS_STORE, fleet)
    assert rendered["memberlist"] == memberlist_block(fleet)
    assert rendered["common"]["ring"] == {"kvstore": {"store": "memberlist"}} and rendered["common"]["instance_addr"] == "${INSTANCE_IP}"
    # A replaced instance never returns under its old name: without autoforget its dead entry
    # would keep every new ingester unready (pkg/ingester/ingester.go AutoForgetUnhealthy).
    assert rendered["ingester"]["autoforget_unhealthy"] is True
    assert "lifecycler" not in rendered["ingester"]


def test_loki_tenants_get_auth_and_their_own_retention():
    cfg = cfg_of(tenants=["team-a", "team-b"], loki={"retentionDays": 3})
    rendered = loki.render(cfg, MINIO_STORE, Cluster(), runtime_config_path="/etc/loki/overrides.yaml")
    assert rendered["auth_enabled"] is True and rendered["runtime_config"] == {"file": "/etc/loki/overrides.yaml"}
    assert loki.tenant_overrides(cfg) == {"overrides": {"team-a": {"retention_period": "72h"}, "team-b": {"retention_period": "72h"}}}


# ---------------------------------------------------------------- Tempo
def test_tempo_otlp_receivers_listen_on_the_otlp_ports():
    # OTLP's registered ports: 4317 speaks gRPC, 4318 HTTP (opentelemetry-proto, docs/specification.md).
    protocols = tempo.render(cfg_of(), MINIO_STORE, Cluster())["distributor"]["receivers"]["otlp"]["protocols"]
    assert protocols == {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}


def test_tempo_s3_block_needs_an_endpoint_even_on_aws():
    traces = ObjectStore(bucket="acme-tempo", prefix="traces/", region="ap-northeast-2", endpoint=None, path_style=False, tls=True, kms_key_arn=KEY, s3_compatible=False)
    assert tempo.s3_block(traces) == {
        "bucket": "acme-tempo", "region": "ap-northeast-2", "endpoint": "s3.ap-northeast-2.amazonaws.com",
        "forcepathstyle": False, "insecure": False, "prefix": "traces", "sse": {"type": "SSE-KMS", "kms_key_id": KEY},
    }
    minio = tempo.s3_block(ObjectStore(**{**MINIO_STORE.__dict__, "bucket": "tempo"}))
    assert (minio["endpoint"], minio["forcepathstyle"], minio["insecure"]) == ("minio:9000", True, True)
    assert "prefix" not in minio and "sse" not in minio


def test_tempo_retention_and_compacted_block_delay():
    cfg = cfg_of(tempo={"retentionDays": 3, "deleteDelayHours": 4})
    assert tempo.compaction_block(cfg) == {"block_retention": "72h", "compacted_block_retention": "4h"}
    storage = tempo.storage_block(MINIO_STORE)["trace"]
    assert storage["backend"] == "s3" and storage["wal"] == {"path": "/var/tempo/wal"} and storage["local"] == {"path": "/var/tempo/blocks"}


def test_tempo_single_instance_keeps_rings_local():
    rendered = tempo.render(cfg_of(), MINIO_STORE, Cluster())
    assert rendered["multitenancy_enabled"] is False and rendered["usage_report"] == {"reporting_enabled": False}
    assert rendered["server"] == {"http_listen_port": 3200, "grpc_listen_port": 9095}
    assert rendered["ingester"]["lifecycler"] == {"ring": {"replication_factor": 1, "kvstore": {"store": "inmemory"}}}
    assert rendered["ingester"]["flush_all_on_shutdown"] is True and rendered["ingester"]["max_block_duration"] == "30m"
    assert "ring" not in rendered["compactor"] and "ring" not in rendered["distributor"]


def test_two_tempo_replicas_already_shard_compaction():
    pair = Cluster(replicas=2, replication_factor=2, kvstore="etcd", etcd_endpoints=("ring-kv:2379",))
    rendered = tempo.render(cfg_of(), MINIO_STORE, pair)
    assert rendered["compactor"]["ring"]["kvstore"]["store"] == "etcd" and rendered["distributor"]["ring"]["kvstore"]["store"] == "etcd"


def test_tempo_replicas_share_rings_in_etcd_on_the_overlay_interface():
    rendered = tempo.render(cfg_of(tenants=["team-a"]), MINIO_STORE, SWARM)
    assert rendered["multitenancy_enabled"] is True
    etcd = {"store": "etcd", "prefix": "tempo/collectors/", "etcd": {"endpoints": ["ring-kv:2379"]}}
    assert rendered["ingester"]["lifecycler"] == {"ring": {"replication_factor": 3, "kvstore": etcd}, "interface_names": ["eth0"],
                                                  "readiness_check_ring_health": False}
    assert rendered["compactor"]["ring"] == {"kvstore": etcd, "instance_interface_names": ["eth0"]}
    assert rendered["distributor"]["ring"] == {"kvstore": etcd, "instance_interface_names": ["eth0"]}


def test_tempo_on_a_fleet_gossips_and_registers_the_instances_address_in_every_ring():
    fleet = Cluster(replicas=3, replication_factor=3, kvstore="memberlist", join_members=("dns+tempo.obs.internal:7946",), address="${INSTANCE_IP}")
    rendered = tempo.render(cfg_of(), AWS_STORE, fleet)
    assert rendered["memberlist"] == memberlist_block(fleet)
    member = {"store": "memberlist"}
    # Tempo 2.10's ingester has no autoforget: a replaced instance's entry must not hold the others unready.
    assert rendered["ingester"]["lifecycler"] == {"ring": {"replication_factor": 3, "kvstore": member}, "readiness_check_ring_health": False,
                                                  "address": "${INSTANCE_IP}"}
    assert rendered["compactor"]["ring"] == {"kvstore": member, "instance_addr": "${INSTANCE_IP}"}
    assert rendered["distributor"]["ring"] == {"kvstore": member, "instance_addr": "${INSTANCE_IP}"}
    # Replicated: blocks cut every 5 minutes (docs/hetzner-swarm.md, "Tempo after a node loss").
    assert rendered["ingester"]["max_block_duration"] == "5m"
    assert rendered["querier"] == {"frontend_worker": {"frontend_address": "127.0.0.1:9095"}}
    assert "memberlist" not in tempo.render(cfg_of(), MINIO_STORE, SWARM)


# ---------------------------------------------------------------- Thanos
@pytest.mark.parametrize("tls", [True, False])
def test_thanos_objstore_insecure_follows_tls(tls):
    store = ObjectStore(bucket="thanos", prefix="", region="us-east-1", endpoint="minio:9000", path_style=True, tls=tls, s3_compatible=True)
    assert thanos.objstore(store)["config"]["insecure"] is (not tls)


def test_thanos_objstore_addressing_auth_encryption_and_prefix():
    aws = ObjectStore(bucket="acme-thanos", prefix="metrics/", region="ap-northeast-2", endpoint=None, path_style=False, tls=True,
                      kms_key_arn=KEY, aws_sdk_auth=True, s3_compatible=False)
    assert thanos.objstore(aws) == {
        "type": "S3",
        "config": {
            "bucket": "acme-thanos", "region": "ap-northeast-2", "endpoint": "s3.ap-northeast-2.amazonaws.com", "insecure": False,
            "bucket_lookup_type": "virtual-hosted", "aws_sdk_auth": True, "sse_config": {"type": "SSE-KMS", "kms_key_id": KEY},
        },
        "prefix": "metrics",
    }
    minio = thanos.objstore(ObjectStore(bucket="thanos", prefix="", region="us-east-1", endpoint="minio:9000", path_style=True, tls=False, s3_compatible=True))
    assert minio == {"type": "S3", "config": {"bucket": "thanos", "region": "us-east-1", "endpoint": "minio:9000", "insecure": True, "bucket_lookup_type": "path"}}


def test_thanos_component_arguments():
    assert thanos.sidecar_args("http://localhost:9090", "/prometheus") == [
        "sidecar", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902", "--log.level=info",
        "--tsdb.path=/prometheus", "--prometheus.url=http://localhost:9090", "--objstore.config-file=/etc/thanos/objstore.yaml"]
    assert thanos.store_args("/cache") == [
        "store", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902", "--log.level=info", "--data-dir=/cache",
        "--objstore.config-file=/etc/thanos/objstore.yaml"]
    assert thanos.query_args(["a:10901", "b:10901"]) == [
        "query", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902", "--log.level=info",
        "--query.replica-label=replica", "--query.replica-label=receive_replica", "--endpoint=a:10901", "--endpoint=b:10901"]


def test_thanos_compactor_retention_per_resolution_and_deduplication():
    cfg = cfg_of(thanos={"retention": {"rawDays": 7, "fiveMinuteDays": 30, "oneHourDays": 0}, "deleteDelayHours": 12})
    assert thanos.compact_args(cfg, "/scratch") == [
        "compact", "--http-address=0.0.0.0:10902", "--log.level=info", "--data-dir=/scratch",
        "--objstore.config-file=/etc/thanos/objstore.yaml", "--wait",
        "--retention.resolution-raw=7d", "--retention.resolution-5m=30d", "--retention.resolution-1h=0d",
        "--delete-delay=12h", "--deduplication.replica-label=replica", "--deduplication.func=penalty"]
    receive = thanos.compact_args(cfg_of(mode="receive"))
    assert "--deduplication.replica-label=receive_replica" in receive and "--data-dir=/var/thanos/compact" in receive


def test_thanos_receive_arguments():
    cfg = cfg_of(mode="receive", thanos={"receiveReplicationFactor": 5})
    assert thanos.receive_args(cfg, "r-1", "r-1:10901", "/etc/thanos/hashrings.json", data_dir="/tmp/receive") == [
        "receive", "--grpc-address=0.0.0.0:10901", "--http-address=0.0.0.0:10902", "--log.level=info",
        "--tsdb.path=/tmp/receive", "--objstore.config-file=/etc/thanos/objstore.yaml", "--remote-write.address=0.0.0.0:19291",
        "--receive.replication-factor=5", "--receive.local-endpoint=r-1:10901", "--receive.hashrings-file=/etc/thanos/hashrings.json",
        '--label=receive_replica="r-1"', "--tsdb.retention=1d"]


# ---------------------------------------------------------------- Prometheus
def test_prometheus_labels_its_replica_and_scrapes_each_job():
    rendered = prometheus.render(cfg_of(), "staging", "prometheus-1", {"thanos": ["q:10902"], "prometheus": ["localhost:9090"]})
    assert rendered["global"] == {"scrape_interval": "30s", "evaluation_interval": "30s", "external_labels": {"cluster": "staging", "replica": "prometheus-1"}}
    assert rendered["scrape_configs"] == [
        {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
        {"job_name": "thanos", "static_configs": [{"targets": ["q:10902"]}]},
    ]
    assert "remote_write" not in rendered
    remote = prometheus.render(cfg_of(mode="receive"), "staging", "p-0", {}, "http://r:19291/api/v1/receive")
    assert remote["remote_write"] == [{"url": "http://r:19291/api/v1/receive", "queue_config": {"max_samples_per_send": 5000}}]


def test_replicated_prometheus_drops_its_replica_label_from_alerts_and_a_single_one_sends_them_as_they_are():
    base = prometheus.render(cfg_of(), "prod", "prometheus-1", {})
    sent = {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}
    # Two replicas add replica="prometheus" / "prometheus-1" to the same alert; Alertmanager
    # deduplicates only identical label sets, so the label must go (notifier/alert.go relabelAlerts).
    pair = prometheus.with_monitoring(base, [], ["/etc/prometheus/rules.yml"], ["alertmanager:9093"], replicated=True)
    assert pair["alerting"] == {"alert_relabel_configs": [{"action": "labeldrop", "regex": "replica"}], **sent}
    assert pair["rule_files"] == ["/etc/prometheus/rules.yml"] and pair["global"] == base["global"]
    single = prometheus.with_monitoring(base, [], [], ["alertmanager:9093"])
    assert single["alerting"] == sent


def test_two_tempo_replicas_cut_blocks_every_five_minutes_and_one_every_thirty():
    pair = Cluster(replicas=2, replication_factor=2, kvstore="etcd", etcd_endpoints=("ring-kv:2379",))
    assert tempo.render(cfg_of(), MINIO_STORE, pair)["ingester"]["max_block_duration"] == "5m"
    assert tempo.render(cfg_of(), MINIO_STORE, Cluster())["ingester"]["max_block_duration"] == "30m"


def test_prometheus_listens_on_its_default_port():
    # No --web.listen-address: Prometheus listens on :9090, where the sidecar, health check and
    # published port must find it.
    assert not any(f.startswith("--web.listen-address") for f in prometheus.flags(cfg_of()))
    assert prometheus.PORT == 9090


def test_prometheus_keeps_recent_data_and_cuts_two_hour_blocks_for_the_sidecar():
    base = ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--storage.tsdb.retention.time=6h", "--web.enable-lifecycle"]
    # The sidecar uploads only blocks Prometheus never compacts: min = max = 2h (Thanos sidecar docs).
    assert prometheus.flags(cfg_of()) == base + ["--storage.tsdb.min-block-duration=2h", "--storage.tsdb.max-block-duration=2h"]
    assert prometheus.flags(cfg_of(mode="receive")) == base


# ---------------------------------------------------------------- Grafana
URLS = {"thanos": "http://q:10902", "loki": "http://l:3100", "tempo": "http://t:3200"}


def test_grafana_single_tenant_datasources_link_traces_and_logs():
    datasources = {d["uid"]: d for d in grafana.render(cfg_of(), URLS)["datasources"]}
    assert set(datasources) == {"thanos", "loki", "tempo"}
    assert datasources["thanos"]["url"] == "http://q:10902" and datasources["thanos"]["isDefault"] is True
    assert datasources["thanos"]["jsonData"] == {"prometheusType": "Thanos", "timeInterval": "30s"}
    (derived,) = datasources["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == "tempo" and derived["url"] == "$${__value.raw}"
    assert "secureJsonData" not in datasources["loki"]
    links = datasources["tempo"]["jsonData"]
    # From a span to the Loki lines of its trace (the line carries traceID=...; no span id).
    assert links["tracesToLogsV2"] == {"datasourceUid": "loki", "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
                                       "filterByTraceID": True, "filterBySpanID": False, "tags": [{"key": "service.name", "value": "service_name"}]}
    # No service map: nothing produces the service-graph metrics it would query.
    assert "serviceMap" not in links
    assert datasources["loki"]["url"] == "http://l:3100" and datasources["tempo"]["url"] == "http://t:3200"


def test_grafana_tenant_datasources_send_their_own_org_id():
    rendered = grafana.render(cfg_of(tenants=["team-a", "team-b"]), URLS)
    by_uid = {d["uid"]: d for d in rendered["datasources"]}
    assert set(by_uid) == {"thanos", "loki-team-a", "tempo-team-a", "loki-team-b", "tempo-team-b"}
    loki_b = by_uid["loki-team-b"]
    assert loki_b["name"] == "Loki-team-b" and loki_b["secureJsonData"] == {"httpHeaderValue1": "team-b"}
    # The header name joins the Loki settings instead of replacing them.
    assert loki_b["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID" and loki_b["jsonData"]["maxLines"] == 1000
    assert loki_b["jsonData"]["derivedFields"][0]["datasourceUid"] == "tempo-team-b"
    assert by_uid["tempo-team-a"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki-team-a"


def test_grafana_provisioning_file_format():
    # Grafana's data source provisioning files are apiVersion 1 (provisioning docs).
    assert grafana.render(cfg_of(), URLS)["apiVersion"] == 1


def test_grafana_links_only_to_tools_that_are_deployed():
    cfg = cfg_of(tempo={"enabled": False})
    datasources = {d["uid"]: d for d in grafana.render(cfg, URLS)["datasources"]}
    assert set(datasources) == {"thanos", "loki"} and "derivedFields" not in datasources["loki"]["jsonData"]
    # A Thanos URL alone does not make a data source: this stack must run Thanos.
    assert {d["uid"] for d in grafana.render(cfg_of(thanos={"enabled": False}), URLS)["datasources"]} == {"loki", "tempo"}
    # Nor does Thanos without a Query to reach (a spoke passes no URL).
    assert {d["uid"] for d in grafana.render(cfg_of(), {"loki": URLS["loki"], "tempo": URLS["tempo"]})["datasources"]} == {"loki", "tempo"}
    cfg = cfg_of(loki={"enabled": False}, thanos={"enabled": False})
    (only,) = grafana.render(cfg, {"tempo": URLS["tempo"]})["datasources"]
    assert only["uid"] == "tempo" and only["jsonData"] == {}


def test_store_and_cluster_are_values_no_platform_can_change():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        AWS_STORE.tls = False
    with pytest.raises(dataclasses.FrozenInstanceError):
        SWARM.replicas = 1


def test_rendered_files_are_yaml_the_tools_can_read():
    cfg = cfg_of(tenants=["team-a"])
    for rendered in (loki.render(cfg, MINIO_STORE, SWARM), tempo.render(cfg, MINIO_STORE, SWARM), grafana.render(cfg, URLS)):
        assert yaml.safe_load(dump(rendered)) == rendered


def test_renderer_annotations_name_real_types():
    # Annotations are strings here (`from __future__ import annotations`); whatever evaluates them
    # (typing.get_type_hints, pydantic's validate_call, documentation tools) must find real types.
    import inspect
    import typing

    from components.core import renderers

    for module in (renderers, grafana, loki, prometheus, tempo, thanos):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__:
                typing.get_type_hints(function)
