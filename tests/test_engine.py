"""The strict mock engine refuses inputs the provider SDKs do not define."""

from __future__ import annotations

import json
import re
import textwrap

import pulumi
import pytest

from tools import engine

PROGRAM_HEAD = """
import pulumi
import pulumi_aws as aws
provider = aws.Provider("aws", region="ap-northeast-2")
bucket = aws.s3.Bucket("b", bucket="acme-test", opts=pulumi.ResourceOptions(provider=provider))
"""


def run_program(tmp_path, body: str):
    program = tmp_path / "program.py"
    program.write_text(PROGRAM_HEAD + textwrap.dedent(body))
    return engine.run("staging", program=program)


def test_misspelled_nested_input_fails(tmp_path):
    with pytest.raises(engine.StrictMockError) as info:
        run_program(tmp_path, """
            aws.s3.BucketLifecycleConfiguration("l", bucket=bucket.id, rules=[{
                "id": "r", "status": "Enabled",
                "abort_incomplete_multipart_upload": {"days_after_initation": 1},
            }], opts=pulumi.ResourceOptions(provider=provider))
        """)
    message = str(info.value)
    assert "rules[0].abortIncompleteMultipartUpload.days_after_initation: unknown property" in message


def test_missing_required_nested_input_fails(tmp_path):
    with pytest.raises(engine.StrictMockError) as info:
        run_program(tmp_path, """
            aws.s3.BucketLifecycleConfiguration("l", bucket=bucket.id, rules=[{"id": "r"}],
                                                opts=pulumi.ResourceOptions(provider=provider))
        """)
    assert "rules[0].status: required property" in str(info.value)


def test_correct_nested_input_passes_and_is_recorded_in_wire_names(tmp_path):
    result = run_program(tmp_path, """
        aws.s3.BucketLifecycleConfiguration("l", bucket=bucket.id, rules=[{
            "id": "r", "status": "Enabled", "filter": {"prefix": "fake/"},
            "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
        }], opts=pulumi.ResourceOptions(provider=provider))
    """)
    rule = result.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "l").inputs["rules"][0]
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}


def test_invoke_without_mock_answer_fails(tmp_path):
    with pytest.raises(Exception) as info:
        run_program(tmp_path, """
            aws.ec2.get_vpc(default=True, opts=pulumi.InvokeOptions(provider=provider))
        """)
    assert "has no mock answer" in str(info.value)


def test_secrets_are_masked_in_recorded_inputs_and_outputs(tmp_path):
    result = run_program(tmp_path, """
        aws.ssm.Parameter("p", type="SecureString", value=pulumi.Output.secret("hunter2-value"),
                          opts=pulumi.ResourceOptions(provider=provider))
        pulumi.export("leak", pulumi.Output.secret("hunter2-value"))
    """)
    parameter = result.one("aws:ssm/parameter:Parameter", "p")
    assert parameter.inputs["value"] == engine.SECRET
    assert result.outputs["leak"] == engine.SECRET


def test_every_sdk_token_used_by_the_program_resolves(plan):
    # "aws:s3/bucket:Bucket" is checked against pulumi_aws' BucketArgs (or BucketInitArgs, the
    # name the SDKs use where BucketArgs is taken), "pulumi:providers:aws" against its ProviderArgs.
    for stack in ("local", "staging", "prod"):
        for r in plan(stack).resources:
            if r.custom:
                package, rest = r.type.split(":", 1)
                provider = package == "pulumi"
                sdk = f"pulumi_{rest.split(':')[1] if provider else package}"
                name = "Provider" if provider else r.type.rsplit(":", 1)[1]
                cls = engine.args_class(r.type)
                assert cls.__module__.split(".")[0] == sdk and cls.__name__ in (f"{name}Args", f"{name}InitArgs"), (r.type, cls)


def test_an_unknown_token_has_no_args_class():
    assert engine.args_class("aws:s3/bucket:Buckett") is None


def test_computed_only_nested_field_fails_like_the_provider(tmp_path):
    # The SDK's IlmPolicyRuleArgs still lists `status`; the bridged provider computes it.
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent("""
        import pulumi
        import pulumi_minio as minio
        provider = minio.Provider("m", minio_server="127.0.0.1:9000", minio_user="u", minio_password="p")
        minio.IlmPolicy("l", bucket="loki", rules=[{"id": "r", "status": "Enabled", "expiration": "8d"}],
                        opts=pulumi.ResourceOptions(provider=provider))
    """))
    with pytest.raises(engine.StrictMockError) as info:
        engine.run("local", program=program)
    assert "minio:index/ilmPolicy:IlmPolicy.rules[0].status: computed by the provider" in str(info.value)


