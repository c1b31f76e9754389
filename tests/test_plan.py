"""`python -m tools.plan` as a reviewer runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def plan_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.plan", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_plan_json_for_each_stack(stack):
    proc = plan_cli("--stack", stack, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["stack"] == stack
    assert set(data) == {"stack", "resources", "outputs", "violations"}
    for resource in data["resources"]:
        assert set(resource) == {"urn", "type", "name", "parent", "custom", "dependsOn", "provider", "inputs"}
    types = {r["type"] for r in data["resources"]}
    assert "obs:storage:ToolBucket" in types
    assert set(data["outputs"]["buckets"]) == {"loki", "tempo", "thanos"}


def test_prod_secrets_are_placeholders_in_the_plan():
    data = json.loads(plan_cli("--stack", "prod", "--json").stdout)
    provider = next(r for r in data["resources"] if r["type"] == "pulumi:providers:minio")
    assert provider["inputs"]["minioUser"] == "[secret]" and provider["inputs"]["minioPassword"] == "[secret]"
    assert "plan-placeholder" not in json.dumps(data)


def test_text_plan_shows_tree():
    proc = plan_cli("--stack", "staging")
    assert proc.returncode == 0, proc.stderr
    assert "obs:storage:ToolBucket  loki" in proc.stdout
    assert "    aws:s3/bucket:Bucket  loki-bucket" in proc.stdout


def test_bad_config_exits_non_zero_with_one_line(tmp_path):
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "components").symlink_to(ROOT / "components")
    (tmp_path / "tools").symlink_to(ROOT / "tools")
    (tmp_path / "policies").symlink_to(ROOT / "policies")
    (tmp_path / "Pulumi.broken.yaml").write_text(
        "config:\n  obs-storage:target: local\n  obs-storage:tools:\n"
        "    loki: {bucket: loki, retentionDays: 30, expireAfterDays: 10}\n"
        "    tempo: {bucket: tempo}\n    thanos: {bucket: thanos}\n"
    )
    proc = plan_cli("--stack", "broken", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "stack 'broken': obs-storage:tools.loki.expireAfterDays = 10" in lines[0] and "Fix:" in lines[0]


def test_unknown_stack_is_an_error():
    proc = plan_cli("--stack", "nope")
    assert proc.returncode == 2 and "local, prod, staging" in proc.stderr


def test_plan_json_shows_ordering_and_provider():
    data = json.loads(plan_cli("--stack", "local", "--json").stdout)
    by_name = {r["name"]: r for r in data["resources"]}
    loki = by_name["tools-loki"]
    # The Loki container waits for its bucket (created through the MinIO provider, which waits for MinIO).
    assert by_name["loki-bucket"]["urn"] in loki["dependsOn"]
    assert by_name["loki-bucket"]["provider"] == by_name["minio-provider"]["urn"]
    assert loki["provider"].endswith("pulumi:providers:docker::local-docker")
