"""The notebook contract rules that read code, for trainbook.lint (TB211 to TB242).

    findings = check_notebook(read_notebook(path), path)

No cell is executed: sources are parsed with `ast` after IPython magics and shell lines
(`%pip ...`, `!ls`, `x = !ls`) are neutralised, so line numbers stay those of the cell.
TB223 (a name used before anything defines it) lives in names.py.
"""

from __future__ import annotations

import ast
import difflib
import re
from functools import lru_cache
from pathlib import Path

import trainbook

from .findings import Finding, cell_source
from .names import bound_names, check_names
from .parsed import ParsedNotebook

PIP_LINE = re.compile(r"^[%!]\s*(?:pip3?|python3?\s+-m\s+pip)\b")
PIN = re.compile(r"trainbook\s*@\s*git\+[^\s\"'{}]*@([\w.\-]+)|trainbook\s*==\s*([\w.\-]+)")


def check_notebook(nb: dict, path: Path) -> list[Finding]:
    """Check the rules that read parameters and code (DESIGN.md section 4.10).

    Args:
        nb: the notebook as parsed JSON (see trainbook.lint.read_notebook).
        path: its file, for messages.
    Returns:
        the findings.
    """
    ctx = ParsedNotebook(nb, path)
    for rule in (check_parameters, _check_calls, check_names, _check_trainbook_names, _check_helper_ref):
        rule(ctx)
    return ctx.findings


# parameters: TB211 one tagged cell, TB212 cellView form, TB213 literal lines


def check_parameters(ctx: ParsedNotebook):
    meta = [c.get("metadata") if isinstance(c.get("metadata"), dict) else {} for c in ctx.cells]
    tagged = [i for i, m in enumerate(meta, 1) if isinstance(m.get("tags"), list) and "parameters" in m["tags"]]
    if not tagged:
        ctx.add(None, None, "TB211", "no cell is tagged 'parameters'; tag the form cell so papermill can inject values")
        return
    for extra in tagged[1:]:
        ctx.add(extra, 1, "TB211", f"a second cell tagged 'parameters' (the first is cell {tagged[0]}); "
                                   "papermill injects after the first only: keep one")
    first, cell = tagged[0], ctx.cells[tagged[0] - 1]
    if cell.get("cell_type") != "code":
        ctx.add(first, 1, "TB211", f"the parameters cell is a {cell.get('cell_type')} cell; it must be code")
        return
    if meta[first - 1].get("cellView") != "form":
        ctx.add(first, 1, "TB212", 'the parameters cell needs metadata "cellView": "form" (Colab shows it as a form)')
    for n, line in enumerate(cell_source(cell).split("\n"), start=1):
        problem = _parameter_problem(ctx, line, first, n) if line.strip()[:1] not in ("", "#") else None
        if problem:
            ctx.add(first, n, "TB213", f"{problem}; each line must be `name = literal  # @param ...` "
                                       "(derive values in the next cell)")


def _parameter_problem(ctx: ParsedNotebook, line: str, cell: int, n: int) -> str | None:
    try:
        body = ast.parse(line).body
    except SyntaxError:
        return "not a complete one-line statement (papermill reads one assignment per line)"
    if len(body) != 1 or not isinstance(body[0], ast.Assign) or not isinstance(body[0].targets[0], ast.Name) \
            or len(body[0].targets) != 1:
        return "not a single `name = value` assignment"
    name = body[0].targets[0].id
    try:
        ctx.params[name] = (ast.literal_eval(body[0].value), cell, n)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return f"the value of {name!r} is not a literal"
    if line.count("=") > 1:
        return f"papermill cannot parse {name!r}: a parameter line may hold only one '='"
    if not re.search(r"#\s*@param\b", line):
        return f"{name!r} has no '# @param' annotation, so Colab's form does not show it"
    return None


# calls: TB222 namespace probing, TB231 Colab-only outside the guard, TB232 prompts


def _colab_guarded_lines(tree: ast.AST) -> set[int]:
    """Lines inside `if IN_COLAB:` (also `if IN_COLAB and ...:`) or the else branch of `if not IN_COLAB:`."""
    def is_flag(test):
        return isinstance(test, ast.Name) and test.id == "IN_COLAB" or \
            isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) and any(map(is_flag, test.values))

    lines = set()
    for node in (n for n in ast.walk(tree) if isinstance(n, ast.If)):
        negated = isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not) and is_flag(node.test.operand)
        block = node.body if is_flag(node.test) else node.orelse if negated else []
        if block:
            lines.update(range(block[0].lineno, max(s.end_lineno for s in block) + 1))
    return lines


