"""Thanos across clusters: a hub owns the bucket and the one compactor, spokes upload into it.

Spokes are planned against their hub's real plan outputs: the engine plans the hub's stack file
first and answers the spoke's StackReference with those outputs. Hub outputs that a test alters
(another region, a spoke it does not list) start from the hub's real outputs too.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.core import config, loading, thanos_topology
from components.core.renderers import thanos as thanos_renderer
from policies import offline, rules
from tools import engine

ROOT = Path(__file__).resolve().parent.parent
HUB = "organization/obs-storage/staging"
LOCAL_HUB = "organization/obs-storage/local"
CHART = "kubernetes:helm.sh/v4:Chart"
CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def stack_file(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def load(stack: str, **thanos: Any) -> config.StackConfig:
    """The committed stack's config, with tools.thanos fields replaced (None removes one)."""
    raw, secret = engine.stack_config(stack)
    tools = json.loads(raw["obs-storage:tools"])
    for key, value in thanos.items():
        if value is None:
            tools["thanos"].pop(key, None)
        else:
            tools["thanos"][key] = value
    raw["obs-storage:tools"] = json.dumps(tools)
    return loading.load(stack, raw, set(secret))


def error_of(stack: str, **thanos: Any) -> config.ConfigError:
    with pytest.raises(config.ConfigError) as info:
        load(stack, **thanos)
    assert "\n" not in str(info.value) and "Fix: " in str(info.value), str(info.value)
    return info.value


def hub_outputs(stack: str = "staging") -> dict[str, Any]:
    return copy.deepcopy(engine.run(stack).outputs)


def thanos_tools(stack: str, **thanos: Any) -> dict[str, Any]:
    tools = stack_file(stack)["obs-storage:tools"]
    tools["thanos"] = {**tools["thanos"], **thanos}
    return {"obs-storage:tools": tools}


# ---------------------------------------------------------------- the config alone
def test_committed_hub_and_spokes_validate_with_their_roles():
    roles = {s: load(s).tools.thanos for s in ("local", "local-spoke", "staging", "staging-batch", "staging-us")}
    assert {s: t.role for s, t in roles.items()} == {
        "local": "hub", "local-spoke": "spoke", "staging": "hub", "staging-batch": "spoke", "staging-us": "spoke"}
    # The cluster label defaults to the stack name: unique because stack names are.
    assert {s: t.cluster_label for s, t in roles.items()} == {s: s for s in roles}
    assert roles["staging-batch"].hub == HUB and roles["local-spoke"].hub == LOCAL_HUB


def test_spoke_without_hub_reference_is_refused():
    err = error_of("staging-batch", hub=None)
    assert err.key == "tools.thanos.hub" and "required for a spoke" in err.problem
    assert "pulumi config set --stack staging-batch --path 'obs-storage:tools.thanos.hub'" in err.fix


@pytest.mark.parametrize("name", ["staging", "obs-storage/staging", "org/obs-storage/staging/x", "org//staging"])
def test_hub_reference_must_be_fully_qualified(name):
    err = error_of("staging-batch", hub=name)
    assert err.key == "tools.thanos.hub" and err.value == name and "fully qualified" in err.problem


def test_spoke_naming_itself_as_hub_is_refused():
    err = error_of("staging-batch", hub="organization/obs-storage/staging-batch")
    assert err.key == "tools.thanos.hub" and "itself" in err.problem


@pytest.mark.parametrize("key,value,why", [
    # A spoke that would configure a compactor: only the hub runs the bucket's one compactor.
    ("retention", {"rawDays": 7}, "compactor"),
    ("deleteDelayHours", 24, "compactor"),
    # A spoke that would copy the hub's bucket into its own config.
    ("bucket", "acme-staging-thanos", "stack outputs"),
    ("prefix", "metrics/", "stack outputs"),
    ("expireAfterDays", 400, "owns the bucket"),
    ("transitions", [{"days": 60, "storageClass": "GLACIER_IR"}], "owns the bucket"),
    ("receiveReplicationFactor", 3, "Receive runs on the hub"),
    ("spokes", [{"stack": "organization/obs-storage/x", "clusterLabel": "x"}], "only a hub"),
])
def test_spoke_refuses_what_belongs_to_the_hub(key, value, why):
    err = error_of("staging-batch", **{key: value})
    assert err.key == f"tools.thanos.{key}" and "is set on a spoke" in err.problem and why in err.problem
    assert f"remove tools.thanos.{key} from the spoke" in err.fix


def test_hub_only_value_on_a_spoke_is_shown_as_written_in_the_stack_file():
    # camelCase keys, as the user writes them, with the defaults the model filled in.
    assert error_of("staging-batch", retention={"rawDays": 7}).value == {"rawDays": 7, "fiveMinuteDays": 90, "oneHourDays": 365}
    spoke = {"stack": "organization/obs-storage/x", "clusterLabel": "x"}
    assert error_of("staging-batch", spokes=[spoke]).value == [{**spoke, "sidecarEndpoint": None, "account": None}]


SPOKE = {"stack": "organization/obs-storage/edge", "clusterLabel": "edge"}


def test_spoke_entry_needs_only_its_stack_and_label():
    (spoke,) = load("staging", spokes=[SPOKE]).tools.thanos.spokes
    assert (spoke.sidecar_endpoint, spoke.account) == (None, None)
    (spoke,) = load("staging", spokes=[{**SPOKE, "sidecarEndpoint": "edge-sidecar.internal:10901", "account": "210987654321"}]).tools.thanos.spokes
    assert (spoke.sidecar_endpoint, spoke.account) == ("edge-sidecar.internal:10901", "210987654321")