def test_ilm_rules_of_the_local_plan_set_no_computed_field(plan):
    policies = plan("local").by_type("minio:index/ilmPolicy:IlmPolicy")
    assert policies, "the local stack declares ILM policies"
    for policy in policies:
        for rule in policy.inputs["rules"]:
            assert "status" not in rule, policy.urn


# ---------------------------------------------------------------- secrets never reach a plan
def test_secrets_nested_in_lists_and_maps_are_masked_and_still_checked(tmp_path):
    # A secret deep in an input (a list element's field, a map value) is masked where it sits;
    # the inputs around it are still checked against the SDK's types and recorded in the clear.
    result = run_program(tmp_path, """
        token = pulumi.Output.secret("hunter2-nested")
        aws.s3.BucketLifecycleConfiguration("l", bucket=bucket.id, rules=[{
            "id": token, "status": "Enabled", "filter": {"prefix": token},
        }, pulumi.Output.secret({"id": "hunter2-rule", "status": "Enabled"})], opts=pulumi.ResourceOptions(provider=provider))
        aws.ssm.Parameter("p", type="String", value="v", description="plain-value", tags={"owner": "obs", "token": token},
                          opts=pulumi.ResourceOptions(provider=provider))
        pulumi.export("nested", {"list": [token], "plain": "x"})
        pulumi.export("plain", {"list": ["y"]})
    """)
    rules = result.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "l").inputs["rules"]
    # A whole secret list element is masked too, and checked (as a rule object) like any other.
    assert rules == [{"id": engine.SECRET, "status": "Enabled", "filter": {"prefix": engine.SECRET}}, engine.SECRET]
    parameter = result.one("aws:ssm/parameter:Parameter", "p").inputs
    assert parameter["tags"] == {"owner": "obs", "token": engine.SECRET} and parameter["description"] == "plain-value"
    # An output holding a secret anywhere is a secret output, as `pulumi stack output` shows it.
    assert result.outputs == {"nested": engine.SECRET, "plain": {"list": ["y"]}}
    everything = [r.inputs for r in result.resources] + [result.outputs]
    assert not [s for s in engine.walk_strings(everything) if "hunter2" in s]


def test_a_secret_nested_in_an_input_is_still_type_checked(tmp_path):
    # Unwrapping the secret for the check must not hide a misspelled field beside it.
    with pytest.raises(engine.StrictMockError) as info:
        run_program(tmp_path, """
            aws.s3.BucketLifecycleConfiguration("l", bucket=bucket.id, rules=[{
                "id": pulumi.Output.secret("r"), "status": "Enabled", "filter": {"prefixx": pulumi.Output.secret("x")},
            }], opts=pulumi.ResourceOptions(provider=provider))
        """)
    assert "rules[0].filter.prefixx: unknown property" in str(info.value)


def test_outputs_the_provider_marks_secret_stay_secret_and_others_do_not(tmp_path):
    # pulumi_random's RandomPassword declares `result` an additional secret output; a bucket's
    # ARN (arn:aws:s3:::<bucket>, AWS S3 docs "Amazon Resource Names for S3") is not secret.
    result = run_program(tmp_path, """
        import pulumi_random as random
        pulumi.export("password", random.RandomPassword("pw", length=24).result)
        pulumi.export("name", random.RandomString("s", length=8).result.apply(lambda s: s.startswith("mock-s-")))
        pulumi.export("arn", bucket.arn)
    """)
    assert result.outputs == {"password": engine.SECRET, "name": True, "arn": "arn:aws:s3:::acme-test"}


def test_a_stack_reference_reads_secret_outputs_as_secrets(tmp_path):
    hub = "organization/obs-storage/hub"
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(f"""
        import pulumi
        ref = pulumi.StackReference("{hub}")
        pulumi.export("password", ref.get_output("password"))
        pulumi.export("bucket", ref.get_output("bucket"))
        pulumi.export("all", ref.outputs)
    """))
    result = engine.run("staging", program=program,
                        stack_outputs={hub: {"password": engine.SECRET, "bucket": "thanos-hub"}})
    # All outputs of a stack with a secret one are a secret; those of a stack without one are not.
    assert result.outputs == {"password": engine.SECRET, "bucket": "thanos-hub", "all": engine.SECRET}
    result = engine.run("staging", program=program, stack_outputs={hub: {"bucket": "thanos-hub"}})
    assert result.outputs == {"password": None, "bucket": "thanos-hub", "all": {"bucket": "thanos-hub"}}
    (reference,) = result.by_type("pulumi:pulumi:StackReference")
    assert reference.inputs == {"name": hub} and not reference.protect


