"""A static model of first-party packages for trainbook.lint: modules, names, signatures, attributes.

    model = PackageModel.load(["helpers/trainbook"]); model.lookup("trainbook", "TrainingConfig")

Everything is read from source with `ast`: a package is never imported and none of its code runs.
Modules are parsed on first use and kept. What the source cannot tell (a decorator that may change
a signature, a base class from another library, a module-level `__getattr__` without a name table)
is UNKNOWN, and the rules never guess about an UNKNOWN: they report nothing.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
from pathlib import Path

from .classes import ClassInfo, FunctionInfo
from .findings import LintConfigError

UNKNOWN = object()  # a name that exists but whose value the source does not pin down
SELF_NAMES = {"typing.Self", "typing_extensions.Self"}


class ModuleInfo:
    """One module's top-level bindings, read from its source (or a package folder without one)."""

    def __init__(self, name: str, path: Path | None, model: PackageModel):
        self.name, self.path, self.model = name, path, model
        self.bindings, self.conditional, self.typing_only = {}, set(), {}  # name -> binding node
        self.lazy, self.open, self.version = {}, path is not None and path.suffix != ".py", None
        self.stars, self.loaded = [], set()  # modules star-imported here; own submodules its code imports
        if path is None or self.open:
            return
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
            self.open = True  # a package file we cannot read: claim nothing about it
            return
        self._collect(tree.body, conditional=False, typing_only=False)
        if "__getattr__" in self.bindings:
            table = self._lazy_table(self.bindings["__getattr__"])
            self.lazy, self.open = table or {}, table is None

    def _collect(self, body, conditional: bool, typing_only: bool):
        for node in body:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                self._collect(node.body, conditional, True)
                self._collect(node.orelse, True, typing_only)
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.Match)):
                for part in _blocks(node):
                    self._collect(part, True, typing_only)
            else:
                if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                    self.stars.append(self._import_source(node))
                source = self._import_source(node) if isinstance(node, ast.ImportFrom) else None
                if source and source.startswith(f"{self.name}."):  # importing a submodule makes it an attribute
                    self.loaded.add(source[len(self.name) + 1:].split(".")[0])
                for name, binder in _binders(node):
                    if isinstance(binder, tuple):
                        binder = (source, binder[1])
                    (self.typing_only if typing_only else self.bindings)[name] = binder
                    if conditional and not typing_only:
                        self.conditional.add(name)
                if isinstance(node, ast.Assign) and _target_names(node) == ["__version__"] \
                        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    self.version = node.value.value

    def _lazy_table(self, getattr_node) -> dict | None:
        """{name: module} from dict literals and string comparisons in `__getattr__`; None if it has neither."""
        if not isinstance(getattr_node, ast.FunctionDef):
            return None
        table, found = {}, False
        for node in ast.walk(getattr_node):
            value = self.bindings.get(node.id) if isinstance(node, ast.Name) else None
            if isinstance(value, ast.Assign) and isinstance(value.value, ast.Dict):
                pairs = [(k.value, v.value) for k, v in zip(value.value.keys, value.value.values)
                         if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)]
                found |= bool(pairs)
                table.update({k: self._absolute(v) if isinstance(v, str) else None for k, v in pairs
                              if isinstance(k, str)})
            elif isinstance(node, ast.Compare):
                for const in ast.walk(node):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str) and const.value.isidentifier():
                        table.setdefault(const.value, None)
                        found = True
        return table if found else None

    def _import_source(self, node: ast.ImportFrom) -> str | None:
        """The absolute module of `from X import ...` (relative levels resolved), None above the top."""
        if not node.level:
            return node.module
        parts = self.name.split(".") if self.is_package else self.name.split(".")[:-1]
        if node.level - 1 > len(parts) - 1:
            return None
        parts = parts[: len(parts) - node.level + 1]
        return ".".join(parts + ([node.module] if node.module else []))

    def _absolute(self, target: str) -> str:
        if target.split(".")[0] in self.model.top_names:
            return target
        return f"{self.name}.{target.lstrip('.')}" if self.is_package else target

    @property
    def is_package(self) -> bool:
        return self.path is None or self.path.name == "__init__.py"

    def where(self) -> str:
        return self.model.display_path(self.path) if self.path else self.name.replace(".", "/") + "/"


