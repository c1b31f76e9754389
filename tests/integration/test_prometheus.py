"""The prometheus.yml the local and prod plans deploy, checked by Prometheus 3 itself: `promtool
check config`, then Prometheus started on it with the plan's own flags, and `tools.verify`'s
readiness check against it.

Prometheus comes from Debian (.ci/install-prometheus: 3.5.3 from forky; the image the stacks
run is newer, see components/core/versions.py). OBS_PROMETHEUS_BIN_DIR names its directory.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import run_verify
from tests.integration.servers import LOOPBACK, Server, free_ports, unavailable

CONFIG_FILE = "/etc/prometheus/prometheus.yml"


def prometheus_binaries() -> tuple[str, str]:
    directory = os.environ.get("OBS_PROMETHEUS_BIN_DIR")
    if not directory:
        unavailable("OBS_PROMETHEUS_BIN_DIR is not set: run `.ci/install-prometheus` and export its output (make test-integration does)")
    prometheus, promtool = Path(directory) / "prometheus", Path(directory) / "promtool"
    for binary in (prometheus, promtool):
        if not binary.exists():
            unavailable(f"{binary} does not exist (re-run .ci/install-prometheus)")
    version = subprocess.run([str(prometheus), "--version"], capture_output=True, text=True).stdout
    assert re.match(r"prometheus, version 3\.", version), f"Prometheus 3.x needed, got: {version.splitlines()[:1]}"
    return str(prometheus), str(promtool)


def deployed_config(plan: dict[str, Any]) -> tuple[str, list[str]]:
    """(prometheus.yml, Prometheus flags) as the plan hands them to the container or Swarm service."""
    resources = plan["resources"]
    for r in resources:
        for upload in r["inputs"].get("uploads", []) or []:
            if upload.get("file") == CONFIG_FILE:
                return upload["content"], r["inputs"]["command"]
    for r in resources:
        spec = (r["inputs"].get("taskSpec") or {}).get("containerSpec") or {}
        for config in spec.get("configs", []) or []:
            if config.get("fileName") == CONFIG_FILE:
                data = next(c["inputs"]["data"] for c in resources if c["type"] == "docker:index/serviceConfig:ServiceConfig"
                            and config["configName"] in (c["name"], c["inputs"].get("name")))
                return base64.b64decode(data).decode(), spec["args"]
    raise AssertionError(f"no {CONFIG_FILE} in the plan")


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_promtool_accepts_the_deployed_config(plan_json, tmp_path, stack):
    _, promtool = prometheus_binaries()
    text, _ = deployed_config(plan_json(stack))
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    proc = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_refuses_a_broken_config(plan_json, tmp_path):
    _, promtool = prometheus_binaries()
    config = yaml.safe_load(deployed_config(plan_json("local"))[0])
    config["global"]["scrape_intervall"] = "30s"
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "scrape_intervall" in proc.stdout + proc.stderr


@pytest.mark.real_server
@pytest.mark.parametrize("stack", ["local", "prod"])
def test_prometheus_starts_on_the_deployed_config_and_flags(plan_json, tmp_path, stack):
    prometheus, _ = prometheus_binaries()
    text, flags = deployed_config(plan_json(stack))
    config = yaml.safe_load(text)
    # Scrape targets and remote-write URLs name hosts of the deployment network; here they point
    # at a closed loopback port so that nothing leaves this machine (not even a DNS lookup).
    (closed,) = free_ports(1)
    for job in config.get("scrape_configs", []):
        # Swarm jobs discover every task through `tasks.<service>` DNS: a static loopback target
        # takes their place, so no lookup is made.
        if job.pop("dns_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": [f"{LOOPBACK}:{closed}"]}]
        for static in job.get("static_configs", []):
            static["targets"] = [f"{LOOPBACK}:{closed}" for _ in static["targets"]]
        assert set(job) & {"static_configs"} and not [k for k in job if k.endswith("_sd_configs")], job
    for alerting in config.get("alerting", {}).get("alertmanagers", []):
        for static in alerting.get("static_configs", []):
            static["targets"] = [f"{LOOPBACK}:{closed}" for _ in static["targets"]]
    for remote in config.get("remote_write", []):
        remote["url"] = f"http://{LOOPBACK}:{closed}/api/v1/receive"
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    (port,) = free_ports(1)
    paths = {"--config.file": str(path), "--storage.tsdb.path": str(tmp_path / "data")}
    args = [f"{f.split('=', 1)[0]}={paths[f.split('=', 1)[0]]}" if f.split("=", 1)[0] in paths else f for f in flags]
    server = Server("prometheus", [prometheus, *args, f"--web.listen-address={LOOPBACK}:{port}"], tmp_path).start()
    url = f"http://{LOOPBACK}:{port}"
    try:
        server.wait_ready(lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200, timeout=60)
        flags_seen = yaml.safe_load(urllib.request.urlopen(f"{url}/api/v1/status/flags", timeout=5).read())["data"]
        for flag in flags:
            name, _, value = flag.removeprefix("--").partition("=")
            if name not in ("config.file", "storage.tsdb.path"):
                assert flags_seen.get(name) == (value or "true"), (name, flags_seen.get(name))
        loaded = yaml.safe_load(yaml.safe_load(urllib.request.urlopen(f"{url}/api/v1/status/config", timeout=5).read())["data"]["yaml"])
        assert loaded["global"]["external_labels"] == config["global"]["external_labels"]
        outputs = {"target": plan_json(stack)["outputs"]["target"], "buckets": {}, "urls": {"prometheus": url}}
        code, result, _ = run_verify(outputs, tmp_path, stack, "tools")
        assert {"subject": "prometheus", "status": "PASS", "detail": f"ready: GET {url}/-/ready answered 200", "part": "tools"} in result["results"]
    finally:
        server.stop()
