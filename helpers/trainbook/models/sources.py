"""A user model's source files, found statically: the local modules a model file imports.

    code = local_code(Path("nanoGPT/model.py")); code.files, code.missing

A bundle copies `code.files` (the model file, the modules and packages it imports from its own
folder, followed through their imports) and `code.data` (the folder's config.json). Imports that
are neither local nor installed where a fresh Python process would look (the working directory
and `sys.path.insert` calls do not count) are listed in `code.missing`; imports inside
`try: ... except ImportError` are optional and never missing.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG_FILE = "config.json"
_OPTIONAL = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


@dataclasses.dataclass
class LocalCode:
    folder: Path                                          # the model file's folder
    files: list[Path] = dataclasses.field(default_factory=list)    # .py files to copy, model file first
    data: list[Path] = dataclasses.field(default_factory=list)     # the folder's config.json when present
    local_names: set[str] = dataclasses.field(default_factory=set)  # top-level names of the local modules
    missing: list[str] = dataclasses.field(default_factory=list)   # "name (imported by file line N)"


def local_code(path: Path, check_missing: bool = True) -> LocalCode:
    """The model file's local code, followed through imports.

    Args:
        path: the model's .py file. check_missing: look up non-local imports (fills `missing`).

    Raises:
        FileNotFoundError: the model file does not exist. SyntaxError: a file does not parse
            (the message names file and line).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file does not exist")
    code = LocalCode(folder=path.parent)
    queue, seen, outside = [path], set(), []
    while queue:
        file = queue.pop(0)
        if file in seen:
            continue
        seen.add(file)
        code.files.append(file)
        for name, line, optional in imported_names(file):
            local = _local_module(code.folder, name)
            if local is not None:
                code.local_names.add(name)
                queue += [p for p in local if p not in seen]
            elif not optional:
                outside.append((name, f"{name} (imported by {file.relative_to(code.folder)} line {line})"))
    if check_missing and outside:
        origins = fresh_origins({name for name, _ in outside})
        code.missing = [where for name, where in outside if origins[name] is None]
    if (code.folder / CONFIG_FILE).is_file():
        code.data.append(code.folder / CONFIG_FILE)
    return code


def imported_names(file: Path) -> list[tuple[str, int, bool]]:
    """(top-level module name, line, optional) for every absolute import in the file."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    except SyntaxError as e:
        raise SyntaxError(f"{file}: line {e.lineno}: {e.msg}") from None
    found = []

    def visit(node, optional):
        if isinstance(node, ast.Try):
            caught = {_name(h.type) for h in node.handlers}
            guarded = optional or bool(caught & _OPTIONAL) or None in caught
            for child in node.body:
                visit(child, guarded)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, optional)
            return
        if isinstance(node, ast.Import):
            found.extend((a.name.split(".")[0], node.lineno, optional) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno, optional))
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return found


def installed(name: str) -> bool:
    """True when a fresh Python process started in another folder can import `name`."""
    return fresh_origins([name])[name] is not None


_ORIGINS: dict = {}  # (name, PYTHONPATH) -> origin


def fresh_origins(names) -> dict:
    """Where a fresh Python process (same interpreter and PYTHONPATH, another working directory)
    finds each top-level module: a file path, "built-in" or "namespace", or None when nowhere.
    Asked once per name in a subprocess (import hooks such as editable installs count); cached."""
    pythonpath = os.environ.get("PYTHONPATH", "")
    result = {n: "built-in" for n in names if n in sys.stdlib_module_names or n in sys.builtin_module_names
              or n == "__future__"}
    todo = sorted({n for n in names if n not in result and (n, pythonpath) not in _ORIGINS})
    if todo:
        script = ("import importlib.util, json, sys\n"
                  "def origin(n):\n"
                  "    spec = importlib.util.find_spec(n)\n"
                  "    return None if spec is None else (spec.origin or 'namespace')\n"
                  "print(json.dumps({n: origin(n) for n in sys.argv[1:]}))\n")
        with tempfile.TemporaryDirectory() as cwd:
            out = subprocess.run([sys.executable, "-c", script, *todo], cwd=cwd, capture_output=True, text=True,
                                 timeout=120, env={**os.environ, "PYTHONPATH": pythonpath})
        if out.returncode != 0:
            raise RuntimeError(f"could not ask a fresh {sys.executable} where modules are: {out.stderr.strip()[-500:]}")
        _ORIGINS.update({(n, pythonpath): o for n, o in json.loads(out.stdout.strip().splitlines()[-1]).items()})
    result.update({n: _ORIGINS[(n, pythonpath)] for n in names if n not in result})
    return result


def _local_module(folder: Path, name: str) -> list[Path] | None:
    """The files of module `name` in `folder`: [name.py], or every .py of package name/, or None."""
    if (folder / f"{name}.py").is_file():
        return [folder / f"{name}.py"]
    package = folder / name
    if package.is_dir() and any(package.glob("*.py")):
        return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    return None


def _name(node) -> str | None:
    if node is None:
        return None
    if isinstance(node, ast.Tuple):
        names = {_name(e) for e in node.elts}
        return next(iter(names & _OPTIONAL), None) or "other"
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else "other"
