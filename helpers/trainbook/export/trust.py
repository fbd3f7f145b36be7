"""What loading a bundle may run: code that came with the bundle only when the caller trusts it.

    check_trust(model_config, bundle, trust_remote_code=False)   # BundleError before any code runs

A bundle's model is rebuilt from one of three records (model_config.json "source"):
- "builtin": trainbook's own model classes from a JSON config; no code from the bundle.
- "transformers": a transformers class rebuilt from the bundle's config.json by its Auto class;
  no code from the bundle (a config.json asking for remote code is refused by transformers).
- "file": the user's model code copied into the bundle's model_code/ folder (a model from
  tb.load_model). Importing it runs it, so it needs trust_remote_code=True.
- "import": a class named by module and name. The module must already be imported in this
  process (then nothing new runs), or the caller passes trust_remote_code=True, because
  importing a module the bundle names runs that module's top-level code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import BundleError
from .files import MODEL_CODE, MODEL_CONFIG

TRUST_HINT = ("HINT: load it with trust_remote_code=True only if you trust where this bundle came from "
              "(read its {what} first)")


def check_trust(model_config: dict, bundle: Path, trust_remote_code: bool) -> None:
    """Raise BundleError when rebuilding this model would run code the caller has not trusted."""
    if trust_remote_code:
        return
    source = model_config.get("source")
    if source == "file":
        code = model_config.get("file", MODEL_CODE)
        raise BundleError(f"{bundle}: the model is defined by code inside the bundle ({code}); loading it "
                          f"would run that code. {TRUST_HINT.format(what=code)}")
    if source == "import":
        module = model_config.get("module")
        if not isinstance(module, str) or module not in sys.modules:
            raise BundleError(f"{bundle / MODEL_CONFIG}: the model class is in module {module!r}, which is not "
                              f"imported in this process; importing a module the bundle names runs its code. "
                              f"HINT: import {module} yourself first, or pass trust_remote_code=True if you trust "
                              "this bundle")


def check_model_size(model_config: dict, bundle: Path) -> None:
    """A built-in or transformers model's config must not describe more numbers than its weights file holds.

    The model is built on the meta device (no memory) and its tensor sizes are compared with the
    tensors listed in model.safetensors, so a bundle cannot make the loader allocate far more
    memory than it shipped.
    """
    if model_config.get("source") not in ("builtin", "transformers"):
        return
    import math

    import torch

    from ..models.builtin import ModelConfig, build_from_config
    from .files import WEIGHTS
    from .model_io import stored_shapes

    try:
        with torch.device("meta"):
            if model_config["source"] == "builtin":
                model = build_from_config(ModelConfig(**model_config["model_config"]), seed=None)
            else:
                from ..models.hf import build_from_config as build_hf

                model = build_hf(model_config["auto_class"], bundle, model_config["class_name"])
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError, OSError) as e:
        kind = "built-in" if model_config["source"] == "builtin" else "transformers"
        raise BundleError(f"{bundle / MODEL_CONFIG}: not a valid {kind} model config "
                          f"({type(e).__name__}: {e})") from None
    state = {id(t): t for t in model.state_dict(keep_vars=True).values()}.values()  # tied tensors once
    needed = sum(t.numel() for t in state)
    stored = sum(math.prod(shape) for shape in stored_shapes(bundle / WEIGHTS).values())
    if needed > stored:
        raise BundleError(f"{bundle / MODEL_CONFIG}: describes a model of {needed:,} numbers but {WEIGHTS} "
                          f"holds {stored:,}; refusing to build it. HINT: re-export the bundle")
