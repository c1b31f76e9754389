"""Shared fixtures: run the real program for a stack under the strict mock engine."""

from __future__ import annotations

import functools
import json
from typing import Any, Optional

import pytest

from tools import engine

STACKS = ("local", "staging", "prod")


@functools.lru_cache(maxsize=None)
def _cached(stack: str) -> engine.PlanResult:
    return engine.run(stack)


@pytest.fixture(params=STACKS)
def any_stack(request) -> engine.PlanResult:
    return _cached(request.param)


@pytest.fixture
def plan():
    """plan(stack) -> PlanResult for the stack file as committed (cached)."""
    return _cached


@pytest.fixture
def plan_with():
    """plan_with(stack, {full_key: value}) -> PlanResult with config overrides (None removes a key)."""

    def run(stack: str, overrides: Optional[dict[str, Any]] = None) -> engine.PlanResult:
        return engine.run(stack, overrides)

    return run


def aws_config(tenants: Optional[list[str]] = None, **tools: dict) -> dict[str, str]:
    """A minimal raw config (`project:key` -> string) for target aws: Loki, Tempo and Thanos with a
    bucket each, per-tool fields added or replaced."""
    fields = {"loki": {"bucket": "acme-loki"}, "tempo": {"bucket": "acme-tempo"}, "thanos": {"bucket": "acme-thanos"}}
    for tool, extra in tools.items():
        fields[tool] = {**fields[tool], **extra}
    raw = {
        "obs-storage:target": "aws",
        "obs-storage:aws": json.dumps({"clusterName": "stg"}),
        "obs-storage:storage": json.dumps({"region": "ap-northeast-2"}),
        "obs-storage:tools": json.dumps(fields),
    }
    if tenants is not None:
        raw["obs-storage:tenants"] = json.dumps(tenants)
    return raw


def aws_stack_config(tenants: Optional[list[str]] = None, mode: str = "sidecar", **tools: dict) -> "config.StackConfig":
    """`aws_config` loaded as stack `staging`; `mode` is tools.thanos.mode."""
    from components.core import config, loading

    return loading.load("staging", aws_config(tenants, **{**tools, "thanos": {"mode": mode, **tools.get("thanos", {})}}), set())


def tool_overrides(stack: str, **tools: dict) -> dict[str, Any]:
    """The stack's `tools` config with per-tool fields replaced."""
    import yaml

    raw = yaml.safe_load(open(f"Pulumi.{stack}.yaml"))["config"]["obs-storage:tools"]
    for tool, fields in tools.items():
        raw[tool] = {**raw[tool], **fields}
    return {"obs-storage:tools": raw}


def policy_of(registration: engine.Registration) -> dict:
    return json.loads(registration.inputs["policy"])