@pytest.mark.parametrize("key, value, problem", [
    ("sidecarEndpoint", "edge-sidecar.internal", "is not host:port"),
    ("sidecarEndpoint", "grpc://edge:10901", "is not host:port"),
    ("sidecarEndpoint", "edge:port", "is not host:port"),
    ("account", "21098765432", "is not a 12-digit AWS account id"),
    ("account", "arn:aws:iam::210987654321:root", "is not a 12-digit AWS account id"),
])
def test_spoke_entry_formats_are_checked(key, value, problem):
    err = error_of("staging", spokes=[{**SPOKE, key: value}])
    assert (err.key, err.value, err.problem) == (f"tools.thanos.spokes[0].{key}", value, problem)


def test_a_spoke_owns_its_own_loki_and_tempo_buckets_but_not_the_hubs():
    raw, secret = engine.stack_config("staging-batch")
    tools = json.loads(raw["obs-storage:tools"])
    tools["loki"], tools["tempo"] = {"bucket": "acme-batch-loki"}, {"bucket": "acme-batch-tempo"}
    raw["obs-storage:tools"] = json.dumps(tools)
    assert list(loading.load("staging-batch", raw, set(secret)).tools.owned()) == ["loki", "tempo"]
    assert list(load("staging").tools.owned()) == ["loki", "tempo", "thanos"]


def test_hub_naming_a_hub_is_refused():
    err = error_of("staging", hub=HUB)
    assert err.key == "tools.thanos.hub" and "tools.thanos.role" in err.problem and "spoke" in err.fix


def test_cross_region_is_a_spoke_setting():
    err = error_of("staging", crossRegion=True)
    assert (err.key, err.value, err.problem) == ("tools.thanos.crossRegion", True, "is a spoke setting")


def test_hub_needs_a_bucket_and_a_disabled_tool_does_not():
    err = error_of("staging", bucket=None)
    assert err.key == "tools.thanos.bucket" and "required for a hub" in err.problem and "role to spoke" in err.fix
    # The spokes' stack files name no Loki or Tempo bucket: those tools are off there.
    assert load("staging-batch").tools.loki.bucket is None


@pytest.mark.parametrize("stack", ["staging", "staging-batch"])
def test_empty_cluster_label_is_refused(stack):
    err = error_of(stack, clusterLabel="")
    assert err.key == "tools.thanos.clusterLabel" and "empty" in err.problem


def test_hub_refuses_two_spokes_with_one_label():
    spokes = [{"stack": "organization/obs-storage/a", "clusterLabel": "eu"}, {"stack": "organization/obs-storage/b", "clusterLabel": "eu"}]
    err = error_of("staging", spokes=spokes)
    assert err.key == "tools.thanos.spokes[1].clusterLabel" and err.value == "eu" and "spokes[0]" in err.problem


def test_hub_refuses_a_spoke_with_its_own_label():
    # The hub's label defaults to its stack name, staging.
    err = error_of("staging", spokes=[{"stack": "organization/obs-storage/a", "clusterLabel": "staging"}])
    assert err.key == "tools.thanos.spokes[0].clusterLabel" and "hub's own cluster label" in err.problem


def test_hub_refuses_a_spoke_listed_twice_or_itself():
    twice = [{"stack": "organization/obs-storage/a", "clusterLabel": "a"}, {"stack": "organization/obs-storage/a", "clusterLabel": "b"}]
    assert error_of("staging", spokes=twice).key == "tools.thanos.spokes[1].stack"
    itself = [{"stack": HUB, "clusterLabel": "other"}]
    assert error_of("staging", spokes=itself).key == "tools.thanos.spokes[0].stack"


def test_spoke_account_only_on_aws():
    err = error_of("prod", spokes=[{"stack": "organization/obs-storage/edge", "clusterLabel": "edge", "account": "210987654321"}])
    assert err.key == "tools.thanos.spokes[0].account" and "hetzner" in err.problem


# ---------------------------------------------------------------- the spoke's checks of its hub
def check(spoke: str, hub_out: Any, spoke_out: Any = None, **thanos: Any) -> thanos_topology.HubBucket:
    return thanos_topology.check_hub(load(spoke, **thanos), spoke, f"organization/obs-storage/{spoke}", hub_out, spoke_out)


def check_error(spoke: str, hub_out: Any, spoke_out: Any = None, **thanos: Any) -> config.ConfigError:
    with pytest.raises(config.ConfigError) as info:
        check(spoke, hub_out, spoke_out, **thanos)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"stack '{spoke}': obs-storage:{info.value.key} = ") and "Fix: " in message, message
    return info.value


def test_real_hub_outputs_pass_the_spokes_checks():
    hub = hub_outputs()["thanosHub"]
    found = check("staging-batch", hub)
    assert (found.bucket, found.region, found.arn) == ("acme-staging-thanos", "ap-northeast-2", "arn:aws:s3:::acme-staging-thanos")
    assert check("staging-us", hub).region == "ap-northeast-2"


def test_hub_reference_to_a_stack_that_is_no_hub():
    err = check_error("staging-batch", None)
    assert err.key == "tools.thanos.hub" and "not a Thanos hub" in err.problem and "pulumi up" in err.fix
    spoke = engine.run("staging-us").outputs["thanosSpoke"]
    err = check_error("staging-batch", None, spoke)
    assert "is itself a spoke (of organization/obs-storage/staging)" in err.problem


def test_hub_output_of_an_older_version_is_refused():
    hub = hub_outputs()["thanosHub"]
    del hub["spokes"]
    assert "without spokes" in check_error("staging-batch", hub).problem


def test_spoke_on_another_target_than_its_hub():
    hub = hub_outputs("prod")["thanosHub"]
    err = check_error("staging-batch", hub)
    assert err.key == "tools.thanos.hub" and "target hetzner" in err.problem


