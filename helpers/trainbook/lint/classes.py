"""Functions and classes of a first-party package, read from source for trainbook.lint.

    info = ClassInfo(class_node, module, model); info.init_params(); info.lookup("run_dir")

A FunctionInfo knows its parameters (None when a decorator may have changed them) and its
return type (the annotation, or `return self` / `return cls(...)` / `return X(...)` in the body).
A ClassInfo knows its members, dataclass fields (inherited, kw_only, init=False, InitVar and
ClassVar handled), instance attributes assigned in any method, properties, and whether it is
closed: only then can an attribute be called missing (no __getattr__, no unknown base class).
`module` arguments are package.ModuleInfo and `model` a package.PackageModel (package.py builds
these classes, so this module does not import it).
"""

from __future__ import annotations

import ast
import builtins
import dataclasses

# decorators that keep a function's signature (matched on their last dotted part)
KEEP_SIGNATURE = {"staticmethod", "classmethod", "property", "cached_property", "abstractmethod", "lru_cache",
                  "cache", "override", "final", "no_grad", "inference_mode", "setter", "getter", "deleter"}
# bases from other libraries whose attributes are known, and the attributes they add
KNOWN_BASES = {"builtins.object": set(), "typing.Generic": set(), "typing.Protocol": set(), "abc.ABC": set(),
               "typing_extensions.Protocol": set(),
               "typing.NamedTuple": {"_replace", "_asdict", "_fields", "_field_defaults", "_make", "count", "index"}}
EXCEPTION_ATTRS = {"args", "with_traceback", "add_note"}
CLASS_DECORATORS = {"dataclass", "total_ordering", "final"}


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    kind: str  # posonly | pos | varargs | kwonly | varkw
    required: bool


