"""The project's own Kubernetes manifests (everything but the Helm charts) in the staging plan,
validated against the Kubernetes OpenAPI schemas of each version docs/aws-eks.md supports
(kubernetes-validate ships them), strictly: an unknown or misplaced field fails."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from tests.integration.conftest import ROOT

# The range docs/aws-eks.md states under "What staging needs".
SUPPORTED = ("1.33.0", "1.34.0", "1.35.0", "1.36.0", "1.37.0")


def test_docs_state_the_validated_kubernetes_versions():
    text = (ROOT / "docs" / "aws-eks.md").read_text()
    assert re.search(r"Kubernetes 1\.33 to 1\.37", text), "docs/aws-eks.md must state the Kubernetes versions the manifests are validated against"


def _wire(value: Any) -> Any:
    """Engine numbers are doubles; the provider sends whole numbers as integers."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def manifests(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for resource in plan["resources"]:
        t = resource["type"]
        if not t.startswith("kubernetes:") or t.startswith("kubernetes:helm.sh/") or t.startswith("pulumi:"):
            continue
        manifest = _wire(copy.deepcopy(resource["inputs"]))
        group, version, kind = re.fullmatch(r"kubernetes:([\w.]+)/(\w+):(\w+)", t).groups()
        assert manifest.get("kind") == kind and manifest.get("apiVersion") == (version if group == "core" else f"{group}/{version}"), resource["urn"]
        if kind == "Secret":
            # The plan hides secret contents; the schema needs a map of strings in their place.
            for key in ("data", "stringData"):
                if manifest.get(key) == "[secret]":
                    manifest[key] = {"redacted": "x"}
        out.append(manifest)
    return out


@pytest.mark.parametrize("version", SUPPORTED)
def test_staging_manifests_are_valid_kubernetes(plan_json, version):
    import kubernetes_validate  # here: `make test` collects this module without the integration requirements

    found = manifests(plan_json("staging"))
    kinds = {m["kind"] for m in found}
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "ServiceAccount"} <= kinds, kinds
    errors = []
    for manifest in found:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {error.message} at {'.'.join(map(str, error.path))}")
    assert errors == []


def test_a_misplaced_field_is_refused(plan_json):
    import kubernetes_validate

    deployment = next(m for m in manifests(plan_json("staging")) if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}  # `resources`, misspelled
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, SUPPORTED[-1], strict=True)
