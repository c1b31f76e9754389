"""The configuration reference (docs/configuration-reference.md) is generated from the config model:
the committed file is what the generator prints now, every key of the model is in it, and a key
without a description stops the generator instead of leaving a blank."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from components.core import config
from tools import config_reference

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "configuration-reference.md"
PULUMI_YAML = (ROOT / "Pulumi.yaml").read_text()


def test_the_committed_reference_is_what_the_model_gives():
    assert COMMITTED.read_text() == config_reference.reference(), (
        "docs/configuration-reference.md differs from the config model: run `make config-reference` and commit the result")


def _model_keys(model: type, prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        keys.add(key)
        for nested in _models(field.annotation):
            keys |= _model_keys(nested, key + ("[]." if "list" in str(field.annotation) else "."))
    return keys


def _models(annotation) -> list[type]:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, config._Model):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def test_every_key_of_the_model_has_a_row():
    rows = set(re.findall(r"^\| `([^`]+)` \|", COMMITTED.read_text(), re.M))
    expected = {k for k in _model_keys(config.StackConfig) if not k.startswith("secrets")} | set(config.SECRET_KEYS)
    assert expected == rows


def test_rows_carry_the_models_types_defaults_and_bounds():
    text = config_reference.reference()
    assert "| `tools.loki.retentionDays` | integer | `31` | >= 1 |" in text
    assert "| `aws.identity` | string | `\"irsa\"` | `irsa`, `pod-identity` |" in text
    assert "| `tools.thanos.spokes[].clusterLabel` | string | required |" in text
    assert "| `aws.ec2.vpcId` | string | required |" in text
    # Required on one platform only (aws.platform eks): the model's validator enforces it.
    assert "| `aws.clusterName` | string | required when used |" in text


def test_a_changed_default_in_the_model_changes_the_reference(monkeypatch):
    schema = config.StackConfig.model_json_schema(by_alias=True)
    changed = copy.deepcopy(schema)
    changed["$defs"]["LokiConfig"]["properties"]["retentionDays"]["default"] = 30
    monkeypatch.setattr(config.StackConfig, "model_json_schema", classmethod(lambda cls, **kwargs: changed))
    text = config_reference.reference()
    assert "| `tools.loki.retentionDays` | integer | `30` |" in text and text != COMMITTED.read_text()


def test_a_key_without_a_description_stops_the_generator():
    undocumented = re.sub(r"^#   aws\.nodeExporter .*\n", "", PULUMI_YAML, flags=re.M)
    assert undocumented != PULUMI_YAML
    with pytest.raises(SystemExit, match=r"without a description in Pulumi.yaml: aws.nodeExporter$"):
        config_reference.reference(undocumented)


def test_cells_never_break_the_table():
    assert config_reference._cell("a | b <stack>") == "a / b &lt;stack&gt;"
