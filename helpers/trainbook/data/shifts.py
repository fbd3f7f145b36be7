"""Documented distribution shifts for the "current" split of the drift story.

    kind, strength = parse_shift("noise:0.2", spec); shifted = apply_shift(examples, spec, kind, strength)

text: "noise" (replace a fraction of bytes with random bytes, default 0.15), "truncate" (keep a
fraction of each window, default 0.3), "packages" (lm: windows of a package never seen in
training; text-cls: a class prior shift; built by trainbook.data.builtin). vision: "brightness"
(add a constant, default 0.3), "noise" (Gaussian std, default 0.3), "rotation" (degrees, default 30).
"""

from __future__ import annotations

import math

import torch

from ..tasks import TaskSpec
from .types import DataError

SHIFT_DEFAULTS = {
    "text": {"noise": 0.15, "truncate": 0.3, "packages": 0.7},
    "vision": {"brightness": 0.3, "noise": 0.3, "rotation": 30.0},
}


def parse_shift(shift: str | None, spec: TaskSpec) -> tuple[str, float]:
    """'noise:0.2' -> ('noise', 0.2); None/'none' -> ('none', 0.0)."""
    if shift in (None, "", "none"):
        return "none", 0.0
    kind, _, value = str(shift).partition(":")
    options = SHIFT_DEFAULTS[spec.modality]
    if kind not in options:
        raise DataError(f"shift must be 'none' or one of {sorted(options)} for {spec.modality} "
                        f"tasks (optionally 'kind:strength'); got {shift!r}")
    try:
        strength = float(value) if value else options[kind]
    except ValueError:
        raise DataError(f"shift strength must be a number, as in 'noise:0.2'; got {shift!r}") from None
    return kind, strength


def apply_shift(examples: list[dict], spec: TaskSpec, kind: str, strength: float, seed: int = 0) -> list[dict]:
    """Return shifted copies of examples (see the module docstring for the kinds)."""
    g = torch.Generator().manual_seed(seed + 1)
    out = []
    for e in examples:
        e = dict(e)
        if spec.modality == "text":
            ids = e["input_ids"]
            if kind == "noise":
                mask = torch.rand(len(ids), generator=g) < strength
                ids = torch.where(mask, torch.randint(0, spec.vocab_size, ids.shape, generator=g), ids)
            elif kind == "truncate":
                kept = ids[: max(2, int(len(ids) * strength))]
                if "n_bytes" in e:  # subword windows: the targets' bytes shrink in proportion
                    e["n_bytes"] = round(e["n_bytes"] * (len(kept) - 1) / max(1, len(ids) - 1))
                ids = kept
            e["input_ids"] = ids
        else:
            x = e["pixel_values"]
            if kind == "brightness":
                x = x + strength
            elif kind == "noise":
                x = x + strength * torch.randn(x.shape, generator=g)
            elif kind == "rotation":
                x = _rotate(x, strength)
            e["pixel_values"] = x.clamp(0.0, 1.0)
        out.append(e)
    return out


def _rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    theta = math.radians(degrees)
    rot = torch.tensor([[math.cos(theta), -math.sin(theta), 0.0],
                        [math.sin(theta), math.cos(theta), 0.0]]).unsqueeze(0)
    grid = torch.nn.functional.affine_grid(rot, [1, *x.shape], align_corners=False)
    return torch.nn.functional.grid_sample(x.unsqueeze(0), grid, align_corners=False).squeeze(0)
