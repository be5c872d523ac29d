"""The tree shows the pipeline: imports go one way, no cycles, no oversized modules."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mailcore", "provision")

# package -> the packages it may import (besides itself). Read top-down: the command line, the
# service, the stages in the order mail flows, then what they share.
MAY_IMPORT = {
    "mailcore.__main__": {"mailcore.cli"},
    "mailcore.cli": {"*"},
    "mailcore.testing": {"*"},  # the mail core as a pytest fixture (users' own tests): a top layer like cli
    "mailcore.service": {"mailcore.ingress", "mailcore.cleanup", "mailcore.queue", "mailcore.delivery", "mailcore.notify",
                         "mailcore.message", "mailcore.account", "mailcore.spec", "mailcore.store"},
    "mailcore.ingress": {"mailcore.cleanup", "mailcore.account", "mailcore.delivery", "mailcore.spec", "mailcore.store",
                         "mailcore.plan", "provision"},
    "mailcore.cleanup": {"mailcore.queue", "mailcore.message", "mailcore.account", "mailcore.store"},
    "mailcore.queue": {"mailcore.delivery", "mailcore.message", "mailcore.store"},
    "mailcore.delivery": {"mailcore.store"},
    "mailcore.notify": {"mailcore.spec", "mailcore.store"},
    "mailcore.message": {"mailcore.spec", "mailcore.store"},
    "mailcore.account": {"mailcore.spec", "mailcore.store"},
    "mailcore.plan": {"mailcore.spec", "mailcore.store"},
    "mailcore.harness": {"mailcore.delivery", "provision"},
    "mailcore.spec": set(),
    "mailcore.store": set(),
    "provision": {"mailcore.spec", "mailcore.store"},
    "mailcore": set(),  # the package's own __init__
}
# modules whose bulk is a table of data, allowed past the size limit (with the reason)
TABLES = {
    "mailcore/delivery/bounce.py": "the guide's bounce table: 300 of its lines are rows",
    "mailcore/store/tables.py": "the store's schema",
}
MAX_LINES = 520


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            if "migrations" in parts:
                continue
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module of ours `name` imports, at any depth of its code (lazy imports count)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([mod] if mod else []))
            targets = [f"{mod}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _package(module: str) -> str:
    for pkg in sorted(MAY_IMPORT, key=len, reverse=True):
        if module == pkg or module.startswith(pkg + "."):
            return pkg
    return module


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_import_cycles():
    assert _cycles(_graph()) == []


def test_packages_import_one_way():
    wrong = []
    for name, deps in _graph().items():
        pkg = _package(name)
        allowed = MAY_IMPORT.get(pkg)
        assert allowed is not None, f"{name} is in no package of MAY_IMPORT; add its package"
        if "*" in allowed:
            continue
        for dep in deps:
            dep_pkg = _package(dep)
            if dep_pkg != pkg and dep_pkg not in allowed and dep_pkg != "mailcore":
                wrong.append(f"{name} -> {dep}")
    assert wrong == []


def test_package_level_graph_has_no_cycles():
    pkgs: dict[str, set[str]] = {}
    for name, deps in _graph().items():
        pkgs.setdefault(_package(name), set()).update(_package(d) for d in deps if _package(d) != _package(name))
    assert _cycles(pkgs) == []


def test_modules_stay_small():
    big = []
    for name, path in _modules().items():
        rel = path.relative_to(ROOT).as_posix()
        n = len(path.read_text().splitlines())
        if n > MAX_LINES and rel not in TABLES:
            big.append(f"{rel}: {n} lines")
    assert big == []


@pytest.mark.parametrize("pkg", sorted(p for p in MAY_IMPORT if (ROOT / p.replace(".", "/") / "__init__.py").exists()))
def test_each_package_says_what_it_owns(pkg):
    doc = ast.get_docstring(ast.parse((ROOT / pkg.replace(".", "/") / "__init__.py").read_text()))
    assert doc and len(doc.split()) >= 12, f"{pkg}/__init__.py: say what the package owns"


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