def test_spoke_on_local_refuses_a_hub_on_aws():
    hub = hub_outputs()["thanosHub"]
    err = check_error("local-spoke", hub)
    assert (err.key, err.problem) == ("tools.thanos.hub", "is a hub on target aws, this spoke is on local")


def test_hub_output_that_says_spoke_is_refused():
    hub = {**hub_outputs()["thanosHub"], "role": "spoke"}
    assert check_error("staging-batch", hub).problem == "exports a thanosHub output without role hub"


def test_remote_write_spoke_of_a_receive_hub_without_url():
    hub = {**hub_outputs()["thanosHub"], "mode": "receive"}
    hub.pop("receiveUrl", None)
    err = check_error("staging-batch", hub, mode="receive")
    assert err.problem == "remote-writes to the hub, but organization/obs-storage/staging exports no Receive URL"


def test_hub_bucket_as_the_spokes_tools_reach_it():
    aws = thanos_topology.HubBucket.from_output(HUB, hub_outputs()["thanosHub"]).object_store()
    # On AWS the SDK derives the regional endpoint; elsewhere the hub's endpoint, as a generic S3 store.
    assert (aws.endpoint, aws.s3_compatible, aws.region) == (None, False, "ap-northeast-2")
    prod = hub_outputs("prod")["thanosHub"]
    hetzner = thanos_topology.HubBucket.from_output("organization/obs-storage/prod", prod).object_store()
    assert (hetzner.endpoint, hetzner.s3_compatible) == (prod["endpoint"], True)


def test_hub_output_carries_the_kms_key_only_when_one_is_set():
    from types import SimpleNamespace

    from tests.conftest import aws_config

    key = "arn:aws:kms:ap-northeast-2:123456789012:key/11111111-2222-3333-4444-555555555555"
    bucket = SimpleNamespace(bucket_name="acme-thanos", arn="arn:aws:s3:::acme-thanos")
    raw = aws_config()
    assert "kmsKeyArn" not in thanos_topology.hub_output(loading.load("staging", raw, set()), bucket)
    raw["obs-storage:storage"] = json.dumps({"region": "ap-northeast-2", "kmsKeyArn": key})
    assert thanos_topology.hub_output(loading.load("staging", raw, set()), bucket)["kmsKeyArn"] == key


def test_spoke_in_another_region_must_say_so():
    hub = hub_outputs()["thanosHub"]
    err = check_error("staging-us", hub, crossRegion=None)
    assert err.key == "storage.region" and err.value == "us-east-1" and "ap-northeast-2" in err.problem
    assert "tools.thanos.crossRegion" in err.fix and "billed" in err.problem


def test_spoke_the_hub_does_not_list_is_refused():
    hub = hub_outputs()["thanosHub"]
    hub["spokes"] = [s for s in hub["spokes"] if s["clusterLabel"] != "staging-batch"]
    err = check_error("staging-batch", hub)
    assert err.key == "tools.thanos.hub" and "does not list this stack" in err.problem
    assert "organization/obs-storage/staging-batch" in err.fix and "tools.thanos.spokes" in err.fix


def test_spoke_label_must_be_the_one_its_hub_lists():
    hub = hub_outputs()["thanosHub"]
    for label in ("batch", "zz-batch"):  # sorting before and after the listed one
        err = check_error("staging-batch", hub, clusterLabel=label)
        assert (err.key, err.value) == ("tools.thanos.clusterLabel", label) and "(staging-batch)" in err.problem


def test_spoke_label_equal_to_the_hubs_is_refused():
    hub = hub_outputs()["thanosHub"]
    # A hub deployed before its list was checked: it lists the spoke with the hub's own label.
    hub["spokes"] = [{"stack": "organization/obs-storage/staging-batch", "clusterLabel": "staging"}]
    err = check_error("staging-batch", hub, clusterLabel="staging")
    assert err.key == "tools.thanos.clusterLabel" and "hub's own cluster label" in err.problem


def test_remote_write_spoke_needs_the_hubs_receive_url():
    hub = hub_outputs()["thanosHub"]
    err = check_error("staging-batch", hub, mode="receive")
    assert err.key == "tools.thanos.mode" and "runs no Receive" in err.problem and "receiveUrl" in err.fix


def test_bad_hub_stops_the_program_before_any_resource_but_the_reference(tmp_path):
    hub = hub_outputs()
    hub["thanosHub"]["region"] = "eu-west-1"
    declared: list[str] = []
    with pytest.raises(pulumi.RunError) as info:
        _run_recording("staging-batch", {HUB: hub}, declared)
    assert str(info.value).startswith("stack 'staging-batch': obs-storage:storage.region = \"ap-northeast-2\" differs")
    assert declared == ["pulumi:pulumi:StackReference"]


def _run_recording(stack: str, outputs: dict, declared: list[str]) -> None:
    """engine.run, noting the type of every registration and read as the monitor sees it."""
    original_register, original_read = engine.RecordingMonitor.RegisterResource, engine.RecordingMonitor.ReadResource

    def register(self, request):
        if request.type != "pulumi:pulumi:Stack":
            declared.append(request.type)
        return original_register(self, request)

    def read(self, request):
        declared.append(request.type)
        return original_read(self, request)

    engine.RecordingMonitor.RegisterResource, engine.RecordingMonitor.ReadResource = register, read
    try:
        engine.run(stack, stack_outputs=outputs)
    finally:
        engine.RecordingMonitor.RegisterResource, engine.RecordingMonitor.ReadResource = original_register, original_read


# ---------------------------------------------------------------- a hub and two spokes, planned
@pytest.fixture(scope="module")
def staging():
    return {s: engine.run(s) for s in ("staging", "staging-batch", "staging-us")}


