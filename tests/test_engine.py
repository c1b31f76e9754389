"""The strict mock engine refuses inputs the provider SDKs do not define."""

from __future__ import annotations

import textwrap

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
