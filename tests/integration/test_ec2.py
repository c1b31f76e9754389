"""The EC2 fleets of the staging-ec2 plan checked by the programs that will read them:
- every fleet's Compose file by Debian 12's `docker-compose config` (1.29.2, what the instances
  install; it needs no Docker engine), and every fleet's user data by Debian 12's
  `cloud-init schema` (22.4.2), both installed by .ci/install-ec2-validators;
- the instance agent's Cloud Map registration and deregistration, and Grafana's secret reads,
  as real calls to moto made with a role carrying the fleet's own instance policy.

What moto 5.2.5 cannot judge: it evaluates Cloud Map and Secrets Manager requests against the
resource "*" (moto/core/responses.py call_action: only services with `_determine_resource` name
the resource), so a statement scoped to a service or secret ARN never matches there although AWS
honours it; the calls below therefore use the fleet policy's actions on "*", and the ARNs the
policy names are checked by tests/integration/test_iam_actions.py (every action applies to its
resource) and tests/test_ec2.py (each fleet names only its own services and secrets). moto has no
Auto Scaling CompleteLifecycleAction; the drain order is tested with fakes in tests/test_ec2.py.
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from probes import ec2_agent as agent

FLEETS = ("loki", "tempo", "grafana", "thanos-query", "thanos-store", "thanos-compact", "thanos-receive-0", "monitoring")


def user_data(plan: dict, fleet: str) -> str:
    (lt,) = [r for r in plan["resources"] if r["type"] == "aws:ec2/launchTemplate:LaunchTemplate" and r["name"] == f"tools-{fleet}-launch-template"]
    return gzip.decompress(base64.b64decode(lt["inputs"]["userData"])).decode()


def compose_text(document: str) -> str:
    (content,) = [f["content"] for f in yaml.safe_load(document)["write_files"] if f["path"].endswith("/docker-compose.yml")]
    return content


def compose_config(directory: Path, text: str, env: str | None) -> subprocess.CompletedProcess:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "docker-compose.yml").write_text(text)
    if env is not None:
        (directory / ".env").write_text(env)
    return subprocess.run(["docker-compose", "--project-directory", str(directory), "-f", str(directory / "docker-compose.yml"), "config", "-q"],
                          capture_output=True, text=True, timeout=60)


def cloud_init_schema(path: Path, text: str) -> subprocess.CompletedProcess:
    path.write_text(text)
    return subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("fleet", FLEETS)
def test_every_fleets_compose_file_passes_docker_compose_config(plan_json, tmp_path, fleet):
    proc = compose_config(tmp_path / fleet, compose_text(user_data(plan_json("staging-ec2"), fleet)), "INSTANCE_IP=10.0.1.23\n")
    assert proc.returncode == 0, proc.stderr


def test_docker_compose_refuses_what_the_fleets_must_not_ship(plan_json, tmp_path):
    text = compose_text(user_data(plan_json("staging-ec2"), "loki"))
    # Without the agent's .env the instance address is missing: Compose refuses to start Loki.
    proc = compose_config(tmp_path / "no-env", text, None)
    assert proc.returncode != 0 and "INSTANCE_IP" in proc.stderr, proc.stderr
    broken = yaml.safe_load(text)
    broken["services"]["loki"]["stop_grace"] = "90s"
    proc = compose_config(tmp_path / "bad-key", yaml.safe_dump(broken), "INSTANCE_IP=10.0.1.23\n")
    assert proc.returncode != 0 and "stop_grace" in proc.stderr, proc.stderr


@pytest.mark.parametrize("fleet", FLEETS)
def test_every_fleets_user_data_passes_cloud_init_schema(plan_json, tmp_path, fleet):
    proc = cloud_init_schema(tmp_path / "user-data", user_data(plan_json("staging-ec2"), fleet))
    assert proc.returncode == 0 and "Valid cloud-config" in proc.stdout, proc.stdout + proc.stderr


def test_cloud_init_schema_refuses_a_broken_write_files_entry(plan_json, tmp_path):
    document = yaml.safe_load(user_data(plan_json("staging-ec2"), "loki"))
    document["write_files"][0]["mode"] = "0444"  # cloud-init calls it `permissions`
    proc = cloud_init_schema(tmp_path / "user-data", "#cloud-config\n" + yaml.safe_dump(document))
    assert proc.returncode != 0 and "write_files.0" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# ---------------------------------------------------------------- moto: the agent's calls
def _instance_policy(plan: dict, family: str) -> dict:
    (policy,) = [r for r in plan["resources"] if r["type"] == "aws:iam/rolePolicy:RolePolicy" and r["name"] == f"{family}-instance"]
    return json.loads(policy["inputs"]["policy"])


def _on_anything(document: dict, prefixes: tuple[str, ...]) -> dict:
    """The statements whose actions start with `prefixes`, on "*" and without conditions (module docstring)."""
    statements = []
    for st in document["Statement"]:
        actions = [a for a in st["Action"] if a.startswith(prefixes)]
        if actions:
            statements.append({"Effect": st["Effect"], "Action": actions, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def _session(moto, name: str, document: dict):
    """A boto3 session with the credentials of a role carrying `document`, opened while moto
    still lets everyone in."""
    import boto3

    iam = moto.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    c = moto.client("sts").assume_role(RoleArn=arn, RoleSessionName="instance")["Credentials"]
    return boto3.session.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"],
                                 region_name=moto.region)


def _client(moto, session, service: str):
    return session.client(service, endpoint_url=moto.endpoint, verify=moto.ca_bundle)


@pytest.mark.real_server
def test_an_instance_registers_and_deregisters_itself_with_its_fleets_policy(moto, moto_server, plan_json):
    plan = plan_json("staging-ec2")
    sd = moto.client("servicediscovery")
    operation = sd.create_private_dns_namespace(Name="obs-staging-ec2.internal", Vpc="vpc-0a1b2c3d4e5f60718")["OperationId"]
    namespace = sd.get_operation(OperationId=operation)["Operation"]["Targets"]["NAMESPACE"]
    service = sd.create_service(Name="loki", NamespaceId=namespace, DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}]})["Service"]["Id"]
    fleet = _session(moto, "loki-instance", _on_anything(_instance_policy(plan, "loki"), ("servicediscovery:",)))
    bucket_only = _session(moto, "bucket-only", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]})
    moto_server.post("/moto-api/reset-auth", b"0")  # from here on moto evaluates every request's policies

    client = _client(moto, fleet, "servicediscovery")
    assert len(agent.register(client, [service], "i-0123456789abcdef0", "10.0.1.23")) == 1
    moto_server.post("/moto-api/reset-auth", b"inf")
    listed = sd.list_instances(ServiceId=service)["Instances"]
    assert [(i["Id"], i["Attributes"]["AWS_INSTANCE_IPV4"]) for i in listed] == [("i-0123456789abcdef0", "10.0.1.23")]
    moto_server.post("/moto-api/reset-auth", b"0")
    agent.deregister(client, [service], "i-0123456789abcdef0")
    # A second drain (the agent restarted) finds nothing to remove and does not fail.
    agent.deregister(client, [service], "i-0123456789abcdef0")
    with pytest.raises(ClientError) as denied:
        agent.register(_client(moto, bucket_only, "servicediscovery"), [service], "i-0fedcba9876543210", "10.0.1.24")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, denied.value.response
    assert "is not authorized to perform" in str(denied.value), denied.value
    moto_server.post("/moto-api/reset-auth", b"inf")
    assert sd.list_instances(ServiceId=service)["Instances"] == []


@pytest.mark.real_server
def test_grafana_reads_its_secrets_with_its_fleets_policy_and_loki_cannot(moto, moto_server, plan_json):
    plan = plan_json("staging-ec2")
    sm = moto.client("secretsmanager")
    app = sm.create_secret(Name="grafana", SecretString=json.dumps({"adminPassword": "a" * 32, "secretKey": "k" * 40}))["ARN"]
    db = sm.create_secret(Name="rds-db", SecretString=json.dumps({"username": "grafana", "password": "p" * 20}))["ARN"]
    grafana = _session(moto, "grafana-instance", _on_anything(_instance_policy(plan, "grafana"), ("secretsmanager:",)))
    loki = _session(moto, "loki-instance", _on_anything(_instance_policy(plan, "loki"), ("secretsmanager:", "servicediscovery:")))
    moto_server.post("/moto-api/reset-auth", b"0")
    wanted = [{"path": "/run/a", "secretArn": app, "key": "adminPassword", "uid": 472}, {"path": "/run/d", "secretArn": db, "key": "password", "uid": 472}]
    assert agent.fetch_secrets(_client(moto, grafana, "secretsmanager"), wanted) == {"/run/a": "a" * 32, "/run/d": "p" * 20}
    with pytest.raises(ClientError) as denied:
        agent.fetch_secrets(_client(moto, loki, "secretsmanager"), wanted)
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403, denied.value.response
    assert "is not authorized to perform" in str(denied.value), denied.value


# ---------------------------------------------------------------- moto: the fleets as planned, verified
def _by_type(plan: dict, typ: str) -> list[dict]:
    return [r for r in plan["resources"] if r["type"] == typ]


def _apply_fleets(moto, plan: dict) -> dict[str, str]:
    """The plan's load balancer, target groups, listeners, Cloud Map services and Auto Scaling
    groups created in moto from their planned inputs (in a VPC of moto's own: the stack's ids do
    not exist there); every group's instances registered as the agent registers them. Returns
    planned id or ARN -> moto's."""
    ec2, elb, asg, sd = (moto.client(s) for s in ("ec2", "elbv2", "autoscaling", "servicediscovery"))
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = ["ap-northeast-2a", "ap-northeast-2b", "ap-northeast-2c"]  # Pulumi.staging-ec2.yaml's aws.ec2.subnets
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"] for i, z in enumerate(zones)]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (nlb,) = _by_type(plan, "aws:lb/loadBalancer:LoadBalancer")
    balancer = elb.create_load_balancer(Name="obs-nlb", Subnets=subnets, Type=nlb["inputs"]["loadBalancerType"],
                                        Scheme="internal" if nlb["inputs"]["internal"] else "internet-facing")["LoadBalancers"][0]["LoadBalancerArn"]
    mapping: dict[str, str] = {}
    planned_tg = {}
    for tg in _by_type(plan, "aws:lb/targetGroup:TargetGroup"):
        i, check = tg["inputs"], tg["inputs"]["healthCheck"]
        created = elb.create_target_group(Name=tg["name"][-32:], Protocol=i["protocol"], Port=int(i["port"]), VpcId=vpc, TargetType=i["targetType"],
                                          HealthCheckProtocol=check["protocol"], HealthCheckPort=check["port"], HealthCheckPath=check["path"],
                                          Matcher={"HttpCode": check["matcher"]})["TargetGroups"][0]["TargetGroupArn"]
        planned_tg[tg["urn"]] = created
    for listener in _by_type(plan, "aws:lb/listener:Listener"):
        i = listener["inputs"]
        (tg_urn,) = [u for u in listener["dependsOn"] if u in planned_tg]
        elb.create_listener(LoadBalancerArn=balancer, Protocol=i["protocol"], Port=int(i["port"]), DefaultActions=[{"Type": "forward", "TargetGroupArn": planned_tg[tg_urn]}])
    for tg in _by_type(plan, "aws:lb/targetGroup:TargetGroup"):
        mapping[f"targetgroup/{tg['name'][:32]}/"] = planned_tg[tg["urn"]]
    operation = sd.create_private_dns_namespace(Name=plan["outputs"]["namespace"], Vpc=vpc)["OperationId"]
    namespace = sd.get_operation(OperationId=operation)["Operation"]["Targets"]["NAMESPACE"]
    services = {}
    for service in _by_type(plan, "aws:servicediscovery/service:Service"):
        dns = service["inputs"]["dnsConfig"]
        services[service["inputs"]["name"]] = sd.create_service(
            Name=service["inputs"]["name"], NamespaceId=namespace,
            DnsConfig={"RoutingPolicy": dns["routingPolicy"], "DnsRecords": [{"Type": r["type"], "TTL": int(r["ttl"])} for r in dns["dnsRecords"]]})["Service"]["Id"]
    groups = {g["inputs"]["name"]: g for g in _by_type(plan, "aws:autoscaling/group:Group")}
    for fleet, out in plan["outputs"]["fleets"].items():
        i = groups[out["group"]]["inputs"]
        template = ec2.create_launch_template(LaunchTemplateName=out["group"], LaunchTemplateData={"ImageId": image, "InstanceType": "m7i.large"})["LaunchTemplate"]
        targets = [next(v for k, v in mapping.items() if k in arn) for arn in out["targetGroups"]]
        asg.create_auto_scaling_group(AutoScalingGroupName=out["group"], MinSize=int(i["minSize"]), MaxSize=int(i["maxSize"]), DesiredCapacity=int(i["desiredCapacity"]),
                                      VPCZoneIdentifier=",".join(subnets), LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
                                      TargetGroupARNs=targets, HealthCheckType=i["healthCheckType"], HealthCheckGracePeriod=int(i["healthCheckGracePeriod"]))
        if "serviceId" in out:
            mapping[out["serviceId"]] = services[fleet]
            instances = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[out["group"]])["AutoScalingGroups"][0]["Instances"]
            for instance in instances:
                (reservation,) = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"]
                agent.register(sd, [services[fleet]], instance["InstanceId"], reservation["Instances"][0]["PrivateIpAddress"])
    return mapping


