"""The model adapter: any nn.Module as a function `batch -> logits`.

    forward = make_forward(model, spec); logits = forward(batch)
"""

from __future__ import annotations

import inspect

import torch

from ..tasks import TaskSpec


def make_forward(model: torch.nn.Module, spec: TaskSpec):
    """Adapt any model to `batch -> logits`.

    Models whose forward names `input_ids`/`pixel_values` get those (and `attention_mask` when
    accepted) by keyword; others get the input tensor positionally. Outputs may be a tensor, a
    tuple whose first element is the logits, or an object with `.logits`.
    """
    target = model.module if hasattr(model, "module") else getattr(model, "_orig_mod", model)
    try:
        params = inspect.signature(target.forward).parameters
    except (TypeError, ValueError):
        params = {}
    by_keyword = spec.input_key in params
    wants_mask = "attention_mask" in params

    def forward(batch):
        x = batch[spec.input_key]
        if by_keyword:
            kwargs = {spec.input_key: x}
            if wants_mask and "attention_mask" in batch:
                kwargs["attention_mask"] = batch["attention_mask"]
            out = model(**kwargs)
        else:
            out = model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        elif not isinstance(out, torch.Tensor) and hasattr(out, "logits"):
            out = out.logits
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"model output must be logits, a tuple starting with logits, or an object with "
                            f".logits; got {type(out).__name__}")
        return out
    return forward
