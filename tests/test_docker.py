"""Local containers and Swarm services: pinned, health-checked, secrets only as files, in order."""

from __future__ import annotations

import json

import pytest
import yaml

from components import versions
from tests.conftest import tool_overrides
from tools import engine

PINNED_IMAGES = {versions.image(versions.DEFAULT_PINS, k) for k, p in versions.DEFAULT_PINS.items() if p.kind == "image"}
LOCAL_CONTAINERS = {"loki", "tempo", "prometheus", "thanos-sidecar", "thanos-store", "thanos-query", "thanos-compact", "grafana"}


def containers(result) -> dict[str, engine.Registration]:
    return {r.inputs["name"].removeprefix("obs-"): r for r in result.by_type("docker:index/container:Container")}


def services(result) -> dict[str, engine.Registration]:
    return {r.inputs["name"]: r for r in result.by_type("docker:index/service:Service")}


def uploaded(container: engine.Registration, path: str) -> str:
    (upload,) = [u for u in container.inputs["uploads"] if u["file"] == path]
    return upload["content"]


# ---------------------------------------------------------------- local
def test_local_runs_every_component(plan):
    assert set(containers(plan("local"))) == LOCAL_CONTAINERS | {"minio"}


def test_local_images_are_pinned(plan):
    images = {r.inputs["name"] for r in plan("local").by_type("docker:index/remoteImage:RemoteImage")}
    assert images == PINNED_IMAGES
    assert not any(i.endswith(":latest") or ":" not in i for i in images)


@pytest.mark.parametrize("name", sorted(LOCAL_CONTAINERS | {"minio"}))
def test_local_container_is_health_checked_and_loopback_only(plan, name):
    c = containers(plan("local"))[name]
    assert c.inputs["healthcheck"]["tests"][0] == "CMD", c.urn
    assert c.inputs["wait"] is True, f"{c.urn}: pulumi must wait for healthy"
    for port in c.inputs.get("ports", []):
        assert port["ip"] == "127.0.0.1", c.urn


def test_local_creation_order(plan):
    result = plan("local")
    by_name = {r.name: r for r in result.resources}
    minio_server = by_name["minio-server"].urn
    assert minio_server in by_name["minio-provider"].depends_on
    for tool in ("loki", "tempo", "thanos"):
        # The bucket and the user are created through the provider that waits for MinIO.
        assert by_name[f"{tool}-bucket"].provider.endswith("minio-provider")
        assert by_name[f"{tool}-identity-user"].provider.endswith("minio-provider")
    for name, tool in (("loki", "loki"), ("tempo", "tempo"), ("thanos-store", "thanos")):
        deps = set(containers(result)[name].depends_on)
        assert by_name[f"{tool}-bucket"].urn in deps and by_name[f"{tool}-identity-user"].urn in deps, name


def test_local_secrets_only_in_secret_files(plan):
    result = plan("local")
    for name, c in containers(result).items():
        for env in c.inputs.get("envs", []):
            key, _, value = env.partition("=")
            assert "SECRET" not in key.upper() or value.startswith("/run/secrets/"), f"{c.urn}: {env}"
            assert "PASSWORD" not in key.upper() or key.endswith("_FILE"), f"{c.urn}: {env}"
        for upload in c.inputs.get("uploads", []):
            if upload["file"].startswith("/run/secrets/"):
                assert upload["content"] == engine.SECRET and upload["permissions"] == "0400", c.urn
            else:
                assert "aws_secret_access_key" not in upload["content"] and "secret_key" not in upload["content"], c.urn


def test_each_tool_reads_its_own_minio_user_credentials(plan):
    c = containers(plan("local"))
    for name in ("loki", "tempo", "thanos-store", "thanos-compact", "thanos-sidecar"):
        assert "AWS_SHARED_CREDENTIALS_FILE=/run/secrets/s3-credentials" in c[name].inputs["envs"]
        assert uploaded(c[name], "/run/secrets/s3-credentials") == engine.SECRET


