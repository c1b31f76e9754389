"""Local containers and Swarm services: pinned, health-checked, secrets only as files, in order."""

from __future__ import annotations

import json

import pytest
import yaml

from components.core import versions
from components.core.renderers import freshness
from tests import documents
from tests.conftest import tool_overrides
from tools import engine



def documented_images() -> set[str]:
    """image:tag for every image row of the versions table in docs/versions.md (what the project documents)."""
    section = documents.read("docs/versions.md")
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ") and not line.startswith(("| artefact", "| chart "))]
    return {f"{name.strip()}:{version.strip()}" for name, version in rows}


PINNED_IMAGES = documented_images()
LOCAL_CONTAINERS = {"loki", "tempo", "prometheus", "thanos-sidecar", "thanos-store", "thanos-query", "thanos-compact", "grafana"}
# What watches them (components/containers/monitoring.py): Alertmanager and one bucket-freshness probe per tool.
LOCAL_CONTAINERS |= {"alertmanager", "bucket-freshness-loki", "bucket-freshness-tempo", "bucket-freshness-thanos"}
# The probe is project source shipped as a file: it names the credentials file's fields, holds no value.
PROBE_SCRIPT = freshness.script()


def containers(result, prefix: str = "obs-local-") -> dict[str, engine.Registration]:
    found = {r.inputs["name"]: r for r in result.by_type("docker:index/container:Container")}
    assert all(name.startswith(prefix) for name in found), sorted(found)
    return {name.removeprefix(prefix): r for name, r in found.items()}


def services(result, prefix: str = "obs-prod-") -> dict[str, engine.Registration]:
    found = {r.inputs["name"]: r for r in result.by_type("docker:index/service:Service")}
    assert all(name.startswith(prefix) for name in found), sorted(found)
    return {name.removeprefix(prefix): r for name, r in found.items()}


def uploaded(container: engine.Registration, path: str) -> str:
    (upload,) = [u for u in container.inputs["uploads"] if u["file"] == path]
    return upload["content"]


# ---------------------------------------------------------------- local
def test_local_runs_every_component(plan):
    assert set(containers(plan("local"))) == LOCAL_CONTAINERS | {"minio"}


def test_local_images_are_pinned(plan):
    images = {r.inputs["name"] for r in plan("local").by_type("docker:index/remoteImage:RemoteImage")}
    # Only the Swarm target runs the ring store.
    assert images == {i for i in PINNED_IMAGES if not i.startswith("quay.io/coreos/etcd:")}
    assert not any(i.endswith(":latest") or ":" not in i for i in images)


@pytest.mark.parametrize("name", sorted((LOCAL_CONTAINERS | {"minio"}) - {"tempo"}))
def test_local_container_is_health_checked_and_loopback_only(plan, name):
    c = containers(plan("local"))[name]
    assert c.inputs["healthcheck"]["tests"][0] == "CMD", c.urn
    assert c.inputs["wait"] is True, f"{c.urn}: pulumi must wait for healthy"
    for port in c.inputs.get("ports", []):
        assert port["ip"] == "127.0.0.1", c.urn


def _seconds(duration: str) -> int:
    assert duration.endswith("s"), duration
    return int(duration[:-1])


def test_pulumi_waits_the_documented_time_for_each_local_container(plan):
    # docs/local.md: MinIO checked every 5 s for two minutes, each tool every 10 s, 12 failures
    # after a 20 s start, for four minutes. Pulumi must wait at least as long as Docker takes to
    # call a container unhealthy, or `pulumi up` fails on a container that is still starting.
    c = containers(plan("local"))
    minio = c.pop("minio").inputs
    assert (_seconds(minio["healthcheck"]["interval"]), minio["healthcheck"]["retries"], minio["waitTimeout"]) == (5, 12, 120)
    for name, container in c.items():
        i = container.inputs
        if "healthcheck" not in i:
            continue
        check = i["healthcheck"]
        assert (_seconds(check["interval"]), check["retries"], _seconds(check["startPeriod"]), i["waitTimeout"]) == (10, 12, 20, 240), name
        assert i["waitTimeout"] >= _seconds(check["startPeriod"]) + check["retries"] * _seconds(check["interval"]), name
    ports = {(p["internal"], p["external"], p["ip"]) for p in minio["ports"]}
    # MinIO's defaults: the S3 API on 9000, the console on the port `--console-address` names.
    assert ports == {(9000, 9000, "127.0.0.1"), (9001, 9001, "127.0.0.1")} and minio["command"][-1] == ":9001"


def test_tempo_publishes_its_api_and_both_otlp_ports_on_loopback(plan):
    c = containers(plan("local"))["tempo"]
    published = {(p["internal"], p["external"], p["ip"]) for p in c.inputs["ports"]}
    assert published == {(3200, 3200, "127.0.0.1"), (4317, 4317, "127.0.0.1"), (4318, 4318, "127.0.0.1")}
    tempo = yaml.safe_load(uploaded(c, "/etc/tempo/config.yaml"))
    protocols = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    assert (protocols["grpc"]["endpoint"], protocols["http"]["endpoint"]) == ("0.0.0.0:4317", "0.0.0.0:4318")


def test_each_documented_local_url_is_a_port_its_container_publishes_on_loopback(plan):
    # docs/local.md lists what `pulumi stack output urls` shows; each address must be a port the
    # container behind it publishes on 127.0.0.1, and those containers publish nothing else.
    import re

    text = documents.read("docs/local.md")
    urls = re.findall(r"^\s+(\w+)\s*: \"(?:http://)?127\.0\.0\.1:(\d+)", text.split("urls                : {", 1)[1].split("}", 1)[0], re.M)
    behind = {"grafana": "grafana", "loki": "loki", "lokiPush": "loki", "minioApi": "minio", "minioConsole": "minio", "otlpGrpc": "tempo",
              "otlpHttp": "tempo", "prometheus": "prometheus", "tempo": "tempo", "thanosQuery": "thanos-query"}
    assert sorted(name for name, _ in urls) == sorted(behind)
    documented: dict[str, set[int]] = {}
    for name, port in urls:
        documented.setdefault(behind[name], set()).add(int(port))
    c = containers(plan("local"))
    for name, ports in documented.items():
        published = {(p["internal"], p["external"], p["ip"]) for p in c[name].inputs["ports"]}
        assert published == {(port, port, "127.0.0.1") for port in ports}, name


