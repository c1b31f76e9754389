"""The tree reads as the architecture, and the imports keep it so.

Every import of a project module is read from the source (module level and inside functions
alike), so a new cycle or an import that reaches up a layer fails here before it is merged.
Layers, lowest first: components/core, components/containers, the platform packages
(components/eks, components/docker, components/ec2), components/targets.py (the seam), the program
(__main__.py). tools/ may use components/ and policies/; policies/ and probes/ use neither (the
policy pack runs in a virtualenv of its own, the probe inside a container).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("components", "policies", "probes", "tools")
PLATFORMS = ("components.eks", "components.docker", "components.ec2")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if ".venv" not in p.parts}
    found["__main__"] = ROOT / "__main__.py"
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules a file imports, anywhere in it. `from a.b import c` is an import of
    a.b.c when that is a module, else of a.b."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                out.add(name if name in modules else node.module)
    return {m for m in out if m in modules}


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int:
    if module == "__main__":
        return 4
    if module == "components.targets":
        return 3
    if module.startswith(PLATFORMS):
        return 2
    if module.startswith("components.containers"):
        return 1
    return 0


def test_the_finder_sees_function_level_imports_and_cycles():
    # The checks below are only as good as the graph: a cycle through an import inside a function
    # (the kind that used to hide one) must be found.
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    source = ROOT / "components/docker/local.py"
    assert "components.containers.monitoring" in imports_of(source, project_modules())


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_components_import_only_downward():
    wrong = [(m, d) for m, deps in graph().items() if m.startswith("components") or m == "__main__"
             for d in deps if d.startswith("components") and layer(d) > layer(m)]
    assert wrong == [], f"imports that reach up a layer: {wrong}"


def test_platform_packages_do_not_import_each_other():
    def platform(module: str):
        return next((p for p in PLATFORMS if module == p or module.startswith(p + ".")), None)

    wrong = [(m, d) for m, deps in graph().items() for d in deps if platform(m) and platform(d) and platform(m) != platform(d)]
    assert wrong == []


@pytest.mark.parametrize("package, forbidden", [
    ("components", ("tools", "policies", "probes")),
    ("policies", ("components", "tools", "probes")),
    ("probes", ("components", "tools", "policies")),
])
def test_packages_stay_in_their_lane(package, forbidden):
    wrong = [(m, d) for m, deps in graph().items() if m.split(".")[0] == package for d in deps if d.split(".")[0] in forbidden]
    assert wrong == []


def test_the_core_knows_no_platform():
    # core is shared by every platform: a platform name inside it means a difference leaked
    # past the seam (components/targets.py).
    wrong = [(m, d) for m, deps in graph().items() if m.startswith("components.core") for d in deps if not d.startswith("components.core")]
    assert wrong == []


@pytest.mark.parametrize("stack, loaded, not_loaded", [
    ("staging", ("components.eks", "pulumi_aws", "pulumi_kubernetes"), ("components.docker", "components.containers", "pulumi_docker", "pulumi_minio")),
    ("local", ("components.docker.local", "pulumi_docker"), ("components.eks", "components.docker.swarm", "pulumi_aws", "pulumi_kubernetes")),
    ("prod", ("components.docker.swarm", "pulumi_docker"), ("components.eks", "components.docker.local", "pulumi_aws", "pulumi_kubernetes")),
])
def test_a_stack_loads_only_its_own_platform(stack, loaded, not_loaded):
    code = (f"import sys\nfrom tools import engine\nengine.run({stack!r})\n"
            "print('\\n'.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = set(proc.stdout.split())

    def present(prefix: str) -> bool:
        return any(m == prefix or m.startswith(prefix + ".") for m in modules)

    assert [p for p in loaded if not present(p)] == []
    assert [p for p in not_loaded if present(p)] == []
