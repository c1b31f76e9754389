"""Loading the stack configuration: the raw `obs-storage:*` map Pulumi hands the program, validated
into a `config.StackConfig`, or one `ConfigError` line naming the stack, the key, the bad value and
the fix. Rules that need the stack name or the grants (IAM role name lengths, the Thanos hub and
spokes a stack names) are checked here, after the model itself validated.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from typing import Any, Optional

from pydantic import BaseModel, ValidationError

from components.core import access
from components.core.config import (
    _CLUSTER_LABEL_RE,
    _MISSING,
    _REQUIRED_WHEN_USED,
    IAM_ROLE_NAME_MAX,
    PROJECT,
    SECRET_KEYS,
    ConfigError,
    StackConfig,
    Target,
    _cluster_label,
    default_name_prefix,
    role_name,
)

_TOP_LEVEL = {field.alias or name for name, field in StackConfig.model_fields.items()} - {"secrets"}


def load(stack: str, raw: dict[str, str], secret_keys: set[str]) -> StackConfig:
    """Validate a stack's raw config map (`project:key` -> string) into a `StackConfig`."""
    data: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    for full_key in sorted(raw):
        namespace, _, key = full_key.partition(":")
        if namespace == "pulumi":
            continue
        shown = "(secret value hidden)" if full_key in secret_keys else raw[full_key]
        if namespace != PROJECT:
            raise ConfigError(stack, full_key, shown, "is in a namespace this program does not read",
                              f"providers are configured explicitly from {PROJECT}:* keys; remove {full_key}", prefix=False)
        value = raw[full_key]
        if key in SECRET_KEYS:
            if full_key not in secret_keys:
                raise ConfigError(stack, key, "(plain text value hidden)", "is a credential stored in plain text",
                                  f"run `pulumi config rm {key}` and `pulumi config set --secret {key} <value>`")
            secrets[re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()] = value
            continue
        if key not in _TOP_LEVEL:
            raise ConfigError(stack, key, shown, "is an unknown key", _unknown_key_fix(key, "", _TOP_LEVEL | set(SECRET_KEYS)))
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(stack, key, value, f"is not valid structured config ({exc.msg})", "fix the YAML of this key") from None
        data[key] = value
    data["secrets"] = secrets
    try:
        cfg = StackConfig.model_validate(data, by_alias=True, by_name=False)
        if cfg.name_prefix is None and cfg.target is not Target.AWS:
            cfg.name_prefix = default_name_prefix(stack)
    except ValidationError as exc:
        raise _to_config_error(stack, data, exc) from None
    _check_thanos_topology(stack, cfg)
    _check_role_names(stack, cfg)
    return cfg


def _check_role_names(stack: str, cfg: StackConfig) -> None:
    if cfg.target is not Target.AWS:
        return

    longest = max((g.service_account for g in access.grants(cfg)), key=len, default="prometheus")
    name = role_name(stack, longest)
    if len(name) > IAM_ROLE_NAME_MAX:
        raise ConfigError(stack, "stack name", stack, f"makes the IAM role name {name} {len(name)} characters long, over IAM's {IAM_ROLE_NAME_MAX}",
                          f"use a stack name of at most {IAM_ROLE_NAME_MAX - len(role_name('', longest))} characters", prefix=False)
    for i, spoke in enumerate(cfg.tools.thanos.spokes):
        name = role_name(spoke.stack.rsplit("/", 1)[-1], access.SPOKE_SERVICE_ACCOUNT)
        if spoke.account and len(name) > IAM_ROLE_NAME_MAX:
            raise ConfigError(stack, f"tools.thanos.spokes[{i}].stack", spoke.stack,
                              f"names a spoke whose IAM role {name} would be {len(name)} characters long, over IAM's {IAM_ROLE_NAME_MAX}",
                              "the spoke's own stack refuses such a name: rename the spoke's stack")


def _check_thanos_topology(stack: str, cfg: StackConfig) -> None:
    """Default the cluster label to the stack name, then check it and the hub or spokes the stack
    names (rules that need the stack name or the target)."""
    thanos = cfg.tools.thanos
    if thanos.cluster_label is None:
        thanos.cluster_label = _cluster_label(stack) if _CLUSTER_LABEL_RE.match(stack) else None
        if thanos.cluster_label is None:
            raise ConfigError(stack, "tools.thanos.clusterLabel", _MISSING, "cannot default to the stack name, which is not a usable label",
                              "set it: 1-63 letters, digits, '.', '_' and '-'")
    if thanos.role == "spoke" and thanos.hub.rsplit("/", 1)[-1] == stack:
        raise ConfigError(stack, "tools.thanos.hub", thanos.hub, "names this stack itself", "name the hub's stack")
    for i, spoke in enumerate(thanos.spokes):
        if spoke.cluster_label == thanos.cluster_label:
            raise ConfigError(stack, f"tools.thanos.spokes[{i}].clusterLabel", spoke.cluster_label,
                              "is the hub's own cluster label; their blocks would overlap in the one bucket",
                              "give the spoke a label of its own (the hub's is tools.thanos.clusterLabel, default: the stack name)")
        if spoke.stack.rsplit("/", 1)[-1] == stack:
            raise ConfigError(stack, f"tools.thanos.spokes[{i}].stack", spoke.stack, "names the hub itself", "list only other stacks")
        if spoke.account and cfg.target is not Target.AWS:
            raise ConfigError(stack, f"tools.thanos.spokes[{i}].account", spoke.account, f"is an AWS account, and target {cfg.target.value} has none",
                              "remove it")