def test_tempo_has_no_health_check_to_wait_for(plan):
    # Tempo 2.x ships no shell, no wget and no self-check; `wait` without a health check is an
    # error in the Docker provider, so the container must not ask for it.
    c = containers(plan("local"))["tempo"]
    assert "healthcheck" not in c.inputs and "wait" not in c.inputs, c.urn
    assert all(p["ip"] == "127.0.0.1" for p in c.inputs["ports"])


def test_loki_checks_itself_without_a_shell(plan):
    assert containers(plan("local"))["loki"].inputs["healthcheck"]["tests"] == [
        "CMD", "/usr/bin/loki", "-health", "-health.url=http://127.0.0.1:3100/ready"]
    spec = services(plan("prod"))["loki"].inputs["taskSpec"]["containerSpec"]
    assert spec["healthcheck"]["tests"][:3] == ["CMD", "/usr/bin/loki", "-health"]
    assert "commands" not in spec, "the image's own entrypoint (/usr/bin/loki) runs Loki"


def test_local_creation_order(plan):
    result = plan("local")
    by_name = {r.name: r for r in result.resources}
    minio_server = by_name["minio-server"].urn
    assert by_name["minio-server"].inputs["name"] == "obs-local-minio"
    assert minio_server in by_name["minio-provider"].depends_on
    for tool in ("loki", "tempo", "thanos"):
        # The bucket and the user are created through the provider that waits for MinIO.
        assert by_name[f"{tool}-bucket"].provider.endswith("minio-provider")
        assert by_name[f"{tool}-identity-user"].provider.endswith("minio-provider")
    for name, tool in (("loki", "loki"), ("tempo", "tempo"), ("thanos-store", "thanos")):
        deps = set(containers(result)[name].depends_on)
        assert by_name[f"{tool}-bucket"].urn in deps and by_name[f"{tool}-identity-user"].urn in deps, name


def test_local_images_keep_their_resource_names(plan):
    # One image resource per repository, named after it: a new tag updates the resource (pulls the
    # new image) instead of replacing it under another URN.
    for image in plan("local").by_type("docker:index/remoteImage:RemoteImage"):
        repository = image.inputs["name"].rsplit(":", 1)[0].split("/")[-1]
        assert image.name == ("minio-image" if repository == "minio" else f"tools-image-{repository}"), image.urn


def test_local_grafana_starts_after_the_tools_it_shows(plan):
    result = plan("local")
    c = containers(result)
    for name in ("loki", "tempo", "thanos-query"):
        assert c[name].urn in c["grafana"].depends_on, name


def test_the_local_thanos_spoke_has_no_grafana(plan):
    spoke = plan("local-spoke")
    assert "grafanaAdminPassword" not in spoke.outputs and not [r.name for r in spoke.resources if "grafana" in r.name]


def test_both_compactors_name_the_bucket_they_compact(plan):
    # The policy pack allows one compactor per bucket and finds it by this label.
    label = {"label": "obs-storage.thanos-bucket", "value": "thanos"}
    assert containers(plan("local"))["thanos-compact"].inputs["labels"] == [label]
    compact = services(plan("prod"))["thanos-compact"].inputs["labels"]
    assert {"label": "obs-storage.thanos-bucket", "value": "acme-prod-thanos"} in compact
    assert {"label": "obs-storage.tool", "value": "thanos"} in compact
    assert "labels" not in containers(plan("local"))["thanos-store"].inputs


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
            elif upload["content"] != PROBE_SCRIPT:
                assert "aws_secret_access_key" not in upload["content"] and "secret_key" not in upload["content"], c.urn


def test_each_tool_reads_its_own_minio_user_credentials(plan):
    c = containers(plan("local"))
    for name in ("loki", "tempo", "thanos-store", "thanos-compact", "thanos-sidecar"):
        assert "AWS_SHARED_CREDENTIALS_FILE=/run/secrets/s3-credentials" in c[name].inputs["envs"]
        assert uploaded(c[name], "/run/secrets/s3-credentials") == engine.SECRET


def test_only_grafana_holds_its_admin_password(plan):
    # Each container gets the secret files it reads and no other: Alertmanager or a probe holding
    # Grafana's admin password could hand the whole UI to whoever reads that container's files.
    password = "/run/secrets/grafana-admin-password"
    holders = [name for name, c in containers(plan("local")).items() if any(u["file"] == password for u in c.inputs.get("uploads", []))]
    assert holders == ["grafana"]
    assert containers(plan("local"))["grafana"].inputs["envs"].count(f"GF_SECURITY_ADMIN_PASSWORD__FILE={password}") == 1


def test_each_local_probe_runs_the_script_and_config_shipped_beside_it(plan):
    # The python image's own command is an interactive `python3` (docker-library/python commit
    # 7914d06, 3.14/slim-trixie/Dockerfile: CMD ["python3"], no ENTRYPOINT), which exits at once
    # without a terminal: the probe runs only if the container names the interpreter, the script
    # and its config.
    python = versions.DEFAULT_PINS["python"].facts
    probes = {name: c for name, c in containers(plan("local")).items() if name.startswith("bucket-freshness-")}
    assert sorted(probes) == ["bucket-freshness-loki", "bucket-freshness-tempo", "bucket-freshness-thanos"]
    for name, c in probes.items():
        interpreter, script, flag, config = c.inputs["entrypoints"]
        files = {u["file"] for u in c.inputs["uploads"]}
        assert interpreter in python.executables and interpreter.endswith("/python3"), name
        assert flag == "--config" and {script, config} <= files and script.endswith(".py") and config.endswith(".json"), name
        assert uploaded(c, script) == PROBE_SCRIPT, name


