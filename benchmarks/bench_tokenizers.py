"""bpe:2000 vs byte-level on the built-in corpus: val_bits_per_byte of the built-in GPT at equal wall time.

    python benchmarks/bench_tokenizers.py [--budget 60] [--rounds 3] [--mb 4]

The corpus is the built-in lm text (Python standard library sources, files in a seeded order, the
first --mb MB) written to one file and loaded with load_task_data("lm", source=<corpus>,
tokenizer=...), so both tokenizers are validated on the same text (the split is over text
segments, not tokens) and val_bits_per_byte divides by the same bytes. Each round trains a fresh
tiny GPT per tokenizer for the same wall-time budget: 12 steps measure the step time, then
max_steps = budget / step time ("train s" is the measured time of the training loop). Rounds (seeds) alternate the order of the two tokenizers.
Reported: median val_bits_per_byte over rounds (min-max), steps, wall time, loss per token,
and the one-off data preparation (bpe training + tokenizing, cached afterwards).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import random
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

import torch

import trainbook as tb

TOKENIZERS = ("byte", "bpe:2000")
SKIP = {"test", "tests", "idle_test", "site-packages", "__pycache__"}


def write_corpus(path: Path, megabytes: float, seed: int = 0) -> Path:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not (SKIP & set(p.relative_to(root).parts[:-1])))
    random.Random(seed).shuffle(files)
    budget, parts = int(megabytes * 1e6), []
    for f in files:
        if budget <= 0:
            break
        text = f.read_bytes().decode("utf-8", "replace")
        parts.append(text)
        budget -= len(text.encode("utf-8"))
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _config(out: Path, name: str, seed: int, max_steps: int, epochs: int) -> tb.TrainingConfig:
    return tb.TrainingConfig(run_name=name, output_dir=str(out), seed=seed, epochs=epochs, max_steps=max_steps,
                             batch_size=16, learning_rate=3e-3, warmup_ratio=0.05, wandb_mode="disabled",
                             progress_bar=False, save_every_n_epochs=0, eval_every_n_epochs=10**6, keep_last=1,
                             export_bundle=False, precision="fp32")


def train_for(data, budget_s: float, seed: int, out: Path) -> dict:
    """Train a fresh tiny GPT for about budget_s seconds of training; evaluate on data.val."""
    spe = math.ceil(len(data.train) / 16)
    with contextlib.redirect_stdout(io.StringIO()):
        probe = tb.Trainer(tb.build_model(data.spec, "tiny", seed=seed), training_config=_config(
            out, f"probe-{seed}", seed, 12, 1), task_spec=data.spec).train(data.train)
        step_s = sum(h["epoch_time_s"] for h in probe.history) / max(1, probe.total_steps)  # the loop only
        steps = max(1, int(budget_s / step_s))
        model = tb.build_model(data.spec, "tiny", seed=seed)
        trainer = tb.Trainer(model, training_config=_config(out, f"run-{seed}", seed, steps, math.ceil(steps / spe)),
                             task_spec=data.spec)
        result = trainer.train(data.train)
        metrics = trainer.evaluate(data.val)
    return {"steps": result.total_steps, "wall_s": sum(h["epoch_time_s"] for h in result.history), **metrics}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per tokenizer and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=float, default=4.0, help="corpus size in MB")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = write_corpus(tmp / "stdlib.txt", args.mb)
        data, prep = {}, {}
        for name in TOKENIZERS:
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                data[name] = tb.load_task_data("lm", source=str(corpus), tokenizer=name, cache_dir=str(tmp / "cache"))
            prep[name] = time.perf_counter() - t0
        runs = {name: [] for name in TOKENIZERS}
        for r in range(args.rounds):
            for name in (TOKENIZERS if r % 2 == 0 else TOKENIZERS[::-1]):
                runs[name].append(train_for(data[name], args.budget, r, tmp / name))
    print(f"corpus: {corpus.name}, {args.mb:g} MB of the built-in lm text (stdlib sources); tiny GPT, "
          f"batch 16 x {data['byte'].spec.max_seq_len} tokens, {args.budget:g} s of training per run, "
          f"{args.rounds} rounds (median, min-max)")
    print(f"{'tokenizer':<10} {'vocab':>6} {'val_bits_per_byte':>26} {'val_loss/token':>15} {'steps':>6} "
          f"{'train s':>8} {'data prep s':>11}")
    summary = {}
    for name in TOKENIZERS:
        bpb = [r["val_bits_per_byte"] for r in runs[name]]
        summary[name] = {"bpb_median": statistics.median(bpb), "bpb_min": min(bpb), "bpb_max": max(bpb),
                         "loss_per_token": statistics.median(r["val_loss"] for r in runs[name]),
                         "steps": statistics.median(r["steps"] for r in runs[name]),
                         "wall_s": statistics.median(r["wall_s"] for r in runs[name]), "prep_s": prep[name]}
        s = summary[name]
        print(f"{name:<10} {data[name].spec.vocab_size:>6} {s['bpb_median']:>8.3f} ({s['bpb_min']:.3f}-{s['bpb_max']:.3f})"
              f"{'':>8} {s['loss_per_token']:>15.3f} {s['steps']:>6.0f} {s['wall_s']:>8.1f} {s['prep_s']:>11.1f}")
    winner = min(TOKENIZERS, key=lambda n: summary[n]["bpb_median"])
    other = [n for n in TOKENIZERS if n != winner][0]
    print(f"winner at equal wall time: {winner} ({summary[winner]['bpb_median']:.3f} vs "
          f"{summary[other]['bpb_median']:.3f} val bits per byte on the same validation text)")
    return summary


if __name__ == "__main__":
    main()
