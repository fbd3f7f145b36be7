"""Metrics tracking: a local JSONL log always, W&B when asked, never a prompt.

    tracker = MetricsTracker.for_run(cfg, run_dir)
    tracker.log({"train/loss": 2.1}, step=10); tracker.finish()

Trackers implement the Tracker protocol; the Trainer talks to one MetricsTracker and never
branches on whether W&B is on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Protocol


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
        self._fh = open(self.path, "a", buffering=1 << 16)

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

    def log_summary(self, summary: dict):
        self._fh.flush()
        (self.run_dir / "summary.json").write_text(
            json.dumps({k: _clean(v) for k, v in summary.items()}, indent=2, sort_keys=True) + "\n")

    def finish(self):
        if not self._fh.closed:
            self._fh.close()


class NullTracker:
    """Used on non-zero ranks: logs nothing."""

    def log_config(self, config):
        pass

    def log(self, metrics, step):
        pass

    def log_summary(self, summary):
        pass

    def finish(self):
        pass


class MetricsTracker:
    """Fans every call out to a list of trackers."""

    def __init__(self, trackers: list):
        self.trackers = list(trackers)
        self.info: dict = {}

    @classmethod
    def for_run(cls, cfg, run_dir: Path, rank: int = 0, resume_step: int | None = None) -> "MetricsTracker":
        if rank != 0:
            return cls([NullTracker()])
        trackers = [JSONLTracker(run_dir, resume_step)]
        tracker = cls(trackers)
        if cfg.wandb_mode != "disabled":
            wb = make_wandb_tracker(cfg, run_dir)
            if wb is not None:
                trackers.append(wb)
                tracker.info.update(wb.info)
        return tracker

    def log_config(self, config: dict):
        for t in self.trackers:
            t.log_config(config)

    def log(self, metrics: dict, step: int):
        for t in self.trackers:
            t.log(metrics, step)

    def log_summary(self, summary: dict):
        for t in self.trackers:
            t.log_summary(summary)

    def finish(self):
        for t in self.trackers:
            t.finish()


def read_metrics(run_dir) -> list[dict]:
    """The rows of a run's metrics.jsonl."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_wandb_tracker(cfg, run_dir: Path):
    """The W&B tracker for cfg.wandb_mode, or None when W&B is not used for this run."""
    print(f"wandb: mode {cfg.wandb_mode!r} not wired yet; metrics go to {Path(run_dir) / 'metrics.jsonl'}")
    return None
