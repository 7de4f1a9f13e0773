"""The package's import graph: no cycles, and the layers of CONTRIBUTING.md point down.

Every ``import`` and ``from ... import`` of every module inside ``fastgmm`` is read from the
source (module level and inside functions alike: a lazy import that points up still ties the
layers together), resolved to a module of the package, and the graph is searched for cycles.
"""

import ast
from pathlib import Path

import fastgmm

PACKAGE = Path(fastgmm.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(current: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = _resolve(name, is_package, node.level, node.module)
                # ``from . import x`` imports the submodule x when there is one (and then only
                # the package's __init__ besides, which the graph leaves out).
                submodules = [f"{module}.{a.name}" for a in node.names]
                found = [m for m in submodules if m in modules]
                targets = found if found and node.module is None else [module, *found]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("fastgmm"):
                    graph[name].add(target)
    return graph


def _cycles(graph):
    """Every elementary cycle's smallest representative found by depth-first search."""
    found = set()
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt) :]
                start = cycle.index(min(cycle))
                found.add(tuple(cycle[start:] + cycle[:start]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def test_the_graph_is_read():
    graph = _graph()
    assert "fastgmm.providers" in graph["fastgmm.em"]
    assert "fastgmm._kernels.blocks" in graph["fastgmm.stats"]


def test_no_import_cycle_inside_the_package():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in sorted(cycles))


def test_kernels_import_nothing_from_the_api():
    graph = _graph()
    for name, targets in graph.items():
        if name.startswith("fastgmm._kernels"):
            outside = {t for t in targets if not t.startswith("fastgmm._kernels")}
            assert outside <= {"fastgmm._jit"}, (name, outside)


def test_leaves_stay_leaves():
    # The command line's --help, the source layer and the names must not pull in the engine.
    graph = _graph()
    for leaf in ("fastgmm._names", "fastgmm._events", "fastgmm.errors", "fastgmm.validation"):
        assert not graph[leaf], (leaf, graph[leaf])
    assert graph["fastgmm.sources"] <= {
        "fastgmm._reservoir",
        "fastgmm._interrupts",
        "fastgmm._events",
    }
