"""Benchmark: how long the offline plan of each stack takes, against its import floor.

    python -m tools.bench_plan [--runs 5] [STACK ...]

For each stack it reports the median wall time of `python -m tools.plan --stack S` (the real
program under strict mocks, with the policies) and of a bare `python -c "import ..."` of the
Pulumi SDK and the provider SDK modules that stack's resources and invokes come from: the floor
no plan of that stack can go below. Every run is a fresh interpreter, as in CI and `make plan`.
This reports numbers; it asserts nothing (timings depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from tools import engine


def needed_modules(stack: str) -> list[str]:
    """The provider SDK modules that define the stack's planned resources and invokes."""
    result = engine.run(stack)
    classes = engine._token_classes()
    packages = {token.split(":")[-1]: module for token, (module, _) in classes.items() if token.startswith("pulumi:providers:")}
    modules = {classes[r.type][0] for r in result.resources if r.type in classes}
    for token in result.invokes:
        package, module = token.split(":")[0], token.split(":")[1].split("/")[0]
        modules.add(packages[package] if module == "index" else f"{packages[package]}.{module}")
    return sorted(modules)


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=engine.project_root())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_plan", description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="*", help=f"default: {' '.join(engine.available_stacks())}")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (the median is reported)")
    args = parser.parse_args(argv)
    stacks = args.stacks or engine.available_stacks()
    print(f"median of {args.runs} runs, each a fresh interpreter ({sys.executable})")
    print(f"{'stack':<10}{'plan s':>9}{'floor s':>9}{'ratio':>7}  floor = import pulumi + these SDK modules")
    for stack in stacks:
        modules = needed_modules(stack)
        plan = median_seconds([sys.executable, "-m", "tools.plan", "--stack", stack], args.runs)
        floor = median_seconds([sys.executable, "-c", f"import pulumi, {', '.join(modules)}"], args.runs)
        print(f"{stack:<10}{plan:>9.2f}{floor:>9.2f}{plan / floor:>7.1f}  {' '.join(modules)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
