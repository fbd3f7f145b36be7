"""The model adapter: any nn.Module as a function `batch -> logits`.

    forward = make_forward(model, spec); logits = forward(batch)

Inputs: a forward that names `input_ids` / `pixel_values` gets the input by keyword, others get
it positionally; `attention_mask` is passed when forward names it. When forward names `targets`
(nanoGPT, minGPT) or `labels` (transformers), targets are passed in that convention so the model
returns logits for every position (nanoGPT computes its head on the last position only without
targets); the model's own loss is ignored and trainbook's loss is computed from the logits:
- `targets`: next-token ids, already shifted (as nanoGPT's are). Positions with nothing to predict
  (padding, the last position) get token 0, a valid id, so the model's own cross-entropy never
  fails on a padded batch whatever its ignore_index (nanoGPT's is -1, PyTorch's default -100);
- `labels`: the batch labels as they are (unshifted, -100 on padding: transformers shifts itself).
For language modelling without labels in the batch (inference) they are derived from input_ids.
Outputs: a tensor, a dict or object with "logits", or a tuple searched for the logits (the first
tensor whose last dimension is the vocabulary / number of classes). Shapes are checked against
the input, and a mismatch names the convention the model seems to follow and how to adapt it.
"""

from __future__ import annotations

import inspect

import torch

from ..tasks import IGNORE_INDEX, TaskSpec

NO_TARGET = 0  # `targets` where there is nothing to predict: a valid id, so no ignore_index convention can fail


def make_forward(model: torch.nn.Module, spec: TaskSpec):
    """Adapt any model to `batch -> logits` (see the module docstring for the conventions)."""
    target = unwrap(model)
    try:
        params = inspect.signature(target.forward).parameters
    except (TypeError, ValueError):
        params = {}
    by_keyword = spec.input_key in params
    wants_mask = "attention_mask" in params
    targets_arg = next((name for name in ("targets", "labels") if name in params), None)
    expected = spec.vocab_size if spec.kind == "lm" else spec.num_classes
    name = type(target).__name__

    def forward(batch):
        x = batch[spec.input_key]
        kwargs = {}
        if wants_mask and "attention_mask" in batch:
            kwargs["attention_mask"] = batch["attention_mask"]
        if targets_arg is not None:
            targets = targets_for(targets_arg, batch, spec)
            if targets is not None:
                kwargs[targets_arg] = targets
        out = model(**{spec.input_key: x}, **kwargs) if by_keyword else model(x, **kwargs)
        logits = find_logits(out, expected, name, spec)
        if spec.kind == "lm" and logits.dim() == 2 and logits.shape[0] == x.shape[0] * x.shape[1]:
            logits = logits.view(x.shape[0], x.shape[1], -1)  # (batch * seq_len, vocab), as "Let's build GPT" returns
        check_shape(logits, x, spec, name, targets_arg)
        return logits
    return forward


def unwrap(model):
    """The user's module inside DDP (.module), torch.compile (._orig_mod) or the Trainer's compile fallback (.eager)."""
    if isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        return unwrap(model.module)
    if isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
        return unwrap(model._orig_mod)
    if isinstance(getattr(model, "eager", None), torch.nn.Module) and hasattr(model, "compiled"):
        return unwrap(model.eager)
    return model


def targets_for(convention: str, batch: dict, spec: TaskSpec):
    """What to pass as `targets` (nanoGPT: shifted, 0 where nothing is predicted) or `labels` (transformers: as they are)."""
    labels = batch.get(spec.label_key)
    if spec.kind != "lm":
        return labels
    if labels is None:  # inference: every real token is a target
        x = batch[spec.input_key]
        mask = batch.get("attention_mask")
        labels = x if mask is None else x.masked_fill(mask == 0, IGNORE_INDEX)
    if convention == "labels":
        return labels
    targets = torch.full_like(labels, NO_TARGET)
    targets[:, :-1] = labels[:, 1:]
    return targets.masked_fill(targets == IGNORE_INDEX, NO_TARGET)


def find_logits(out, expected: int, name: str, spec: TaskSpec) -> torch.Tensor:
    what = "vocab_size" if spec.kind == "lm" else "num_classes"
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) or (hasattr(out, "keys") and hasattr(out, "__getitem__")):
        if "logits" in out and isinstance(out["logits"], torch.Tensor):
            return out["logits"]
        raise TypeError(f"{name} returned a dict without a 'logits' tensor (keys: {sorted(map(str, out.keys()))}). "
                        "HINT: return the logits tensor, or a dict with 'logits'")
    if isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor) and item.dim() >= 2 and item.shape[-1] == expected:
                return item
        raise TypeError(f"{name} returned a tuple of ({', '.join(map(_describe, out))}); none is a logits tensor "
                        f"whose last dimension is the task's {what} ({expected}). HINT: return the logits (first, "
                        "or alone), or check the model's output size")
    raise TypeError(f"{name} returned {_describe(out)}; expected logits: a tensor, a dict or object with 'logits', "
                    "or a tuple holding the logits")


def check_shape(logits: torch.Tensor, x: torch.Tensor, spec: TaskSpec, name: str, targets_arg: str | None):
    """Raise a ValueError that names the convention a wrongly shaped output seems to follow."""
    shape, batch = tuple(logits.shape), x.shape[0]
    if spec.kind == "classification":
        if logits.dim() == 2 and shape[0] == batch:
            return
        hint = ("it returns one row per token: pool them (e.g. mean over the sequence) into (batch, num_classes)"
                if logits.dim() == 3 else "return (batch, num_classes) logits")
        raise ValueError(f"{name} returned logits of shape {shape} for inputs of shape {tuple(x.shape)}; "
                         f"classification needs (batch, num_classes). HINT: {hint}")
    length = x.shape[1]
    if logits.dim() == 3 and shape[:2] == (batch, length):
        if shape[-1] < spec.vocab_size:
            raise ValueError(f"{name} returned {shape[-1]} logits per position; the task has vocab_size "
                             f"{spec.vocab_size}. HINT: build the model with vocab_size >= {spec.vocab_size}")
        return
    if logits.dim() == 3 and shape[0] == batch and shape[1] == 1 and length > 1:
        convention = ("it seems to follow nanoGPT's convention: without targets, forward computes the head on the "
                      "last position only. ")
        convention += (f"trainbook passed `{targets_arg}` and it still returned one position. HINT: make forward "
                       f"return logits for every position when {targets_arg} is given" if targets_arg else
                       "HINT: add a `targets=None` argument to forward (trainbook then passes targets, nanoGPT-style) "
                       "or make forward return logits for every position")
    elif logits.dim() == 3 and shape[0] == batch and shape[1] == length - 1:
        convention = ("it seems to shift inside the model (predictions for positions 1..T-1 only), while trainbook's "
                      "loss does the shift itself. HINT: return logits for all positions, before any shift")
    else:
        convention = "HINT: return logits of shape (batch, seq_len, vocab_size), one row per input position"
    raise ValueError(f"{name} returned logits of shape {shape} for input_ids of shape {tuple(x.shape)}; language "
                     f"modelling needs (batch, seq_len, vocab_size) = ({batch}, {length}, {spec.vocab_size}): "
                     f"{convention}")


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"Tensor{list(value.shape)}"
    return "None" if value is None else type(value).__name__
