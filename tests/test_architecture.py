"""The package's rooms and the one-way flow between them, read from the source.

Every `import` of a maas module counts, the lazy ones inside functions too: a lazy import is
still a dependency, only a cheaper one. The public surface (`__all__`) is pinned here as well,
so that it changes only on purpose.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import maas

PACKAGE = Path(maas.__file__).parent
# The small modules every room may use.
BASE = {
    "maas",
    "maas._lazy",
    "maas.errors",
    "maas.exits",
    "maas.files",
    "maas.aws",
    "maas.progress",
}
# room -> the rooms it may import (besides BASE and itself). Nothing imports "upstream": the
# core knows nothing of stores, the store nothing of serving, serving nothing of a user's
# machine; only the CLI sees everything.
ALLOWED = {
    "core": set(),
    "store": {"core"},
    "service": {"core", "store"},
    "client": {"core", "store", "service", "training.options"},
    "local": {"core", "store", "service", "client"},
    "training": {"core", "client.data", "training"},
    "cli": {"core", "store", "service", "client", "local", "training.options"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def lazy_exports(package: str) -> dict[str, str]:
    names: dict[str, str] = getattr(importlib.import_module(package), "_NAMES", {})
    return names


def imports_of(name: str) -> set[str]:
    """The maas modules `name` imports (a name from a package's lazy exports counts as the
    module that defines it)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("maas"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("maas"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if candidate in MODULES:
                    found.add(candidate)
                elif alias.name in lazy_exports(node.module):
                    found.add(lazy_exports(node.module)[alias.name])
                else:
                    found.add(node.module)
    return found - {name}


def room(name: str) -> str:
    parts = name.split(".")
    if name in BASE or len(parts) < 2:
        return "base"
    if parts[1] == "training" and len(parts) > 2 and parts[2] == "options":
        return "training.options"
    if parts[1] == "client" and len(parts) > 2 and parts[2] == "data":
        return "client.data"
    return parts[1]


def may_import(importer: str, imported: str) -> bool:
    target, source = room(imported), room(importer)
    if target == "base":
        return True
    if source == "base":
        return False
    home = source.split(".")[0]
    allowed = ALLOWED[home] | {home}
    return target in allowed or target.split(".")[0] in allowed


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_imports_only_downstream(name: str) -> None:
    upstream = sorted(i for i in imports_of(name) if not may_import(name, i))
    assert upstream == [], f"{name} ({room(name)}) must not import {upstream}"


def test_there_is_no_import_cycle() -> None:
    graph = {name: imports_of(name) & MODULES.keys() for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_classifier_knows_nothing_of_stores_or_settings() -> None:
    core = {name for name in MODULES if name.startswith("maas.core.")}
    assert imports_of("maas.core.classifier") <= BASE | core


def reads_maas_variables(name: str) -> bool:
    """Whether a module reads a MAAS_* variable: `X.get("MAAS_…")`, `getenv("MAAS_…")`,
    `environ["MAAS_…"]` or a settings reader's call with one as its first argument."""
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        key = None
        if isinstance(node, ast.Call) and node.args:
            key = node.args[0]
        elif isinstance(node, ast.Subscript):
            key = node.slice
        if isinstance(key, ast.Constant) and str(key.value).startswith("MAAS_"):
            return True
    return False


def test_maas_variables_are_read_in_one_module_per_side() -> None:
    readers = sorted(name for name in MODULES if reads_maas_variables(name))
    assert readers == ["maas.client.settings", "maas.service.settings"]


def test_the_public_names_are_what_they_are_meant_to_be() -> None:
    assert maas.__all__ == [
        "__version__",
        "Classifier",
        "ErrorCode",
        "MaasError",
        "Manifest",
        "ModelRef",
        "ModelStore",
        "Prediction",
        "Tokenizer",
    ]
    for package in (
        maas,
        importlib.import_module("maas.core"),
        importlib.import_module("maas.store"),
    ):
        for public in package.__all__:
            assert getattr(package, public) is not None, f"{package.__name__}.{public}"
