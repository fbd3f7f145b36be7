"""Loading the user's own model code.

    model = load_model_file("model.py", class_name="GPT", n_layer=2)
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import torch.nn as nn


def load_model_file(path, class_name: str | None = None, **kwargs) -> nn.Module:
    """Import a user's model file explicitly and instantiate its model class.

    Args:
        path: a .py file defining an nn.Module subclass.
        class_name: which class; None picks the only nn.Module subclass defined in the file.
        **kwargs: passed to the constructor.
    Raises:
        FileNotFoundError, ImportError (file fails to import), ValueError (no/ambiguous class).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file does not exist")
    name = f"trainbook_user_model_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ImportError(f"{path}: failed to import: {type(e).__name__}: {e}") from e
    classes = {n: c for n, c in vars(module).items()
               if inspect.isclass(c) and issubclass(c, nn.Module) and c.__module__ == name}
    if class_name is not None:
        if class_name not in classes:
            raise ValueError(f"{path}: no nn.Module class {class_name!r}; found {sorted(classes)}")
        cls = classes[class_name]
    elif len(classes) == 1:
        cls = next(iter(classes.values()))
    else:
        raise ValueError(f"{path}: {'no' if not classes else len(classes)} nn.Module classes "
                         f"{sorted(classes)}; pass class_name= to choose one")
    model = cls(**kwargs)
    model._trainbook_source = {"path": str(path.resolve()), "class_name": cls.__name__, "kwargs": kwargs}
    return model
