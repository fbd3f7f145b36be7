"""How a bundle names and rebuilds its model, and reads and writes its weights (tied weights stored once).

    model_config = describe_model(model, bundle_dir); model = build_model(model_config, bundle_dir)

`describe_model` records a built-in model's ModelConfig, a `load_model_file` model's source file and
arguments, or an importable class's module and name; `build_model` rebuilds the model from that
record. `save_weights`/`load_weights` use safetensors (no pickle).
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


# --- describing and rebuilding the model ---

def describe_model(model, bundle: Path) -> dict:
    from ..models.builtin import ARCHS, ModelConfig

    if type(model) in ARCHS.values() and isinstance(getattr(model, "config", None), ModelConfig):
        return {"source": "builtin", "model_config": model.config.to_dict()}
    source = getattr(model, "_trainbook_source", None)
    if source is not None:
        shutil.copyfile(source["path"], bundle / MODEL_CODE)
        return {"source": "file", "file": MODEL_CODE, "original_path": source["path"],
                "class_name": source["class_name"], "kwargs": jsonable(source["kwargs"], "model kwargs")}
    cls = type(model)
    hint = ("HINT: put the class in a .py file and build the model with tb.load_model_file(path, class_name, "
            "**kwargs); its arguments are then stored in the bundle")
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise BundleError(f"cannot export {cls.__qualname__}: it is defined in {cls.__module__!r} (a notebook or "
                          f"script, or inside a function), so a bundle could not import it again. {hint}")
    if _import_class(cls.__module__, cls.__qualname__) is not cls:
        raise BundleError(f"cannot export {cls.__qualname__}: {cls.__module__}.{cls.__qualname__} does not import "
                          f"back to the same class. {hint}")
    return {"source": "import", "module": cls.__module__, "qualname": cls.__qualname__}


def build_model(model_config: dict, bundle: Path) -> torch.nn.Module:
    from ..models.builtin import ModelConfig, build_from_config
    from ..models.loading import load_model_file

    source = model_config.get("source")
    with torch.random.fork_rng(devices=[]):  # building initialises weights; keep the caller's RNG
        if source == "builtin":
            return build_from_config(ModelConfig(**model_config["model_config"]), seed=None)
        if source == "file":
            dont_write = sys.dont_write_bytecode
            sys.dont_write_bytecode = True  # no __pycache__ inside the bundle
            try:
                return load_model_file(bundle / model_config["file"], model_config["class_name"],
                                       **model_config["kwargs"])
            finally:
                sys.dont_write_bytecode = dont_write
        if source == "import":
            cls = _import_class(model_config["module"], model_config["qualname"])
            if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
                raise BundleError(f"{bundle / MODEL_CONFIG}: {model_config['module']}.{model_config['qualname']} is "
                                  "not an nn.Module class; refusing to call it")
            try:
                return cls()
            except TypeError as e:
                raise BundleError(f"{bundle / MODEL_CONFIG}: {model_config['qualname']}() cannot be built without "
                                  f"arguments ({e}). HINT: export a model built with tb.load_model_file(path, "
                                  "class_name, **kwargs) so its arguments are stored") from None
    raise BundleError(f"{bundle / MODEL_CONFIG}: unknown model source {source!r}; expected builtin, file or import")


def _import_class(module: str, qualname: str):
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise BundleError(f"cannot import the model class {module}.{qualname}: {e}. HINT: install the package "
                          "that defines it, or export a model built with tb.load_model_file") from None
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
