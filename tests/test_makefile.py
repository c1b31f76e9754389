"""The Makefile and the commands the README tells a new user to run.

`make up` stops with a clear message when the Pulumi CLI or a Docker engine is missing, uses the
user's passphrase when one is exported, and the README's offline commands work as written.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def make(target: str, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path}
    return subprocess.run([shutil.which("make"), "-s", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def fake_bin(tmp_path: Path, name: str, script: str) -> None:
    tool = tmp_path / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(0o755)


def test_up_without_pulumi_cli_says_so(tmp_path):
    proc = make("up", f"{tmp_path}:/usr/bin:/bin")
    assert proc.returncode != 0
    assert "the Pulumi CLI is not installed" in proc.stdout + proc.stderr


def test_up_without_docker_engine_says_so(tmp_path):
    fake_bin(tmp_path, "pulumi", "exit 0")
    fake_bin(tmp_path, "docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    proc = make("up", f"{tmp_path}:/usr/bin:/bin")
    assert proc.returncode != 0
    assert "no Docker engine answers" in proc.stdout + proc.stderr


def test_up_without_docker_command_says_so(tmp_path):
    fake_bin(tmp_path, "pulumi", "exit 0")
    proc = make("check-docker", f"{tmp_path}:/usr/bin:/bin")
    assert proc.returncode != 0
    assert "docker command is not installed" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- workflows
WORKFLOWS = ROOT / ".github" / "workflows"


def step(workflow: str, job: str, step_id: str) -> dict:
    steps = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"][job]["steps"]
    return next(s for s in steps if s.get("id") == step_id)


def run_step(script: str, tmp_path: Path, stack: str, has_backend: bool) -> tuple[int, str]:
    output = tmp_path / "github_output"
    output.write_text("")
    env = {"PATH": "/usr/bin:/bin", "STACK": stack, "HAS_BACKEND": "true" if has_backend else "false", "GITHUB_OUTPUT": str(output)}
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    return proc.returncode, output.read_text() + proc.stdout


@pytest.mark.parametrize(
    "stack,has_backend,ready",
    [("local", False, True), ("staging", True, True), ("staging", False, False), ("prod", True, False)],
)
def test_preview_runs_only_for_stacks_that_are_set_up(tmp_path, stack, has_backend, ready):
    # The committed prod stack file holds placeholder secrets: no preview can decrypt them.
    code, out = run_step(step("pull-request.yml", "preview", "setup")["run"], tmp_path, stack, has_backend)
    assert code == 0 and f"ready={'true' if ready else 'false'}" in out, out
    if not ready:
        assert "::notice::" in out and "First-time set-up" in out


@pytest.mark.parametrize("job,stack", [("staging", "staging"), ("prod", "prod")])
def test_deploy_stops_with_the_reason_when_the_stack_is_not_set_up(tmp_path, job, stack):
    script = step("deploy.yml", job, "setup")["run"]
    code, out = run_step(script, tmp_path, stack, has_backend=False)
    assert code != 0 and "::error::" in out and "First-time set-up" in out
    code, out = run_step(script, tmp_path, stack, has_backend=True)
    assert (code == 0) == (stack == "staging"), out


def test_local_preview_creates_its_state_folder_before_pulumi_logs_in():
    steps = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())["jobs"]["preview"]["steps"]
    mkdir = next(i for i, s in enumerate(steps) if 'mkdir -p "$RUNNER_TEMP/pulumi-state"' in s.get("run", ""))
    pulumi = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert mkdir < pulumi
    assert "format('file://{0}/pulumi-state', runner.temp)" in steps[pulumi]["with"]["cloud-url"]
