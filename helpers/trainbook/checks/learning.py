"""Checks that the model can learn: loss at init, gradient flow, overfitting one batch, LR range test.

    result = check_gradient_flow(probe, full=False)   # one backward on a real batch

Every check here trains or backpropagates through the user's model inside `probe.kept(...)`, so
weights, buffers, gradients and the train/eval mode are restored afterwards.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import TrainingConfig
from ..engine.loop import count_targets
from ..engine.optim import build_optimizer, set_lr
from .probe import unique_named_parameters
from .report import CheckResult

INITIAL_LOSS_WARN = 0.3    # |loss / ln(n) - 1| beyond this warns
INITIAL_LOSS_FAIL = 3.0    # loss beyond 3x (or below 1/3 of) ln(n) fails
GRAD_SPREAD_WARN = 1e3     # largest / smallest per-layer gradient norm (weight tensors) beyond this warns
GRAD_NORM_WARN = 100.0     # global gradient norm at init beyond this warns (the Trainer clips at 1.0)
OVERFIT_PASS = 0.1         # final / first loss on one batch at or below this passes
OVERFIT_FAIL = 0.5         # above this fails
OVERFIT_LR = 3e-3          # AdamW, as the Trainer builds it, on one batch


def _names(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def check_initial_loss(probe, full: bool) -> CheckResult:
    """The loss at init (train mode, as the Trainer's first step) should be near ln(n outputs).

    Uniform predictions over n classes (or n tokens) give ln(n); within +-30 % passes, beyond
    3x (or below a third) fails: the classic sign of a wrong output scale or a bad init.
    """
    n_batches = 8 if full else 3
    total, count, stds, n_out = 0.0, 0, [], None
    with probe.kept(train=True), torch.no_grad():
        for _ in range(n_batches):
            batch = probe.batch(16)
            logits = probe.logits(batch)
            n_out = probe.n_outputs(logits)
            loss = probe.loss(batch, logits)
            weight = max(1, count_targets(batch, probe.spec))
            total, count = total + float(loss) * weight, count + weight
            stds.append(float(logits.float().std()))
    loss, expected = total / count, math.log(n_out)
    ratio = loss / expected
    numbers = {"loss": loss, "expected": expected, "ratio": ratio, "logit_std": float(np.mean(stds))}
    what = f"initial loss {loss:.3g} is {ratio:.2f}x ln({n_out}) = {expected:.3g}"
    if not math.isfinite(loss):
        return CheckResult("initial_loss", "fail", numbers, f"{what}: not finite; see numerics")
    if ratio > 1 + INITIAL_LOSS_WARN:
        verdict = "fail" if ratio > INITIAL_LOSS_FAIL else "warn"
        return CheckResult("initial_loss", verdict, numbers,
                           f"{what}: outputs are too confident at init (logit std {numbers['logit_std']:.3g}); "
                           "HINT: initialise the output layer small (std 0.02, or zeros) and check for an extra scale")
    if ratio < 1 - INITIAL_LOSS_WARN:
        verdict = "fail" if ratio < 1 / INITIAL_LOSS_FAIL else "warn"
        return CheckResult("initial_loss", verdict, numbers,
                           f"{what}: lower than guessing at init; HINT: the model may see its targets "
                           "(causal mask, label shift) or the labels are trivially predictable")
    return CheckResult("initial_loss", "pass", numbers, f"{what} (within +-{INITIAL_LOSS_WARN:.0%})")


def check_gradient_flow(probe, full: bool) -> CheckResult:
    """One backward on a real batch: every trainable parameter gets a finite, non-zero gradient.

    A parameter without a gradient is outside the graph (unused, or behind .detach()/no_grad);
    those and non-finite gradients fail. Zero gradients, and per-layer gradient norms (weight
    tensors) spread over more than GRAD_SPREAD_WARN, warn (vanishing / exploding).
    """
    params = unique_named_parameters(probe.model)
    if not params:
        return CheckResult("gradient_flow", "fail", {"parameters": 0}, "the model has no trainable parameters")
    with probe.kept(train=True):
        for _, p in params:
            p.grad = None
        batch = probe.batch(16 if full else 8)
        loss = probe.loss(batch)
        if not loss.requires_grad:
            return CheckResult("gradient_flow", "fail", {"parameters": len(params)},
                               "the loss does not depend on any parameter (forward ran under no_grad or detached "
                               "its output); HINT: return logits that are computed from the parameters")
        loss.backward()
        missing = [n for n, p in params if p.grad is None]
        bad = [n for n, p in params if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        zero = [n for n, p in params if p.grad is not None and n not in bad and not bool(p.grad.any())]
        norms = {n: float(p.grad.detach().float().norm()) for n, p in params if p.grad is not None and n not in bad}
        layers, weights = _layer_norms(params, norms)
    total = math.sqrt(sum(v * v for v in norms.values()))
    weight_norms = {k: v for k, v in weights.items() if v > 0}
    spread = max(weight_norms.values()) / min(weight_norms.values()) if len(weight_norms) > 1 else 1.0
    numbers = {"parameters": len(params), "no_grad": len(missing), "non_finite": len(bad), "zero": len(zero),
               "grad_norm": total, "layer_spread": spread}
    details = {"layers": list(layers), "norms": list(layers.values()), "missing": missing, "non_finite": bad,
               "zero": zero}
    if missing or bad:
        parts = ([f"no gradient for {_names(missing)} (outside the graph: unused, or behind .detach()/no_grad)"]
                 if missing else []) + ([f"non-finite gradient in {_names(bad)}"] if bad else [])
        return CheckResult("gradient_flow", "fail", numbers, "; ".join(parts) + "; HINT: every parameter must "
                           "reach the loss; delete unused ones or set requires_grad=False", details)
    if zero:
        return CheckResult("gradient_flow", "warn", numbers, f"zero gradient for {_names(zero)}: a dead branch, or "
                           "a zero-initialised layer after it (fine if intended)", details)
    if spread > GRAD_SPREAD_WARN:
        low, high = min(weight_norms, key=weight_norms.get), max(weight_norms, key=weight_norms.get)
        return CheckResult("gradient_flow", "warn", numbers, f"per-layer gradient norms span {spread:.2g}x ({low} "
                           f"{weight_norms[low]:.2g} to {high} {weight_norms[high]:.2g}): vanishing/exploding; "
                           "HINT: add normalisation or residual connections, or fix the init scale", details)
    if total > GRAD_NORM_WARN:
        return CheckResult("gradient_flow", "warn", numbers, f"global gradient norm {total:.3g} at init: exploding; "
                           "HINT: check the init scale (the Trainer clips at max_grad_norm)", details)
    return CheckResult("gradient_flow", "pass", numbers, f"all {len(params)} parameter tensors get finite non-zero "
                       f"gradients; layer norms within {spread:.3g}x", details)


def _layer_norms(params, norms: dict) -> tuple[dict, dict]:
    """Gradient norm per module (all its tensors), and per module of its weight tensors (dim >= 2)."""
    layers, weights = {}, {}
    for name, p in params:
        layer = name.rpartition(".")[0] or name
        layers[layer] = layers.get(layer, 0.0) + norms.get(name, 0.0) ** 2
        if p.dim() >= 2 and name in norms:
            weights[layer] = weights.get(layer, 0.0) + norms[name] ** 2
    return {k: math.sqrt(v) for k, v in layers.items()}, {k: math.sqrt(v) for k, v in weights.items()}


def _train_steps(probe, batches, lrs, stop_below: float | None = None, diverge: float | None = None):
    """AdamW steps (the Trainer's optimizer, clipping at 1.0); yields the loss of each step."""
    cfg = TrainingConfig(learning_rate=float(lrs[0]), weight_decay=0.0)
    optimizer = build_optimizer(probe.model, cfg, probe.device)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    losses = []
    for lr, batch in zip(lrs, batches):
        set_lr(optimizer, float(lr))
        loss = probe.loss(batch)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]) or (stop_below is not None and losses[-1] <= stop_below) \
                or (diverge is not None and diverge(losses)):
            break
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return losses


