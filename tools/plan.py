"""Offline plan: run the real program for a stack under the strict mock engine and print it.

    python -m tools.plan --stack local|staging|prod|... [--stack ...] [--json]

Needs no Pulumi CLI, provider plugin or cloud credential: what a reviewer of a pull request from
a fork runs. Secrets appear as "[secret]"; encrypted stack values become placeholders.
Several stacks are planned in turn, each under a `== <stack>` line (text) or as one JSON list of
the plans (--json), stopping at the first that does not plan cleanly.
Exit codes: 0 planned; 2 bad stack config; 3 strict-mock failure; 4 a mandatory policy violation.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

import pulumi

from components.core.config import ConfigError
from tools import engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, action="append",
                        help=f"one of: {', '.join(engine.available_stacks())} (repeat it for several)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    args = parser.parse_args(argv)
    several = len(args.stack) > 1
    plans: list[dict[str, Any]] = []
    code = 0
    for stack in args.stack:
        if several and not args.json:
            print(f"== {stack}", flush=True)
        code, planned = plan(stack)
        if planned is not None:
            if args.json:
                plans.append(as_json(*planned))
            else:
                print(as_text(*planned), flush=True)
        if code:
            break
    if args.json and (several or plans):
        # One JSON document: the plan of one stack, or the list of the stacks' plans.
        print(json.dumps(plans if several else plans[0], indent=2, sort_keys=False))
    return code


def plan(stack: str) -> tuple[int, Optional[tuple[engine.PlanResult, list[dict[str, str]]]]]:
    """(exit code, (plan, policy violations) or None when it could not be planned)."""
    try:
        result = engine.run(stack)
    except (FileNotFoundError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2, None
    except pulumi.RunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2, None
    except engine.StrictMockError as error:
        print(f"error: strict mocks refused the plan:\n{error}", file=sys.stderr)
        return 3, None
    violations = evaluate_policies(result)
    return (4 if any(v["enforcement"] == "mandatory" for v in violations) else 0), (result, violations)


def evaluate_policies(result: engine.PlanResult) -> list[dict[str, str]]:
    """Violations of the policy pack for the planned resources (see policies/rules.py)."""
    from policies import offline

    return offline.evaluate(result)


def as_json(result: engine.PlanResult, violations: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "stack": result.stack,
        "resources": [
            {
                "urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "custom": r.custom,
                # What the engine waits for before creating it (explicit depends_on and the
                # resources its inputs come from), and which provider instance creates it.
                "dependsOn": sorted(r.depends_on), "provider": r.provider,
                "inputs": r.inputs,
            }
            for r in result.resources
        ],
        "outputs": result.outputs,
        "violations": violations,
    }


def as_text(result: engine.PlanResult, violations: list[dict[str, str]]) -> str:
    children: dict[str, list[engine.Registration]] = {}
    for r in result.resources:
        children.setdefault(r.parent, []).append(r)
    lines = [f"stack {result.stack}: {len(result.resources)} resources (offline plan under strict mocks)"]

    def walk(parent: str, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda x: (x.type, x.name)):
            lines.append(f"{'  ' * depth}{r.type}  {r.name}{_key_inputs(r.inputs)}")
            walk(r.urn, depth + 1)

    roots = {r.parent for r in result.resources} - {r.urn for r in result.resources}
    for root in sorted(roots):
        walk(root, 1)
    lines.append("outputs:")
    for name, value in result.outputs.items():
        lines.append(f"  {name}: {json.dumps(value, sort_keys=True)}")
    lines += thanos_topology_lines(result.outputs)
    lines.append(f"policy violations: {len(violations)}")
    for v in violations:
        lines.append(f"  [{v['enforcement']}] {v['policy']}: {v['urn']}: {v['message']}")
    return "\n".join(lines)


def thanos_topology_lines(outputs: dict[str, Any]) -> list[str]:
    """What a reviewer needs of the stack's Thanos role: a hub's spokes, a spoke's hub, and on
    Hetzner that a key pair reaches every bucket of its project."""
    hub, spoke = outputs.get("thanosHub"), outputs.get("thanosSpoke")
    if isinstance(hub, dict):
        spokes = hub.get("spokes") or []
        listed = ": " + ", ".join(f"{s.get('stack')} (cluster {s.get('clusterLabel')})" for s in spokes) if spokes else ""
        lines = [f"thanos hub: bucket {hub.get('bucket')} in {hub.get('region')}, cluster {hub.get('clusterLabel')}, "
                 f"the bucket's one compactor; {len(spokes)} spoke(s){listed}"]
    elif isinstance(spoke, dict):
        lines = [f"thanos spoke of {spoke.get('hub')}: {spoke.get('mode')} into bucket {spoke.get('bucket')} in {spoke.get('region')} "
                 f"as cluster {spoke.get('clusterLabel')}; no bucket, store gateway, query or compactor of its own"]
    else:
        return []
    note = (hub if isinstance(hub, dict) else spoke).get("note")
    return lines + ([f"  note: {note}"] if note else [])


def _key_inputs(inputs: dict[str, Any]) -> str:
    scalars = [f"{k}={json.dumps(v)}" for k, v in sorted(inputs.items()) if isinstance(v, (str, int, float, bool))]
    text = "  " + " ".join(scalars) if scalars else ""
    return text if len(text) < 160 else text[:157] + "..."


if __name__ == "__main__":
    sys.exit(main())
