"""How a bundle names and rebuilds its model, and reads and writes its weights (tied weights stored once).

    model_config = describe_model(model, bundle_dir); model = build_model(model_config, bundle_dir)

`describe_model` records, by kind of model:
- builtin: its ModelConfig;
- transformers: the model's config.json (written into the bundle) and the Auto class that
  rebuilds it with from_config;
- file: the user's code, copied into model_code/ (the model file, the modules it imports from
  its folder, its folder's config.json), the class name and the constructor arguments as JSON
  (dataclasses by their fields). Models from tb.load_model, and classes whose module a fresh
  Python process could not import (e.g. `from model import GPT` in a notebook), take this path;
- import: an installed class's module and name, with its constructor arguments.
`build_model` rebuilds the model from that record. `save_weights`/`load_weights` use safetensors (no pickle).
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import torch

from .errors import BundleError
from .files import MODEL_CODE, MODEL_CONFIG, jsonable
from .model_args import decode_args, encode_args, recorded_args

CODE_DIR = "model_code"      # the user's model code inside a bundle
HF_CONFIG = "config.json"    # a transformers model's config inside a bundle


# --- describing and rebuilding the model ---

def describe_model(model, bundle: Path) -> dict:
    from ..models import hf
    from ..models.builtin import ARCHS, ModelConfig
    from ..models.sources import fresh_origins

    if type(model) in ARCHS.values() and isinstance(getattr(model, "config", None), ModelConfig):
        return {"source": "builtin", "model_config": model.config.to_dict()}
    source = getattr(model, "trainbook_source", None) or {}
    origin = {k: source[k] for k in ("kind", "source", "fetched") if k in source}
    if hf.is_transformers_model(model):
        return _describe_transformers(model, bundle, origin)
    cls = type(model)
    if source.get("path"):
        return copy_code(Path(source["path"]), source["class_name"], source["kwargs"], bundle, origin)
    hint = ("HINT: put the class in a .py file and build the model with tb.load_model(path, class_name, **kwargs); "
            "its code and arguments are then stored in the bundle")
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise BundleError(f"cannot export {cls.__qualname__}: it is defined in {cls.__module__!r} (a notebook or "
                          f"script, or inside a function), so a bundle could not import it again. {hint}")
    if _import_class(cls.__module__, cls.__qualname__) is not cls:
        raise BundleError(f"cannot export {cls.__qualname__}: {cls.__module__}.{cls.__qualname__} does not import "
                          f"back to the same class. {hint}")
    top = cls.__module__.split(".")[0]
    if fresh_origins([top])[top] is not None:  # installed: a fresh process imports it by name
        return {"source": "import", "module": cls.__module__, "qualname": cls.__qualname__,
                "kwargs": encode_args(recorded_args(model), cls.__qualname__)}
    file = getattr(sys.modules[cls.__module__], "__file__", None)
    if "." in cls.__module__ or not file or not file.endswith(".py"):
        raise BundleError(f"cannot export {cls.__qualname__}: its module {cls.__module__} cannot be imported by a fresh "
                          f"Python process (it is found only through this session's working directory or sys.path). "
                          f"HINT: install its package (pip install -e <folder>), or {hint[6:]}")
    return copy_code(Path(file), cls.__qualname__, recorded_args(model), bundle,
                     {"kind": "module", "source": cls.__module__})


def copy_code(main: Path, class_name: str, kwargs: dict, bundle: Path, origin: dict) -> dict:
    """Copy the model file and its local code into bundle/model_code/, or refuse naming what is missing."""
    from ..models.sources import local_code

    if not main.is_file():
        raise BundleError(f"cannot export {class_name}: its source file {main} no longer exists. HINT: load the "
                          "model again from where its code is now")
    try:
        code = local_code(main)
    except SyntaxError as e:
        raise BundleError(f"cannot export {class_name}: {e}") from None
    if code.missing:
        raise BundleError(f"cannot export {class_name}: {main.name} imports {', '.join(code.missing)}, which is neither "
                          f"in its folder {code.folder} nor installed, so the bundle could not import it in a fresh "
                          f"process. HINT: move that module next to {main.name}, or install it")
    stored = encode_args(kwargs, class_name)
    for file in code.files + code.data:
        target = bundle / CODE_DIR / file.relative_to(code.folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return {"source": "file", "file": f"{CODE_DIR}/{main.name}", "class_name": class_name, "kwargs": stored,
            "original_path": str(main), "copied": sorted(str(f.relative_to(code.folder)) for f in code.files + code.data),
            "origin": jsonable(origin, "model source")}


def _describe_transformers(model, bundle: Path, origin: dict) -> dict:
    from ..models import hf

    auto = hf.auto_class_for(model)
    if auto is None:
        raise BundleError(f"cannot export {type(model).__qualname__}: no transformers Auto class builds it from its "
                          "config, so a bundle could not rebuild it. HINT: use a model class transformers registers "
                          "(e.g. one of AutoModelForCausalLM / AutoModelForSequenceClassification)")
    model.config.to_json_file(str(bundle / HF_CONFIG))
    return {"source": "transformers", "auto_class": auto, "class_name": type(model).__name__, "config": HF_CONFIG,
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "transformers_version": sys.modules["transformers"].__version__, "origin": jsonable(origin, "model source")}


def build_model(model_config: dict, bundle: Path) -> torch.nn.Module:
    from ..models.builtin import ModelConfig, build_from_config

    source = model_config.get("source")
    with torch.random.fork_rng(devices=[]):  # building initialises weights; keep the caller's RNG
        if source == "builtin":
            return build_from_config(ModelConfig(**model_config["model_config"]), seed=None)
        if source == "transformers":
            from ..models.hf import build_from_config as build_hf

            model = build_hf(model_config["auto_class"], bundle, model_config["class_name"])
            if model_config.get("attn_implementation"):
                model.config._attn_implementation = model_config["attn_implementation"]
            return model
        if source == "file":
            return _build_from_code(model_config, bundle)
        if source == "import":
            cls = _import_class(model_config["module"], model_config["qualname"])
            if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
                raise BundleError(f"{bundle / MODEL_CONFIG}: {model_config['module']}.{model_config['qualname']} is "
                                  "not an nn.Module class; refusing to call it")
            return _construct(cls, decode_args(model_config.get("kwargs", {}), where=str(bundle / MODEL_CONFIG)),
                              bundle, model_config["qualname"])
    raise BundleError(f"{bundle / MODEL_CONFIG}: unknown model source {source!r}; expected builtin, transformers, "
                      "file or import")


def _build_from_code(model_config: dict, bundle: Path):
    from ..models.loading import import_model_file, pick_class

    path = bundle / model_config.get("file", MODEL_CODE)
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ inside the bundle
    try:
        module = import_model_file(path)
    except ImportError as e:
        raise BundleError(f"{path}: the bundle's model code does not import: {e}") from None
    finally:
        sys.dont_write_bytecode = dont_write
    try:
        cls = pick_class(module, path, model_config["class_name"])
    except ValueError as e:
        raise BundleError(f"{bundle / MODEL_CONFIG}: {e}") from None
    kwargs = decode_args(model_config["kwargs"], namespace=module, where=str(bundle / MODEL_CONFIG))
    return _construct(cls, kwargs, bundle, model_config["class_name"])


def _construct(cls, kwargs: dict, bundle: Path, name: str):
    try:
        return cls(**kwargs)
    except Exception as e:
        raise BundleError(f"{bundle / MODEL_CONFIG}: {name}({', '.join(kwargs)}) failed: {type(e).__name__}: {e}. "
                          "HINT: export a model built with tb.load_model(path, class_name, **kwargs) so its "
                          "arguments are stored") from None


def _import_class(module: str, qualname: str):
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise BundleError(f"cannot import the model class {module}.{qualname}: {e}. HINT: install the package "
                          "that defines it, or export a model built with tb.load_model") from None
    return obj


# --- weights ---

def save_weights(model, path: Path) -> dict:
    """Save unique tensors; a tied tensor (e.g. GPT's head.weight) is stored once and listed as an alias."""
    from safetensors.torch import save_file

    tensors, aliases, seen = {}, {}, {}
    for name, t in model.state_dict().items():
        key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
        if key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().to("cpu", copy=True).contiguous()
    save_file(tensors, str(path), metadata={"aliases": json.dumps(aliases, sort_keys=True)})
    return aliases


def read_weights(path: Path) -> dict:
    """The tensors of a safetensors file with tied aliases restored; BundleError naming the file if unreadable."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as fh:
            aliases = json.loads((fh.metadata() or {}).get("aliases", "{}"))
        state = load_file(str(path))
        state.update({alias: state[target] for alias, target in aliases.items()})
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise BundleError(f"{path}: not a readable safetensors weights file ({type(e).__name__}: {e}). HINT: "
                          "re-export the bundle; weights are only ever read with safetensors, never unpickled") from None
    return state


def stored_shapes(path: Path) -> dict:
    """{name: shape} of the tensors in a safetensors file, read from its header only."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {name: tuple(fh.get_slice(name).get_shape()) for name in fh.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise BundleError(f"{path}: not a readable safetensors weights file ({type(e).__name__}: {e}). HINT: "
                          "re-export the bundle; weights are only ever read with safetensors, never unpickled") from None


def load_weights(model, path: Path):
    state = read_weights(path)
    dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(dtypes) == 1 and dtypes != {torch.float32}:
        model.to(dtypes.pop())  # e.g. a bf16 model stays bf16
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise BundleError(f"{path}: weights do not fit the rebuilt model: {e}") from None
