"""Trainer overhead over a hand-written PyTorch loop, measured side by side.

    python benchmarks/bench_overhead.py [--rounds 8] [--steps 300]

(a) micro GPT (1 layer, d_model 16, context 64, batch 12): Trainer - plain loop, ms per step,
    Trainer with its progress bar and per-step JSONL logging on, checkpoints only at the end.
(b) built-in tiny GPT: step-time ratio Trainer / plain loop, and whether the final weights are
    bit-identical in a deterministic no-extras comparison (constant lr, no clipping, no dropout).
(c) `import trainbook` on top of `import torch`, in fresh interpreters.
Rounds alternate A and B; medians with min-max are reported.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

import trainbook as tb
from trainbook.engine.optim import lr_multiplier, param_groups
from trainbook.models import ModelConfig, build_from_config


def micro_gpt():
    return build_from_config(ModelConfig("gpt", vocab_size=256, max_seq_len=64, n_layer=1, n_head=2, n_embd=16,
                                         dropout=0.0), seed=0)


def tiny_gpt():
    return tb.build_model(tb.TaskSpec.preset("lm"), "tiny", dropout=0.0, seed=0)


def plain_loop(model, data, cfg, spec):
    """What a user writes by hand: same data order, loss, optimizer, schedule and clipping."""
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.learning_rate, betas=(0.9, 0.95), eps=1e-8)
    collate = tb.collator_for(spec)
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    total, step = steps_per_epoch * cfg.epochs, 0
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.seed + epoch)).tolist()
        for i in range(0, len(order), cfg.batch_size):
            for group in opt.param_groups:
                group["lr"] = cfg.learning_rate * lr_multiplier(step, total, cfg)
            batch = collate([data[j] for j in order[i:i + cfg.batch_size]])
            logits = model(batch["input_ids"])
            targets = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1),
                                                     ignore_index=-100, reduction="sum") / (targets != -100).sum()
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
    return step


def trainer_run(model, data, cfg, spec):
    return tb.Trainer(model, training_config=cfg, task_spec=spec).train(data).total_steps


def _config(out, batch, extras=True, **kw):
    base = dict(output_dir=out, run_name=f"bench-{time.perf_counter_ns()}", epochs=1, batch_size=batch, learning_rate=1e-3,
                warmup_ratio=0.1, wandb_mode="disabled", resume="never", save_every_n_epochs=0, log_every_n_steps=10,
                progress_bar=extras, seed=0, num_workers=0)  # fetch in the loop's thread, like the plain loop
    return tb.TrainingConfig(**{**base, **kw})


def time_pair(make_model, data, cfg, spec, rounds):
    """Alternate plain loop and Trainer (order flipped every round); returns per-step ms lists.

    The Trainer's progress bar and summary lines are written to os.devnull, not a terminal.
    """
    plain, trainer = [], []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        plain_loop(make_model(), data, cfg, spec)  # warm-up of both paths, not timed
        trainer_run(make_model(), data, cfg, spec)
        for r in range(rounds):
            pairs = (("plain", plain_loop, plain), ("trainer", trainer_run, trainer))
            for name, fn, out in pairs[:: 1 if r % 2 == 0 else -1]:
                model = make_model()
                t0 = time.perf_counter()
                steps = fn(model, data, cfg, spec)
                out.append((time.perf_counter() - t0) * 1000 / steps)
    return plain, trainer


def fmt(values, unit=""):
    return f"{statistics.median(values):.3f}{unit} (min {min(values):.3f}, max {max(values):.3f})"


def bench_micro(rounds, steps, out):
    """One intra-op thread on both sides: at this size extra threads only add scheduling noise."""
    spec = tb.TaskSpec.preset("lm").replace(max_seq_len=64)
    data = tb.load_task_data("lm", limit=12 * steps, spec=spec).train
    cfg = _config(out, 12)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain, trainer = time_pair(micro_gpt, data, cfg, spec, rounds)
    finally:
        torch.set_num_threads(threads)
    diffs = [t - p for p, t in zip(plain, trainer)]
    return {"params": tb.count_parameters(micro_gpt()), "plain_ms": plain, "trainer_ms": trainer, "overhead_ms": diffs}


def bench_tiny(rounds, steps, out):
    spec = tb.TaskSpec.preset("lm")
    data = tb.load_task_data("lm", limit=16 * steps, spec=spec).train
    cfg = _config(out, 16, max_grad_norm=1.0)
    plain, trainer = time_pair(tiny_gpt, data, cfg, spec, rounds)
    ratios = [t / p for p, t in zip(plain, trainer)]
    # deterministic no-extras comparison: weights must be bit-identical
    exact = _config(out, 16, extras=False, lr_schedule="constant", warmup_ratio=0.0, max_grad_norm=0.0)
    a, b = tiny_gpt(), tiny_gpt()
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        plain_loop(a, data[: 16 * 20], exact, spec)
        trainer_run(b, data[: 16 * 20], exact, spec)
    identical = all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    return {"params": tb.count_parameters(tiny_gpt()), "plain_ms": plain, "trainer_ms": trainer, "ratio": ratios,
            "bit_identical": identical}


def bench_import(rounds):
    def run(code):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0
    torch_only, with_tb, with_names = [], [], []
    for _ in range(rounds):
        torch_only.append(run("import torch"))
        with_tb.append(run("import torch, trainbook"))
        with_names.append(run("import torch, trainbook as tb; tb.Trainer, tb.TrainingConfig, tb.load_task_data, tb.build_model"))
    return {"torch_s": torch_only, "trainbook_extra_s": [b - a for a, b in zip(torch_only, with_tb)],
            "trainbook_names_extra_s": [b - a for a, b in zip(torch_only, with_names)]}


def main(rounds: int = 12, steps: int = 300) -> dict:
    with tempfile.TemporaryDirectory() as out:
        micro = bench_micro(rounds, steps, out)
        tiny = bench_tiny(max(6, rounds // 2 + 2), max(40, steps // 5), out)
    imports = bench_import(rounds)
    print(f"(a) micro GPT ({micro['params']:,} params), {rounds} rounds x {steps} steps, 1 thread")
    print(f"    plain loop      {fmt(micro['plain_ms'], ' ms/step')}")
    print(f"    Trainer         {fmt(micro['trainer_ms'], ' ms/step')}")
    print(f"    overhead        {fmt(micro['overhead_ms'], ' ms/step')}   target <= 0.3")
    print(f"(b) tiny GPT ({tiny['params']:,} params)")
    print(f"    plain loop      {fmt(tiny['plain_ms'], ' ms/step')}")
    print(f"    Trainer         {fmt(tiny['trainer_ms'], ' ms/step')}")
    print(f"    ratio           {fmt(tiny['ratio'])}")
    print(f"    bit-identical weights (no extras): {tiny['bit_identical']}")
    print(f"(c) import torch  {fmt(imports['torch_s'], ' s')}")
    print(f"    + trainbook   {fmt(imports['trainbook_extra_s'], ' s')}   target <= 0.3")
    print(f"    + core names  {fmt(imports['trainbook_names_extra_s'], ' s')}")
    return {"micro": micro, "tiny": tiny, "imports": imports}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=300)
    a = p.parse_args()
    main(a.rounds, a.steps)
