"""The search's records: Trial and SearchResult, and which trial is best.

    best = best_trial(result.trials, "min"); result.table()
"""

from __future__ import annotations

import dataclasses
import math

from ..config import TrainingConfig


@dataclasses.dataclass
class Trial:
    index: int
    params: dict
    seed: int
    status: str                       # planned | running | finished | failed | pruned
    metric: float | None = None       # best value of the search metric (best so far when pruned)
    best_epoch: int | None = None
    epochs: int = 0                   # epochs actually trained
    wall_time_s: float | None = None  # model_factory() + training
    run_dir: str = ""
    checkpoint: str | None = None     # best.pt; kept for the best trial only
    config: TrainingConfig | None = None
    error: str | None = None
    curve: list = dataclasses.field(default_factory=list)  # [[epoch, metric], ...]


@dataclasses.dataclass
class SearchResult:
    trials: list
    best: Trial | None                # best finished trial: .params, .metric, .checkpoint, .config
    metric: str
    mode: str
    search_dir: str
    backend: str = "sequential"
    space: dict = dataclasses.field(default_factory=dict)  # name -> [values] | {"loguniform": [low, high]} | ...

    @property
    def epochs_trained(self) -> int:
        return sum(t.epochs for t in self.trials)

    def table(self) -> list[dict]:
        """One dict per trial, best first: finished by metric, then pruned, failed, not run yet."""
        order, sign = {"finished": 0, "pruned": 1, "failed": 2, "running": 3, "planned": 4}, direction(self.mode)
        rows = sorted(self.trials, key=lambda t: (order[t.status], math.inf if t.metric is None else sign * t.metric,
                                                  t.index))
        return [{"trial": t.index, "status": t.status, **t.params, self.metric: t.metric, "best_epoch": t.best_epoch,
                 "epochs": t.epochs, "wall_time_s": t.wall_time_s} for t in rows]


def direction(mode: str) -> int:
    return 1 if mode == "min" else -1


def best_trial(trials: list, mode: str) -> Trial | None:
    done = [t for t in trials if t.status == "finished" and t.metric is not None]
    return min(done, key=lambda t: (direction(mode) * t.metric, t.index)) if done else None
