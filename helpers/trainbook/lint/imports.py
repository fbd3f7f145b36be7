"""Imports inside try/except ImportError, for trainbook.lint: TB224 swallowed imports, and the guard flags
(`IN_COLAB = False` in the handler) that TB231 and TB224 accept.

    check_swallowed_imports(ctx)  # ctx: a trainbook.lint.parsed.ParsedNotebook; adds its TB224 findings

An import is swallowed when its handler neither re-raises nor exits nor binds the name, and a later
statement uses the name outside `if FLAG:` (FLAG: a name the handler sets to a constant) and
outside a try that catches NameError: when the import fails, that use raises NameError far
from the cause.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from .names import bound_names

if TYPE_CHECKING:
    from .parsed import ParsedNotebook

IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
NAME_ERRORS = {"NameError", "Exception", "BaseException"}
EXITS = {"exit", "quit", "_exit"}


def catches(handler: ast.ExceptHandler, names: set[str]) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return handler.type is None or any(_tail(k) in names for k in kinds)


def import_guards(ctx: ParsedNotebook, cell: int) -> list[tuple[ast.Try, ast.ExceptHandler, set[str]]]:
    """(try, handler catching ImportError, names the try body imports) for every such try in a cell."""
    return ctx.shared("import guards", cell, lambda: _import_guards(ctx.nodes.get(cell, ())))


def _import_guards(nodes):
    found = []
    for node in nodes:
        if isinstance(node, ast.Try):
            imported = {a.asname or a.name.split(".")[0] for s in node.body for n in ast.walk(s)
                        if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names if a.name != "*"}
            found += [(node, h, imported) for h in node.handlers if imported and catches(h, IMPORT_ERRORS)]
    return found


def handler_flags(handler: ast.ExceptHandler) -> set[str]:
    """Names the handler sets to a constant (`IN_COLAB = False`, `wandb = None`)."""
    return {t.id for s in handler.body if isinstance(s, ast.Assign) and isinstance(s.value, ast.Constant)
            for t in s.targets if isinstance(t, ast.Name)}


def flag_guarded_lines(nodes, flags: set[str]) -> set[int]:
    """Lines inside `if FLAG:` (also `if FLAG and ...:`) or the else branch of `if not FLAG:`."""
    def is_flag(test):
        return isinstance(test, ast.Name) and test.id in flags or \
            isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) and any(map(is_flag, test.values))

    lines = set()
    for node in (n for n in nodes if isinstance(n, ast.If)):
        negated = isinstance(node.test, ast.UnaryOp) and isinstance(node.test.op, ast.Not) and is_flag(node.test.operand)
        block = node.body if is_flag(node.test) else node.orelse if negated else []
        if block:
            lines.update(range(block[0].lineno, max(s.end_lineno for s in block) + 1))
    return lines


def check_swallowed_imports(ctx: ParsedNotebook):
    for k, (cell, tree, _) in enumerate(ctx.code):
        for try_node, handler, imported in import_guards(ctx, cell) if tree else ():
            if try_node not in tree.body or _escapes(handler):
                continue
            flags, kept = handler_flags(handler), bound_names(handler.body) | {handler.name}
            for name in sorted(imported - kept):
                use = _first_use(ctx, k, try_node, name, flags)
                if use:
                    line = next(n.lineno for s in try_node.body for n in ast.walk(s) if isinstance(n, (
                        ast.Import, ast.ImportFrom)) and name in {a.asname or a.name.split(".")[0] for a in n.names})
                    where = f"line {use[1]}" if use[0] == cell else f"cell {use[0]} line {use[1]}"
                    ctx.add(cell, line, "TB224", f"{name!r} is imported inside try/except ImportError and the handler "
                                                 f"(line {handler.lineno}) swallows the failure, but {where} uses it: "
                                                 "a failed import then surfaces as a NameError there; re-raise with "
                                                 "a HINT (raise ImportError(\"pip install ...\") from e) or bind a "
                                                 "fallback in the handler")


def _escapes(handler: ast.ExceptHandler) -> bool:
    """Whether the handler re-raises or exits."""
    for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
        if isinstance(node, ast.Raise) or isinstance(node, ast.Call) and _tail(node.func) in EXITS:
            return True
    return False


def _first_use(ctx: ParsedNotebook, start: int, try_node: ast.Try, name: str, flags: set[str]):
    """(cell, line) of the first unguarded use of `name` after the try, stopping where it is bound again."""
    for cell, tree, _ in ctx.code[start:]:
        if tree is None:
            continue
        guarded = flag_guarded_lines(ctx.nodes[cell], flags) | _name_error_lines(ctx.nodes[cell])
        body = tree.body[tree.body.index(try_node) + 1:] if try_node in tree.body else tree.body
        for stmt in body:
            use = _use_in(stmt, name, guarded)
            if use:
                return cell, use
            if name in bound_names([stmt]) and not isinstance(stmt, (ast.If, ast.Try)):
                return None
    return None


def _use_in(node, name: str, guarded: set[int]) -> int | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        local = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a}
        if name in local or not isinstance(node, ast.Lambda) and name in bound_names(node.body):
            return None
    if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load) and node.lineno not in guarded:
        return node.lineno
    for child in ast.iter_child_nodes(node):
        found = _use_in(child, name, guarded)
        if found:
            return found
    return None


def _name_error_lines(nodes) -> set[int]:
    lines = set()
    for node in nodes:
        if isinstance(node, ast.Try) and any(catches(h, NAME_ERRORS) for h in node.handlers):
            lines.update(range(node.body[0].lineno, max(s.end_lineno for s in node.body) + 1))
    return lines


def _tail(node) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