def decorator_name(node) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def params_of(args: ast.arguments) -> list[Param]:
    positional = [*args.posonlyargs, *args.args]
    first_default = len(positional) - len(args.defaults)
    out = [Param(a.arg, "posonly" if i < len(args.posonlyargs) else "pos", i < first_default)
           for i, a in enumerate(positional)]
    out += [Param(args.vararg.arg, "varargs", False)] if args.vararg else []
    out += [Param(a.arg, "kwonly", d is None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return out + ([Param(args.kwarg.arg, "varkw", False)] if args.kwarg else [])


class FunctionInfo:
    """A def in a module or class: its kind, parameters and return type."""

    def __init__(self, node, module, owner: ClassInfo | None):
        self.node, self.module, self.owner, self.name = node, module, owner, node.name
        names = [decorator_name(d) for d in node.decorator_list]
        self.kind = ("classmethod" if "classmethod" in names else "staticmethod" if "staticmethod" in names else
                     "property" if {"property", "cached_property"} & set(names) else
                     "method" if owner else "function")
        self.params = params_of(node.args) if set(names) <= KEEP_SIGNATURE else None
        self._returns = {}  # receiver -> return class

    @property
    def qualname(self) -> str:
        return f"{self.owner.name}.{self.name}" if self.owner else self.name

    def where(self) -> str:
        return f"{self.module.where()}:{self.node.lineno}"

    def call_params(self, bound: bool) -> list[Param] | None:
        """Parameters a call supplies; `bound`: the first (self/cls) is already filled."""
        if self.params is None:
            return None
        return self.params[1:] if bound and self.params and self.params[0].kind in ("posonly", "pos") else self.params

    def return_class(self, receiver: ClassInfo | None) -> ClassInfo | None:
        """The first-party class of what a call returns, when the annotation or the body says so."""
        if receiver not in self._returns:
            self._returns[receiver] = self._return_class(receiver)
        return self._returns[receiver]

    def _return_class(self, receiver: ClassInfo | None) -> ClassInfo | None:
        model = self.module.model
        if self.node.returns is not None:
            return model.annotation_class(self.node.returns, self.module, receiver or self.owner)
        first = self.node.args.posonlyargs[:1] + self.node.args.args[:1] if self.kind != "staticmethod" else []
        me = first[0].arg if first and self.owner else None
        found = set()
        for value in _returned_values(self.node.body):
            func = value.func if isinstance(value, ast.Call) else None
            if me and (isinstance(value, ast.Name) and value.id == me and self.kind != "classmethod"
                       or isinstance(func, ast.Name) and func.id == me and self.kind == "classmethod"
                       or isinstance(func, ast.Call) and decorator_name(func) == "type"
                       or isinstance(func, ast.Attribute) and func.attr == "__class__"):
                found.add(receiver or self.owner)
            elif isinstance(func, (ast.Name, ast.Attribute)) and isinstance(
                    cls := model.resolve_expr(func, self.module), ClassInfo):
                found.add(cls)
            else:
                return None
        return found.pop() if len(found) == 1 else None


class ClassInfo:
    """A class: members, dataclass fields, instance attributes, bases."""

    def __init__(self, node: ast.ClassDef, module, model):
        self.node, self.module, self.model, self.name = node, module, model, node.name
        self.members, self.fields, self._slots = {}, {}, {}  # name -> FunctionInfo | node; field infos; __slots__
        self._attrs = None  # instance attributes, read from the methods on first use
        self._mro = None
        decorators = {decorator_name(d): d for d in node.decorator_list}
        options = {k.arg: k.value for d in node.decorator_list if isinstance(d, ast.Call) for k in d.keywords}
        self.is_dataclass = "dataclass" in decorators
        self.dataclass_init = self.is_dataclass and not _false(options.get("init"))
        self.exotic = bool(set(decorators) - CLASS_DECORATORS) or any(k.arg == "metaclass" for k in node.keywords)
        self._dynamic = False  # a method sets attributes by computed names
        kw_only = self.is_dataclass and _true(options.get("kw_only"))
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                accessor = any(decorator_name(d) in ("setter", "getter", "deleter") for d in stmt.decorator_list)
                if not (accessor and stmt.name in self.members):
                    self.members[stmt.name] = FunctionInfo(stmt, module, self)
            elif isinstance(stmt, ast.ClassDef):
                self.members[stmt.name] = stmt
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                kw_only = kw_only or _annotation_text(stmt.annotation).endswith("KW_ONLY")
                self._add_field(stmt, kw_only)
            else:  # class variables, also those bound under if/try/for/with
                for sub in ast.walk(stmt):
                    name = sub.id if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store) else \
                        sub.name if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
                    if name:
                        self.members.setdefault(name, sub)
                if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                        for t in stmt.targets):
                    self._slots.update({c.value: None for c in ast.walk(stmt.value)
                                        if isinstance(c, ast.Constant) and isinstance(c.value, str)})

    @property
    def dynamic(self) -> bool:
        """Whether a method sets attributes by computed names (setattr(self, ...), self.__dict__)."""
        return self.attrs is not None and self._dynamic  # reading the methods sets _dynamic

    @property
    def attrs(self) -> dict:
        """Instance attributes: name -> (annotation, module) when annotated (or set from an annotated
        parameter), else None; from `self.x = ...` in any method, and __slots__."""
        if self._attrs is None:
            self._attrs = dict(self._slots)
            for member in list(self.members.values()):
                if isinstance(member, FunctionInfo) and member.kind != "staticmethod":
                    self._collect_self_attrs(member)
        return self._attrs

    def _add_field(self, stmt: ast.AnnAssign, kw_only: bool):
        name, text = stmt.target.id, _annotation_text(stmt.annotation)
        if text.endswith("KW_ONLY") or "ClassVar" in text:
            self.members[name] = stmt
            return
        call = stmt.value if isinstance(stmt.value, ast.Call) and decorator_name(stmt.value) == "field" else None
        options = {k.arg: k.value for k in call.keywords} if call else {}
        required = stmt.value is None or call is not None and not ({"default", "default_factory"} & set(options))
        self.fields[name] = dict(annotation=stmt.annotation, required=required, init=not _false(options.get("init")),
                                 kw_only=kw_only or _true(options.get("kw_only")), initvar="InitVar" in text)
        if stmt.value is not None and call is None:
            self.members[name] = stmt

    def _collect_self_attrs(self, method: FunctionInfo):
        args = method.node.args
        first = (args.posonlyargs + args.args)[:1]
        if not first:
            return
        me, annotated = first[0].arg, {a.arg: a.annotation for a in args.posonlyargs + args.args + args.kwonlyargs}
        for node in ast.walk(method.node):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for attr in ast.walk(target):
                        if isinstance(attr, ast.Attribute) and isinstance(attr.value, ast.Name) and attr.value.id == me:
                            annotation = node.annotation if isinstance(node, ast.AnnAssign) else \
                                annotated.get(node.value.id) if isinstance(node, ast.Assign) and \
                                isinstance(node.value, ast.Name) and target is attr else None
                            if self._attrs.get(attr.attr) is None:
                                self._attrs[attr.attr] = (annotation, method.module) if annotation is not None else None
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and \
                    isinstance(node.value, ast.Name) and node.value.id == me:
                self._attrs.setdefault(node.attr, None)
            elif isinstance(node, ast.Call) and decorator_name(node) == "setattr" and node.args and \
                    isinstance(node.args[0], ast.Name) and node.args[0].id == me or \
                    isinstance(node, ast.Attribute) and node.attr == "__dict__" and \
                    isinstance(node.value, ast.Name) and node.value.id == me:
                self._dynamic = True  # setattr(self, name, ...) or self.__dict__: attribute names are computed

    def where(self) -> str:
        return f"{self.module.where()}:{self.node.lineno}"

    # the class in its hierarchy

    def mro(self, seen=None) -> list:
        """This class and its bases, depth first: ClassInfo for ours, dotted names for others, '?' unknown."""
        if seen is None:
            if self._mro is None:
                self._mro = self.mro(set())
            return self._mro
        if id(self) in seen:
            return []
        seen.add(id(self))
        order = [self]
        for base in self.node.bases:
            base = base.value if isinstance(base, ast.Subscript) else base
            value = self.model.resolve_expr(base, self.module)
            if isinstance(value, ClassInfo):
                order += [c for c in value.mro(seen) if c not in order]
            else:
                order.append(self.model.external_name(base, self.module) or "?")
        return order

    def closed(self) -> bool:
        """Whether every attribute an instance can have is known from source."""
        for c in self.mro():
            if isinstance(c, str):
                if c not in KNOWN_BASES and not _is_exception(c):
                    return False
            elif c.exotic or c.dynamic or {"__getattr__", "__getattribute__"} & set(c.members):
                return False
        return True

    def lookup(self, name: str, on_instance: bool):
        """(kind, value) for `name` on an instance or on the class itself, None when it is missing.

        kind: method | classmethod | staticmethod | property | class | attr | unknown; for attr the
        value is (annotation, module) or None.
        """
        for c in self.mro():
            if isinstance(c, str):
                if c in KNOWN_BASES and name in KNOWN_BASES[c] or _is_exception(c) and name in EXCEPTION_ATTRS:
                    return "unknown", None
                continue
            member = c.members.get(name)
            if isinstance(member, FunctionInfo):
                return member.kind, member
            if isinstance(member, ast.ClassDef):
                return "class", self.model.class_info(member, c.module)
            field = c.fields.get(name)
            if field and not field["initvar"] or name in c.attrs:
                if not on_instance and member is None:
                    return "unknown", None  # instance data read on the class: leave it to runtime
                annotation = (field["annotation"], c.module) if field else c.attrs[name]
                return "attr", annotation
            if member is not None:
                return "unknown", None
        return None if self.closed() and not (name.startswith("__") and name.endswith("__")) else ("unknown", None)

    def names(self, on_instance: bool = True) -> list[str]:
        """Every public attribute name of an instance (or of the class), for 'did you mean' hints."""
        found = set()
        for c in self.mro():
            if isinstance(c, ClassInfo):
                found |= set(c.members)
                found |= set(c.attrs) | {n for n, f in c.fields.items() if not f["initvar"]} if on_instance else set()
        return sorted(n for n in found if not n.startswith("_"))

    def init_params(self) -> list[Param] | None:
        """What calling the class takes (its __init__, a dataclass's fields, a NamedTuple's), None if unknown."""
        mro = self.mro()
        for i, c in enumerate(mro):
            if isinstance(c, str):
                if c == "typing.NamedTuple":
                    return self._field_params(mro[:i], namedtuple=True)
                if c in KNOWN_BASES:
                    continue
                return None
            if c.exotic or "__new__" in c.members:
                return None
            if "__init__" in c.members:
                init = c.members["__init__"]
                return init.call_params(bound=True) if isinstance(init, FunctionInfo) else None
            if c.dataclass_init:
                return self._field_params(mro[i:])
        return []

    def _field_params(self, classes, namedtuple: bool = False) -> list[Param] | None:
        fields = {}
        for c in reversed(classes):
            if isinstance(c, str) or not (c.is_dataclass or namedtuple):
                continue
            fields.update(c.fields)
        chosen = [(n, f) for n, f in fields.items() if f["init"]]
        return [Param(n, "kwonly" if f["kw_only"] else "pos", f["required"])
                for n, f in sorted(chosen, key=lambda item: item[1]["kw_only"])]

    def member(self, name: str):
        hit = self.lookup(name, on_instance=False)
        return hit[1] if hit and hit[0] == "class" else None


def _returned_values(body):
    """The values of the `return X` statements of a function body (nested defs excluded)."""
    stack, found = list(body), []
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return):
            found.append(node.value if node.value is not None else ast.Constant(None))
        stack.extend(ast.iter_child_nodes(node))
    return found


def _annotation_text(node) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ast.unparse(node)


def _is_exception(name: str) -> bool:
    value = getattr(builtins, name.removeprefix("builtins."), None) if name.startswith("builtins.") else None
    return isinstance(value, type) and issubclass(value, BaseException)


def _true(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _false(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is False
