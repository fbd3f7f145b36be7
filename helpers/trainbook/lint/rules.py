"""The notebook contract rules that read code, for trainbook.lint (TB207-TB244).

    findings = check_notebook(read_notebook(path), path, model=PackageModel.load(["trainbook"]))

No cell is executed: sources are parsed once (parsed.py) and every rule reads the same trees.
Here: the parameters cell (TB211-TB213), namespace probing, Colab-only code and prompts
(TB222, TB231, TB232) and the pinned helper ref (TB241). Elsewhere: TB207/TB214 cells.py,
TB223 names.py, TB224 imports.py, TB242-TB244 api.py.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

from .api import check_api
from .cells import check_cells
from .findings import Finding, cell_source
from .grammar import TargetParser
from .imports import check_swallowed_imports, flag_guarded_lines, handler_flags, import_guards
from .names import check_names
from .package import PackageModel
from .parsed import ParsedNotebook

PIP_LINE = re.compile(r"^[%!]\s*(?:pip3?|python3?\s+-m\s+pip)\b")


@lru_cache(maxsize=1)
def default_model() -> PackageModel:
    """The installed trainbook, read from source (found with importlib.util.find_spec, not imported)."""
    return PackageModel.load(["trainbook"])


def check_notebook(nb: dict, path: Path, model: PackageModel | None = None,
                   parser: TargetParser | None = None) -> list[Finding]:
    """Check the rules that read parameters and code (DESIGN.md section 4.10).

    Args:
        nb: the notebook as parsed JSON (see trainbook.lint.read_notebook).
        path: its file, for messages.
        model: the first-party packages (default: the installed trainbook).
        parser: parses cells for the target Python (default: 3.13).
    Returns:
        the findings.
    """
    model = model or default_model()
    ctx = ParsedNotebook(nb, path, parser)
    check_cells(ctx)
    for rule in (check_parameters, _check_calls, check_names, check_swallowed_imports):
        rule(ctx)
    check_api(ctx, model)
    _check_helper_ref(ctx, model)
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
    except (SyntaxError, ValueError):
        return "not a complete one-line statement (papermill reads one assignment per line)"
    except (RecursionError, MemoryError):
        return "too deeply nested for Python's parser"
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


def _colab_flags(ctx: ParsedNotebook) -> set[str]:
    """IN_COLAB, and the flags of `try: from google.colab import x ... except ImportError: FLAG = False`."""
    flags = {"IN_COLAB"}
    for cell, _, _ in ctx.code:
        for try_node, handler, _ in import_guards(ctx, cell):
            if any(_imports_colab(n) for s in try_node.body for n in ast.walk(s)):
                flags |= handler_flags(handler)
    return flags


def _colab_try_lines(ctx: ParsedNotebook, cell: int) -> set[int]:
    """Lines of a try body from its google.colab import on, when the try catches ImportError."""
    lines = set()
    for try_node, _, _ in import_guards(ctx, cell):
        first = min((n.lineno for s in try_node.body for n in ast.walk(s) if _imports_colab(n)), default=None)
        if first is not None:
            lines.update(range(first, max(s.end_lineno for s in try_node.body) + 1))
    return lines


def _check_calls(ctx: ParsedNotebook):
    flags = _colab_flags(ctx)
    for cell, tree, magics in ctx.code:
        guarded = flag_guarded_lines(ctx.nodes[cell], flags) | _colab_try_lines(ctx, cell) if tree else set()
        colab = [(n, f"`{text.split()[0]} ...`") for n, text in magics if PIP_LINE.match(text)]
        for node in ctx.nodes.get(cell, ()):
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
                                             "(google.colab, drive.mount, userdata, %pip/!pip) go under the guard "
                                             "(or in a try whose except ImportError sets the flag False)")


def _imports_colab(node) -> bool:
    if not isinstance(node, (ast.Import, ast.ImportFrom)):
        return False
    names = [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        names = [f"{node.module}.{n}" for n in names] if not node.level else []
    return any(n == "google.colab" or n.startswith("google.colab.") for n in names)


def _tail(node) -> str | None:
    """The last name of an `a.b.c` or `c` expression, else None."""
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


# the package: TB241 pinned helper ref (TB242-TB244 live in api.py)


def _check_helper_ref(ctx: ParsedNotebook, model: PackageModel):
    versions = {name: model.version(name) for name in model.roots}
    primary = next((name for name, version in versions.items() if version), None)
    if primary is None:
        return  # no package states a __version__: nothing to compare with
    names = "|".join(re.escape(name) for name in model.roots)
    pin = re.compile(rf"({names})\s*@\s*git\+[^\s\"'{{}}]*@([\w.\-]+)|({names})\s*==\s*([\w.\-]+)")
    refs = []
    if "helpers_ref" in ctx.params:
        value, cell, line = ctx.params["helpers_ref"]
        refs.append((cell, line, "helpers_ref", primary, value))
    for cell, _, magics in ctx.code:
        refs += [(cell, n, "the pinned install", m.group(1) or m.group(3), m.group(2) or m.group(4))
                 for n, text in magics if PIP_LINE.match(text) for m in pin.finditer(text)]
    if not refs and ctx.uses_package:
        want = versions[primary]
        ctx.add(None, None, "TB241", f'no pinned helper ref; add helpers_ref = "v{want}"  # @param {{type:"string"}} '
                                     f"to the parameters cell and install {primary} at that ref in Colab")
    for cell, line, what, package, value in refs:
        want = versions.get(package)
        if want and (not isinstance(value, str) or value.removeprefix("v") != want):
            ctx.add(cell, line, "TB241", f"{what} {value!r} does not match {package}.__version__ {want!r}; "
                                         f'pin "v{want}" (or release the helpers at that tag)')
