"""Numerical checks: finite outputs on random and extreme inputs, low precision vs fp32, and
prediction agreement under small input noise.

    result = check_numerics(probe, full=False); result = check_noise_robustness(probe, full=False)
"""

from __future__ import annotations

import torch

from ..engine.loop import autocast_for
from .report import CheckResult

LOW_PRECISION_TOLERANCE = 0.05  # max |low - fp32| / max |fp32| over the logits
NOISE_AGREEMENT_WARN = 0.8      # prediction agreement under noise below this warns (never fails)
TOKEN_SWAP_RATE = 0.05          # text: share of tokens replaced by random ones
PIXEL_NOISE = 0.05              # vision: Gaussian noise std in pixel units ([0, 1] images)


def low_precision(device: torch.device) -> str:
    """bf16, except on CUDA without bf16 support, where the Trainer uses fp16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return "bf16"


def extreme_batches(probe, n: int = 4) -> dict:
    """Named batches at the edges of the input range: text at max_seq_len, vision at the spec's size."""
    spec = probe.spec
    random = probe.batch(n, real=False)
    if spec.modality == "text":
        out = {"random": random}
        for name, token in (("token 0", 0), (f"token {spec.vocab_size - 1}", spec.vocab_size - 1)):
            out[name] = {**random, "input_ids": torch.full_like(random["input_ids"], token)}
        return out
    shape = (n, spec.channels, spec.image_size, spec.image_size)
    black = probe.collate([{"pixel_values": torch.zeros(shape[1:]), "labels": 0}] * n)
    white = probe.collate([{"pixel_values": torch.ones(shape[1:]), "labels": 0}] * n)
    loud = {**random, "pixel_values": torch.randn(shape, generator=probe.generator) * 10}
    return {"random": random, "black": black, "white": white, "noise std 10": loud}


def check_numerics(probe, full: bool) -> CheckResult:
    """No NaN/inf for random and extreme inputs (fp32); low precision (bf16 autocast, fp16 on CUDA
    without bf16) agrees with fp32 within LOW_PRECISION_TOLERANCE of the largest logit."""
    precision = low_precision(probe.device)
    bad, largest = [], 0.0
    with probe.kept(train=False), torch.no_grad():
        for name, batch in extreme_batches(probe).items():
            out = probe.logits(batch).float()
            if not bool(torch.isfinite(out).all()):
                bad.append(name)
            else:
                largest = max(largest, float(out.abs().max()))
        batch = probe.batch(8)
        ref = probe.logits(batch).float()
        try:
            with autocast_for(precision, probe.device):
                low = probe.logits(batch).float()
        except Exception as e:  # no autocast for this device / op: reported, the fp32 verdict stands
            low, low_error = None, f"{type(e).__name__}: {str(e).strip()[:100]}"
    numbers = {"max_abs_logit": largest, "precision": precision, "tolerance": LOW_PRECISION_TOLERANCE}
    if bad:
        return CheckResult("numerics", "fail", numbers, f"NaN/inf logits in fp32 for inputs: {', '.join(bad)}; "
                           "HINT: look for log/sqrt/division of values that can reach 0, or unbounded activations")
    if low is None:
        return CheckResult("numerics", "warn", numbers, f"{precision} autocast failed on {probe.device.type} "
                           f"({low_error}); train with precision='fp32'")
    rel = float((low - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
    agree = float((low.argmax(-1) == ref.argmax(-1)).float().mean())
    numbers.update({f"{precision}_rel_diff": rel, f"{precision}_argmax_agree": agree})
    if not bool(torch.isfinite(low).all()):
        return CheckResult("numerics", "fail", numbers, f"{precision} autocast gives NaN/inf where fp32 does not; "
                           "HINT: keep that op in fp32, or train with precision='fp32'")
    if rel > LOW_PRECISION_TOLERANCE:
        return CheckResult("numerics", "warn", numbers, f"{precision} logits differ from fp32 by {rel:.2g} of the "
                           f"largest logit (tolerance {LOW_PRECISION_TOLERANCE:g}); HINT: find the op that loses "
                           "precision, or train with precision='fp32'")
    return CheckResult("numerics", "pass", numbers, f"finite on random and extreme inputs; {precision} within "
                       f"{rel:.2g} of fp32 (tolerance {LOW_PRECISION_TOLERANCE:g})")


def check_noise_robustness(probe, full: bool) -> CheckResult:
    """Prediction agreement under small input noise (warn-only): text swaps TOKEN_SWAP_RATE of
    the tokens (LM: agreement at the other positions), vision adds PIXEL_NOISE Gaussian noise."""
    spec, g = probe.spec, probe.generator
    with probe.kept(train=False), torch.no_grad():
        batch = probe.batch(32 if full else 16)
        ref = probe.logits(batch).argmax(-1).cpu()
        noisy = dict(batch)
        if spec.modality == "text":
            ids, real = batch["input_ids"], batch["attention_mask"].bool()
            swap = (torch.rand(ids.shape, generator=g) < TOKEN_SWAP_RATE) & real
            noisy["input_ids"] = torch.where(swap, torch.randint(0, spec.vocab_size, ids.shape, generator=g), ids)
            what = f"{TOKEN_SWAP_RATE:.0%} of tokens swapped"
        else:
            std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)
            noise = torch.randn(batch["pixel_values"].shape, generator=g) * PIXEL_NOISE / std
            noisy["pixel_values"] = batch["pixel_values"] + noise
            what = f"pixel noise std {PIXEL_NOISE:g}"
        pred = probe.logits(noisy).argmax(-1).cpu()
    if spec.kind == "lm":
        keep = real & ~swap
        agree = float((pred == ref)[keep].float().mean())
    else:
        agree = float((pred == ref).float().mean())
    numbers = {"agreement": agree, "perturbation": what}
    if agree < NOISE_AGREEMENT_WARN:
        return CheckResult("noise_robustness", "warn", numbers, f"only {agree:.0%} of predictions survive {what}; "
                           "an untrained model may be fragile, a trained one should not be: consider augmentation")
    return CheckResult("noise_robustness", "pass", numbers, f"{agree:.0%} of predictions unchanged under {what}")
