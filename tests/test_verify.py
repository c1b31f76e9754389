"""`tools.verify` without servers: its comparisons agree with what the providers are handed, its
judgements of trust and TLS policies, and that it never prints a secret. (Against real servers:
tests/integration/.)"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from tests.integration import adapter
from tools import verify, verify_identity, verify_storage

ROOT = Path(__file__).resolve().parent.parent


def _resources(result, type_):
    return [r for r in result.resources if r.type == type_]


def test_declared_lifecycle_rules_equal_what_minio_is_handed(plan):
    result = plan("local")
    for ilm in _resources(result, adapter.MINIO_ILM):
        tool = next(t for t, b in result.outputs["buckets"].items() if b["name"] == ilm.inputs["bucket"])
        applied = [adapter.minio_lifecycle_rule(r) for r in ilm.inputs["rules"]]
        assert verify_storage.read_rules(applied) == verify_storage.declared_rules(result.outputs["buckets"][tool])


def test_declared_lifecycle_rules_equal_what_aws_is_handed(plan):
    result = plan("staging")
    configurations = _resources(result, adapter.AWS_LIFECYCLE)
    assert configurations
    for configuration in configurations:
        tool = next(t for t, b in result.outputs["buckets"].items() if b["name"] == configuration.inputs["bucket"])
        applied = adapter._camel_to_pascal(configuration.inputs["rules"])
        assert verify_storage.read_rules(applied) == verify_storage.declared_rules(result.outputs["buckets"][tool])


def test_a_changed_rule_is_a_difference():
    declared = {"lifecycleRules": [{"id": "r", "prefix": "fake/", "transitions": [], "expire_days": 8, "abort_multipart_days": None, "noncurrent_days": None}]}
    live = [{"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "fake/"}, "Expiration": {"Days": 9}}]
    assert verify_storage.read_rules(live) != verify_storage.declared_rules(declared)


def test_planned_irsa_trusts_name_exactly_their_service_account(plan):
    result = plan("staging")
    namespace = next(iter(result.outputs["identities"].values()))["namespace"]
    roles = _resources(result, adapter.AWS_ROLE)
    assert roles
    for role in roles:
        trust = json.loads(role.inputs["assumeRolePolicy"])
        sa = role.inputs["name"].removeprefix("obs-staging-")
        assert verify_identity.irsa_trust_problem(trust, namespace, sa) is None
        assert verify_identity.irsa_trust_problem(trust, namespace, sa + "-other") is not None
        loose = json.loads(role.inputs["assumeRolePolicy"])
        condition = loose["Statement"][0]["Condition"]
        condition["StringLike"] = condition.pop("StringEquals")
        assert "condition" in verify_identity.irsa_trust_problem(loose, namespace, sa)


def test_planned_tls_policies_deny_plain_http(plan):
    result = plan("staging")
    for policy in _resources(result, adapter.AWS_POLICY):
        document = json.loads(policy.inputs["policy"])
        arn = f"arn:aws:s3:::{policy.inputs['bucket']}"
        assert verify_storage.denies_insecure_transport(document, arn)
        document["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"] = "true"
        assert not verify_storage.denies_insecure_transport(document, arn)


def test_report_never_prints_a_secret():
    out = io.StringIO()
    report = verify.Report(secrets=["hunter2-secret"], stream=out)
    report.failed("identity", "loki", "call failed: SignatureDoesNotMatch for key hunter2-secret")
    assert "hunter2-secret" not in out.getvalue() and "hunter2-secret" not in report.results[0].detail
    assert "[secret]" in out.getvalue()


def test_local_outputs_give_each_tool_its_own_credentials(tmp_path):
    outputs = {"target": "local", "buckets": {"loki": {"name": "loki", "region": "us-east-1", "prefix": "", "endpoint": "minio:9000"}},
               "minioRootUser": "root-user", "minioRootPassword": "root-password",
               "s3Credentials": {"loki": "[default]\naws_access_key_id = obs-loki\naws_secret_access_key = loki-secret\n"}}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    stack = verify.load_stack("local", str(path))
    assert stack.tool_keys["loki"] == verify.Keys("obs-loki", "loki-secret")
    assert stack.admin_keys == verify.Keys("root-user", "root-password")
    assert {"root-password", "loki-secret"} <= set(stack.secrets())


def test_unreadable_outputs_exit_2_with_one_line(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"urls": {}}))
    proc = subprocess.run([sys.executable, "-m", "tools.verify", "--stack", "local", "--outputs", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: stack 'local': the outputs of stack 'local' have no 'target': is the stack deployed (pulumi up)?"]