def test_a_stack_reference_to_a_stack_not_planned_fails_naming_the_known_ones(tmp_path):
    program = tmp_path / "program.py"
    program.write_text('import pulumi\npulumi.export("x", pulumi.StackReference("organization/obs-storage/nope").outputs)\n')
    with pytest.raises(Exception) as info:
        engine.run("staging", program=program, stack_outputs={})
    assert "StackReference to organization/obs-storage/nope: no outputs of that stack to read offline (stacks planned first: none)" in str(info.value)
    with pytest.raises(Exception) as info:
        engine.run("staging", program=program, stack_outputs={"organization/obs-storage/b": {}, "organization/obs-storage/a": {}})
    assert "(stacks planned first: organization/obs-storage/a, organization/obs-storage/b)" in str(info.value)


def test_secure_config_values_become_secret_placeholders_at_any_depth():
    raw, secret_keys = engine.stack_config("staging", {
        "obs-storage:token": {"secure": "AAABAK1cipher"},
        "obs-storage:nested": {"a": {"secure": "AAABAK2"}, "b": "plain"},
        "obs-storage:listed": ["plain", {"secure": "AAABAK3"}],
        "obs-storage:clear": {"a": "plain", "b": ["x"]},
        "obs-storage:flag": True,
        "obs-storage:off": False,
    })
    assert set(secret_keys) & {"obs-storage:token", "obs-storage:nested", "obs-storage:listed", "obs-storage:clear",
                               "obs-storage:flag", "obs-storage:off"} == {"obs-storage:token", "obs-storage:nested", "obs-storage:listed"}
    assert raw["obs-storage:token"] == "plan-placeholder-for-token"
    assert json.loads(raw["obs-storage:nested"]) == {"a": "plan-placeholder-for-nested", "b": "plain"}
    assert json.loads(raw["obs-storage:listed"]) == ["plain", "plan-placeholder-for-listed"]
    assert not [s for s in raw.values() if "AAABAK" in s]
    # Pulumi hands a YAML boolean to the program as the string "true" / "false" (config.get_bool parses it).
    assert (raw["obs-storage:flag"], raw["obs-storage:off"]) == ("true", "false")


def test_a_secure_config_value_reaching_a_resource_is_masked(tmp_path):
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent("""
        import pulumi
        import pulumi_aws as aws
        provider = aws.Provider("aws", region="ap-northeast-2")
        value = pulumi.Config().require_secret("apiToken")
        aws.ssm.Parameter("p", type="SecureString", value=value, opts=pulumi.ResourceOptions(provider=provider))
        pulumi.export("token", value)
    """))
    result = engine.run("staging", program=program, overrides={"obs-storage:apiToken": {"secure": "AAABAKcipher"}})
    assert result.one("aws:ssm/parameter:Parameter", "p").inputs["value"] == engine.SECRET
    assert result.outputs["token"] == engine.SECRET


def test_an_override_of_none_deletes_the_key():
    raw, _ = engine.stack_config("staging")
    assert "obs-storage:target" in raw
    raw, _ = engine.stack_config("staging", {"obs-storage:target": None, "obs-storage:absent": None})
    assert "obs-storage:target" not in raw and "obs-storage:absent" not in raw


# ---------------------------------------------------------------- strictness
def test_a_resource_type_no_sdk_defines_fails_and_the_projects_components_pass(tmp_path):
    with pytest.raises(Exception) as info:
        run_program(tmp_path, """
            pulumi.CustomResource("aws:s3/bucket:Buckett", "x", {"bucket": "y"})
        """)
    assert "aws:s3/bucket:Buckett: no provider SDK type found" in str(info.value)
    result = run_program(tmp_path, """
        pulumi.ComponentResource("obs:test:Thing", "t")
    """)
    assert [r.name for r in result.by_type("obs:test:Thing")] == ["t"]
    assert engine.check_inputs("obs:test:Thing", {}) == [] and engine.check_inputs("pulumi:pulumi:Stack", {}) == []


LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def test_an_input_of_the_wrong_shape_is_refused_and_the_right_shape_passes():
    rule = {"id": "r", "status": "Enabled"}
    assert engine.check_inputs(LIFECYCLE, {"bucket": "b", "rules": [rule]}) == []
    assert engine.check_inputs(LIFECYCLE, {"bucket": "b", "rules": rule}) == [f"{LIFECYCLE}.rules: expected a list, got dict"]
    assert engine.check_inputs(LIFECYCLE, {"bucket": "b", "rules": ["r"]}) == [
        f"{LIFECYCLE}.rules[0]: expected an object of BucketLifecycleConfigurationRuleArgs, got str"]
    # A value not known until apply is no shape to check.
    assert engine.check_inputs(LIFECYCLE, {"bucket": "b", "rules": [engine.UNKNOWN]}) == []
    assert engine.check_inputs("aws:s3/bucket:Bucket", {"tags": {"a": "b"}}) == []
    assert engine.check_inputs("aws:s3/bucket:Bucket", {"tags": ["a"]}) == ["aws:s3/bucket:Bucket.tags: expected a map, got list"]


CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def crd(properties: dict) -> dict:
    version = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}}}
    return {"spec": {"group": "g.example.com", "names": {"kind": "K", "plural": "ks"}, "scope": "Namespaced", "versions": [version]}}


def test_the_values_of_a_map_of_objects_are_checked():
    # JSONSchemaProps.properties is a map of JSONSchemaProps (Kubernetes API reference).
    where = f"{CRD}.spec.versions[0].schema.openAPIV3Schema.properties.a"
    assert engine.check_inputs(CRD, crd({"a": {"type": "string"}})) == []
    (problem,) = engine.check_inputs(CRD, crd({"a": {"typo": "string"}}))
    assert problem.startswith(f"{where}.typo: unknown property of JSONSchemaPropsArgs")
    assert engine.check_inputs(CRD, crd({"a": "string"})) == [f"{where}: expected an object of JSONSchemaPropsArgs, got str"]


def test_provider_object_config_arrives_json_encoded_and_is_still_checked():
    assert engine.check_inputs("pulumi:providers:aws", {"region": "ap-northeast-2", "defaultTags": json.dumps({"tags": {"a": "b"}}),
                                                        "allowedAccountIds": json.dumps(["123456789012"])}) == []
    problems = engine.check_inputs("pulumi:providers:aws", {"defaultTags": json.dumps({"tags": {}, "tagz": {}})})
    assert len(problems) == 1 and problems[0].startswith("pulumi:providers:aws.defaultTags.tagz: unknown property of ProviderDefaultTagsArgs")
    assert engine.check_inputs("pulumi:providers:aws", {"assumeRoles": json.dumps([{"roleArn": "arn"}])}) == []
    problems = engine.check_inputs("pulumi:providers:aws", {"assumeRoles": json.dumps([{"roleArn": "arn", "roleArnn": "x"}])})
    assert len(problems) == 1 and problems[0].startswith("pulumi:providers:aws.assumeRoles[0].roleArnn: unknown property")
    # A string that is no JSON object is refused like any other non-object.
    assert engine.check_inputs("pulumi:providers:aws", {"defaultTags": "tags"}) == [
        "pulumi:providers:aws.defaultTags: expected an object of ProviderDefaultTagsArgs, got str"]
    # Outside a provider a JSON string is a string, not an object.
    assert engine.check_inputs(LIFECYCLE, {"bucket": "b", "rules": json.dumps([{"id": "r", "status": "Enabled"}])}) == [
        f"{LIFECYCLE}.rules: expected a list, got str"]


def test_an_invoke_with_a_mock_answer_returns_a_realistic_identity(tmp_path):
    result = run_program(tmp_path, """
        me = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=provider))
        pulumi.export("account", me.account_id)
        pulumi.export("arn", me.arn)
    """)
    # An account ID is 12 digits; an IAM user's ARN is arn:aws:iam::<account>:user/<name> (AWS IAM
    # User Guide, "IAM identifiers").
    account = result.outputs["account"]
    assert len(account) == 12 and account.isdigit()
    assert result.outputs["arn"].startswith(f"arn:aws:iam::{account}:user/")
    assert result.invokes == ["aws:index/getCallerIdentity:getCallerIdentity"]


