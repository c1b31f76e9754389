"""Run the policy pack's rules against an offline plan (`tools.engine.PlanResult`), as the analyzer would.

`evaluate(result)` hands each rule in policies/rules.py what the Pulumi analyzer hands it: resource
policies once per resource, stack policies once across all resources, props behind the SDK's
unknown-checking proxy, and each policy's config built from policies/exemptions.yaml for the stack.
Recorded "[unknown]" values become the SDK's unknown sentinels; "[secret]" values also count as
unknown, because the plan never shows a secret's plaintext.

    python -m policies.offline --stack S   # the --policy-pack-config JSON for `pulumi preview/up`

Exemptions file (policies/exemptions.yaml): stack name -> list of {policy, urn, reason}. An entry
that is malformed, names an unknown policy or has an empty reason is not applied and is reported as
a mandatory `policy-exemptions` violation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from policies import rules

EXEMPTIONS_FILE = Path(__file__).with_name("exemptions.yaml")
ENGINE_MARKERS = ("[unknown]", "[secret]")
EXEMPTION_KEYS = {"policy", "urn", "reason"}


# ---------------------------------------------------------------- exemptions
def load_exemptions(stack: str, path: Path = EXEMPTIONS_FILE) -> tuple[list[dict[str, str]], list[str]]:
    """(valid exemptions for `stack`, problems); a problem names the file, the entry and the fix."""
    import yaml

    if not path.exists():
        return [], []
    where = path.name
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        return [], [f"{where}: not valid YAML ({error}); fix the file."]
    if not isinstance(data, dict):
        return [], [f"{where}: expected a mapping of stack name -> list of exemptions."]
    entries = data.get(stack) or []
    if not isinstance(entries, list):
        return [], [f"{where}: {stack}: expected a list of {{policy, urn, reason}}."]
    valid, problems = [], []
    exemptible = set(rules.POLICY_NAMES) - {rules.NOTICE_POLICY}
    for i, entry in enumerate(entries):
        at = f"{where}: {stack}[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{at}: expected a mapping with policy, urn and reason.")
            continue
        found = []
        if set(entry) - EXEMPTION_KEYS:
            found.append(f"unknown keys {sorted(set(entry) - EXEMPTION_KEYS)} (allowed: policy, urn, reason)")
        if entry.get("policy") not in exemptible:
            found.append(f"policy {entry.get('policy')!r} is not one of: {', '.join(sorted(exemptible))}")
        urn = entry.get("urn")
        if not isinstance(urn, str) or not urn.startswith(f"urn:pulumi:{stack}::"):
            found.append(f"urn {urn!r} is not a URN of stack {stack} (copy it from `python -m tools.plan --stack {stack} --json`)")
        if not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            found.append("reason is empty; write why this resource may break the policy")
        if found:
            problems.append(f"{at}: " + "; ".join(found) + ". The exemption is not applied.")
        else:
            valid.append({"policy": entry["policy"], "urn": urn, "reason": entry["reason"].strip()})
    return valid, problems


def pack_config(exemptions: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Policy config for the pack (the --policy-pack-config JSON) carrying `exemptions`."""
    config: dict[str, dict[str, Any]] = {}
    for item in exemptions:
        config.setdefault(item["policy"], {"exemptions": []})["exemptions"].append({"urn": item["urn"], "reason": item["reason"]})
    if exemptions:
        config[rules.NOTICE_POLICY] = {"exemptions": [dict(item) for item in exemptions]}
    return config


# ---------------------------------------------------------------- plan -> analyzer arguments
def policy_props(inputs: Any) -> Any:
    """Recorded inputs as the analyzer presents them: unknowns as SDK sentinels, behind the proxy."""

    def convert(value: Any) -> Any:
        if isinstance(value, str) and value in ENGINE_MARKERS:
            return UNKNOWN_STRING_VALUE
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return unknown_checking_proxy(convert(inputs))


def _options(registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=registration.protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=registration.parent or None,
    )


def policy_resources(registrations) -> list[PolicyResource]:
    """The stack's resources as a stack policy sees them, parents and dependencies linked.

    The plan records a resource's dependencies but not which property each came from, so
    `property_dependencies` stays empty: a rule matches an input that is still unknown to no
    resource in particular, and leaves it undecided.
    """
    resources = {
        r.urn: PolicyResource(r.type, policy_props(r.inputs), r.urn, r.name, _options(r), None, None, [], {})
        for r in registrations
    }
    for r in registrations:
        resources[r.urn].parent = resources.get(r.parent)
        resources[r.urn].dependencies = [resources[d] for d in r.depends_on if d in resources]
    return list(resources.values())


# ---------------------------------------------------------------- evaluation
def _entry(policy: str, level: EnforcementLevel, urn: Optional[str], message: str) -> dict[str, str]:
    return {"policy": policy, "enforcement": level.value, "urn": urn or "", "message": message}


def evaluate(result, exemptions_file: Path = EXEMPTIONS_FILE) -> list[dict[str, str]]:
    """Violations of the pack for the planned resources, as {"policy","enforcement","urn","message"}.

    Exempted violations are dropped; each exemption in force appears as an advisory
    `policy-exemptions` entry instead, so every run prints it.
    """
    exemptions, problems = load_exemptions(result.stack, exemptions_file)
    config = pack_config(exemptions)
    violations = [_entry(rules.NOTICE_POLICY, EnforcementLevel.MANDATORY, "", p) for p in problems]
    resources = policy_resources(result.resources)
    for policy in rules.POLICIES:
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None, config.get(policy.name))
                _run(policy, args, r.urn, violations)
        else:
            _run(policy, StackValidationArgs(resources, config.get(policy.name)), "", violations)
    return violations


def _run(policy, args, default_urn: str, violations: list[dict[str, str]]) -> None:
    level = policy.enforcement_level or EnforcementLevel.ADVISORY

    def report(message: str, urn: Optional[str] = None) -> None:
        violations.append(_entry(policy.name, level, urn or default_urn, message))

    try:
        policy.validate(args, report)
    except UnknownValueError as error:
        # What the analyzer does when a rule reads an unknown itself: an advisory note, no verdict.
        violations.append(_entry(policy.name, EnforcementLevel.ADVISORY, default_urn, f"can't run policy during preview: {error.message}"))


# ---------------------------------------------------------------- CLI
def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.offline", description="Print the --policy-pack-config JSON for a stack's exemptions.")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--exemptions", type=Path, default=EXEMPTIONS_FILE, help="default: policies/exemptions.yaml")
    args = parser.parse_args(argv)
    exemptions, problems = load_exemptions(args.stack, args.exemptions)
    if problems:
        print("\n".join(f"error: {p}" for p in problems), file=sys.stderr)
        return 1
    for item in exemptions:
        print(f"exemption: {item['urn']} from {item['policy']}: {item['reason']}", file=sys.stderr)
    print(json.dumps(pack_config(exemptions), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
