"""The Makefile and the commands the documentation (README.md and docs/) tells a user to run.

`make up` stops with a clear message when the Pulumi CLI or a Docker engine is missing, uses the
user's passphrase when one is exported, and the documented offline commands work as written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import documents
from tools import engine

ROOT = Path(__file__).resolve().parent.parent
# README.md and every document in docs/: a command is tested wherever it is written.
DOCS = documents.everything()


def make(target: str, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path}
    return subprocess.run([shutil.which("make"), "-s", target], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def fake_bin(tmp_path: Path, name: str, script: str) -> None:
    tool = tmp_path / name
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(0o755)


def test_up_without_pulumi_cli_says_so(tmp_path):
    proc = make("up", f"{tmp_path}:/usr/bin:/bin")
    assert proc.returncode != 0
    assert "the Pulumi CLI is not installed" in proc.stdout + proc.stderr


def test_up_without_docker_engine_says_so(tmp_path):
    fake_bin(tmp_path, "pulumi", "exit 0")
    fake_bin(tmp_path, "docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    proc = make("up", f"{tmp_path}:/usr/bin:/bin")
    assert proc.returncode != 0
    assert "no Docker engine answers" in proc.stdout + proc.stderr


def test_up_without_docker_command_says_so(tmp_path):
    fake_bin(tmp_path, "pulumi", "exit 0")
    # Only the fake bin directory: a machine with Docker installed has it in /usr/bin.
    proc = make("check-docker", str(tmp_path))
    assert proc.returncode != 0
    assert "docker command is not installed" in proc.stdout + proc.stderr


# ---------------------------------------------------------------- make up and passphrases
def make_up(tmp_path: Path, **passphrase_env: str) -> tuple[Path, list[str]]:
    """`make up` with fake pulumi/docker commands; the state dir and what pulumi saw in its environment."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    log = tmp_path / "pulumi.log"
    fake_bin(bin_dir, "docker", "exit 0")
    fake_bin(bin_dir, "pulumi", f"env | grep '^PULUMI_' | sort >> {log}; exit 0")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(PATH=f"{bin_dir}:/usr/bin:/bin", **passphrase_env)
    proc = subprocess.run([shutil.which("make"), "-s", "up", f"STATE_DIR={state}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return state, sorted(set(log.read_text().splitlines()))


def test_up_generates_a_passphrase_file_when_none_is_exported(tmp_path):
    state, seen = make_up(tmp_path)
    passphrase = state / "passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600 and len(passphrase.read_text().strip()) >= 32
    assert f"PULUMI_CONFIG_PASSPHRASE_FILE={passphrase}" in seen
    assert f"PULUMI_BACKEND_URL=file://{state}" in seen
    assert not any(line.startswith("PULUMI_CONFIG_PASSPHRASE=") for line in seen)


@pytest.mark.parametrize("value", ["an exported passphrase", ""])
def test_up_uses_an_exported_passphrase_and_nothing_else(tmp_path, value):
    state, seen = make_up(tmp_path, PULUMI_CONFIG_PASSPHRASE=value)
    assert not (state / "passphrase").exists()
    assert f"PULUMI_CONFIG_PASSPHRASE={value}" in seen
    assert not any(line.startswith("PULUMI_CONFIG_PASSPHRASE_FILE=") for line in seen), seen


def test_up_uses_an_exported_passphrase_file(tmp_path):
    own = tmp_path / "own-passphrase"
    own.write_text("mine\n")
    state, seen = make_up(tmp_path, PULUMI_CONFIG_PASSPHRASE_FILE=str(own))
    assert not (state / "passphrase").exists()
    assert [line for line in seen if line.startswith("PULUMI_CONFIG_PASSPHRASE")] == [f"PULUMI_CONFIG_PASSPHRASE_FILE={own}"]


# ---------------------------------------------------------------- make plan / make cost
def run_make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("make"), "-s", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_make_plan_of_one_stack_is_the_offline_plan():
    direct = subprocess.run([sys.executable, "-m", "tools.plan", "--stack", "staging"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    proc = run_make("plan", "STACK=staging")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == direct.stdout


def test_make_plan_passes_args_and_exit_codes():
    proc = run_make("plan", "STACK=prod", "ARGS=--json")
    assert proc.returncode == 0 and '"stack": "prod"' in proc.stdout
    failed = run_make("plan", "STACK=nope")
    assert failed.returncode != 0 and "error: no stack file Pulumi.nope.yaml" in failed.stderr


def test_make_plan_of_every_stack_stops_at_the_first_failure():
    proc = run_make("plan", "STACKS=nope local")
    assert proc.returncode != 0
    assert "== nope" in proc.stdout and "== local" not in proc.stdout


def test_make_cost_of_one_stack():
    proc = run_make("cost", "STACK=local")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Storage cost of stack local")


# ---------------------------------------------------------------- the documented commands
def documented_commands() -> list[str]:
    """Commands of README.md and docs/ that run project code: in code blocks and in inline code."""
    lines = [line for block in re.findall(r"```(?:sh)?\n(.*?)```", DOCS, re.S) for line in block.splitlines()]
    lines += re.findall(r"`([^`\n]+)`", DOCS)
    commands = []
    for line in lines:
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith(("make ", ".venv/bin/python -m ")):
            commands.append(line)
    return sorted(set(commands))


def is_runnable(command: str) -> bool:
    """Offline and with concrete arguments: no placeholder such as S, a|b, [...] or a shell redirection."""
    words = shlex.split(command)
    if any(ch in command for ch in "|[]<>…") or words[0] == "make" and words[1] not in ("plan", "cost"):
        return False
    stacks = [w.split("=", 1)[1] for w in words if w.startswith("STACK=")]
    stacks += [words[i + 1] for i, w in enumerate(words[:-1]) if w == "--stack"]
    return all(stack in ("local", "staging", "prod") for stack in stacks)


def test_docs_have_no_command_that_needs_an_activated_virtualenv():
    # A fresh clone has no `python` with the project's packages; `.venv/bin/python` or make targets work.
    bare = re.findall(r"(?<![\w/.])python3? -m [\w.]+", DOCS)
    assert not bare, f"documented commands that fail from a fresh clone: {bare}"


def test_documented_make_targets_exist():
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    used = {word for command in documented_commands() if command.startswith("make ")
            for word in shlex.split(command)[1:] if "=" not in word}
    assert used and used <= targets, f"the documentation uses make targets the Makefile lacks: {sorted(used - targets)}"


RUNNABLE = [c for c in documented_commands() if is_runnable(c)]


def test_documented_offline_commands_are_found():
    assert "make plan STACK=staging" in RUNNABLE and "make cost STACK=staging" in RUNNABLE


@pytest.mark.parametrize("command", RUNNABLE)
def test_documented_offline_command_works_as_written(command):
    proc = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{command}: {proc.stderr[-2000:]}"


# ---------------------------------------------------------------- workflows
WORKFLOWS = ROOT / ".github" / "workflows"
# Where the workflows send a user whose stack is not set up yet; the heading must exist there.
SETUP_POINTER = "docs/deploying.md: First-time set-up of staging and prod"


def step(workflow: str, job: str, step_id: str) -> dict:
    steps = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"][job]["steps"]
    return next(s for s in steps if s.get("id") == step_id)


def run_step(script: str, tmp_path: Path, stack: str, has_backend: bool) -> tuple[int, str]:
    output = tmp_path / "github_output"
    output.write_text("")
    env = {"PATH": "/usr/bin:/bin", "STACK": stack, "HAS_BACKEND": "true" if has_backend else "false", "GITHUB_OUTPUT": str(output)}
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    return proc.returncode, output.read_text() + proc.stdout


@pytest.mark.parametrize(
    "stack,has_backend,ready",
    [("local", False, True), ("staging", True, True), ("staging", False, False), ("prod", True, False)],
)
def test_preview_runs_only_for_stacks_that_are_set_up(tmp_path, stack, has_backend, ready):
    # The committed prod stack file holds placeholder secrets: no preview can decrypt them.
    code, out = run_step(step("pull-request.yml", "preview", "setup")["run"], tmp_path, stack, has_backend)
    assert code == 0 and f"ready={'true' if ready else 'false'}" in out, out
    if not ready:
        assert "::notice::" in out and SETUP_POINTER in out


@pytest.mark.parametrize("job,stack", [("staging", "staging"), ("prod", "prod")])
def test_deploy_stops_with_the_reason_when_the_stack_is_not_set_up(tmp_path, job, stack):
    script = step("deploy.yml", job, "setup")["run"]
    code, out = run_step(script, tmp_path, stack, has_backend=False)
    assert code != 0 and "::error::" in out and SETUP_POINTER in out
    code, out = run_step(script, tmp_path, stack, has_backend=True)
    assert (code == 0) == (stack == "staging"), out


def test_the_workflows_point_at_a_heading_that_exists():
    assert "## First-time set-up of staging and prod\n" in documents.read("docs/deploying.md")


def test_pull_requests_plan_every_stack_file_offline(tmp_path):
    # The step's own script, in a folder with three stack files and a .venv python that records its stacks.
    for stack in ("alpha", "beta-spoke", "gamma"):
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    fake_bin(tmp_path / ".venv" / "bin", "python", f'echo "$4" >> {tmp_path}/planned; echo \'{{"violations": []}}\'')
    script = step("pull-request.yml", "offline", "plans")["run"]
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "planned").read_text().split() == ["alpha", "beta-spoke", "gamma"]
    assert sorted(p.name for p in (tmp_path / "plans").iterdir()) == ["alpha.json", "beta-spoke.json", "gamma.json"]


def test_local_preview_creates_its_state_folder_before_pulumi_logs_in():
    steps = yaml.safe_load((WORKFLOWS / "pull-request.yml").read_text())["jobs"]["preview"]["steps"]
    mkdir = next(i for i, s in enumerate(steps) if 'mkdir -p "$RUNNER_TEMP/pulumi-state"' in s.get("run", ""))
    pulumi = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert mkdir < pulumi
    assert "format('file://{0}/pulumi-state', runner.temp)" in steps[pulumi]["with"]["cloud-url"]


# ---------------------------------------------------------------- make mutation
def mutation_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutation", ROOT / ".ci/mutation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_mutation_maps_every_module_to_tests_that_exist():
    mutation = mutation_script()
    modules = mutation.all_modules()
    assert "components/core/config.py" in modules and "policies/rules.py" in modules and "tools/cost/usage.py" in modules
    # MODULES=all would print "no tests mapped" for a module left out.
    assert [m for m in modules if m not in mutation.TESTS] == []
    listed = [t for tests in [*mutation.TESTS.values(), *mutation.SLOW_TESTS.values()] if tests for t in tests]
    assert [t for t in listed if not (ROOT / t).is_file()] == []
    # Every module held to the bar has fast tests, and the table in docs/testing.md lists each one.
    testing = documents.read("docs/testing.md")
    for module in mutation.BAR:
        assert mutation.TESTS[module], module
        escaped = module.replace("_", "\\_")  # Markdown: components/core/renderers/\_\_init\_\_.py
        assert f"| {escaped} |" in testing, module


def test_make_mutation_leaves_virtualenvs_out(tmp_path, monkeypatch):
    # `make policy-pack` creates policies/.venv; a virtualenv under any other name has a pyvenv.cfg.
    mutation = mutation_script()
    for name in ("components/core/a.py", "policies/rules.py", "policies/.venv/lib/python3.11/site-packages/six.py",
                 "tools/env/pyvenv.cfg", "tools/env/lib/site.py", "tools/cost/usage.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    assert mutation.all_modules() == ["components/core/a.py", "policies/rules.py", "tools/cost/usage.py"]


IMPORT_TIME = """import os
LIMIT = 3


@decorate(1)
def check(value, default=LIMIT):
    if value > LIMIT:
        return [v
                for v in value]
    def inner(x=2): return x
    return None


class Rules:
    size = 4

    def rule(self): return 5

    def other(self):
        return 6
"""


def test_make_mutation_runs_all_tests_only_on_code_that_runs_at_import():
    spans = mutation_script().statement_lines(IMPORT_TIME)
    # Module level, the decorator, the default, the class body and a method written on its def line
    # run when the module is imported, before any test: every test depends on them.
    assert [line for line in range(1, 21) if line in spans] == [7, 8, 9, 10, 11, 20]
    # Inside a function: the innermost statement, all its lines (an `if` with its body, a return
    # over two lines, a def that runs each time its function does).
    assert spans[7] == range(7, 10)
    assert spans[8] == spans[9] == range(8, 10)
    assert spans[10] == range(10, 11)
    assert spans[20] == range(20, 21)


def test_make_mutation_hands_a_cached_result_s_lines_to_every_test_that_uses_it():
    mutation = mutation_script()
    baseline = object.__new__(mutation.Baseline)
    baseline.order = ["t.py::a", "t.py::b", "t.py::c", "t.py::d"]
    baseline.ran = set(baseline.order)
    # a computed a cached result (cache 1, which used cache 2), b used it again; c a module-wide
    # fixture; collection used cache 3, which d used later.
    baseline.users = baseline._users({"t.py::a": ["cache 1"], "cache 1": ["cache 2"], "t.py::b": ["cache 1"], "t.py::c": ["fixture 4"],
                                      "import": ["cache 3"], "t.py::d": ["cache 3"]})
    baseline.lines = {"m.py": {10: {"t.py::d"}, 11: {"cache 2"}, 12: {"fixture 4"}, 13: {"cache 3"}, 14: {"between"}}}
    assert baseline.tests_for("m.py", range(10, 11)) == ["t.py::d"]
    assert baseline.tests_for("m.py", range(11, 12)) == ["t.py::a", "t.py::b"]
    assert baseline.tests_for("m.py", range(10, 13)) == ["t.py::a", "t.py::b", "t.py::c", "t.py::d"]
    # Executed at import or between tests: all of the module's tests.
    assert baseline.tests_for("m.py", range(13, 14)) is None
    assert baseline.tests_for("m.py", range(14, 15)) is None
    assert baseline.tests_for("m.py", range(15, 16)) == []
    assert baseline.tests_for("other.py", range(1, 100)) == []


def test_make_mutation_rechecks_a_survivor_with_the_slower_files_tests_only(monkeypatch):
    mutation = mutation_script()
    monkeypatch.setitem(mutation.TESTS, "m.py", ["tests/test_config.py", "tests/test_access.py"])
    monkeypatch.setitem(mutation.SLOW_TESTS, "m.py", ["tests/test_access.py", "tests/test_multicluster.py", "tests/test_plan.py"])
    # The fast files' tests passed on the survivor already; a slower file's tests are what is left.
    selected = ["tests/test_config.py::test_a", "tests/test_plan.py::test_b", "tests/test_access.py::test_c",
                "tests/test_multicluster.py::test_d[x::y]"]
    assert mutation.slow_only("m.py", selected) == ["tests/test_plan.py::test_b", "tests/test_multicluster.py::test_d[x::y]"]
    assert mutation.slow_only("m.py", ["tests/test_config.py::test_a"]) == []
    # Code that runs at import: every slower file that is not a fast one, in order.
    assert mutation.slow_only("m.py", None) == ["tests/test_multicluster.py", "tests/test_plan.py"]


@pytest.mark.skipif(not (ROOT / ".venv-mutation/bin/python").exists(), reason="needs .venv-mutation (make mutation installs it)")
def test_make_mutation_baseline_follows_caches_fixtures_and_processes(tmp_path):
    mutation = mutation_script()
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools/mod.py").write_text("def double(x):\n    return 2 * x\n\n\ndef unused():\n    return 1\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/__init__.py").write_text("")
    (tmp_path / "tests/test_m.py").write_text(
        "import functools, subprocess, sys\nimport pytest\nfrom tools import mod\n\n"
        "@functools.cache\ndef table():\n    return {k: mod.double(k) for k in range(3)}\n\n"
        "def test_a():\n    assert table()[2] == 4\n\ndef test_b():\n    assert table()[1] == 2\n\n"
        "def test_c():\n    assert 1 + 1 == 2\n\n"
        "@pytest.fixture(scope='module')\ndef forty():\n    return mod.double(20)\n\n"
        "def test_d(forty):\n    assert forty == 40\n\ndef test_e(forty):\n    assert forty > 0\n\n"
        "def test_f():\n    subprocess.run([sys.executable, '-c', 'from tools import mod; mod.unused()'], check=True)\n")
    baseline = mutation.Baseline(tmp_path, ["tests/test_m.py"], ["tools/mod.py"])
    assert not baseline.failed, baseline.output
    # b never calls double itself: it reads what a cached; e reads the fixture d set up.
    assert baseline.tests_for("tools/mod.py", range(2, 3)) == [f"tests/test_m.py::test_{t}" for t in "abde"]
    # Only a process the test started executes unused().
    assert baseline.tests_for("tools/mod.py", range(6, 7)) == ["tests/test_m.py::test_f"]
    assert baseline.tests_for("tools/mod.py", range(1, 2)) is None


def test_make_mutation_parts_take_about_equal_time(tmp_path, monkeypatch):
    mutation = mutation_script()
    estimates = tmp_path / "estimates.json"
    estimates.write_text(json.dumps({"a.py": {"seconds": 100}, "b.py": {"seconds": 60}, "c.py": {"seconds": 50}, "d.py": {"seconds": 10}}))
    monkeypatch.setattr(mutation, "ESTIMATES", estimates)
    # 110 s each; any other split of these four leaves one part longer.
    assert mutation.parts(["a.py", "b.py", "c.py", "d.py"], 2) == [["a.py", "d.py"], ["b.py", "c.py"]]
    assert mutation.parts(["d.py", "c.py"], 3) == [["c.py"], ["d.py"], []]


def test_make_mutation_parts_weigh_measured_runs_and_scale_the_estimates(tmp_path, monkeypatch):
    mutation = mutation_script()
    estimates = tmp_path / "estimates.json"
    estimates.write_text(json.dumps({
        "a.py": {"seconds": 1000, "measured": {"seconds": 100, "jobs": 2}},  # 200 s of one job: 0.2 of its estimate
        "b.py": {"seconds": 500, "measured": {"seconds": 50, "jobs": 1}},    # 0.1
        "c.py": {"seconds": 700, "measured": {"seconds": 210, "jobs": 1}},   # 0.3
        "d.py": {"seconds": 4000},                                           # never measured: the median 0.2, 800 s
    }))
    monkeypatch.setattr(mutation, "ESTIMATES", estimates)
    assert mutation.weights(["a.py", "b.py", "c.py", "d.py", "e.py"]) == {"a.py": 200, "b.py": 50, "c.py": 210, "d.py": 800, "e.py": 0}
    assert mutation.parts(["a.py", "b.py", "c.py", "d.py"], 2) == [["d.py"], ["a.py", "b.py", "c.py"]]


def test_make_mutation_records_a_run_beside_the_estimate(tmp_path, monkeypatch):
    mutation = mutation_script()
    estimates = tmp_path / "estimates.json"
    estimates.write_text(json.dumps({"a.py": {"seconds": 1000, "mutants": 10}}))
    monkeypatch.setattr(mutation, "ESTIMATES", estimates)
    mutation.record({"module": "a.py", "seconds": 120, "runs": 9, "not_executed": 1, "killed": 8, "survived": 2}, jobs=2)
    kept = json.loads(estimates.read_text())["a.py"]
    assert kept["seconds"] == 1000 and kept["mutants"] == 10
    assert {k: kept["measured"][k] for k in ("seconds", "jobs", "mutants", "killed_percent")} == {"seconds": 120, "jobs": 2, "mutants": 10, "killed_percent": 80.0}
    assert mutation.weights(["a.py"]) == {"a.py": 240}


def test_make_mutation_parts_of_all_hold_every_module_once():
    mutation = mutation_script()
    modules = mutation.all_modules()
    for count in (1, 3, 4):
        split = mutation.parts(modules, count)
        assert sorted(m for part in split for m in part) == sorted(modules)


@pytest.mark.parametrize("part", ["0/3", "4/3", "1-3", "x/2"])
def test_make_mutation_refuses_a_part_that_does_not_exist(part, capsys):
    assert mutation_script().main(["all", "--part", part]) == 2
    assert f"PART={part}: give K/N with 1 <= K <= N" in capsys.readouterr().err


def test_up_names_everything_missing_at_once(tmp_path):
    # Neither Pulumi nor Docker on PATH: both messages, each naming the command to run again.
    proc = make("up", str(tmp_path))
    assert proc.returncode != 0
    assert proc.stdout.splitlines() == [
        "error: the Pulumi CLI is not installed. Install it (https://www.pulumi.com/docs/iac/download-install/) and run 'make up' again.",
        "error: the docker command is not installed. Install Docker Engine or Docker Desktop and run 'make up' again."]


@pytest.mark.parametrize("target", ["down", "verify"])
def test_other_commands_without_pulumi_say_to_run_themselves_again(tmp_path, target):
    proc = make(target, str(tmp_path))
    assert proc.returncode != 0
    assert proc.stdout.splitlines() == [
        f"error: the Pulumi CLI is not installed. Install it (https://www.pulumi.com/docs/iac/download-install/) and run 'make {target}' again."]


def test_readme_shows_the_messages_make_up_prints(tmp_path):
    block = documents.block_after(documents.read("README.md"), "Without them it stops before doing anything")
    fake_bin(tmp_path, "docker", "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    assert make("up", str(tmp_path)).stdout == block


# ---------------------------------------------------------------- make test and promtool
def make_test_in_copy(tmp_path: Path, installer: str, **env: str) -> subprocess.CompletedProcess:
    """`make test` in a copy of the Makefile whose .venv python prints the promtool directory it
    is given, and whose .ci/install-prometheus is `installer`."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / ".ci").mkdir()
    fake_bin(tmp_path / ".ci", "install-prometheus", installer)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    fake_bin(tmp_path / ".venv" / "bin", "python", 'echo "promtool dir: [$OBS_PROMETHEUS_BIN_DIR] args: $*"')
    installed = tmp_path / ".venv" / ".installed"
    installed.write_text("")
    os.utime(installed, (2**31, 2**31))  # newer than the requirements: nothing to install
    clean = {k: v for k, v in os.environ.items() if k != "OBS_PROMETHEUS_BIN_DIR"}
    return subprocess.run([shutil.which("make"), "-s", "test"], cwd=tmp_path, env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_make_test_installs_promtool_for_the_alert_tests(tmp_path):
    proc = make_test_in_copy(tmp_path, f"touch {tmp_path}/installer-ran; echo /cache/prometheus/usr/bin")
    assert proc.returncode == 0, proc.stderr
    assert "promtool dir: [/cache/prometheus/usr/bin] args: -m pytest -q -n 2" in proc.stdout
    assert (tmp_path / "installer-ran").exists()


def test_make_test_keeps_a_promtool_directory_already_given(tmp_path):
    proc = make_test_in_copy(tmp_path, f"touch {tmp_path}/installer-ran; echo /elsewhere", OBS_PROMETHEUS_BIN_DIR="/mine/bin")
    assert proc.returncode == 0 and "promtool dir: [/mine/bin]" in proc.stdout
    assert not (tmp_path / "installer-ran").exists()


def test_make_test_without_apt_runs_the_suite_and_says_why_promtool_is_missing(tmp_path):
    proc = make_test_in_copy(tmp_path, "echo 'error: no Debian archive' >&2; exit 1")
    assert proc.returncode == 0 and "promtool dir: [] args: -m pytest -q -n 2" in proc.stdout
    assert "the alert-rule tests will be skipped" in proc.stderr


def test_make_plan_and_cost_cover_every_stack_file():
    # Spokes included: every Pulumi.<stack>.yaml is a stack someone deploys.
    for target, tool in (("plan", "tools.plan"), ("cost", "tools.cost")):
        proc = run_make("-n", target)
        (command,) = [line for line in proc.stdout.splitlines() if f"-m {tool}" in line]
        assert re.findall(r"--stack (\S+)", command) == engine.available_stacks(), command


def test_make_plan_of_several_stacks_as_json_is_one_json_document():
    proc = run_make("plan", "STACKS=local-spoke prod", "ARGS=--json")
    assert proc.returncode == 0, proc.stderr
    assert [p["stack"] for p in json.loads(proc.stdout)] == ["local-spoke", "prod"]