# ---------------------------------------------------------------- computed outputs, in AWS's formats
def mocked(typ: str, resource_name: str, **inputs):
    return engine.StrictMocks("eu-west-1").new_resource(pulumi.runtime.MockResourceArgs(typ=typ, name=resource_name, inputs=inputs))


def test_mocked_ec2_fleet_resources_have_ids_and_arns_as_aws_forms_them():
    account = engine.ACCOUNT_ID
    rid, state = mocked("aws:iam/instanceProfile:InstanceProfile", "p", name="obs-fleet")
    # IAM User Guide, "IAM identifiers": arn:aws:iam::<account>:instance-profile/<name>.
    assert rid == "obs-fleet" and state["arn"] == f"arn:aws:iam::{account}:instance-profile/obs-fleet" and state["name"] == "obs-fleet"
    rid, state = mocked("aws:iam/instanceProfile:InstanceProfile", "p")
    assert rid == "p" and state["arn"].endswith(":instance-profile/p")
    # Launch template and security group IDs: "lt-" / "sg-" and 17 hex digits (EC2 API reference,
    # e.g. lt-0abcd290751193123; components/core/config.py refuses an sg- ID of 16); a new
    # template's first version is 1.
    rid, state = mocked("aws:ec2/launchTemplate:LaunchTemplate", "lt")
    assert re.fullmatch(r"lt-[0-9a-f]{17}", rid) and (state["latestVersion"], state["defaultVersion"]) == (1, 1)
    rid, _ = mocked("aws:ec2/securityGroup:SecurityGroup", "sg")
    assert re.fullmatch(r"sg-[0-9a-f]{17}", rid)


def test_mocked_load_balancer_arns_cut_the_name_at_32_characters():
    # A load balancer's or target group's name has at most 32 characters (ELB API reference,
    # CreateLoadBalancer / CreateTargetGroup); the ARN is
    # arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/net/<name>/<id> or .../targetgroup/<name>/<id>.
    long = "obs-" + "x" * 40
    _, state = mocked("aws:lb/loadBalancer:LoadBalancer", long)
    prefix = f"arn:aws:elasticloadbalancing:eu-west-1:{engine.ACCOUNT_ID}:loadbalancer/net/"
    assert state["arn"].startswith(prefix)
    assert state["arn"][len(prefix):].split("/")[0] == long[:32]
    assert state["dnsName"].startswith(long[:32] + "-") and state["dnsName"].endswith(".elb.eu-west-1.amazonaws.com")
    _, state = mocked("aws:lb/targetGroup:TargetGroup", long)
    prefix = f"arn:aws:elasticloadbalancing:eu-west-1:{engine.ACCOUNT_ID}:targetgroup/"
    assert state["arn"].startswith(prefix) and state["arn"][len(prefix):].split("/")[0] == long[:32]
    _, state = mocked("aws:lb/targetGroup:TargetGroup", "short")
    assert state["arn"][len(prefix):].split("/")[0] == "short"


def test_mocked_cloud_map_and_secrets_and_aurora_look_like_aws():
    account = engine.ACCOUNT_ID
    # Cloud Map IDs: ns-... and srv-... (Cloud Map API reference, CreatePrivateDnsNamespace / CreateService).
    rid, state = mocked("aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace", "ns", name="obs.internal")
    assert rid.startswith("ns-") and state["arn"] == f"arn:aws:servicediscovery:eu-west-1:{account}:namespace/{rid}"
    assert state["hostedZone"].startswith("Z")
    rid, state = mocked("aws:servicediscovery/service:Service", "svc", name="loki")
    assert rid.startswith("srv-") and state["arn"] == f"arn:aws:servicediscovery:eu-west-1:{account}:service/{rid}"
    # Secrets Manager appends a hyphen and six random characters to the name in a secret's ARN
    # (Secrets Manager User Guide, "Secret ARN").
    _, state = mocked("aws:secretsmanager/secret:Secret", "db")
    assert re.fullmatch(rf"arn:aws:secretsmanager:eu-west-1:{account}:secret:db-[0-9a-f]{{6}}", state["arn"])
    # Aurora cluster endpoint: <cluster>.cluster-<12 characters>.<region>.rds.amazonaws.com (Aurora
    # User Guide, "Cluster endpoints"); RDS manages the master password as a Secrets Manager secret.
    _, state = mocked("aws:rds/cluster:Cluster", "meta")
    assert re.fullmatch(r"meta\.cluster-[0-9a-f]{12}\.eu-west-1\.rds\.amazonaws\.com", state["endpoint"])
    (managed,) = state["masterUserSecrets"]
    assert managed["secretArn"].startswith(f"arn:aws:secretsmanager:eu-west-1:{account}:secret:rds!cluster-")
    assert managed["secretStatus"] == "active"


