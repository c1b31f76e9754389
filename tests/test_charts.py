"""Every Helm value the program sets is a key of the PINNED chart version: the key lists in
tests/upstream/chart-*.keys are generated from the chart's values.yaml (and values.schema.json
where it has one) and templates at the pinned tag, which each file's header records."""

from __future__ import annotations

import pytest

from components.eks import loki as eks_loki, prometheus as eks_prometheus, tempo as eks_tempo
from components.core import versions
from tests.conftest import tool_overrides
from tests.test_renderers import UPSTREAM, key_paths, stack_cfg, unknown_keys, upstream

ANNOTATIONS = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/x"}
LOKI_ANNOTATIONS = {sa: ANNOTATIONS for sa in eks_loki.COMPONENT_ACCOUNTS.values()}
VARIANTS = [
    None,
    {"obs-storage:tenants": ["team-a", "team-b"]},
    {"obs-storage:aws": {"clusterName": "c", "walVolume": "persistentVolume", "prometheusCrds": "existing", "nodeExporter": True}},
]
KEY_FILES = {
    "chart-loki.keys": "loki-chart",
    "chart-tempo-distributed.keys": "tempo-chart",
    "chart-kube-prometheus-stack.keys": "kube-prometheus-stack-chart",
}


def header(name: str) -> dict[str, str]:
    fields = {}
    for line in (UPSTREAM / name).read_text().splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line[1:].strip().partition(": ")
        if sep and " " not in key:
            fields[key] = value
    return fields


@pytest.mark.parametrize("name", sorted(KEY_FILES))
def test_key_lists_match_the_pinned_chart_versions(name):
    pin_key = KEY_FILES[name]
    pin = versions.DEFAULT_PINS[pin_key]
    fields = header(name)
    assert (fields.get("chart"), fields.get("version")) == (pin.name, pin.version), (
        f"tests/upstream/{name} was generated from {fields.get('chart')} {fields.get('version')}, but {pin_key} pins "
        f"{pin.name} {pin.version}: regenerate the key list from the pinned tag"
    )
    assert fields["pin"] == f'components/core/versions.py "{pin_key}"'
    # The tag the keys were read at, and the commit it pointed to.
    assert fields["tag"].startswith(f"{pin.name}-{pin.version} (commit ")
    assert fields["repo"] in pin.why, f"{pin_key}: say in its reason which repository the chart comes from"


def test_header_check_refuses_another_version(tmp_path, monkeypatch):
    text = (UPSTREAM / "chart-loki.keys").read_text()
    pinned = versions.DEFAULT_PINS["loki-chart"].version
    (tmp_path / "chart-loki.keys").write_text(text.replace(f"# version: {pinned}\n", "# version: 0.0.1\n", 1))
    monkeypatch.setattr("tests.test_charts.UPSTREAM", tmp_path)
    with pytest.raises(AssertionError, match="regenerate"):
        test_key_lists_match_the_pinned_chart_versions("chart-loki.keys")


@pytest.mark.parametrize("overrides", VARIANTS)
def test_loki_values_are_chart_keys(overrides):
    values = eks_loki.values(stack_cfg("staging", overrides), LOKI_ANNOTATIONS)
    assert unknown_keys(key_paths(values), upstream("chart-loki.keys")) == []


@pytest.mark.parametrize("overrides", VARIANTS)
def test_tempo_values_are_chart_keys(overrides):
    values = eks_tempo.values(stack_cfg("staging", overrides), ANNOTATIONS)
    assert unknown_keys(key_paths(values), upstream("chart-tempo-distributed.keys")) == []


@pytest.mark.parametrize("mode", ["sidecar", "receive"])
@pytest.mark.parametrize("overrides", VARIANTS)
def test_kube_prometheus_values_are_chart_keys(mode, overrides):
    cfg = stack_cfg("staging", {**(overrides or {}), **tool_overrides("staging", thanos={"mode": mode})})
    receive_url = "http://thanos-receive:19291/api/v1/receive" if mode == "receive" else None
    values = eks_prometheus.values(cfg, ANNOTATIONS, receive_url)
    assert unknown_keys(key_paths(values), upstream("chart-kube-prometheus-stack.keys")) == []


def test_checker_refuses_a_key_the_chart_lacks():
    values = eks_loki.values(stack_cfg("staging"), LOKI_ANNOTATIONS)
    values["ingester"]["persistance"] = {"enabled": False}
    assert unknown_keys(key_paths(values), upstream("chart-loki.keys")) == ["ingester.persistance", "ingester.persistance.enabled"]