def test_a_local_spoke_puts_only_its_sidecar_on_the_hubs_network(plan):
    # On the hub's network the short names (`alertmanager`, `thanos-sidecar`, `minio`) are the
    # hub's containers' aliases. A spoke container on both networks could reach the hub's
    # Alertmanager or scrape the hub's sidecar under the names its own config uses; only the
    # sidecar, which the hub's Query dials, joins the hub's network (tests/test_multicluster.py).
    hub_network = plan("local").outputs["thanosHub"]["dockerNetwork"]
    spoke = containers(plan("local-spoke"), "obs-local-spoke-")
    networks = {name: [n["name"] for n in c.inputs["networksAdvanced"]] for name, c in spoke.items()}
    assert networks == {"prometheus": ["obs-local-spoke"], "alertmanager": ["obs-local-spoke"],
                        "thanos-sidecar": ["obs-local-spoke", hub_network]}
    # The names the spoke's own Prometheus dials are aliases the hub also answers to.
    hub_aliases = {a for c in containers(plan("local")).values() for n in c.inputs["networksAdvanced"] for a in n.get("aliases", [])}
    assert {"alertmanager", "thanos-sidecar"} <= hub_aliases


def test_local_rendered_configs_name_bucket_endpoint_and_path_style(plan):
    c = containers(plan("local"))
    loki = yaml.safe_load(uploaded(c["loki"], "/etc/loki/config.yaml"))
    s3 = loki["storage_config"]["aws"]
    assert (s3["bucketnames"], s3["endpoint"], s3["s3forcepathstyle"], s3["insecure"]) == ("loki", "minio:9000", True, True)
    assert loki["compactor"]["retention_enabled"] is True and loki["compactor"]["delete_request_store"] == "s3"
    assert loki["ingester"]["wal"]["flush_on_shutdown"] is True
    assert loki["limits_config"]["retention_period"] == "168h"
    tempo = yaml.safe_load(uploaded(c["tempo"], "/etc/tempo/config.yaml"))
    t3 = tempo["storage"]["trace"]["s3"]
    assert (t3["bucket"], t3["endpoint"], t3["forcepathstyle"]) == ("tempo", "minio:9000", True)
    assert tempo["compactor"]["compaction"]["block_retention"] == "72h"
    assert tempo["ingester"]["flush_all_on_shutdown"] is True
    assert "ring" not in tempo["compactor"], "one local Tempo needs no compactor ring"
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
    # OTLP: 4317 speaks gRPC (no scheme), 4318 HTTP.
    assert (urls["otlpGrpc"], urls["otlpHttp"]) == ("127.0.0.1:4317", "http://127.0.0.1:4318")
    assert plan("local").outputs["grafanaAdminPassword"] == engine.SECRET


def test_local_receive_mode(plan_with):
    result = plan_with("local", tool_overrides("local", thanos={"mode": "receive", "receiveReplicationFactor": 1}))
    c = containers(result)
    assert "thanos-sidecar" not in c and "thanos-receive-0" in c
    # Acknowledged samples survive a restart: the TSDB/WAL is on a volume, not the container's /tmp.
    (volume,) = c["thanos-receive-0"].inputs["volumes"]
    assert volume["containerPath"] == "/tmp" and volume["volumeName"] == "obs-local-thanos-receive-0-data"
    assert "--tsdb.path=/tmp/receive" in c["thanos-receive-0"].inputs["command"]
    prometheus = yaml.safe_load(uploaded(c["prometheus"], "/etc/prometheus/prometheus.yml"))
    assert prometheus["remote_write"][0]["url"] == "http://thanos-receive-0:19291/api/v1/receive"
    assert "--endpoint=thanos-receive-0:10901" in c["thanos-query"].inputs["command"]


# ---------------------------------------------------------------- both platforms
def test_grafana_keeps_its_database_on_a_volume(plan):
    (volume,) = containers(plan("local"))["grafana"].inputs["volumes"]
    assert (volume["containerPath"], volume["volumeName"]) == ("/var/lib/grafana", "obs-local-grafana-data")
    (mount,) = services(plan("prod"))["grafana"].inputs["taskSpec"]["containerSpec"]["mounts"]
    assert (mount["target"], mount["source"]) == ("/var/lib/grafana", "obs-prod-grafana-data")


def test_every_docker_name_carries_the_stack_prefix(plan_with):
    for stack, prefix in (("local", "obs-local-"), ("prod", "obs-prod-")):
        result = plan_with(stack, {"obs-storage:namePrefix": "team-x"}) if stack == "local" else plan_with(stack)
        prefix = "team-x" if stack == "local" else prefix.rstrip("-")
        for typ in ("container:Container", "service:Service", "volume:Volume", "network:Network"):
            for r in result.by_type(f"docker:index/{typ}"):
                assert r.inputs["name"] == prefix or r.inputs["name"].startswith(prefix + "-"), r.urn
        for r in result.by_type("docker:index/service:Service"):
            for mount in r.inputs["taskSpec"]["containerSpec"].get("mounts", []):
                assert mount["source"].startswith(prefix + "-"), r.urn


# ---------------------------------------------------------------- swarm
# Swarm runs a second Prometheus + sidecar pair (tests/test_swarm_ha.py): alerting survives a node.
SWARM_SERVICES = LOCAL_CONTAINERS | {"ring-kv-1", "ring-kv-2", "ring-kv-3", "ring-defrag", "prometheus-1", "thanos-sidecar-1"}
# A one-shot task Swarm reruns once a day: no health check, updates that tolerate its exit
# (tests/test_swarm_ha.py test_ring_store_is_defragmented_every_day).
PERIODIC_SERVICES = {"ring-defrag"}


def test_swarm_runs_every_component(plan):
    assert set(services(plan("prod"))) == SWARM_SERVICES