def check_overfit_one_batch(probe, full: bool) -> CheckResult:
    """Train on one small batch: the loss must fall to OVERFIT_PASS of its start within the budget.

    The standard "can it learn at all" check: a model that cannot memorise 4 examples has a bug
    (a broken loss, a detached output, a frozen or disconnected layer).
    """
    steps = 150 if full else 60
    length = min(probe.max_len, 32) if probe.spec.modality == "text" else None
    with probe.kept(train=True):
        batch = probe.batch(4, length)
        first = float(probe.loss(batch).detach())
        losses = _train_steps(probe, [batch] * steps, [OVERFIT_LR] * steps, stop_below=first * OVERFIT_PASS)
    final = losses[-1]
    ratio = final / first if first > 0 else float("nan")
    numbers = {"first": first, "final": final, "ratio": ratio, "steps": len(losses) - 1, "lr": OVERFIT_LR}
    details = {"losses": losses}
    if not math.isfinite(final):
        return CheckResult("overfit_one_batch", "fail", numbers, f"the loss became {final} after {len(losses) - 1} "
                           "steps on one batch; HINT: see numerics and initial_loss", details)
    if ratio <= OVERFIT_PASS:
        return CheckResult("overfit_one_batch", "pass", numbers, f"memorised one batch of 4: loss {first:.3g} -> "
                           f"{final:.3g} in {len(losses) - 1} steps", details)
    verdict = "fail" if ratio > OVERFIT_FAIL else "warn"
    return CheckResult("overfit_one_batch", verdict, numbers, f"after {steps} steps the loss on one batch is still "
                       f"{ratio:.0%} of its start; HINT: a model that cannot memorise 4 examples has a bug "
                       "(detached output, frozen layers, wrong loss) or is too small / too regularised", details)