def test_spokes_read_the_hub_with_a_stack_reference(staging):
    for spoke in ("staging-batch", "staging-us"):
        (ref,) = staging[spoke].by_type("pulumi:pulumi:StackReference")
        assert ref.inputs["name"] == HUB
        assert staging[spoke].outputs["thanosSpoke"]["bucket"] == staging["staging"].outputs["thanosHub"]["bucket"]
    # Offline, that reference answers with the hub's real plan outputs.
    assert engine.referenced_stack_outputs(HUB) == staging["staging"].outputs


def test_reference_to_a_stack_without_a_plan_fails_the_run():
    with pytest.raises(engine.StrictMockError, match="no outputs of that stack"):
        engine.run("staging-batch", stack_outputs={})


def test_hub_exports_what_spokes_need(staging):
    hub = staging["staging"].outputs["thanosHub"]
    assert hub["role"] == "hub" and hub["bucket"] == "acme-staging-thanos" and hub["arn"] == "arn:aws:s3:::acme-staging-thanos"
    assert (hub["region"], hub["endpoint"], hub["target"], hub["clusterLabel"]) == ("ap-northeast-2", "s3.ap-northeast-2.amazonaws.com", "aws", "staging")
    assert {s["stack"]: s["clusterLabel"] for s in hub["spokes"]} == {
        "organization/obs-storage/staging-batch": "staging-batch", "organization/obs-storage/staging-us": "staging-us"}


def test_spokes_declare_no_bucket_store_query_or_compactor(staging):
    for spoke in ("staging-batch", "staging-us"):
        result = staging[spoke]
        assert not [r for r in result.resources if r.type in rules.AWS_BUCKETS], spoke
        names = {r.inputs["metadata"]["name"] for r in result.resources if r.type.startswith("kubernetes:apps/")}
        assert not names & {"thanos-store", "thanos-query", "thanos-compact"}, spoke
        assert result.outputs["buckets"] == {}
    hub_names = {r.inputs["metadata"]["name"] for r in staging["staging"].by_type(DEPLOYMENT)}
    assert {"thanos-store", "thanos-query", "thanos-compact"} <= hub_names


def _role_policy(result, sa: str) -> dict:
    (policy,) = [r for r in result.by_type("aws:iam/rolePolicy:RolePolicy") if r.name == f"{sa}-bucket-access"]
    return json.loads(policy.inputs["policy"])


def test_spoke_identity_may_upload_but_never_delete(staging):
    for spoke in ("staging-batch", "staging-us"):
        result = staging[spoke]
        (role,) = result.by_type("aws:iam/role:Role")
        assert role.inputs["name"] == f"obs-{spoke}-prometheus"
        actions = {a for s in _role_policy(result, "prometheus")["Statement"] for a in s["Action"]}
        assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}
        resources = {r for s in _role_policy(result, "prometheus")["Statement"] for r in s["Resource"]}
        assert resources == {"arn:aws:s3:::acme-staging-thanos", "arn:aws:s3:::acme-staging-thanos/*"}


def test_spoke_role_trusts_its_own_cluster(staging):
    # IRSA: only the spoke cluster's prometheus service account. Pod Identity: the association
    # names the spoke's cluster.
    (role,) = staging["staging-batch"].by_type("aws:iam/role:Role")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    subjects = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == ["system:serviceaccount:observability:prometheus"]
    (association,) = staging["staging-us"].by_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert association.inputs["clusterName"] == "staging-us-eks" and association.inputs["serviceAccount"] == "prometheus"


def test_spoke_sidecar_uploads_to_the_hubs_bucket_in_its_region(staging):
    for spoke in ("staging-batch", "staging-us"):
        (kps,) = staging[spoke].by_type(CHART)
        spec = kps.inputs["values"]["prometheus"]["prometheusSpec"]
        store = spec["thanos"]["objectStorageConfig"]["secret"]["config"]
        assert (store["bucket"], store["region"], store["endpoint"]) == ("acme-staging-thanos", "ap-northeast-2", "s3.ap-northeast-2.amazonaws.com")
        assert spec["externalLabels"] == {"cluster": spoke}
    (hub_kps,) = [r for r in staging["staging"].by_type(CHART) if r.inputs["name"] == "kps"]
    assert hub_kps.inputs["values"]["prometheus"]["prometheusSpec"]["externalLabels"] == {"cluster": "staging"}


def test_hub_query_asks_reachable_spoke_sidecars(staging):
    (query,) = [r for r in staging["staging"].by_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == "thanos-query"]
    args = query.inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--endpoint=thanos-sidecar.staging-batch.internal.example.com:10901" in args
    # The store gateway serves every cluster's history from the one bucket.
    assert any(a.startswith("--endpoint=dnssrv+_grpc._tcp.thanos-store.") for a in args)


def test_one_compactor_across_the_hub_and_its_spokes(staging):
    found = [(name, bucket) for name, result in staging.items()
             for _, bucket, _ in rules.compactors(offline.policy_resources(result.resources))]
    assert found == [("staging", "acme-staging-thanos")]


def test_hub_and_spokes_pass_the_policy_pack(staging, plan):
    for name, result in {**staging, "local": plan("local"), "local-spoke": plan("local-spoke")}.items():
        assert [v for v in offline.evaluate(result) if v["enforcement"] == "mandatory"] == [], name


