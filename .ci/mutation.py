"""Mutation testing: put small bugs into a module one at a time and count how many its tests catch.

    make mutation                                   # the modules held to the bar (BAR below)
    make mutation MODULES="components/core/config.py"    # chosen modules
    make mutation MODULES=all                       # every module of components/, policies/, probes/, tools/
    make mutation MODULES=all PART=2/4 JOBS=2       # the second of four parts of about equal time

cosmic-ray (requirements-mutation.txt, installed into .venv-mutation) makes the mutants, each in a
throwaway copy of the working tree, so the checkout is never touched. A mutant is killed when the
fast tests that exercise its module (TESTS below) fail on it, run with `-x` under .venv's Python;
a mutant they miss is run once more with the slower test files that also exercise it
(SLOW_TESTS). The score is killed / (killed + survived); a mutant whose tests time out counts as
killed. Survivors are written with their diffs to .mutation/<module>.txt. The command fails when a
module of BAR scores below THRESHOLD, or its tests fail before anything is mutated.

What makes it fast without changing a verdict: a test that never executes a line cannot fail
because that line changed. So the module's tests first run once under coverage
(.ci/mutation_trace.py), which records which tests execute each line, also through what wider
fixtures and the project's functools caches hand on to later tests, and in the processes the tests
start. A mutant inside a function body then runs only the tests that execute its statement, in
their usual order; one in code that runs at import (module level, class bodies, decorators,
defaults) runs all of the module's tests; one that no test executes survives without a run
("not executed by any test" in the report). JOBS workers (.ci/mutation_worker.py) run mutants at
once, each in its own copy of the tree.

Left out (EXCLUDED_OPERATORS): arithmetic turned into a power, shift, modulo or bit operation, and
`is`/`is not` turned into an ordering. Applied to the strings, sets and None they meet here they
only raise TypeError, and on numbers they repeat what the +, -, *, / swaps already test.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import queue
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
MUTATION_VENV = ".venv-mutation"
COSMIC_RAY = ROOT / MUTATION_VENV / "bin/cosmic-ray"
# Estimated seconds of each module, for PART (measured runs; see parts()).
ESTIMATES = Path(__file__).with_name("mutation-estimates.json")
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
    # Platform modules: plans of other stacks and variants, on the survivors of the fast files.
    "components/containers/workloads.py": ["tests/test_images.py", "tests/test_monitoring.py", "tests/test_multicluster.py"],
    "components/docker/local.py": ["tests/test_swarm_ha.py", "tests/test_identity.py", "tests/test_monitoring.py", "tests/test_multicluster.py"],
    "components/docker/swarm.py": ["tests/test_identity.py", "tests/test_monitoring.py"],
    # The Swarm HA pair's scrape jobs, pair labels and alert relabelling.
    "components/containers/monitoring.py": ["tests/test_swarm_ha.py"],
    "components/targets.py": ["tests/test_ec2.py", "tests/test_multicluster.py"],
    **{f"components/ec2/{name}.py": ["tests/test_policies.py", "tests/test_swarm_ha.py"]
       for name in ("platform", "topology", "network", "fleet", "identity", "userdata", "database")},
    **{f"components/eks/{name}.py": ["tests/test_identity.py", "tests/test_swarm_ha.py", "tests/test_multicluster.py"]
       for name in ("platform", "base", "loki", "prometheus", "tempo", "thanos")},
    # promtool runs the alert tests, about a minute a run.
    "components/core/renderers/freshness.py": ["tests/test_alerts.py"],
}

# The fast tests that exercise each module, quickest and most pointed first (`-x` stops at the
# first failure). None: only the integration suite runs the module, so it is not mutated here.
TESTS: dict[str, list[str] | None] = {
    # test_ec2.py: the aws.ec2 refusals (Ec2Senders, Ec2Fleets, Ec2Config) are tested there.
    "components/core/config.py": ["tests/test_config.py", "tests/test_ec2.py", "tests/test_lifecycle.py", "tests/test_access.py",
                                  "tests/test_rendered_values.py", "tests/test_swarm_ha.py"],
    "components/core/loading.py": ["tests/test_config.py", "tests/test_access.py", "tests/test_lifecycle.py"],
    "components/core/access.py": ["tests/test_access.py", "tests/test_identity.py"],
    "components/core/lifecycle.py": ["tests/test_lifecycle.py", "tests/test_storage.py"],
    "components/core/storage.py": ["tests/test_storage.py", "tests/test_lifecycle.py", "tests/test_eks.py"],
    **{module: _RENDERED for module in RENDERERS},
    "components/core/versions.py": ["tests/test_versions.py", "tests/test_config.py", "tests/test_images.py", "tests/test_charts.py",
                                    "tests/test_chart_facts.py"],
    "components/core/sizing.py": ["tests/test_sizing.py", "tests/test_eks.py"],
    "components/core/identity.py": ["tests/test_identity.py", "tests/test_policies.py"],
    "components/containers/workloads.py": ["tests/test_docker.py", "tests/test_swarm_ha.py", "tests/test_renderers.py", "tests/test_ec2.py"],
    "components/targets.py": ["tests/test_docker.py", "tests/test_storage.py", "tests/test_identity.py", "tests/test_eks.py"],
    "components/docker/minio.py": ["tests/test_docker.py", "tests/test_storage.py", "tests/test_identity.py"],
    "components/docker/local.py": ["tests/test_docker.py", "tests/test_images.py"],
    "components/docker/swarm.py": ["tests/test_docker.py", "tests/test_swarm_ha.py", "tests/test_images.py"],
    "components/eks/loki.py": ["tests/test_eks_loki.py", "tests/test_chart_facts.py", "tests/test_charts.py", "tests/test_eks_order.py", "tests/test_eks.py",
                               "tests/test_eks_rollout.py", "tests/test_sizing.py"],
    "components/eks/thanos.py": ["tests/test_eks_thanos.py", "tests/test_chart_facts.py", "tests/test_charts.py", "tests/test_eks_order.py", "tests/test_eks.py",
                                 "tests/test_eks_rollout.py", "tests/test_sizing.py"],
    **{f"components/eks/{name}.py": ["tests/test_chart_facts.py", "tests/test_charts.py", "tests/test_eks_order.py", "tests/test_eks.py",
                                     "tests/test_eks_rollout.py", "tests/test_sizing.py"]
       for name in ("platform", "base", "prometheus", "tempo")},
    "components/core/thanos_topology.py": ["tests/test_multicluster.py"],
    **{f"components/ec2/{name}.py": ["tests/test_ec2.py"]
       for name in ("platform", "topology", "network", "fleet", "identity", "userdata", "database")},
    # The alert tests need promtool (export OBS_PROMETHEUS_BIN_DIR="$(.ci/install-prometheus)" first)
    # and take about a minute a run: mutating alerts.py takes hours.
    "components/core/renderers/alerts.py": ["tests/test_alerts.py", "tests/test_monitoring.py"],
    "components/core/renderers/dashboards.py": ["tests/test_monitoring.py"],
    "components/core/renderers/freshness.py": ["tests/test_freshness.py", "tests/test_monitoring.py", "tests/test_docker.py"],
    "probes/bucket_freshness.py": ["tests/test_freshness.py"],
    "probes/ec2_agent.py": ["tests/test_ec2.py"],
    # test_ec2.py: the EC2 monitoring fleet's scrapes against the fleets' Cloud Map names and ports.
    "components/containers/monitoring.py": ["tests/test_monitoring.py", "tests/test_ec2.py", "tests/test_alerts.py", "tests/test_docker.py"],
    "components/eks/monitoring.py": ["tests/test_eks_monitoring.py", "tests/test_monitoring.py", "tests/test_eks.py", "tests/test_swarm_ha.py", "tests/test_sizing.py"],
    "policies/rules.py": ["tests/test_policies.py"],
    "policies/offline.py": ["tests/test_policies.py"],
    "policies/__main__.py": ["tests/test_policies.py"],
    "tools/engine.py": ["tests/test_engine.py", "tests/test_plan.py", "tests/test_identity.py"],
    "tools/plan.py": ["tests/test_plan.py", "tests/test_policies.py"],
    "tools/config_reference.py": ["tests/test_config_reference.py"],
    **{f"tools/cost/{name}.py": ["tests/test_cost_model.py", "tests/test_cost.py"]
       for name in ("facts", "prices", "topology", "patterns", "usage", "pricing", "timeline", "measure", "report", "cli")},
    # Entry points that only call cli.main: nothing to mutate.
    "tools/cost/__main__.py": None,
    "tools/verify/__main__.py": None,
    "tools/bench_plan.py": None,
    # tools.verify's decisions against fakes of S3, IAM and HTTP (its real-server tests are in
    # tests/integration/, which a mutation run does not start).
    **{f"tools/verify/{name}.py": ["tests/test_verify_checks.py"] for name in ("cli", "common", "identity", "storage", "tools", "fleets")},
    "tools/verify/freshness.py": ["tests/test_verify_checks.py", "tests/test_freshness.py"],
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


def test_files(module: str, slow: bool = False) -> list[str]:
    tests = [t for t in TESTS[module] + (SLOW_TESTS.get(module, []) if slow else []) if (ROOT / t).exists()]
    return list(dict.fromkeys(tests))


PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "--ignore=tests/integration"]


def test_command(module: str, slow: bool = False) -> str:
    """What each mutant of the module runs at most."""
    return f"{PYTHON} -m pytest {' '.join(PYTEST_ARGS + test_files(module, slow))}"


def copy_tree(into: Path) -> None:
    """The working tree as it is now (tracked and new files, nothing git ignores)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    # Tests that start the offline tools through make find the project's virtualenv.
    (into / ".venv").symlink_to(ROOT / ".venv")