# ---------------------------------------------------------------- stack files
def yaml_error(tmp_path, text: str, stack_file: bool = True) -> str:
    from components.core.config import StackFileError

    path = tmp_path / "Pulumi.s.yaml"
    path.write_text(text)
    with pytest.raises(StackFileError) as info:
        engine.read_yaml_file("s", path, stack_file=stack_file)
    return str(info.value)


@pytest.mark.parametrize("text,message", [
    # A key twice in a mapping inside a list: YAML would keep the last value.
    ("config:\n  obs-storage:tenants:\n    - {a: 1, a: 2}\n",
     "stack 's': Pulumi.s.yaml:3:14: `a` appears twice in one mapping (first on line 3); YAML would silently keep only the last value. Fix: keep one of the two."),
    ("config:\n  obs-storage:target: local: x\n",
     "stack 's': Pulumi.s.yaml:2:28: is not valid YAML: mapping values are not allowed here. "
     "Fix: put a space after every ':' that ends a key, and quote values that contain ': '."),
    # The parser names where the bracket it could not close was opened (line 2, column 22: the '{').
    ("config:\n  obs-storage:tools: {loki: {bucket: loki}\n  obs-storage:tenants: [fake]\n",
     "stack 's': Pulumi.s.yaml:3:3: is not valid YAML: expected ',' or '}', but got '<scalar>' "
     "(while parsing a flow mapping at line 2, column 22). Fix: close the '{' or '[' opened there, or write the value as indented lines instead."),
    ("config: *nowhere\n",
     "stack 's': Pulumi.s.yaml:1:9: is not valid YAML: found undefined alias 'nowhere'. "
     "Fix: correct the YAML at that position: indent with spaces, end each key with ': ', close every quote and bracket."),
    ("config: 3\n", "stack 's': Pulumi.s.yaml:1:9: `config` is the value '3' where a mapping belongs. "
                    "Fix: write each key as `  obs-storage:<key>: <value>` under `config:` (no leading '- ')."),
    ("just text\n", "stack 's': Pulumi.s.yaml:1:1: the file is the value 'just text' where a mapping belongs. "
                    "Fix: start the file with `config:` and put each key on its own indented line below it."),
])
def test_a_bad_stack_file_is_one_message_with_place_problem_and_fix(tmp_path, text, message):
    assert yaml_error(tmp_path, text) == message


def test_the_neighbours_of_bad_stack_files_are_read(tmp_path):
    path = tmp_path / "Pulumi.s.yaml"
    for text, data in [("config:\n  obs-storage:tenants:\n    - {a: 1}\n    - {a: 2}\n", {"config": {"obs-storage:tenants": [{"a": 1}, {"a": 2}]}}),
                       ("config:\n", {"config": None}), ("", {}),
                       ("a: &x [1]\nconfig:\n  obs-storage:l: *x\n", {"a": [1], "config": {"obs-storage:l": [1]}})]:
        path.write_text(text)
        assert engine.read_yaml_file("s", path) == data, text
    # Only a stack file refuses config keys at its top level; Pulumi.yaml has none to refuse.
    path.write_text("obs-storage:target: local\n")
    assert engine.read_yaml_file("s", path) == {"obs-storage:target": "local"}
    assert "is a config key at the top level" in yaml_error(tmp_path, "obs-storage:target: local\n")


