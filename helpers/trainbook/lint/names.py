"""Static name analysis for trainbook.lint: names used before anything defines them (TB223).

    check_names(ctx)  # ctx: a trainbook.lint.parsed.ParsedNotebook; adds its TB223 findings

Cells are walked in order over their parsed `ast` trees (nothing runs); builtins and the
names IPython provides count as defined. A cell that does not parse as a whole is checked in the
statements that do (see parsed.py); every identifier of the rest counts as defined from there on.
bound_names also serves the first-party API check and TB224.
"""

from __future__ import annotations

import ast
import builtins
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .parsed import ParsedNotebook

IPYTHON_NAMES = {"display", "get_ipython", "In", "Out", "exit", "quit", "_", "__", "___", "_i", "_ih", "_oh", "_dh"}
KNOWN_NAMES = set(dir(builtins)) | IPYTHON_NAMES
FIELD_ORDER = {ast.Assign: ("value", "targets"), ast.AnnAssign: ("value", "annotation", "target"),
               ast.For: ("iter", "target", "body", "orelse"), ast.AsyncFor: ("iter", "target", "body", "orelse"),
               ast.ExceptHandler: ("type", "name", "body")}
NAME_BINDERS = (ast.ExceptHandler, ast.MatchAs, ast.MatchStar, ast.MatchMapping)


# names: TB223 a name used before any cell (or an import, or builtins) defines it


def bound_names(body) -> set[str]:
    """Names a block of statements binds, without looking into nested function or class bodies."""
    names, stack = set(), list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Lambda)):
            names.update(n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr))
        else:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update(a.asname or a.name.split(".")[0] for a in node.names if a.name != "*")
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                names.add(node.id)
            elif isinstance(node, NAME_BINDERS):
                names.update(n for n in (getattr(node, "name", None), getattr(node, "rest", None)) if n)
            for field in node._fields:  # ast.iter_child_nodes, without its generator (this is a hot loop)
                value = getattr(node, field, None)
                if isinstance(value, list):
                    stack.extend(v for v in value if isinstance(v, ast.AST))
                elif isinstance(value, ast.AST) and not isinstance(value, (ast.expr_context, ast.Constant)):
                    stack.append(value)
    return names


def _declared(body, kind) -> set[str]:
    return {n for s in body for node in ast.walk(s) if isinstance(node, kind) for n in node.names}


