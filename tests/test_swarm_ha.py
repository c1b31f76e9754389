"""Prod (Swarm) survives the loss of any one node: what the runs with the real Loki, Tempo and etcd
binaries in network namespaces showed to be necessary (docs/hetzner-swarm.md, "Losing a node"),
checked on the offline plan; and alert routing from the stack config on every target."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from components.docker import swarm
from tests.conftest import _cached
from tests.test_alerts import promtool, run_promtool, without_annotations  # noqa: F401 (promtool: a fixture)
from tests.test_config import HETZNER_SECRETS, accepted, error_of, hetzner_config
from tests.test_docker import _service_config, services
from tools import engine

NODES = ["swarm-worker-1", "swarm-worker-2", "swarm-worker-3"]
MEMBERS = ["ring-kv-1", "ring-kv-2", "ring-kv-3"]


def _arg(args: list[str], flag: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"--{flag}=")]
    return value


# ---------------------------------------------------------------- the ring store
def test_ring_store_is_three_members_one_per_configured_node(plan):
    s = services(plan("prod"))
    assert "ring-kv" not in s
    tokens = set()
    for member, node in zip(MEMBERS, NODES):
        spec = s[member].inputs["taskSpec"]
        args = spec["containerSpec"]["args"]
        assert f"node.hostname == {node}" in spec["placement"]["constraints"], member
        assert _arg(args, "name") == member
        assert _arg(args, "initial-cluster") == ",".join(f"{m}=http://{m}:2380" for m in MEMBERS)
        assert _arg(args, "initial-advertise-peer-urls") == f"http://{member}:2380"
        assert _arg(args, "advertise-client-urls") == f"http://{member}:2379"
        assert _arg(args, "initial-cluster-state") == "new"
        # Each member listens, on every interface of its task (the overlay included), on the
        # ports its advertised URLs name; all bootstrap with one cluster token, from which etcd
        # computes every member's ID and the cluster's (etcd v3.6.14 server/etcdserver/api/
        # membership/member.go computeMemberID, cluster.go NewClusterFromURLsMap): members given
        # different tokens do not recognise each other as one cluster.
        assert (_arg(args, "listen-client-urls"), _arg(args, "listen-peer-urls")) == ("http://0.0.0.0:2379", "http://0.0.0.0:2380")
        tokens.add(_arg(args, "initial-cluster-token"))
        # Each member keeps its own identity and revision on a volume of its own node.
        assert spec["containerSpec"]["mounts"] == [{"target": "/var/lib/etcd", "type": "volume", "source": f"obs-prod-{member}-data"}]
    assert len(tokens) == 1


def test_ring_clients_know_every_member(plan):
    result = plan("prod")
    loki = _service_config(result, "loki", "/etc/loki/config.yaml")
    tempo = _service_config(result, "tempo", "/etc/tempo/config.yaml")
    expected = [f"{m}:2379" for m in MEMBERS]
    assert loki["common"]["ring"]["kvstore"]["etcd"]["endpoints"] == expected
    assert tempo["ingester"]["lifecycler"]["ring"]["kvstore"]["etcd"]["endpoints"] == expected


def test_ring_members_update_one_after_another(plan):
    # Pulumi updates services without a dependency in parallel: three stop-first members at once
    # would drop the quorum. Each member waits for the previous one (and converge_config makes
    # "done" mean running again).
    s = services(plan("prod"))
    assert s["ring-kv-1"].urn in s["ring-kv-2"].depends_on and s["ring-kv-2"].urn in s["ring-kv-3"].depends_on
    assert not any(s[m].urn in s["ring-kv-1"].depends_on for m in MEMBERS[1:])


def test_the_ring_store_runs_only_for_a_tool_with_a_ring(plan_with):
    from tests.conftest import tool_overrides

    loki_only = services(plan_with("prod", tool_overrides("prod", tempo={"enabled": False})))
    assert set(MEMBERS) <= set(loki_only) and "tempo" not in loki_only
    # Thanos keeps no ring: three etcd members would be idle services holding volumes.
    thanos_only = services(plan_with("prod", tool_overrides("prod", loki={"enabled": False}, tempo={"enabled": False})))
    assert not any(name.startswith("ring-kv") for name in thanos_only) and "thanos-query" in thanos_only


def test_ring_nodes_are_three_distinct_hostnames():
    for nodes in (["a", "b"], ["a", "b", "b"], ["a", "b", "c", "d"]):
        err = error_of(hetzner_config(nodes=nodes), HETZNER_SECRETS, "prod")
        assert err.key == "hetzner.nodes" and "three distinct" in err.problem, str(err)
    err = error_of(hetzner_config(nodes=["a", "node.labels.x == 1", "c"]), HETZNER_SECRETS, "prod")
    assert err.key == "hetzner.nodes[1]" and "docker node ls" in err.fix
    assert accepted(hetzner_config(nodes=["a", "b", "c"]), HETZNER_SECRETS, "prod").hetzner.nodes == ["a", "b", "c"]


def test_ring_nodes_are_required_on_hetzner():
    raw = hetzner_config()
    data = json.loads(raw["obs-storage:hetzner"])
    del data["nodes"]
    raw["obs-storage:hetzner"] = json.dumps(data)
    err = error_of(raw, HETZNER_SECRETS, "prod")
    assert err.key == "hetzner.nodes" and "required" in err.problem


# ---------------------------------------------------------------- restarts with a dead member
@pytest.mark.parametrize("tool, path", [("loki", "/etc/loki/config.yaml"), ("tempo", "/etc/tempo/config.yaml")])
def test_a_restarting_replica_does_not_wait_for_a_dead_ring_member(plan, tool, path):
    # Measured: with dskit's default a replica restarted while another's node is gone answers 503
    # ("past heartbeat timeout") for as long as that node stays away.
    rendered = _service_config(plan("prod"), tool, path)
    assert rendered["ingester"]["lifecycler"]["readiness_check_ring_health"] is False


def test_a_single_replica_keeps_dskit_readiness(plan):
    local = plan("local")
    loki = yaml.safe_load(_uploaded(local, "loki", "/etc/loki/config.yaml"))
    assert "lifecycler" not in loki["ingester"]


def _uploaded(result, container: str, path: str) -> str:
    (c,) = [r for r in result.by_type("docker:index/container:Container") if r.inputs["name"] == f"obs-local-{container}"]
    (upload,) = [u for u in c.inputs["uploads"] if u["file"] == path]
    return upload["content"]


# ---------------------------------------------------------------- Tempo's single-copy window
def test_replicated_tempo_cuts_its_blocks_every_five_minutes(plan):
    # Measured: about a third of the acknowledged traces reach two of the three ingesters only;
    # after a node loss the survivor's copy is found by a query only when that ingester is among
    # the first two to answer, until its block is in the bucket. A block cut every 5 minutes
    # instead of Tempo's 30 bounds that window.
    assert _service_config(plan("prod"), "tempo", "/etc/tempo/config.yaml")["ingester"]["max_block_duration"] == "5m"
    from components.ec2 import platform
    from tests.test_ec2 import ec2_raw, load

    fleet = {w.name: w for w in platform.declared_workloads(load(ec2_raw()), "obs-staging-ec2.internal")}
    assert yaml.safe_load(fleet["tempo"].files[0].content)["ingester"]["max_block_duration"] == "5m"
    # One replica holds every trace it acknowledged: Tempo's default.
    local = yaml.safe_load(_uploaded(plan("local"), "tempo", "/etc/tempo/config.yaml"))
    assert local["ingester"]["max_block_duration"] == "30m"


# ---------------------------------------------------------------- placement
def test_replicated_services_put_one_replica_per_node(plan):
    s = services(plan("prod"))
    for name in ("loki", "tempo", "thanos-query"):
        assert s[name].inputs["taskSpec"]["placement"]["maxReplicas"] == 1, name
    # A single-replica service has nothing to spread.
    assert "maxReplicas" not in s["thanos-compact"].inputs["taskSpec"]["placement"]


# ---------------------------------------------------------------- networks
def _networks(result) -> dict[str, dict]:
    return {r.inputs["name"]: r for r in result.by_type("docker:index/network:Network")}


def test_overlays_are_encrypted_and_sized_for_hetzners_mtu(plan):
    nets = _networks(plan("prod"))
    assert set(nets) == {"obs-prod", "obs-prod-internal"}
    for net in nets.values():
        assert net.inputs["driver"] == "overlay"
        assert net.inputs["options"] == {"encrypted": "true", "com.docker.network.driver.mtu": "1450"}
    # Only the shared network can be joined by other stacks' shippers.
    assert nets["obs-prod"].inputs["attachable"] is True and nets["obs-prod-internal"].inputs["attachable"] is False


def test_only_the_push_endpoints_are_on_the_shippers_network(plan):
    s = services(plan("prod"))
    on_shared = set()
    for name, svc in s.items():
        attached = svc.inputs["taskSpec"]["networksAdvanceds"]
        # The internal network comes first: it is eth0, the address Loki and Tempo register in the rings.
        assert attached[0]["name"].startswith("tools-internal-network"), name
        if any(a["name"].startswith("tools-network") for a in attached):
            on_shared.add(name)
    assert on_shared == {"loki", "tempo"}


# ---------------------------------------------------------------- pulumi up waits for Swarm
def test_every_service_waits_for_convergence(plan):
    s = services(plan("prod"))
    # The daily ring-store defragmentation runs for seconds a day: its task is never "running"
    # when the provider looks (test_ring_store_is_defragmented_every_day).
    assert {name for name, svc in s.items() if svc.inputs.get("convergeConfig") is None} == {"ring-defrag"}
    for name, svc in s.items():
        if name == "ring-defrag":
            continue
        converge = svc.inputs["convergeConfig"]
        assert converge["timeout"].endswith("s"), name
        # Long enough for a rolling update of every task (stop, start window, monitor, delay).
        spec = svc.inputs["taskSpec"]["containerSpec"]
        replicas = svc.inputs["mode"]["replicated"]["replicas"]
        start = int(spec["healthcheck"]["startPeriod"][:-1]) if "healthcheck" in spec else 60
        grace = int(spec["stopGracePeriod"][:-1])
        assert int(converge["timeout"][:-1]) >= replicas * (grace + start + 60 + 60 + 10), name


def test_converge_timeout_grows_with_replicas_and_windows():
    from components.containers.workloads import Workload

    one = Workload(name="x", tool="loki", pin="loki", image="i", args=[], health=None)
    three = Workload(name="x", tool="loki", pin="loki", image="i", args=[], health=None, replicas=3, stop_grace_seconds=90,
                     health_start_seconds=600)
    assert swarm.converge_timeout_seconds(one) == 10 + 60 + 60 + 60 + 10 + 60
    assert swarm.converge_timeout_seconds(three) == 3 * (90 + 600 + 60 + 60 + 10) + 60


# ---------------------------------------------------------------- health windows
def test_health_windows_cover_wal_replay_and_the_stores_initial_sync(plan):
    s = services(plan("prod"))

    def start(name: str) -> int:
        return int(s[name].inputs["taskSpec"]["containerSpec"]["healthcheck"]["startPeriod"][:-1])

    # docs/operations.md: Loki's WAL replay gets 10 minutes, Thanos store's initial sync 15,
    # every other check a minute.
    assert start("loki") == 10 * 60
    assert start("thanos-store") == 15 * 60
    assert start("prometheus") == start("thanos-query") == start("grafana") == 60


def test_a_loki_rolling_update_may_take_the_documented_42_minutes(plan):
    # docs/hetzner-swarm.md: 3 x (90 s stop grace + 600 s start window + six failed checks 10 s
    # apart + 60 s monitor + 10 s delay) + 60 s.
    loki = services(plan("prod"))["loki"].inputs
    spec = loki["taskSpec"]["containerSpec"]
    assert (spec["stopGracePeriod"], spec["healthcheck"]["interval"], spec["healthcheck"]["retries"]) == ("90s", "10s", 6)
    assert (loki["updateConfig"]["monitor"], loki["updateConfig"]["delay"], loki["updateConfig"]["parallelism"]) == ("60s", "10s", 1)
    assert (loki["rollbackConfig"]["monitor"], loki["rollbackConfig"]["parallelism"]) == ("60s", 1)
    assert loki["convergeConfig"]["timeout"] == f"{42 * 60}s"


# ---------------------------------------------------------------- etcd upkeep
def test_ring_store_has_a_quota_defragments_on_start_and_survives_its_alarm(plan):
    s = services(plan("prod"))
    for member in MEMBERS:
        container = s[member].inputs["taskSpec"]["containerSpec"]
        args = container["args"]
        assert int(_arg(args, "quota-backend-bytes")) == 256 * 1024**2
        # docs/hetzner-swarm.md: a member defragments on start when that frees 16 MB or more.
        assert int(_arg(args, "bootstrap-defrag-threshold-megabytes")) == 16
        # `etcdctl endpoint health` fails on a NOSPACE alarm and on a lost quorum (measured with
        # etcd v3.6.14): a restart cures neither, so the check is a local read.
        tests = container["healthcheck"]["tests"]
        assert tests[:2] == ["CMD", "/usr/local/bin/etcdctl"] and "health" not in tests[2:4]
        assert "--consistency=s" in tests


def test_ring_store_is_defragmented_every_day(plan):
    result = plan("prod")
    s = services(result)
    svc = s["ring-defrag"]
    spec = svc.inputs["taskSpec"]
    container = spec["containerSpec"]
    # The etcd image has no shell: etcdctl itself, against every member, one after another.
    assert container["image"] == s["ring-kv-1"].inputs["taskSpec"]["containerSpec"]["image"]
    assert container["commands"] == ["/usr/local/bin/etcdctl"]
    args = container["args"]
    assert args[-2:] == ["defrag", "--cluster"]
    assert _arg(args, "endpoints") == ",".join(f"http://{m}:2379" for m in MEMBERS)
    # Measured: a member of the rings' size (2 MB) defragments in 26-74 ms, one holding 100 MB in
    # 1.8-2.3 s; etcdctl's default limit per member is 5 s, the quota 256 MiB: at 2.3 s per 100 MB
    # a full member takes about 6 s. The limit is the one docs/hetzner-swarm.md gives operators.
    from tests import documents

    (documented,) = re.findall(r"`--command-timeout=(\d+)s`", documents.read("docs/hetzner-swarm.md"))
    assert _arg(args, "command-timeout") == f"{documented}s" and int(documented) >= 30 > 2.3 * 256 * 1024**2 / 100e6
    # Swarm starts the one-shot task again a day after it ends, whether it succeeded or not.
    assert spec["restartPolicy"] == {"condition": "any", "delay": "86400s"}
    assert svc.inputs["mode"] == {"replicated": {"replicas": 1}}
    # A task that ends within the monitor period fails an update: not for this one.
    assert svc.inputs["updateConfig"]["failureAction"] == "continue" and svc.inputs["rollbackConfig"]["failureAction"] == "continue"
    assert s["ring-kv-3"].urn in svc.depends_on
    # It holds nothing to scrape, and is not mistaken for a ring-store member.
    scrape = _service_config(result, "prometheus", "/etc/prometheus/prometheus.yml")
    assert not any("ring-defrag" in json.dumps(job) for job in scrape["scrape_configs"])
    # The long-running services keep restarting within seconds and rolling back a failed update.
    for name in ("ring-kv-1", "loki", "tempo"):
        assert s[name].inputs["taskSpec"]["restartPolicy"] == {"condition": "any", "delay": "5s", "window": "60s"}, name
        assert s[name].inputs["updateConfig"]["failureAction"] == "rollback", name


def test_no_ring_defragmentation_without_a_ring_store(plan):
    assert not any("defrag" in r.inputs.get("name", "") for r in plan("local").by_type("docker:index/container:Container"))


def test_ring_store_alerts_on_prod_only(plan):
    prod = _rule_names(plan("prod"), "prometheus", "/etc/prometheus/rules/obs-storage.yml")
    assert {"RingStoreNoLeader", "RingStoreNoSpace", "RingStoreDatabaseFilling", "Watchdog"} <= prod


def _rule_names(result, service: str, path: str) -> set[str]:
    rules = _service_config(result, service, path)
    return {r["alert"] for g in rules["groups"] for r in g["rules"]}


# ---------------------------------------------------------------- alert receivers
RECEIVERS = {
    "receivers": [
        {"name": "oncall", "type": "pagerduty", "severities": ["critical"]},
        {"name": "chat", "type": "slack", "channel": "#storage"},
        {"name": "hook", "type": "webhook"},
        {"name": "mail", "type": "email", "to": "ops@example.com", "sender": "alerts@example.com", "smarthost": "smtp.example.com:587",
         "username": "alerts"},
        {"name": "deadman", "type": "webhook"},
    ],
    "watchdogReceiver": "deadman",
}
SECRETS = {"oncall": "pd-routing-key-123", "chat": "https://hooks.slack.example/T0/B0/xyz", "hook": "https://hook.example/abc",
           "mail": "smtp-password-456", "deadman": "https://deadman.example/ping/789"}


def _with_receivers(stack: str) -> dict:
    # As `pulumi config set --path --secret 'alertReceiverSecrets.<name>'` stores them.
    return {"obs-storage:alerting": RECEIVERS, "obs-storage:alertReceiverSecrets": {k: {"secure": v} for k, v in SECRETS.items()}}


def test_alertmanager_routes_to_every_receiver_with_secrets_as_files(plan_with):
    result = plan_with("prod", _with_receivers("prod"))
    am = _service_config(result, "alertmanager", "/etc/alertmanager/alertmanager.yml")
    receivers = {r["name"]: r for r in am["receivers"]}
    d = "/run/secrets/alertmanager"
    assert receivers["oncall"]["pagerduty_configs"][0]["routing_key_file"] == f"{d}/oncall"
    assert receivers["chat"]["slack_configs"][0] == {"api_url_file": f"{d}/chat", "send_resolved": True, "channel": "#storage"}
    assert receivers["hook"]["webhook_configs"][0]["url_file"] == f"{d}/hook"
    assert receivers["mail"]["email_configs"][0]["auth_password_file"] == f"{d}/mail"
    routes = am["route"]["routes"]
    # The Watchdog goes to the dead man's switch only, every 5 minutes; nothing else goes there.
    assert routes[0]["matchers"] == ['alertname="Watchdog"'] and routes[0]["receiver"] == "deadman" and routes[0]["repeat_interval"] == "5m"
    assert "continue" not in routes[0]
    assert {r["receiver"]: r["matchers"] for r in routes[1:]} == {
        "oncall": ['severity=~"critical"'], "chat": ['severity=~"critical|warning"'], "hook": ['severity=~"critical|warning"'],
        "mail": ['severity=~"critical|warning"'],
    }
    # Each secret is a Swarm secret mounted for Alertmanager's user; none is in any config.
    spec = services(result)["alertmanager"].inputs["taskSpec"]["containerSpec"]
    mounted = {m["fileName"]: m for m in spec["secrets"]}
    assert set(mounted) == {f"{d}/{n}" for n in SECRETS}
    assert all(m["fileMode"] == 0o400 for m in mounted.values())
    secrets = {r.name: r for r in result.by_type("docker:index/secret:Secret") if "alert-receiver" in r.name}
    assert set(secrets) == {f"tools-alert-receiver-{n}" for n in SECRETS}


def test_no_receiver_secret_appears_in_plain_text_anywhere(plan_with):
    result = plan_with("prod", _with_receivers("prod"))
    for r in result.by_type("docker:index/secret:Secret"):
        if "alert-receiver" in r.name:
            assert r.inputs["data"] == engine.SECRET, r.name
    text = json.dumps([r.inputs for r in result.resources if r.type != "docker:index/secret:Secret"]) + json.dumps(result.outputs)
    assert "plan-placeholder-for-alertReceiverSecrets" not in text


def test_local_alertmanager_gets_the_same_routes_and_secret_files(plan_with):
    result = plan_with("local", _with_receivers("local"))
    (c,) = [r for r in result.by_type("docker:index/container:Container") if r.inputs["name"] == "obs-local-alertmanager"]
    uploads = {u["file"]: u for u in c.inputs["uploads"]}
    am = yaml.safe_load(uploads["/etc/alertmanager/alertmanager.yml"]["content"])
    assert am["route"]["routes"][0]["receiver"] == "deadman"
    for name in SECRETS:
        upload = uploads[f"/run/secrets/alertmanager/{name}"]
        assert upload["content"] == engine.SECRET and upload["permissions"] == "0400", name


def test_eks_alertmanager_gets_the_receivers_and_mounts_their_secret(plan_with):
    result = plan_with("staging", _with_receivers("staging"))
    (secret,) = [r for r in result.by_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == "obs-storage-alert-receivers"]
    assert secret.inputs["stringData"] == engine.SECRET or set(secret.inputs["stringData"]) == set(SECRETS)
    (chart,) = [r for r in result.by_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("name") == "kps"]
    am = chart.inputs["values"]["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == ["obs-storage-alert-receivers"]
    d = "/etc/alertmanager/secrets/obs-storage-alert-receivers"
    receivers = {r["name"]: r for r in am["config"]["receivers"]}
    assert receivers["oncall"]["pagerduty_configs"][0]["routing_key_file"] == f"{d}/oncall"
    assert am["config"]["route"]["routes"][0]["receiver"] == "deadman"
    # One Watchdog: this project's, not the chart's default rule as well.
    values = chart.inputs["values"]
    assert values["defaultRules"]["disabled"]["Watchdog"] is True
    rules = values["additionalPrometheusRulesMap"]["obs-storage"]["groups"]
    assert "Watchdog" in {r["alert"] for g in rules for r in g["rules"]}


def test_without_receivers_alerts_stay_in_alertmanager(plan):
    am = _service_config(plan("prod"), "alertmanager", "/etc/alertmanager/alertmanager.yml")
    assert am["receivers"] == [{"name": "default"}]
    assert am["route"]["routes"] == [{"receiver": "default", "matchers": ['alertname="Watchdog"'], "group_wait": "0s",
                                      "group_interval": "1m", "repeat_interval": "5m"}]
    assert "secrets" not in services(plan("prod"))["alertmanager"].inputs["taskSpec"]["containerSpec"]


# ---------------------------------------------------------------- receiver config errors
def _raw_with(alerting: dict, secrets: dict | None) -> tuple[dict, frozenset]:
    raw = hetzner_config()
    raw["obs-storage:alerting"] = json.dumps(alerting)
    secret = {"obs-storage:hetznerAccessKey", "obs-storage:hetznerSecretKey"}
    if secrets is not None:
        raw["obs-storage:alertReceiverSecrets"] = json.dumps(secrets)
        secret.add("obs-storage:alertReceiverSecrets")
    return raw, frozenset(secret)


def test_a_receiver_without_its_secret_is_refused_without_showing_secrets():
    raw, secret = _raw_with({"receivers": [{"name": "oncall", "type": "pagerduty"}, {"name": "hook", "type": "webhook"}]},
                            {"oncall": "pd-key-123"})
    err = error_of(raw, secret, "prod")
    assert err.key == "alertReceiverSecrets" and "'hook'" in err.problem and "alertReceiverSecrets.hook" in err.fix
    assert "pd-key-123" not in str(err)
    raw, secret = _raw_with({"receivers": [{"name": "oncall", "type": "pagerduty"}]}, {"oncall": "pd-key-123"})
    assert accepted(raw, secret, "prod").receiver_secrets() == {"oncall": "pd-key-123"}


def test_a_secret_for_no_receiver_is_refused():
    raw, secret = _raw_with({"receivers": [{"name": "mail", "type": "email", "to": "a@b.c", "sender": "d@b.c", "smarthost": "smtp:25"}]},
                            {"mail": "password"})
    err = error_of(raw, secret, "prod")
    assert err.key == "alertReceiverSecrets" and "'mail'" in err.problem and "password" not in str(err)


def test_receiver_secrets_in_plain_text_are_refused():
    raw, secret = _raw_with({"receivers": [{"name": "hook", "type": "webhook"}]}, {"hook": "https://hook.example/abc"})
    err = error_of(raw, secret - {"obs-storage:alertReceiverSecrets"}, "prod")
    assert err.key == "alertReceiverSecrets" and "--secret" in err.fix and "hook.example" not in str(err)


@pytest.mark.parametrize("receiver, key, problem", [
    ({"name": "m", "type": "email", "to": "a@b.c", "sender": "d@b.c"}, "alerting.receivers[0].smarthost", "required"),
    ({"name": "m", "type": "email", "to": "a@b.c", "sender": "d@b.c", "smarthost": "smtp.example.com"}, "alerting.receivers[0].smarthost", "host:port"),
    ({"name": "h", "type": "webhook", "channel": "#x"}, "alerting.receivers[0].channel", "does not apply"),
    ({"name": "Bad_Name", "type": "webhook"}, "alerting.receivers[0].name", "receiver name"),
    ({"name": "h", "type": "sms"}, "alerting.receivers[0].type", ""),
])
def test_bad_receivers_are_refused_with_their_key(receiver, key, problem):
    raw, secret = _raw_with({"receivers": [receiver]}, None)
    err = error_of(raw, secret, "prod")
    assert err.key == key and problem in err.problem, str(err)


def test_the_watchdog_receiver_must_be_a_receiver():
    raw, secret = _raw_with({"receivers": [{"name": "hook", "type": "webhook"}], "watchdogReceiver": "deadman"}, {"hook": "u"})
    err = error_of(raw, secret, "prod")
    assert err.key == "alerting.watchdogReceiver" and "'hook'" in err.fix


def test_ring_members_get_the_ring_stores_limits(plan):
    s = services(plan("prod"))
    for member in MEMBERS:
        assert s[member].inputs["taskSpec"]["resources"]["limits"]["memoryBytes"] == 512 * 1024**2, member
        assert s[member].inputs["updateConfig"]["order"] == "stop-first", member


def test_the_swarm_document_names_the_target_tempo_runs(plan):
    from tests import documents

    (target,) = [a.split("=", 1)[1] for a in services(plan("prod"))["tempo"].inputs["taskSpec"]["containerSpec"]["args"] if a.startswith("-target=")]
    swarm_doc = documents.read("docs/hetzner-swarm.md").split("## Swarm (target hetzner)", 1)[1]
    assert target == "scalable-single-binary" and f"`-target={target}`" in swarm_doc
    # `-target=all` appears only as what it would do, never as what runs.
    assert "three `-target=all` replicas" not in swarm_doc


def test_ec2_alertmanager_reads_the_receivers_secrets_from_secrets_manager(plan_with):
    import base64
    import gzip

    result = plan_with("staging-ec2", _with_receivers("staging-ec2"))
    (version,) = [r for r in result.by_type("aws:secretsmanager/secretVersion:SecretVersion") if r.name.endswith("alert-receivers")]
    assert version.inputs["secretString"] == engine.SECRET
    (template,) = [r for r in result.resources if r.type.startswith("aws:ec2/launchTemplate") and "monitoring" in r.name]
    user_data = gzip.decompress(base64.b64decode(template.inputs["userData"])).decode()
    for name in SECRETS:
        # The agent writes each key to tmpfs at boot; Compose mounts it where the config points.
        assert f"/run/obs-secrets/alert-receiver-{name}:/run/secrets/alertmanager/{name}:ro" in user_data, name
    assert "plan-placeholder-for-alertReceiverSecrets" not in user_data


# ---------------------------------------------------------------- Prometheus: an HA pair on two nodes
PAIRS = {"prometheus": ("thanos-sidecar", "obs-prod-prometheus-data", "prometheus-0"),
         "prometheus-1": ("thanos-sidecar-1", "obs-prod-prometheus-1-data", "prometheus-1")}


def _node(service) -> str:
    (node,) = [c.split("==")[1].strip() for c in service.inputs["taskSpec"]["placement"]["constraints"] if c.startswith("node.hostname")]
    return node


def _prometheus_config(result, service: str) -> dict:
    return _service_config(result, service, "/etc/prometheus/prometheus.yml")


def test_two_prometheus_pairs_run_on_two_nodes_each_with_its_own_volume_and_replica_label(plan):
    # Losing hetzner.stateNode used to stop rule evaluation altogether (one Prometheus, pinned there).
    result = plan("prod")
    s = services(result)
    nodes = {}
    for prom, (sidecar, volume, replica) in PAIRS.items():
        # Prometheus and the sidecar that reads its TSDB: one volume, one node.
        assert _node(s[prom]) == _node(s[sidecar]), prom
        mount = [{"target": "/prometheus", "type": "volume", "source": volume}]
        assert s[prom].inputs["taskSpec"]["containerSpec"]["mounts"] == s[sidecar].inputs["taskSpec"]["containerSpec"]["mounts"] == mount
        assert _prometheus_config(result, prom)["global"]["external_labels"] == {"cluster": "prod", "replica": replica}
        assert _arg(s[sidecar].inputs["taskSpec"]["containerSpec"]["args"], "prometheus.url") == f"http://{prom}:9090"
        # The second Prometheus is sized like the first (not the default limit of small services).
        assert s[prom].inputs["taskSpec"]["resources"]["limits"]["memoryBytes"] == 4 * 1024**3, prom
        nodes[prom] = _node(s[prom])
    # The first pair stays on hetzner.stateNode (its volume and data stay where they are); the
    # second takes the first other node of hetzner.nodes.
    assert nodes == {"prometheus": "swarm-worker-1", "prometheus-1": "swarm-worker-2"}


@pytest.mark.parametrize("state_node, nodes, expected", [
    ("swarm-worker-2", NODES, ("swarm-worker-2", "swarm-worker-1")),
    ("swarm-worker-3", NODES, ("swarm-worker-3", "swarm-worker-1")),
    # A state node outside hetzner.nodes: the second pair still lands on another node.
    ("edge-1", NODES, ("edge-1", "swarm-worker-1")),
])
def test_the_second_pair_never_shares_the_first_ones_node(plan_with, state_node, nodes, expected):
    assert swarm.prometheus_nodes(state_node, tuple(nodes)) == expected
    hetzner = {"location": "fsn1", "swarmHost": "ssh://deploy@swarm-manager.example.com", "placementConstraints": ["node.labels.observability == true"],
               "stateNode": state_node, "nodes": nodes}
    s = services(plan_with("prod", {"obs-storage:hetzner": hetzner}))
    assert (_node(s["prometheus"]), _node(s["prometheus-1"])) == expected
    assert (_node(s["thanos-sidecar"]), _node(s["thanos-sidecar-1"])) == expected


def test_query_reaches_both_sidecars_and_deduplicates_on_the_replica_label(plan):
    args = services(plan("prod"))["thanos-query"].inputs["taskSpec"]["containerSpec"]["args"]
    endpoints = [a.split("=", 1)[1] for a in args if a.startswith("--endpoint=")]
    assert endpoints == ["thanos-store:10901", "thanos-sidecar:10901", "thanos-sidecar-1:10901"]
    # thanos-io/thanos v0.42.4 cmd/thanos/query.go: --query.replica-label; penalty dedup is its default.
    assert "--query.replica-label=replica" in args


def test_the_compactor_merges_the_two_replicas_blocks(plan):
    args = services(plan("prod"))["thanos-compact"].inputs["taskSpec"]["containerSpec"]["args"]
    # thanos-io/thanos v0.42.4 cmd/thanos/compact.go: a replica label turns vertical compaction on;
    # penalty is the merger meant for HA Prometheus replicas (and needs a replica label).
    assert "--deduplication.replica-label=replica" in args and "--deduplication.func=penalty" in args
    assert not any(a.startswith("--compact.enable-vertical-compaction") for a in args)


def test_both_prometheus_scrape_both_pairs_and_send_to_alertmanager_without_the_replica_label(plan):
    result = plan("prod")
    configs = [_prometheus_config(result, prom) for prom in PAIRS]
    for config in configs:
        jobs = {j["job_name"]: j for j in config["scrape_configs"]}
        # Each scrapes the other: the survivor of a node loss reports the lost one down
        # (ObsStorageTargetDown) instead of nobody noticing.
        for job, port in (("prometheus", 9090), ("thanos-sidecar", 10902)):
            found = {(t, sc["labels"]["obs_prometheus"]) for sc in jobs[job]["static_configs"] for t in sc["targets"]}
            names = ("prometheus", "prometheus-1") if job == "prometheus" else ("thanos-sidecar", "thanos-sidecar-1")
            assert found == {(f"{names[0]}:{port}", "prometheus-0"), (f"{names[1]}:{port}", "prometheus-1")}, job
        assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]
        assert config["alerting"]["alert_relabel_configs"] == [{"action": "labeldrop", "regex": "replica"}]
        assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    # Apart from the replica label, both run the very same configuration and rules.
    for config in configs:
        config["global"]["external_labels"].pop("replica")
    assert configs[0] == configs[1]
    rules = [_service_config(result, prom, "/etc/prometheus/rules/obs-storage.yml") for prom in PAIRS]
    assert rules[0] == rules[1] and "Watchdog" in _rule_names(result, "prometheus-1", "/etc/prometheus/rules/obs-storage.yml")


def test_sidecar_alerts_join_each_sidecar_to_its_own_prometheus(plan):
    rules = _service_config(plan("prod"), "prometheus", "/etc/prometheus/rules/obs-storage.yml")
    (expr,) = [r["expr"] for g in rules["groups"] for r in g["rules"] if r["alert"] == "ThanosSidecarNoConnectionToStartedPrometheus"]
    assert "on (obs_prometheus)" in expr


def test_receive_mode_runs_two_prometheus_remote_writing_and_no_sidecar(plan_with):
    tools = yaml.safe_load(open("Pulumi.prod.yaml"))["config"]["obs-storage:tools"]
    tools["thanos"].update(mode="receive", receiveReplicationFactor=3)
    result = plan_with("prod", {"obs-storage:tools": tools})
    s = services(result)
    assert {"prometheus", "prometheus-1"} <= set(s) and not {"thanos-sidecar", "thanos-sidecar-1"} & set(s)
    writes = [[w["url"] for w in _prometheus_config(result, p)["remote_write"]] for p in PAIRS]
    assert writes[0] == writes[1] == ["http://thanos-receive-0:19291/api/v1/receive"]
    assert _node(s["prometheus"]) != _node(s["prometheus-1"])
    # Receive keeps each replica's series apart by `replica`; the compactor merges on both labels.
    args = s["thanos-compact"].inputs["taskSpec"]["containerSpec"]["args"]
    assert {"--deduplication.replica-label=replica", "--deduplication.replica-label=receive_replica"} <= set(args)


def test_the_local_stack_keeps_one_prometheus_scraping_itself(plan):
    result = plan("local")
    names = {c.inputs["name"] for c in result.by_type("docker:index/container:Container")}
    assert {"obs-local-prometheus", "obs-local-thanos-sidecar"} <= names
    assert not {"obs-local-prometheus-1", "obs-local-thanos-sidecar-1"} & names
    config = yaml.safe_load(_uploaded(result, "prometheus", "/etc/prometheus/prometheus.yml"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "prometheus"]
    assert job["static_configs"] == [{"targets": ["localhost:9090"], "labels": {"obs_prometheus": "prometheus-0"}}]
    assert config["global"]["external_labels"]["replica"] == "prometheus-0"
    # Nothing to deduplicate: the single Prometheus' alerting section is what it always was.
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}


def test_the_cost_model_counts_both_prometheus_and_their_uploads(plan_with):
    from tests.test_cost import stack_cfg
    from tools.cost import topology

    assert topology.stack_topology("prod", stack_cfg("prod")).thanos.prometheus_replicas == 2
    assert topology.stack_topology("prod", stack_cfg("prod")).thanos.uploaders == 2
    assert topology.stack_topology("local", stack_cfg("local")).thanos.prometheus_replicas == 1
    # Receive mode: no sidecar; the two Prometheus are counted (measured samples are divided by
    # them) and the Receive replicas are the uploaders.
    tools = yaml.safe_load(open("Pulumi.prod.yaml"))["config"]["obs-storage:tools"]
    tools["thanos"].update(mode="receive", receiveReplicationFactor=3)
    receive = topology.topology_from_plan(plan_with("prod", {"obs-storage:tools": tools}), stack_cfg("prod"))
    assert (receive.thanos.prometheus_replicas, receive.thanos.uploaders) == (2, 3)


def test_a_swarm_spoke_runs_the_pair_too_each_sidecar_reaching_its_own_prometheus(tmp_path, monkeypatch):
    from tests.test_multicluster import swarm_project

    swarm_project(tmp_path, monkeypatch)
    s = services(engine.run("edge"), prefix="obs-edge-")
    # On the hub's network the short names are the hub's: each sidecar names its Prometheus' service.
    for prom, sidecar in (("prometheus", "thanos-sidecar"), ("prometheus-1", "thanos-sidecar-1")):
        assert _arg(s[sidecar].inputs["taskSpec"]["containerSpec"]["args"], "prometheus.url") == f"http://obs-edge-{prom}:9090"
    # stateNode edge-1 is not one of hetzner.nodes: the second pair takes the first of them.
    assert (_node(s["prometheus"]), _node(s["prometheus-1"])) == ("edge-1", "swarm-worker-1")


# ---------------------------------------------------------------- the prod rules with two replicas, in promtool

PAIR_TARGETS = {
    ("prometheus", "prometheus-0"): "prometheus:9090", ("prometheus", "prometheus-1"): "prometheus-1:9090",
    ("thanos-sidecar", "prometheus-0"): "thanos-sidecar:10902", ("thanos-sidecar", "prometheus-1"): "thanos-sidecar-1:10902",
}


def _series(metric: str, job: str, pair: str, values: str, label: str | None = None) -> dict[str, str]:
    labels = f'job="{job}", instance="{PAIR_TARGETS[job, pair]}", obs_prometheus="{label or pair}"'
    return {"series": f"{metric}{{{labels}}}", "values": values}


def _expected(job: str, pair: str, label: str | None = None) -> dict[str, Any]:
    return {"exp_labels": {"job": job, "instance": PAIR_TARGETS[job, pair], "obs_prometheus": label or pair, "severity": "critical"}}


def _promtool_case(promtool: str, tmp_path, series: list[dict[str, str]], alert: str, expected: list[dict[str, Any]]) -> tuple[int, str]:
    rules = without_annotations(_service_config(_cached("prod"), "prometheus", "/etc/prometheus/rules/obs-storage.yml"))
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series, "alert_rule_test": [{"eval_time": "10m", "alertname": alert, "exp_alerts": expected}]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    proc = run_promtool(promtool, "test", "rules", "test.yml", cwd=tmp_path)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_survivor_reports_the_lost_pair_down_and_only_it(promtool, tmp_path):
    series = [_series("up", "prometheus", "prometheus-0", "1x15"), _series("up", "prometheus", "prometheus-1", "0x15"),
              _series("up", "thanos-sidecar", "prometheus-0", "1x15"), _series("up", "thanos-sidecar", "prometheus-1", "0x15")]
    expected = [_expected("prometheus", "prometheus-1"), _expected("thanos-sidecar", "prometheus-1")]
    code, report = _promtool_case(promtool, tmp_path, series, "ObsStorageTargetDown", expected)
    assert code == 0, report
    # The neighbour: both pairs up, nothing fires (and the case above can fail).
    series = [dict(s, values="1x15") for s in series]
    assert _promtool_case(promtool, tmp_path, series, "ObsStorageTargetDown", [])[0] == 0
    assert _promtool_case(promtool, tmp_path, series, "ObsStorageTargetDown", expected)[0] == 1


def test_a_sidecar_alert_joins_only_its_own_prometheus(promtool, tmp_path):
    # thanos-sidecar-1 cannot reach its Prometheus, which is running: it fires for that sidecar only.
    sidecars = [_series("thanos_sidecar_prometheus_up", "thanos-sidecar", "prometheus-0", "1x15"),
                _series("thanos_sidecar_prometheus_up", "thanos-sidecar", "prometheus-1", "0x15")]
    replay = [_series("prometheus_tsdb_data_replay_duration_seconds", "prometheus", p, "2x15") for p in ("prometheus-0", "prometheus-1")]
    alert = "ThanosSidecarNoConnectionToStartedPrometheus"
    code, report = _promtool_case(promtool, tmp_path, sidecars + replay, alert, [_expected("thanos-sidecar", "prometheus-1")])
    assert code == 0, report
    # prometheus-1 not running (no series): the other pair's running Prometheus must not be joined.
    code, report = _promtool_case(promtool, tmp_path, sidecars + replay[:1], alert, [])
    assert code == 0, report
    # With one pair label for both pairs (as a single Prometheus had), that is exactly what happens.
    shared = [_series("thanos_sidecar_prometheus_up", "thanos-sidecar", "prometheus-1", "0x15", label="prometheus-0")] + replay[:1]
    code, report = _promtool_case(promtool, tmp_path, shared, alert, [])
    assert code == 1, report


def test_grafana_reads_metrics_only_through_the_deduplicating_query(plan):
    datasources = _service_config(plan("prod"), "grafana", "/etc/grafana/provisioning/datasources/obs-storage.yaml")["datasources"]
    # Not one Prometheus replica (which a node loss would take away, and whose series the other
    # replica's would double): Thanos Query, which deduplicates on `replica` by default
    # (thanos-io/thanos v0.42.4 pkg/api/query/v1.go parseEnableDedupParam).
    assert [(d["type"], d["url"]) for d in datasources if d["type"] == "prometheus"] == [("prometheus", "http://thanos-query:10902")]


# ---------------------------------------------------------------- limits
def _documented_limits() -> dict[str, tuple[int, int, float]]:
    """docs/hetzner-swarm.md's table: service -> (replicas, memory bytes, CPUs)."""
    from tests import documents

    table = documents.read("docs/hetzner-swarm.md").split("| service | replicas | memory limit | CPU limit |", 1)[1].split("\n\n", 1)[0]
    units = {"MiB": 1024**2, "GiB": 1024**3}
    out = {}
    for line in table.strip().splitlines()[1:]:
        names, replicas, memory, cpus = [cell.strip() for cell in line.strip().strip("|").split("|")]
        amount, unit = memory.split()
        first, *more = [n.strip() for n in names.split(",")]
        # "bucket-freshness-loki, -tempo, -thanos": the later names share the first one's stem.
        stem = first.rsplit("-", 1)[0]
        for name in [first] + [stem + n if n.startswith("-") else n for n in more]:
            out[name] = (int(replicas.split()[0]), int(amount) * units[unit], float(cpus))
    return out


def test_every_service_has_the_documented_limits(plan):
    planned = {}
    for name, svc in services(plan("prod")).items():
        limits = svc.inputs["taskSpec"]["resources"]["limits"]
        planned[name] = (svc.inputs["mode"]["replicated"]["replicas"], limits["memoryBytes"], limits["nanoCpus"] / 1e9)
    assert planned == _documented_limits()