def _check_calls(ctx: ParsedNotebook):
    for cell, tree, magics in ctx.code:
        guarded = _colab_guarded_lines(tree) if tree else set()
        colab = [(n, f"`{text.split()[0]} ...`") for n, text in magics if PIP_LINE.match(text)]
        for node in ast.walk(tree) if tree else ():
            if _imports_colab(node):
                colab.append((node.lineno, "importing google.colab"))
            elif isinstance(node, ast.Attribute) and node.attr == "mount" and _tail(node.value) == "drive":
                colab.append((node.lineno, "drive.mount"))
            elif _tail(node) == "userdata" and not isinstance(getattr(node, "ctx", None), ast.Store):
                colab.append((node.lineno, "Colab userdata (secrets)"))
            func = _tail(node.func) if isinstance(node, ast.Call) else None
            if func in ("globals", "locals") or func in ("vars", "dir") and not node.args:
                ctx.add(cell, node.lineno, "TB222", f"{func}() probes the namespace; use names defined in "
                                                    "an earlier cell, or pass values explicitly")
            elif func == "input" and isinstance(node.func, ast.Name) or func == "getpass":
                ctx.add(cell, node.lineno, "TB232", f"{func}() waits for typing and blocks Run all and papermill; "
                                                    "read it from a parameter, an environment variable or a Colab secret")
        for line, what in sorted(set(colab)):
            if line not in guarded:
                ctx.add(cell, line, "TB231", f"{what} outside an `if IN_COLAB:` block; Colab-only actions "
                                             "(google.colab, drive.mount, userdata, %pip/!pip) go under the guard")


def _imports_colab(node) -> bool:
    names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
    if isinstance(node, ast.ImportFrom):
        names = [f"{node.module}.{n}" for n in names] if not node.level else []
    return any(n == "google.colab" or n.startswith("google.colab.") for n in names)


def _tail(node) -> str | None:
    """The last name of an `a.b.c` or `c` expression, else None."""
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


# the package: TB241 pinned helper ref, TB242 trainbook names that do not exist


@lru_cache(maxsize=None)
def module_names(module: str) -> frozenset | None:
    """Top-level names of a trainbook module, read from its source (not imported); None if absent."""
    parts = module.split(".")[1:]
    base = Path(trainbook.__file__).parent.joinpath(*parts)
    for file in ([base.with_suffix(".py")] if parts else []) + [base / "__init__.py"]:
        if file.is_file():
            return frozenset(bound_names(ast.parse(file.read_text(encoding="utf-8")).body))
    return None


def _missing_name(module: str, name: str, attribute: bool = False, imported=frozenset()) -> str | None:
    """Why `module.name` does not exist, or None; an attribute needs its submodule imported."""
    exports = trainbook._EXPORTS
    if module == "trainbook" and name in exports:
        home = f"trainbook.{exports[name]}"
        names = module_names(home)
        return None if names and name in names else \
            f"trainbook reserves {name!r} in {home}, which does not {'define it' if names else 'exist'} yet"
    names = module_names(module)
    if names is None:
        return f"module {module} does not exist"
    if module_names(f"{module}.{name}") is not None:
        if not attribute or f"{module}.{name}" in imported:
            return None
        return f"{module}.{name} is a submodule the notebook does not import; use `from {module} import {name}`"
    if name in names or ("__getattr__" in names and module != "trainbook"):
        return None
    public = sorted(exports) if module == "trainbook" else sorted(n for n in names if not n.startswith("_"))
    close = difflib.get_close_matches(name, public, n=1)
    return f"{module} has no name {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def _check_trainbook_names(ctx: ParsedNotebook):
    aliases, imported, checks = {}, set(), []  # alias -> module; dotted modules; (cell, line, text, module, name)
    for cell, tree, _ in ctx.code:
        for node in ast.walk(tree) if tree else ():
            for a in node.names if isinstance(node, ast.Import) else []:
                if a.name.split(".")[0] == "trainbook":
                    aliases[a.asname or "trainbook"] = a.name if a.asname else "trainbook"
                    parts = a.name.split(".")
                    modules = [".".join(parts[:k]) for k in range(2, len(parts) + 1)]
                    imported.update(modules)
                    missing = next((m for m in modules if module_names(m) is None), None)
                    if missing:
                        ctx.add(cell, node.lineno, "TB242", f"import {a.name}: module {missing} does not exist")
            if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "trainbook":
                imported.update(f"{node.module}.{a.name}" for a in node.names)
                checks += [(cell, node.lineno, f"from {node.module} import {a.name}", node.module, a.name)
                           for a in node.names if a.name != "*"]
    ctx.uses_trainbook = bool(aliases or checks)
    for cell, line, text, module, name in checks:
        why = _missing_name(module, name)
        if why:
            ctx.add(cell, line, "TB242", f"{text}: {why}")
    for cell, tree, _ in ctx.code:
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                why = _missing_name(aliases[node.value.id], node.attr, attribute=True, imported=frozenset(imported))
                if why:
                    ctx.add(cell, node.lineno, "TB242", f"{node.value.id}.{node.attr}: {why}")


def _check_helper_ref(ctx: ParsedNotebook):
    want, refs = trainbook.__version__, []
    if "helpers_ref" in ctx.params:
        value, cell, line = ctx.params["helpers_ref"]
        refs.append((cell, line, "helpers_ref", value))
    for cell, _, magics in ctx.code:
        refs += [(cell, n, "the pinned install", m.group(1) or m.group(2))
                 for n, text in magics if PIP_LINE.match(text) for m in PIN.finditer(text)]
    if not refs and ctx.uses_trainbook:
        ctx.add(None, None, "TB241", f'no pinned helper ref; add helpers_ref = "v{want}"  # @param {{type:"string"}} '
                                     "to the parameters cell and install trainbook at that ref in Colab")
    for cell, line, what, value in refs:
        if not isinstance(value, str) or value.removeprefix("v") != want:
            ctx.add(cell, line, "TB241", f"{what} {value!r} does not match trainbook.__version__ {want!r}; "
                                         f'pin "v{want}" (or release the helpers at that tag)')