@pytest.mark.parametrize("name", sorted(SWARM_SERVICES))
def test_swarm_service_is_production_shaped(plan, name):
    svc = services(plan("prod"))[name]
    spec = svc.inputs["taskSpec"]
    container = spec["containerSpec"]
    assert container["image"] in PINNED_IMAGES, svc.urn
    if name != "tempo" and name not in PERIODIC_SERVICES:
        assert container["healthcheck"]["tests"][0] == "CMD", svc.urn
    assert svc.inputs["updateConfig"]["failureAction"] == ("continue" if name in PERIODIC_SERVICES else "rollback"), svc.urn
    assert spec["restartPolicy"]["condition"] == "any", svc.urn
    assert spec["resources"]["limits"]["memoryBytes"] > 0 and spec["resources"]["limits"]["nanoCpus"] > 0, svc.urn
    assert "node.labels.observability == true" in spec["placement"]["constraints"], svc.urn
    for key, value in container.get("env", {}).items():
        assert "SECRET" not in key.upper() or value.startswith("/run/secrets/"), f"{svc.urn}: {key}"
    assert json.dumps(svc.inputs.get("labels", [])).count("secret") == 0


def test_swarm_services_wait_for_their_bucket_and_identity(plan):
    result = plan("prod")
    by_name = {r.name: r for r in result.resources}
    s = services(result)
    for name, tool in (("loki", "loki"), ("tempo", "tempo"), ("prometheus", "thanos"), ("thanos-sidecar", "thanos"),
                       ("prometheus-1", "thanos"), ("thanos-sidecar-1", "thanos"), ("thanos-store", "thanos"), ("thanos-compact", "thanos")):
        deps = set(s[name].depends_on)
        # depends_on a component reaches the resources inside it: the bucket itself is there.
        assert by_name[f"{tool}-bucket"].urn in deps, name
        assert by_name[f"{tool}-lifecycle"].urn in deps if f"{tool}-lifecycle" in by_name else True
    for name in ("loki", "tempo"):
        for member in ("ring-kv-1", "ring-kv-2", "ring-kv-3"):
            assert s[member].urn in s[name].depends_on, name


def test_swarm_stateful_services_stop_first(plan):
    s = services(plan("prod"))
    for name in ("loki", "tempo", "thanos-compact", "prometheus", "thanos-sidecar", "prometheus-1", "thanos-sidecar-1", "grafana",
                 "ring-kv-1", "ring-kv-2", "ring-kv-3"):
        assert s[name].inputs["updateConfig"]["order"] == "stop-first", name
    # Stateless services start their replacement first: no gap. Every service is one or the other,
    # and a rollback replaces tasks in the same order as the update.
    # ring-defrag is not stateful, but two defragmentations at once would only block both members.
    stateful = {"loki", "tempo", "thanos-compact", "prometheus", "thanos-sidecar", "prometheus-1", "thanos-sidecar-1", "grafana", "alertmanager",
                "ring-kv-1", "ring-kv-2", "ring-kv-3", "ring-defrag"}
    for name, svc in s.items():
        order = "stop-first" if name in stateful else "start-first"
        assert svc.inputs["updateConfig"]["order"] == svc.inputs["rollbackConfig"]["order"] == order, name


def test_swarm_ingesters_get_time_to_flush_on_stop(plan):
    s = services(plan("prod"))
    for name in ("loki", "tempo"):
        grace = s[name].inputs["taskSpec"]["containerSpec"]["stopGracePeriod"]
        assert grace.endswith("s") and int(grace[:-1]) >= 60, name
    loki = _service_config(plan("prod"), "loki", "/etc/loki/config.yaml")
    assert loki["ingester"]["wal"]["flush_on_shutdown"] is True
    tempo = _service_config(plan("prod"), "tempo", "/etc/tempo/config.yaml")
    assert tempo["ingester"]["flush_all_on_shutdown"] is True


def test_only_the_ingesters_stop_slower_than_dockers_default(plan):
    # Loki and Tempo flush what they hold in memory on a normal stop: 90 s before Docker kills
    # them (docs/hetzner-swarm.md, "Stopping"), locally on `docker stop` and `pulumi destroy` too.
    # Everything else keeps Docker's default of 10 s (`docker stop --time`, a service's
    # `--stop-grace-period`).
    ingesters = {"loki", "tempo"}
    for name, svc in services(plan("prod")).items():
        grace = svc.inputs["taskSpec"]["containerSpec"]["stopGracePeriod"]
        assert grace == ("90s" if name in ingesters else "10s"), name
    local = containers(plan("local"))
    for name in LOCAL_CONTAINERS:
        c, grace = local[name], 90 if name in ingesters else 10
        assert (c.inputs["stopTimeout"], c.inputs["destroyGraceSeconds"]) == (grace, grace), name


