"""A model's constructor arguments as JSON, and back: how a bundle rebuilds `GPT(GPTConfig(...))`.

    stored = encode_args({"config": GPTConfig(n_layer=2)}, "GPT")   # JSON with the dataclass's fields
    kwargs = decode_args(stored, namespace=model_module)             # {"config": GPTConfig(n_layer=2)}

Plain JSON values stay as they are; tuples, dataclasses (nanoGPT's GPTConfig), SimpleNamespaces,
config objects with to_dict()/from_dict() (transformers configs) and torch dtypes are stored with
their fields and a marker, and rebuilt from the class the model's own code (the namespace) or an
installed module defines. Anything else is refused by name. `recorded_args` reads the arguments of
a model built without tb.load_model back from its attributes (nanoGPT keeps `self.config`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import types

import torch

from ..models.loading import constructor_params
from .errors import BundleError


def encode_args(kwargs: dict, owner: str) -> dict:
    """JSON for the constructor arguments of `owner` (a class name, for messages)."""
    return {name: _encode(value, f"{owner}'s argument {name!r}") for name, value in kwargs.items()}


def decode_args(stored: dict, namespace=None, where: str = "model_config.json") -> dict:
    return {name: _decode(value, namespace, where) for name, value in stored.items()}


def recorded_args(model) -> dict:
    """Constructor arguments read back from same-named attributes; defaults where there is none.

    Raises:
        BundleError: a required argument has no attribute holding a storable value.
    """
    cls, args = type(model), {}
    for name, param in constructor_params(cls).items():
        value = getattr(model, name, _ABSENT) if name not in model._modules and name not in model._parameters else _ABSENT
        if value is not _ABSENT and _storable(value):
            args[name] = value
        elif param.default is param.empty:
            found = "has no attribute of that name" if value is _ABSENT else f"holds a {type(value).__name__} there"
            raise BundleError(f"cannot export {cls.__qualname__}: its constructor needs {name!r}, and the model {found}, "
                              f"so a bundle could not build it again. HINT: build it with tb.load_model(path, "
                              f"class_name={cls.__name__!r}, {name}=...) so its arguments are recorded, or keep the "
                              f"argument as self.{name}")
    return args


_ABSENT = object()


def _storable(value) -> bool:
    try:
        _encode(value, "")
    except BundleError:
        return False
    return True


def _encode(value, what: str):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_encode(v, what) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {"__tuple__": [_encode(v, what) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, what) for k, v in value.items()}}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    cls = type(value)
    if isinstance(value, types.SimpleNamespace):
        return {"__namespace__": {k: _encode(v, f"{what}.{k}") for k, v in vars(value).items()}}
    if callable(getattr(value, "to_dict", None)) and callable(getattr(cls, "from_dict", None)):
        try:  # plain JSON, as the object writes itself (transformers configs: to_json_string)
            text = value.to_json_string(use_diff=False) if hasattr(value, "to_json_string") else json.dumps(value.to_dict())
        except TypeError as e:
            raise BundleError(f"cannot store {what}: its to_dict() is not JSON ({e})") from None
        return {"__config__": cls.__qualname__, "module": cls.__module__, "fields": json.loads(text)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode(getattr(value, f.name), f"{what}.{f.name}") for f in dataclasses.fields(value) if f.init}
        return {"__dataclass__": cls.__qualname__, "module": cls.__module__, "fields": fields}
    raise BundleError(f"cannot store {what}: a {cls.__qualname__} is not a number, string, list, dict, dataclass or "
                      "config object with to_dict()/from_dict(). HINT: pass plain values or a dataclass")


def _decode(value, namespace, where: str):
    if isinstance(value, list):
        return [_decode(v, namespace, where) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_decode(v, namespace, where) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v, namespace, where) for k, v in value["__dict__"].items()}
    if "__dtype__" in value:
        return getattr(torch, value["__dtype__"])
    if "__namespace__" in value:
        return types.SimpleNamespace(**{k: _decode(v, namespace, where) for k, v in value["__namespace__"].items()})
    if "__dataclass__" in value:
        cls = _find_class(value["__dataclass__"], value["module"], namespace, where)
        return cls(**{k: _decode(v, namespace, where) for k, v in value["fields"].items()})
    if "__config__" in value:
        cls = _find_class(value["__config__"], value["module"], namespace, where)
        return cls.from_dict(value["fields"])
    raise BundleError(f"{where}: unknown stored argument {sorted(value)}; the bundle is damaged or newer than trainbook")


def _find_class(qualname: str, module: str, namespace, where: str):
    """The class from the model's own code first (its module name changes between loads), else by import."""
    for path in ((qualname.split("."), [qualname.split(".")[-1]]) if namespace is not None else ()):
        obj = namespace
        for part in path:
            obj = getattr(obj, part, None)
        if isinstance(obj, type):
            return obj
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError):
        raise BundleError(f"{where}: the model's arguments need class {qualname} (from {module}), which neither the "
                          "bundle's model code defines nor an installed module provides. HINT: define it in the "
                          "model file, or install the package that has it") from None
