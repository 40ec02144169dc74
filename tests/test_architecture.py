"""The layout stays the architecture: no module of `benchmark/` imports another in a circle (imports inside
functions count too), and none names a bundled method (methods declare what the harness needs at registration)."""

import ast
from pathlib import Path

from conftest import ROOT

from benchmark import registry

PACKAGE = ROOT / "benchmark"
# the speed report's label of the shared loop with every weight training, and the plain recipe's counterpart,
# looked up through the registry: one constant
ALLOWED_NAMES = {("benchmark/speed/throughput.py", "full")}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("benchmark"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("benchmark")}
    return {name for name in found if name in known}


def test_no_module_imports_another_in_a_circle():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, " | ".join(" -> ".join(cycle) for cycle in cycles)


def test_no_module_of_the_harness_names_a_bundled_method():
    registry.discover()
    names = {spec.name for spec in registry.available().values() if spec.module.startswith("methods.")}
    named = set()
    for path in PACKAGE.rglob("*.py"):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names and (where, node.value) not in ALLOWED_NAMES:
                named.add((where, node.value))
    assert not named