# No bytecode: a mutant written within the same second as the original, with the same size, would
# otherwise run the cached original.
ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


# ---------------------------------------------------------------- the baseline: which test runs which line
class Baseline:
    """One run of a list of test files under coverage (.ci/mutation_trace.py), for the modules
    mapped to that list: the tests in the order they ran, and for each line of those modules the
    tests that execute it, or FULL when it runs at import (or outside any test)."""

    FULL = None

    def __init__(self, work: Path, tests: list[str], modules: list[str]):
        self.tests, self.modules = tests, modules
        out = Path(tempfile.mkdtemp(prefix="trace-", dir=work))
        trace = out / "path"
        trace.mkdir()
        site = next((ROOT / MUTATION_VENV / "lib").glob("python*/site-packages"))
        (trace / "coverage").symlink_to(site / "coverage")
        shutil.copy2(Path(__file__).with_name("mutation_trace.py"), trace / "mutation_trace.py")
        (trace / "sitecustomize.py").write_text(
            "import os\n"
            "if os.environ.get('OBS_MUTATION_TRACE_OUT'):\n"
            "    plugin = os.environ.get('OBS_MUTATION_TRACE_PLUGIN') == '1'\n"
            "    import mutation_trace\n"
            "    if not plugin:\n"
            "        mutation_trace.subprocess_start()\n")
        env = {**ENV, "PYTHONPATH": str(trace), "OBS_MUTATION_TRACE_OUT": str(out), "OBS_MUTATION_TRACE_PLUGIN": "1",
               "OBS_MUTATION_TRACE_INCLUDE": os.pathsep.join(str(work / m) for m in modules),
               "OBS_MUTATION_TRACE_MODULES": os.pathsep.join(m[:-3].replace("/", ".").removesuffix(".__init__") for m in modules)}
        started = time.monotonic()
        proc = subprocess.run([str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "mutation_trace",
                               "--ignore=tests/integration", *tests], cwd=work, env=env, capture_output=True, text=True)
        self.seconds = time.monotonic() - started
        data = json.loads((out / "tests.json").read_text()) if (out / "tests.json").exists() else None
        self.failed = proc.returncode != 0 or data is None or bool(data["failed"])
        self.output = proc.stdout[-2000:] + proc.stderr[-2000:]
        if self.failed:
            return
        self.order: list[str] = data["order"]
        self.ran = set(self.order)
        self.test_seconds: dict[str, float] = data["seconds"]
        self.lines = self._read_lines(out, work)
        self.users = self._users(data["uses"])
        shutil.rmtree(out, ignore_errors=True)

    @staticmethod
    def _read_lines(out: Path, work: Path) -> dict[str, dict[int, set[str]]]:
        """{module: {line: contexts}} from coverage's data files (SQLite; each context's lines are a
        bit map, coverage.numbits: bit b of byte i is line 8 * i + b)."""
        lines: dict[str, dict[int, set[str]]] = {}
        for data_file in out.glob("coverage.*"):
            db = sqlite3.connect(data_file)
            try:
                rows = db.execute("select f.path, c.context, l.numbits from line_bits l join file f on f.id = l.file_id"
                                  " join context c on c.id = l.context_id").fetchall()
            finally:
                db.close()
            for path, context, numbits in rows:
                module = str(Path(path).relative_to(work))
                per_line = lines.setdefault(module, {})
                for i, byte in enumerate(numbits):
                    for b in range(8):
                        if byte & (1 << b):
                            per_line.setdefault(8 * i + b, set()).add(context)
        return lines

    def _users(self, uses: dict[str, list[str]]) -> dict[str, set[str] | None]:
        """For every context, the tests that use what it computed (itself for a test), or FULL when
        code outside any test does ("import", "between", a process whose test is unknown)."""
        used_by: dict[str, set[str]] = {}
        for user, providers in uses.items():
            for provider in providers:
                used_by.setdefault(provider, set()).add(user)
        tests = set(self.order)
        memo: dict[str, set[str] | None] = {}

        def resolve(context: str, seen: frozenset) -> set[str] | None:
            if context in memo:
                return memo[context]
            if context in tests:
                return {context}
            if context in ("import", "between", "unknown", ""):
                return Baseline.FULL
            found: set[str] = set()
            for user in used_by.get(context, ()):
                if user in seen:
                    continue
                got = resolve(user, seen | {context})
                if got is Baseline.FULL:
                    memo[context] = Baseline.FULL
                    return Baseline.FULL
                found |= got
            memo[context] = found
            return found

        return {context: resolve(context, frozenset()) for context in {*used_by, *uses, *tests}}

    def tests_for(self, module: str, lines: range) -> list[str] | None:
        """The tests that execute any of `lines` of the module, in the order they ran; FULL when any
        of those lines runs outside a test."""
        selected: set[str] = set()
        per_line = self.lines.get(module, {})
        for line in lines:
            for context in per_line.get(line, ()):
                users = {context} if context in self.ran else self.users.get(context, Baseline.FULL)
                if users is Baseline.FULL:
                    return Baseline.FULL
                selected |= users
        return [t for t in self.order if t in selected]


