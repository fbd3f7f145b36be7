"""Optuna backend of run_search: worker processes (or machines) share one study through a storage URL.

    run_search(cfg, space, factory, train, val, spec, backend="optuna", storage="sqlite:///s.db", study_name="lr")

Study trial k is search trial k, trained in <search_dir>/trial-NNN. Grid uses GridSampler, which
gives trial number k the k-th point of its seeded grid order, so concurrent workers never repeat a
point; random uses a RandomSampler seeded with (seed, trial number), so draws are reproducible
whichever worker runs the trial; prune="median" uses MedianPruner. Every worker runs trials until
the study holds n_trials in total; a trial created past that limit (two workers asking in the same
instant) is marked pruned with user attribute "surplus", never trained, and left out of the result.
A worker returns when no trial is left to start: trials other workers still run show as "running".
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..notebook import SearchProgress
from .journal import spec_changes
from .results import SearchResult, Trial, best_trial
from .space import Distribution
from .trials import PRUNE_STARTUP_TRIALS, keep_best_checkpoint, train_trial, trial_config

SPEC_ATTR, RESULT_ATTR = "trainbook_search", "trainbook_trial"
RESULT_KEYS = ("metric", "best_epoch", "epochs", "wall_time_s", "curve", "error")
_STATUS = {"COMPLETE": "finished", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "planned"}


class TrialFailed(RuntimeError):
    """A trial whose training failed (non-finite loss, out of memory); the study goes on."""


def run_optuna_search(ctx: dict, n_trials: int, storage: str | None, study_name: str) -> SearchResult:
    """Run trials of a shared Optuna study until it holds `n_trials`; returns all of its trials.

    Raises:
        ImportError: optuna is not installed.
        ValueError: the study was created by a different search (space, method, seed, config...).
    """
    try:
        import optuna
    except ImportError:
        raise ImportError("backend='optuna' needs optuna: pip install optuna") from None
    storage = storage or f"sqlite:///{(ctx['search_dir'] / 'optuna.db').resolve()}"
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial replaces optuna's
    try:
        study = optuna.create_study(storage=_open_storage(optuna, storage), study_name=study_name, load_if_exists=True,
                                    direction="minimize" if ctx["mode"] == "min" else "maximize",
                                    sampler=_sampler(optuna, ctx), pruner=_pruner(optuna, ctx))
        _check_same_search(study, ctx, storage, study_name)
        result = _result(study, ctx, n_trials)
        report, mine = SearchProgress(result, n_trials, ctx["base"].progress_bar), []
        while len(study.get_trials(deepcopy=False)) < n_trials:
            study.optimize(lambda trial: _objective(optuna, trial, ctx, n_trials, mine), n_trials=1,
                           catch=(TrialFailed,))
            result = _result(study, ctx, n_trials)
            keep_best_checkpoint(result.trials, result.best)
            report.update(result, next((t for t in result.trials if mine and t.index == mine[-1]), None))
    finally:
        optuna.logging.set_verbosity(verbosity)
    result = _result(study, ctx, n_trials)
    keep_best_checkpoint(result.trials, result.best)
    report.close(result)
    return result


def _open_storage(optuna, url: str):
    """An RDB storage. Workers starting together race to create the SQLite tables and schema
    version; the loser sees IntegrityError/OperationalError and simply opens the finished schema."""
    import sqlalchemy.exc

    for attempt in range(4):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            if attempt == 3:
                raise
            time.sleep(0.25 * (attempt + 1))


def _sampler(optuna, ctx):
    if ctx["method"] == "grid":
        return optuna.samplers.GridSampler({k: list(v) for k, v in ctx["space"].items()}, seed=ctx["seed"])
    return optuna.samplers.RandomSampler(seed=ctx["seed"])  # reseeded per trial in _objective


def _pruner(optuna, ctx):
    if ctx["prune"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def _check_same_search(study, ctx: dict, storage: str, study_name: str):
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        study.set_user_attr(SPEC_ATTR, ctx["spec"])
    elif stored != ctx["spec"]:
        raise ValueError(f"study {study_name!r} in {storage} belongs to a different search "
                         f"({spec_changes(stored, ctx['spec'])}). HINT: use another study_name, or delete the study "
                         "to start over")


def _objective(optuna, trial, ctx: dict, n_trials: int, mine: list) -> float:
    if trial.number >= n_trials:  # another worker took the last trial in the same instant
        trial.set_user_attr("surplus", True)
        raise optuna.TrialPruned(f"surplus: the study already holds {n_trials} trials")
    mine.append(trial.number)
    if ctx["method"] == "random":  # draws depend on (seed, trial number), not on which worker runs it
        trial.study.sampler = optuna.samplers.RandomSampler(seed=(ctx["seed"] * 1_000_003 + trial.number) % 2**32)
    params = {name: _suggest(trial, name, values) for name, values in ctx["space"].items()}
    cfg = trial_config(ctx, trial.number, params)
    if cfg.run_dir.exists():  # left by an older study in the same search_dir
        shutil.rmtree(cfg.run_dir)

    def should_stop(epoch, value, best):
        if ctx["prune"] == "none":
            return False
        trial.report(value, epoch)
        return trial.should_prune()

    ended = train_trial(ctx, cfg, should_stop)
    # one attribute, one storage commit (each SQLite commit is an fsync)
    trial.set_user_attr(RESULT_ATTR, {"seed": cfg.seed, **{k: ended[k] for k in RESULT_KEYS}})
    if ended["status"] == "failed":
        raise TrialFailed(ended["error"])
    if ended["status"] == "pruned":
        raise optuna.TrialPruned(f"pruned after epoch {ended['epochs']}")
    return ended["metric"]


def _suggest(trial, name: str, values):
    if isinstance(values, Distribution):
        low_high = values.args
        if values.kind == "loguniform":
            return trial.suggest_float(name, *low_high, log=True)
        if values.kind == "uniform":
            return trial.suggest_float(name, *low_high)
        if values.kind == "intuniform":
            return trial.suggest_int(name, *low_high)
    return trial.suggest_categorical(name, list(values.args if isinstance(values, Distribution) else values))


def _result(study, ctx: dict, n_trials: int) -> SearchResult:
    trials = []
    for ft in study.get_trials(deepcopy=False):
        if ft.user_attrs.get("surplus") or ft.number >= n_trials:
            continue
        attrs = ft.user_attrs.get(RESULT_ATTR, {})
        params = {k: ft.params[k] for k in ctx["space"] if k in ft.params}
        config = trial_config(ctx, ft.number, params) if len(params) == len(ctx["space"]) else None
        status = _STATUS[ft.state.name]
        trials.append(Trial(
            ft.number, params, config.seed if config else None, status,
            metric=ft.value if status == "finished" else attrs.get("metric"), best_epoch=attrs.get("best_epoch"),
            epochs=attrs.get("epochs", 0), wall_time_s=attrs.get("wall_time_s"),
            run_dir=str(Path(ctx["search_dir"]) / f"trial-{ft.number:03d}"), config=config,
            error=attrs.get("error"), curve=attrs.get("curve", [])))
    return SearchResult(trials, best_trial(trials, ctx["mode"]), ctx["metric"], ctx["mode"], str(ctx["search_dir"]),
                        backend="optuna", space=ctx["spec"]["space"])