class _NameChecker(ast.NodeVisitor):
    """Reports the first use of each name that nothing before it binds.

    Module-level code is checked statement by statement. Function and lambda bodies run when
    called, so they may use anything their cell binds at module level, and their own locals.
    Every branch counts as binding (`if IN_COLAB: from google.colab import output` binds
    `output`); `del` does not unbind.
    """

    def __init__(self, ctx: ParsedNotebook, first_binding: dict[str, int]):
        self.ctx, self.first_binding = ctx, first_binding
        self.defined, self.cell_final = set(KNOWN_NAMES), set()
        self.scopes, self.reported = [], set()  # scopes: [(kind, names)], kind: function|class|comp
        self.cell, self.in_function, self.star = 0, False, False

    def check_cell(self, cell: int, tree: ast.Module, bound: set[str]):
        self.cell, self.scopes, self.in_function = cell, [], False
        self.cell_final = self.defined | bound
        for stmt in tree.body:
            self.visit(stmt)
        self.defined |= self.cell_final

    def use(self, name: str, node: ast.AST, bound_later: bool = True):
        if self.star or name in self.reported or self.resolves(name):
            return
        self.reported.add(name)
        first = self.first_binding.get(name) if bound_later else None
        hint = (f"; cell {first} defines it: move that definition above" if first and first > self.cell else
                "; it is assigned further down this cell" if first == self.cell and not self.in_function else
                "; define or import it in an earlier cell")
        self.ctx.add(self.cell, node.lineno, "TB223", f"name {name!r} is used before anything defines it{hint}")

    def resolves(self, name: str) -> bool:
        for depth, (kind, names) in enumerate(reversed(self.scopes)):
            if name in names and (depth == 0 or kind != "class"):
                return True
        return name in (self.cell_final if self.in_function else self.defined)

    def bind(self, name: str):
        (self.scopes[-1][1] if self.scopes else self.defined).add(name)

    def visit_Name(self, node):
        self.use(node.id, node) if isinstance(node.ctx, (ast.Load, ast.Del)) else self.bind(node.id)

    def generic_visit(self, node):
        """Visit fields in evaluation order (value before target), binding except/match names."""
        for field in FIELD_ORDER.get(type(node), node._fields):
            value = getattr(node, field, None)
            if field in ("name", "rest") and isinstance(value, str) and isinstance(node, NAME_BINDERS):
                self.bind(value)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, ast.AST):
                    self.visit(item)

    def visit_AugAssign(self, node):
        self.visit(node.value)
        self.use(node.target.id, node, False) if isinstance(node.target, ast.Name) else self.visit(node.target)

    def visit_NamedExpr(self, node):
        self.visit(node.value)  # the target binds in the nearest scope that is not a comprehension
        next((names for kind, names in reversed(self.scopes) if kind != "comp"), self.defined).add(node.target.id)

    def visit_Import(self, node):
        for alias in node.names:
            self.star |= alias.name == "*"  # unknown names from here on: stop reporting
            self.bind(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_FunctionDef(self, node):
        """Decorators, defaults and annotations run at definition; the body sees the whole cell."""
        args = node.args
        every = [a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a]
        for part in (*args.defaults, *args.kw_defaults, *getattr(node, "decorator_list", []),
                     getattr(node, "returns", None), *(a.annotation for a in every)):
            if part is not None:
                self.visit(part)
        if not isinstance(node, ast.Lambda):
            self.bind(node.name)
        body = node.body if isinstance(node.body, list) else [node.body]
        self.scopes.append(("function", ({a.arg for a in every} | bound_names(body))
                            - _declared(body, (ast.Global, ast.Nonlocal))))
        self.in_function, outer = True, self.in_function
        for stmt in body:
            self.visit(stmt)
        self.scopes.pop()
        self.in_function = outer

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_ClassDef(self, node):
        for part in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(part)
        self.scopes.append(("class", set()))
        for stmt in node.body:
            self.visit(stmt)
        self.scopes.pop()
        self.bind(node.name)

    def visit_ListComp(self, node):
        """The first iterable runs outside; targets, conditions and the element in a scope of their own."""
        self.visit(node.generators[0].iter)
        self.scopes.append(("comp", set()))
        for i, gen in enumerate(node.generators):
            for part in ([gen.iter] if i else []) + [gen.target, *gen.ifs]:
                self.visit(part)
        for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
            self.visit(part)
        self.scopes.pop()

    visit_SetComp = visit_GeneratorExp = visit_DictComp = visit_ListComp


def cell_bindings(ctx: ParsedNotebook, cell: int, tree: ast.Module) -> set[str]:
    """Names a cell binds at module level (`global x` in a function included), computed once per cell."""
    return ctx.shared("bound", cell, lambda: bound_names(tree.body) | {
        n for node in ctx.nodes[cell] if isinstance(node, ast.Global) for n in node.names})


def check_names(ctx: ParsedNotebook):
    first_binding = {}
    for cell, tree, _ in ctx.code:
        for name in cell_bindings(ctx, cell, tree) if tree else ():
            first_binding.setdefault(name, cell)
    checker = _NameChecker(ctx, first_binding)
    for cell, tree, magics in ctx.code:
        # what the unparsable part of a cell defines is unknown: its identifiers count as defined
        checker.defined |= ctx.opaque.get(cell, set())
        for _, text in magics:  # `%%capture out` binds out
            if text.startswith("%%capture"):
                checker.defined.update([w for w in text.split()[1:] if not w.startswith("-")][:1])
        if tree is not None:
            checker.check_cell(cell, tree, cell_bindings(ctx, cell, tree))