def _fleet_lines(result: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"PASS": [], "FAIL": []}
    for r in result["results"]:
        if r["status"] in out and r["part"] == "tools":
            out[r["status"]].append(f"{r['subject']}: {r['detail']}")
    return out


@pytest.mark.real_server
def test_tools_verify_compares_each_fleet_with_its_cloud_map_service_and_target_groups(moto, plan_json, tmp_path):
    from tests.integration.conftest import run_verify

    plan = plan_json("staging-ec2")
    mapping = _apply_fleets(moto, plan)
    outputs = json.loads(json.dumps(plan["outputs"]))
    for fleet in outputs["fleets"].values():
        if "serviceId" in fleet:
            fleet["serviceId"] = mapping[fleet["serviceId"]]
        fleet["targetGroups"] = [next(v for k, v in mapping.items() if k in arn) for arn in fleet["targetGroups"]]
    # The plan holds a placeholder for the Grafana password, which tools.verify refuses as it would
    # refuse outputs read without --show-secrets; without it, only Grafana's datasource check skips.
    del outputs["grafanaAdminPassword"]
    code, result, stderr = run_verify(outputs, tmp_path, "staging-ec2", "tools")
    lines = _fleet_lines(result)
    assert lines["FAIL"] == [], lines["FAIL"]
    assert "loki: 3 healthy InService instance(s)" in lines["PASS"] and "loki: Cloud Map loki.obs-staging-ec2.internal lists exactly the healthy instances" in lines["PASS"]
    assert "thanos-receive-1: Cloud Map thanos-receive-1.obs-staging-ec2.internal records carry the instances' private addresses" in lines["PASS"]
    assert sum(1 for line in lines["PASS"] if line.endswith("all healthy")) == 6  # every listener's target group

    # An instance gone from Cloud Map (or never registered) is a failure, named.
    sd = moto.client("servicediscovery")
    service = outputs["fleets"]["tempo"]["serviceId"]
    gone = sd.list_instances(ServiceId=service)["Instances"][0]["Id"]
    agent.deregister(sd, [service], gone)
    code, result, stderr = run_verify(outputs, tmp_path, "staging-ec2", "tools")
    failed = _fleet_lines(result)["FAIL"]
    assert code == 1 and len(failed) == 1 and failed[0].startswith("tempo: Cloud Map tempo.obs-staging-ec2.internal lists exactly the healthy instances: registered [") and gone in failed[0], failed


