"""One search trial: its config, its training run, median pruning and checkpoint retention.

    cfg = trial_config(ctx, 3, {"learning_rate": 1e-3}); ended = train_trial(ctx, cfg, should_stop)
"""

from __future__ import annotations

import contextlib
import math
import shutil
import statistics
import time
from pathlib import Path

from ..builder import FIELD_GROUPS, TrainingConfigBuilder
from ..config import ConfigError, TrainingConfig
from ..persist import copy_file
from .journal import ENDED
from .results import Trial, direction

PRUNE_STARTUP_TRIALS = 2  # median pruning starts once this many trials have finished


def trial_config(ctx: dict, index: int, params: dict) -> TrainingConfig:
    """base_config + params, run dir <search_dir>/trial-NNN, fresh start, no progress bar or export.

    Trials persist nothing themselves (an interrupted trial starts over); the search persists its
    journal and the best trial's best.pt (see keep_best_checkpoint).
    """
    base = ctx["base"]
    builder = (TrainingConfigBuilder.from_config(base)
               .with_run(run_name=f"trial-{index:03d}", output_dir=str(ctx["search_dir"]),
                         seed=params.get("seed", (ctx["seed"] + index) % 2**32))
               .with_checkpointing(resume="never", checkpoint_dir="", persist_dir="", on_config_change="refuse",
                                   early_stopping_metric=ctx["metric"], early_stopping_mode=ctx["mode"])
               .with_tracking(progress_bar=False,
                              wandb_mode=base.wandb_mode if base.wandb_mode in ("online", "offline") else "disabled")
               .with_export(export_bundle=False))
    by_group = {}
    for name, value in params.items():
        by_group.setdefault(next(g for g, fields in FIELD_GROUPS.items() if name in fields), {})[name] = value
    try:
        for group, kwargs in by_group.items():
            builder = getattr(builder, group)(**kwargs)
        return builder.build()
    except ConfigError as e:
        raise ConfigError([f"trial {index} with {params} gives an invalid config:"] + e.problems) from None


def train_trial(ctx: dict, cfg: TrainingConfig, should_stop) -> dict:
    """Train one trial; `should_stop(epoch, value, best_so_far)` is asked after each evaluated epoch but the last.

    Returns the ended row: status, metric, best_epoch, epochs, curve, wall_time_s, error. Only a
    non-finite loss or CUDA out-of-memory fails a trial; other errors propagate. The Trainer's
    printed lines go to <run_dir>/train.log.
    """
    import torch

    from ..engine.trainer import Trainer

    name, sign, t0 = ctx["metric"], direction(ctx["mode"]), time.perf_counter()
    seen = {"epochs": 0, "pruned": False, "curve": []}

    def on_epoch_end(row):
        seen["epochs"] += 1
        if name in row:  # evaluated this epoch
            seen["curve"].append([row["epoch"], row[name]])
            best = sign * min(sign * v for _, v in seen["curve"])
            seen["pruned"] = row["epoch"] < cfg.epochs and bool(should_stop(row["epoch"], row[name], best))
        return seen["pruned"]

    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    out = {"status": "finished", "metric": None, "best_epoch": None, "error": None}
    with open(cfg.run_dir / "train.log", "w") as log, contextlib.redirect_stdout(log):
        try:
            result = Trainer(ctx["model_factory"](), training_config=cfg, task_spec=ctx["task_spec"]).train(
                ctx["train_data"], ctx["val_data"], on_epoch_end=on_epoch_end)
            out.update(metric=result.best_metric, best_epoch=result.best_epoch,
                       status="pruned" if seen["pruned"] else "finished")
        except (FloatingPointError, torch.cuda.OutOfMemoryError) as e:  # NonFiniteLossError is a FloatingPointError
            out.update(status="failed", error=f"{type(e).__name__}: {e}")
    if out["metric"] is not None and not math.isfinite(out["metric"]):
        out.update(status="failed", metric=None, error=f"{name} is {out['metric']}")
    return {**out, "epochs": seen["epochs"], "curve": seen["curve"], "wall_time_s": round(time.perf_counter() - t0, 4)}


def median_says_stop(finished: list, epoch: int, best_so_far: float, mode: str) -> bool:
    """True when best_so_far is worse than the median of finished trials' metric at this epoch."""
    at_epoch = [v for t in finished for e, v in t.curve if e == epoch]
    if len(finished) < PRUNE_STARTUP_TRIALS or not at_epoch:
        return False
    return direction(mode) * best_so_far > direction(mode) * statistics.median(at_epoch)


def keep_best_checkpoint(trials: list, best: Trial | None, mirror: Path | None = None):
    """Delete the checkpoints of ended trials other than the best; the best keeps only best.pt.

    With `mirror` (the search's folder in persist_dir) the best trial's best.pt is copied there
    and every other trial's persisted copy is deleted. Optuna workers sharing a search_dir may
    delete the same files at the same moment; a file or folder that is already gone is therefore fine.
    """
    for t in trials:
        ckpt_dir = Path(t.run_dir) / "checkpoints"
        if t.status not in ENDED or not ckpt_dir.is_dir():
            continue
        if best is None or t.index != best.index:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(ckpt_dir)
            continue
        for p in ckpt_dir.iterdir():
            if p.name != "best.pt":
                p.unlink(missing_ok=True)
        t.checkpoint = str(ckpt_dir / "best.pt") if (ckpt_dir / "best.pt").exists() else None
    if mirror is not None:
        _mirror_best_checkpoint(trials, best, mirror)


def _mirror_best_checkpoint(trials: list, best: Trial | None, mirror: Path):
    keep = Path(mirror) / Path(best.run_dir).name if best is not None and best.checkpoint else None
    if keep is not None and not (keep / "checkpoints" / "best.pt").is_file():
        copy_file(best.checkpoint, keep / "checkpoints" / "best.pt")
    for t in trials:
        persisted = Path(mirror) / Path(t.run_dir).name
        if persisted != keep and persisted.is_dir():
            shutil.rmtree(persisted)


def restore_best_checkpoint(trials: list, mirror: Path):
    """A fresh runtime: take the persisted best.pt of a trial back into its local run folder."""
    for t in trials:
        persisted = Path(mirror) / Path(t.run_dir).name / "checkpoints" / "best.pt"
        local = Path(t.run_dir) / "checkpoints" / "best.pt"
        if persisted.is_file() and not local.is_file():
            copy_file(persisted, local)
