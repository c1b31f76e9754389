"""`tools.verify` without servers: its comparisons agree with what the providers are handed, its
judgements of trust and TLS policies, and that it never prints a secret. (Against real servers:
tests/integration/.)"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.integration import adapter
from tools.verify import common as verify, freshness as verify_freshness, identity as verify_identity, storage as verify_storage, tools as verify_tools

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


def test_local_outputs_without_minio_root_fail_each_bucket_check_without_a_call(monkeypatch):
    buckets = {tool: {"name": tool, "prefix": "", "region": "us-east-1", "endpoint": "minio:9000"} for tool in ("loki", "tempo")}
    for module in (verify_storage, verify_freshness):
        stack = verify.Stack("local", {"target": "local", "buckets": buckets})
        monkeypatch.setattr(stack, "s3", lambda *args, **kwargs: pytest.fail("no S3 client without credentials"))
        report = verify.Report(stream=io.StringIO())
        module.check(stack, report)
        assert [(r.part, r.subject, r.status, r.detail) for r in report.results] == [
            (module.PART, tool, "FAIL", "no credentials to read the bucket with (outputs lack minioRootUser/minioRootPassword)") for tool in buckets]


def test_unreadable_outputs_exit_2_with_one_line(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"urls": {}}))
    proc = subprocess.run([sys.executable, "-m", "tools.verify", "--stack", "local", "--outputs", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: stack 'local': the outputs of stack 'local' have no 'target': is the stack deployed (pulumi up)?"]


class _Bucket:
    def __init__(self, objects, modified):
        self.objects, self.modified = objects, modified

    def list_objects_v2(self, Bucket, Prefix):
        return {"Contents": [{"Key": k, "LastModified": self.modified} for k in self.objects if k.startswith(Prefix)]}

    def get_object(self, Bucket, Key):
        return {"Body": io.BytesIO(self.objects[Key])}


def _objects_check(monkeypatch, tool, objects):
    since = datetime(2026, 11, 28, 10, 26, 30, tzinfo=timezone.utc)
    stack = verify.Stack("local", {"target": "local", "buckets": {tool: {"name": tool, "prefix": "", "region": "us-east-1"}}})
    monkeypatch.setattr(stack, "s3", lambda keys: _Bucket(objects, since + timedelta(seconds=4)))
    monkeypatch.setattr(verify_tools, "wait_for", lambda report, what, poll, timeout, interval=2.0: poll())
    report = verify.Report(stream=io.StringIO())
    verify_tools._objects_appear(stack, report, tool, since)
    return report.results[-1]


def _tempo_meta(block, level):
    return json.dumps({"format": "vParquet4", "blockID": block, "tenantID": "single-tenant", "compactionLevel": level}).encode()


# Written by Loki 3.7 and Tempo 2.10 against SeaweedFS with nothing pushed or flushed: Loki's
# compactor (delete requests, per-tenant index), Tempo's blocklist poll (tenant index) and its
# compactor (a merged block, the replaced block's marker).
MERGED = "c3a3ff82-162a-4b2c-a6e5-eba9b920df8e"
BACKGROUND = {
    "loki": {"index/delete_requests/delete_requests.gz": b"", "index/index_20785/fake/1795861901795741439-compactor-1795861339195-1795861821538-4e55e4dc.tsdb.gz": b""},
    "tempo": {"single-tenant/index.json.gz": b"", "single-tenant/index.pb.zst": b"",
              f"single-tenant/{MERGED}/data.parquet": b"", f"single-tenant/{MERGED}/meta.json": _tempo_meta(MERGED, 1),
              "single-tenant/fdf14657-794c-421d-b5ed-89c1d8ca6098/meta.compacted.json": _tempo_meta("fdf14657-794c-421d-b5ed-89c1d8ca6098", 0)},
}
FLUSHED = {
    "loki": ("fake/6770cd34d2b4c706/1a221ad5c3b:1a221ad5c3c:398aa82b", b""),
    "tempo": ("single-tenant/1adb8574-b0a8-4b62-9477-c280a3b963e2/meta.json", _tempo_meta("1adb8574-b0a8-4b62-9477-c280a3b963e2", 0)),
}


def test_objects_a_tool_writes_on_its_own_do_not_pass_as_the_flush(monkeypatch):
    for tool, objects in BACKGROUND.items():
        result = _objects_check(monkeypatch, tool, {**objects, f"obs-verify/abc/{tool}": b""})
        assert result.status == "FAIL", (tool, result.detail)
        key, body = FLUSHED[tool]
        result = _objects_check(monkeypatch, tool, {**objects, key: body})
        assert result.status == "PASS" and result.detail.endswith(f"after the flush: {key}"), (tool, result.detail)


@pytest.mark.parametrize("hidden", [{"s3Credentials": "[secret]"}, {"minioRootPassword": "[secret]"},
                                    {"s3Credentials": {"loki": "[secret]"}}])
def test_outputs_with_secret_placeholders_exit_2_with_one_line(tmp_path, hidden):
    # What `pulumi stack output --json` without --show-secrets, or an offline plan, writes.
    outputs = {"target": "local", "buckets": {"loki": {"name": "loki", "region": "us-east-1", "prefix": ""}},
               "minioRootUser": "root-user", "minioRootPassword": "root-password",
               "s3Credentials": {"loki": "[default]\naws_access_key_id = obs-loki\naws_secret_access_key = loki-secret\n"}, **hidden}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    proc = subprocess.run([sys.executable, "-m", "tools.verify", "--stack", "local", "--outputs", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: stack 'local': the outputs hold placeholders instead of values ({next(iter(hidden))}), ")
    assert "`pulumi stack output --json --show-secrets --stack local`" in line


def test_the_local_plans_own_outputs_are_refused_as_placeholders(tmp_path, plan):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(plan("local").outputs))
    with pytest.raises(verify.OutputsError, match=r"placeholders instead of values \(grafanaAdminPassword, minioRootPassword, minioRootUser, s3Credentials\)"):
        verify.load_stack("local", str(path))
    # The storage checks do not read Grafana's password: only the credentials they use must be real.
    outputs = {**plan("local").outputs, "minioRootUser": "root", "minioRootPassword": "root-password", "s3Credentials": {}}
    path.write_text(json.dumps(outputs))
    assert verify.load_stack("local", str(path), ("storage",)).admin_keys == verify.Keys("root", "root-password")
    with pytest.raises(verify.OutputsError, match=r"\(grafanaAdminPassword\)"):
        verify.load_stack("local", str(path), ("storage", "tools"))


def _without_aws_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_aws_checks_without_credentials_say_so_once(tmp_path, monkeypatch, capsys, plan):
    from tools.verify import cli

    _without_aws_credentials(monkeypatch, tmp_path)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(plan("staging").outputs))
    monkeypatch.setattr(cli, "run", lambda *args: pytest.fail("no check runs without credentials"))
    assert cli.main(["--stack", "staging", "--outputs", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: stack 'staging': no AWS credentials found")


def test_aws_credentials_from_the_environment_are_enough_to_start(tmp_path, monkeypatch):
    _without_aws_credentials(monkeypatch, tmp_path)
    assert verify.aws_credentials_problem() is not None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    assert verify.aws_credentials_problem() is None
