"""The local and prod plans applied to a real S3 server (SeaweedFS), then `tools.verify`'s
storage and identity checks against it: policies and lifecycle rules are judged by real calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration import adapter
from tests.integration.conftest import run_verify

pytestmark = pytest.mark.real_server


def credentials_file(access: str, secret: str) -> str:
    return f"[default]\naws_access_key_id = {access}\naws_secret_access_key = {secret}\n"


def local_outputs(plan: dict[str, Any], server, keys: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """The plan's outputs as `pulumi stack output --json --show-secrets` would show them, with the
    server's address and the credentials the server handed out in place of the secrets."""
    outputs = plan["outputs"]
    user_tool = {identity["minioUser"]: tool for tool, identity in outputs["identities"].items()}
    outputs["urls"] = {"minioApi": server.endpoint}
    outputs["minioRootUser"], outputs["minioRootPassword"] = server.admin
    outputs["s3Credentials"] = {user_tool[user]: credentials_file(*pair) for user, pair in keys.items()}
    return outputs


def prod_outputs(plan: dict[str, Any], server) -> dict[str, Any]:
    outputs = plan["outputs"]
    for bucket in outputs["buckets"].values():
        bucket["endpoint"], bucket["tls"] = server.endpoint.removeprefix("http://"), False
    outputs["urls"] = {}
    # Hetzner: one key pair for everything (here the server's admin identity).
    outputs["s3Credentials"] = {tool: credentials_file(*server.admin) for tool in outputs["buckets"]}
    return outputs


def lines(result: dict[str, Any], status: str) -> list[str]:
    return [f"{r['subject']}: {r['detail']}" for r in result["results"] if r["status"] == status]


def probe_objects_left(server, buckets) -> list[str]:
    s3 = server.client("s3")
    left = []
    for bucket in buckets:
        page = s3.list_object_versions(Bucket=bucket)
        left += [f"{bucket}/{v['Key']}" for v in page.get("Versions", []) + page.get("DeleteMarkers", []) if "obs-verify/" in v["Key"]]
    return left


def test_local_plan_passes_storage_and_identity_checks(seaweedfs, plan_json, tmp_path):
    plan = plan_json("local")
    keys = adapter.apply_minio(plan, seaweedfs.client("s3"), seaweedfs.client("iam"))
    assert set(keys) == {i["minioUser"] for i in plan["outputs"]["identities"].values()}
    code, result, stderr = run_verify(local_outputs(plan, seaweedfs, keys), tmp_path, "local", "storage", "identity")
    assert code == 0 and not lines(result, "FAIL"), lines(result, "FAIL") or stderr
    passed = lines(result, "PASS")
    for tool, bucket in plan["outputs"]["buckets"].items():
        name = bucket["name"]
        assert f"{tool}: bucket {name} exists" in passed
        rule_ids = ", ".join(sorted(r["id"] for r in bucket["lifecycleRules"])) or "none"
        assert f"{tool}: lifecycle rules read back as declared: {rule_ids}" in passed
        versioning = "Enabled (declared Enabled)" if bucket["versioning"] else "never enabled (declared off)"
        assert f"{tool}: versioning {versioning}" in passed
        assert f"{tool}: anonymous LIST of {name} denied" in passed
        others = [b["name"] for t, b in plan["outputs"]["buckets"].items() if t != tool]
        for other in others:
            assert any(p.startswith(f"{tool}: s3:PutObject on ") and p.endswith(f"bucket {other} denied") for p in passed), (tool, other, passed)
    # Tempo alone tags objects: the same real call is allowed for it and denied for Loki.
    assert any(p.startswith("tempo: s3:PutObjectTagging on tempo/") and p.endswith(" allowed") for p in passed)
    assert any(p.startswith("loki: s3:PutObjectTagging on loki/") and p.endswith(" denied") for p in passed)
    assert not lines(result, "SKIP")
    assert probe_objects_left(seaweedfs, [b["name"] for b in plan["outputs"]["buckets"].values()]) == []
    printed = json.dumps(result) + stderr
    assert not [s for s in [seaweedfs.admin[1], *(secret for _, secret in keys.values())] if s in printed]