def _to_config_error(stack: str, data: dict, exc: ValidationError) -> ConfigError:
    # A misspelt key also makes the key it should have been "missing"; naming the misspelling
    # is what lets the user fix both.
    err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    loc = [str(part) for part in err["loc"]]
    ctx = err.get("ctx") or {}
    if "key" in ctx:
        # Validators name their key relative to the model they validate, which sits at `loc`.
        key = _dotted(loc + [ctx["key"]])
        value = ctx.get("value", _MISSING)
        problem = ctx.get("problem", err["msg"])
    else:
        key = _dotted(loc)
        value = _lookup(data, loc)
        problem = err["msg"][0].lower() + err["msg"][1:] if err["type"] == "obs_config" else _pydantic_problem(err)
    fix = ctx.get("fix") or _pydantic_fix(err, key)
    more = len(exc.errors()) - 1
    error = ConfigError(stack, key, value, problem + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""), fix)
    return error


def _dotted(loc: list[str]) -> str:
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        elif part.startswith("["):
            out += part
        else:
            out += ("." if out else "") + part
    return out


def _lookup(data: Any, loc: list[str]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _pydantic_problem(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "is an unknown key"
    if err["type"] == "missing":
        return "is required"
    if err["type"] in ("model_type", "dict_type") and isinstance(err["input"], list):
        return "is a list where a mapping belongs"
    return "is invalid: " + err["msg"][0].lower() + err["msg"][1:]


def _pydantic_fix(err: dict, key: str) -> str:
    loc = [str(part) for part in err["loc"]]
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        keys = {field.alias or name for name, field in parent.model_fields.items()} if parent else set()
        return _unknown_key_fix(loc[-1], _dotted(loc[:-1]), keys)
    if err["type"] == "missing":
        model = _model_at(loc)
        if model is None:
            return f"set it with `pulumi config set {'--path ' if len(loc) > 1 else ''}'{PROJECT}:{key}' <value>`"
        # An object cannot be set in one command; its required leaves can, each with --path.
        leaves = _required_leaves(model, key)
        rest = f" (likewise {', '.join(leaves[1:])})" if leaves[1:] else ""
        return (f"set its required keys: `pulumi config set --path '{PROJECT}:{leaves[0]}' <value>`{rest}, "
                f"or add {PROJECT}:{key} to the stack file as Pulumi.yaml documents it")
    if err["type"] in ("model_type", "dict_type") and isinstance(err["input"], list):
        model = _model_at(loc)
        keys = f" (keys: {', '.join(field.alias or name for name, field in model.model_fields.items())})" if model else ""
        return f"write {key} as indented `key: value` lines, without a leading '- '{keys}"
    return "set a value of the documented type (see docs/configuration-reference.md)"


def _unknown_key_fix(key: str, parent: str, valid: set[str]) -> str:
    where = f"{parent}." if parent else ""
    nearest = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
    if nearest:
        return f"rename it to {where}{nearest[0]} (the nearest valid key), or remove it"
    return f"remove it or correct the spelling (valid keys{' under ' + parent if parent else ''}: {', '.join(sorted(valid))})"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Config models an annotation holds: the type itself, or inside Optional[...] / list[...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _model_at(loc: list[str]) -> Optional[type[BaseModel]]:
    """The config model that validates the value at `loc` (config keys and list indexes), or None."""
    model: type[BaseModel] = StackConfig
    for part in loc:
        if part.isdigit():
            continue  # a list element: `_models_in` already looked inside the list
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        found = _models_in(field.annotation) if field is not None else []
        if not found:
            return None
        model = found[0]
    return model


def _required_leaves(model: type[BaseModel], prefix: str) -> list[str]:
    leaves = []
    for name, field in model.model_fields.items():
        if field.is_required() or field.json_schema_extra == _REQUIRED_WHEN_USED:
            key = f"{prefix}.{field.alias or name}"
            nested = _models_in(field.annotation)
            leaves += _required_leaves(nested[0], key) if nested else [key]
    return leaves


def read_pulumi_config() -> tuple[dict[str, str], set[str]]:
    """The raw config map and secret key set the Pulumi language host hands the program."""
    import pulumi.runtime.config as runtime_config

    raw = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    secret = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return raw, secret
