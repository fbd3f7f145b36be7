"""Which folder a run trains in, and which checkpoint it resumes from (its own or the persisted copy).

    cfg = choose_run_folder(cfg)   # same settings: the same folder; other settings: <run_name>-2, -3 ...

The safe re-run rule: a run folder belongs to the settings recorded in its training_config.json
(locally or in persist_dir). A config with the same run_name and the same settings resumes that
run; with other settings (or resume='never') it gets the first numbered folder that is free or
holds the same settings, and one line says which fields changed and where the new run is.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import warnings
from pathlib import Path

from ..config import ConfigError, TrainingConfig
from ..persist import copy_file, copy_tree, persisted_run_dir
from .checkpoint import BEST_NAME, load_latest

# fields that may change between a checkpoint and the run resuming from it
RESUMABLE_CHANGES = {"epochs", "max_steps", "run_name", "output_dir", "checkpoint_dir", "resume", "num_workers",
                     "progress_bar", "log_every_n_steps", "wandb_mode", "wandb_project", "wandb_entity",
                     "save_every_n_epochs", "save_every_n_steps", "keep_last", "export_bundle", "export_formats",
                     "eval_every_n_epochs", "early_stopping_patience", "early_stopping_min_delta", "compile",
                     "persist_dir", "on_config_change"}
CONFIG_NAME, RESULTS_NAME = "training_config.json", "results.json"
# what a run resumed from its persisted copy takes back into the local run folder (checkpoints are read in place)
RESTORED_FILES = ("metrics.jsonl", "config.json", RESULTS_NAME)


def settings_changes(recorded: TrainingConfig, cfg: TrainingConfig) -> dict:
    """Fields that differ and that a resumed run may not change: {field: (recorded, now)}."""
    return {k: v for k, v in recorded.diff(cfg).items() if k not in RESUMABLE_CHANGES}


def check_resumable(payload: dict, cfg: TrainingConfig, path):
    """Refuse to resume from a checkpoint trained with other settings.

    Raises:
        ConfigError: one line per changed field, and a HINT.
    """
    changed = settings_changes(TrainingConfig.from_dict(payload["config"]), cfg)
    if changed:
        lines = [f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in changed.items()]
        raise ConfigError([f"cannot resume from {path}: the run was trained with other settings"] + lines
                          + ["HINT: use a new run_name, resume='never' to start over, or "
                             "on_config_change='new_run' to train in a new numbered run folder"])


def choose_run_folder(cfg: TrainingConfig) -> TrainingConfig:
    """The config of the run folder this config trains in, by the safe re-run rule.

    Candidates are run_name, run_name-2, run_name-3 ... (locally and in persist_dir). With
    resume='auto' the first candidate recording the same settings is resumed, or else the first
    free one starts; with resume='never' the first free one starts. A folder that only holds
    files other than a config or checkpoints (say an executed notebook) counts as free.

    Args:
        cfg: a TrainingConfig; resume=<path> is returned unchanged (the checkpoint is explicit).
    Returns:
        cfg with run_name set to the chosen folder and resume='auto' (it is this run's folder now).
        Prints one line when the folder is not run_name itself.
    """
    if cfg.resume not in ("auto", "never"):
        return cfg
    why = ""
    for n in itertools.count(1):
        name = cfg.run_name if n == 1 else f"{cfg.run_name}-{n}"
        candidate = dataclasses.replace(cfg, run_name=name, resume="auto")
        recorded, problem = recorded_config(candidate)
        free = recorded is None and problem is None
        same = recorded is not None and not settings_changes(recorded, cfg)
        if free or (same and cfg.resume == "auto"):
            if n > 1:
                action = "this run is" if free else "continuing"
                print(f"run {cfg.run_name!r} in {cfg.run_dir} {why}; {action} {name!r} in {candidate.run_dir}")
            return candidate
        if n == 1:
            why = _why_not_here(recorded, problem, cfg)


def _why_not_here(recorded: TrainingConfig | None, problem: str | None, cfg: TrainingConfig) -> str:
    if problem is not None:
        return f"is not resumable ({problem})"
    changed = settings_changes(recorded, cfg)
    if not changed:
        return "is kept (resume='never')"
    return "was trained with other settings (" + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()) + ")"


def recorded_config(cfg: TrainingConfig) -> tuple[TrainingConfig | None, str | None]:
    """The settings a run folder records: (config, None), (None, why it is unreadable) or (None, None) if free.

    Looks at training_config.json in the local run folder, then in the persisted one, then at
    the newest checkpoint of either.
    """
    persisted = persisted_run_dir(cfg)
    for path in (cfg.run_dir / CONFIG_NAME, persisted / CONFIG_NAME if persisted else None):
        if path is not None and path.is_file():
            try:
                return TrainingConfig.load(path), None
            except ConfigError as e:
                return None, f"{path}: {e.problems[0]}"
    payload, path = newest_checkpoint(cfg)
    if payload is None:
        return None, None
    try:
        return TrainingConfig.from_dict(payload["config"]), None
    except ConfigError as e:
        return None, f"{path}: {e.problems[0]}"


def newest_checkpoint(cfg: TrainingConfig, map_location="cpu") -> tuple[dict | None, Path | None]:
    """The newest readable step checkpoint of the run, in its checkpoint folder or in persist_dir."""
    persisted = persisted_run_dir(cfg)
    more = [persisted / "checkpoints"] if persisted is not None else []
    return load_latest(cfg.resolved_checkpoint_dir, map_location=map_location, more_dirs=more)


def is_persisted(cfg: TrainingConfig, path) -> bool:
    persisted = persisted_run_dir(cfg)
    return persisted is not None and Path(path).absolute().is_relative_to(persisted.absolute())


def restore_local_files(cfg: TrainingConfig):
    """Copy a persisted run's best.pt, metrics, results and W&B folder into the local run folder.

    Called when a run resumes from its persisted copy (a fresh runtime, an empty local disk), so the
    local folder agrees with the checkpoint the run continues from.
    """
    persisted = persisted_run_dir(cfg)
    best = persisted / "checkpoints" / BEST_NAME
    if best.is_file():
        copy_file(best, cfg.resolved_checkpoint_dir / BEST_NAME)
    for name in RESTORED_FILES:
        if (persisted / name).is_file():
            copy_file(persisted / name, cfg.run_dir / name)
    if (persisted / "wandb").is_dir():
        copy_tree(persisted / "wandb", cfg.run_dir / "wandb")


def recorded_result(run_dir) -> dict:
    """What the run's results.json recorded when it finished: wall_time_s, tracking, bundle_path.

    A run loaded (not retrained) reports these, so a re-run notebook keeps what the first run recorded.
    """
    path = Path(run_dir) / RESULTS_NAME
    if not path.is_file():
        return {}
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        warnings.warn(f"{path} is unreadable ({e}); the loaded run reports this call's wall time", RuntimeWarning,
                      stacklevel=2)
        return {}
    return {k: recorded[k] for k in ("wall_time_s", "tracking", "bundle_path") if k in recorded}
