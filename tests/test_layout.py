"""The package's shape: folders by concept, no import cycles, no private names across modules, layering kept.

Static analysis of helpers/trainbook's sources (nothing imported), plus import-linter's contracts
(helpers/pyproject.toml) run on the real package and on a copy with one upward import added.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parents[1] / "helpers"
PACKAGE = HELPERS / "trainbook"


def module_name(path: Path) -> str:
    parts = path.relative_to(HELPERS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(root.rglob("*.py"))}


def imported_modules(name: str, path: Path, modules: dict) -> set[str]:
    """Every trainbook module `name` imports, anywhere in the file (function bodies included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles(modules: dict) -> list[list[str]]:
    """Strongly connected components of more than one module in the import graph (Tarjan)."""
    graph = {m: imported_modules(m, p, modules) for m, p in modules.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_the_package_has_no_import_cycle():
    assert import_cycles(package_modules()) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "trainbook"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("from .loading import load\n")
    (pkg / "data" / "loading.py").write_text("def load():\n    from . import types\n")
    (pkg / "data" / "types.py").write_text("")
    modules = {module_name_in(tmp_path, p): p for p in pkg.rglob("*.py")}
    assert import_cycles(modules) == [["trainbook.data", "trainbook.data.loading"]]


def module_name_in(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_another_modules_private_name():
    offenders = []
    for name, path in package_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                offenders += [f"{name}: from {'.' * node.level}{node.module or ''} import {a.name}"
                              for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def test_no_top_level_module_shares_a_prefix_with_a_sibling():
    names = sorted(p.stem for p in PACKAGE.iterdir()
                   if (p.suffix == ".py" and p.stem != "__init__" and p.stem != "__main__")
                   or (p.is_dir() and (p / "__init__.py").exists()))
    clashes = [(a, b) for a in names for b in names if a != b and a.startswith(b + "_")]
    clashes += [(a, b) for a in names for b in names if a != b and a.split("_")[0] == b.split("_")[0]
                and "_" in a and (a, b) not in clashes]
    assert clashes == [], f"prefix families that want a folder: {clashes}"
    assert {"data", "drift", "engine", "export", "lint", "models", "search", "tracking"} <= set(names)


def test_every_folder_states_its_public_names():
    for init in PACKAGE.rglob("__init__.py"):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init} has no docstring"
        if init.parent != PACKAGE:
            assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                        if isinstance(t, ast.Name)}
            assert "__all__" in assigned, f"{init} does not list its public names in __all__"


def lint_imports(package_parent: Path, config: Path):
    binary = Path(sys.executable).with_name("lint-imports")
    if not binary.exists():
        pytest.skip("import-linter is not installed (pip install -r requirements.txt)")
    env = {"PYTHONPATH": str(package_parent), "PATH": "/usr/bin:/bin", "HOME": str(package_parent)}
    return subprocess.run([str(binary), str(config), "--no-cache"], capture_output=True, text=True,
                          cwd=package_parent, env=env, timeout=120)


def test_import_linter_contracts_hold_and_catch_an_upward_import(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "trainbook", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(HELPERS / "pyproject.toml", tmp_path / "pyproject.toml")
    kept = lint_imports(tmp_path, tmp_path / "pyproject.toml")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "2 kept, 0 broken" in kept.stdout

    types = tmp_path / "trainbook" / "data" / "types.py"
    types.write_text(types.read_text() + "\n\ndef _upward():\n    from ..engine import trainer  # noqa\n")
    broken = lint_imports(tmp_path, tmp_path / "pyproject.toml")
    assert broken.returncode == 1
    assert "BROKEN" in broken.stdout and "trainbook.data.types -> trainbook.engine" in broken.stdout
