"""The notebook against its first-party packages, for trainbook.lint (TB242 names, TB243 calls, TB244 attributes).

    check_api(ctx, PackageModel.load(["helpers/trainbook"]))  # ctx: a ParsedNotebook; adds findings

Cells are walked in order and values are followed only where the package's source pins their
type: a module, a class, an instance a first-party class or an annotated first-party function
made (`cfg = tb.TrainingConfig(...)`, `b = Builder.preset("quick").with_run(...)`, `r = t.train()`).
Anything else (other libraries, subscripts, names assigned differently on two branches) is
unknown and never reported.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
from typing import TYPE_CHECKING

from .classes import ClassInfo, FunctionInfo
from .names import bound_names
from .package import UNKNOWN, ModuleInfo, PackageModel

if TYPE_CHECKING:
    from .parsed import ParsedNotebook


@dataclasses.dataclass(frozen=True)
class ClassRef:
    cls: ClassInfo


@dataclasses.dataclass(frozen=True)
class Instance:
    cls: ClassInfo


@dataclasses.dataclass(frozen=True)
class FunctionRef:
    func: FunctionInfo
    receiver: ClassInfo | None
    bound: bool


COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def check_api(ctx: ParsedNotebook, model: PackageModel):
    """Check imports, calls, keywords and attribute reads of first-party names.

    Args:
        ctx: the parsed notebook; findings are added to it, and ctx.uses_package is set when the
            notebook imports a first-party module (TB241 needs it).
        model: the first-party packages.
    """
    checker = _ApiChecker(ctx, model)
    for cell, tree, _ in ctx.code:
        if tree is not None:
            checker.cell = cell
            checker.block(tree.body)


class _ApiChecker:
    def __init__(self, ctx: ParsedNotebook, model: PackageModel):
        self.ctx, self.model, self.env, self.shadow, self.cell, self.seen = ctx, model, {}, [], 0, set()
        self.imported, self.loose = set(), set()  # first-party modules imported; attribute names set or probed
        for cell, _, _ in ctx.code:
            for node in ctx.nodes[cell]:
                if isinstance(node, ast.Import):
                    for a in node.names:
                        parts = a.name.split(".")
                        self.imported.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    self.imported.update([node.module] + [f"{node.module}.{a.name}" for a in node.names])
                elif isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
                    self.loose.add(node.attr)
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                        node.func.id in ("hasattr", "getattr", "setattr") and len(node.args) > 1 and \
                        isinstance(node.args[1], ast.Constant):
                    self.loose.add(node.args[1].value)
        ctx.uses_package = any(model.owns(m) for m in self.imported)

    def report(self, line: int, code: str, message: str):
        if (self.cell, line, message) not in self.seen:
            self.seen.add((self.cell, line, message))
            self.ctx.add(self.cell, line, code, message)

    # statements

    def block(self, body):
        for stmt in body:
            self.statement(stmt)

    def statement(self, node):
        if isinstance(node, ast.Import):
            self.import_(node)
        elif isinstance(node, ast.ImportFrom):
            self.import_from(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = self.expr(node.value) if node.value is not None else None
            self.expr(getattr(node, "annotation", None))
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                self.assign(target, None if isinstance(node, ast.AugAssign) else value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.definition(node)
        elif isinstance(node, (ast.If, ast.While)):
            self.expr(node.test)
            self.branches([node.body, node.orelse])
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter)
            self.assign(node.target, None)
            self.branches([node.body + node.orelse, []])
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr)
                self.assign(item.optional_vars, None)
            self.block(node.body)
        elif isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            self.branches([node.body + node.orelse, *([h] for h in node.handlers), []])
            self.block(node.finalbody)
        elif isinstance(node, ast.Match):
            self.expr(node.subject)
            self.branches([[_unbind(case.pattern), *case.body] for case in node.cases] + [[]])
        elif isinstance(node, ast.ExceptHandler):
            self.expr(node.type)
            self.env.pop(node.name, None)
            self.block(node.body)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.assign(target, None)
        else:
            for child in ast.iter_child_nodes(node):
                self.expr(child)

    def branches(self, bodies):
        """Run each body from the same state; afterwards a name keeps a value only if every path agrees."""
        start, ends = self.env, []
        for body in bodies:
            self.env = dict(start)
            self.block(body)
            ends.append(self.env)
        self.env = {k: v for k, v in ends[0].items() if all(e.get(k) == v for e in ends[1:])}

    def definition(self, node):
        parts = [*node.decorator_list, *getattr(node, "bases", []), *(k.value for k in getattr(node, "keywords", []))]
        args = getattr(node, "args", None)
        every = [a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a] \
            if args else []
        parts += [*args.defaults, *args.kw_defaults, node.returns, *(a.annotation for a in every)] if args else []
        for part in parts:
            self.expr(part)
        outer = self.env
        self.env = dict(outer)
        declared = {n for s in node.body for d in ast.walk(s) if isinstance(d, ast.Global) for n in d.names}
        self.shadow.append(({a.arg for a in every} | bound_names(node.body)) - declared)
        self.block(node.body)
        self.shadow.pop()
        self.env = outer
        for name in declared | {node.name}:  # `global x` inside: x may be anything after a call
            self.env.pop(name, None)

    def assign(self, target, value):
        if isinstance(target, ast.Name):
            if value is None or any(target.id in s for s in self.shadow):
                self.env.pop(target.id, None)
            else:
                self.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self.assign(element.value if isinstance(element, ast.Starred) else element, None)
        elif target is not None:
            for child in ast.iter_child_nodes(target):
                self.expr(child)

    def import_(self, node: ast.Import):
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            if not self.model.owns(alias.name):
                self.env.pop(bound, None)
                continue
            parts = alias.name.split(".")
            missing = next((".".join(parts[:k]) for k in range(1, len(parts) + 1)
                            if self.model.module(".".join(parts[:k])) is None), None)
            if missing:
                self.report(node.lineno, "TB242", f"import {alias.name}: module {missing} does not exist"
                            + self.module_hint(missing))
            value = self.model.module(alias.name if alias.asname else parts[0])
            self.assign(ast.Name(bound, ast.Store()), value)

    def import_from(self, node: ast.ImportFrom):
        source = node.module or ""
        for alias in node.names:
            self.env.pop(alias.asname or alias.name, None)
        if node.level or not self.model.owns(source):
            return
        if self.model.module(source) is None:
            names = ", ".join(a.name for a in node.names)
            self.report(node.lineno, "TB242", f"from {source} import {names}: module {source} does not exist"
                        + self.module_hint(source, [a.name for a in node.names]))
            return
        for alias in node.names:
            if alias.name == "*":
                continue
            value, problem = self.model.lookup(source, alias.name)
            if problem and problem != "submodule":
                hint = "" if " reserves " in problem else self.name_hint(alias.name, self.model.public_names(source))
                self.report(node.lineno, "TB242", f"from {source} import {alias.name}: {problem}{hint}")
            self.assign(ast.Name(alias.asname or alias.name, ast.Store()), self.wrap(value))

    # expressions

    def expr(self, node):
        """Check an expression and return what it is, when the package's source says so."""
        if isinstance(node, ast.Name):
            hidden = any(node.id in s for s in self.shadow)
            return None if hidden or not isinstance(node.ctx, ast.Load) else self.env.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.expr(node.value)
            return self.attribute(base, node) if base is not None and isinstance(node.ctx, ast.Load) else None
        if isinstance(node, ast.Call):
            func = self.expr(node.func)
            for part in [*node.args, *(k.value for k in node.keywords)]:
                self.expr(part)
            return self.call(func, node) if func is not None else None
        if isinstance(node, ast.NamedExpr):
            value = self.expr(node.value)
            self.assign(node.target, value)
            return value
        if isinstance(node, ast.IfExp):
            self.expr(node.test)
            body, orelse = self.expr(node.body), self.expr(node.orelse)
            return body if body == orelse else None
        if isinstance(node, (ast.Lambda, *COMPREHENSIONS)):
            self.scope(node)
        elif isinstance(node, ast.AST):
            for child in ast.iter_child_nodes(node):
                self.expr(child)
        return None

    def scope(self, node):
        """A lambda or comprehension: its own names hide the notebook's inside it."""
        if isinstance(node, ast.Lambda):
            args = node.args
            for default in [*args.defaults, *args.kw_defaults]:
                self.expr(default)
            names, parts = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg)
                            if a}, [node.body]
        else:
            self.expr(node.generators[0].iter)
            names = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            parts = [g.iter for g in node.generators[1:]] + [c for g in node.generators for c in g.ifs]
            parts += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        self.shadow.append(names)
        for part in parts:
            self.expr(part)
        self.shadow.pop()

    def attribute(self, base, node: ast.Attribute):
        name = node.attr
        if isinstance(base, ModuleInfo):
            value, problem = self.model.lookup(base.name, name)
            if problem == "submodule":
                if f"{base.name}.{name}" in self.imported:
                    return value
                self.report(node.end_lineno, "TB242", f"{_short(node)}: {base.name}.{name} is a submodule the notebook "
                                                  f"does not import; use `from {base.name} import {name}`")
                return None
            if problem:
                hint = "" if " reserves " in problem else self.name_hint(name, self.model.public_names(base.name))
                self.report(node.end_lineno, "TB242", f"{_short(node)}: {problem}{hint}")
                return None
            return self.wrap(value)
        if not isinstance(base, (ClassRef, Instance)) or name in self.loose:
            return None
        cls, on_instance = base.cls, isinstance(base, Instance)
        hit = cls.lookup(name, on_instance)
        if hit is None:
            what = cls.name if on_instance else f"class {cls.name}"
            self.report(node.end_lineno, "TB244", f"{_short(node)}: {what} has no attribute {name!r}"
                        + self.name_hint(name, cls.names(on_instance), defined=False)
                        + f" ({cls.name} is at {cls.where()})")
            return None
        kind, value = hit
        if kind in ("method", "classmethod", "staticmethod"):
            return FunctionRef(value, cls, kind == "classmethod" or kind == "method" and on_instance)
        if kind == "class":
            return ClassRef(value)
        if kind == "property" and on_instance:
            found = value.return_class(cls)
            return Instance(found) if found else None
        if kind == "attr" and value is not None:
            found = self.model.annotation_class(value[0], value[1], cls)
            return Instance(found) if found else None
        return None

    def call(self, func, node: ast.Call):
        if isinstance(func, ClassRef):
            params = func.cls.init_params()
            if params is not None:
                self.check_arguments(params, node, func.cls.name, func.cls)
            return Instance(func.cls) if params is not None or func.cls.closed() else None
        if isinstance(func, FunctionRef):
            params = func.func.call_params(func.bound)
            if params is not None:
                self.check_arguments(params, node, func.func.qualname, func.func)
            found = func.func.return_class(func.receiver)
            return Instance(found) if found else None
        return None

    def check_arguments(self, params, node: ast.Call, name: str, defined):
        """Bind the call's arguments the way Python does; each mismatch is one TB243, on the line of the
        keyword it is about, else on the line where the callee's name ends (the chain's link)."""
        positional = [p for p in params if p.kind in ("posonly", "pos")]
        by_name = {p.name: p for p in params if p.kind in ("pos", "kwonly")}
        star = any(isinstance(a, ast.Starred) for a in node.args)
        double_star = any(k.arg is None for k in node.keywords)
        given = sum(not isinstance(a, ast.Starred) for a in node.args)
        problems, filled, line = [], {p.name for p in positional[:given]}, node.func.end_lineno
        if given > len(positional) and not any(p.kind == "varargs" for p in params):
            problems.append((line, f"{name}() takes {len(positional)} positional argument{'s' * (len(positional) != 1)}"
                                   f" but {given} {'was' if given == 1 else 'were'} given"))
        for keyword in (k for k in node.keywords if k.arg):
            if keyword.arg in filled:
                problems.append((keyword.lineno, f"{name}() got multiple values for argument {keyword.arg!r}"))
            elif keyword.arg not in by_name and any(p.name == keyword.arg and p.kind == "posonly" for p in params) \
                    and not any(p.kind == "varkw" for p in params):
                problems.append((keyword.lineno, f"{name}() got a positional-only argument passed as keyword: "
                                                 f"{keyword.arg!r}"))
            elif keyword.arg not in by_name and not any(p.kind == "varkw" for p in params):
                close = difflib.get_close_matches(keyword.arg, [n for n in by_name if n not in filled], n=1)
                problems.append((keyword.lineno, f"{name}() got an unexpected keyword argument {keyword.arg!r}"
                                                 + (f"; did you mean {close[0]!r}?" if close else "")))
            filled.add(keyword.arg)
        missing = [p.name for p in params if p.required and p.name not in filled and not double_star
                   and (p.kind == "kwonly" or not star)]
        if missing:
            problems.append((line, f"{name}() missing required argument{'s' * (len(missing) > 1)}: "
                                   + ", ".join(map(repr, missing))))
        for at, problem in problems:
            self.report(at, "TB243", f"{problem} ({name} is at {defined.where()})")

    # hints and values

    def wrap(self, value):
        if isinstance(value, ClassInfo):
            return ClassRef(value)
        if isinstance(value, FunctionInfo):
            return FunctionRef(value, None, False)
        return None if value is UNKNOWN else value

    def name_hint(self, name: str, options, defined: bool = True) -> str:
        close = difflib.get_close_matches(name, options, n=1)
        if close:
            return f"; did you mean {close[0]!r}?"
        homes = self.model.defined_in(name) if defined else []
        return f"; {name} is defined in {', '.join(homes)}" if homes else ""

    def module_hint(self, missing: str, names=()) -> str:
        homes = sorted({m for n in names for m in self.model.defined_in(n)})
        if homes:
            return f"; {', '.join(names)} {'is' if len(names) == 1 else 'are'} defined in {', '.join(homes)}"
        parent, _, last = missing.rpartition(".")
        close = difflib.get_close_matches(last, self.model.submodules(parent), n=1) if parent else []
        return f"; did you mean {parent}.{close[0]}?" if close else ""


def _unbind(pattern) -> ast.Delete:
    """A `del` of the names a match pattern captures: inside the case they are whatever matched."""
    names = {n.name for n in ast.walk(pattern) if isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name}
    names |= {n.rest for n in ast.walk(pattern) if isinstance(n, ast.MatchMapping) and n.rest}
    return ast.Delete(targets=[ast.Name(name, ast.Del()) for name in sorted(names)])


def _short(node: ast.Attribute) -> str:
    base = ast.unparse(node.value)
    return f"{base if len(base) <= 40 else '...'}.{node.attr}"
