"""Hyperparameter search: grid or random trials with a resumable journal, or a shared Optuna study.

    result = run_search(cfg, {"learning_rate": [1e-3, 3e-3]}, model_factory, data.train, data.val, spec)

The plan (one `planned` row per trial) is written to `<search_dir>/search.jsonl` before the first
trial; each trial appends a `running` row when it starts and one `finished`, `failed` or `pruned`
row when it ends. Re-running the same call skips ended trials and re-runs an interrupted one from
scratch with the same parameters and seed. Only the best trial's best.pt is kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..config import TrainingConfig
from ..notebook import SearchProgress
from ..persist import check_persist_dir, persisted_run_dir
from .journal import ENDED, JOURNAL_NAME, Journal, journal_row
from .results import SearchResult, Trial, best_trial
from .space import MANAGED_FIELDS, Distribution, check_space, make_plan
from .trials import keep_best_checkpoint, median_says_stop, restore_best_checkpoint, train_trial, trial_config

# base_config fields that do not change what a trial computes; a re-run may change them
_NOT_IN_SPEC = set(MANAGED_FIELDS) | {"seed", "progress_bar", "log_every_n_steps", "wandb_mode", "wandb_project",
                                      "wandb_entity", "num_workers", "export_bundle", "export_formats", "keep_last"}
_CHOICES = {"method": ("grid", "random"), "mode": ("min", "max"), "prune": ("none", "median"),
            "backend": ("sequential", "optuna")}


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
        search_dir: journal and trial-NNN run dirs (default <base run_dir>/search). With
            base_config.persist_dir set, the journal and the best trial's best.pt are copied to the
            search's place in the persisted run folder, and a re-run resumes from them.
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
    ctx["mirror"] = _persisted_search_dir(base_config, ctx["search_dir"])
    ctx.update(model_factory=model_factory, train_data=train_data, val_data=val_data, task_spec=task_spec)
    plan = make_plan(ctx["space"], method, n_trials, seed)
    configs = [trial_config(ctx, i, params) for i, params in enumerate(plan)]  # all validated before training
    ctx["search_dir"].mkdir(parents=True, exist_ok=True)
    if backend == "optuna":
        from .optuna_backend import run_optuna_search

        return run_optuna_search(ctx, len(plan), storage, study_name or "search")
    return _run_sequential(ctx, plan, configs)


def _persisted_search_dir(base: TrainingConfig, search_dir: Path) -> Path | None:
    """The search's folder in persist_dir: its place in the run folder, or <persisted run>/<search_dir name>."""
    persisted = persisted_run_dir(base)
    if persisted is None:
        return None
    check_persist_dir(base.persist_dir)
    search_dir, run_dir = search_dir.absolute(), base.run_dir.absolute()
    return persisted / (search_dir.relative_to(run_dir) if search_dir.is_relative_to(run_dir) else search_dir.name)


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


# ---------------------------------------------------------------- the sequential backend

def _run_sequential(ctx: dict, plan: list[dict], configs: list) -> SearchResult:
    journal = Journal(ctx["search_dir"] / JOURNAL_NAME, mirror=ctx["mirror"])
    trials = [Trial(i, params, cfg.seed, "planned", run_dir=str(cfg.run_dir), config=cfg)
              for i, (params, cfg) in enumerate(zip(plan, configs))]
    journal.start(ctx, trials)  # a fresh runtime takes the journal back from persist_dir first
    if ctx["mirror"] is not None:
        restore_best_checkpoint(trials, ctx["mirror"])
    result = SearchResult(trials, best_trial(trials, ctx["mode"]), ctx["metric"], ctx["mode"], str(ctx["search_dir"]),
                          space=ctx["spec"]["space"])
    keep_best_checkpoint(trials, result.best, ctx["mirror"])  # also tidies up after a search killed mid-way
    if any(t.status in ENDED for t in trials):
        print(f"search: resuming in {ctx['search_dir']}; {sum(t.status in ENDED for t in trials)} of "
              f"{len(trials)} trials already ended")
    report = SearchProgress(result, len(trials), ctx["base"].progress_bar)
    for t in trials:
        if t.status in ENDED:
            continue
        if Path(t.run_dir).exists():  # an interrupted trial starts over
            shutil.rmtree(t.run_dir)
        t.status = "running"
        journal.append(journal_row(ctx, t))
        report.update(result)
        finished = [x for x in trials if x.status == "finished"]
        ended = train_trial(ctx, t.config, lambda epoch, value, best: ctx["prune"] == "median" and
                            median_says_stop(finished, epoch, best, ctx["mode"]))
        for key, value in ended.items():
            setattr(t, key, value)
        journal.append(journal_row(ctx, t))
        result.best = best_trial(trials, ctx["mode"])
        keep_best_checkpoint(trials, result.best, ctx["mirror"])
        report.update(result, t)
    report.close(result)
    return result
