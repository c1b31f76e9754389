"""Every key the renderers set exists in the upstream configuration reference of the pinned
version (key lists in tests/upstream/, each with its source in its header)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import pytest

from components.core import config, loading
from components.containers import workloads
from components.core.renderers import grafana, loki, prometheus, tempo, thanos
from components.docker.swarm import swarm_layout
from tests.conftest import tool_overrides
from tools import engine

UPSTREAM = Path(__file__).resolve().parent / "upstream"


def upstream(name: str) -> set[str]:
    return {line.split(" #")[0].strip() for line in (UPSTREAM / name).read_text().splitlines() if line.strip() and not line.startswith("#")}


def key_paths(value: Any, prefix: str = "", maps: tuple[str, ...] = ()) -> Iterable[str]:
    """Dotted key paths; lists as `[]`; keys under a path in `maps` (free-form map) as `*`."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = "*" if prefix in maps else str(key)
            path = f"{prefix}.{name}" if prefix else name
            yield path
            yield from key_paths(item, path, maps)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                yield from key_paths(item, f"{prefix}[]", maps)


def unknown_keys(paths: Iterable[str], known: set[str]) -> list[str]:
    bad = []
    for path in paths:
        if path in known:
            continue
        # A documented leaf whose structure the reference does not expand (e.g. a shared block).
        ancestors = [path[: i] for i in range(len(path)) if path[i] in ".["]
        if any(a in known and not any(k.startswith(a + ".") or k.startswith(a + "[") for k in known) for a in ancestors):
            continue
        # Under a free-form map (`<path>.*` in the list) any key is valid.
        if any(f"{a}.*" in known for a in ancestors):
            continue
        bad.append(path)
    return sorted(set(bad))


def stack_cfg(stack: str, overrides: dict | None = None) -> config.StackConfig:
    raw, secret = engine.stack_config(stack, overrides)
    return loading.load(stack, raw, set(secret))


# EC2 fleets (components/ec2/platform.py): memberlist through Cloud Map, the address from the environment.
EC2_LAYOUT = workloads.Layout(3, None, "x", domain="obs-x.internal", ring_store="memberlist", address="${INSTANCE_IP}")
MULTI = {"obs-storage:tenants": ["team-a", "team-b"]}
CASES = [("local", None), ("prod", None), ("staging", None), ("staging", MULTI)]


@pytest.mark.parametrize("stack,overrides", CASES)
def test_loki_config_keys_exist_upstream(stack, overrides):
    cfg = stack_cfg(stack, overrides)
    known = upstream("loki-3.7.keys")
    store = workloads.object_store(cfg, "loki")
    for cluster in (workloads.Layout(1, None, "x").cluster(), swarm_layout("x").cluster(), EC2_LAYOUT.cluster("loki")):
        assert unknown_keys(key_paths(loki.render(cfg, store, cluster)), known) == []
    overrides_paths = key_paths(loki.tenant_overrides(cfg), maps=("overrides",))
    assert unknown_keys(overrides_paths, known) == []


@pytest.mark.parametrize("stack,overrides", CASES)
def test_tempo_config_keys_exist_upstream(stack, overrides):
    cfg = stack_cfg(stack, overrides)
    store = workloads.object_store(cfg, "tempo")
    for cluster in (workloads.Layout(1, None, "x").cluster(), swarm_layout("x").cluster(), EC2_LAYOUT.cluster("tempo")):
        assert unknown_keys(key_paths(tempo.render(cfg, store, cluster)), upstream("tempo-2.10.keys")) == []


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_thanos_objstore_keys_exist_upstream(stack):
    cfg = stack_cfg(stack)
    for sdk_auth in (False, True):
        store = workloads.object_store(cfg, "thanos", aws_sdk_auth=sdk_auth)
        assert unknown_keys(key_paths(thanos.objstore(store)), upstream("thanos-objstore-s3.keys")) == []


def flag_names(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def test_thanos_flags_exist_upstream():
    cfg = stack_cfg("staging")
    known = upstream("thanos-0.42.flags")
    commands = {
        "sidecar": thanos.sidecar_args("http://prometheus:9090", "/prometheus"),
        "store": thanos.store_args(),
        "query": thanos.query_args(["a:10901"]),
        "compact": thanos.compact_args(cfg),
        "receive": thanos.receive_args(cfg, "r-0", "r-0:10901", "/etc/thanos/hashrings.json"),
    }
    for component, args in commands.items():
        assert args[0] == component
        missing = [f for f in flag_names(args) if f"{component} {f}" not in known]
        assert missing == [], f"thanos {component}: {missing}"


# Hidden in Prometheus' --help and CLI reference (cmd/prometheus/main.go declares them .Hidden()),
# yet required by Thanos' sidecar documentation (docs/components/sidecar.md) for block uploads.
HIDDEN_PROMETHEUS_FLAGS = {"--storage.tsdb.min-block-duration", "--storage.tsdb.max-block-duration"}


def test_prometheus_flags_and_config_keys_exist_upstream():
    known_flags = upstream("prometheus-3.flags") | HIDDEN_PROMETHEUS_FLAGS
    for mode in ("sidecar", "receive"):
        cfg = stack_cfg("local", tool_overrides("local", thanos={"mode": mode, "receiveReplicationFactor": 1}))
        assert [f for f in flag_names(prometheus.flags(cfg)) if f not in known_flags] == []
        receive_url = "http://r:19291/api/v1/receive" if mode == "receive" else None
        rendered = prometheus.render(cfg, "local", "p-0", {"job": ["a:1"]}, receive_url)
        assert unknown_keys(key_paths(rendered, maps=("global.external_labels",)), upstream("prometheus-3.config.keys")) == []


@pytest.mark.parametrize("stack,overrides", CASES)
def test_grafana_datasource_keys_exist_upstream(stack, overrides):
    cfg = stack_cfg(stack, overrides)
    rendered = grafana.render(cfg, {"thanos": "http://q", "loki": "http://l", "tempo": "http://t"})
    assert unknown_keys(key_paths(rendered), upstream("grafana-datasource.keys")) == []


def test_the_checker_catches_a_misspelled_key():
    cfg = stack_cfg("local")
    rendered = loki.render(cfg, workloads.object_store(cfg, "loki"), workloads.Layout(1, None, "x").cluster())
    rendered["compactor"]["retention_delete_dealy"] = "2h"
    assert unknown_keys(key_paths(rendered), upstream("loki-3.7.keys")) == ["compactor.retention_delete_dealy"]