def statement_lines(source: str) -> dict[int, range]:
    """For each line inside a function body, the lines of the innermost statement holding it. Lines
    not in the answer run at import: module level, class bodies, and the decorators, defaults and
    annotations of the functions defined there."""
    spans: dict[int, range] = {}
    headers: list[range] = []

    def mark(statement: ast.stmt) -> None:
        lines = range(min([statement.lineno, *(d.lineno for d in getattr(statement, "decorator_list", []))]), statement.end_lineno + 1)
        for line in lines:
            spans[line] = lines

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if in_function and isinstance(child, ast.stmt):
                mark(child)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                header = [*child.decorator_list, child.args, *([child.returns] if child.returns else [])]
                for part in header:
                    walk(part, in_function)
                for statement in child.body:
                    mark(statement)
                    walk(statement, True)
                if not in_function:
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    last = max([child.lineno, *(getattr(p, "end_lineno", None) or child.lineno for p in header)])
                    headers.append(range(first, last + 1))
            else:
                walk(child, in_function)

    walk(ast.parse(source), False)
    # A body on the line of its def (`def f(x=1): return x`): the line runs at import too.
    for lines in headers:
        for line in lines:
            spans.pop(line, None)
    return spans


# ---------------------------------------------------------------- mutants and the workers that run them
def mutants(work: Path, module: str) -> tuple[list[dict], int]:
    """The module's mutants (cosmic-ray init and the operator filter) and how many were left out."""
    config = work / "cosmic-ray.toml"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        "timeout = 30.0\nexcluded-modules = []\ntest-command = \"true\"\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n"
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = {json.dumps(EXCLUDED_OPERATORS)}\n"
    )
    session = work / "session.sqlite"
    session.unlink(missing_ok=True)
    subprocess.run([str(COSMIC_RAY), "init", str(config), str(session)], cwd=work, env=ENV, check=True, capture_output=True)
    subprocess.run([str(COSMIC_RAY.parent / "cr-filter-operators"), str(session), str(config)], cwd=work, env=ENV, check=True, capture_output=True)
    db = sqlite3.connect(session)
    try:
        rows = db.execute("select s.operator_name, s.occurrence, s.start_pos_row, s.start_pos_col, s.operator_args, r.worker_outcome"
                          " from mutation_specs s left join work_results r on r.job_id = s.job_id"
                          " order by s.start_pos_row, s.start_pos_col, s.operator_name").fetchall()
    finally:
        db.close()
    found = [{"module": module, "operator": op, "occurrence": n, "line": row, "column": col}
             for op, n, row, col, _args, outcome in rows if outcome is None]
    return found, sum(1 for r in rows if r[5] is not None)


