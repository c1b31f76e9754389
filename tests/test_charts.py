"""Every Helm value the program sets is a key of the chart's values.yaml (key lists in
tests/upstream/chart-*.keys; their headers say which chart version was read, which is older
than the pinned one where no newer copy could be found)."""

from __future__ import annotations

import pytest

from components import eks
from tests.conftest import tool_overrides
from tests.test_renderers import key_paths, stack_cfg, unknown_keys, upstream

ANNOTATIONS = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x"}
VARIANTS = [None, {"obs-storage:tenants": ["team-a", "team-b"]}, {"obs-storage:aws": {"clusterName": "c", "walVolume": "persistentVolume"}}]


@pytest.mark.parametrize("overrides", VARIANTS)
def test_loki_values_are_chart_keys(overrides):
    values = eks.loki_values(stack_cfg("staging", overrides), ANNOTATIONS)
    assert unknown_keys(key_paths(values), upstream("chart-loki.keys")) == []


@pytest.mark.parametrize("overrides", VARIANTS)
def test_tempo_values_are_chart_keys(overrides):
    values = eks.tempo_values(stack_cfg("staging", overrides), ANNOTATIONS)
    assert unknown_keys(key_paths(values), upstream("chart-tempo-distributed.keys")) == []


@pytest.mark.parametrize("mode", ["sidecar", "receive"])
def test_kube_prometheus_values_are_chart_keys(mode):
    cfg = stack_cfg("staging", tool_overrides("staging", thanos={"mode": mode}))
    receive_url = "http://thanos-receive:19291/api/v1/receive" if mode == "receive" else None
    values = eks.kube_prometheus_values(cfg, ANNOTATIONS, receive_url)
    assert unknown_keys(key_paths(values), upstream("chart-kube-prometheus-stack.keys")) == []


def test_checker_refuses_a_key_the_chart_lacks():
    values = eks.loki_values(stack_cfg("staging"), ANNOTATIONS)
    values["ingester"]["persistance"] = {"enabled": False}
    assert unknown_keys(key_paths(values), upstream("chart-loki.keys")) == ["ingester.persistance", "ingester.persistance.enabled"]
