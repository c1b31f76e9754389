"""The command line of `python -m tools.verify` (the package docstring says what it checks)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

import tools.verify
from tools.verify import freshness, identity, storage
from tools.verify import tools as tool_checks
from tools.verify.common import PARTS, OutputsError, Report, Stack, aws_credentials_problem, load_stack

# The parts that call AWS with the caller's own credentials on target aws.
AWS_PARTS = {"storage", "identity", "freshness"}


def run(stack: Stack, parts: tuple[str, ...], report: Report) -> None:
    checks = {"storage": storage.check, "identity": identity.check, "tools": tool_checks.check, "freshness": freshness.check}
    for part in parts:
        try:
            checks[part](stack, report)
        except Exception as error:  # one broken part must not hide the others' results
            report.failed(part, "-", f"checks aborted: {type(error).__name__}: {error}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.verify", description=tools.verify.__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the deployed stack (local, staging, prod, ...)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--outputs", metavar="FILE", help="stack outputs as JSON instead of `pulumi stack output --json --show-secrets`")
    args = parser.parse_args(argv)
    parts = tuple(p for p in PARTS if not args.only or p in args.only)
    try:
        stack = load_stack(args.stack, args.outputs, parts)
    except (OutputsError, OSError, ValueError, KeyError) as error:
        print(f"error: stack {args.stack!r}: {error}", file=sys.stderr)
        return 2
    problem = aws_credentials_problem() if stack.target == "aws" and set(parts) & AWS_PARTS else None
    if problem:
        print(f"error: stack {args.stack!r}: {problem}", file=sys.stderr)
        return 2
    report = Report(as_json=args.json, secrets=stack.secrets())
    if not args.json:
        print(f"verify stack {stack.name} (target {stack.target}): {', '.join(parts)}", flush=True)
    run(stack, parts, report)
    counts = report.counts()
    if args.json:
        print(json.dumps({"stack": stack.name, "target": stack.target, "parts": list(parts),
                          "results": [r.__dict__ for r in report.results], "summary": counts}, indent=2))
    else:
        print(f"summary: {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP")
    return 1 if counts["FAIL"] else 0

