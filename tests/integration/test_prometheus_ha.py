"""The Swarm HA pair with real Prometheus binaries: both prometheus.yml files and the rule file the
prod plan deploys, two Prometheus 3 processes on 127.0.0.1 and a stand-in Alertmanager that records
what they send (POST /api/v2/alerts).

What it shows: both replicas send the same alert with the same labels (the `replica` external
label dropped), so Alertmanager sees one alert, not two; and when one replica is gone the other
scrapes it as down and keeps sending. The neighbour case removes `alert_relabel_configs` and sees
two alerts that differ in `replica`.

Changed from the plan for a run of seconds, not minutes: scrape and evaluation every second and
`--rules.alert.resend-delay=1s` (default 1m); every target other than the two Prometheus points
at the stand-in or at a closed loopback port. Prometheus is Debian's 3.5.3
(.ci/install-prometheus); the image the stacks run is newer (components/core/versions.py).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.integration.servers import LOOPBACK, Server, free_ports
from tests.integration.test_prometheus import prometheus_binaries

SERVICES = ("prometheus", "prometheus-1")
CONFIG_FILE, RULES_FILE = "/etc/prometheus/prometheus.yml", "/etc/prometheus/rules/obs-storage.yml"


class _Alertmanager:
    """Records every alert posted to /api/v2/alerts with the time it arrived."""

    def __init__(self) -> None:
        received: list[tuple[float, dict[str, Any]]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/api/v2/alerts":
                    received.extend((time.monotonic(), a) for a in json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _service_file(plan: dict[str, Any], service: str, path: str) -> str:
    import base64

    resources = plan["resources"]
    (svc,) = [r for r in resources if r["type"] == "docker:index/service:Service" and r["inputs"]["name"] == f"obs-prod-{service}"]
    spec = svc["inputs"]["taskSpec"]["containerSpec"]
    (ref,) = [c for c in spec["configs"] if c["fileName"] == path]
    data = next(c["inputs"]["data"] for c in resources if c["type"] == "docker:index/serviceConfig:ServiceConfig"
                and ref["configName"] in (c["name"], c["inputs"].get("name")))
    return base64.b64decode(data).decode()


def _flags(plan: dict[str, Any], service: str) -> list[str]:
    (svc,) = [r for r in plan["resources"] if r["type"] == "docker:index/service:Service" and r["inputs"]["name"] == f"obs-prod-{service}"]
    return svc["inputs"]["taskSpec"]["containerSpec"]["args"]


def _local_config(text: str, ports: dict[str, int], am_port: int, closed: int, rules_dir: Path, relabel: bool) -> dict[str, Any]:
    config = yaml.safe_load(text)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    for job in config["scrape_configs"]:
        if job.pop("dns_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": [f"{LOOPBACK}:{closed}"]}]
        for static in job["static_configs"]:
            # The pair's own service names become their loopback ports; the labels stay.
            static["targets"] = [f"{LOOPBACK}:{ports[t.split(':')[0]]}" if t.split(":")[0] in ports else f"{LOOPBACK}:{closed}"
                                 for t in static["targets"]]
    config["rule_files"] = [str(rules_dir / "*.yml")]
    for am in config["alerting"]["alertmanagers"]:
        am["static_configs"] = [{"targets": [f"{LOOPBACK}:{am_port}"]}]
    if not relabel:
        del config["alerting"]["alert_relabel_configs"]
    return config


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://{LOOPBACK}:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    return json.loads(urllib.request.urlopen(url, timeout=5).read())["data"]["result"]


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout}s: {what}")


def _run_pair(plan: dict[str, Any], tmp_path: Path, relabel: bool, scenario: Callable[[dict[str, int], dict[str, Server], _Alertmanager], None]) -> None:
    prometheus, _ = prometheus_binaries()
    am = _Alertmanager()
    closed, *pair_ports = free_ports(1 + len(SERVICES))
    ports = dict(zip(SERVICES, pair_ports))
    servers: dict[str, Server] = {}
    try:
        for service in SERVICES:
            workdir = tmp_path / service
            rules_dir = workdir / "rules"
            rules_dir.mkdir(parents=True)
            (rules_dir / "obs-storage.yml").write_text(_service_file(plan, service, RULES_FILE))
            config = _local_config(_service_file(plan, service, CONFIG_FILE), ports, am.port, closed, rules_dir, relabel)
            (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
            paths = {"--config.file": str(workdir / "prometheus.yml"), "--storage.tsdb.path": str(workdir / "data")}
            args = [f"{f.split('=', 1)[0]}={paths[f.split('=', 1)[0]]}" if f.split("=", 1)[0] in paths else f for f in _flags(plan, service)]
            url = f"http://{LOOPBACK}:{ports[service]}"
            servers[service] = Server(service, [prometheus, *args, f"--web.listen-address={LOOPBACK}:{ports[service]}",
                                                f"--web.external-url={url}", "--rules.alert.resend-delay=1s"], workdir).start()
        for service, server in servers.items():
            server.wait_ready(lambda: urllib.request.urlopen(f"http://{LOOPBACK}:{ports[service]}/-/ready", timeout=2).status == 200, timeout=60)
        scenario(ports, servers, am)
    finally:
        for server in servers.values():
            server.stop()
        am.stop()


def _watchdogs(am: _Alertmanager, ports: dict[str, int], since: float = 0.0) -> dict[str, dict[str, str]]:
    """Replica -> labels of the latest Watchdog it sent after `since` (told apart by generatorURL)."""
    out = {}
    for at, alert in am.received:
        if at >= since and alert["labels"].get("alertname") == "Watchdog":
            for service, port in ports.items():
                if alert.get("generatorURL", "").startswith(f"http://{LOOPBACK}:{port}/"):
                    out[service] = alert["labels"]
    return out


@pytest.mark.real_server
def test_both_replicas_send_one_and_the_same_alert_and_the_survivor_sees_the_other_down(plan_json, tmp_path):
    plan = plan_json("prod")

    def scenario(ports: dict[str, int], servers: dict[str, Server], am: _Alertmanager) -> None:
        sent = _until(lambda: (w := _watchdogs(am, ports)) and len(w) == 2 and w, 60, "a Watchdog from each replica")
        assert sent["prometheus"] == sent["prometheus-1"], sent
        assert "replica" not in sent["prometheus"] and sent["prometheus"]["cluster"] == "prod"
        # Each scrapes both, with the pair label that joins a sidecar to its Prometheus.
        up = _until(lambda: len(r := _query(ports["prometheus"], 'up{job="prometheus"} == 1')) == 2 and r, 30, "both Prometheus up")
        assert {s["metric"]["obs_prometheus"] for s in up} == {"prometheus-0", "prometheus-1"}
        # A node loss: the second replica is killed, not stopped.
        os.killpg(servers["prometheus-1"].process.pid, signal.SIGKILL)
        lost = time.monotonic()
        _until(lambda: _query(ports["prometheus"], 'up{job="prometheus", obs_prometheus="prometheus-1"} == 0'), 30, "the lost replica scraped as down")
        pending = _until(lambda: _query(ports["prometheus"], 'ALERTS{alertname="ObsStorageTargetDown", obs_prometheus="prometheus-1"}'), 30,
                         "ObsStorageTargetDown pending for the lost replica")
        assert pending[0]["metric"]["alertstate"] == "pending"  # it fires after its 5 minutes
        # Alerting goes on: the survivor keeps sending.
        _until(lambda: "prometheus" in _watchdogs(am, ports, since=lost + 2), 30, "a Watchdog from the survivor after the loss")

    _run_pair(plan, tmp_path, relabel=True, scenario=scenario)


@pytest.mark.real_server
def test_without_alert_relabelling_the_replicas_send_two_different_alerts(plan_json, tmp_path):
    """The neighbour: the label drop is what makes the two alerts one."""

    def scenario(ports: dict[str, int], servers: dict[str, Server], am: _Alertmanager) -> None:
        sent = _until(lambda: (w := _watchdogs(am, ports)) and len(w) == 2 and w, 60, "a Watchdog from each replica")
        assert (sent["prometheus"]["replica"], sent["prometheus-1"]["replica"]) == ("prometheus-0", "prometheus-1")
        assert {k: v for k, v in sent["prometheus"].items() if k != "replica"} == {k: v for k, v in sent["prometheus-1"].items() if k != "replica"}

    _run_pair(plan_json("prod"), tmp_path, relabel=False, scenario=scenario)
