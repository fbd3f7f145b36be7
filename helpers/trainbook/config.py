"""Training configuration: one frozen, validated, versioned dataclass.

    cfg = TrainingConfig(epochs=3, batch_size=16)  # or TrainingConfig.load("config.json")

Presets and fluent construction live in trainbook.builder (TrainingConfigBuilder).

Every problem in a config is collected and reported at once in a single ConfigError,
one line per field: `learning_rate must be a number > 0; got -1`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

CONFIG_VERSION = 2


class ConfigError(ValueError):
    """A configuration is invalid. The message has one line per bad field."""

    def __init__(self, problems: list[str], title: str = "invalid TrainingConfig"):
        self.problems = list(problems)
        super().__init__(f"{title}:\n  " + "\n  ".join(self.problems))

    def _render_traceback_(self):  # IPython (Jupyter, Colab) shows the message alone, not a traceback
        return [f"{type(self).__name__}: {self}"]


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    # --- run ---
    run_name: str = "run"                # folder name under output_dir
    output_dir: str = "runs"             # parent folder of every run dir
    seed: int = 0                        # seeds python, numpy, torch and the data order
    deterministic: bool = False          # torch.use_deterministic_algorithms for this run
    # --- optimization ---
    epochs: int = 3                      # passes over the training data, >= 1
    max_steps: int = 0                   # optimizer steps to stop after; 0 = no limit
    batch_size: int = 32                 # samples per micro-batch
    learning_rate: float = 3e-4          # peak learning rate, > 0
    weight_decay: float = 0.01           # decoupled weight decay (not on biases/norms/embeddings)
    optimizer: str = "adamw"             # adamw | sgd
    lr_schedule: str = "cosine"          # cosine | linear | constant (after warmup)
    warmup_ratio: float = 0.0            # fraction of total steps spent warming up, [0, 1)
    warmup_steps: int = 0                # or an absolute number of warmup steps (not both)
    min_lr_ratio: float = 0.1            # final lr as a fraction of learning_rate, [0, 1]
    max_grad_norm: float = 1.0           # global-norm clipping; 0 = off
    gradient_accumulation_steps: int = 1  # micro-batches per optimizer step, >= 1
    # --- speed ---
    precision: str = "auto"              # auto | fp32 | bf16 | fp16 (fp16 needs CUDA)
    compile: bool = False                # torch.compile the model (eager fallback on failure)
    device: str = "auto"                 # auto | cpu | cuda | cuda:N | mps
    num_workers: int | str = "auto"      # DataLoader worker processes, >= 0 | auto (0 in a notebook on
                                         # <= 2 cores, else min(4, cores - 1); tb.environment() shows it)
    # --- evaluation and checkpoints ---
    eval_every_n_epochs: int = 1         # validate every N epochs (and after the last)
    early_stopping_patience: int = 0     # evaluations without improvement before stopping; 0 = off
    early_stopping_metric: str = "val_loss"  # any key of the per-epoch history
    early_stopping_mode: str = "auto"    # min | max | auto (max for accuracy, min otherwise)
    early_stopping_min_delta: float = 0.0  # smallest change that counts as an improvement, >= 0
    checkpoint_dir: str = ""             # "" = <output_dir>/<run_name>/checkpoints
    save_every_n_epochs: int = 1         # checkpoint every N epochs; 0 = only at the end
    save_every_n_steps: int = 0          # also checkpoint every N optimizer steps; 0 = off
    keep_last: int = 2                   # step/epoch checkpoints kept (best.pt kept in addition)
    resume: str = "auto"                 # auto (newest checkpoint of this run) | never | <path>
    persist_dir: str = ""                # also copy the run to <persist_dir>/<run_name>/ (Colab: a Drive folder)
    on_config_change: str = "refuse"     # same run_name, other settings: refuse | new_run (<run_name>-2, -3 ...)
    # --- tracking ---
    wandb_mode: str = "auto"             # auto | online | offline | disabled
    wandb_project: str = "trainbook"     # W&B project name
    wandb_entity: str = ""               # W&B entity (team or user); "" = default
    log_every_n_steps: int = 10          # progress-bar refresh and console log interval, >= 1
    progress_bar: bool = True            # tqdm bars (widget in notebooks)
    # --- export ---
    export_bundle: bool = False          # write an export bundle at the end of training
    export_formats: tuple = ("safetensors",)  # safetensors | torch_export
    # --- distributed ---
    strategy: str = "single"             # single | ddp (under torchrun)
    # --- versioning ---
    config_version: int = CONFIG_VERSION  # schema version, migrated by from_dict

    def __post_init__(self):
        for f in dataclasses.fields(self):  # normalise JSON forms: int -> float, list -> tuple
            value = getattr(self, f.name)
            if f.type == "float" and type(value) is int:
                object.__setattr__(self, f.name, float(value))
            if f.type == "tuple" and isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))
        problems = [p for name, check in _RULES.items() if (p := check(name, getattr(self, name)))]
        problems += _cross_field_problems(self)
        if problems:
            raise ConfigError(problems)

    # --- derived paths ---
    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.run_name

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return Path(self.checkpoint_dir) if self.checkpoint_dir else self.run_dir / "checkpoints"

    # --- serialisation ---
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["export_formats"] = list(self.export_formats)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingConfig":
        """Build a config from a dict, migrating older config_versions.

        Raises:
            ConfigError: unknown keys (with the closest field name) or invalid values.
        """
        if not isinstance(d, dict):
            raise ConfigError([f"config must be a dict of field -> value; got {type(d).__name__}"])
        d = migrate(dict(d))
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ConfigError([f"unknown field {k!r}{suggest(k, names)}" for k in unknown])
        return cls(**d)

    def save(self, path) -> Path:
        """Write the config as JSON; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path) -> "TrainingConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError([f"{path} is not valid JSON: {e}"]) from None
        return cls.from_dict(d)

    def diff(self, other: "TrainingConfig") -> dict:
        """Fields that differ: {field: (self_value, other_value)}."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}

    def summary(self, against: "TrainingConfig | None" = None) -> str:
        """A readable two-column table: every field, or with `against` (e.g. the preset the config was
        built from) the run name, the run folder and only the fields whose value differs from it.

        Args:
            against: the config to compare with; None lists every field.
        Returns:
            One `field  value` line per field (`field  value  (preset: other)` with `against`).
        """
        d = self.to_dict()
        if against is None:
            width = max(map(len, d))
            return "\n".join(f"{k:<{width}}  {v}" for k, v in d.items())
        rows = [("run_name", self.run_name, None), ("run folder", str(self.run_dir), None)]
        rows += [(k, mine, other) for k, (mine, other) in self.diff(against).items()
                 if k not in ("run_name", "output_dir")]
        width = max(len(k) for k, _, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" + ("" if k in ("run_name", "run folder") else f"  (preset: {o})")
                         for k, v, o in rows)


# --- validation rules: each returns None or one problem line ---

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_rule(lo: int, hi: float = math.inf) -> Callable:
    def check(name, v):
        if not (_is_int(v) and lo <= v <= hi):
            rng = f">= {lo}" if hi == math.inf else f"in [{lo}, {hi}]"
            return f"{name} must be an integer {rng}; got {v!r}"
    return check


def _float_rule(lo: float, hi: float = math.inf, lo_open=False, hi_open=False) -> Callable:
    def check(name, v):
        ok = _is_number(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok:
            left, right = "(" if lo_open else "[", ")" if hi_open or hi == math.inf else "]"
            return f"{name} must be a number in {left}{lo}, {hi}{right}; got {v!r}"
    return check


def _choice_rule(*allowed: str) -> Callable:
    def check(name, v):
        if not isinstance(v, str) or v not in allowed:
            options = ", ".join(repr(a) for a in allowed)
            hint = suggest(v, allowed) if isinstance(v, str) else ""
            return f"{name} must be one of {options}; got {v!r}{hint}"
    return check


def _bool_rule(name, v):
    if not isinstance(v, bool):
        return f"{name} must be True or False; got {v!r}"


def _str_rule(allow_empty: bool) -> Callable:
    def check(name, v):
        if not isinstance(v, str) or (not allow_empty and not v.strip()):
            return f"{name} must be a {'' if allow_empty else 'non-empty '}string; got {v!r}"
    return check


def _name_rule(name, v):
    if not isinstance(v, str) or not v.strip() or "/" in v or "\\" in v or v in (".", ".."):
        return f"{name} must be a non-empty folder name without '/'; got {v!r}"


def _device_rule(name, v):
    ok = isinstance(v, str) and (v in ("auto", "cpu", "cuda", "mps")
                                 or (v.startswith("cuda:") and v[5:].isdigit()))
    if not ok:
        return f"{name} must be one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'; got {v!r}"


def _workers_rule(name, v):
    if v != "auto" and not (_is_int(v) and 0 <= v <= 64):
        return f"{name} must be 'auto' or an integer in [0, 64]; got {v!r}"


def _resume_rule(name, v):
    if not isinstance(v, str) or not v:
        return f"{name} must be 'auto', 'never' or a checkpoint path; got {v!r}"


EXPORT_FORMATS = ("safetensors", "torch_export")


def _formats_rule(name, v):
    if (not isinstance(v, tuple) or not v
            or not all(isinstance(x, str) and x in EXPORT_FORMATS for x in v)):
        return f"{name} must be a non-empty list drawn from {list(EXPORT_FORMATS)}; got {v!r}"


def _version_rule(name, v):
    if v != CONFIG_VERSION or not _is_int(v):
        return f"{name} must be {CONFIG_VERSION} after migration; got {v!r}"


_RULES: dict[str, Callable[[str, Any], str | None]] = {
    "run_name": _name_rule,
    "output_dir": _str_rule(allow_empty=False),
    "seed": _int_rule(0, 2**32 - 1),
    "deterministic": _bool_rule,
    "epochs": _int_rule(1),
    "max_steps": _int_rule(0),
    "batch_size": _int_rule(1),
    "learning_rate": _float_rule(0.0, 10.0, lo_open=True),
    "weight_decay": _float_rule(0.0, 10.0),
    "optimizer": _choice_rule("adamw", "sgd"),
    "lr_schedule": _choice_rule("cosine", "linear", "constant"),
    "warmup_ratio": _float_rule(0.0, 1.0, hi_open=True),
    "warmup_steps": _int_rule(0),
    "min_lr_ratio": _float_rule(0.0, 1.0),
    "max_grad_norm": _float_rule(0.0),
    "gradient_accumulation_steps": _int_rule(1),
    "precision": _choice_rule("auto", "fp32", "bf16", "fp16"),
    "compile": _bool_rule,
    "device": _device_rule,
    "num_workers": _workers_rule,
    "eval_every_n_epochs": _int_rule(1),
    "early_stopping_patience": _int_rule(0),
    "early_stopping_metric": _str_rule(allow_empty=False),
    "early_stopping_mode": _choice_rule("auto", "min", "max"),
    "early_stopping_min_delta": _float_rule(0.0),
    "checkpoint_dir": _str_rule(allow_empty=True),
    "save_every_n_epochs": _int_rule(0),
    "save_every_n_steps": _int_rule(0),
    "keep_last": _int_rule(1),
    "resume": _resume_rule,
    "persist_dir": _str_rule(allow_empty=True),
    "on_config_change": _choice_rule("refuse", "new_run"),
    "wandb_mode": _choice_rule("auto", "online", "offline", "disabled"),
    "wandb_project": _str_rule(allow_empty=False),
    "wandb_entity": _str_rule(allow_empty=True),
    "log_every_n_steps": _int_rule(1),
    "progress_bar": _bool_rule,
    "export_bundle": _bool_rule,
    "export_formats": _formats_rule,
    "strategy": _choice_rule("single", "ddp"),
    "config_version": _version_rule,
}


def _cross_field_problems(c: TrainingConfig) -> list[str]:
    problems = []
    if _is_number(c.warmup_ratio) and _is_int(c.warmup_steps) and c.warmup_ratio > 0 and c.warmup_steps > 0:
        problems.append(f"warmup_ratio and warmup_steps cannot both be set; got warmup_ratio="
                        f"{c.warmup_ratio!r} and warmup_steps={c.warmup_steps!r} (set one to 0)")
    if c.precision == "fp16" and c.device in ("cpu", "mps"):
        problems.append(f"precision 'fp16' needs a CUDA device; got device={c.device!r} "
                        "(use precision='bf16' or 'fp32' on CPU)")
    problems += _run_folder_problems(c)
    return problems


def _run_folder_problems(c: TrainingConfig) -> list[str]:
    problems = []
    if c.on_config_change == "new_run" and isinstance(c.checkpoint_dir, str) and c.checkpoint_dir:
        problems.append(f"on_config_change='new_run' needs checkpoint_dir='' (each run folder keeps its own "
                        f"checkpoints); got checkpoint_dir={c.checkpoint_dir!r}")
    if c.on_config_change == "new_run" and c.strategy == "ddp":
        problems.append("on_config_change='new_run' cannot be used with strategy='ddp' (every rank must train in "
                        "the same folder); use 'refuse' and pick run_name yourself")
    if all(isinstance(v, str) for v in (c.persist_dir, c.output_dir, c.run_name)) and c.persist_dir:
        local, persisted = (os.path.join(os.path.abspath(d), c.run_name)
                            for d in (c.output_dir, c.persist_dir))
        if local == persisted or _inside(local, persisted) or _inside(persisted, local):
            problems.append(f"persist_dir must keep its copy of the run apart from the run folder; got persist_dir="
                            f"{c.persist_dir!r} and output_dir={c.output_dir!r} (use another folder, e.g. "
                            "/content/drive/MyDrive/trainbook in Colab)")
    return problems


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def suggest(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainingConfig))


# --- migrations: one explicit function per old version ---

def _migrate_v1(d: dict) -> dict:
    """Version 1 used `lr`, `grad_clip`, `use_wandb` (bool) and `fp16` (bool)."""
    renames = {"lr": "learning_rate", "grad_clip": "max_grad_norm", "accumulate": "gradient_accumulation_steps"}
    for old, new in renames.items():
        if old in d:
            d[new] = d.pop(old)
    if "use_wandb" in d:
        d["wandb_mode"] = "auto" if d.pop("use_wandb") else "disabled"
    if "fp16" in d:
        d["precision"] = "fp16" if d.pop("fp16") else "auto"
    d["config_version"] = 2
    return d


_MIGRATIONS = {1: _migrate_v1}


def migrate(d: dict) -> dict:
    """Upgrade a config dict from any older config_version to the current one."""
    version = d.get("config_version", CONFIG_VERSION)
    while _is_int(version) and version in _MIGRATIONS:
        d = _MIGRATIONS[version](d)
        version = d["config_version"]
    return d