def test_prometheus_and_its_sidecar_share_one_node(plan):
    s = services(plan("prod"))
    constraint = "node.hostname == swarm-worker-1"
    for name in ("prometheus", "thanos-sidecar", "ring-kv-1"):
        assert constraint in s[name].inputs["taskSpec"]["placement"]["constraints"], name
    # Grafana and Alertmanager keep no state they could not rebuild: Swarm may move them off a lost node.
    for name in ("loki", "tempo", "thanos-store", "thanos-query", "grafana", "alertmanager", "ring-kv-2", "ring-kv-3"):
        assert constraint not in s[name].inputs["taskSpec"]["placement"]["constraints"], name
    mounts = {n: s[n].inputs["taskSpec"]["containerSpec"]["mounts"] for n in ("prometheus", "thanos-sidecar", "prometheus-1", "thanos-sidecar-1")}
    assert mounts["prometheus"] == mounts["thanos-sidecar"] == [{"target": "/prometheus", "type": "volume", "source": "obs-prod-prometheus-data"}]
    # The second pair: its own volume on its own node (tests/test_swarm_ha.py).
    assert mounts["prometheus-1"] == mounts["thanos-sidecar-1"] == [{"target": "/prometheus", "type": "volume", "source": "obs-prod-prometheus-1-data"}]
    for name in ("prometheus-1", "thanos-sidecar-1"):
        assert constraint not in s[name].inputs["taskSpec"]["placement"]["constraints"], name


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
    # Grafana runs as 472 and reads the admin password from the file GF_SECURITY_ADMIN_PASSWORD__FILE
    # names; nobody else in the task may read it.
    grafana_env = s["grafana"].inputs["taskSpec"]["containerSpec"]["env"]
    assert grafana_secret["fileName"] == grafana_env["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    assert (grafana_secret["fileUid"], grafana_secret["fileGid"], grafana_secret["fileMode"]) == ("472", "472", 0o400)
    (admin,) = [r for r in result.by_type("docker:index/secret:Secret") if r.name.endswith("grafana-admin-password")]
    assert admin.inputs["data"] == engine.SECRET
    assert "secrets" not in s["thanos-query"].inputs["taskSpec"]["containerSpec"]


def test_secret_files_belong_to_the_user_not_its_group():
    # Docker's user is `<uid>[:<gid>]` (`docker run --user`, a service's `user`): the secret files,
    # mode 0400, must belong to the uid that reads them. The sidecar and the probes run as
    # 65534:65534, where either half would do; a workload whose group differs must not get its
    # secrets owned by the group's number.
    from components.containers.workloads import Workload

    def uid(user: str) -> str:
        return Workload(name="x", tool="thanos", pin="thanos", image="i", args=[], health=None, user=user).uid

    assert (uid("1000:2000"), uid("1000")) == ("1000", "1000")


def test_each_health_check_asks_its_own_process_on_its_own_port(plan):
    # docs/operations.md, "Health checks": `wget -q -O /dev/null http://127.0.0.1:<port>/-/ready`
    # for Prometheus and Thanos, `/api/health` for Grafana, `etcdctl get --consistency=s
    # obs-storage-liveness` for a ring-store member. The paths: Prometheus' management API
    # (prometheus.io/docs/prometheus/3.14/management_api: GET /-/ready); Thanos registers /-/ready
    # on --http-address, default 0.0.0.0:10902 (thanos-io/thanos v0.42.4 pkg/server/http/http.go
    # registerProbes, pkg/extkingpin/flags.go); Grafana's Health API, GET /api/health (grafana.com
    # docs v13.0 http-api "other"), on its default http_port 3000. Prometheus listens on 9090 by
    # default (--web.listen-address). A check on another port or path never passes: the task would
    # restart in a loop and every update roll back.
    def wget(url: str) -> list[str]:
        return ["-q", "-O", "/dev/null", url]

    expected = {"prometheus": wget("http://127.0.0.1:9090/-/ready"), "grafana": wget("http://127.0.0.1:3000/api/health")}
    expected |= {n: wget("http://127.0.0.1:10902/-/ready") for n in ("thanos-sidecar", "thanos-store", "thanos-compact", "thanos-query")}
    swarm = {name: svc.inputs["taskSpec"]["containerSpec"]["healthcheck"]["tests"] for name, svc in services(plan("prod")).items()
             if "healthcheck" in svc.inputs["taskSpec"]["containerSpec"]}
    local = {name: c.inputs["healthcheck"]["tests"] for name, c in containers(plan("local")).items() if "healthcheck" in c.inputs}
    for checks in (swarm, local):
        for name, args in expected.items():
            assert checks[name][0] == "CMD" and checks[name][1].endswith("/wget") and checks[name][2:] == args, name
    assert swarm["prometheus-1"] == swarm["prometheus"] and swarm["thanos-sidecar-1"] == swarm["thanos-sidecar"]
    for member in ("ring-kv-1", "ring-kv-2", "ring-kv-3"):
        assert swarm[member] == ["CMD", "/usr/local/bin/etcdctl", "get", "--consistency=s", "obs-storage-liveness"], member


def test_swarm_configs_carry_no_secret(plan):
    result = plan("prod")
    for config in result.by_type("docker:index/serviceConfig:ServiceConfig"):
        import base64

        text = base64.b64decode(config.inputs["data"]).decode()
        assert "plan-placeholder" not in text, config.urn
        assert text == PROBE_SCRIPT or "aws_secret_access_key" not in text, config.urn


def test_only_grafana_is_published_on_the_swarm_ingress(plan):
    # The stack's output promises Grafana on port 3000 of any node (Swarm's routing mesh); every
    # other service is reached on the overlays only.
    result = plan("prod")
    endpoints = {name: svc.inputs["endpointSpec"] for name, svc in services(result).items()}
    assert endpoints.pop("grafana") == {"mode": "vip", "ports": [{"targetPort": 3000, "publishedPort": 3000}]}
    assert endpoints.pop("loki") == endpoints.pop("tempo") == {"mode": "dnsrr"}
    assert all(spec["mode"] == "vip" and not spec.get("ports") for spec in endpoints.values()), endpoints
    assert result.outputs["urls"]["grafana"] == "http://<any-swarm-node>:3000"


def test_swarm_outputs_grafanas_admin_password_as_a_secret(plan):
    # `tools.verify` logs in with it to check the datasources (without it, it skips that check).
    result = plan("prod")
    assert result.outputs["grafanaAdminPassword"] == engine.SECRET
    (password,) = [p for p in result.by_type("random:index/randomPassword:RandomPassword") if p.name.endswith("grafana-admin-password")]
    assert password.inputs["special"] is False


def test_a_swarm_thanos_spoke_has_no_grafana_and_no_password_for_it(tmp_path, monkeypatch):
    # Its data is seen in the hub's Grafana.
    from tests.test_multicluster import swarm_project

    swarm_project(tmp_path, monkeypatch)
    spoke = engine.run("edge")
    assert "grafana" not in services(spoke, "obs-edge-") and "grafanaAdminPassword" not in spoke.outputs
    assert not [r for r in spoke.resources if "grafana" in r.name], "a password or secret for a Grafana that does not run"


def test_swarm_configs_are_named_after_their_content(plan):
    # Swarm configs are immutable: a changed file must become a config of another name, which the
    # service then switches to (a rolling update), and an unchanged one must keep its name.
    import base64
    import hashlib

    result = plan("prod")
    by_id = {r.name: r for r in result.by_type("docker:index/serviceConfig:ServiceConfig")}
    seen = 0
    for name, svc in services(result).items():
        for ref in svc.inputs["taskSpec"]["containerSpec"].get("configs", []):
            (config,) = [c for c in by_id.values() if ref["configId"].startswith(c.name)]
            digest = hashlib.sha256(base64.b64decode(config.inputs["data"])).hexdigest()[:10]
            stem = ref["fileName"].split("/")[-1].split(".")[0]
            assert config.name == f"tools-{name}-{stem}-{digest}", config.urn
            assert ref["fileMode"] == 0o444, config.urn
            seen += 1
    assert seen == len(by_id) > 0


def _service_file(result, service: str, path: str) -> str:
    import base64

    s = services(result)[service]
    (ref,) = [c for c in s.inputs["taskSpec"]["containerSpec"]["configs"] if c["fileName"] == path]
    (config,) = [r for r in result.by_type("docker:index/serviceConfig:ServiceConfig") if ref["configId"].startswith(r.name)]
    return base64.b64decode(config.inputs["data"]).decode()


def _service_config(result, service: str, path: str) -> dict:
    import base64

    s = services(result)[service]
    (ref,) = [c for c in s.inputs["taskSpec"]["containerSpec"]["configs"] if c["fileName"] == path]
    (config,) = [r for r in result.by_type("docker:index/serviceConfig:ServiceConfig") if ref["configName"] == r.inputs.get("name", r.name) or ref["configId"].startswith(r.name)]
    return yaml.safe_load(base64.b64decode(config.inputs["data"]).decode())


def test_swarm_rings_live_in_etcd_with_one_prefix_per_tool(plan):
    result = plan("prod")
    loki = _service_config(result, "loki", "/etc/loki/config.yaml")
    tempo = _service_config(result, "tempo", "/etc/tempo/config.yaml")
    loki_kv = loki["common"]["ring"]["kvstore"]
    members = ["ring-kv-1:2379", "ring-kv-2:2379", "ring-kv-3:2379"]
    assert loki_kv == {"store": "etcd", "prefix": "loki/collectors/", "etcd": {"endpoints": members}}
    for ring in (tempo["ingester"]["lifecycler"]["ring"], tempo["compactor"]["ring"], tempo["distributor"]["ring"]):
        assert ring["kvstore"] == {"store": "etcd", "prefix": "tempo/collectors/", "etcd": {"endpoints": members}}
    assert "memberlist" not in loki and "memberlist" not in tempo
    # Ring members register the overlay address, not docker_gwbridge's.
    assert loki["common"]["instance_interface_names"] == ["eth0"] and loki["common"]["replication_factor"] == 3
    assert tempo["ingester"]["lifecycler"]["interface_names"] == ["eth0"]
    assert tempo["compactor"]["ring"]["instance_interface_names"] == ["eth0"]
    ring_kv = services(result)["ring-kv-2"].inputs["taskSpec"]
    kv = ring_kv["containerSpec"]
    assert "--advertise-client-urls=http://ring-kv-2:2379" in kv["args"] and kv["commands"] == ["/usr/local/bin/etcd"]
    # Measured with real replicas: an etcd restarted empty leaves ring clients on a stale view for
    # as long as the old one had run, and without compaction it fills its quota in days.
    assert "--data-dir=/var/lib/etcd/default.etcd" in kv["args"]
    assert kv["mounts"] == [{"target": "/var/lib/etcd", "type": "volume", "source": "obs-prod-ring-kv-2-data"}]
    assert "node.hostname == swarm-worker-2" in ring_kv["placement"]["constraints"]
    assert {"--auto-compaction-mode=periodic", "--auto-compaction-retention=5m"} <= set(kv["args"])


def test_swarm_tempo_replicas_form_one_ring(plan):
    # `-target=all` would force Tempo's ingester ring into memory with replication factor 1
    # (cmd/tempo/main.go at v2.10.8), leaving three unreplicated islands.
    spec = services(plan("prod"))["tempo"].inputs["taskSpec"]["containerSpec"]
    assert "-target=scalable-single-binary" in spec["args"]
    tempo = _service_config(plan("prod"), "tempo", "/etc/tempo/config.yaml")
    assert tempo["ingester"]["lifecycler"]["ring"]["replication_factor"] == 3
    assert tempo["querier"]["frontend_worker"]["frontend_address"] == "127.0.0.1:9095"
    assert tempo["server"]["grpc_listen_port"] == 9095
    local = containers(plan("local"))["tempo"]
    assert "-target=all" in local.inputs["command"]


def test_swarm_tempo_compaction_is_sharded(plan):
    # Three `-target=all` replicas each run a compactor; only a ring in a real KV store shards them.
    tempo = _service_config(plan("prod"), "tempo", "/etc/tempo/config.yaml")
    assert tempo["compactor"]["ring"]["kvstore"]["store"] not in ("", "inmemory")
    assert services(plan("prod"))["tempo"].inputs["mode"]["replicated"]["replicas"] == 3


def test_swarm_hetzner_addressing(plan):
    result = plan("prod")
    loki = _service_config(result, "loki", "/etc/loki/config.yaml")
    s3 = loki["storage_config"]["aws"]
    assert (s3["bucketnames"], s3["endpoint"], s3["s3forcepathstyle"], s3["insecure"]) == ("acme-prod-loki", "fsn1.your-objectstorage.com", True, False)
    env = services(result)["loki"].inputs["taskSpec"]["containerSpec"]["env"]
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
    tempo = _service_config(result, "tempo", "/etc/tempo/config.yaml")
    assert tempo["storage"]["trace"]["s3"]["forcepathstyle"] is True
    assert services(result)["loki"].inputs["endpointSpec"]["mode"] == "dnsrr"
    network = {n["aliases"][0] for n in services(result)["loki"].inputs["taskSpec"]["networksAdvanceds"]}
    assert network == {"loki"}, "shippers and Grafana reach Loki by its short alias"


def test_local_single_instances_keep_rings_in_memory(plan):
    c = containers(plan("local"))
    loki = yaml.safe_load(uploaded(c["loki"], "/etc/loki/config.yaml"))
    assert "memberlist" not in loki and loki["common"]["ring"]["kvstore"]["store"] == "inmemory"
    assert "ring-kv" not in c


def test_swarm_ring_members_keep_one_wal_per_task(plan):
    s = services(plan("prod"))
    assert s["loki"].inputs["taskSpec"]["containerSpec"]["mounts"] == [{"target": "/loki", "type": "volume", "source": "obs-prod-loki-data-{{.Task.Slot}}"}]
    (tempo,) = s["tempo"].inputs["taskSpec"]["containerSpec"]["mounts"]
    assert tempo["source"] == "obs-prod-tempo-data-{{.Task.Slot}}"


@pytest.mark.parametrize("replicas, own_volumes", [(1, False), (2, True), (3, True)])
def test_only_several_ingester_replicas_ask_for_a_volume_each(replicas, own_volumes):
    # Tasks of one service on one node would share its named volume, hence one WAL directory:
    # each of several replicas needs its own (Swarm suffixes the task slot, test above). A single
    # replica keeps the plain name its volume has always had.
    from components.containers import workloads
    from components.core import loading

    raw, secret = engine.stack_config("local")
    cfg = loading.load("local", raw, set(secret))
    layout = workloads.Layout(replicas, None, "x", domain="obs-x.internal", ring_store="memberlist")
    built = {w.name: w for w in workloads.build(cfg, layout)}
    assert [(built[name].replicas, built[name].per_replica_volumes) for name in ("loki", "tempo")] == [(replicas, own_volumes)] * 2


def test_a_layout_that_names_no_nodes_declares_one_of_each_with_prometheus_and_sidecar_node_local():
    # The local engine's layout (components/docker/local.py) says only how many ring replicas: it
    # runs one container per workload, and monitoring scrapes a workload of several replicas through
    # DNS (tasks.<name>) instead of its container name. With no node for the Prometheus pair, the
    # pair's shared TSDB volume must still keep both on one node: both say their state is node-local
    # (Swarm pins such state to hetzner.stateNode).
    from components.containers import workloads
    from components.core import loading
    from components.core.renderers import prometheus

    raw, secret = engine.stack_config("local")
    built = workloads.build(loading.load("local", raw, set(secret)), workloads.Layout(1, None, "x"))
    assert {w.name: w.replicas for w in built} == {w.name: 1 for w in built}
    tsdb = {w.name: w.node_local_state for w in built if prometheus.TSDB_PATH in w.volumes.values()}
    assert tsdb == {"prometheus": True, "thanos-sidecar": True}


@pytest.mark.parametrize("stack, overrides", [("local", None), ("prod", None),
                                               ("prod", tool_overrides("prod", thanos={"mode": "receive", "receiveReplicationFactor": 3}))])
def test_every_path_a_flag_names_is_there_for_the_workload(stack, overrides):
    # A config file a flag names but the workload does not ship, or a data directory its user
    # cannot write, stops the process at start: the task restarts in a loop. Writable: under a
    # volume mounted for it, or under a directory the pinned image lets its own user write
    # (components/core/versions.py ImageFacts.writable, read at the pinned tags; Thanos: only /tmp).
    import re

    from components.containers import workloads
    from components.core import loading
    from components.docker.swarm import swarm_layout

    raw, secret = engine.stack_config(stack, overrides)
    cfg = loading.load(stack, raw, set(secret))
    layout = workloads.Layout(1, None, "x") if stack == "local" else swarm_layout("x", tuple(cfg.hetzner.nodes), cfg.hetzner.state_node)
    checked = 0
    for w in workloads.build(cfg, layout):
        facts = versions.DEFAULT_PINS[w.pin].facts
        writable = list(w.volumes.values()) + (list(facts.writable) if w.user is None else [])
        for arg in w.args:
            found = re.match(r"-{1,2}[\w.-]*?(config\.file|config-file|hashrings-file|data-dir|tsdb\.path|storage\.path)=(.+)", arg)
            if not found:
                continue
            kind, path = found.groups()
            if kind.endswith("file"):
                assert path in {f.path for f in w.files}, f"{w.name}: {arg}"
            else:
                assert any(path == d or path.startswith(d.rstrip("/") + "/") for d in writable), f"{w.name}: {arg} ({writable})"
            checked += 1
    assert checked >= 10


def test_swarm_receive_replicas_keep_their_tsdb_on_volumes(plan_with):
    result = plan_with("prod", tool_overrides("prod", thanos={"mode": "receive", "receiveReplicationFactor": 3}))
    s = services(result)
    for i in range(3):
        (mount,) = s[f"thanos-receive-{i}"].inputs["taskSpec"]["containerSpec"]["mounts"]
        assert (mount["target"], mount["source"]) == ("/tmp", f"obs-prod-thanos-receive-{i}-data")
        assert s[f"thanos-receive-{i}"].inputs["updateConfig"]["order"] == "stop-first"
        # Each receiver uploads its blocks with the stack's key pair.
        secrets = s[f"thanos-receive-{i}"].inputs["taskSpec"]["containerSpec"]["secrets"]
        assert [x["fileName"] for x in secrets] == ["/run/secrets/s3-credentials"]
    # One hashring of all three receivers (Thanos docs/components/receive.md: a JSON list of
    # hashrings, each with its endpoints' gRPC addresses); each receiver names itself in it, and
    # Query reads every receiver and the store gateway, no sidecar.
    receivers = [f"thanos-receive-{i}:10901" for i in range(3)]
    for i in range(3):
        hashrings = json.loads(_service_file(result, f"thanos-receive-{i}", "/etc/thanos/hashrings.json"))
        assert hashrings == [{"hashring": "default", "endpoints": receivers}]
        assert f"--receive.local-endpoint={receivers[i]}" in s[f"thanos-receive-{i}"].inputs["taskSpec"]["containerSpec"]["args"]
    endpoints = [a.split("=", 1)[1] for a in s["thanos-query"].inputs["taskSpec"]["containerSpec"]["args"] if a.startswith("--endpoint=")]
    assert sorted(endpoints) == sorted(["thanos-store:10901", *receivers]) and "thanos-sidecar" not in s
    prometheus = yaml.safe_load(_service_file(result, "prometheus", "/etc/prometheus/prometheus.yml"))
    assert [w["url"] for w in prometheus["remote_write"]] == ["http://thanos-receive-0:19291/api/v1/receive"]


def test_a_thanos_spoke_that_runs_loki_shows_only_loki_in_its_grafana(plan_with):
    # The spoke's metrics are in the hub's Thanos and shown by the hub's Grafana; its own Loki is
    # nowhere else.
    tools = {"loki": {"enabled": True, "bucket": "spoke-loki", "retentionDays": 7}, "tempo": {"enabled": False},
             "thanos": {"role": "spoke", "hub": "organization/obs-storage/local"}}
    c = containers(plan_with("local-spoke", {"obs-storage:tools": tools}), "obs-local-spoke-")
    datasources = yaml.safe_load(uploaded(c["grafana"], "/etc/grafana/provisioning/datasources/obs-storage.yaml"))["datasources"]
    assert [(d["type"], d["url"]) for d in datasources] == [("loki", "http://loki:3100")]
    assert "thanos-query" not in c and "loki" in c


def test_multi_tenant_loki_ships_the_runtime_file_its_config_names(plan, plan_with):
    # Loki reads per-tenant limits from runtime_config.file and does not start without that file.
    tenants = {"obs-storage:tenants": ["team-a", "team-b"]}
    local = containers(plan_with("local", tenants))["loki"]
    prod = plan_with("prod", tenants)
    for stack, config, runtime in (("local", uploaded(local, "/etc/loki/config.yaml"), uploaded(local, "/etc/loki/runtime.yaml")),
                                   ("prod", _service_file(prod, "loki", "/etc/loki/config.yaml"), _service_file(prod, "loki", "/etc/loki/runtime.yaml"))):
        days = yaml.safe_load(open(f"Pulumi.{stack}.yaml"))["config"]["obs-storage:tools"]["loki"]["retentionDays"]
        assert yaml.safe_load(config)["runtime_config"] == {"file": "/etc/loki/runtime.yaml"}, stack
        assert yaml.safe_load(runtime) == {"overrides": {t: {"retention_period": f"{24 * days}h"} for t in ("team-a", "team-b")}}, stack
    # A single tenant has no overrides and no file.
    assert [u["file"] for u in containers(plan("local"))["loki"].inputs["uploads"]] == ["/etc/loki/config.yaml", "/run/secrets/s3-credentials"]


def test_in_sidecar_mode_query_reads_the_sidecar_and_prometheus_writes_nowhere(plan):
    # The sidecar serves recent data and uploads blocks: no Receive, no remote write.
    s = services(plan("prod"))
    args = s["thanos-query"].inputs["taskSpec"]["containerSpec"]["args"]
    assert [a for a in args if a.startswith("--endpoint=")] == ["--endpoint=thanos-store:10901", "--endpoint=thanos-sidecar:10901",
                                                                         "--endpoint=thanos-sidecar-1:10901"]
    assert "--prometheus.url=http://prometheus:9090" in s["thanos-sidecar"].inputs["taskSpec"]["containerSpec"]["args"]
    assert not any(name.startswith("thanos-receive") for name in s)
    assert "remote_write" not in yaml.safe_load(_service_file(plan("prod"), "prometheus", "/etc/prometheus/prometheus.yml"))


def test_grafana_reads_each_tool_by_its_short_name_and_default_port(plan):
    # Upstream's default HTTP ports: Loki 3100, Tempo 3200, Thanos Query 10902.
    expected = {"prometheus": "http://thanos-query:10902", "loki": "http://loki:3100", "tempo": "http://tempo:3200"}
    path = "/etc/grafana/provisioning/datasources/obs-storage.yaml"
    local = yaml.safe_load(uploaded(containers(plan("local"))["grafana"], path))["datasources"]
    prod = yaml.safe_load(_service_file(plan("prod"), "grafana", path))["datasources"]
    for datasources in (local, prod):
        assert {d["type"]: d["url"] for d in datasources} == expected


def test_local_minio_is_reached_over_plain_http_on_its_loopback_port_and_images_stay_after_down(plan):
    result = plan("local")
    minio_server = containers(result)["minio"]
    # The server runs `minio server /data` with no certificate, so it speaks plain HTTP: a provider
    # set to TLS could not create a single bucket. Its API port is published on loopback only.
    (provider,) = [p for p in result.by_type("pulumi:providers:minio")]
    # (Provider inputs reach the engine as strings.)
    assert provider.inputs["minioSsl"] == "false" and provider.inputs["minioServer"] == "127.0.0.1:9000"
    assert {"internal": 9000, "external": 9000, "ip": "127.0.0.1"} in minio_server.inputs["ports"]
    # A local spoke creates its user on the hub's MinIO, the same way.
    (spoke_provider,) = plan("local-spoke").by_type("pulumi:providers:minio")
    assert (spoke_provider.inputs["minioSsl"], spoke_provider.inputs["minioServer"]) == ("false", "127.0.0.1:9000")
    assert "--certs-dir" not in minio_server.inputs["command"]
    # docs/local.md: `make down` leaves the pulled images, so the next `make up` does not pull them.
    images = result.by_type("docker:index/remoteImage:RemoteImage")
    assert images and all(i.inputs["keepLocally"] is True for i in images)
