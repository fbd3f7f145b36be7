"""CPU training throughput of the base GPT (>= 10M parameters) as a share of the machine's
measured fp32 matmul peak.

    python benchmarks/bench_throughput.py [--rounds 6]

Model FLOPs per token = 6 * parameters + 12 * n_layer * n_embd * context (forward + backward,
attention included), the usual MFU accounting. The peak is the best of square fp32 matmuls.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import trainbook as tb
from trainbook.engine.loop import loss_sum
from trainbook.engine.optim import param_groups


def matmul_peak_gflops(n: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def train_step_gflops(model, spec, batch: int = 8, steps: int = 4) -> float:
    cfg = model.config
    params = tb.count_parameters(model)
    flops_per_token = 6 * params + 12 * cfg.n_layer * cfg.n_embd * cfg.max_seq_len
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4)
    x = torch.randint(0, 256, (batch, cfg.max_seq_len))
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        loss = loss_sum(model(x), x, spec) / x[:, 1:].numel()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return flops_per_token * batch * cfg.max_seq_len * steps / (time.perf_counter() - t0) / 1e9


def main(rounds: int = 6) -> dict:
    spec = tb.TaskSpec.preset("lm")
    model = tb.build_model(spec, "base", dropout=0.0)
    peaks, trains = [], []
    for _ in range(rounds):
        peaks.append(matmul_peak_gflops())
        trains.append(train_step_gflops(model, spec))
    shares = [t / p for t, p in zip(trains, peaks)]
    print(f"base GPT {tb.count_parameters(model):,} params, {torch.get_num_threads()} threads, {rounds} rounds")
    print(f"    fp32 matmul peak  {statistics.median(peaks):.1f} GFLOP/s (min {min(peaks):.1f}, max {max(peaks):.1f})")
    print(f"    training          {statistics.median(trains):.1f} GFLOP/s (min {min(trains):.1f}, max {max(trains):.1f})")
    print(f"    share of peak     {statistics.median(shares):.0%} (min {min(shares):.0%}, max {max(shares):.0%})   target >= 60%")
    return {"peak_gflops": peaks, "train_gflops": trains, "share": shares}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=6)
    main(p.parse_args().rounds)
