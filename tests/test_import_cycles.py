"""No import cycle between the project's modules, and each lower package imports only the packages
docs/architecture.md allows.

Every import statement counts: at module level, inside functions (the CLI's lazy imports) and
under ``TYPE_CHECKING``. The graph is read with ``ast`` from the packages pyproject.toml installs;
nothing is imported for it. A last test does import every module, on whichever Python runs the
suite (``make test-newest`` runs it on the newest one the lock supports).
"""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Cycles in files another change is restructuring; each entry names the modules and where it goes.
KNOWN_CYCLES: dict[frozenset[str], str] = {}

# docs/architecture.md, "imports of ours" (uscc and configfile: every package may import them)
EVERYONES = {"uscc", "configfile"}
ALLOWED = {
    "uscc": set(),
    "configfile": set(),
    "stability": set(),
    "simulation": set(),
    "features": set(),
    "models": set(),
    "training": {"features", "models", "stability"},
    "supervision": set(),
    "monitoring": {"features", "models", "stability"},
}


def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]]


def _modules() -> dict[str, Path]:
    modules = {}
    for package in _packages():
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports (a name imported from a package that is one of its
    submodules counts as that submodule)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join([*here[: len(here) - node.level + 1], *([node.module] if node.module else [])])
                targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        graph[name] = {m for t in targets if (m := owner(t)) is not None and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_counts_imports_inside_functions():
    graph = import_graph()
    # serving.cli.train imports training.promotion only inside `tiers promote`
    assert "training.promotion" in graph["serving.cli.train"]


def test_no_import_cycle_between_project_modules():
    found = {frozenset(c) for c in cycles(import_graph())}
    unexpected = sorted(sorted(c) for c in found - set(KNOWN_CYCLES))
    assert not unexpected, f"import cycles: {unexpected}"
    fixed = sorted(sorted(c) for c in set(KNOWN_CYCLES) - found)
    assert not fixed, f"no longer cycles (remove them from KNOWN_CYCLES): {fixed}"


def test_lower_packages_import_only_what_the_architecture_allows():
    graph = import_graph()
    broken = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if (src := module.split(".")[0]) in ALLOWED
        and (dst := target.split(".")[0]) not in {src, *EVERYONES}
        and dst not in ALLOWED[src]
    )
    assert not broken, f"imports the architecture table does not allow: {broken}"


# Scripts run by a tool, not importable on their own: Alembic executes its env.py inside a migration
# context (``alembic.context.config`` exists only there).
NOT_IMPORTABLE = {"serving.migrations.env"}


def test_every_project_module_imports():
    failed = {}
    for name in sorted(set(_modules()) - NOT_IMPORTABLE):
        try:
            importlib.import_module(name)
        except Exception as exc:  # every failing module is named, not the first only
            failed[name] = repr(exc)
    assert not failed, failed