def test_stack_config_is_project_defaults_then_the_stack_file_with_the_project_namespace(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text(
        "name: obs-storage\nruntime: python\nconfig:\n  target: {type: string, default: local}\n"
        "  tenants: {type: array, default: [fake]}\n  note: {type: string}\n  aws:region: {default: eu-west-1}\n")
    (tmp_path / "Pulumi.s.yaml").write_text("config:\n  obs-storage:tenants: [a]\n  size: 1\n  aws:profile: p\n")
    raw, secret_keys = engine.stack_config("s", root=tmp_path)
    # A key without a namespace is the project's (Pulumi docs, "Configuration": <project>:<key>);
    # one declared without a default is not set.
    assert raw == {"obs-storage:target": "local", "obs-storage:tenants": '["a"]', "aws:region": "eu-west-1",
                   "obs-storage:size": "1", "aws:profile": "p"}
    assert secret_keys == []
    assert engine.available_stacks(tmp_path) == ["s"]


def test_a_reference_is_planned_only_when_it_names_a_stack_file_of_this_project():
    assert engine.stack_file_of("organization/obs-storage/staging") == "staging"
    for name in ("obs-storage/staging", "x/organization/obs-storage/staging", "organization/other/staging",
                 "organization/obs-storage", "organization/obs-storage/staging/extra",
                 "organization/obs-storage/nope"):
        assert engine.stack_file_of(name) is None, name
    with pytest.raises(engine.StrictMockError) as info:
        engine.referenced_stack_outputs("organization/obs-storage/nope")
    assert str(info.value).startswith("StackReference to organization/obs-storage/nope: no Pulumi.<stack>.yaml of project obs-storage here")
    assert "prod, staging" in str(info.value)


def test_the_mock_region_follows_storage_region_and_unreadable_config_falls_back():
    fallback = engine._region_hint({})
    assert engine._region_hint({"obs-storage:storage": '{"region": "eu-west-1"}'}) == "eu-west-1"
    for broken in ('{"region": ', "[1]", '{"region": ""}', "{}"):
        assert engine._region_hint({"obs-storage:storage": broken}) == fallback, broken
    _, state = engine.StrictMocks("eu-west-1").new_resource(
        pulumi.runtime.MockResourceArgs(typ="aws:s3/bucket:Bucket", name="b", inputs={"bucket": "acme"}))
    assert state["region"] == "eu-west-1" and state["arn"] == "arn:aws:s3:::acme"


def test_assets_are_recorded_as_a_marker_not_their_content(tmp_path):
    result = run_program(tmp_path, """
        aws.s3.BucketObject("o", bucket=bucket.id, key="k", source=pulumi.StringAsset("asset-content"),
                            opts=pulumi.ResourceOptions(provider=provider, protect=True))
    """)
    recorded = result.one("aws:s3/bucketObject:BucketObject", "o")
    assert recorded.inputs["source"] == "[asset]"
    assert recorded.protect and not result.one("aws:s3/bucket:Bucket", "b").protect


def test_keys_of_and_walk_strings_reach_every_depth():
    value = {"a": [{"b": "x", "c": [1, "y"]}], "d": {"e": "z"}, "f": 2}
    assert engine.keys_of(value) == {"a", "b", "c", "d", "e", "f"}
    assert list(engine.walk_strings(value)) == ["x", "y", "z"]
    assert engine.keys_of(["s", 1]) == set() and list(engine.walk_strings("s")) == ["s"]


def test_in_a_preview_a_value_known_only_after_apply_is_shown_as_unknown(tmp_path):
    # The mocks compute a bucket's ARN but not its domain name: in a preview (as in
    # `pulumi preview`) the domain name is unknown wherever it flows; outside one it is absent.
    body = """
        aws.ssm.Parameter("p", type="String", value="v", description=bucket.bucket_domain_name,
                          opts=pulumi.ResourceOptions(provider=provider))
        pulumi.export("domain", bucket.bucket_domain_name)
        pulumi.export("arn", bucket.arn)
    """
    program = tmp_path / "program.py"
    program.write_text(PROGRAM_HEAD + textwrap.dedent(body))
    preview = engine.run("staging", program=program, preview=True)
    assert preview.outputs == {"domain": engine.UNKNOWN, "arn": "arn:aws:s3:::acme-test"}
    assert preview.one("aws:ssm/parameter:Parameter", "p").inputs["description"] == engine.UNKNOWN
    applied = engine.run("staging", program=program)
    assert applied.outputs == {"domain": None, "arn": "arn:aws:s3:::acme-test"}


def test_a_policy_document_given_as_an_object_is_checked_against_its_type():
    # IAM JSON policy reference: a policy document has Version, Id and Statement; a JSON string is
    # also accepted as is.
    policy = "aws:iam/policy:Policy"
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}
    assert engine.check_inputs(policy, {"policy": document}) == []
    assert engine.check_inputs(policy, {"policy": json.dumps(document)}) == []
    problems = engine.check_inputs(policy, {"policy": {"Version": "2012-10-17", "Statements": []}})
    assert [p.split(" (known")[0] for p in problems] == [
        f"{policy}.policy.Statements: unknown property of PolicyDocumentArgs",
        f"{policy}.policy.Statement: required property of PolicyDocumentArgs is missing"]