def check_lr_range(probe, full: bool) -> CheckResult:
    """Learning-rate range test (full level): raise the LR geometrically from 1e-6 to 1 over
    training batches, stop when the smoothed loss exceeds 4x its minimum, and suggest a tenth of
    the LR at the minimum (a safe peak LR for AdamW with warmup)."""
    if not full:
        return CheckResult("lr_range", "skip", {}, "full level only (level='full' suggests a learning rate)")
    steps = 200
    lrs = np.geomspace(1e-6, 1.0, steps)
    smooth: list[float] = []

    def diverged(losses):
        avg = losses[-1] if not smooth else 0.9 * smooth[-1] + 0.1 * losses[-1]
        smooth.append(avg)
        return len(smooth) > 10 and avg > 4 * min(smooth)

    with probe.kept(train=True):
        losses = _train_steps(probe, probe.batches(16), lrs, diverge=diverged)
    n = len(losses)
    tried = lrs[:n].tolist()
    details = {"lrs": tried, "losses": losses, "smoothed": smooth[:n]}
    finite = [(s, lr) for s, lr in zip(smooth, tried) if math.isfinite(s)]
    if len(finite) < 10:
        return CheckResult("lr_range", "fail", {"steps": n}, f"the loss was not finite within {n} steps from lr 1e-6; "
                           "HINT: see numerics and initial_loss", details)
    best, lr_min = min(finite)
    start = finite[min(4, len(finite) - 1)][0]
    suggested = float(lr_min / 10)
    numbers = {"suggested_lr": suggested, "lr_at_min": float(lr_min), "min_loss": best, "start_loss": start,
               "steps": n, "stopped_at_lr": float(tried[-1])}
    details["suggested_lr"] = suggested
    if best > 0.9 * start:
        return CheckResult("lr_range", "warn", numbers, f"no learning rate in [1e-6, {tried[-1]:.2g}] lowered the loss "
                           f"by 10 % ({start:.3g} -> {best:.3g}); the suggestion {suggested:.2g} is a guess; "
                           "HINT: see overfit_one_batch", details)
    return CheckResult("lr_range", "pass", numbers, f"loss lowest at lr {lr_min:.2g}: train with learning_rate "
                       f"{suggested:.2g} (a tenth of it)", details)