def test_local_rendered_configs_name_bucket_endpoint_and_path_style(plan):
    c = containers(plan("local"))
    loki = yaml.safe_load(uploaded(c["loki"], "/etc/loki/config.yaml"))
    s3 = loki["storage_config"]["aws"]
    assert (s3["bucketnames"], s3["endpoint"], s3["s3forcepathstyle"], s3["insecure"]) == ("loki", "minio:9000", True, True)
    assert loki["compactor"]["retention_enabled"] is True and loki["compactor"]["delete_request_store"] == "s3"
    assert loki["limits_config"]["retention_period"] == "168h"
    tempo = yaml.safe_load(uploaded(c["tempo"], "/etc/tempo/config.yaml"))
    t3 = tempo["storage"]["trace"]["s3"]
    assert (t3["bucket"], t3["endpoint"], t3["forcepathstyle"]) == ("tempo", "minio:9000", True)
    assert tempo["compactor"]["compaction"]["block_retention"] == "72h"
    objstore = yaml.safe_load(uploaded(c["thanos-store"], "/etc/thanos/objstore.yaml"))
    assert objstore["config"]["bucket"] == "thanos" and objstore["config"]["bucket_lookup_type"] == "path"
    compact = c["thanos-compact"].inputs["command"]
    assert "--retention.resolution-raw=7d" in compact and "--delete-delay=48h" in compact
    datasources = yaml.safe_load(uploaded(c["grafana"], "/etc/grafana/provisioning/datasources/obs-storage.yaml"))
    tempo_ds = next(d for d in datasources["datasources"] if d["type"] == "tempo")
    assert tempo_ds["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"


def test_local_prometheus_uploads_two_hour_blocks(plan):
    args = containers(plan("local"))["prometheus"].inputs["command"]
    assert "--storage.tsdb.min-block-duration=2h" in args and "--storage.tsdb.max-block-duration=2h" in args


def test_local_outputs(plan):
    urls = plan("local").outputs["urls"]
    assert {"grafana", "minioConsole", "lokiPush", "otlpGrpc", "otlpHttp", "thanosQuery"} <= set(urls)
    assert plan("local").outputs["grafanaAdminPassword"] == engine.SECRET


def test_local_receive_mode(plan_with):
    result = plan_with("local", tool_overrides("local", thanos={"mode": "receive", "receiveReplicationFactor": 1}))
    c = containers(result)
    assert "thanos-sidecar" not in c and "thanos-receive-0" in c
    prometheus = yaml.safe_load(uploaded(c["prometheus"], "/etc/prometheus/prometheus.yml"))
    assert prometheus["remote_write"][0]["url"] == "http://thanos-receive-0:19291/api/v1/receive"
    assert "--endpoint=thanos-receive-0:10901" in c["thanos-query"].inputs["command"]


# ---------------------------------------------------------------- swarm
SWARM_SERVICES = LOCAL_CONTAINERS


def test_swarm_runs_every_component(plan):
    assert set(services(plan("prod"))) == SWARM_SERVICES


@pytest.mark.parametrize("name", sorted(SWARM_SERVICES))
def test_swarm_service_is_production_shaped(plan, name):
    svc = services(plan("prod"))[name]
    spec = svc.inputs["taskSpec"]
    container = spec["containerSpec"]
    assert container["image"] in PINNED_IMAGES, svc.urn
    assert container["healthcheck"]["tests"][0] == "CMD", svc.urn
    assert svc.inputs["updateConfig"]["failureAction"] == "rollback", svc.urn
    assert spec["restartPolicy"]["condition"] == "any", svc.urn
    assert spec["resources"]["limits"]["memoryBytes"] > 0 and spec["resources"]["limits"]["nanoCpus"] > 0, svc.urn
    assert "node.labels.observability == true" in spec["placement"]["constraints"], svc.urn
    for key, value in container.get("env", {}).items():
        assert "SECRET" not in key.upper() or value.startswith("/run/secrets/"), f"{svc.urn}: {key}"
    assert json.dumps(svc.inputs.get("labels", [])).count("secret") == 0


def test_swarm_stateful_services_stop_first(plan):
    s = services(plan("prod"))
    for name in ("loki", "tempo", "thanos-compact", "prometheus"):
        assert s[name].inputs["updateConfig"]["order"] == "stop-first", name
    for name in ("thanos-query", "grafana"):
        assert s[name].inputs["updateConfig"]["order"] == "start-first", name


def test_swarm_services_reference_the_credentials_secret(plan):
    result = plan("prod")
    s = services(result)
    (creds,) = [r for r in result.by_type("docker:index/secret:Secret") if r.name == "s3-credentials"]
    # The user each image runs as must own its secret files (mode 0400).
    users = {"loki": "10001", "tempo": "10001", "thanos-sidecar": "65534", "thanos-store": "1001", "thanos-compact": "1001"}
    for name, uid in users.items():
        secrets = s[name].inputs["taskSpec"]["containerSpec"]["secrets"]
        assert [x["fileName"] for x in secrets] == ["/run/secrets/s3-credentials"], name
        assert secrets[0]["secretName"] == creds.inputs.get("name", "s3-credentials")
        assert (secrets[0]["fileUid"], secrets[0]["fileGid"], secrets[0]["fileMode"]) == (uid, uid, 0o400), name
    (grafana_secret,) = s["grafana"].inputs["taskSpec"]["containerSpec"]["secrets"]
    assert grafana_secret["fileUid"] == "472"
    assert "secrets" not in s["thanos-query"].inputs["taskSpec"]["containerSpec"]


def test_swarm_configs_carry_no_secret(plan):
    result = plan("prod")
    for config in result.by_type("docker:index/serviceConfig:ServiceConfig"):
        import base64

        text = base64.b64decode(config.inputs["data"]).decode()
        assert "aws_secret_access_key" not in text and "plan-placeholder" not in text, config.urn


def _service_config(result, service: str, path: str) -> dict:
    import base64

    s = services(result)[service]
    (ref,) = [c for c in s.inputs["taskSpec"]["containerSpec"]["configs"] if c["fileName"] == path]
    (config,) = [r for r in result.by_type("docker:index/serviceConfig:ServiceConfig") if ref["configName"] == r.inputs.get("name", r.name) or ref["configId"].startswith(r.name)]
    return yaml.safe_load(base64.b64decode(config.inputs["data"]).decode())


def test_swarm_memberlist_and_hetzner_addressing(plan):
    result = plan("prod")
    loki = _service_config(result, "loki", "/etc/loki/config.yaml")
    assert loki["memberlist"]["join_members"] == ["dns+tasks.loki:7946"]
    assert loki["memberlist"]["abort_if_cluster_join_fails"] is False
    assert loki["common"]["instance_interface_names"] == ["eth0"] and loki["common"]["replication_factor"] == 3
    s3 = loki["storage_config"]["aws"]
    assert (s3["bucketnames"], s3["endpoint"], s3["s3forcepathstyle"], s3["insecure"]) == ("acme-prod-loki", "fsn1.your-objectstorage.com", True, False)
    env = services(result)["loki"].inputs["taskSpec"]["containerSpec"]["env"]
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
    tempo = _service_config(result, "tempo", "/etc/tempo/config.yaml")
    assert tempo["memberlist"]["join_members"] == ["dns+tasks.tempo:7946"]
    assert tempo["storage"]["trace"]["s3"]["forcepathstyle"] is True
    assert services(result)["loki"].inputs["endpointSpec"]["mode"] == "dnsrr"


def test_swarm_memberlist_advertises_the_task_address(plan):
    result = plan("prod")
    for service, path, shell, binary in (("loki", "/etc/loki/config.yaml", "/busybox/sh", "/usr/bin/loki"), ("tempo", "/etc/tempo/config.yaml", "/bin/sh", "/tempo")):
        config = _service_config(result, service, path)
        assert config["memberlist"]["advertise_addr"] == "${MEMBERLIST_ADVERTISE_ADDR}", service
        container = services(result)[service].inputs["taskSpec"]["containerSpec"]
        assert container["commands"][:2] == [shell, "-c"] and container["commands"][-1] == binary, service
        assert 'MEMBERLIST_ADVERTISE_ADDR="$(hostname -i' in container["commands"][2]
        assert "-config.expand-env=true" in container["args"]


def test_local_single_instances_need_no_advertise_address(plan):
    c = containers(plan("local"))
    loki = yaml.safe_load(uploaded(c["loki"], "/etc/loki/config.yaml"))
    assert "memberlist" not in loki and loki["common"]["ring"]["kvstore"]["store"] == "inmemory"


def test_swarm_ring_members_keep_one_wal_per_task(plan):
    mounts = services(plan("prod"))["loki"].inputs["taskSpec"]["containerSpec"]["mounts"]
    assert mounts == [{"target": "/loki", "type": "volume", "source": "obs-loki-data-{{.Task.Slot}}"}]