def test_prod_plan_passes_storage_and_identity_checks(seaweedfs, plan_json, tmp_path):
    plan = plan_json("prod")
    assert adapter.apply_minio(plan, seaweedfs.client("s3"), seaweedfs.client("iam")) == {}
    code, result, stderr = run_verify(prod_outputs(plan, seaweedfs), tmp_path, "prod", "storage", "identity")
    assert code == 0 and not lines(result, "FAIL"), lines(result, "FAIL") or stderr
    passed, skipped = lines(result, "PASS"), lines(result, "SKIP")
    for tool, bucket in plan["outputs"]["buckets"].items():
        assert f"{tool}: lifecycle rules read back as declared: none" in passed
        assert f"{tool}: versioning never enabled (declared off)" in passed
        assert any(p.startswith(f"{tool}: s3:PutObject on {bucket['name']}/") and p.endswith(" allowed") for p in passed)
    # What one key pair cannot prove is said, not hidden.
    assert skipped and all("Hetzner has no IAM" in s for s in skipped)


def _edit_policy(user: str, change):
    def edit(resource):
        if resource["type"] == adapter.MINIO_POLICY and resource["inputs"]["name"] == f"{user}-bucket-access":
            document = json.loads(resource["inputs"]["policy"])
            change(document)
            resource["inputs"]["policy"] = json.dumps(document)
    return edit


def _widen_objects(document):
    for st in document["Statement"]:
        if st["Sid"] == "ObjectsInOwnBucket":
            st["Resource"] = ["arn:aws:s3:::*"]


def _drop_delete(document):
    for st in document["Statement"]:
        st["Action"] = [a for a in st["Action"] if a != "s3:DeleteObject"]


def _set_expiration(days: str):
    def edit(resource):
        if resource["type"] == adapter.MINIO_ILM and resource["inputs"]["bucket"] == "loki":
            for rule in resource["inputs"]["rules"]:
                if rule.get("expiration"):
                    rule["expiration"] = days
    return edit


def _widen_filter(resource):
    if resource["type"] == adapter.MINIO_ILM and resource["inputs"]["bucket"] == "loki":
        for rule in resource["inputs"]["rules"]:
            rule.pop("filter", None)


@pytest.mark.parametrize(
    "edit, expected",
    [
        # Too wide: Loki's objects statement on every bucket lets it write into Tempo's.
        (_edit_policy("obs-loki", _widen_objects), "loki: s3:PutObject on tempo's bucket tempo denied: got allowed"),
        # Too narrow: the Thanos compactor can no longer delete (retention would stop).
        (_edit_policy("obs-thanos", _drop_delete), "thanos: s3:DeleteObject on thanos/"),
        # A lifecycle rule that differs from the declaration.
        (_set_expiration("80d"), "loki: lifecycle rules of loki differ from the declaration: loki-data-fake: expireDays 80 != declared 8"),
        # A data rule that slipped to the whole bucket would delete Loki's index.
        (_widen_filter, "loki: lifecycle rules of loki differ from the declaration: loki-data-fake: prefix '' != declared 'fake/'"),
    ],
    ids=["policy-too-wide", "policy-too-narrow", "lifecycle-days", "lifecycle-prefix"],
)
def test_a_broken_policy_or_rule_fails_by_a_real_call(seaweedfs, plan_json, tmp_path, edit, expected):
    plan = plan_json("local")
    keys = adapter.apply_minio(plan, seaweedfs.client("s3"), seaweedfs.client("iam"), edit=edit)
    code, result, _ = run_verify(local_outputs(plan, seaweedfs, keys), tmp_path, "local", "storage", "identity")
    failures = lines(result, "FAIL")
    assert code == 1
    assert any(f.startswith(expected) for f in failures), failures
