"""One optimizer step over an accumulation window.

    runner = StepRunner(model, optimizer, spec, precision, device, max_grad_norm)
    out = runner.step(micro_batches, step=12)   # out.loss, out.grad_norm (pre-clip)

The loss of every micro-batch is a sum over its targets divided by the number of targets in
the whole window (all ranks under DDP), so accumulating k micro-batches of size b gives the
gradient of one batch of size k*b.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import torch
import torch.nn.functional as F

from ..models.adapter import make_forward
from ..tasks import IGNORE_INDEX, TaskSpec


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf; training stopped before the optimizer applied it."""

    def __init__(self, step: int, value: float, checkpoint=None):
        self.step, self.value = step, value
        where = f"; the last good checkpoint is {checkpoint}" if checkpoint else ""
        super().__init__(f"non-finite loss ({value}) at optimizer step {step}; training stopped "
                         f"without applying it{where}. HINT: lower learning_rate, keep max_grad_norm > 0, "
                         "or use precision='bf16'/'fp32'.")


@dataclasses.dataclass
class StepOutput:
    loss: float          # mean loss per target over the window
    grad_norm: float     # global gradient norm before clipping
    n_targets: int       # targets (tokens or samples) in the window, this rank
    n_samples: int       # sequences/images in the window, this rank
    n_tokens: int        # non-padding input tokens in the window (text), this rank


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto -> bf16 on bf16-capable CUDA, fp16 on older CUDA, fp32 elsewhere."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision='fp16' needs a CUDA device; this run is on {device}. "
                         "HINT: use precision='bf16' (CPU autocast) or 'fp32'.")
    return precision


def autocast_for(precision: str, device: torch.device):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def count_targets(batch: dict, spec: TaskSpec) -> int:
    labels = batch[spec.label_key]
    if spec.kind == "lm":
        return int((labels[:, 1:] != IGNORE_INDEX).sum())
    return int((labels != IGNORE_INDEX).sum())


def loss_sum(logits: torch.Tensor, labels: torch.Tensor, spec: TaskSpec) -> torch.Tensor:
    """Sum of cross-entropy over all targets (LM: next-token, shifted here)."""
    if spec.kind == "lm":
        logits, labels = logits[:, :-1], labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")


def to_device(batch: dict, device: torch.device) -> dict:
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class StepRunner:
    def __init__(self, model, optimizer, spec: TaskSpec, precision: str, device: torch.device,
                 max_grad_norm: float, world_size: int = 1, all_reduce=None):
        self.model, self.optimizer, self.spec, self.device = model, optimizer, spec, device
        self.precision, self.max_grad_norm = precision, max_grad_norm
        self.world_size, self.all_reduce = world_size, all_reduce
        self.forward = make_forward(model, spec)
        self.scaler = torch.amp.GradScaler(device.type, enabled=(precision == "fp16"))
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def step(self, micro_batches: list[dict], step: int) -> StepOutput:
        """Forward/backward every micro-batch, clip, and apply one optimizer step."""
        # counts come from the CPU batches, so they cost no device sync
        n_targets = sum(count_targets(b, self.spec) for b in micro_batches)
        n_samples = sum(len(b[self.spec.label_key]) for b in micro_batches)
        n_tokens = sum(int(b["attention_mask"].sum()) for b in micro_batches) if "attention_mask" in micro_batches[0] else 0
        batches = [to_device(b, self.device) for b in micro_batches]
        global_targets = int(self.all_reduce(n_targets)) if self.all_reduce else n_targets
        scale = self.world_size / max(1, global_targets)  # DDP averages gradients over ranks
        total = torch.zeros((), device=self.device)
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if last or not hasattr(self.model, "no_sync") else self.model.no_sync()
            with sync:
                with autocast_for(self.precision, self.device):
                    logits = self.forward(batch)
                loss = loss_sum(logits, batch[self.spec.label_key], self.spec) * scale
                self.scaler.scale(loss).backward()
            total += loss.detach()
        loss_value = (self.all_reduce(total.item()) if self.all_reduce else total.item()) / self.world_size
        if not math.isfinite(loss_value):  # all ranks see the same summed value and stop together
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(step, loss_value)
        self.scaler.unscale_(self.optimizer)
        if self.max_grad_norm > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None]) \
                if hasattr(torch.nn.utils, "get_total_norm") else _total_norm(self.params)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return StepOutput(loss_value, float(grad_norm), n_targets, n_samples, n_tokens)


def _total_norm(params) -> torch.Tensor:
    norms = [p.grad.detach().norm(2) for p in params if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