def test_cross_account_spoke_gets_upload_rights_in_the_hubs_bucket_policy():
    spokes = stack_file("staging")["obs-storage:tools"]["thanos"]["spokes"]
    spokes[1]["account"] = "210987654321"
    result = engine.run("staging", thanos_tools("staging", spokes=spokes))
    (policy,) = [r for r in result.by_type("aws:s3/bucketPolicy:BucketPolicy") if r.name == "thanos-tls-only"]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    role = "arn:aws:iam::210987654321:role/obs-staging-us-prometheus"
    for sid in ("SpokesList", "SpokesReadWrite"):
        assert statements[sid]["Principal"] == {"AWS": ["arn:aws:iam::210987654321:root"]}
        assert statements[sid]["Condition"]["ArnEquals"] == {"aws:PrincipalArn": [role]}
    actions = statements["SpokesList"]["Action"] + statements["SpokesReadWrite"]["Action"]
    assert sorted(actions) == ["s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    assert "DenyInsecureTransport" in statements
    # Only the Thanos bucket lets the other account in.
    (loki_policy,) = [r for r in result.by_type("aws:s3/bucketPolicy:BucketPolicy") if r.name == "loki-tls-only"]
    assert len(json.loads(loki_policy.inputs["policy"])["Statement"]) == 1
    assert [v for v in offline.evaluate(result) if v["enforcement"] == "mandatory"] == []


# ---------------------------------------------------------------- local: hub and spoke on one engine
def containers(result) -> dict[str, engine.Registration]:
    return {r.inputs["name"]: r for r in result.by_type(CONTAINER)}


def uploaded(container: engine.Registration, path: str) -> str:
    (content,) = [u["content"] for u in container.inputs["uploads"] if u["file"] == path]
    return content


HUB_ONLY = {"minio", "thanos-store", "thanos-query", "thanos-compact", "grafana"}


def test_local_spoke_runs_prometheus_and_its_sidecar_and_nothing_of_the_hubs(plan):
    spoke = plan("local-spoke")
    names = {name.removeprefix("obs-local-spoke-") for name in containers(spoke)}
    assert {"prometheus", "thanos-sidecar"} <= names and not names & HUB_ONLY, names
    assert {name.removeprefix("obs-local-") for name in containers(plan("local"))} >= HUB_ONLY
    assert not spoke.by_type("minio:index/s3Bucket:S3Bucket") and "minioRootPassword" not in spoke.outputs
    assert spoke.outputs["urls"] == {}
    # Nothing published: on one engine the spoke's ports would clash with the hub's.
    assert all(not c.inputs.get("ports") for c in containers(spoke).values())


def test_local_spoke_sidecar_joins_the_hub_network_and_finds_its_own_prometheus(plan):
    hub, spoke = plan("local"), plan("local-spoke")
    sidecar = containers(spoke)["obs-local-spoke-thanos-sidecar"]
    networks = [n["name"] for n in sidecar.inputs["networksAdvanced"]]
    assert networks == ["obs-local-spoke", hub.outputs["thanosHub"]["dockerNetwork"]] == ["obs-local-spoke", "obs-local"]
    # `prometheus` on the hub's network is the hub's Prometheus.
    assert "--prometheus.url=http://obs-local-spoke-prometheus:9090" in sidecar.inputs["command"]
    store = yaml.safe_load(uploaded(sidecar, thanos_renderer.OBJSTORE_FILE))["config"]
    assert (store["bucket"], store["endpoint"]) == ("thanos", "minio:9000")
    # The hub's Query reaches it under the endpoint the hub lists.
    (query,) = [c for name, c in containers(hub).items() if name == "obs-local-thanos-query"]
    assert "--endpoint=obs-local-spoke-thanos-sidecar:10901" in query.inputs["command"]


def test_local_spoke_user_lives_on_the_hubs_minio_and_cannot_delete(plan):
    spoke = plan("local-spoke")
    (provider,) = spoke.by_type("pulumi:providers:minio")
    assert provider.inputs["minioServer"] == "127.0.0.1:9000"
    assert provider.inputs["minioUser"] == engine.SECRET and provider.inputs["minioPassword"] == engine.SECRET
    (user,) = spoke.by_type("minio:index/iamUser:IamUser")
    assert user.inputs["name"] == "obs-local-spoke-thanos"
    (policy,) = spoke.by_type("minio:index/iamPolicy:IamPolicy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert sorted(a for s in statements for a in s["Action"]) == ["s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    assert {r for s in statements for r in s["Resource"]} == {"arn:aws:s3:::thanos", "arn:aws:s3:::thanos/*"}


def test_local_spoke_labels_its_blocks_with_its_own_cluster(plan):
    for stack, label in (("local", "local"), ("local-spoke", "local-spoke")):
        prom = containers(plan(stack))[f"obs-{stack}-prometheus"]
        labels = yaml.safe_load(uploaded(prom, "/etc/prometheus/prometheus.yml"))["global"]["external_labels"]
        assert labels["cluster"] == label


def test_local_hub_grafana_is_the_global_view(plan):
    hub, spoke = plan("local"), plan("local-spoke")
    grafana = containers(hub)["obs-local-grafana"]
    datasources = yaml.safe_load(uploaded(grafana, "/etc/grafana/provisioning/datasources/obs-storage.yaml"))["datasources"]
    (thanos,) = [d for d in datasources if d["type"] == "prometheus"]
    assert thanos["url"] == "http://thanos-query:10902" and thanos["jsonData"]["prometheusType"] == "Thanos"
    assert "obs-local-spoke-grafana" not in containers(spoke)


def test_local_receive_spoke_remote_writes_to_the_hubs_receive():
    hub = engine.run("local", thanos_tools("local", mode="receive", receiveReplicationFactor=1))
    assert hub.outputs["thanosHub"]["receiveUrl"] == "http://thanos-receive-0:19291/api/v1/receive"
    overrides = thanos_tools("local-spoke", mode="receive")
    spoke = engine.run("local-spoke", overrides, stack_outputs={LOCAL_HUB: hub.outputs})
    found = containers(spoke)
    assert not {"obs-local-spoke-thanos-sidecar", "obs-local-spoke-thanos-receive-0"} & set(found)
    prom = found["obs-local-spoke-prometheus"]
    config_file = yaml.safe_load(uploaded(prom, "/etc/prometheus/prometheus.yml"))
    assert [w["url"] for w in config_file["remote_write"]] == ["http://thanos-receive-0:19291/api/v1/receive"]
    assert [n["name"] for n in prom.inputs["networksAdvanced"]] == ["obs-local-spoke", "obs-local"]
    # Remote write needs no bucket access: no identity at all.
    assert spoke.outputs["identities"] == {} and not spoke.by_type("minio:index/iamUser:IamUser")


# ---------------------------------------------------------------- Swarm: a hub and a spoke in a project root of their own
def swarm_project(tmp_path: Path, monkeypatch) -> None:
    """A project root with the prod hub listing a spoke, and that spoke on another Swarm."""
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).symlink_to(ROOT / name)
    hub = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    hub["config"]["obs-storage:tools"]["thanos"]["spokes"] = [{"stack": "organization/obs-storage/edge", "clusterLabel": "edge"}]
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(hub))
    spoke = copy.deepcopy(hub)
    spoke["config"]["obs-storage:hetzner"].update(swarmHost="ssh://deploy@edge-manager.example.com", stateNode="edge-1")
    spoke["config"]["obs-storage:tools"] = {"loki": {"enabled": False}, "tempo": {"enabled": False},
                                           "thanos": {"role": "spoke", "hub": "organization/obs-storage/prod"}}
    (tmp_path / "Pulumi.edge.yaml").write_text(yaml.safe_dump(spoke))
    monkeypatch.chdir(tmp_path)