@pytest.mark.real_server
def test_tools_verify_reads_the_fleet_roles_back(moto, plan_json, tmp_path):
    """The staging-ec2 plan's buckets, roles and role policies applied to moto: each fleet role's
    trust is EC2's alone and its policies read back as its bucket grant plus its own instance
    actions (tools/verify/identity.py); moto's known limits (tests/integration/test_moto.py) are
    the only failures."""
    from tests.integration import adapter
    from tests.integration.conftest import run_verify
    from tests.integration.test_moto import MOTO_LIMITS

    plan = plan_json("staging-ec2")
    adapter.apply_aws(plan, moto.client("s3"), moto.client("iam"))
    code, result, stderr = run_verify(plan["outputs"], tmp_path, "staging-ec2", "identity")
    passed = [f"{r['subject']}: {r['detail']}" for r in result["results"] if r["status"] == "PASS"]
    failed = [f"{r['subject']}: {r['detail']}" for r in result["results"] if r["status"] == "FAIL"]
    assert [f for f in failed if not any(p.match(f) for p in MOTO_LIMITS)] == []
    for role in ("loki", "tempo", "thanos-compact", "thanos-store", "thanos-receive"):
        assert f"{role}: trust: EC2 instances only (ec2.amazonaws.com, sts:AssumeRole, no other principal)" in passed, role
        assert any(p.startswith(f"{role}: role policy reads back as ") for p in passed), role

    # A role the whole account may assume is refused by the same check.
    iam = moto.client("iam")
    iam.update_assume_role_policy(RoleName="obs-staging-ec2-loki", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}))
    code, result, stderr = run_verify(plan["outputs"], tmp_path, "staging-ec2", "identity")
    assert any(r["status"] == "FAIL" and r["subject"] == "loki" and r["detail"].startswith("trust: EC2 instances only") for r in result["results"])
