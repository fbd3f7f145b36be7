"""Search bookkeeping per trial, excluding training (target <= 0.2 s).

    python benchmarks/bench_search.py

Bookkeeping is everything run_search does besides model_factory() and Trainer.train(): planning,
validating every trial config, the fsynced journal rows, run-dir and checkpoint clean-up, the
per-trial line, building the result. It is measured as (run_search wall time - sum of the trials'
wall_time_s) / trials, for a fresh sequential search, for re-running a finished one (every trial
skipped, so it is all bookkeeping), and for the Optuna backend on SQLite when optuna is installed.
Variants are interleaved round by round; medians with min-max over the rounds.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch

import trainbook as tb

TARGET_S = 0.2
ROUNDS = 6
SPACE = {"learning_rate": [1e-3, 3e-3, 1e-2, 3e-2], "weight_decay": [0.0, 0.1]}  # 8 trials


def _search(data, search_dir: Path, **kwargs):
    cfg = tb.TrainingConfig(epochs=1, batch_size=32, output_dir=str(search_dir), run_name="bench",
                            wandb_mode="disabled")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = tb.run_search(cfg, SPACE, lambda: tb.build_model(data.spec, "tiny"), data.train, data.val, data.spec,
                               search_dir=search_dir, **kwargs)
    wall = time.perf_counter() - t0
    trained = sum(t.wall_time_s for t in result.trials if t.wall_time_s is not None)
    return wall, trained, len(result.trials)


def _variants(data, root: Path, round_no: int, with_optuna: bool) -> dict:
    out = {}
    fresh = root / f"seq-{round_no}"
    wall, trained, n = _search(data, fresh)
    out["sequential, fresh"] = ((wall - trained) / n, trained / n)
    wall, _, n = _search(data, fresh)  # same call again: every trial is skipped
    out["sequential, re-run of a finished search"] = (wall / n, 0.0)
    if with_optuna:
        opt = root / f"optuna-{round_no}"
        wall, trained, n = _search(data, opt, backend="optuna", storage=f"sqlite:///{opt / 'study.db'}")
        out["optuna on sqlite, fresh"] = ((wall - trained) / n, trained / n)
    return out


def main() -> dict:
    """Run the interleaved rounds, print the table, return {variant: {median_s, min_s, max_s}, ...}."""
    import importlib.util

    torch.set_num_threads(1)
    with_optuna = importlib.util.find_spec("optuna") is not None
    data = tb.load_task_data("vision-cls", limit=32)
    samples: dict[str, list] = {}
    train_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        _variants(data, Path(tmp), -1, with_optuna)  # warm-up: imports, first-call costs
        for r in range(ROUNDS):
            for name, (book, train) in _variants(data, Path(tmp), r, with_optuna).items():
                samples.setdefault(name, []).append(book)
                if name == "sequential, fresh":
                    train_s.append(train)
    results = {name: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v)} for name, v in samples.items()}
    width = max(map(len, results))
    print(f"search bookkeeping per trial, excluding training ({len(SPACE['learning_rate']) * 2} trials, "
          f"{ROUNDS} interleaved rounds, target <= {TARGET_S} s)")
    print(f"{'variant':<{width}}  {'median s':>9}  {'min-max s':>15}")
    for name, r in results.items():
        print(f"{name:<{width}}  {r['median_s']:>9.4f}  {r['min_s']:>7.4f}-{r['max_s']:.4f}")
    print(f"{'(training per trial, for scale)':<{width}}  {statistics.median(train_s):>9.4f}")
    results["training_per_trial_s"] = statistics.median(train_s)
    results["target_s"] = TARGET_S
    results["within_target"] = all(r["median_s"] <= TARGET_S for name, r in results.items() if isinstance(r, dict))
    return results


if __name__ == "__main__":
    main()
