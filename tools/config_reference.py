"""The configuration reference, generated from the config model itself.

    make config-reference                                 # write docs/configuration-reference.md
    .venv/bin/python -m tools.config_reference            # print it

Every key, its type, default and allowed values come from the JSON schema of
`components.config.StackConfig` (what `load()` validates against); what each key means comes from
the reference block in Pulumi.yaml, which tests/test_config.py keeps complete. A key the model has
and Pulumi.yaml does not describe stops the generator, and tests/test_config_reference.py fails
when the committed reference differs from what this prints, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import yaml

from components.core import config

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration-reference.md"
# Keys of tools.loki, tools.tempo and tools.thanos that Pulumi.yaml documents once, as tools.<tool>.<key>.
COMMON_TOOL_KEYS = ("enabled", "bucket", "prefix", "transitions", "expireAfterDays")

HEADER = """# Configuration reference

Generated from the configuration model (`components/core/config.py`, its JSON schema) by
`make config-reference` (`tools/config_reference.py`); the descriptions are Pulumi.yaml's. Do not
edit by hand: `tests/test_config_reference.py` fails when this file differs from the model.
Set a key with `pulumi config set --path 'obs-storage:<key>' <value>`; unknown keys are errors.
How the keys fit together, and the errors bad values give: [Configuration](configuration.md).

| key | type | default | allowed | meaning |
|---|---|---|---|---|
"""


def descriptions(text: str) -> dict[str, str]:
    """key -> description from Pulumi.yaml: its project config entries and its reference block."""
    found = {key: spec.get("description", "") for key, spec in (yaml.safe_load(text).get("config") or {}).items()}
    for key, _type, meaning in re.findall(r"^#\s+([a-zA-Z0-9<>.]+)\s{2,}(\w+)\s{2,}(.*)$", text, re.M):
        found[key] = meaning.strip()
    return found


def project_defaults(text: str) -> dict[str, Any]:
    return {key: spec["default"] for key, spec in (yaml.safe_load(text).get("config") or {}).items() if isinstance(spec, dict) and "default" in spec}


def _resolve(schema: dict, defs: dict) -> dict:
    while "$ref" in schema:
        schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _nullable(schema: dict, defs: dict) -> dict:
    """The schema without its `null` alternative (pydantic's Optional), its own keys (description,
    default) kept beside those of the one type left."""
    options = schema.get("anyOf")
    if options:
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            return {**{k: v for k, v in schema.items() if k != "anyOf"}, **_resolve(rest[0], defs)}
    return _resolve(schema, defs)


def _type(schema: dict, defs: dict) -> str:
    kind = schema.get("type")
    if kind == "array":
        item = _nullable(schema.get("items", {}), defs)
        return f"list of {'objects' if item.get('type') == 'object' else _type(item, defs) + 's'}"
    if kind == "object" and "properties" not in schema:
        values = schema.get("additionalProperties")
        return f"map of {_type(values, defs)}s" if isinstance(values, dict) else "map"
    return kind or "any"


def _allowed(schema: dict) -> str:
    parts = []
    if "enum" in schema:
        parts.append(", ".join(f"`{v}`" for v in schema["enum"]))
    if "minimum" in schema:
        parts.append(f">= {schema['minimum']}")
    if "maximum" in schema:
        parts.append(f"<= {schema['maximum']}")
    return "; ".join(parts)


def _cell(text: str) -> str:
    """Text for a Markdown table cell: no column break, no angle brackets read as HTML."""
    return text.replace("|", "/").replace("<", "&lt;").replace(">", "&gt;")


def _shown(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def rows(schema: dict, defs: dict, prefix: str = "", required: frozenset[str] = frozenset()) -> Iterator[tuple[str, dict, bool]]:
    """(dotted key, its schema, whether it is required) for every key at any depth."""
    for name, prop in schema.get("properties", {}).items():
        key = f"{prefix}{name}"
        resolved = _nullable(prop, defs)
        yield key, prop, name in required
        if resolved.get("type") == "object" and "properties" in resolved:
            yield from rows(resolved, defs, key + ".", frozenset(resolved.get("required", ())))
        item = _nullable(resolved.get("items", {}), defs) if resolved.get("type") == "array" else {}
        if item.get("type") == "object" and "properties" in item:
            yield from rows(item, defs, key + "[].", frozenset(item.get("required", ())))


def _description(key: str, described: dict[str, str]) -> Optional[str]:
    parts = key.split(".")
    if key in described:
        return described[key]
    if parts[0] == "tools" and len(parts) == 3 and parts[2] in COMMON_TOOL_KEYS:
        return described.get(f"tools.<tool>.{parts[2]}")
    if parts[:3] == ["aws", "ec2", "fleets"] and len(parts) == 5:
        return described.get(f"aws.ec2.fleets.<fleet>.{parts[4]}")
    if "[]" in key:
        return ""  # an element's key: the list's own line says what the elements are
    return None


def reference(pulumi_yaml: Optional[str] = None) -> str:
    text = pulumi_yaml if pulumi_yaml is not None else (ROOT / "Pulumi.yaml").read_text()
    described, project = descriptions(text), project_defaults(text)
    schema = config.StackConfig.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    lines, undocumented = [], []
    for key, prop, required in rows(schema, defs, required=frozenset(schema.get("required", ()))):
        if key == "secrets" or key.startswith("secrets."):
            continue  # credentials are listed below, by their config key
        resolved = _nullable(prop, defs)
        meaning = _description(key, described)
        if meaning is None and resolved.get("type") == "object" and "properties" in resolved:
            meaning = " ".join(resolved.get("description", "").split())  # the model's docstring
        if meaning is None:
            undocumented.append(key)
            continue
        if key in project:
            default = f"{_shown(project[key])} (Pulumi.yaml)"
        elif required:
            default = "required"
        elif prop.get("requiredWhenUsed") or resolved.get("requiredWhenUsed"):
            default = "required when used"
        elif resolved.get("type") == "object" and "properties" in resolved:
            default = "see its keys"
        elif prop.get("default") is not None:
            default = _shown(prop["default"])
        else:
            default = "unset (see meaning)"
        lines.append(f"| `{key}` | {_type(resolved, defs)} | {default} | {_allowed(resolved)} | {_cell(meaning)} |")
    if undocumented:
        raise SystemExit(f"error: keys of the config model without a description in Pulumi.yaml: {', '.join(undocumented)}")
    for key in config.SECRET_KEYS:
        lines.append(f"| `{key}` | secret | none | set with `pulumi config set --secret` | {_cell(described.get(key, ''))} |")
    return HEADER + "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.config_reference", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {OUTPUT.relative_to(ROOT)} instead of printing it")
    args = parser.parse_args(argv)
    text = reference()
    if args.write:
        OUTPUT.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