class Workers:
    """JOBS copies of the tree, each with a worker (.ci/mutation_worker.py) that applies one mutant
    at a time to its own copy and runs the tests."""

    def __init__(self, jobs: int, base: Path):
        self.procs = []
        for i in range(jobs):
            tree = base / f"worker-{i}"
            tree.mkdir()
            copy_tree(tree)
            self.procs.append(subprocess.Popen([str(ROOT / MUTATION_VENV / "bin/python"), str(Path(__file__).with_name("mutation_worker.py"))],
                                               cwd=tree, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        self.free: queue.Queue = queue.Queue()
        for proc in self.procs:
            self.free.put(proc)

    def run(self, job: dict) -> dict:
        proc = self.free.get()
        started = time.monotonic()
        try:
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()
            if not answer:
                raise RuntimeError(f"mutation worker stopped (exit status {proc.poll()})")
            return {**json.loads(answer), "seconds": time.monotonic() - started}
        finally:
            self.free.put(proc)

    def map(self, jobs: list[dict]) -> list[dict]:
        with ThreadPoolExecutor(max_workers=len(self.procs)) as pool:
            return list(pool.map(self.run, jobs))

    def close(self) -> None:
        for proc in self.procs:
            proc.stdin.close()
            proc.wait()


def job(mutant: dict, tests: list[str] | None, base: Baseline, slow: bool, timeout: float) -> dict:
    """The worker's job: the selected tests by node id, or all of the module's test files."""
    module = mutant["module"]
    return {**mutant, "timeout": timeout, "command": [str(PYTHON), "-m", "pytest", *PYTEST_ARGS, *(test_files(module, slow) if tests is None else tests)]}


def run_module(module: str, work: Path, workers: Workers, baselines: dict) -> dict:
    """Mutate one module; returns its counts, or why it was not run."""
    if TESTS.get(module) is None:
        why = "no fast test runs it (integration suite only)" if module in TESTS else "no tests mapped in .ci/mutation.py"
        return {"module": module, "not_run": why}
    started = time.monotonic()
    fast = baseline(baselines, work, module, slow=False)
    if fast.failed:
        return {"module": module, "failed": f"its tests fail before any mutation:\n{fast.output}"}
    found, filtered = mutants(work, module)
    spans = statement_lines((ROOT / module).read_text())
    timeout = max(30.0, 10 * fast.seconds)
    result = {"module": module, "killed": 0, "survived": 0, "errors": 0, "filtered": filtered, "survivors": [], "not_executed": 0,
              "full_runs": 0, "baseline_seconds": round(fast.seconds), "mutant_seconds": 0.0}
    runs, jobs = [], []
    for mutant in found:
        span = spans.get(mutant["line"])
        tests = Baseline.FULL if span is None else fast.tests_for(module, span)
        if tests == []:
            result["survivors"].append({**mutant, "diff": "", "why": "not executed by any test"})
            result["not_executed"] += 1
            continue
        result["full_runs"] += tests is None
        runs.append(mutant)
        jobs.append(job(mutant, tests, fast, False, timeout))
    result["runs"] = len(runs)
    survivors = []
    for mutant, answer in zip(runs, workers.map(jobs)):
        result["mutant_seconds"] += answer["seconds"]
        if answer["worker_outcome"] == "normal" and answer["test_outcome"] == "killed":
            result["killed"] += 1
        elif answer["worker_outcome"] == "normal" and answer["test_outcome"] == "survived":
            survivors.append({**mutant, "diff": answer["diff"]})
        elif answer["worker_outcome"] not in ("no_test", "skipped"):
            result["errors"] += 1
    if SLOW_TESTS.get(module) and (survivors or result["survivors"]):
        recheck(work, workers, baselines, module, result, survivors)
    result["survivors"] += survivors
    result["survivors"].sort(key=lambda s: (s["line"], s["column"], s["operator"]))
    result["survived"] = len(result["survivors"])
    result["seconds"] = round(time.monotonic() - started)
    return result


def baseline(baselines: dict, work: Path, module: str, slow: bool) -> Baseline:
    """The baseline of the module's test files, shared by every module mapped to the same files."""
    tests = tuple(test_files(module, slow))
    if tests not in baselines:
        modules = [m for m in all_modules() if TESTS.get(m) and tuple(test_files(m, slow)) == tests] or [module]
        baselines[tests] = Baseline(work, list(tests), sorted({*modules, module}))
    return baselines[tests]


def slow_only(module: str, tests: list[str] | None) -> list[str]:
    """What a survivor's recheck runs: of the tests that execute its line (FULL: all of them), the
    ones in the slower files only. The fast files' tests already passed on it, or never executed
    it, so they cannot kill it the second time either."""
    fast_files = set(test_files(module))
    if tests is Baseline.FULL:
        return [f for f in test_files(module, slow=True) if f not in fast_files]
    return [t for t in tests if t.split("::")[0] not in fast_files]


def recheck(work: Path, workers: Workers, baselines: dict, module: str, result: dict, survivors: list[dict]) -> None:
    """Run each survivor once more with the slower tests (those of them that execute its line);
    move the ones they kill. Mutants no fast test executes are rechecked the same way."""
    full = baseline(baselines, work, module, slow=True)
    if full.failed:
        return
    spans = statement_lines((ROOT / module).read_text())
    timeout = max(60.0, 10 * full.seconds)
    candidates = survivors + [s for s in result["survivors"] if s.get("why")]
    runs, jobs = [], []
    for s in candidates:
        span = spans.get(s["line"])
        tests = slow_only(module, Baseline.FULL if span is None else full.tests_for(module, span))
        if not tests:
            continue
        runs.append(s)
        jobs.append(job({k: s[k] for k in ("module", "operator", "occurrence", "line", "column")}, tests, full, True, timeout))
    for s, answer in zip(runs, workers.map(jobs)):
        result["mutant_seconds"] += answer["seconds"]
        if answer["worker_outcome"] == "normal" and answer["test_outcome"] == "killed":
            result["killed"] += 1
            result["killed_by_slow_tests"] = result.get("killed_by_slow_tests", 0) + 1
            if s.get("why"):
                result["not_executed"] -= 1
                result["survivors"].remove(s)
            else:
                survivors.remove(s)
        elif s.get("why"):
            # Executed by a slower test after all: a survivor with its diff.
            s.pop("why")
            s["diff"] = answer["diff"]
            result["not_executed"] -= 1


def score(result: dict) -> float:
    total = result["killed"] + result["survived"]
    return 100.0 * result["killed"] / total if total else 100.0


def report(result: dict) -> None:
    path = REPORTS / (result["module"].replace("/", "_") + ".txt")
    lines = [f"{result['module']}: {result['killed']} killed ({result.get('killed_by_slow_tests', 0)} by the slower tests), "
             f"{result['survived']} survived ({result['not_executed']} not executed by any test), {score(result):.1f}% killed; "
             f"{result['filtered']} left out (EXCLUDED_OPERATORS)",
             f"{result['runs']} mutants run ({result['full_runs']} of them in import-time code, with all of the module's tests), "
             f"{round(result['mutant_seconds'])}s of test runs; baseline {result['baseline_seconds']}s; {result['seconds']}s in all", ""]
    for s in result["survivors"]:
        lines.append(f"--- survived: {s['operator']} at line {s['line']}, column {s['column']}"
                     + (f" ({s['why']})" if s.get("why") else ""))
        if s["diff"]:
            lines.append(s["diff"].rstrip())
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- parts of MODULES=all
def weights(modules: list[str]) -> dict[str, float]:
    """Each module's seconds of one job, for PART: its last measured run (`measured` in ESTIMATES,
    wall seconds times the jobs it ran with, which a shared machine only makes longer), else its
    estimate scaled by the median ratio of measured to estimated seconds over the modules that
    have both (the estimate adds up every selected test's time under coverage, as if no mutant
    were killed, so it is several times too long)."""
    estimates = json.loads(ESTIMATES.read_text()) if ESTIMATES.exists() else {}
    measured = {m: e["measured"]["seconds"] * e["measured"]["jobs"] for m, e in estimates.items() if "measured" in e}
    ratios = sorted(measured[m] / estimates[m]["seconds"] for m in measured if estimates[m].get("seconds"))
    scale = ratios[len(ratios) // 2] if ratios else 1.0
    return {m: measured.get(m, scale * estimates.get(m, {}).get("seconds", 0.0)) for m in modules}


def parts(modules: list[str], count: int) -> list[list[str]]:
    """`count` parts of about equal time (weights(); largest first onto the part with the least so
    far), each in the order of `modules`."""
    weight = weights(modules)
    load = [0.0] * count
    chosen: list[list[str]] = [[] for _ in range(count)]
    for module in sorted(modules, key=lambda m: (-weight[m], m)):
        i = min(range(count), key=lambda k: (load[k], k))
        load[i] += weight[module]
        chosen[i].append(module)
    return [[m for m in modules if m in part] for part in chosen]


def record(result: dict, jobs: int) -> None:
    """Keep the module's measured run in ESTIMATES, for the next PART split."""
    estimates = json.loads(ESTIMATES.read_text()) if ESTIMATES.exists() else {}
    entry = estimates.setdefault(result["module"], {})
    entry["measured"] = {"seconds": result["seconds"], "jobs": jobs, "mutants": result["runs"] + result["not_executed"],
                         "killed_percent": round(score(result), 1), "date": time.strftime("%Y-%m-%d")}
    ESTIMATES.write_text(json.dumps(estimates, indent=1, sort_keys=True) + "\n")


# Seconds a mutant's run costs beyond its tests' own (Python's and pytest's start, imports,
# collection): tools/verify/cli.py's run of 2026-12-07 on a shared 2-core machine (docs/testing.md).
RUN_OVERHEAD = 2.5


def estimate(modules: list[str]) -> None:
    """Write ESTIMATES: for each module its mutants and how many run with which tests, and the
    seconds that would take (each run: RUN_OVERHEAD plus the baseline seconds of its tests, all
    of them, which `-x` cuts short on a killed mutant), plus its share of the baseline."""
    estimates = json.loads(ESTIMATES.read_text()) if ESTIMATES.exists() else {}
    base = Path(tempfile.mkdtemp(prefix="obs-mutation-"))
    try:
        work = base / "baseline"
        work.mkdir()
        copy_tree(work)
        baselines: dict = {}
        for module in modules:
            if not TESTS.get(module):
                continue
            fast = baseline(baselines, work, module, slow=False)
            if fast.failed:
                print(f"{module}: its tests fail before any mutation", file=sys.stderr)
                continue
            found, _ = mutants(work, module)
            spans = statement_lines((ROOT / module).read_text())
            every = sum(fast.test_seconds.values())
            sharing = sum(1 for m in fast.modules if TESTS.get(m))
            runs = full = not_executed = 0
            seconds = fast.seconds / max(1, sharing)
            for mutant in found:
                span = spans.get(mutant["line"])
                tests = Baseline.FULL if span is None else fast.tests_for(module, span)
                if tests == []:
                    not_executed += 1
                    continue
                runs += 1
                full += tests is None
                seconds += RUN_OVERHEAD + (every if tests is None else sum(fast.test_seconds[t] for t in tests))
            kept = {k: v for k, v in estimates.get(module, {}).items() if k == "measured"}
            estimates[module] = {**kept, "mutants": len(found), "runs": runs, "full_runs": full, "not_executed": not_executed,
                                 "baseline_seconds": round(fast.seconds, 1), "seconds": round(seconds)}
            print(f"{module:38} {len(found):>5} mutants, {runs:>5} runs ({full} with every test), ~{round(seconds)}s", flush=True)
            ESTIMATES.write_text(json.dumps(estimates, indent=1, sort_keys=True) + "\n")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="paths under components/, policies/, probes/, tools/; 'all' for every module (default: the modules held to the bar)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once, each in a copy of the tree of its own (default 1)")
    parser.add_argument("--estimate", action="store_true", help=f"estimate each module's time into {ESTIMATES.name} (for PART) instead of mutating")
    parser.add_argument("--part", default="", help="K/N: only the K-th of N parts of about equal estimated time (make mutation MODULES=all PART=1/3)")
    args = parser.parse_args(argv)
    modules = all_modules() if args.modules == ["all"] else (args.modules or BAR)
    unknown = [m for m in modules if not (ROOT / m).is_file()]
    if unknown:
        print(f"error: no such module: {', '.join(unknown)} (give paths like components/core/config.py)", file=sys.stderr)
        return 2
    if args.part:
        try:
            k, n = (int(x) for x in args.part.split("/"))
            assert 1 <= k <= n
        except (ValueError, AssertionError):
            print(f"error: PART={args.part}: give K/N with 1 <= K <= N, e.g. PART=1/3", file=sys.stderr)
            return 2
        modules = parts(modules, n)[k - 1]
        minutes = sum(weights(modules).values()) / max(1, args.jobs) / 60
        print(f"part {k}/{n}, about {minutes:.0f} min with --jobs {max(1, args.jobs)} on free cores: {' '.join(modules)}")
    if not COSMIC_RAY.exists():
        print(f"error: {COSMIC_RAY.relative_to(ROOT)} is missing; run `make mutation`, which installs it", file=sys.stderr)
        return 2
    if args.estimate:
        estimate(modules)
        return 0
    REPORTS.mkdir(exist_ok=True)
    failed = False
    base = Path(tempfile.mkdtemp(prefix="obs-mutation-"))
    workers = None
    try:
        work = base / "baseline"
        work.mkdir()
        copy_tree(work)
        workers = Workers(max(1, args.jobs), base)
        baselines: dict = {}
        started = time.monotonic()
        print(f"{'module':38} {'killed':>6} {'survived':>8} {'score':>7}  time")
        for module in modules:
            result = run_module(module, work, workers, baselines)
            if "not_run" in result:
                print(f"{module:38} not run: {result['not_run']}")
                continue
            if "failed" in result:
                print(f"{module:38} FAILED: {result['failed']}")
                failed = True
                continue
            report(result)
            record(result, max(1, args.jobs))
            below = module in BAR and score(result) < THRESHOLD
            failed |= below
            notes = f", {result['errors']} mutants could not run" if result["errors"] else ""
            notes += f", {result['killed_by_slow_tests']} killed by the slower tests" if result.get("killed_by_slow_tests") else ""
            notes += f", {result['not_executed']} not executed by any test" if result["not_executed"] else ""
            print(f"{module:38} {result['killed']:>6} {result['survived']:>8} {score(result):>6.1f}%  {result['seconds']}s"
                  f"{'  BELOW ' + str(THRESHOLD) + '%' if below else ''}{notes}", flush=True)
        print(f"{len(modules)} modules in {round(time.monotonic() - started)}s; survivors and their diffs: {REPORTS.relative_to(ROOT)}/")
    finally:
        if workers:
            workers.close()
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