def test_a_resource_reference_is_recorded_by_its_urn():
    from pulumi.runtime import rpc

    urn = "urn:pulumi:s::obs-storage::aws:s3/bucket:Bucket::b"
    reference = {rpc._special_sig_key: rpc._special_resource_sig, "urn": urn, "id": "b"}
    assert engine._masked({"bucket": reference, "list": [reference]}) == {"bucket": urn, "list": [urn]}


def spoke_tools(hub: str) -> dict:
    import yaml

    tools = yaml.safe_load((engine.project_root() / "Pulumi.staging-batch.yaml").read_text())["config"]["obs-storage:tools"]
    tools["thanos"]["hub"] = hub
    return tools


def test_a_spoke_whose_hub_is_a_spoke_is_refused_before_that_hub_is_planned():
    from components.core.config import ConfigError

    with pytest.raises(ConfigError) as info:
        engine.run("staging-batch", overrides={"obs-storage:tools": spoke_tools("organization/obs-storage/staging-us")})
    assert info.value.key == "tools.thanos.hub" and "is itself a spoke (of organization/obs-storage/staging)" in info.value.problem
    with pytest.raises(engine.StrictMockError) as info:
        engine.run("staging-batch", overrides={"obs-storage:tools": spoke_tools("organization/obs-storage/nope")})
    assert "StackReference to organization/obs-storage/nope: no Pulumi.<stack>.yaml" in str(info.value)


@pytest.mark.parametrize("tools,hubs", [
    ('{"thanos": {"role": "spoke", "hub": "organization/obs-storage/staging"}}', ["organization/obs-storage/staging"]),
    ('{"thanos": {"role": "hub", "hub": "organization/obs-storage/staging"}}', []),
    ('{"thanos": {"role": "spoke", "hub": 3}}', []),
    ('{"thanos": ["spoke"]}', []), ('{"thanos": null}', []), ("[1]", []), ("{", []),
])
def test_only_a_spokes_hub_is_referenced_and_unreadable_config_is_left_to_the_program(tools, hubs):
    assert engine.referenced_stacks({"obs-storage:tools": tools}) == hubs


def test_mocked_docker_minio_and_kubernetes_objects_keep_given_names_and_fill_computed_ones():
    # A name given is the name; without one the object still gets one, as the providers name it.
    for typ in ("docker:index/network:Network", "docker:index/volume:Volume", "docker:index/secret:Secret",
                "docker:index/serviceConfig:ServiceConfig"):
        assert mocked(typ, "n")[1]["name"] == "n" and mocked(typ, "n", name="given")[1]["name"] == "given", typ
    # MinIO buckets have S3's ARN form, arn:aws:s3:::<bucket>.
    rid, state = mocked("minio:index/s3Bucket:S3Bucket", "b", bucket="loki")
    assert rid == "loki" and state["arn"] == "arn:aws:s3:::loki" and state["bucket"] == "loki"
    # terraform-provider-minio's minio_iam_user computes `secret` when none is given, and keeps a given one.
    rid, state = mocked("minio:index/iamUser:IamUser", "u", name="loki")
    assert rid == "loki" and state["secret"] and state["secret"] != "given"
    assert mocked("minio:index/iamUser:IamUser", "u", name="loki", secret="given")[1]["secret"] == "given"
    assert mocked("minio:index/iamPolicy:IamPolicy", "p", name="loki-rw") == ("loki-rw", {"name": "loki-rw"})
    # pulumi-kubernetes auto-names an object without metadata.name "<resource name>-" and 8 random
    # characters (provider/pkg/metadata/naming.go, AssignNameIfAutonamable); a given name stays.
    _, state = mocked("kubernetes:core/v1:ConfigMap", "cm", metadata={"namespace": "observability"})
    assert re.fullmatch(r"cm-[0-9a-z]{8}", state["metadata"]["name"]) and state["metadata"]["namespace"] == "observability"
    _, state = mocked("kubernetes:core/v1:ConfigMap", "cm", metadata={"name": "loki"})
    assert state["metadata"] == {"name": "loki"}
    assert re.fullmatch(r"cm-[0-9a-z]{8}", mocked("kubernetes:core/v1:ConfigMap", "cm")[1]["metadata"]["name"])
