"""What a training run gives back and prints: TrainResult, the progress bar, one line per epoch."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class TrainResult:
    history: list                 # one dict per epoch (see DESIGN.md §3)
    best_epoch: int | None
    best_metric: float | None
    best_metric_name: str
    best_checkpoint: str | None
    last_checkpoint: str | None
    run_dir: str
    stopped_early: bool
    wall_time_s: float
    total_steps: int
    resumed_from: str | None = None
    bundle_path: str | None = None
    tracking: dict = dataclasses.field(default_factory=dict)
    persist: dict = dataclasses.field(default_factory=dict)  # persist_dir copies: dir, files, bytes, copy_s, waited_s

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def silent(*args, **kwargs):
    pass


def tracker_info(tracker) -> dict:
    return dict(getattr(tracker, "info", {}) or {})


def progress_bar(cfg, dist, total, initial, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not cfg.progress_bar or not dist.is_main,
                mininterval=0.5, leave=False, dynamic_ncols=True)


def summary_line(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"step {row['step']}", f"train_loss {row['train_loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in row.items() if k.startswith("val_")]
    parts.append(f"{row['tokens_per_s']:.0f} tok/s" if "tokens_per_s" in row else f"{row['samples_per_s']:.0f} samples/s")
    parts.append(f"{row['epoch_time_s']:.1f}s")
    return " | ".join(parts)