def test_swarm_spoke_uses_a_key_pair_of_the_hubs_project_and_says_so(tmp_path, monkeypatch):
    swarm_project(tmp_path, monkeypatch)
    spoke = engine.run("edge")
    note = spoke.outputs["thanosSpoke"]["note"]
    assert "key pair of the hub's Hetzner project" in note and "every bucket" in note
    assert "every bucket of that project" in engine.run("prod").outputs["thanosHub"]["note"]
    services = {r.inputs["name"]: r for r in spoke.by_type(SERVICE)}
    names = {name.removeprefix("obs-edge-") for name in services}
    assert {"prometheus", "thanos-sidecar"} <= names and not names & HUB_ONLY, names
    # The sidecar mounts the spoke's key pair as its credentials file; no MinIO user exists.
    secrets = services["obs-edge-thanos-sidecar"].inputs["taskSpec"]["containerSpec"]["secrets"]
    assert [s["fileName"] for s in secrets] == ["/run/secrets/s3-credentials"]
    assert spoke.outputs["identities"]["thanos"]["kind"] == "hetzner-key-pair"
    # Shown in the plan a reviewer reads.
    from tools import plan as plan_tool
    assert "key pair of the hub's Hetzner project" in plan_tool.as_text(spoke, [])


def test_swarm_hub_compactor_names_its_bucket(plan):
    (compact,) = [r for r in plan("prod").by_type(SERVICE) if r.inputs["name"] == "obs-prod-thanos-compact"]
    labels = {item["label"]: item["value"] for item in compact.inputs["labels"]}
    assert labels[thanos_renderer.COMPACTOR_BUCKET_LABEL] == "acme-prod-thanos"


# ---------------------------------------------------------------- the policy: one compactor per bucket
# The rule itself is tested in tests/test_policies.py; here, a spoke's program that declares one.
SPOKE_WITH_COMPACTOR = """
import pulumi
import pulumi_docker as docker
provider = docker.Provider("local-docker")
docker.Container("rogue-compact", image="quay.io/thanos/thanos:v0.42.4", command=["compact", "--wait"],
                 labels=[{"label": "obs-storage.thanos-bucket", "value": "thanos"}],
                 opts=pulumi.ResourceOptions(provider=provider))
"""


def test_a_stack_declaring_a_compactor_for_its_hubs_bucket_fails_the_plan(tmp_path):
    program = tmp_path / "program.py"
    program.write_text(SPOKE_WITH_COMPACTOR)
    result = engine.run("local-spoke", program=program, stack_outputs={})
    refused = [v for v in offline.evaluate(result) if v["enforcement"] == "mandatory"]
    assert [(v["policy"], v["urn"].rsplit("::", 1)[1]) for v in refused] == [("thanos-one-compactor-per-bucket", "rogue-compact")]


# ---------------------------------------------------------------- cost and plan of a hub with N spokes
def test_hub_cost_counts_every_spokes_samples_in_its_bucket(capsys):
    from tools.cost import cli

    assert cli.main(["--stack", "staging", "--json", "--ingest", "metrics=30000", "--spoke-metrics", "staging-batch=20000,staging-us=10000"]) == 0
    data = json.loads(capsys.readouterr().out)
    # 2 bytes a sample (thanos.bytes_per_sample), over this cluster's and both spokes' samples.
    assert data["stored_gb_per_day"]["thanos"] == round((30_000 + 20_000 + 10_000) * 86_400 * 2 / 2**30, 2)
    assert data["topology"]["thanos"]["spokes"] == 2 and data["topology"]["thanos"]["spoke_samples_per_s"] == 30_000
    # The hub's own ingest is still what --ingest says.
    assert data["ingest"]["metrics"]["value"] == 30_000


