"""Loading the user's own model: one entry point for files, folders, URLs, Gists and hf: names.

    model = load_model("nanoGPT/model.py", class_name="GPT", config=GPTConfig(n_layer=2))
    model = load_model("exports/my_transformer")            # model.py + config.json (Transformer Builder)
    model = load_model("gist:1a2b3c@4d5e6f", trust_remote_code=True)
    model = load_model("hf:./my-gpt2", task_spec=spec)

Every model comes back with `model.trainbook_source`: where it came from (kind, source, path,
class_name, the constructor's keyword arguments, and for fetched code the url, revision and
sha256 of every file). Export reads it to copy the code and rebuild the model.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import inspect
import json
import sys
from pathlib import Path

import torch.nn as nn

from .errors import ModelSourceError
from .sources import CONFIG_FILE, local_code

MODEL_FILE = "model.py"
NAMING_KEYS = ("class_name", "model_name")  # config.json keys that name the class, never constructor arguments
SOURCES_HINT = ("a model source is a .py file, a folder with model.py (+ config.json), https://.../model.py, "
                "gist:<id>[@revision] or hf:<name-or-folder>")


def load_model(source, class_name: str | None = None, trust_remote_code: bool = False, task_spec=None,
               **kwargs) -> nn.Module:
    """Build a model from any source: file, folder, URL, Gist or transformers name.

    Args:
        source: a .py file; a folder with model.py and optionally config.json; an https URL of a
            .py file; "gist:<id>" or "gist:<id>@<revision>" (GitHub Gist API, base URL from
            TRAINBOOK_GIST_API_URL); "hf:<name-or-folder>" (transformers Auto classes).
        class_name: the nn.Module class; default: config.json's class_name/model_name, else the
            only nn.Module class in the file (or the only one no other class there uses).
        trust_remote_code: must be True for URL and Gist sources (their code runs here); passed
            to transformers for hf: sources.
        task_spec: hf: sources only: picks the Auto class and num_labels / vocab_size.
        **kwargs: constructor arguments (over config.json's); for hf: passed to from_pretrained.
    Returns:
        The model, with `model.trainbook_source` describing where it came from.
    Raises:
        FileNotFoundError: no such file or folder. ImportError: the code fails to import.
        ModelSourceError (a ValueError): anything else, with the source named and a HINT.
    """
    text = str(source)
    if text.startswith("hf:"):
        if class_name:
            raise ModelSourceError(f"{text}: class_name={class_name!r} does not apply to hf: sources; the "
                                   "transformers Auto class follows the task. HINT: pass task_spec=spec")
        from .hf import load_hf_model

        return load_hf_model(text[3:], task_spec, trust_remote_code=trust_remote_code, **kwargs)
    if text.startswith(("gist:", "https://", "http://")):
        from .remote import fetch

        if not trust_remote_code:
            raise ModelSourceError(f"{text}: loading it runs code fetched from the internet, which needs "
                                   f"trust_remote_code=True. HINT: read the code first, then call "
                                   f"tb.load_model({text!r}, trust_remote_code=True)")
        fetched = fetch(text)
        model = (load_model_folder(fetched.path, class_name, **kwargs) if fetched.path.is_dir()
                 else load_model_file(fetched.path, class_name, **kwargs))
        model.trainbook_source.update(kind=fetched.kind, source=text, fetched=fetched.record())
        return model
    path = Path(source).expanduser()
    if path.is_dir():
        return load_model_folder(path, class_name, **kwargs)
    if path.is_file() and path.suffix != ".py":
        hint = f"pass its folder: tb.load_model({str(path.parent)!r})" if path.name == CONFIG_FILE else SOURCES_HINT
        raise ModelSourceError(f"{path}: not a Python file. HINT: {hint}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file or folder. HINT: {SOURCES_HINT}")
    return load_model_file(path, class_name, **kwargs)


def load_model_file(path, class_name: str | None = None, **kwargs) -> nn.Module:
    """Import a user's model file explicitly and instantiate its model class.

    Modules the file imports from its own folder are imported from there, and forgotten again
    afterwards (so two model folders may both have a `layers.py`).

    Args:
        path: a .py file defining an nn.Module subclass.
        class_name: which class; None picks the only nn.Module subclass defined in the file (or
            the only one that no other class there uses, e.g. nanoGPT's GPT).
        **kwargs: passed to the constructor.
    Raises:
        FileNotFoundError, ImportError (file fails to import), ValueError (no/ambiguous class,
        missing constructor arguments, or the constructor fails).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file does not exist")
    if path.suffix != ".py":
        raise ModelSourceError(f"{path}: not a .py file. HINT: {SOURCES_HINT}")
    module = import_model_file(path)
    cls = pick_class(module, path, class_name)
    missing = [n for n, p in constructor_params(cls).items() if p.default is p.empty and n not in kwargs]
    if missing:
        raise ModelSourceError(f"{path}: {cls.__name__}() needs {', '.join(missing)}. HINT: pass "
                               f"{', '.join(f'{n}=...' for n in missing)} to load_model, or write the arguments "
                               f"(or the fields of the dataclass it takes) to {CONFIG_FILE} beside the file and "
                               "load the folder")
    return _instantiate(cls, kwargs, path, {"kind": "file", "source": str(path)})


def load_model_folder(folder, class_name: str | None = None, **kwargs) -> nn.Module:
    """A folder holding model.py and optionally config.json (a Transformer-Builder export).

    The class is `class_name`, else config.json's "class_name" / "model_name", else the file's
    only model class. A parameterless constructor gets nothing; otherwise it gets the config's
    keys it accepts, and a required argument the keys do not name (nanoGPT's `config`) gets the
    file's dataclass built from the remaining keys. `kwargs` override the config.
    """
    folder = Path(folder)
    path, config_path = folder / MODEL_FILE, folder / CONFIG_FILE
    if not path.is_file():
        found = sorted(p.name for p in folder.iterdir())
        raise ModelSourceError(f"{folder}: no {MODEL_FILE} in this folder (found: {', '.join(found) or 'nothing'}). "
                               f"HINT: put the model class in {folder / MODEL_FILE}, or pass the .py file itself")
    config = read_config(config_path) if config_path.is_file() else {}
    named = next((config[k] for k in NAMING_KEYS if isinstance(config.get(k), str)), None)
    module = import_model_file(path)
    cls = pick_class(module, path, class_name or named, named_by=None if class_name else config_path)
    args = {**config_kwargs(cls, module, config, config_path), **kwargs}
    missing = [n for n, p in constructor_params(cls).items() if p.default is p.empty and n not in args]
    if missing:
        raise ModelSourceError(f"{path}: {cls.__name__}() needs {', '.join(missing)}, and {config_path.name} does "
                               f"not provide {'them' if len(missing) > 1 else 'it'}. HINT: add "
                               f"{', '.join(repr(n) for n in missing)} to {config_path}, or pass "
                               f"{', '.join(f'{n}=...' for n in missing)} to load_model")
    return _instantiate(cls, args, path, {"kind": "folder", "source": str(folder),
                                          "config_file": str(config_path.resolve()) if config else None})


def read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelSourceError(f"{path}: not valid JSON ({e}). HINT: fix or remove the file") from None
    if not isinstance(config, dict):
        raise ModelSourceError(f"{path}: must hold a JSON object of constructor arguments; got {type(config).__name__}")
    return config


def import_model_file(path: Path):
    """Import a .py file as a fresh module; its folder's own modules are importable while it runs."""
    path = Path(path).resolve()
    try:
        local = local_code(path, check_missing=False).local_names
    except SyntaxError as e:
        raise ImportError(f"{path}: failed to import: SyntaxError: {e}") from None
    name = "trainbook_user_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)

    def ours(key):
        return key.split(".")[0] in local

    hidden = {k: sys.modules.pop(k) for k in list(sys.modules) if ours(k)}  # a same-named module from elsewhere
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ImportError(f"{path}: failed to import: {type(e).__name__}: {e}") from e
    finally:
        sys.path.remove(str(path.parent))
        for key in [k for k in sys.modules if ours(k)]:
            del sys.modules[key]  # the model keeps its classes; the next load imports its own copies
        sys.modules.update(hidden)
    return module


def pick_class(module, path: Path, class_name: str | None, named_by: Path | None = None) -> type:
    """The nn.Module class to build: `class_name`, or the file's only (or only unused) model class."""
    classes = {n: c for n, c in vars(module).items()
               if inspect.isclass(c) and issubclass(c, nn.Module) and c.__module__ == module.__name__}
    if class_name is not None:
        cls = getattr(module, class_name, None)
        if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
            where = f" (named by {named_by})" if named_by else ""
            raise ModelSourceError(f"{path}: no nn.Module class {class_name!r}{where}; found {sorted(classes)}")
        return cls
    if len(classes) == 1:
        return next(iter(classes.values()))
    outer = _unused_classes(path, classes)
    if len(outer) == 1:
        return classes[outer[0]]
    raise ModelSourceError(f"{path}: {'no' if not classes else len(classes)} nn.Module classes {sorted(classes)}; "
                           "pass class_name= to choose one")


def constructor_params(cls) -> dict:
    """Named parameters of cls.__init__ (no self, *args or **kwargs)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    return {n: p for n, p in params.items()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def config_kwargs(cls, module, config: dict, config_path: Path) -> dict:
    """The constructor arguments config.json provides (see load_model_folder)."""
    params = constructor_params(cls)
    try:
        takes_any = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        takes_any = False
    if not params and not takes_any:
        return {}  # parameterless: Transformer Builder's exports
    values = {k: v for k, v in config.items() if k not in NAMING_KEYS or k in params}
    kwargs = {k: v for k, v in values.items() if k in params or takes_any}
    rest = {k: v for k, v in values.items() if k not in kwargs}
    for name, param in params.items():
        if rest and name not in kwargs and param.default in (param.empty, None):
            holder = _dataclass_for(param, module, set(rest))
            if holder is not None:  # nanoGPT: GPT(config) with config = GPTConfig(**the JSON)
                kwargs[name] = holder(**{k: rest.pop(k) for k in list(rest)})
    if rest:
        print(f"{config_path}: keys not used by {cls.__name__}(): {', '.join(sorted(rest))}")
    return kwargs


def _dataclass_for(param, module, keys: set):
    annotation = param.annotation
    if isinstance(annotation, str):
        annotation = getattr(module, annotation, None)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        candidates = [annotation]
    else:
        candidates = [c for c in vars(module).values() if isinstance(c, type) and dataclasses.is_dataclass(c)
                      and c.__module__ == module.__name__]
    fits = [c for c in candidates if keys <= {f.name for f in dataclasses.fields(c) if f.init}]
    return fits[0] if len(fits) == 1 else None


def _unused_classes(path: Path, classes: dict) -> list[str]:
    """Model classes that no other model class's body names: the outermost model."""
    used = set()
    for node in ast.parse(Path(path).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef) and node.name in classes:
            used |= {n.id for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.Name)} - {node.name}
    return sorted(set(classes) - used)


def _instantiate(cls, kwargs: dict, path: Path, source: dict) -> nn.Module:
    try:
        model = cls(**kwargs)
    except Exception as e:
        shown = ", ".join(f"{k}=..." for k in kwargs)
        raise ModelSourceError(f"{path}: {cls.__name__}({shown}) failed: {type(e).__name__}: {e}") from e
    model.trainbook_source = {**source, "path": str(Path(path).resolve()), "class_name": cls.__name__,
                              "kwargs": dict(kwargs)}
    return model
