"""`make up` stops with a clear message when the Pulumi CLI or a Docker engine is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