def test_hub_cost_assumes_unmeasured_spokes_like_the_hub_and_says_so(capsys):
    from tools.cost import cli

    assert cli.main(["--stack", "staging", "--json", "--ingest", "metrics=1000"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["topology"]["thanos"]["spoke_samples_per_s"] == 2_000
    assert any("assumed like this cluster" in w and "--spoke-metrics" in w for w in data["warnings"])


def test_one_compactor_serves_all_clusters_block_streams():
    from tools.cost import prices, topology, usage

    cfg = load("staging")
    a = prices.assumptions()
    alone = usage.thanos_load(cfg, 30_000, a, topology.ThanosTopology())
    hub = usage.thanos_load(cfg, 30_000, a, topology.ThanosTopology(spokes=2, spoke_samples_per_s=60_000))
    assert hub.stored_gb_per_day == pytest.approx(3 * alone.stored_gb_per_day)
    lines = {line.what: line for line in alone.requests}
    for line in hub.requests:
        if line.what.startswith(("uploads", "compaction", "downsampling")):
            # Three clusters of equal size: three block streams of the same blocks.
            assert line.put_list_per_day == pytest.approx(3 * lines[line.what].put_list_per_day), line.what
    # Still one compactor (and the store gateways) listing the bucket.
    assert [line.what for line in hub.requests if "bucket sync" in line.what] == ["bucket sync (store gateways, compactor)"]


def test_spoke_cost_leaves_its_metrics_to_the_hub(capsys):
    from tools.cost import cli

    assert cli.main(["--stack", "staging-us", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "thanos" not in data["tools"]
    assert any("spoke" in w and HUB in w and "inter-region transfer is not modelled" in w for w in data["warnings"])


def test_unknown_spoke_in_cost_is_one_line_error():
    from tools.cost import cli

    assert cli.main(["--stack", "staging", "--spoke-metrics", "eu=5"]) == 2


def test_plan_text_shows_the_topology(plan):
    from tools import plan as plan_tool

    hub = plan_tool.thanos_topology_lines(plan("staging").outputs)
    assert hub[0].startswith("thanos hub: bucket acme-staging-thanos") and "2 spoke(s)" in hub[0] and "staging-us (cluster staging-us)" in hub[0]
    spoke = plan_tool.thanos_topology_lines(plan("staging-batch").outputs)
    assert spoke == [f"thanos spoke of {HUB}: sidecar into bucket acme-staging-thanos in ap-northeast-2 as cluster staging-batch; "
                     "no bucket, store gateway, query or compactor of its own"]


def test_eks_receive_spoke_remote_writes_to_the_url_the_hub_exports():
    url = "https://thanos-receive.staging.internal.example.com/api/v1/receive"
    hub = engine.run("staging", thanos_tools("staging", mode="receive", receiveUrl=url))
    assert hub.outputs["thanosHub"]["receiveUrl"] == url
    spoke = engine.run("staging-batch", thanos_tools("staging-batch", mode="receive"), stack_outputs={HUB: hub.outputs})
    (kps,) = spoke.by_type(CHART)
    spec = kps.inputs["values"]["prometheus"]["prometheusSpec"]
    assert spec["remoteWrite"] == [{"url": url}] and "thanos" not in spec
    # Nothing of the spoke touches the bucket: no role at all.
    assert not spoke.by_type("aws:iam/role:Role") and spoke.outputs["identities"] == {}


def test_receive_url_only_with_receive_mode():
    err = error_of("staging", receiveUrl="https://r.example.com/api/v1/receive")
    assert err.key == "tools.thanos.receiveUrl" and "mode" in err.problem


# ---------------------------------------------------------------- plan and cost agree on a bad hub
def project_with_spokes(tmp_path: Path, monkeypatch, **hubs: str) -> None:
    """A project root where each named stack is a copy of staging-batch whose hub is the value."""
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.staging.yaml"):
        (tmp_path / name).symlink_to(ROOT / name)
    for stack, hub in hubs.items():
        spoke = yaml.safe_load((ROOT / "Pulumi.staging-batch.yaml").read_text())
        spoke["config"]["obs-storage:tools"]["thanos"]["hub"] = hub
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(spoke))
    monkeypatch.chdir(tmp_path)


def plan_and_cost_errors(stack: str, capsys) -> list[str]:
    from tools import plan
    from tools.cost import cli as cost_cli

    errors = []
    for command in (plan.main, cost_cli.main):
        assert command(["--stack", stack]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, err[-3000:]
        errors.append(err)
    return errors


@pytest.mark.parametrize("hub,problem", [
    ("organization/obs-storage/edge", "names this stack itself"),
    ("staging", "is not a fully qualified stack name"),
])
def test_plan_and_cost_give_the_spokes_own_config_error_before_planning_a_hub(tmp_path, monkeypatch, capsys, hub, problem):
    project_with_spokes(tmp_path, monkeypatch, edge=hub)
    planned, costed = plan_and_cost_errors("edge", capsys)
    assert planned == costed
    assert planned.startswith(f"error: stack 'edge': obs-storage:tools.thanos.hub = \"{hub}\" {problem}. Fix: ")


def test_two_spokes_naming_each_other_are_one_config_error(tmp_path, monkeypatch, capsys):
    project_with_spokes(tmp_path, monkeypatch, east="organization/obs-storage/west", west="organization/obs-storage/east")
    planned, costed = plan_and_cost_errors("east", capsys)
    assert planned == costed == (
        "error: stack 'east': obs-storage:tools.thanos.hub = \"organization/obs-storage/west\" names a stack that is not a "
        "Thanos hub: it is itself a spoke (of organization/obs-storage/east). Fix: name the stack that owns the Thanos "
        "bucket, and run `pulumi up` on it first.\n")


def test_a_spoke_of_a_real_hub_is_still_planned_against_it(tmp_path, monkeypatch):
    project_with_spokes(tmp_path, monkeypatch, edge=HUB)
    # The hub does not list `edge`: the spoke's check of the hub's real outputs says so.
    with pytest.raises(pulumi.RunError, match="does not list this stack"):
        engine.run("edge")


# ---------------------------------------------------------------- the hub's output, per target, without a plan
def test_hub_output_carries_what_only_its_target_has():
    from types import SimpleNamespace

    network, api = SimpleNamespace(name="obs-local-net"), "http://127.0.0.1:9000"
    local = thanos_topology.hub_output(load("local"), SimpleNamespace(bucket_name="thanos", arn=None), network, api)
    # Spokes on the same engine join the hub's network and create their user through its MinIO.
    assert (local["dockerNetwork"], local["minioApi"]) == ("obs-local-net", api)
    assert "arn" not in local and "note" not in local and "receiveUrl" not in local
    # The same arguments elsewhere: no Docker network or MinIO of the hub to offer.
    prod = thanos_topology.hub_output(load("prod"), SimpleNamespace(bucket_name="acme-prod-thanos", arn=None), network, api)
    assert not {"dockerNetwork", "minioApi", "arn"} & set(prod) and prod["note"] == thanos_topology.HETZNER_NOTE
    staging = thanos_topology.hub_output(load("staging"), SimpleNamespace(bucket_name="acme-staging-thanos", arn="arn:aws:s3:::acme-staging-thanos"), network, api)
    assert staging["arn"] == "arn:aws:s3:::acme-staging-thanos" and not {"dockerNetwork", "minioApi", "note"} & set(staging)
    assert (staging["pathStyle"], staging["tls"], local["pathStyle"], local["tls"]) == (False, True, True, False)
    # Without a network or an API URL a local hub offers neither.
    bare = thanos_topology.hub_output(load("local"), SimpleNamespace(bucket_name="thanos", arn=None))
    assert not {"dockerNetwork", "minioApi"} & set(bare)


def test_a_local_receive_hub_offers_its_first_receivers_in_network_url():
    cfg = load("local", mode="receive", receiveReplicationFactor=3)
    # The port renderers/thanos.py gives Receive's --remote-write.address (19291, also the flag's
    # default in thanos-io/thanos cmd/thanos/receive.go), on the first replica's container name.
    assert thanos_topology.hub_receive_url(cfg) == "http://thanos-receive-0:19291/api/v1/receive"
    assert thanos_topology.hub_receive_url(load("local")) is None
    url = "https://thanos-receive.staging.internal.example.com/api/v1/receive"
    assert thanos_topology.hub_receive_url(load("staging", mode="receive", receiveUrl=url)) == url
    # On EKS there is no network to join: without a configured URL the hub offers none.
    assert thanos_topology.hub_receive_url(load("staging", mode="receive")) is None


def test_the_hubs_query_asks_only_spokes_with_a_sidecar_endpoint():
    # Pulumi.staging.yaml lists staging-us without one (no network path to its sidecar).
    assert thanos_topology.sidecar_endpoints(load("staging")) == ["thanos-sidecar.staging-batch.internal.example.com:10901"]
    assert thanos_topology.sidecar_endpoints(load("staging-batch")) == []


def test_the_hubs_bucket_keeps_every_setting_for_the_spokes_tools():
    hub = thanos_topology.HubBucket(stack=LOCAL_HUB, target="local", bucket="thanos", endpoint="minio:9000", region="us-east-1", prefix="m/",
                                    path_style=True, tls=False, mode="sidecar", cluster_label="local", kms_key_arn=None)
    store = hub.object_store(aws_sdk_auth=True)
    assert (store.endpoint, store.prefix, store.path_style, store.tls, store.aws_sdk_auth, store.s3_compatible) == ("minio:9000", "m/", True, False, True, True)
    assert hub.object_store().aws_sdk_auth is False
    assert thanos_topology.SharedBucket(hub).arn is None
    output = {**hub_outputs()["thanosHub"], "pathStyle": 1, "tls": 0}
    read = thanos_topology.HubBucket.from_output(HUB, output)
    assert (read.path_style, read.tls) == (True, False)


def test_a_hub_that_is_itself_a_spoke_is_named_as_such_by_the_run():
    # What the program reads through its StackReference: no thanosHub, a thanosSpoke of another hub.
    spoke = {"thanosSpoke": {"role": "spoke", "hub": "organization/obs-storage/elsewhere", "clusterLabel": "staging", "mode": "sidecar",
                             "bucket": "acme-elsewhere-thanos", "region": "ap-northeast-2"}}
    with pytest.raises(pulumi.RunError, match=r"is itself a spoke \(of organization/obs-storage/elsewhere\)"):
        engine.run("staging-batch", stack_outputs={HUB: spoke})


def test_a_hub_output_with_any_role_but_hub_is_refused():
    real = hub_outputs()["thanosHub"]
    for role in ("edge", "Hub", "spoke", ""):  # sorting before and after "hub"
        assert check_error("staging-batch", {**real, "role": role}).problem == "exports a thanosHub output without role hub", role


def test_the_spokes_own_name_carries_its_organization(monkeypatch):
    # Pulumi Cloud names stacks <organization>/<project>/<stack>; 'organization' stands in only
    # where the backend has none (the offline plan, a self-managed backend).
    monkeypatch.setattr(thanos_topology.pulumi, "get_project", lambda: "obs-storage")
    monkeypatch.setattr(thanos_topology.pulumi, "get_stack", lambda: "staging-batch")
    monkeypatch.setattr(thanos_topology.pulumi, "get_organization", lambda: "acme")
    assert thanos_topology.own_stack_name() == "acme/obs-storage/staging-batch"
    monkeypatch.setattr(thanos_topology.pulumi, "get_organization", lambda: None)
    assert thanos_topology.own_stack_name() == "organization/obs-storage/staging-batch"


def test_a_receive_hub_without_url_is_told_apart_as_the_reference_reads_it():
    # Outputs arrive through the StackReference as parsed values: equal strings, not one object.
    hub = json.loads(json.dumps({**hub_outputs()["thanosHub"], "mode": "receive"}))
    hub.pop("receiveUrl", None)
    assert check_error("staging-batch", hub, mode="receive").problem == "remote-writes to the hub, but organization/obs-storage/staging exports no Receive URL"
