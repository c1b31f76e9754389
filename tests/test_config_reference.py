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


def test_make_config_reference_writes_the_file_and_plain_runs_only_print_it(monkeypatch, tmp_path, capsys):
    """`make config-reference` runs `--write`: the reference lands in the file and nothing on
    stdout; without it the reference goes to stdout and no file is touched."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "Pulumi.yaml").write_text(PULUMI_YAML)
    target = tmp_path / "docs" / "configuration-reference.md"
    monkeypatch.setattr(config_reference, "ROOT", tmp_path)
    monkeypatch.setattr(config_reference, "OUTPUT", target)
    assert config_reference.main([]) == 0
    assert capsys.readouterr().out == COMMITTED.read_text() and not target.exists()
    assert config_reference.main(["--write"]) == 0
    assert capsys.readouterr().out == "" and target.read_text() == COMMITTED.read_text()


def test_allowed_values_list_the_enum_then_the_bounds():
    # No key of today's model has a maximum; a key that gains one shows both bounds.
    assert config_reference._allowed({"minimum": 1, "maximum": 10}) == ">= 1; <= 10"
    assert config_reference._allowed({"enum": ["a", "b"], "minimum": 0}) == "`a`, `b`; >= 0"
    assert config_reference._allowed({"type": "string"}) == ""


def test_every_undocumented_key_is_named_not_only_the_first():
    undocumented = re.sub(r"^#   (aws\.nodeExporter|storage\.versioning) .*\n", "", PULUMI_YAML, flags=re.M)
    assert undocumented.count("\n") == PULUMI_YAML.count("\n") - 2
    with pytest.raises(SystemExit, match=r"without a description in Pulumi.yaml: (aws.nodeExporter, storage.versioning|storage.versioning, aws.nodeExporter)$"):
        config_reference.reference(undocumented)


def test_keys_after_the_secrets_are_still_listed(monkeypatch):
    """The secrets are left out of the table where the model has them, not everything after them."""
    schema = config.StackConfig.model_json_schema(by_alias=True)
    secrets_first = {**schema, "properties": {"secrets": schema["properties"]["secrets"],
                                              **{k: v for k, v in schema["properties"].items() if k != "secrets"}}}
    assert list(secrets_first["properties"])[0] == "secrets" and list(schema["properties"])[0] != "secrets"
    monkeypatch.setattr(config.StackConfig, "model_json_schema", classmethod(lambda cls, **kwargs: secrets_first))
    assert config_reference.reference() == COMMITTED.read_text()


def test_project_config_entries_without_a_default_have_none():
    text = "name: x\nconfig:\n  a:\n    type: string\n    default: one\n  b:\n    type: integer\n    description: no default\n"
    assert config_reference.project_defaults(text) == {"a": "one"}
    assert config_reference.project_defaults("name: x\n") == {}


def test_optional_keys_read_as_their_one_type_with_their_own_description_and_default():
    defs = {"Spoke": {"type": "object", "properties": {"stack": {"type": "string"}}}}
    optional_int = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": None, "description": "days"}
    assert config_reference._nullable(optional_int, defs) == {"type": "integer", "minimum": 1, "default": None, "description": "days"}
    # A reference keeps the keys written beside it.
    optional_ref = {"anyOf": [{"$ref": "#/$defs/Spoke"}, {"type": "null"}], "description": "the hub"}
    assert config_reference._nullable(optional_ref, defs) == {**defs["Spoke"], "description": "the hub"}
    assert config_reference._nullable({"$ref": "#/$defs/Spoke", "title": "S"}, defs) == {**defs["Spoke"], "title": "S"}
    # Two types left: no single type to show, the schema stays as it is.
    either = {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}
    assert config_reference._nullable(either, defs) == either
    assert config_reference._nullable({"type": "string"}, defs) == {"type": "string"}


def test_type_names_of_lists_and_maps():
    assert config_reference._type({"type": "array", "items": {"type": "integer"}}, {}) == "list of integers"
    assert config_reference._type({"type": "array", "items": {"type": "string"}}, {}) == "list of strings"
    assert config_reference._type({"type": "array", "items": {"type": "object", "properties": {}}}, {}) == "list of objects"
    assert config_reference._type({"type": "object", "additionalProperties": {"type": "integer"}}, {}) == "map of integers"
    assert config_reference._type({"type": "object"}, {}) == "map"
    assert config_reference._type({"type": "object", "properties": {"a": {}}}, {}) == "object"
    assert config_reference._type({}, {}) == "any"


def test_shared_descriptions_reach_exactly_the_keys_they_describe():
    described = {"tools.<tool>.bucket": "B", "aws.ec2.fleets.<fleet>.size": "S"}
    assert config_reference._description("tools.loki.bucket", described) == "B"
    assert config_reference._description("aws.ec2.fleets.loki.size", described) == "S"
    # Same last word elsewhere, or deeper down: not described (the generator stops on it).
    for key in ("aws.loki.bucket", "zone.loki.bucket", "tools.loki.bucket.name",
                "aws.ec2.apps.loki.size", "aws.ec2.zoo.loki.size", "aws.ec2.fleets.loki.size.max"):
        assert config_reference._description(key, described) is None, key
    assert config_reference._description("tools.thanos.spokes[].stack", described) == ""