class PackageModel:
    """The first-party packages a notebook is checked against, found by folder or by module name."""

    def __init__(self, roots: list[Path]):
        self.roots = {root.stem if root.suffix == ".py" else root.name: root for root in roots}
        self.top_names = set(self.roots)
        self._modules, self._index = {}, None

    @classmethod
    def load(cls, entries, base: Path | None = None) -> PackageModel:
        """Packages from folders, .py files or importable names (found with find_spec, not imported).

        Raises:
            LintConfigError: an entry that is neither an existing package path nor an installed name.
        """
        roots = []
        for entry in entries:
            path = Path(entry) if base is None or Path(entry).is_absolute() else base / entry
            if path.is_file() and path.suffix == ".py" or path.is_dir() and (path / "__init__.py").is_file():
                roots.append(path.resolve())
                continue
            if path.is_dir():
                raise LintConfigError(f"package {entry}: {path} has no __init__.py (HINT: point at the package "
                                      "folder itself, e.g. helpers/trainbook, not the folder above it)")
            found = find_package(str(entry)) if str(entry).isidentifier() else None
            if found is None:
                raise LintConfigError(f"package {entry}: no such folder or .py file, and no installed package of "
                                      "that name (HINT: --package path/to/pkg, the folder with __init__.py)")
            roots.append(found)
        return cls(roots)

    def owns(self, dotted: str) -> bool:
        return dotted.split(".")[0] in self.top_names

    def display_path(self, path: Path) -> str:
        for root in self.roots.values():
            if path == root or root in path.parents:
                return path.relative_to(root.parent).as_posix()
        return str(path)

    def version(self, top: str) -> str | None:
        module = self.module(top)
        return module.version if module else None

    def module(self, dotted: str) -> ModuleInfo | None:
        """The module `dotted` (a first-party name), or None when there is no such module."""
        if dotted not in self._modules:
            self._modules[dotted] = self._find(dotted)
        return self._modules[dotted]

    def _find(self, dotted: str) -> ModuleInfo | None:
        top, *parts = dotted.split(".")
        root = self.roots.get(top)
        if root is None or root.suffix == ".py" and parts:
            return None
        if root.suffix == ".py":
            return ModuleInfo(dotted, root, self)
        base = root.joinpath(*parts)
        for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
            if candidate is not None and candidate.is_file():
                return ModuleInfo(dotted, candidate, self)
        if parts and base.parent.is_dir():
            extension = next(base.parent.glob(f"{base.name}.*.so"), None) or \
                next(base.parent.glob(f"{base.name}.pyd"), None)
            if extension:
                return ModuleInfo(dotted, extension, self)
        return ModuleInfo(dotted, None, self) if parts and base.is_dir() and any(base.glob("*.py")) else None

    def submodules(self, dotted: str) -> list[str]:
        module = self.module(dotted)
        if module is None or not module.is_package:
            return []
        top, *parts = dotted.split(".")
        folder = self.roots[top].joinpath(*parts)
        return sorted({p.stem for p in folder.glob("*.py") if p.stem != "__init__"} |
                      {p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()})

    def all_modules(self) -> list[str]:
        names = []
        for top, root in self.roots.items():
            if root.suffix == ".py":
                names.append(top)
                continue
            for path in sorted(root.rglob("*.py")):
                parts = path.relative_to(root).with_suffix("").parts
                if not any(p.startswith(".") or p == "__pycache__" for p in parts):
                    names.append(".".join([top, *parts[:-1]] if parts[-1] == "__init__" else [top, *parts]))
        return names

    def defined_in(self, name: str) -> list[str]:
        """Modules whose source defines `name` with def or class (for 'it lives in ...' hints)."""
        if self._index is None:
            self._index = {}
            for dotted in self.all_modules():
                module = self.module(dotted)
                for bound, node in (module.bindings.items() if module else ()):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        self._index.setdefault(bound, []).append(dotted)
        return self._index.get(name, [])

    # names

    def lookup(self, dotted: str, name: str, seen=None):
        """What `name` is in module `dotted`: (value, problem).

        value: a ModuleInfo, ClassInfo, FunctionInfo or UNKNOWN; problem: None, or why it does not
        exist ("submodule" when it is a submodule that must be imported first).
        """
        module = self.module(dotted)
        if module is None:
            return None, f"module {dotted} does not exist"
        seen = (seen or set()) | {(dotted, name)}
        if name in module.bindings:
            return self._value(module, name, seen), None
        if self.module(f"{dotted}.{name}") is not None and module.is_package:
            return self.module(f"{dotted}.{name}"), None if name in module.loaded else "submodule"
        if name in module.lazy:
            home = module.lazy[name]
            if home is None or (home, name) in seen:
                return UNKNOWN, None
            value, problem = self.lookup(home, name, seen)
            if problem and problem != "submodule":
                exists = self.module(home) is not None
                what = "define it" if exists else "exist"
                return None, f"{dotted} reserves {name!r} in {home}, which does not {what} yet"
            return value, None
        for source in module.stars:
            if source is None or not self.owns(source):
                return UNKNOWN, None
            if (source, name) not in seen and not name.startswith("_"):
                value, problem = self.lookup(source, name, seen)
                if not problem:
                    return value, None
        if module.open or name.startswith("__") and name.endswith("__"):
            return UNKNOWN, None
        return None, f"{dotted} has no name {name!r}"

    def public_names(self, dotted: str) -> list[str]:
        module = self.module(dotted)
        names = set(module.bindings) | set(module.lazy) | set(self.submodules(dotted)) if module else set()
        return sorted(n for n in names if not n.startswith("_"))

    def _value(self, module: ModuleInfo, name: str, seen):
        node = module.bindings[name]
        if name in module.conditional:
            return UNKNOWN
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            key = (module.name, node.lineno, node.name)
            if key not in self._modules:
                self._modules[key] = FunctionInfo(node, module, None)
            return self._modules[key]
        if isinstance(node, ast.ClassDef):
            return self.class_info(node, module)
        if isinstance(node, ast.alias):  # import a.b (binds a) / import a.b as c
            target = node.name if node.asname else node.name.split(".")[0]
            return self.module(target) or UNKNOWN if self.owns(target) else UNKNOWN
        if isinstance(node, tuple):  # (absolute module, name) of a from-import
            source, imported = node
            if not source or not self.owns(source) or (source, imported) in seen:
                return UNKNOWN
            value, problem = self.lookup(source, imported, seen)
            return UNKNOWN if problem and problem != "submodule" else value
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Name, ast.Attribute)):
            value = self.resolve_expr(node.value, module, seen)
            return value if value is not None else UNKNOWN
        return UNKNOWN

    def class_info(self, node: ast.ClassDef, module: ModuleInfo) -> ClassInfo:
        key = (module.name, node.lineno, node.name)
        if key not in self._modules:
            self._modules[key] = ClassInfo(node, module, self)
        return self._modules[key]

    def resolve_expr(self, expr, module: ModuleInfo, seen=frozenset()):
        """The first-party value a Name/Attribute expression refers to in `module`, else None."""
        if isinstance(expr, ast.Name):
            if expr.id not in module.bindings or (module.name, expr.id) in seen:
                return None
            value = self._value(module, expr.id, set(seen) | {(module.name, expr.id)})
            return None if value is UNKNOWN else value
        if isinstance(expr, ast.Attribute):
            base = self.resolve_expr(expr.value, module, seen)
            if isinstance(base, ModuleInfo):
                value, problem = self.lookup(base.name, expr.attr)
                return None if problem and problem != "submodule" or value is UNKNOWN else value
            if isinstance(base, ClassInfo):
                member = base.member(expr.attr)
                return member if isinstance(member, ClassInfo) else None
        return None

    def external_name(self, expr, module: ModuleInfo) -> str | None:
        """'typing.NamedTuple' for a Name/Attribute bound to another library (builtins included), else None."""
        if isinstance(expr, ast.Attribute):
            base = self.external_name(expr.value, module)
            return f"{base}.{expr.attr}" if base else None
        if not isinstance(expr, ast.Name):
            return None
        node = module.bindings.get(expr.id) or module.typing_only.get(expr.id)
        if node is None:
            return f"builtins.{expr.id}" if hasattr(builtins, expr.id) else None
        if isinstance(node, ast.alias) and not self.owns(node.name):
            return node.name if node.asname else node.name.split(".")[0]
        if isinstance(node, tuple) and node[0] and not self.owns(node[0]):
            return f"{node[0]}.{node[1]}"
        return None

    def annotation_class(self, expr, module: ModuleInfo, receiver: ClassInfo | None = None) -> ClassInfo | None:
        """The first-party class an annotation names (`X`, "X", `X | None`, `Optional[X]`, `Self`), else None."""
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            try:
                expr = ast.parse(expr.value, mode="eval").body
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                return None
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
            sides = [s for s in (expr.left, expr.right) if not (isinstance(s, ast.Constant) and s.value is None)]
            return self.annotation_class(sides[0], module, receiver) if len(sides) == 1 else None
        if isinstance(expr, ast.Subscript) and self.external_name(expr.value, module) in ("typing.Optional",):
            return self.annotation_class(expr.slice, module, receiver)
        if isinstance(expr, (ast.Name, ast.Attribute)):
            if self.external_name(expr, module) in SELF_NAMES or isinstance(expr, ast.Name) and expr.id == "Self" \
                    and "Self" not in module.bindings:
                return receiver
            value = self.resolve_expr(expr, module)
            return value if isinstance(value, ClassInfo) else None
        return None


def find_package(name: str) -> Path | None:
    """The source folder (or .py file) of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        return folder.resolve() if (folder / "__init__.py").is_file() else None
    return Path(spec.origin).resolve() if spec.origin and spec.origin.endswith(".py") else None


def _is_type_checking(test) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING" or \
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _blocks(node):
    if isinstance(node, ast.Try):
        return [node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody]
    if isinstance(node, ast.Match):
        return [case.body for case in node.cases]
    return [node.body, getattr(node, "orelse", [])]


def _target_names(node) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _binders(node):
    """(name, what binds it) for a top-level statement; from-imports as (absolute module, name)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [(node.name, node)]
    if isinstance(node, ast.Import):
        return [(a.asname or a.name.split(".")[0], a) for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [(a.asname or a.name, (node, a.name)) for a in node.names if a.name != "*"]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        simple = isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        return [(name, node if simple or isinstance(node, ast.AnnAssign) else None) for name in _target_names(node)]
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    return [(name, None) for name in names]
