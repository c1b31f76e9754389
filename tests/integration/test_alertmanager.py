"""The Alertmanager configs every target deploys, checked by Alertmanager's own `amtool
check-config`: with no receiver, and with one of each kind the stack config offers.

amtool comes from Debian (.ci/install-alertmanager: 0.33.1 from forky; the stacks run v0.34.0,
components/core/versions.py). OBS_AMTOOL_BIN_DIR names its directory; without it these tests are
skipped and say why (`make test-integration` sets it where the package can be fetched).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from components.core import loading
from components.ec2 import platform as ec2_platform
from tests.test_docker import _service_config
from tests.test_ec2 import ec2_raw
from tests.test_swarm_ha import RECEIVERS, SECRETS
from tools import engine

CONFIG_FILE = "/etc/alertmanager/alertmanager.yml"
# The stack config's receivers (tests/test_swarm_ha.py: pagerduty, slack, webhook, email with a
# login, a webhook as dead man's switch) and an email receiver without a login.
PLAIN_MAIL = {"name": "plain", "type": "email", "to": "ops@example.com", "sender": "alerts@example.com", "smarthost": "mail.example.com:25"}
RECEIVER_SETS = {
    "none": None,
    "every-kind": (RECEIVERS, SECRETS),
    "email-without-login": ({"receivers": [PLAIN_MAIL]}, {}),
}


def amtool() -> str:
    directory = os.environ.get("OBS_AMTOOL_BIN_DIR")
    if not directory:
        pytest.skip("OBS_AMTOOL_BIN_DIR is not set: run `.ci/install-alertmanager` and export its output (make test-integration does)")
    binary = Path(directory) / "amtool"
    if not binary.exists():
        pytest.skip(f"{binary} does not exist (re-run .ci/install-alertmanager)")
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    assert re.match(r"amtool, version 0\.3[3-9]\.", version.stdout + version.stderr), version.stdout + version.stderr
    return str(binary)


def _overrides(receivers: Optional[tuple[dict, dict]]) -> dict[str, Any]:
    if receivers is None:
        return {}
    alerting, secrets = receivers
    out: dict[str, Any] = {"obs-storage:alerting": alerting}
    if secrets:
        out["obs-storage:alertReceiverSecrets"] = {k: {"secure": v} for k, v in secrets.items()}
    return out


def deployed(stack: str, receivers: Optional[tuple[dict, dict]]) -> dict[str, Any]:
    """The Alertmanager config as the stack's plan hands it to the container, service, chart or fleet."""
    overrides = _overrides(receivers)
    if stack == "staging-ec2":
        raw = ec2_raw()
        raw.update({k: json.dumps(v if "Secrets" not in k else {n: s["secure"] for n, s in v.items()}) for k, v in overrides.items()})
        secret = {k for k in overrides if "Secrets" in k}
        cfg = loading.load("staging-ec2", raw, secret)
        (am,) = [w for w in ec2_platform.declared_workloads(cfg, "obs-staging-ec2.internal") if w.name == "alertmanager"]
        (f,) = [f for f in am.files if f.path == CONFIG_FILE]
        return yaml.safe_load(f.content)
    result = engine.run(stack, overrides or None)
    if stack == "prod":
        return _service_config(result, "alertmanager", CONFIG_FILE)
    if stack == "local":
        (c,) = [r for r in result.by_type("docker:index/container:Container") if r.inputs["name"] == "obs-local-alertmanager"]
        (upload,) = [u for u in c.inputs["uploads"] if u["file"] == CONFIG_FILE]
        return yaml.safe_load(upload["content"])
    (chart,) = [r for r in result.by_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("name") == "kps"]
    return chart.inputs["values"]["alertmanager"]["config"]


def check(binary: str, tmp_path: Path, config: dict[str, Any]) -> subprocess.CompletedProcess:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([binary, "check-config", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.integration
@pytest.mark.parametrize("receivers", sorted(RECEIVER_SETS))
@pytest.mark.parametrize("stack", ["prod", "local", "staging", "staging-ec2"])
def test_amtool_accepts_the_deployed_config(tmp_path, stack, receivers):
    binary = amtool()
    config = deployed(stack, RECEIVER_SETS[receivers])
    proc = check(binary, tmp_path, config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = 1 + len((RECEIVER_SETS[receivers] or ({"receivers": []},))[0]["receivers"])
    assert f"{expected} receivers" in proc.stdout, proc.stdout


@pytest.mark.integration
def test_amtool_refuses_what_alertmanager_would_refuse(tmp_path):
    # The same config, broken the ways a hand edit could break it: each one refused with its reason.
    binary = amtool()
    config = deployed("prod", RECEIVER_SETS["every-kind"])
    mail = next(r for r in config["receivers"] if r["name"] == "mail")
    del mail["email_configs"][0]["smarthost"]
    proc = check(binary, tmp_path, config)
    assert proc.returncode != 0 and "smarthost" in proc.stdout + proc.stderr
    config = deployed("prod", RECEIVER_SETS["every-kind"])
    config["route"]["routes"][1]["receiver"] = "nobody"
    proc = check(binary, tmp_path, config)
    assert proc.returncode != 0 and 'undefined receiver "nobody"' in proc.stdout + proc.stderr
