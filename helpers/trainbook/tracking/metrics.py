"""Metrics tracking: a local JSONL log always, W&B when asked, never a prompt.

    tracker = MetricsTracker.for_run(cfg, run_dir); tracker.log({"train/loss": 2.1}, step=10); tracker.finish()

Trackers implement the Tracker protocol; the Trainer talks to one MetricsTracker and never
branches on whether W&B is on. The W&B side (modes, API key lookup, WandbTracker) lives in
trainbook.tracking.wandb_run; with wandb_mode='disabled' wandb is never imported.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Protocol

from .wandb_run import make_wandb_tracker  # imports wandb only when a run starts


class Tracker(Protocol):
    def log_config(self, config: dict) -> None: ...
    def log(self, metrics: dict, step: int) -> None: ...
    def log_summary(self, summary: dict) -> None: ...
    def finish(self) -> None: ...


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class JSONLTracker:
    """Appends one JSON object per log call to `metrics.jsonl`; config and summary as JSON files."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        if resume_step is None:
            self.path.write_text("")
        else:
            self._truncate_after(resume_step)
        self._fh = open(self.path, "a", buffering=1 << 16)  # flushed before every checkpoint (checkpoint_saved)

    def _truncate_after(self, step: int):
        """On resume, drop rows logged after the checkpoint we resume from."""
        if not self.path.exists():
            return
        rows = [line for line in self.path.read_text().splitlines() if line.strip()]
        keep = [r for r in rows if json.loads(r).get("step", 0) <= step]
        self.path.write_text("".join(r + "\n" for r in keep))

    def log_config(self, config: dict):
        (self.run_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    def log(self, metrics: dict, step: int):
        row = {"step": step, **{k: _clean(v) for k, v in metrics.items()}}
        self._fh.write(json.dumps(row) + "\n")

    def checkpoint_saved(self, step: int):
        """Make every row up to `step` durable: a resumed run keeps exactly those."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def log_summary(self, summary: dict):
        self._fh.flush()
        (self.run_dir / "summary.json").write_text(
            json.dumps({k: _clean(v) for k, v in summary.items()}, indent=2, sort_keys=True) + "\n")

    def finish(self):
        if not self._fh.closed:
            self._fh.close()


class NullTracker:
    """Used on non-zero ranks: logs nothing."""

    def log_config(self, config): pass
    def log(self, metrics, step): pass
    def log_summary(self, summary): pass
    def finish(self): pass


class MetricsTracker:
    """Fans every call out to a list of trackers; `info` says where the metrics went."""

    def __init__(self, trackers: list, info: dict | None = None):
        self.trackers = list(trackers)
        self._info = dict(info or {})

    @property
    def info(self) -> dict:
        """Where the metrics go, merged with each tracker's own live info (e.g. a W&B error)."""
        merged = dict(self._info)
        for t in self.trackers:
            merged.update(getattr(t, "info", None) or {})
        return merged

    @classmethod
    def for_run(cls, cfg, run_dir: Path, rank: int = 0, resume_step: int | None = None) -> "MetricsTracker":
        """The tracker of one training run: JSONL in run_dir, plus W&B per cfg.wandb_mode.

        Args:
            cfg: the TrainingConfig (wandb_mode, wandb_project, wandb_entity, run_name).
            run_dir: the run folder; metrics.jsonl and wandb/ go there.
            rank: process rank; ranks other than 0 log nothing.
            resume_step: the optimizer step resumed from (JSONL rows after it are dropped).

        Returns:
            A MetricsTracker whose `info` holds wandb_mode, wandb_reason, wandb_dir, wandb_url,
            wandb_sync_command and metrics_path.

        Raises:
            ImportError: wandb_mode is 'online' or 'offline' and wandb is not installed.
            ConfigError: wandb_mode='online' and no API key is available.
        """
        if rank != 0:
            return cls([NullTracker()])
        local = JSONLTracker(run_dir, resume_step)
        info = {"wandb_mode": "disabled", "wandb_reason": f"wandb_mode={cfg.wandb_mode!r}", "wandb_dir": None,
                "wandb_url": None, "wandb_sync_command": None, "metrics_path": str(local.path)}
        wb = make_wandb_tracker(cfg, run_dir) if cfg.wandb_mode != "disabled" else None
        return cls([local] + ([wb] if wb is not None else []), info)

    def log_config(self, config: dict):
        for t in self.trackers:
            t.log_config(config)

    def log(self, metrics: dict, step: int):
        for t in self.trackers:
            t.log(metrics, step)

    def log_summary(self, summary: dict):
        for t in self.trackers:
            t.log_summary(summary)

    def checkpoint_saved(self, step: int):
        """Called by the Trainer before it writes a checkpoint; trackers that buffer make rows durable."""
        for t in self.trackers:
            if hasattr(t, "checkpoint_saved"):
                t.checkpoint_saved(step)

    def finish(self):
        for t in self.trackers:
            t.finish()


def read_metrics(run_dir) -> list[dict]:
    """The rows of a run's metrics.jsonl.

    Args:
        run_dir: the run folder holding metrics.jsonl.

    Returns:
        One dict per logged row, in order; each has "step".

    Raises:
        FileNotFoundError: the run folder has no metrics.jsonl.
    """
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
