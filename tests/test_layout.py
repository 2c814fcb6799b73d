"""The import structure stays as docs/adr/0001 draws it: no import loops, services apart, layers one way.

Read from the source with `ast` (nothing is imported), so a violation names the file and the import.
Imports inside functions and under `TYPE_CHECKING` count too: they are still a dependency of the module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("services", "gateway", "b2c")
SERVICES = ("jobs", "health", "probes")
# STYLE.md §2: within a service (and each of its sub-domains) a layer imports only the ones before it.
LAYERS = ("domain", "repository", "service", "grpc_api", "main")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(module: str) -> Iterator[tuple[str, int]]:
    """The project modules `module` imports, with the line; `from pkg import name` counts as pkg.name when
    that is a module."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for name in targets:
            target = name
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module and not module.startswith(target + "."):
                yield target, node.lineno


GRAPH = {module: dict(_imports(module)) for module in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_no_module_takes_part_in_an_import_loop() -> None:
    """No two project modules import each other, directly or through others."""
    assert _cycles() == []


def test_services_never_import_each_other() -> None:
    """A service imports only itself and services.common; the protos are the only contract between them."""
    wrong = [
        f"{module}:{line} imports {target}"
        for module, targets in GRAPH.items()
        if module.startswith("services.") and module.split(".")[1] in SERVICES
        for target, line in targets.items()
        if target.startswith("services.") and target.split(".")[1] not in ("common", module.split(".")[1])
    ]
    assert wrong == []


def test_layers_import_only_the_layers_before_them() -> None:
    """domain → repository → service → grpc_api → main: no module imports a layer named after it, in its
    service or any of the service's sub-domains (an import back up would make the layers a loop in waiting)."""
    wrong = []
    for module, targets in GRAPH.items():
        name = module.rpartition(".")[2]
        if not module.startswith("services.") or name not in LAYERS:
            continue
        service = ".".join(module.split(".")[:2])
        for target, line in targets.items():
            target_name = target.rpartition(".")[2]
            upward = target_name in LAYERS and LAYERS.index(target_name) > LAYERS.index(name)
            if target.startswith(service + ".") and upward:
                wrong.append(f"{module}:{line} imports {target}")
    assert wrong == []


def test_nothing_below_a_composition_root_imports_it() -> None:
    """`main` modules assemble a process; only `__main__` and tests may import them."""
    wrong = [
        f"{module}:{line} imports {target}"
        for module, targets in GRAPH.items()
        for target, line in targets.items()
        if target.endswith(".main") and not module.endswith(".__main__")
    ]
    assert wrong == []
