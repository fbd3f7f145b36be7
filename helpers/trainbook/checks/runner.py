"""check_model: run the model testing lab's checks on one model and collect a ModelReport.

    report = check_model(model, spec, data=data, level="quick"); print(report)
"""

from __future__ import annotations

import time
import traceback

import torch

from ..env import resolve_device
from ..models import count_parameters
from ..tasks import TaskSpec
from .attention import check_attention
from .learning import check_gradient_flow, check_initial_loss, check_lr_range, check_overfit_one_batch
from .numerics import check_noise_robustness, check_numerics
from .probe import Probe
from .report import CheckResult, ModelReport
from .shapes import check_causal_mask, check_shapes
from .speed import check_memory_and_speed, device_name

CHECKS = {  # name -> check(probe, full) -> CheckResult, in the order they run
    "shapes": check_shapes,
    "causal_mask": check_causal_mask,
    "initial_loss": check_initial_loss,
    "gradient_flow": check_gradient_flow,
    "numerics": check_numerics,
    "overfit_one_batch": check_overfit_one_batch,
    "lr_range": check_lr_range,
    "memory_and_speed": check_memory_and_speed,
    "attention": check_attention,
    "noise_robustness": check_noise_robustness,
}
LEVELS = ("quick", "full")


def check_model(model: torch.nn.Module, spec, data=None, level: str = "quick", seed: int = 0,
                device: str = "auto", checks=None, verbose: bool = False) -> ModelReport:
    """Check a model before training it: every check gives pass / warn / fail / skip, the numbers
    it measured and a one-line hint.

    The model is seen as the Trainer sees it (`models.make_forward`, the Trainer's loss and
    collator); it is moved to `device`, and its weights, buffers, gradients and train/eval mode
    are as before when this returns. The global RNG state is left untouched. A check that raises
    is reported as a fail with the error; the other checks still run.

    Args:
        model: any nn.Module the Trainer accepts.
        spec: the TaskSpec (or a built-in task name: "lm", "text-cls", "vision-cls").
        data: a TaskData (its train split) or a dataset of examples; None uses random inputs
            (the loss checks are then about random labels).
        level: "quick" (seconds on a CPU; no lr_range) or "full" (longer runs, the LR range test).
        seed: seeds the inputs the checks draw. device: "auto" (CUDA when there is one), "cpu", "cuda".
        checks: names of the checks to run (default: all of CHECKS).
        verbose: print one line per check as it finishes.
    Returns:
        a ModelReport.
    Raises:
        ValueError: unknown level or check name, or a spec that is not a TaskSpec / task name.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(map(repr, LEVELS))}; got {level!r}")
    spec = TaskSpec.preset(spec) if isinstance(spec, str) else spec
    if not isinstance(spec, TaskSpec):
        raise ValueError(f"spec must be a TaskSpec or a task name; got {type(spec).__name__}. "
                         "HINT: pass data.spec or tb.TaskSpec.preset('lm')")
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(map(repr, unknown))}; choose from {', '.join(CHECKS)}")
    dev = resolve_device(device)
    model.to(dev)
    results = []
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        probe = Probe(model, spec, data=data, device=dev, seed=seed)
        for name in names:
            t0 = time.perf_counter()
            result = run_check(name, probe, level == "full")
            result.seconds = time.perf_counter() - t0
            results.append(result)
            if verbose:
                print(f"{name}: {result.verdict} ({result.seconds:.1f}s) {result.hint}")
    return ModelReport(results, level, device_name(dev), type(model).__name__, count_parameters(model))


def run_check(name: str, probe: Probe, full: bool) -> CheckResult:
    """One check; an exception it raises becomes a fail naming the error (not re-raised, so the
    notebook goes on to the next check and states the overall verdict at the end)."""
    try:
        return CHECKS[name](probe, full)
    except Exception as e:
        message = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        return CheckResult(name, "fail", {"error": type(e).__name__},
                           f"the check raised {type(e).__name__}: {message}; HINT: run the model on one batch "
                           "by hand, or read report[name].details['traceback']",
                           details={"traceback": traceback.format_exc()})
