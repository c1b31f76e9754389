"""Mutation testing: put small bugs into a module one at a time and count how many its tests catch.

    make mutation                                   # the modules held to the bar (BAR below)
    make mutation MODULES="components/core/config.py"    # chosen modules
    make mutation MODULES=all                       # every module of components/, policies/, probes/, tools/

Each module is mutated by cosmic-ray (requirements-mutation.txt, installed into .venv-mutation) in
a throwaway copy of the working tree, so the checkout is never touched. Every mutant runs the fast
tests that exercise that module (TESTS below), with `-x`, under .venv's Python; a mutant they miss
is run once more with the slower test files that also exercise it (SLOW_TESTS), which would cost
too much for every mutant. The score is killed / (killed + survived); a mutant whose tests time out
counts as killed. Survivors are written with their diffs to .mutation/<module>.txt. The command
fails when a module of BAR scores below THRESHOLD, or its tests fail before anything is mutated.

Left out (EXCLUDED_OPERATORS): arithmetic turned into a power, shift, modulo or bit operation, and
`is`/`is not` turned into an ordering. Applied to the strings, sets and None they meet here they
only raise TypeError, and on numbers they repeat what the +, -, *, / swaps already test.

Slow: every mutant is one pytest process (about 1 s for components/core/config.py, 4 s for
policies/rules.py). JOBS=2 runs two modules at once; the default is one, on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv/bin/python"
COSMIC_RAY = ROOT / ".venv-mutation/bin/cosmic-ray"
REPORTS = ROOT / ".mutation"
THRESHOLD = 85.0

# Modules held to THRESHOLD: the config guard rails, the access and lifecycle data, the bucket
# hardening, the tool config renderers and the policy rules.
RENDERERS = [f"components/core/renderers/{name}.py" for name in ("__init__", "grafana", "loki", "prometheus", "tempo", "thanos")]
BAR = ["components/core/config.py", "components/core/loading.py", "components/core/access.py", "components/core/lifecycle.py", "components/core/storage.py", *RENDERERS, "policies/rules.py"]

_PLATFORM = ["tests/test_docker.py", "tests/test_eks.py", "tests/test_images.py"]
_RENDERED = ["tests/test_rendered_values.py", "tests/test_renderers.py", *_PLATFORM]
EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_\w+_(Pow|LShift|RShift|FloorDiv|Mod|BitXor|BitAnd|BitOr)$",
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(Lt|LtE|Gt|GtE)$",
]

# Slower test files, run only on the mutants the fast ones let through.
SLOW_TESTS: dict[str, list[str]] = {
    "components/core/config.py": ["tests/test_multicluster.py"],
    "components/core/loading.py": ["tests/test_multicluster.py"],
    "components/core/access.py": ["tests/test_multicluster.py"],
    "components/core/lifecycle.py": ["tests/test_plan.py"],
    "components/core/storage.py": ["tests/test_multicluster.py", "tests/test_policies.py"],
    "policies/rules.py": ["tests/test_multicluster.py"],
    # tools.verify's comparisons with what the plans hand the providers.
    **{f"tools/verify/{name}.py": ["tests/test_verify.py"] for name in ("cli", "common", "identity", "storage", "tools", "freshness")},
    # promtool runs the alert tests, about a minute a run.
    "components/core/renderers/freshness.py": ["tests/test_alerts.py"],
}

# The fast tests that exercise each module, quickest and most pointed first (`-x` stops at the
# first failure). None: only the integration suite runs the module, so it is not mutated here.
TESTS: dict[str, list[str] | None] = {
    "components/core/config.py": ["tests/test_config.py", "tests/test_lifecycle.py", "tests/test_access.py", "tests/test_rendered_values.py",
                                  "tests/test_swarm_ha.py"],
    "components/core/loading.py": ["tests/test_config.py", "tests/test_access.py", "tests/test_lifecycle.py"],
    "components/core/access.py": ["tests/test_access.py", "tests/test_identity.py"],
    "components/core/lifecycle.py": ["tests/test_lifecycle.py", "tests/test_storage.py"],
    "components/core/storage.py": ["tests/test_storage.py", "tests/test_lifecycle.py", "tests/test_eks.py"],
    **{module: _RENDERED for module in RENDERERS},
    "components/core/versions.py": ["tests/test_versions.py", "tests/test_config.py", "tests/test_images.py", "tests/test_charts.py",
                                    "tests/test_chart_facts.py"],
    "components/core/sizing.py": ["tests/test_sizing.py", "tests/test_eks.py"],
    "components/core/identity.py": ["tests/test_identity.py", "tests/test_policies.py"],
    "components/containers/workloads.py": [*_RENDERED, "tests/test_identity.py", "tests/test_swarm_ha.py"],
    "components/targets.py": ["tests/test_storage.py", "tests/test_identity.py", *_PLATFORM],
    "components/docker/minio.py": ["tests/test_docker.py", "tests/test_storage.py"],
    "components/docker/local.py": ["tests/test_docker.py", "tests/test_images.py"],
    "components/docker/swarm.py": ["tests/test_swarm_ha.py", "tests/test_docker.py", "tests/test_images.py"],
    **{f"components/eks/{name}.py": ["tests/test_eks.py", "tests/test_charts.py", "tests/test_chart_facts.py", "tests/test_eks_rollout.py",
                                     "tests/test_eks_order.py", "tests/test_sizing.py", "tests/test_images.py"]
       for name in ("platform", "base", "loki", "prometheus", "tempo", "thanos")},
    "components/core/thanos_topology.py": ["tests/test_multicluster.py"],
    **{f"components/ec2/{name}.py": ["tests/test_ec2.py", "tests/test_policies.py"]
       for name in ("platform", "topology", "network", "fleet", "identity", "userdata", "database")},
    # The alert tests need promtool (export OBS_PROMETHEUS_BIN_DIR="$(.ci/install-prometheus)" first)
    # and take about a minute a run: mutating alerts.py takes hours.
    "components/core/renderers/alerts.py": ["tests/test_alerts.py", "tests/test_monitoring.py"],
    "components/core/renderers/dashboards.py": ["tests/test_monitoring.py"],
    "components/core/renderers/freshness.py": ["tests/test_freshness.py", "tests/test_monitoring.py", "tests/test_docker.py"],
    "probes/bucket_freshness.py": ["tests/test_freshness.py"],
    "probes/ec2_agent.py": ["tests/test_ec2.py"],
    "components/containers/monitoring.py": ["tests/test_monitoring.py", "tests/test_alerts.py", "tests/test_docker.py"],
    "components/eks/monitoring.py": ["tests/test_monitoring.py", "tests/test_eks.py", "tests/test_swarm_ha.py"],
    "policies/rules.py": ["tests/test_policies.py"],
    "policies/offline.py": ["tests/test_policies.py"],
    "policies/__main__.py": ["tests/test_policies.py"],
    "tools/engine.py": ["tests/test_engine.py", "tests/test_plan.py", "tests/test_identity.py"],
    "tools/plan.py": ["tests/test_plan.py", "tests/test_policies.py"],
    "tools/config_reference.py": ["tests/test_config_reference.py"],
    **{f"tools/cost/{name}.py": ["tests/test_cost.py", "tests/test_cost_model.py"]
       for name in ("facts", "prices", "topology", "patterns", "usage", "pricing", "timeline", "measure", "report", "cli")},
    # Entry points that only call cli.main: nothing to mutate.
    "tools/cost/__main__.py": None,
    "tools/verify/__main__.py": None,
    "tools/bench_plan.py": None,
    # tools.verify's decisions against fakes of S3, IAM and HTTP (its real-server tests are in
    # tests/integration/, which a mutation run does not start).
    **{f"tools/verify/{name}.py": ["tests/test_verify_checks.py"] for name in ("cli", "common", "identity", "storage", "tools")},
    "tools/verify/freshness.py": ["tests/test_verify_checks.py", "tests/test_freshness.py"],
    # The EC2 fleets check calls AWS only (tests/integration/).
    "tools/verify/fleets.py": None,
}


def all_modules() -> list[str]:
    """The project's own modules. Virtualenvs are not: `make policy-pack` puts one with some 1,400
    installed files into policies/.venv, so hidden directories and any directory holding a
    pyvenv.cfg are skipped."""
    found = []
    for top in ("components", "policies", "probes", "tools"):
        for directory, subdirs, files in os.walk(ROOT / top):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and not (Path(directory, d) / "pyvenv.cfg").exists())
            found += [str(Path(directory, f).relative_to(ROOT)) for f in files if f.endswith(".py")]
    return [m for m in sorted(found) if not m.endswith("__init__.py") or m in RENDERERS]


def test_command(module: str, slow: bool = False) -> str:
    tests = [t for t in TESTS[module] + (SLOW_TESTS.get(module, []) if slow else []) if (ROOT / t).exists()]
    return f"{PYTHON} -m pytest -x -q -p no:cacheprovider --ignore=tests/integration {' '.join(dict.fromkeys(tests))}"


def copy_tree(into: Path) -> None:
    """The working tree as it is now (tracked and new files, nothing git ignores)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def run_module(module: str) -> dict:
    """Mutate one module; returns its counts, or why it was not run."""
    if TESTS.get(module) is None:
        why = "no fast test runs it (integration suite only)" if module in TESTS else "no tests mapped in .ci/mutation.py"
        return {"module": module, "not_run": why}
    work = Path(tempfile.mkdtemp(prefix="obs-mutation-"))
    try:
        copy_tree(work)
        # Tests that start the offline tools through make find the project's virtualenv.
        (work / ".venv").symlink_to(ROOT / ".venv")
        # No bytecode: a mutant written within the same second as the original, with the same size,
        # would otherwise run the cached original.
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        command = test_command(module)
        started = time.monotonic()
        baseline = subprocess.run(command.split(), cwd=work, env=env, capture_output=True, text=True)
        took = time.monotonic() - started
        if baseline.returncode != 0:
            return {"module": module, "failed": f"its tests fail before any mutation:\n{baseline.stdout[-2000:]}"}
        config = work / "cosmic-ray.toml"
        config.write_text(
            "[cosmic-ray]\n"
            f"module-path = {json.dumps(module)}\n"
            f"timeout = {max(30.0, 10 * took):.0f}.0\n"
            "excluded-modules = []\n"
            f"test-command = {json.dumps(command)}\n"
            "[cosmic-ray.distributor]\nname = \"local\"\n"
            f"[cosmic-ray.filters.operators-filter]\nexclude-operators = {json.dumps(EXCLUDED_OPERATORS)}\n"
        )
        session = work / "session.sqlite"
        subprocess.run([str(COSMIC_RAY), "init", str(config), str(session)], cwd=work, env=env, check=True, capture_output=True)
        subprocess.run([str(COSMIC_RAY.parent / "cr-filter-operators"), str(session), str(config)], cwd=work, env=env, check=True, capture_output=True)
        subprocess.run([str(COSMIC_RAY), "exec", str(config), str(session)], cwd=work, env=env, check=True, capture_output=True)
        result = results(session)
        if SLOW_TESTS.get(module) and result["survivors"]:
            recheck(work, env, module, result, max(60.0, 10 * took))
        return {"module": module, **result, "seconds": round(time.monotonic() - started)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def recheck(work: Path, env: dict, module: str, result: dict, timeout: float) -> None:
    """Run each survivor once more with the slower tests too; move the ones they kill."""
    command = test_command(module, slow=True)
    still = []
    for s in result["survivors"]:
        try:
            proc = subprocess.run([str(COSMIC_RAY), "mutate-and-test", module, s["operator"], str(s["occurrence"]), command],
                                  cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
            # No outcome: the mutant could not be applied or run; it stays a survivor to look at.
            outcome = json.loads(proc.stdout).get("test_outcome") or ""
        except subprocess.TimeoutExpired:
            outcome = "killed"
        except json.JSONDecodeError:
            outcome = ""
        if outcome.lower() == "killed":
            result["killed"] += 1
            result["killed_by_slow_tests"] = result.get("killed_by_slow_tests", 0) + 1
        else:
            still.append(s)
    result["survivors"], result["survived"] = still, len(still)


def results(session: Path) -> dict:
    db = sqlite3.connect(session)
    rows = db.execute(
        "select s.operator_name, s.start_pos_row, s.start_pos_col, r.worker_outcome, r.test_outcome, r.diff, s.occurrence"
        " from mutation_specs s join work_results r on r.job_id = s.job_id order by s.start_pos_row, s.start_pos_col, s.operator_name"
    ).fetchall()
    # Outcomes are stored upper-case (cosmic_ray.work_item.WorkerOutcome/TestOutcome member names).
    rows = [(op, row, col, worker.lower(), (test or "").lower(), diff, n) for op, row, col, worker, test, diff, n in rows]
    killed = sum(1 for r in rows if r[3] == "normal" and r[4] == "killed")
    survivors = [{"operator": r[0], "line": r[1], "column": r[2], "diff": r[5], "occurrence": r[6]}
                 for r in rows if r[3] == "normal" and r[4] == "survived"]
    errors = sum(1 for r in rows if r[3] not in ("normal", "no-test", "skipped"))
    filtered = sum(1 for r in rows if r[3] == "skipped")
    return {"killed": killed, "survived": len(survivors), "errors": errors, "filtered": filtered, "survivors": survivors}


def score(result: dict) -> float:
    total = result["killed"] + result["survived"]
    return 100.0 * result["killed"] / total if total else 100.0


def report(result: dict) -> None:
    path = REPORTS / (result["module"].replace("/", "_") + ".txt")
    lines = [f"{result['module']}: {result['killed']} killed ({result.get('killed_by_slow_tests', 0)} by the slower tests), "
             f"{result['survived']} survived, {score(result):.1f}% killed; {result['filtered']} left out (EXCLUDED_OPERATORS)", ""]
    for s in result["survivors"]:
        lines += [f"--- survived: {s['operator']} at line {s['line']}, column {s['column']}", s["diff"].rstrip(), ""]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="paths under components/, policies/, tools/; 'all' for every module (default: the modules held to the bar)")
    parser.add_argument("--jobs", type=int, default=1, help="modules mutated at once (default 1)")
    args = parser.parse_args(argv)
    modules = all_modules() if args.modules == ["all"] else (args.modules or BAR)
    unknown = [m for m in modules if not (ROOT / m).is_file()]
    if unknown:
        print(f"error: no such module: {', '.join(unknown)} (give paths like components/core/config.py)", file=sys.stderr)
        return 2
    if not COSMIC_RAY.exists():
        print(f"error: {COSMIC_RAY.relative_to(ROOT)} is missing; run `make mutation`, which installs it", file=sys.stderr)
        return 2
    REPORTS.mkdir(exist_ok=True)
    failed = False
    print(f"{'module':38} {'killed':>6} {'survived':>8} {'score':>7}  time")
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for result in pool.map(run_module, modules):
            module = result["module"]
            if "not_run" in result:
                print(f"{module:38} not run: {result['not_run']}")
                continue
            if "failed" in result:
                print(f"{module:38} FAILED: {result['failed']}")
                failed = True
                continue
            report(result)
            below = module in BAR and score(result) < THRESHOLD
            failed |= below
            errors = f", {result['errors']} mutants could not run" if result["errors"] else ""
            errors += f", {result['killed_by_slow_tests']} killed by the slower tests" if result.get("killed_by_slow_tests") else ""
            print(f"{module:38} {result['killed']:>6} {result['survived']:>8} {score(result):>6.1f}%  {result['seconds']}s"
                  f"{'  BELOW ' + str(THRESHOLD) + '%' if below else ''}{errors}", flush=True)
    print(f"survivors and their diffs: {REPORTS.relative_to(ROOT)}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
