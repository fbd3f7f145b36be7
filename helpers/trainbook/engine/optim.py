"""Optimizer and learning-rate schedule factories.

    opt = build_optimizer(model, cfg, device); lr = lr_at(step, total_steps, cfg)
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

_NO_DECAY_MODULES = (nn.Embedding, nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d,
                     nn.BatchNorm3d, nn.RMSNorm if hasattr(nn, "RMSNorm") else nn.LayerNorm)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weight decay on weight matrices, none on biases, norms and embeddings."""
    no_decay = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, _NO_DECAY_MODULES) or name.endswith("bias") or p.dim() < 2:
                no_decay.add(id(p))
    decay_params, plain_params, seen = [], [], set()
    for p in model.parameters():  # deduplicates tied weights
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (plain_params if id(p) in no_decay else decay_params).append(p)
    return [{"params": decay_params, "weight_decay": weight_decay},
            {"params": plain_params, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (fused on CUDA) or SGD with momentum 0.9, over the decay/no-decay groups."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=0.9)
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.95), eps=1e-8,
                             **({"fused": True} if fused else {}))


def warmup_steps_for(total_steps: int, cfg) -> int:
    if cfg.warmup_steps:
        return cfg.warmup_steps
    return int(round(cfg.warmup_ratio * total_steps))


def lr_multiplier(step: int, total_steps: int, cfg) -> float:
    """Multiplier of learning_rate for optimizer step `step` (0-based).

    Linear warmup from 1/warmup to 1, then constant / linear / cosine decay to min_lr_ratio
    at the last step.
    """
    warmup = warmup_steps_for(total_steps, cfg)
    if step < warmup:
        return (step + 1) / warmup
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup - 1))
    floor = cfg.min_lr_ratio
    if cfg.lr_schedule == "linear":
        return 1.0 - (1.0 - floor) * progress
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float):
    for group in optimizer.param_groups:
        group["lr"] = lr
