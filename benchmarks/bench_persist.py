"""What persisting costs per checkpoint, and whether training waits for the copies.

    python benchmarks/bench_persist.py [--rounds 6] [--sizes tiny base]

The same training run (a GPT on byte windows, a checkpoint every SAVE_EVERY optimizer steps) is
timed with persist_dir="" and with persist_dir set to another folder on this machine's disk,
interleaved round by round. Per checkpoint it reports: the checkpoint's size, the background
thread's copy time (copy, fsync, rename), the time the training loop spent handing copies over
and waiting for them at the end, and the extra wall time of the run with persist_dir. Training
waits for the copy when the extra wall time per checkpoint is close to the copy time; it does
not when the extra time is close to the hand-over and end-of-run wait (a few ms).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch

import trainbook as tb

SAVE_EVERY = 2
STEPS = {"tiny": 24, "base": 8}     # optimizer steps per run
BATCH = 8


def windows(spec, n: int, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(0, 256, (spec.max_seq_len,), generator=g)} for _ in range(n)]


def one_run(size: str, spec, data, root: Path, persist: bool) -> dict:
    steps = STEPS[size]
    cfg = tb.TrainingConfig(run_name=f"{size}-{'persist' if persist else 'local'}", output_dir=str(root / "runs"),
                            persist_dir=str(root / "drive") if persist else "", epochs=1, max_steps=steps,
                            batch_size=BATCH, save_every_n_steps=SAVE_EVERY, save_every_n_epochs=0, keep_last=2,
                            resume="never", wandb_mode="disabled", progress_bar=False, seed=0)
    model = tb.build_model(spec, size, dropout=0.0, seed=0)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = tb.Trainer(model, training_config=cfg, task_spec=spec).train(data)
    wall = time.perf_counter() - t0
    ckpts = result.persist.get("checkpoints") or (steps // SAVE_EVERY + 1)   # step checkpoints + best.pt
    return {"wall_s": wall, "checkpoints": ckpts, **result.persist}


def fmt(values: list[float], scale: float = 1.0, unit: str = "ms", digits: int = 1) -> str:
    v = [x * scale for x in values]
    return f"{statistics.median(v):.{digits}f} {unit} ({min(v):.{digits}f}-{max(v):.{digits}f})"


def main(rounds: int = 6, sizes=("tiny", "base")) -> dict:
    spec = tb.TaskSpec.preset("lm").replace(max_seq_len=64)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            data = windows(spec, STEPS[size] * BATCH)
            one_run(size, spec, data, Path(tmp) / "warmup", True)   # imports and first-call costs
            runs = {"local": [], "persist": []}
            for r in range(rounds):
                order = ("local", "persist") if r % 2 == 0 else ("persist", "local")
                for variant in order:
                    runs[variant].append(one_run(size, spec, data, Path(tmp) / f"{size}-{r}-{variant}",
                                                 variant == "persist"))
            p, loc = runs["persist"], runs["local"]
            n = p[0]["checkpoints"]
            extra = [(a["wall_s"] - b["wall_s"]) / n for a, b in zip(p, loc)]
            copy = [x["checkpoint_copy_s"] / n for x in p]
            held = [(x["queued_s"] + x["waited_s"]) / n for x in p]
            ratio = [a["wall_s"] / b["wall_s"] for a, b in zip(p, loc)]
            mb = p[0]["checkpoint_bytes"] / n / 1e6
            params = tb.count_parameters(tb.build_model(spec, size))
            print(f"{size} GPT, {params:,} params, checkpoint {mb:.1f} MB, {STEPS[size]} steps, {n} checkpoint "
                  f"copies per run, {rounds} interleaved rounds, medians (min-max):")
            print(f"    background copy per checkpoint            {fmt(copy, 1e3)}")
            print(f"    training loop held per checkpoint         {fmt(held, 1e3, digits=2)}   (hand-over + end wait)")
            print(f"    extra wall time per checkpoint            {fmt(extra, 1e3)}")
            print(f"    run wall time, persist / local            {fmt(ratio, unit='x', digits=3)}   "
                  f"(local {statistics.median(x['wall_s'] for x in loc):.2f} s)")
            out[size] = {"checkpoint_mb": mb, "copy_s": copy, "held_s": held, "extra_s": extra, "ratio": ratio}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"])
    args = parser.parse_args()
    main(args.rounds, tuple(args.sizes))
