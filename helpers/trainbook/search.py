"""Hyperparameter search: grid or random trials with a resumable journal, or a shared Optuna study.

    result = run_search(cfg, {"learning_rate": [1e-3, 3e-3]}, model_factory, data.train, data.val, spec)

The plan (one `planned` row per trial) is written to `<search_dir>/search.jsonl` before the first
trial; each trial appends a `running` row when it starts and one `finished`, `failed` or `pruned`
row when it ends. Re-running the same call skips ended trials and re-runs an interrupted one from
scratch with the same parameters and seed. Only the best trial's best.pt is kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import random
import shutil
import statistics
import time
from pathlib import Path

from .builder import _GROUPS, TrainingConfigBuilder
from .config import FIELD_NAMES, ConfigError, TrainingConfig, _suggest
from .notebook import SearchProgress
from .search_journal import ENDED, JOURNAL_NAME, SPEC_NAME, Journal, _row, spec_changes  # noqa: F401

PRUNE_STARTUP_TRIALS = 2  # median pruning starts once this many trials have finished
# set by the search for every trial, so they cannot be searched over
MANAGED_FIELDS = ("run_name", "output_dir", "checkpoint_dir", "resume", "early_stopping_metric",
                  "early_stopping_mode", "config_version")
# base_config fields that do not change what a trial computes; a re-run may change them
_NOT_IN_SPEC = set(MANAGED_FIELDS) | {"seed", "progress_bar", "log_every_n_steps", "wandb_mode", "wandb_project",
                                      "wandb_entity", "num_workers", "export_bundle", "export_formats", "keep_last"}
_CHOICES = {"method": ("grid", "random"), "mode": ("min", "max"), "prune": ("none", "median"),
            "backend": ("sequential", "optuna")}


# ---------------------------------------------------------------- distributions for random search

@dataclasses.dataclass(frozen=True)
class Distribution:
    kind: str   # loguniform | uniform | intuniform | choice
    args: tuple

    def sample(self, rng: random.Random):
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(self.args[0]), math.log(self.args[1])))
        if self.kind == "uniform":
            return rng.uniform(*self.args)
        return rng.randint(*self.args) if self.kind == "intuniform" else rng.choice(self.args)

    def __repr__(self):
        return f"choice({list(self.args)!r})" if self.kind == "choice" else f"{self.kind}{self.args!r}"


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _dist(kind: str, args: tuple, ok: bool, rule: str) -> Distribution:
    if not ok:
        raise ValueError(f"{kind} needs {rule}; got {', '.join(map(repr, args))}")
    return Distribution(kind, args)


def loguniform(low: float, high: float) -> Distribution:
    """Log-uniform floats in [low, high] (learning rates). Raises ValueError unless 0 < low < high."""
    return _dist("loguniform", (low, high), _is_num(low) and _is_num(high) and 0 < low < high, "0 < low < high")


def uniform(low: float, high: float) -> Distribution:
    """Uniform floats in [low, high]. Raises ValueError unless low < high."""
    return _dist("uniform", (low, high), _is_num(low) and _is_num(high) and low < high, "low < high")


def intuniform(low: int, high: int) -> Distribution:
    """Uniform integers in [low, high], both included. Raises ValueError unless integers low <= high."""
    ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (low, high))
    return _dist("intuniform", (low, high), ints and low <= high, "integers low <= high")


def choice(options) -> Distribution:
    """One of `options` (numbers, strings, booleans), equally likely. Raises ValueError when empty."""
    ok = isinstance(options, (list, tuple)) and len(options) > 0
    return _dist("choice", tuple(options) if ok else (options,), ok, "a non-empty list of values")


# ---------------------------------------------------------------- results

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

    @property
    def epochs_trained(self) -> int:
        return sum(t.epochs for t in self.trials)

    def table(self) -> list[dict]:
        """One dict per trial, best first: finished by metric, then pruned, failed, not run yet."""
        order, sign = {"finished": 0, "pruned": 1, "failed": 2, "running": 3, "planned": 4}, _sign(self.mode)
        rows = sorted(self.trials, key=lambda t: (order[t.status], math.inf if t.metric is None else sign * t.metric,
                                                  t.index))
        return [{"trial": t.index, "status": t.status, **t.params, self.metric: t.metric, "best_epoch": t.best_epoch,
                 "epochs": t.epochs, "wall_time_s": t.wall_time_s} for t in rows]


def _sign(mode: str) -> int:
    return 1 if mode == "min" else -1


def best_trial(trials: list, mode: str) -> Trial | None:
    done = [t for t in trials if t.status == "finished" and t.metric is not None]
    return min(done, key=lambda t: (_sign(mode) * t.metric, t.index)) if done else None


# ---------------------------------------------------------------- the search

def run_search(base_config: TrainingConfig, space: dict, model_factory, train_data, val_data, task_spec,
               method: str = "grid", n_trials: int | None = None, metric: str = "val_loss", mode: str = "min",
               seed: int = 0, prune: str = "none", search_dir=None, backend: str = "sequential",
               storage: str | None = None, study_name: str | None = None) -> SearchResult:
    """Train one fresh model per point of `space`; keep the best trial's best checkpoint.

    Args:
        base_config: the TrainingConfig every trial starts from.
        space: field -> list of values, or (random only) loguniform/uniform/intuniform/choice.
            Fields are TrainingConfig fields other than MANAGED_FIELDS.
        model_factory: called with no arguments; returns a fresh nn.Module for each trial.
        train_data, val_data, task_spec: as for Trainer(...).train(train_data, val_data).
        method: "grid" (every combination, or a seeded subset of n_trials) or "random".
        n_trials: trials to run; required for random; None runs the whole grid. Re-running
            with a larger n_trials keeps the ended trials and adds new ones.
        metric, mode: the history key to optimise and "min" | "max". Each trial's
            early_stopping_metric/mode are set to these, so its best.pt is best by this metric.
        seed: seeds the draws; trial i trains with seed `seed + i` (unless seed is searched).
        prune: "median" stops a trial after an epoch when its best metric so far is worse than the
            median of finished trials at that epoch, once PRUNE_STARTUP_TRIALS have finished.
        search_dir: journal and trial-NNN run dirs (default <base run_dir>/search).
        backend: "sequential" (journal in search_dir) or "optuna" (a study shared by workers).
        storage, study_name: Optuna storage URL (default sqlite:///<search_dir>/optuna.db), study name.
    Returns:
        a SearchResult (.trials, .best, .table()).
    Raises:
        ConfigError: an unknown or managed field in `space`, or values giving an invalid config.
        ValueError: a bad argument, or search_dir holding a different search.
    """
    ctx = _context(base_config, space, model_factory, task_spec, val_data, method, n_trials, metric, mode,
                   seed, prune, backend)
    ctx["search_dir"] = Path(search_dir) if search_dir is not None else base_config.run_dir / "search"
    ctx.update(model_factory=model_factory, train_data=train_data, val_data=val_data, task_spec=task_spec)
    plan = make_plan(ctx["space"], method, n_trials, seed)
    configs = [trial_config(ctx, i, params) for i, params in enumerate(plan)]  # all validated before training
    ctx["search_dir"].mkdir(parents=True, exist_ok=True)
    if backend == "optuna":
        from .search_optuna import run_optuna_search

        return run_optuna_search(ctx, len(plan), storage, study_name or "search")
    return _run_sequential(ctx, plan, configs)


def _context(base, space, model_factory, task_spec, val_data, method, n_trials, metric, mode, seed, prune,
             backend) -> dict:
    if not isinstance(base, TrainingConfig):
        raise TypeError(f"base_config must be a TrainingConfig; got {type(base).__name__}")
    if not callable(model_factory):
        raise TypeError("model_factory must be a function returning a fresh model, e.g. "
                        "lambda: tb.build_model(spec, 'tiny')")
    for name, value in (("method", method), ("mode", mode), ("prune", prune), ("backend", backend)):
        if value not in _CHOICES[name]:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, _CHOICES[name]))}; got {value!r}")
    if n_trials is not None and not (isinstance(n_trials, int) and not isinstance(n_trials, bool) and n_trials >= 1):
        raise ValueError(f"n_trials must be an integer >= 1 or None; got {n_trials!r}")
    if method == "random" and n_trials is None:
        raise ValueError("method='random' needs n_trials (how many draws), e.g. n_trials=8")
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**31):
        raise ValueError(f"seed must be an integer in [0, 2**31); got {seed!r}")
    known = {"val_loss", "train_loss"} | {f"val_{m}" for m in task_spec.metrics}
    if metric not in known:
        raise ValueError(f"metric must be one of {sorted(known)} for task {task_spec.name!r}; got {metric!r}")
    if metric != "train_loss" and val_data is None:
        raise ValueError(f"metric={metric!r} needs val_data; pass val_data= or use metric='train_loss'")
    if base.strategy != "single":
        raise ValueError("search trials run in one process each; set strategy='single' in base_config "
                         "(HINT: spread trials over processes with backend='optuna')")
    space = check_space(space, method)
    spec = {"method": method, "seed": seed, "metric": metric, "mode": mode, "prune": prune,
            "space": {k: {v.kind: list(v.args)} if isinstance(v, Distribution) else list(v) for k, v in space.items()},
            "base_config": {k: v for k, v in base.to_dict().items() if k not in _NOT_IN_SPEC}}
    search_id = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return dict(base=base, space=space, method=method, metric=metric, mode=mode, seed=seed, prune=prune,
                spec=spec, search_id=search_id)


def check_space(space, method: str) -> dict:
    """Validate a search space; returns field -> tuple of values or Distribution.

    Raises:
        ConfigError: every unknown or managed field and every empty or unsupported value, at once.
    """
    if not isinstance(space, dict) or not space:
        raise ConfigError([f"space must be a non-empty dict of field -> values; got {space!r}"])
    problems, out = [], {}
    for name, values in space.items():
        where = f"space field {name!r}"
        if name not in FIELD_NAMES:
            problems.append(f"{where} is not a TrainingConfig field{_suggest(name, FIELD_NAMES)}")
        elif name in MANAGED_FIELDS:
            problems.append(f"{where} is set by the search for every trial and cannot be searched")
        elif isinstance(values, Distribution):
            if method == "grid" and values.kind != "choice":
                problems.append(f"{where}: method='grid' needs a list of values; got {values!r} "
                                "(HINT: use method='random', or list the values)")
            out[name] = values.args if method == "grid" else values
        elif isinstance(values, (list, tuple)) and values:
            bad = [v for v in values if not (v is None or isinstance(v, (str, bool)) or _is_num(v))]
            if bad:
                problems.append(f"{where}: values must be numbers, strings or booleans; got {bad!r}")
            out[name] = tuple(values)
        else:
            problems.append(f"{where} must be a non-empty list of values or a distribution "
                            f"(loguniform, uniform, intuniform, choice); got {values!r}")
    if problems:
        raise ConfigError(problems)
    return out


def make_plan(space: dict, method: str, n_trials: int | None, seed: int) -> list[dict]:
    """The deterministic trial parameters: the grid (or a seeded subset of it) or seeded draws."""
    rng = random.Random(seed)
    if method == "random":
        return [{k: v.sample(rng) if isinstance(v, Distribution) else rng.choice(v) for k, v in space.items()}
                for _ in range(n_trials)]
    grid = [dict(zip(space, combo)) for combo in itertools.product(*space.values())]
    if n_trials is not None and n_trials < len(grid):  # a seeded order, so a larger n_trials extends the plan
        order = list(range(len(grid)))
        rng.shuffle(order)
        return [grid[i] for i in order[:n_trials]]
    if n_trials is not None and n_trials > len(grid):
        print(f"search: n_trials={n_trials} but the grid has {len(grid)} points; running {len(grid)}")
    return grid


def trial_config(ctx: dict, index: int, params: dict) -> TrainingConfig:
    """base_config + params, run dir <search_dir>/trial-NNN, fresh start, no progress bar or export."""
    base = ctx["base"]
    builder = (TrainingConfigBuilder.from_config(base)
               .with_run(run_name=f"trial-{index:03d}", output_dir=str(ctx["search_dir"]),
                         seed=params.get("seed", (ctx["seed"] + index) % 2**32))
               .with_checkpointing(resume="never", checkpoint_dir="", early_stopping_metric=ctx["metric"],
                                   early_stopping_mode=ctx["mode"])
               .with_tracking(progress_bar=False,
                              wandb_mode=base.wandb_mode if base.wandb_mode in ("online", "offline") else "disabled")
               .with_export(export_bundle=False))
    by_group = {}
    for name, value in params.items():
        by_group.setdefault(next(g for g, fields in _GROUPS.items() if name in fields), {})[name] = value
    try:
        for group, kwargs in by_group.items():
            builder = getattr(builder, group)(**kwargs)
        return builder.build()
    except ConfigError as e:
        raise ConfigError([f"trial {index} with {params} gives an invalid config:"] + e.problems) from None


# ---------------------------------------------------------------- one trial

def train_trial(ctx: dict, cfg: TrainingConfig, should_stop) -> dict:
    """Train one trial; `should_stop(epoch, value, best_so_far)` is asked after each evaluated epoch but the last.

    Returns the ended row: status, metric, best_epoch, epochs, curve, wall_time_s, error. Only a
    non-finite loss or CUDA out-of-memory fails a trial; other errors propagate. The Trainer's
    printed lines go to <run_dir>/train.log.
    """
    import torch

    from .engine.trainer import Trainer

    name, sign, t0 = ctx["metric"], _sign(ctx["mode"]), time.perf_counter()
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
    return _sign(mode) * best_so_far > _sign(mode) * statistics.median(at_epoch)


def keep_best_checkpoint(trials: list, best: Trial | None):
    """Delete the checkpoints of ended trials other than the best; the best keeps only best.pt.

    Optuna workers sharing a search_dir may delete the same files at the same moment; a file or
    folder that is already gone is therefore fine.
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


# ---------------------------------------------------------------- the sequential backend

def _run_sequential(ctx: dict, plan: list[dict], configs: list) -> SearchResult:
    journal = Journal(ctx["search_dir"] / JOURNAL_NAME)
    trials = [Trial(i, params, cfg.seed, "planned", run_dir=str(cfg.run_dir), config=cfg)
              for i, (params, cfg) in enumerate(zip(plan, configs))]
    journal.start(ctx, trials)
    result = SearchResult(trials, best_trial(trials, ctx["mode"]), ctx["metric"], ctx["mode"], str(ctx["search_dir"]))
    keep_best_checkpoint(trials, result.best)  # also tidies up after a search killed mid-way
    if any(t.status in ENDED for t in trials):
        print(f"search: resuming in {ctx['search_dir']}; {sum(t.status in ENDED for t in trials)} of "
              f"{len(trials)} trials already ended")
    report = SearchProgress(result, len(trials))
    for t in trials:
        if t.status in ENDED:
            continue
        if Path(t.run_dir).exists():  # an interrupted trial starts over
            shutil.rmtree(t.run_dir)
        t.status = "running"
        journal.append(_row(ctx, t))
        report.update(result)
        finished = [x for x in trials if x.status == "finished"]
        ended = train_trial(ctx, t.config, lambda epoch, value, best: ctx["prune"] == "median" and
                            median_says_stop(finished, epoch, best, ctx["mode"]))
        for key, value in ended.items():
            setattr(t, key, value)
        journal.append(_row(ctx, t))
        result.best = best_trial(trials, ctx["mode"])
        keep_best_checkpoint(trials, result.best)
        report.update(result, t)
    report.close(result)
    return result
