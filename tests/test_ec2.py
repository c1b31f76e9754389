"""Grafana, Loki, Tempo and Thanos on EC2 fleets (`aws.platform: ec2`, Pulumi.staging-ec2.yaml):
the config refused before any resource, the fleets and flows, and the offline plan under strict
mocks: launch templates, groups, Cloud Map, the load balancer, roles and Grafana's database.

Validation of the rendered Compose files and user data by Debian's docker-compose and cloud-init,
and of the agent's calls against moto, is in tests/integration/test_ec2.py."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import random
import re
from pathlib import Path

import pytest
import yaml

from components.containers.workloads import FLUSH_GRACE_SECONDS
from components.core import access, config, loading
from components.core.renderers import loki, tempo
from components.ec2 import fleet as fleet_module, platform, topology, userdata
from probes import ec2_agent as agent_module
from tests.conftest import aws_config
from tools import engine

STACK = "staging-ec2"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SERVICE = "aws:servicediscovery/service:Service"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

EC2 = {
    "platform": "ec2",
    "ec2": {
        "vpcId": "vpc-0123456789abcdef0",
        "subnets": {"ap-northeast-2a": "subnet-0123456789abcdef0", "ap-northeast-2b": "subnet-0123456789abcdef1"},
        "senders": {"cidrs": ["10.20.0.0/16"]},
        "database": {"engineVersion": "16.13"},
    },
}


def ec2_raw(aws: dict = EC2, **tools: dict) -> dict[str, str]:
    raw = aws_config(**{"thanos": {"mode": "receive"}, **tools})
    raw["obs-storage:aws"] = json.dumps(aws)
    return raw


def load(raw: dict[str, str]) -> config.StackConfig:
    return loading.load("staging-ec2", raw, set())


def refused(raw: dict[str, str]) -> str:
    with pytest.raises(config.ConfigError) as error:
        load(raw)
    return str(error.value)


def user_data(result, fleet: str) -> dict:
    (lt,) = [r for r in result.by_type(LT) if r.name == f"tools-{fleet}-launch-template"]
    return yaml.safe_load(gzip.decompress(base64.b64decode(lt.inputs["userData"])))


def written(document: dict) -> dict[str, str]:
    return {f["path"]: f["content"] for f in document["write_files"]}


# ---------------------------------------------------------------- config
def test_minimal_ec2_config_takes_the_documented_defaults():
    cfg = load(ec2_raw())
    ec2 = cfg.aws.ec2
    assert cfg.aws.platform == "ec2" and cfg.aws.cluster_name is None and cfg.aws.zones == []
    assert ec2.ami == "/aws/service/debian/release/12/latest/amd64"
    assert (ec2.fleets.loki.size, ec2.fleets.tempo.size, ec2.fleets.grafana.size, ec2.fleets.thanos_compact.size) == (3, 3, 2, 1)
    assert ec2.namespace_for("staging-ec2") == "obs-staging-ec2.internal"


def _with(path: str, value):
    aws = copy.deepcopy(EC2)
    here = aws
    keys = path.split(".")
    for key in keys[:-1]:
        here = here.setdefault(key, {})
    if value is None:
        del here[keys[-1]]
    else:
        here[keys[-1]] = value
    return aws


@pytest.mark.parametrize(
    "aws, key, problem",
    [
        (_with("clusterName", "stg"), "aws.clusterName", "is an EKS setting, and aws.platform is ec2"),
        (_with("walVolume", "emptyDir"), "aws.walVolume", "is an EKS setting"),
        (_with("ec2", None), "aws.ec2.vpcId", "is required for aws.platform ec2"),
        (_with("ec2.vpcId", "vpc-1"), "aws.ec2.vpcId", "is not a VPC id"),
        (_with("ec2.subnets", {"ap-northeast-2a": "subnet-0123456789abcdef0"}), "aws.ec2.subnets", "fewer than two availability zones"),
        (_with("ec2.subnets", {"ap-northeast-2a": "subnet-0123456789abcdef0", "ap-northeast-2b": "subnet-0123456789abcdef0"}), "aws.ec2.subnets",
         "lists a subnet under two zones"),
        (_with("ec2.subnets", {"ap-northeast-2a": "subnet-0123456789abcdef0", "us-east-1b": "subnet-0123456789abcdef1"}),
         "aws.ec2.subnets.us-east-1b", "not an availability zone of ap-northeast-2"),
        (_with("ec2.senders", {"cidrs": ["0.0.0.0/0"]}), "aws.ec2.senders.cidrs[0]", "admits every address"),
        (_with("ec2.senders", {"cidrs": ["::/0"]}), "aws.ec2.senders.cidrs[0]", "admits every address"),
        (_with("ec2.senders", {"cidrs": ["10.20.0.1/16"]}), "aws.ec2.senders.cidrs[0]", "is not a network in CIDR notation"),
        (_with("ec2.senders", {}), "aws.ec2.senders.cidrs", "nothing could send data"),
        (_with("ec2.senders", {"securityGroups": ["sg-x"]}), "aws.ec2.senders.securityGroups[0]", "is not a security group id"),
        (_with("ec2.ami", "debian"), "aws.ec2.ami", "is neither an AMI id nor an SSM parameter path"),
        (_with("ec2.fleets", {"loki": {"instanceType": "m7g.large", "size": 3}}), "aws.ec2.fleets.loki.instanceType", "arm64 (Graviton) type"),
        (_with("ec2.fleets", {"loki": {"instanceType": "m7i.large", "size": 2}}), "aws.ec2.fleets.loki.size", "below the replication factor 3"),
        (_with("ec2.fleets", {"thanosCompact": {"instanceType": "m7i.large", "size": 2}}), "aws.ec2.fleets.thanosCompact.size", "two compactors"),
        (_with("ec2.fleets", {"graphana": {"instanceType": "t3.medium"}}), "aws.ec2.fleets.graphana", "is an unknown key"),
        (_with("ec2.database", {}), "aws.ec2.database.engineVersion", "is required"),
        (_with("ec2.database", {"engineVersion": "16", "minCapacity": 0.5}), "aws.ec2.database.engineVersion", "is not an Aurora PostgreSQL version"),
        (_with("ec2.database", {"engineVersion": "16.13", "minCapacity": 4, "maxCapacity": 2}), "aws.ec2.database.maxCapacity", "is below minCapacity 4"),
        (_with("platform", "eks"), "aws.ec2", "configures EC2 fleets, and aws.platform is eks"),
    ],
)
def test_bad_ec2_config_is_one_line_naming_key_and_fix(aws, key, problem):
    message = refused(ec2_raw(aws))
    assert len(message.splitlines()) == 1
    assert message.startswith(f"stack 'staging-ec2': obs-storage:{key} = ") and problem in message and " Fix: " in message, message


# The load balancer is internal, and "Internal load balancers must use ipv4" (Elastic Load
# Balancing API, CreateLoadBalancer IpAddressType; botocore 1.44.8's elbv2 model): an IPv6 sender
# network is refused by the config, whichever place it has in the list, and IPv4 ones (a host, a
# private range) are taken as given.
@pytest.mark.parametrize("cidrs, index", [
    (["fd00:10:20::/48"], 0),
    (["10.20.0.0/16", "2001:db8::/32"], 1),
    # An IPv4-mapped IPv6 network is still an IPv6 network to the load balancer.
    (["::ffff:10.20.0.0/112"], 0),
])
def test_an_ipv6_sender_network_is_refused_because_the_load_balancer_has_no_ipv6_address(cidrs, index):
    message = refused(ec2_raw(_with("ec2.senders", {"cidrs": cidrs})))
    assert message == (f"stack 'staging-ec2': obs-storage:aws.ec2.senders.cidrs[{index}] = \"{cidrs[index]}\" is an IPv6 network, "
                       "and the internal load balancer has IPv4 addresses only. Fix: name the senders' IPv4 networks (or their security groups).")


def test_ipv4_sender_networks_next_to_a_security_group_are_accepted():
    senders = {"cidrs": ["10.20.0.0/16", "192.168.7.12/32", "172.16.0.0/12"], "securityGroups": ["sg-0123456789abcdef0"]}
    ec2 = load(ec2_raw(_with("ec2.senders", senders))).aws.ec2
    assert (ec2.senders.cidrs, ec2.senders.security_groups) == (senders["cidrs"], senders["securityGroups"])


def _graviton() -> dict:
    aws = _with("ec2.ami", "/aws/service/debian/release/12/latest/arm64")
    names = ("loki", "tempo", "grafana", "thanosReceive", "thanosStore", "thanosQuery", "thanosCompact", "monitoring")
    aws["ec2"]["fleets"] = {n: {"instanceType": "m7g.large", "size": 3 if n in ("loki", "tempo") else 1} for n in names}
    return aws


@pytest.mark.parametrize(
    "aws",
    [
        _with("ec2.fleets", {"loki": {"instanceType": "m7i.large", "size": 3}}),
        _with("ec2.ami", "ami-0123456789abcdef0"),
        _with("ec2.senders", {"securityGroups": ["sg-0123456789abcdef0"]}),
        _graviton(),
    ],
    ids=["three-loki", "ami-id", "sender-group", "all-graviton-with-arm64-ami"],
)
def test_neighbouring_ec2_configs_are_accepted(aws):
    assert load(ec2_raw(aws)).aws.platform == "ec2"


def test_eks_stacks_still_need_their_cluster_and_keep_their_zones():
    raw = aws_config()
    cfg = load(raw)
    assert cfg.aws.platform == "eks" and cfg.aws.zones == ["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c"]
    raw["obs-storage:aws"] = json.dumps({"identity": "irsa"})
    assert "obs-storage:aws.clusterName = (not set) is required" in refused(raw)


@pytest.mark.parametrize("tools, key, problem", [
    ({"thanos": {"mode": "sidecar"}}, "tools.thanos.mode", "no Prometheus sidecar fleet"),
    ({"thanos": {"role": "spoke", "hub": "organization/obs-storage/staging", "bucket": None}}, "tools.thanos.role", "not supported on aws.platform ec2"),
])
def test_thanos_on_ec2_is_a_receive_hub(tools, key, problem):
    raw = ec2_raw()
    fields = json.loads(raw["obs-storage:tools"])
    for tool, extra in tools.items():
        fields[tool] = {k: v for k, v in {**fields[tool], **extra}.items() if v is not None}
        if extra.get("role") == "spoke":
            fields[tool].pop("mode", None)
    raw["obs-storage:tools"] = json.dumps(fields)
    message = refused(raw)
    assert f"obs-storage:{key} = " in message and problem in message, message


def test_fleet_grants_are_the_irsa_grants_by_fleet():
    cfg = load(ec2_raw())
    grants = {g.service_account: g.actions for g in access.grants(cfg)}
    # One Loki process per instance needs what the chart's ingester, querier and compactor need together.
    eks = access.grants(load(aws_config(thanos={"mode": "receive"})))
    assert set(grants["loki"]) == {a for g in eks if g.tool == "loki" for a in g.actions}
    assert grants["tempo"] == access.TEMPO
    assert (grants["thanos-compact"], grants["thanos-store"], grants["thanos-receive"]) == (access.READ_WRITE_DELETE, access.READ, access.WRITE)


# ---------------------------------------------------------------- fleets and flows
def test_every_workload_runs_in_exactly_one_fleet(plan):
    cfg = load(ec2_raw())
    declared = platform.declared_workloads(cfg, "obs-staging-ec2.internal")
    fleets = topology.fleets(declared)
    placed = [name for f in fleets for name in f.workloads]
    assert sorted(placed) == sorted(w.name for w in declared) and len(placed) == len(set(placed))
    by_name = {f.name: f for f in fleets}
    assert {"loki", "tempo", "grafana", "thanos-query", "thanos-store", "thanos-compact", "thanos-receive-0", "thanos-receive-2", "monitoring"} <= set(by_name)
    assert set(by_name["monitoring"].workloads) == {"prometheus", "alertmanager", "bucket-freshness-loki", "bucket-freshness-tempo", "bucket-freshness-thanos"}
    assert not by_name["monitoring"].discoverable and not by_name["monitoring"].host_network
    assert sorted(f.name for f in fleets if f.stop_first) == ["monitoring", "thanos-compact", "thanos-receive-0", "thanos-receive-1", "thanos-receive-2"]


def test_instances_use_their_role_and_their_own_address():
    cfg = load(ec2_raw())
    declared = {w.name: w for w in platform.declared_workloads(cfg, "obs-staging-ec2.internal")}
    assert not any("AWS_SHARED_CREDENTIALS_FILE" in w.env or w.credentials for w in declared.values())
    for name, render in (("loki", loki), ("tempo", tempo)):
        text = declared[name].files[0].content
        assert userdata.ADDRESS_REF in text and platform.EXPAND_ENV in declared[name].args
        rendered = yaml.safe_load(text)
        assert rendered["memberlist"] == {"join_members": [f"dns+{name}.obs-staging-ec2.internal:7946"], "abort_if_cluster_join_fails": False,
                                          "advertise_addr": "${INSTANCE_IP}"}
    assert yaml.safe_load(declared["tempo"].files[0].content)["compactor"]["ring"]["instance_addr"] == "${INSTANCE_IP}"
    assert yaml.safe_load(declared["loki"].files[0].content)["ingester"]["autoforget_unhealthy"] is True
    # Tempo 2.10 cannot forget a lost ingester by itself: its replacements must not wait for it.
    assert yaml.safe_load(declared["tempo"].files[0].content)["ingester"]["lifecycler"]["readiness_check_ring_health"] is False
    # Grafana finds the others through Cloud Map and keeps its state in PostgreSQL.
    datasources = yaml.safe_load(declared["grafana"].files[0].content)["datasources"]
    assert {d["url"] for d in datasources} == {"http://thanos-query.obs-staging-ec2.internal:10902", "http://loki.obs-staging-ec2.internal:3100",
                                               "http://tempo.obs-staging-ec2.internal:3200"}
    assert declared["grafana"].env["GF_DATABASE_TYPE"] == "postgres" and declared["grafana"].env["GF_DATABASE_PASSWORD__FILE"].startswith("/run/secrets/")


def test_thanos_instances_reach_each_other_by_cloud_map_names():
    # Instances of different fleets share no Docker network: every address between them is
    # <name>.<namespace>. Each receiver identifies itself in the hashring by its local endpoint
    # ("Used to identify the local node in the hashring configuration", thanos-io/thanos v0.42.4
    # cmd/thanos/receive.go receive.local-endpoint), so that endpoint must be its own entry there.
    # Query reads every instance behind a name through `dns+` (an A lookup, each record one
    # endpoint: v0.42.4 docs/service-discovery.md).
    import json as json_module

    domain = "obs-staging-ec2.internal"
    declared = {w.name: w for w in platform.declared_workloads(load(ec2_raw()), domain)}
    receivers = [f"thanos-receive-{i}" for i in range(3)]
    expected = [f"{name}.{domain}:10901" for name in receivers]
    for name, own in zip(receivers, expected):
        (hashring,) = [f.content for f in declared[name].files if f.path.endswith("hashrings.json")]
        assert json_module.loads(hashring) == [{"hashring": "default", "endpoints": expected}], name
        assert f"--receive.local-endpoint={own}" in declared[name].args, name
    endpoints = [a.split("=", 1)[1] for a in declared["thanos-query"].args if a.startswith("--endpoint=")]
    assert sorted(endpoints) == sorted(f"dns+{n}.{domain}:10901" for n in ["thanos-store", *receivers])


@pytest.mark.parametrize("size, stop_first, expected", [(3, False, (100, 134)), (2, False, (100, 150)), (5, False, (100, 120)), (1, True, (0, 100))])
def test_instance_refresh_keeps_the_full_ring_or_stops_a_singleton_first(size, stop_first, expected):
    low, high = topology.refresh_percentages(size, stop_first)
    assert (low, high) == expected
    if not stop_first:
        # At most one instance more than the fleet at any time, never one fewer.
        assert int(size * high / 100) == size + 1 and size * low // 100 == size


def test_flows_name_groups_only_and_cover_the_read_path():
    families = {"loki", "tempo", "grafana", "thanos-query", "thanos-store", "thanos-receive", "thanos-compact", "monitoring"}
    flows = {(f.source, f.target, f.protocol): f.ports for f in topology.flows(families)}
    assert flows[("loki", "loki", "udp")] == (7946,) and 7946 in flows[("loki", "loki", "tcp")]
    assert flows[("grafana", "loki", "tcp")] == (3100,) and flows[("thanos-query", "thanos-store", "tcp")] == (10901,)
    assert flows[("monitoring", "thanos-receive", "tcp")] == (10902, 19291)
    assert not any(source == "grafana" and target == "thanos-store" for source, target, _ in flows)
    # A family that is absent gets no rule (a stack without Tempo).
    assert not any("tempo" in key[:2] for key in {(f.source, f.target) for f in topology.flows(families - {"tempo"})})


# ---------------------------------------------------------------- the plan
def test_staging_ec2_plans_under_strict_mocks_without_policy_violations(plan):
    from tools import plan as plan_cli

    result = plan(STACK)
    assert plan_cli.evaluate_policies(result) == []
    assert set(result.outputs["buckets"]) == {"loki", "tempo", "thanos"}
    assert not result.by_type("kubernetes:helm.sh/v4:Chart") and "aws:eks/getCluster:getCluster" not in result.invokes
    assert result.outputs["namespace"] == "obs-staging-ec2.internal"


def test_launch_templates_are_imdsv2_private_encrypted_and_keyless(plan):
    templates = plan(STACK).by_type(LT)
    assert len(templates) == 10
    for lt in templates:
        i = lt.inputs
        assert i["imageId"] == "resolve:ssm:/aws/service/debian/release/12/latest/amd64", lt.urn
        assert i["metadataOptions"]["httpTokens"] == "required" and "keyName" not in i, lt.urn
        assert [n["associatePublicIpAddress"] for n in i["networkInterfaces"]] == ["false"], lt.urn
        assert i["blockDeviceMappings"] == [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 30, "volumeType": "gp3", "encrypted": "true",
                                                                                "deleteOnTermination": "true"}}], lt.urn
        assert i["metadataOptions"]["httpPutResponseHopLimit"] == (2 if "monitoring" in lt.name else 1), lt.urn
        # The instance's primary interface is device index 0; new instances use the newest version.
        (interface,) = i["networkInterfaces"]
        assert interface["deviceIndex"] == 0 and len(interface["securityGroups"]) == 1 and i["updateDefaultVersion"] is True, lt.urn


def test_groups_span_the_zones_drain_before_termination_and_heal_by_the_load_balancer(plan):
    result = plan(STACK)
    groups = {g.name.removeprefix("tools-").removesuffix("-group"): g.inputs for g in result.by_type(ASG)}
    assert len(groups) == 10
    for name, g in groups.items():
        assert g["vpcZoneIdentifiers"] == ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002", "subnet-0a1b2c3d4e5f60003"], name
        assert g["name"] == f"obs-staging-ec2-{name}"
        (hook,) = g["initialLifecycleHooks"]
        assert hook["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING" and hook["defaultResult"] == "CONTINUE"
        assert hook["heartbeatTimeout"] > (FLUSH_GRACE_SECONDS if name in ("loki", "tempo") else 10)
        assert g["instanceRefresh"]["strategy"] == "Rolling"
    for name in ("loki", "tempo", "grafana", "thanos-receive-0"):
        assert groups[name]["healthCheckType"] == "ELB" and groups[name]["targetGroupArns"], name
    # Fleets behind no load balancer are replaced when EC2's own status checks fail.
    for name in ("thanos-store", "thanos-query", "thanos-compact", "monitoring"):
        assert groups[name]["healthCheckType"] == "EC2" and "targetGroupArns" not in groups[name], name
    for name, g in groups.items():
        fleet = name.removeprefix("obs-staging-ec2-")
        assert g["tags"][0] == {"key": "obs-storage:fleet", "value": fleet, "propagateAtLaunch": True}, name
        assert g["minSize"] == g["maxSize"] == g["desiredCapacity"], name
        # docs/aws-ec2.md: a new instance gets 600 s to boot before its own checks count.
        assert g["healthCheckGracePeriod"] == 600 and g["instanceRefresh"]["preferences"]["instanceWarmup"] == "600", name
    # docs/aws-ec2.md: the hook holds a Loki or Tempo instance for their 90 s flush and times out after 180 s.
    assert groups["loki"]["initialLifecycleHooks"][0]["heartbeatTimeout"] == groups["tempo"]["initialLifecycleHooks"][0]["heartbeatTimeout"] == 180
    preferences = groups["loki"]["instanceRefresh"]["preferences"]
    assert (preferences["minHealthyPercentage"], preferences["maxHealthyPercentage"]) == (100, 134)
    assert (groups["loki"]["minSize"], groups["loki"]["maxSize"]) == (3, 3)
    assert groups["thanos-compact"]["maxSize"] == 1 and groups["thanos-compact"]["instanceRefresh"]["preferences"]["maxHealthyPercentage"] == 100
    assert groups["thanos-compact"]["healthCheckType"] == "EC2"


def test_load_balancer_is_internal_with_readiness_health_checks(plan):
    result = plan(STACK)
    (nlb,) = result.by_type("aws:lb/loadBalancer:LoadBalancer")
    assert nlb.inputs["internal"] is True and nlb.inputs["loadBalancerType"] == "network" and len(nlb.inputs["securityGroups"]) == 1
    # "Internal load balancers must use ipv4" (CreateLoadBalancer IpAddressType, botocore 1.44.8;
    # pulumi_aws 7.51.1 lb.LoadBalancerArgs repeats it): what the config's refusal of IPv6 sender
    # networks (Ec2Senders) rests on.
    assert nlb.inputs.get("ipAddressType", "ipv4") == "ipv4"
    ports = sorted(l.inputs["port"] for l in result.by_type(LISTENER))
    assert ports == [3000, 3100, 3200, 4317, 4318, 19291]
    checks = {t.name.removeprefix("tools-traffic-"): (t.inputs["healthCheck"]["port"], t.inputs["healthCheck"]["path"]) for t in result.by_type(TARGET_GROUP)}
    assert checks == {"loki": ("3100", "/ready"), "otlp-grpc": ("3200", "/ready"), "otlp-http": ("3200", "/ready"), "tempo": ("3200", "/ready"),
                      "grafana": ("3000", "/api/health"), "remote-write": ("10902", "/-/ready")}
    assert {t.inputs["preserveClientIp"] for t in result.by_type(TARGET_GROUP)} == {"false"}


def test_target_groups_take_a_lost_instance_out_after_three_failed_checks_10_s_apart(plan):
    # docs/aws-ec2.md ("What a loss or a rollout costs"): the load balancer marks a lost instance
    # unhealthy after three failed checks 10 s apart; the groups behind it (health check type ELB)
    # are replaced on that verdict alone, so the checks must be on (pulumi_aws 7.51.1
    # TargetGroupHealthCheckArgs: `enabled` defaults to true).
    groups = plan(STACK).by_type(TARGET_GROUP)
    assert len(groups) == 6
    for t in groups:
        check = t.inputs["healthCheck"]
        assert check.get("enabled", True) is True, t.name
        assert (check["unhealthyThreshold"], check["interval"]) == (3, 10), t.name
        # No timeout of its own: an HTTP check's default, 6 s (same Args), ends before the next check.
        assert "timeout" not in check, t.name
        # CreateTargetGroup's range for both thresholds is 2-10 (same Args): AWS refuses any other.
        assert 2 <= check["healthyThreshold"] <= 10 and check["matcher"] == "200", t.name


def test_the_load_balancer_spreads_connections_over_the_instances_of_every_zone(plan):
    result = plan(STACK)
    (nlb,) = result.by_type("aws:lb/loadBalancer:LoadBalancer")
    # Elastic Load Balancing, "Health checks for Network Load Balancer target groups": without
    # cross-zone load balancing each load balancer node routes only to the healthy targets of its
    # own zone, and the DNS answers spread clients evenly over the zones. The groups balance over
    # the zones without promising one instance per zone (docs/aws-ec2.md): three Loki instances
    # as two in one zone and one in another would hand the lone one 1/2 of the pushes instead of
    # 1/3, and Grafana's two instances can never cover three zones evenly.
    assert nlb.inputs["enableCrossZoneLoadBalancing"] is True
    # No target group overrides it for itself (pulumi_aws: load_balancing_cross_zone_enabled).
    assert not any("loadBalancingCrossZoneEnabled" in t.inputs for t in result.by_type(TARGET_GROUP))


def test_senders_reach_each_listener_by_their_ipv4_network_or_by_their_security_group(plan_with):
    aws = yaml.safe_load(Path("Pulumi.staging-ec2.yaml").read_text())["config"]["obs-storage:aws"]
    aws["ec2"]["senders"] = {"cidrs": ["10.20.0.0/16", "192.168.7.12/32"], "securityGroups": ["sg-0123456789abcdef0"]}
    rules = [r for r in plan_with(STACK, {"obs-storage:aws": aws}).by_type(INGRESS) if "-nlb-" in r.name and "-from-nlb-" not in r.name]
    seen: dict[str, set[int]] = {}
    for r in rules:
        sender = {k: r.inputs[k] for k in ("cidrIpv4", "cidrIpv6", "referencedSecurityGroupId") if r.inputs.get(k)}
        # Exactly one source a rule: EC2 refuses an IPv4 network as cidrIpv6 and a rule with two.
        assert len(sender) == 1, (r.name, sender)
        ((kind, value),) = sender.items()
        seen.setdefault(f"{kind}={value}", set()).add(int(r.inputs["fromPort"]))
        assert r.inputs["fromPort"] == r.inputs["toPort"] and r.inputs["ipProtocol"] == "tcp", r.name
    # docs/aws-ec2.md: 3100 push and query, 4317/4318 OTLP, 3200 trace query, 3000 Grafana, 19291 remote write.
    listeners = {3000, 3100, 3200, 4317, 4318, 19291}
    assert seen == {"cidrIpv4=10.20.0.0/16": listeners, "cidrIpv4=192.168.7.12/32": listeners,
                    "referencedSecurityGroupId=sg-0123456789abcdef0": listeners}


def test_only_senders_reach_the_load_balancer_and_instances_admit_groups_only(plan):
    result = plan(STACK)
    groups = {r.urn: r.name for r in result.by_type("aws:ec2/securityGroup:SecurityGroup")}
    rules = result.by_type(INGRESS)
    cidr_rules = [r for r in rules if "cidrIpv4" in r.inputs or "cidrIpv6" in r.inputs]
    assert {r.inputs["cidrIpv4"] for r in cidr_rules} == {"10.20.0.0/16"}
    assert {r.inputs["fromPort"] for r in cidr_rules} == {3000, 3100, 3200, 4317, 4318, 19291}
    assert all("nlb-" in r.name for r in cidr_rules)
    # Every other ingress references a security group: the load balancer's, or a fleet family's.
    assert all(r.inputs.get("referencedSecurityGroupId") for r in rules if r not in cidr_rules)
    assert len(groups) == 10  # eight families, the load balancer, the database


def test_each_role_has_its_bucket_grant_and_its_own_services_only(plan):
    result = plan(STACK)
    roles = {r.inputs["name"]: r for r in result.by_type(ROLE)}
    assert set(roles) == {f"obs-staging-ec2-{f}" for f in ("loki", "tempo", "grafana", "thanos-query", "thanos-store", "thanos-receive", "thanos-compact", "monitoring")}
    for role in roles.values():
        assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}]
    policies = {p.name: json.loads(p.inputs["policy"]) for p in result.by_type(ROLE_POLICY)}
    for family in ("loki", "grafana", "thanos-receive"):
        statements = {s["Sid"]: s for s in policies[f"{family}-instance"]["Statement"]}
        arns = statements["OwnCloudMapServices"]["Resource"]
        expected = 3 if family == "thanos-receive" else 1
        assert len(arns) == expected and all(a.startswith("arn:aws:servicediscovery:ap-northeast-2:123456789012:service/srv-") for a in arns)
        names = statements["OwnRecords"]["Condition"]["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
        assert all(n.startswith(family) and n.endswith(".obs-staging-ec2.internal") for n in names) and len(names) == expected
        assert statements["OwnLifecycleHook"]["Resource"][0].endswith(f":autoScalingGroupName/obs-staging-ec2-{family}{'-0' if expected == 3 else ''}")
    # The monitoring instance is in no Cloud Map service: no empty Resource list (IAM refuses one).
    assert [s["Sid"] for s in policies["monitoring-instance"]["Statement"]] == ["OwnLifecycleHook"]
    assert all(s["Resource"] for p in policies.values() for s in p["Statement"])
    # Only Grafana reads secrets, and only its own two.
    assert [f for f, p in policies.items() if any(s["Sid"] == "OwnSecrets" for s in p.get("Statement", []))] == ["grafana-instance"]
    assert set(policies["loki-bucket-access"]["Statement"][1]["Action"]) == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert [s["Action"] for s in policies["monitoring-lists-loki"]["Statement"]] == [["s3:ListBucket"]]


def test_grafana_database_password_is_kept_by_aws_and_no_secret_is_in_user_data(plan):
    result = plan(STACK)
    (cluster,) = result.by_type("aws:rds/cluster:Cluster")
    i = cluster.inputs
    assert i["manageMasterUserPassword"] is True and "masterPassword" not in i and i["storageEncrypted"] is True
    assert i["engine"] == "aurora-postgresql" and i["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 2}
    assert sorted((x.inputs["instanceClass"], x.inputs["availabilityZone"]) for x in result.by_type("aws:rds/clusterInstance:ClusterInstance")) == [
        ("db.serverless", "ap-northeast-2a"), ("db.serverless", "ap-northeast-2b")]
    assert not any(x.inputs.get("publiclyAccessible") for x in result.by_type("aws:rds/clusterInstance:ClusterInstance"))
    # docs/aws-ec2.md: seven days of automated backups, and a final snapshot when the stack is destroyed.
    assert (i["backupRetentionPeriod"], i["skipFinalSnapshot"], i["finalSnapshotIdentifier"]) == (7, False, "tools-grafana-db-final")
    # Only Grafana's instances reach it, on PostgreSQL's port.
    (rule,) = [r for r in result.by_type(INGRESS) if r.name.startswith("tools-grafana-db")]
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 5432, 5432)
    # The admin password is a random result (the mocks give "mock-<name>-..."): in no user data.
    for lt in result.by_type(LT):
        text = gzip.decompress(base64.b64decode(lt.inputs["userData"])).decode()
        assert "mock-tools-grafana" not in text and "[secret]" not in text, lt.urn
    agent = json.loads(written(user_data(result, "grafana"))[userdata.AGENT_CONFIG])
    assert [s["key"] for s in agent["secrets"]] == ["adminPassword", "secretKey", "password"]
    assert result.outputs["grafanaAdminPassword"] == "[secret]"


def test_grafana_reads_each_secret_file_the_agent_writes_and_its_database_by_the_writer_endpoint(plan):
    result = plan(STACK)
    files = written(user_data(result, "grafana"))
    grafana = yaml.safe_load(files[f"{userdata.COMPOSE_DIR}/docker-compose.yml"])["services"]["grafana"]
    env = grafana["environment"]
    # Grafana reads GF_<SECTION>_<KEY>__FILE from that file: each must be mounted from the tmpfs
    # path the agent writes at boot (agent config), or Grafana starts without its password, its
    # secret key (datasource secrets it cannot decrypt) or its database.
    written_by_agent = {s["path"] for s in json.loads(files[userdata.AGENT_CONFIG])["secrets"]}
    mounts = {target: source for source, target, mode in (v.split(":") for v in grafana["volumes"] if v.count(":") == 2) if mode == "ro"}
    wanted = {k: v for k, v in env.items() if k.endswith("__FILE")}
    assert set(wanted) == {"GF_SECURITY_ADMIN_PASSWORD__FILE", "GF_SECURITY_SECRET_KEY__FILE", "GF_DATABASE_PASSWORD__FILE"}
    assert {mounts[path] for path in wanted.values()} == written_by_agent
    # The writer endpoint on PostgreSQL's port, over TLS; no other fleet gets a database host.
    (cluster,) = result.by_type("aws:rds/cluster:Cluster")
    assert env["GF_DATABASE_HOST"].endswith(":5432") and env["GF_DATABASE_HOST"] != ":5432" and env["GF_DATABASE_SSL_MODE"] == "require"
    loki = yaml.safe_load(written(user_data(result, "loki"))[f"{userdata.COMPOSE_DIR}/docker-compose.yml"])["services"]["loki"]
    assert not any(k.startswith("GF_") for k in loki.get("environment", {}))


def test_the_stack_outputs_name_the_load_balancer_urls_and_each_fleet_as_tools_verify_reads_them(plan):
    from urllib.parse import urlsplit

    result = plan(STACK)
    urls = result.outputs["urls"]
    hosts = {urlsplit(u if "://" in u else f"grpc://{u}").hostname for u in urls.values()}
    # One internal load balancer for all of them (ELB names its NLBs <name>-<id>.elb.<region>.amazonaws.com).
    (host,) = hosts
    assert host.endswith(".elb.ap-northeast-2.amazonaws.com")
    # docs/aws-ec2.md's listeners; Loki's push API and Thanos Receive's remote-write path; OTLP
    # gRPC as host:port, as OpenTelemetry exporters take it.
    assert urls == {
        "grafana": f"http://{host}:3000", "loki": f"http://{host}:3100", "lokiPush": f"http://{host}:3100/loki/api/v1/push",
        "otlpGrpc": f"{host}:4317", "otlpHttp": f"http://{host}:4318", "tempo": f"http://{host}:3200",
        "remoteWrite": f"http://{host}:19291/api/v1/receive",
    }
    # tools/verify/fleets.py compares each group's instances with the Cloud Map service the
    # instances' agent registers in, and checks the target groups the group is attached to.
    fleets = result.outputs["fleets"]
    groups = {g.inputs["name"]: g.inputs for g in result.by_type(ASG)}
    listeners = {"loki": ["loki"], "tempo": ["otlp-grpc", "otlp-http", "tempo"], "grafana": ["grafana"],
                 **{f"thanos-receive-{i}": ["remote-write"] for i in range(3)}}
    assert len(fleets) == 10
    for name, fleet in fleets.items():
        assert fleet["group"] == f"obs-staging-ec2-{name}" and fleet["group"] in groups, name
        assert [arn.split("/")[1] for arn in fleet["targetGroups"]] == [f"tools-traffic-{l}" for l in listeners.get(name, [])], name
        assert sorted(fleet["targetGroups"]) == sorted(groups[fleet["group"]].get("targetGroupArns", [])), name
        agent = json.loads(written(user_data(result, name))[userdata.AGENT_CONFIG])
        if name == "monitoring":
            assert "service" not in fleet and "serviceId" not in fleet and agent["serviceIds"] == []
        else:
            assert fleet["service"] == f"{name}.obs-staging-ec2.internal" and agent["serviceIds"] == [fleet["serviceId"]], name


def test_each_fleet_starts_after_the_bucket_grants_of_the_tools_it_runs(plan):
    # Instances flush to their bucket with their role from their first second: each group waits
    # for the identities of the tools it runs (the monitoring instance's probes read all three
    # buckets; Grafana touches none). An identity is its tool's roles and bucket policies.
    grants = {"loki": {"loki"}, "tempo": {"tempo"}, "thanos": {"thanos-store", "thanos-compact", "thanos-receive"}}
    tools = {"loki": ["loki"], "tempo": ["tempo"], "grafana": [], "monitoring": ["loki", "tempo", "thanos"],
             **{f: ["thanos"] for f in ("thanos-store", "thanos-compact", "thanos-query", "thanos-receive-0", "thanos-receive-2")}}
    fleets = {r.name.removeprefix("tools-"): {d.rsplit("::", 1)[1] for d in r.depends_on} for r in plan(STACK).resources if r.type == "obs:ec2:FleetGroup"}
    for fleet, used in tools.items():
        waits_for = {d.removesuffix("-bucket-access") for d in fleets[fleet] if d.endswith("-bucket-access")}
        assert waits_for == set().union(*(grants[t] for t in used)), fleet


def test_user_data_ships_the_agent_compose_file_and_configs(plan):
    result = plan(STACK)
    document = user_data(result, "loki")
    files = written(document)
    assert document["packages"] == ["docker.io", "docker-compose", "python3-boto3"]
    assert files[userdata.AGENT_PATH] == Path(agent_module.__file__).read_text()
    compose = yaml.safe_load(files[f"{userdata.COMPOSE_DIR}/docker-compose.yml"])
    assert compose["services"]["loki"]["network_mode"] == "host" and compose["services"]["loki"]["stop_grace_period"] == f"{FLUSH_GRACE_SECONDS}s"
    assert f"{userdata.FILES_DIR}/loki/etc/loki/config.yaml:/etc/loki/config.yaml:ro" in compose["services"]["loki"]["volumes"]
    agent = json.loads(files[userdata.AGENT_CONFIG])
    assert agent["autoScalingGroup"] == "obs-staging-ec2-loki" and agent["lifecycleHook"] == fleet_module.LIFECYCLE_HOOK
    assert len(agent["serviceIds"]) == 1 and agent["serviceIds"][0].startswith("srv-")
    assert agent["stopGraceSeconds"] == FLUSH_GRACE_SECONDS


def test_user_data_over_the_ec2_limit_is_refused():
    assert userdata.encode("#cloud-config\n")
    with pytest.raises(ValueError, match="over EC2's 16384"):
        # Random bytes do not compress: 24 KB of them stay above the limit after gzip.
        userdata.encode("#cloud-config\n" + base64.b64encode(random.Random(0).randbytes(24_000)).decode())


def test_user_data_of_exactly_16_kb_compressed_is_accepted_and_one_byte_more_refused():
    # EC2 user guide: user data is limited to 16 KB before base64; cloud-init reads it gzipped.
    rng = random.Random(0)
    text = "#cloud-config\n" + "".join(rng.choice("".join(map(chr, range(33, 127)))) for _ in range(20_500))
    by_size = {}
    for n in range(19_000, 20_500):
        by_size.setdefault(len(gzip.compress(text[:n].encode(), mtime=0)), n)
    at_limit, over = by_size[16 * 1024], by_size[16 * 1024 + 1]
    data = base64.b64decode(userdata.encode(text[:at_limit]))
    assert len(data) == 16 * 1024 and gzip.decompress(data).decode() == text[:at_limit]
    with pytest.raises(ValueError, match="user data is 16385 bytes compressed, over EC2's 16384"):
        userdata.encode(text[:over])
    # The same text gives the same bytes (no timestamp in the gzip header): a plan that changes
    # nothing leaves the launch templates as they are.
    assert userdata.encode(text[:100]) == userdata.encode(text[:100])


def test_compose_services_run_their_workload_as_declared_with_every_dollar_literal():
    from components.containers.workloads import File, Workload

    probe = Workload(
        name="probe", tool="thanos", pin="thanos", image="quay.io/thanos/thanos:v0.42.4", args=["--label=cost=$5"], health=["CMD", "/bin/true"],
        env={"HINT": "a$b"}, files=[File("/etc/probe.yaml", f"addr: {userdata.ADDRESS_REF}")], volumes={"probe-data": "/data"},
        user="65534:65534", entrypoint=["/bin/run", "$HOME"], labels={"b": "2", "a": "1"}, after=["ring", "elsewhere"], stop_grace_seconds=45,
        health_start_seconds=420)
    ring = Workload(name="ring", tool="ring", pin="thanos", image="quay.io/thanos/thanos:v0.42.4", args=[], health=None)
    compose = userdata.compose_file([probe, ring], {"probe": [("/run/obs-secrets/x", "/run/secrets/x")]}, host_network=False)
    service = compose["services"]["probe"]
    # Compose interpolates `$` in its own file and reads `$$` as one literal `$` (Compose file
    # reference, "Interpolation"): the workload's values reach the container unchanged.
    assert service["command"] == ["--label=cost=$$5"] and service["entrypoint"] == ["/bin/run", "$$HOME"]
    environment = dict(service["environment"])
    # The only value Compose fills in: the instance's address from the .env the agent writes,
    # refused (`:?`) while unset rather than left empty.
    assert environment.pop(userdata.ADDRESS_VAR).startswith("${" + userdata.ADDRESS_VAR + ":?") and environment == {"HINT": "a$$b"}
    assert service["volumes"] == ["probe-data:/data", f"{userdata.FILES_DIR}/probe/etc/probe.yaml:/etc/probe.yaml:ro", "/run/obs-secrets/x:/run/secrets/x:ro"]
    assert compose["volumes"] == {"probe-data": {}}
    assert (service["user"], service["healthcheck"]["test"], service["labels"]) == ("65534:65534", ["CMD", "/bin/true"], {"a": "1", "b": "2"})
    # The workload's own start window: failures before it do not count (Compose file reference, healthcheck start_period).
    assert service["healthcheck"]["start_period"] == "420s"
    assert (service["restart"], service["stop_grace_period"], service["image"]) == ("unless-stopped", "45s", "quay.io/thanos/thanos:v0.42.4")
    # docker-compose refuses a dependency on a service its file does not define ("Service 'probe'
    # depends on service 'elsewhere' which is undefined.", compose/config/validation.py
    # validate_depends_on): only this fleet's own.
    assert service["depends_on"] == ["ring"]
    assert "network_mode" not in service
    # Nothing a workload does not declare (the image's own command, user and health check apply),
    # and no address variable where no config reads it.
    assert compose["services"]["ring"] == {"image": "quay.io/thanos/thanos:v0.42.4", "restart": "unless-stopped", "stop_grace_period": "10s"}
    assert userdata.compose_file([ring])["services"]["ring"]["network_mode"] == "host" and "volumes" not in userdata.compose_file([ring])
    # The user data writes every file a service mounts (a missing one becomes an empty directory
    # in the container), the Compose file and the agent's config as given.
    agent = userdata.agent_config("probe", "ap-northeast-2", "obs-s-probe", "drain", ["srv-1"], 45, [])
    files = {f["path"]: f["content"] for f in yaml.safe_load(userdata.cloud_config([probe, ring], compose, agent))["write_files"]}
    assert files[f"{userdata.FILES_DIR}/probe/etc/probe.yaml"] == f"addr: {userdata.ADDRESS_REF}"
    assert yaml.safe_load(files[f"{userdata.COMPOSE_DIR}/docker-compose.yml"]) == compose and json.loads(files[userdata.AGENT_CONFIG]) == agent


def test_each_container_gets_the_health_start_window_the_operations_guide_gives_its_tool(plan):
    result = plan(STACK)
    windows = {}
    for lt in result.by_type(LT):
        compose = yaml.safe_load(written(user_data(result, lt.name.removeprefix("tools-").removesuffix("-launch-template")))[
            f"{userdata.COMPOSE_DIR}/docker-compose.yml"])
        windows |= {name: s["healthcheck"]["start_period"] for name, s in compose["services"].items() if "healthcheck" in s}
    # docs/operations.md: failures in a container's first minute do not count, except Loki's,
    # which answers /ready only after replaying its WAL (10 minutes), and Thanos store's, which
    # does only after its initial bucket sync (15 minutes). Tempo 2.10 has no health command.
    assert windows.pop("loki") == "600s" and windows.pop("thanos-store") == "900s"
    assert "tempo" not in windows and len(windows) == 11 and set(windows.values()) == {"60s"}, windows


def test_cloud_map_services_answer_every_instance(plan):
    services = plan(STACK).by_type(SERVICE)
    assert len(services) == 9  # every fleet but monitoring
    for s in services:
        assert s.inputs["dnsConfig"]["routingPolicy"] == "MULTIVALUE" and s.inputs["dnsConfig"]["dnsRecords"] == [{"type": "A", "ttl": 10}]
        assert "healthCheckConfig" not in s.inputs
        # An instance lost without draining keeps its registration (docs/aws-ec2.md), and Cloud Map
        # refuses to delete a service that still has one (API DeleteService: ResourceInUse):
        # without force_destroy, destroying the stack or replacing a service stops there.
        assert s.inputs["forceDestroy"] is True, s.name


# ---------------------------------------------------------------- the instance agent
class FakeImds:
    def __init__(self, states):
        self.states = list(states)

    def get(self, path):
        if path == "autoscaling/target-lifecycle-state":
            return self.states.pop(0)
        return {"instance-id": "i-0123456789abcdef0", "local-ipv4": "10.0.1.23"}[path]


class Recorder:
    """boto3-like clients and `docker-compose`, recording the calls in order."""

    def __init__(self):
        self.calls = []

    def client(self, service):
        recorder = self

        class Client:
            def __getattr__(self, operation):
                def call(**kwargs):
                    recorder.calls.append((service, operation, kwargs))
                    return {"OperationId": "op"}
                return call
        return Client()


CONFIG = {"composeDir": "/etc/obs/compose", "serviceIds": ["srv-1"], "stopGraceSeconds": 90, "autoScalingGroup": "obs-s-loki", "lifecycleHook": "drain"}


def test_the_agent_drains_only_when_terminating_and_in_order(monkeypatch):
    session = Recorder()
    monkeypatch.setattr(agent_module, "compose", lambda config, *args: session.calls.append(("compose",) + args))
    slept = []
    agent_module.watch(CONFIG, FakeImds(["InService", "InService", "Terminated"]), session, sleep=slept.append)
    assert len(slept) == 2
    # Out of Cloud Map first (nobody joins or queries it any more), then the tools stop with their
    # grace period (Loki and Tempo flush), then the group may terminate the instance.
    assert [c[:2] for c in session.calls] == [("servicediscovery", "deregister_instance"), ("compose", "stop"), ("autoscaling", "complete_lifecycle_action")]
    assert session.calls[1] == ("compose", "stop", "-t", "90")
    assert session.calls[2][2] == {"AutoScalingGroupName": "obs-s-loki", "LifecycleHookName": "drain", "InstanceId": "i-0123456789abcdef0",
                                   "LifecycleActionResult": "CONTINUE"}


def test_the_agent_boots_with_the_instance_address_then_registers(monkeypatch, tmp_path):
    session = Recorder()
    monkeypatch.setattr(agent_module, "compose", lambda config, *args: session.calls.append(("compose",) + args))
    agent_module.boot({**CONFIG, "composeDir": str(tmp_path)}, FakeImds([]), session)
    assert (tmp_path / ".env").read_text() == "INSTANCE_IP=10.0.1.23\n"
    assert [c[:2] for c in session.calls] == [("compose", "up"), ("servicediscovery", "register_instance")]
    assert session.calls[1][2] == {"ServiceId": "srv-1", "InstanceId": "i-0123456789abcdef0", "Attributes": {"AWS_INSTANCE_IPV4": "10.0.1.23"}}


def test_the_agent_speaks_imdsv2_only():
    import io
    import urllib.error

    requests = []

    def opener(request, timeout):
        requests.append((request.get_method(), request.full_url, dict(request.header_items())))
        if request.full_url.endswith("/api/token"):
            return io.BytesIO(b"token-1")
        if request.full_url.endswith("/autoscaling/target-lifecycle-state"):
            raise urllib.error.HTTPError(request.full_url, 404, "Not Found", {}, None)
        return io.BytesIO(b"i-0123456789abcdef0")

    imds = agent_module.Imds("http://imds", opener)
    assert imds.get("instance-id") == "i-0123456789abcdef0"
    assert imds.get("autoscaling/target-lifecycle-state") is None
    assert requests[0][0] == "PUT" and requests[0][2] == {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
    assert all(r[2] == {"X-aws-ec2-metadata-token": "token-1"} for r in requests[1:]) and len(requests) == 3


def test_make_cost_reads_the_fleets_from_their_user_data(plan):
    """tools.cost reads the topology from what the plan renders: on ec2 the Compose services in
    each launch template's user data, times the group's instances."""
    from tools.cost import topology as cost_topology

    cfg = load(ec2_raw())
    found = cost_topology.topology_from_plan(plan(STACK), cfg)
    assert (found.loki.ingesters, found.loki.replication_factor, found.loki.compactors) == (3, 3, 1)
    assert (found.tempo.ingesters, found.tempo.replication_factor, found.tempo.compaction_copies) == (3, 3, 1)
    assert (found.thanos.uploaders, found.thanos.store_gateways) == (3, 2)


def _imds_opener(answers: dict[str, list]):
    """An IMDS stand-in: per path suffix, the answers in order (bytes, or an HTTP status to raise)."""
    import io
    import urllib.error

    requests = []

    def opener(request, timeout):
        requests.append((request.full_url.rsplit("/latest/", 1)[1], dict(request.header_items())))
        path = request.full_url.rsplit("/latest/", 1)[1]
        answer = answers[path].pop(0)
        if isinstance(answer, int):
            raise urllib.error.HTTPError(request.full_url, answer, "error", {}, None)
        return io.BytesIO(answer)

    return opener, requests


def test_the_agent_fetches_a_new_imds_token_once_when_its_token_expired():
    import urllib.error

    opener, requests = _imds_opener({"api/token": [b"old", b"new"], "meta-data/instance-id": [401, b"i-1"]})
    assert agent_module.Imds("http://imds", opener).get("instance-id") == "i-1"
    assert [r[0] for r in requests] == ["api/token", "meta-data/instance-id", "api/token", "meta-data/instance-id"]
    assert requests[3][1] == {"X-aws-ec2-metadata-token": "new"}
    # A second refusal with a fresh token is not an expired token: it is raised, as is any other error.
    opener, requests = _imds_opener({"api/token": [b"a", b"b"], "meta-data/instance-id": [401, 401]})
    with pytest.raises(urllib.error.HTTPError) as info:
        agent_module.Imds("http://imds", opener).get("instance-id")
    assert info.value.code == 401 and len(requests) == 4
    for status in (400, 500):  # any status but 401 (below and above it) is not an expired token: no new token
        opener, requests = _imds_opener({"api/token": [b"a", b"b"], "meta-data/instance-id": [status, b"i-1"]})
        with pytest.raises(urllib.error.HTTPError):
            agent_module.Imds("http://imds", opener).get("instance-id")
        assert len(requests) == 2, status


def test_the_agent_writes_secrets_readable_by_the_containers_user_only(tmp_path):
    import stat

    path = tmp_path / "run" / "grafana" / "admin-password"
    agent_module.write_private(str(path), "s3cret", 472)
    assert path.read_text() == "s3cret"
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o400 and (info.st_uid, info.st_gid) == (472, 472)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    # Never readable by others, not even between creating the file and setting its mode.
    modes = []
    real_chmod = agent_module.os.chmod

    def chmod(target, mode):
        modes.append(stat.S_IMODE(agent_module.os.stat(target).st_mode))
        real_chmod(target, mode)

    agent_module.os.chmod = chmod
    try:
        agent_module.write_private(str(tmp_path / "other"), "x", 472)
    finally:
        agent_module.os.chmod = real_chmod
    assert modes == [0o400]
    # Written again at the next boot: the old value is replaced, not appended to.
    agent_module.write_private(str(path), "new", 472)
    assert path.read_text() == "new"


def test_the_agent_reads_a_whole_secret_or_one_field_of_a_json_secret():
    class SecretsManager:
        def get_secret_value(self, SecretId):
            return {"SecretString": {"arn:plain": "p@ss", "arn:json": '{"password": "from-json", "user": "admin"}'}[SecretId]}

    got = agent_module.fetch_secrets(SecretsManager(), [
        {"path": "/run/a", "secretArn": "arn:plain", "uid": 472},
        {"path": "/run/b", "secretArn": "arn:json", "key": "password", "uid": 472},
    ])
    assert got == {"/run/a": "p@ss", "/run/b": "from-json"}


def test_the_agent_boots_with_its_secrets_in_place_before_the_tools_start(monkeypatch, tmp_path):
    session = Recorder()
    written = []
    monkeypatch.setattr(agent_module, "compose", lambda config, *args: session.calls.append(("compose",) + args))
    monkeypatch.setattr(agent_module, "fetch_secrets", lambda client, secrets: {s["path"]: f"value-of-{s['secretArn']}" for s in secrets})
    monkeypatch.setattr(agent_module, "write_private", lambda path, content, uid: written.append((path, content, uid, len(session.calls))))
    secrets = [{"path": "/run/grafana/admin", "secretArn": "arn:g", "uid": 472}]
    agent_module.boot({**CONFIG, "composeDir": str(tmp_path), "secrets": secrets}, FakeImds([]), session)
    # Written before `docker-compose up` (no call recorded yet).
    assert written == [("/run/grafana/admin", "value-of-arn:g", 472, 0)]
    assert session.calls[0] == ("compose", "up", "-d", "--no-build")


def test_the_agent_deregisters_an_instance_cloud_map_no_longer_has():
    from botocore.exceptions import ClientError

    class CloudMap:
        def __init__(self, code):
            self.code = code

        def deregister_instance(self, ServiceId, InstanceId):
            if ServiceId == "srv-gone":
                raise ClientError({"Error": {"Code": self.code}}, "DeregisterInstance")
            return {"OperationId": f"op-{ServiceId}"}

    # The error code as botocore parses it from the answer: a string of its own, not a literal.
    def code(text: str) -> str:
        return json.loads(json.dumps(text))

    # Already gone (a second drain, a reboot): nothing to do for that service, the others go on.
    assert agent_module.deregister(CloudMap(code("InstanceNotFound")), ["srv-gone", "srv-2"], "i-1") == ["op-srv-2"]
    # Any other error (sorting before or after InstanceNotFound) is raised.
    for other in ("AccessDeniedException", "ThrottlingException"):
        with pytest.raises(ClientError):
            agent_module.deregister(CloudMap(code(other)), ["srv-gone", "srv-2"], "i-1")


def test_the_agent_runs_compose_on_its_project(monkeypatch):
    ran = []
    monkeypatch.setattr(agent_module.subprocess, "run", lambda args, check: ran.append((args, check)))
    agent_module.compose({"composeDir": "/etc/obs/compose"}, "stop", "-t", "90")
    assert ran == [(["docker-compose", "--project-directory", "/etc/obs/compose", "-f", "/etc/obs/compose/docker-compose.yml", "stop", "-t", "90"], True)]


def test_the_agent_command_line(monkeypatch, tmp_path, capsys):
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"region": "ap-northeast-2"}))
    monkeypatch.setattr(agent_module, "CONFIG", str(config))
    called = []
    monkeypatch.setattr(agent_module, "boot", lambda cfg, imds, session: called.append(("boot", cfg, session.region_name)))
    monkeypatch.setattr(agent_module, "watch", lambda cfg, imds, session: called.append(("watch", cfg, session.region_name)))
    assert agent_module.main(["agent.py", "boot"]) == 0 and agent_module.main(["agent.py", "watch"]) == 0
    assert called == [("boot", {"region": "ap-northeast-2"}, "ap-northeast-2"), ("watch", {"region": "ap-northeast-2"}, "ap-northeast-2")]
    for argv in (["agent.py"], ["agent.py", "drain"]):
        assert agent_module.main(argv) == 2
        assert "usage: agent.py boot|watch" in capsys.readouterr().err
    assert len(called) == 2


def test_the_agent_drains_at_terminated_only_whatever_other_state_imds_reports(monkeypatch):
    # EC2 Auto Scaling user guide, "Retrieve the target lifecycle state through instance metadata":
    # InService, Standby, Terminated, Detached and the warm pool's Warmed:* states. Answers are
    # read from the wire (decoded bytes), as Imds.get returns them.
    session = Recorder()
    monkeypatch.setattr(agent_module, "compose", lambda config, *args: session.calls.append(("compose",) + args))
    slept = []
    states = [s.encode().decode() for s in ("Warmed:Running", "Standby", "InService", "Terminated")]
    agent_module.watch(CONFIG, FakeImds(states), session, sleep=slept.append)
    assert len(slept) == 3 and [c[:2] for c in session.calls][-1] == ("autoscaling", "complete_lifecycle_action")


# ---------------------------------------------------------------- traffic between fleets


def _ingress_rules(result) -> dict:
    rules = result.by_type(INGRESS)
    names = [r.name for r in rules]
    # One resource per rule: the same name twice is the same rule declared twice.
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    return {r.name: r for r in rules}


def test_each_fleet_admits_exactly_the_flows_its_peers_need_from_their_security_groups(plan):
    result = plan(STACK)
    rules = _ingress_rules(result)
    flows: dict[tuple[str, str], set[tuple[str, int]]] = {}
    for name, r in rules.items():
        short = name.removeprefix("tools-traffic-")
        if "nlb" in short or not name.startswith("tools-traffic-"):
            continue
        target, rest = short.split("-from-")
        source, protocol, port = rest.rsplit("-", 2)
        flows.setdefault((source, target), set()).add((protocol, int(port)))
        # Admitted by the sender's security group, never by an address range.
        assert r.inputs.get("referencedSecurityGroupId") and not r.inputs.get("cidrIpv4") and not r.inputs.get("cidrIpv6"), name
        assert (r.inputs["fromPort"], r.inputs["toPort"]) == (float(port), float(port)), name
    # What each tool needs of its peers, and nothing more, at upstream's default ports: memberlist
    # gossips over TCP and UDP on 7946 (dskit), ingesters are pushed to and queried over gRPC on
    # 9095 (Loki's and Tempo's default grpc_listen_port), never over HTTP; Grafana queries Loki
    # 3100, Tempo 3200 and Thanos Query 10902, Query asks the store gateway and Receive over the StoreAPI on 10901, Receive replicates
    # to its peers on 10901, and the monitoring fleet scrapes each tool's HTTP port.
    needed = {
        ("loki", "loki"): {("tcp", 7946), ("udp", 7946), ("tcp", 9095)},
        ("tempo", "tempo"): {("tcp", 7946), ("udp", 7946), ("tcp", 9095)},
        ("grafana", "loki"): {("tcp", 3100)},
        ("grafana", "tempo"): {("tcp", 3200)},
        ("grafana", "thanos-query"): {("tcp", 10902)},
        ("thanos-query", "thanos-store"): {("tcp", 10901)},
        ("thanos-query", "thanos-receive"): {("tcp", 10901)},
        ("thanos-receive", "thanos-receive"): {("tcp", 10901)},
        ("monitoring", "loki"): {("tcp", 3100)},
        ("monitoring", "tempo"): {("tcp", 3200)},
        ("monitoring", "thanos-receive"): {("tcp", 10902), ("tcp", 19291)},
        ("monitoring", "thanos-store"): {("tcp", 10902)},
        ("monitoring", "thanos-compact"): {("tcp", 10902)},
        ("monitoring", "thanos-query"): {("tcp", 10902)},
    }
    extra = {pair: ports - needed.get(pair, set()) for pair, ports in flows.items() if ports - needed.get(pair, set())}
    missing = {pair: ports - flows.get(pair, set()) for pair, ports in needed.items() if ports - flows.get(pair, set())}
    assert (missing, extra) == ({}, {})
    # Nothing reaches the compactor or the store gateway but the scrapes and Query.
    assert {source for source, target in flows if target in ("thanos-compact", "thanos-store")} == {"monitoring", "thanos-query"}


def test_the_load_balancer_reaches_each_fleet_on_its_listener_and_health_ports_once(plan):
    result = plan(STACK)
    rules = _ingress_rules(result)
    from_nlb: dict[str, list[int]] = {}
    for name, r in rules.items():
        if "-from-nlb-" in name:
            family = name.removeprefix("tools-traffic-").split("-from-nlb-")[0]
            from_nlb.setdefault(family, []).append(int(r.inputs["fromPort"]))
            assert r.inputs.get("referencedSecurityGroupId") and not r.inputs.get("cidrIpv4"), name
    # Loki pushes on 3100; Tempo takes OTLP on 4317/4318 and is health-checked on 3200; Grafana
    # on 3000; Receive takes remote write on 19291 and is health-checked on 10902. One rule per
    # port: AWS refuses a duplicate rule (InvalidPermission.Duplicate).
    assert {family: sorted(ports) for family, ports in from_nlb.items()} == {
        "loki": [3100], "tempo": [3200, 4317, 4318], "grafana": [3000], "thanos-receive": [10902, 19291]}


def test_every_fleet_can_reach_s3_and_the_aws_apis_and_the_load_balancer_only_its_targets(plan):
    result = plan(STACK)
    egress = result.by_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    groups = {r.urn: r.name for r in result.by_type("aws:ec2/securityGroup:SecurityGroup")}
    # The fleets' groups (the database's own group admits Grafana and sends nothing).
    fleets = {name for name in groups.values() if name.startswith("tools-traffic-") and not name.endswith("-nlb")}
    assert fleets == {f"tools-traffic-{f}" for f in ("grafana", "loki", "tempo", "monitoring", "thanos-compact", "thanos-query", "thanos-receive",
                                                     "thanos-store")}
    # An instance flushes to S3 and reads its secrets from AWS APIs through the VPC's NAT or
    # endpoints, whose addresses it cannot know: every fleet's group lets it out.
    open_out = [r for r in egress if r.inputs.get("cidrIpv4") == "0.0.0.0/0" and r.inputs["ipProtocol"] == "-1"]
    assert {r.name.removesuffix("-egress") for r in open_out} == fleets
    # The load balancer's group only reaches the fleets' groups, port by port.
    to_targets = [r for r in egress if r not in open_out]
    assert to_targets and all(r.inputs.get("referencedSecurityGroupId") and not r.inputs.get("cidrIpv4") for r in to_targets)


# ---------------------------------------------------------------- the monitoring instance's scrapes
# What the Prometheus on the monitoring instance scrapes, against what the other fleets declare:
# the Cloud Map service each fleet's agent registers in, the port each tool's own config or flags
# make it serve /metrics on, and the security group rules between the fleets. Expected values come
# from those declared resources and from upstream defaults, never from the scrape renderer.
PROMETHEUS_FILES = f"{userdata.FILES_DIR}/prometheus/etc/prometheus"


def _flag(args: list[str], flag: str, default: str | None = None) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{flag}=")]
    assert values or default is not None, (flag, args)
    return values[-1] if values else default


def _mounted(files: dict[str, str], service: dict, path: str) -> str:
    """The content of the file the user data writes for `path` inside the container."""
    (host,) = [v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == path]
    return files[host]


def _metrics_port(files: dict[str, str], name: str, service: dict) -> int | None:
    """The port a Compose service serves /metrics on, as its own config or flags set it; None
    for Grafana, which is not among the components Prometheus scrapes (docs/operations.md, "What
    is watched": Loki, Tempo, Prometheus itself, each Thanos component, Alertmanager, the
    bucket-freshness probes)."""
    args = service.get("command") or []
    if name in ("loki", "tempo"):
        # Loki and Tempo serve /metrics on their HTTP server: server.http_listen_port of the file
        # -config.file names.
        return yaml.safe_load(_mounted(files, service, _flag(args, "-config.file")))["server"]["http_listen_port"]
    if name.startswith("thanos-"):
        # Every Thanos component serves /metrics on its --http-address.
        return int(_flag(args, "--http-address").rsplit(":", 1)[1])
    if name == "prometheus":
        # prometheus/prometheus v3.14.0 cmd/prometheus/main.go: --web.listen-address defaults to 0.0.0.0:9090.
        return int(_flag(args, "--web.listen-address", "0.0.0.0:9090").rsplit(":", 1)[1])
    if name == "alertmanager":
        # prometheus/alertmanager v0.34.0 cmd/alertmanager/main.go: webflag.AddFlags(..., ":9093").
        return int(_flag(args, "--web.listen-address", ":9093").rsplit(":", 1)[1])
    if name.startswith("bucket-freshness-"):
        # probes/bucket_freshness.py serves on its config's "port" (9109 when unset).
        entrypoint = service["entrypoint"]
        return json.loads(_mounted(files, service, entrypoint[entrypoint.index("--config") + 1])).get("port", 9109)
    assert name == "grafana", f"{name}: say whether and where it serves metrics"
    return None


def _job(name: str) -> str:
    # One job per kind of component: Receive's slots and the probes of each bucket share theirs.
    for family in ("thanos-receive", "bucket-freshness"):
        if name.startswith(f"{family}-"):
            return family
    return name


def _fleets_as_declared(result) -> dict[str, dict]:
    """Fleet -> its Compose services, written files, security group and Cloud Map names."""
    (namespace,) = result.by_type("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace")
    # The mock engine's id of each Cloud Map service (tools/engine.py StrictMocks.new_resource):
    # the id a fleet's agent registers its instances under.
    services = {f"srv-{engine._fake_id(SERVICE, s.name)}": s.inputs for s in result.by_type(SERVICE)}
    out = {}
    for lt in result.by_type(LT):
        fleet = lt.name.removeprefix("tools-").removesuffix("-launch-template")
        files = written(user_data(result, fleet))
        agent = json.loads(files[userdata.AGENT_CONFIG])
        registered = [services[i] for i in agent["serviceIds"]]
        (interface,) = lt.inputs["networkInterfaces"]
        (group,) = interface["securityGroups"]
        out[fleet] = {
            "services": yaml.safe_load(files[f"{userdata.COMPOSE_DIR}/docker-compose.yml"])["services"],
            "files": files, "group": group,
            "names": [(f"{s['name']}.{namespace.inputs['name']}", [r["type"] for r in s["dnsConfig"]["dnsRecords"]]) for s in registered],
        }
    return out


def _scrapes(config: dict) -> dict[str, set[tuple]]:
    out: dict[str, set[tuple]] = {}
    for job in config["scrape_configs"]:
        found = out.setdefault(job["job_name"], set())
        found |= {("static", t) for s in job.get("static_configs", []) for t in s["targets"]}
        found |= {("dns", d["type"], n, d["port"]) for d in job.get("dns_sd_configs", []) for n in d["names"]}
    return out


def test_prometheus_scrapes_each_fleet_by_the_cloud_map_name_it_registers_in_and_the_port_its_tool_serves(plan):
    result = plan(STACK)
    fleets = _fleets_as_declared(result)
    expected: dict[str, set[tuple]] = {}
    for fleet, declared in fleets.items():
        for name, service in declared["services"].items():
            port = _metrics_port(declared["files"], name, service)
            if port is None:
                continue
            if declared["names"]:
                # Every instance of the fleet, as its A records in the service its agent registers in.
                for host, types in declared["names"]:
                    expected.setdefault(_job(name), set()).update(("dns", t, host, port) for t in types)
            else:
                # The monitoring instance's own containers: one Compose project on its own network,
                # where each is reached by its service name; Prometheus scrapes itself in its container.
                assert fleet == "monitoring" and "network_mode" not in service, (fleet, name)
                expected.setdefault(_job(name), set()).add(("static", f"{'localhost' if name == 'prometheus' else name}:{port}"))
    config = yaml.safe_load(fleets["monitoring"]["files"][f"{PROMETHEUS_FILES}/prometheus.yml"])
    assert _scrapes(config) == expected
    # Nine fleets in Cloud Map, all scraped but Grafana's; the probes and Alertmanager beside Prometheus.
    assert sum(len(f["names"]) for f in fleets.values()) == 9 and len(expected) == 9
    # The alert rules watch exactly these jobs: a renamed job would leave ObsStorageTargetDown and
    # ObsStorageTargetMissing looking at a job that no longer exists.
    rules = fleets["monitoring"]["files"][f"{PROMETHEUS_FILES}/rules/obs-storage.yml"]
    assert set(re.findall(r'job="([^"]+)"', rules)) == set(expected)


def test_prometheus_remote_writes_to_the_first_receive_slot_by_its_cloud_map_name_and_remote_write_port(plan):
    fleets = _fleets_as_declared(plan(STACK))
    config = yaml.safe_load(fleets["monitoring"]["files"][f"{PROMETHEUS_FILES}/prometheus.yml"])
    receive = fleets["thanos-receive-0"]
    ((host, _),) = receive["names"]
    port = int(_flag(receive["services"]["thanos-receive-0"]["command"], "--remote-write.address").rsplit(":", 1)[1])
    # docs/aws-ec2.md: Prometheus remote-writes to thanos-receive-0, which routes by the hashring;
    # Receive takes remote write on /api/v1/receive (thanos-io/thanos v0.42.4 docs/components/receive.md).
    assert [w["url"] for w in config["remote_write"]] == [f"http://{host}:{port}/api/v1/receive"]


def test_the_fleets_admit_the_monitoring_instance_on_exactly_the_ports_it_scrapes_and_writes_to(plan):
    result = plan(STACK)
    fleets = _fleets_as_declared(result)
    monitoring = fleets["monitoring"]["group"]
    config = yaml.safe_load(fleets["monitoring"]["files"][f"{PROMETHEUS_FILES}/prometheus.yml"])
    by_host = {host: f["group"] for f in fleets.values() for host, _ in f["names"]}
    needed: dict[str, set[int]] = {}
    for targets in _scrapes(config).values():
        for kind, *rest in targets:
            if kind == "dns":
                _, host, port = rest
                needed.setdefault(by_host[host], set()).add(port)
    for write in config["remote_write"]:
        host, port = write["url"].split("//")[1].split("/")[0].rsplit(":", 1)
        needed.setdefault(by_host[host], set()).add(int(port))
    admitted: dict[str, set[int]] = {}
    for r in result.by_type(INGRESS):
        if r.inputs.get("referencedSecurityGroupId") == monitoring:
            assert r.inputs["ipProtocol"] == "tcp" and r.inputs["fromPort"] == r.inputs["toPort"], r.name
            admitted.setdefault(r.inputs["securityGroupId"], set()).add(int(r.inputs["fromPort"]))
    # Every scrape and the remote-write get through, and the monitoring instance reaches nothing
    # else: a port opened for a scrape that does not exist is one more way in.
    assert admitted == needed


# ---------------------------------------------------------------- what platform.py hands each fleet
def test_only_grafana_gets_grafana_settings_and_only_address_readers_expand_their_config():
    cfg = load(ec2_raw())
    declared = {w.name: w for w in platform.declared_workloads(cfg, "obs-staging-ec2.internal")}
    # The monitoring fleet's names sort before "grafana" (alertmanager, bucket-freshness-*): a
    # name comparison that is not equality would hand them Grafana's database settings.
    assert {"alertmanager", "bucket-freshness-loki", "prometheus", "thanos-query"} <= set(declared)
    for name, w in declared.items():
        assert any(k.startswith("GF_") for k in w.env) == (name == "grafana"), name
        # -config.expand-env=true is a Loki and Tempo flag (their configs hold ${INSTANCE_IP});
        # Grafana, Prometheus, Alertmanager or Thanos given it would refuse to start.
        reads_address = any(userdata.ADDRESS_REF in f.content for f in w.files)
        assert (platform.EXPAND_ENV in w.args) == reads_address, name
    assert {n for n, w in declared.items() if platform.EXPAND_ENV in w.args} == {"loki", "tempo"}


def test_no_fleet_but_grafanas_gets_a_database_host(plan):
    result = plan(STACK)
    for lt in result.by_type(LT):
        fleet = lt.name.removeprefix("tools-").removesuffix("-launch-template")
        services = yaml.safe_load(written(user_data(result, fleet))[f"{userdata.COMPOSE_DIR}/docker-compose.yml"])["services"]
        for service_name, service in services.items():
            has_host = "GF_DATABASE_HOST" in (service.get("environment") or {})
            assert has_host == (service_name == "grafana"), (fleet, service_name)


def test_instance_policies_name_the_namespace_zone_and_this_accounts_groups(plan):
    result = plan(STACK)
    (namespace,) = result.by_type("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace")
    # tools/engine.py's mock gives a namespace the hosted zone "Z" + its fake id.
    zone = f"arn:aws:route53:::hostedzone/Z{engine._fake_id(namespace.name).upper()}"
    policies = {p.name: json.loads(p.inputs["policy"]) for p in result.by_type(ROLE_POLICY) if p.name.endswith("-instance")}
    assert len(policies) == 8
    for name, policy in policies.items():
        statements = {s["Sid"]: s for s in policy["Statement"]}
        if "OwnRecords" in statements:
            assert statements["OwnRecords"]["Resource"] == [zone] and statements["NamespaceZone"]["Resource"] == [zone], name
        for arn in statements["OwnLifecycleHook"]["Resource"]:
            assert arn.startswith(f"arn:aws:autoscaling:ap-northeast-2:{engine.ACCOUNT_ID}:autoScalingGroup:*:autoScalingGroupName/obs-staging-ec2-"), name


def test_the_grafana_agent_fetches_each_secret_from_the_secret_that_holds_it(plan):
    result = plan(STACK)
    (secret,) = result.by_type("aws:secretsmanager/secret:Secret")
    (cluster,) = result.by_type("aws:rds/cluster:Cluster")
    # The mocks' ARNs (tools/engine.py): a Secrets Manager secret's and the RDS-managed master secret's.
    grafana_arn = f"arn:aws:secretsmanager:ap-northeast-2:{engine.ACCOUNT_ID}:secret:{secret.name}-{engine._fake_id(secret.name)[:6]}"
    rds_arn = f"arn:aws:secretsmanager:ap-northeast-2:{engine.ACCOUNT_ID}:secret:rds!cluster-{engine._fake_id(cluster.name)}-abc123"
    agent = json.loads(written(user_data(result, "grafana"))[userdata.AGENT_CONFIG])
    assert [(s["key"], s["secretArn"]) for s in agent["secrets"]] == [("adminPassword", grafana_arn), ("secretKey", grafana_arn), ("password", rds_arn)]
    # The instance role may read exactly those two secrets.
    (policy,) = [json.loads(p.inputs["policy"]) for p in result.by_type(ROLE_POLICY) if p.name == "grafana-instance"]
    (own,) = [s for s in policy["Statement"] if s["Sid"] == "OwnSecrets"]
    assert own["Resource"] == sorted([grafana_arn, rds_arn])


def test_the_grafana_secret_holds_the_admin_password_and_the_secret_key_under_their_own_names(monkeypatch):
    # The plan shows the secret version as "[secret]"; the mock sees the value the provider would get.
    seen = {}
    new_resource = engine.StrictMocks.new_resource

    def recording(self, args):
        if args.typ == "aws:secretsmanager/secretVersion:SecretVersion":
            value = args.inputs["secretString"]
            # A secret input arrives wrapped as the engine's secret value ({<signature>, "value"}).
            seen[args.name] = value["value"] if isinstance(value, dict) else value
        return new_resource(self, args)

    monkeypatch.setattr(engine.StrictMocks, "new_resource", recording)
    engine.run(STACK)
    # The mocks' random results are "mock-<resource name>-<fake id>" (tools/engine.py).
    assert json.loads(seen["tools-grafana"]) == {
        "adminPassword": f"mock-tools-grafana-admin-password-{engine._fake_id('tools-grafana-admin-password')}",
        "secretKey": f"mock-tools-grafana-secret-key-{engine._fake_id('tools-grafana-secret-key')}",
    }
