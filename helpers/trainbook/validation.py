"""The validation pass: every problem with a run's settings and this machine, before any work.

    cfg = validate_run(preset="quick", task="lm", dataset="notes.txt", epochs=3)   # or validate_run(cfg, task=...)

One pass over the TrainingConfig fields, the run keys (task, dataset, data_limit, model_size,
max_seq_len, model_file, the notebook's search and drift settings) and the environment (devices,
precision, folders and free space, data files, W&B, the checkpoint to resume) collects every
problem and raises one ConfigError, one line per problem with a HINT. The notebook's config cell
calls validate_run on the form's values; `python -m trainbook train` calls run_problems on the
config file plus --set values. Both run before any data or model is loaded.

Adding a check (for a new field or run key): write a function below decorated with @check. It
receives a Run and yields problem lines; Run's readers (text, integer, flag, path) return None
for a value that is missing or of the wrong type, which the type rules report on their own.
A notebook-only key also gets a type rule in FORM_RULES.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator

from .config import FIELD_NAMES, ConfigError, TrainingConfig, suggest

RUN_NAME_MAX = 100                   # characters
RUN_NAME_CHARACTERS = re.compile(r"[\w.+=@,-]")  # letters and digits of any script, and _ . + = @ , -
MIN_FREE_BYTES = 50 * 2**20          # a run folder's disk needs this much free (checkpoints, logs)
MAX_SEQ_LEN = 2**20                  # above this, no machine holds a batch (and indices overflow)
BYTE_VOCAB, ACTIVATIONS_PER_LAYER = 256, 16  # the memory estimate of one batch: logits + activations per token
NAME_MAX_BYTES = 255                 # one path component, on common file systems
DEFAULTS = {**{f.name: f.default for f in dataclasses.fields(TrainingConfig)}, "dataset": "builtin"}


@dataclasses.dataclass(frozen=True)
class Machine:
    """What this machine offers, as the checks see it (tests pass their own)."""

    cuda_devices: int = 0
    cuda_bf16: bool = False
    mps: bool = False
    gpu: str | None = None
    memory_bytes: int = 0  # the training device's memory (GPU 0, else RAM); 0 = unknown

    @classmethod
    def detect(cls) -> "Machine":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
        memory = torch.cuda.get_device_properties(0).total_memory if n else _ram_bytes()
        return cls(n, bool(n and torch.cuda.is_bf16_supported()), mps, torch.cuda.get_device_name(0) if n else None,
                   memory)

    @property
    def auto_device(self) -> str:
        return "cuda" if self.cuda_devices else "mps" if self.mps else "cpu"


def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: unknown
        return 0


class Run:
    """The values of one run (TrainingConfig defaults filled in) and the machine, for the checks."""

    def __init__(self, values: dict, machine: Machine):
        self.values, self.machine = {**DEFAULTS, **values}, machine

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        return value if isinstance(value, str) else None

    def integer(self, key: str) -> int | None:
        value = self.values.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def flag(self, key: str) -> bool | None:
        value = self.values.get(key)
        return value if isinstance(value, bool) else None

    def path(self, key: str) -> Path | None:
        """A non-empty string value without NUL bytes, as a Path."""
        value = self.text(key)
        return Path(value) if value and "\x00" not in value else None

    @property
    def task(self) -> str | None:
        from .tasks import TASK_NAMES

        task = self.text("task")
        return task if task in TASK_NAMES else None

    @property
    def run_dir(self) -> Path | None:
        output_dir, name = self.path("output_dir"), self.text("run_name")
        return output_dir / name if output_dir is not None and _is_folder_name(name) else None

    @property
    def checkpoint_dir(self) -> Path | None:
        return self.path("checkpoint_dir") or (self.run_dir / "checkpoints" if self.run_dir else None)


def _is_folder_name(name) -> bool:
    return (isinstance(name, str) and bool(name.strip()) and not {"\x00", "/", "\\"} & set(name)
            and name not in (".", ".."))


CHECKS: list[Callable[[Run], Iterator[str]]] = []


def check(fn):
    """Register a check: fn(run) yields problem lines."""
    CHECKS.append(fn)
    return fn


# ---------------------------------------------------------------------------- the entry points

def run_problems(values: dict, machine: Machine | None = None) -> list[str]:
    """Every problem the checks find in `values` (TrainingConfig fields and run keys), in check order.

    Values of the wrong type are skipped here; the TrainingConfig and run-key type rules report them.
    """
    run = Run(values, machine or Machine.detect())
    return [line for each in CHECKS for line in each(run)]


def validate_run(config: TrainingConfig | None = None, /, *, preset: str | None = None,
                 machine: Machine | None = None, **values) -> TrainingConfig:
    """Check a whole run at once: config fields, run keys and this machine; returns the TrainingConfig.

    Args:
        config: a TrainingConfig to start from; or preset: a TrainingConfigBuilder preset name.
        machine: the machine facts to check against (default: this machine).
        **values: TrainingConfig fields (override config/preset) and run keys (FORM_RULES).
    Returns:
        The TrainingConfig built from config/preset and the field values.
    Raises:
        ConfigError: every problem, one line each (field or key, the problem, a HINT).
    """
    from .builder import TrainingConfigBuilder

    problems, base = [], {}
    if config is not None:
        base = config.to_dict()
    elif preset is not None:
        try:
            base = TrainingConfigBuilder.preset(preset).build().to_dict()
        except ConfigError as e:
            problems += e.problems
    known = (*FIELD_NAMES, *FORM_RULES)
    problems += [f"unknown key {k!r}{suggest(k, known)}" for k in values if k not in known]
    problems += [p for k, rule in FORM_RULES.items() if k in values and (p := rule(k, values[k]))]
    cfg = None
    try:
        cfg = TrainingConfig.from_dict({**base, **{k: v for k, v in values.items() if k in FIELD_NAMES}})
    except ConfigError as e:
        problems += e.problems
    problems += run_problems({**base, **values}, machine)
    if problems:
        raise ConfigError(problems, title=f"invalid run settings ({len(problems)} problem{'s' * (len(problems) > 1)})")
    return cfg


# ---------------------------------------------------------------------------- type rules of the notebook's keys

def _choice(*options) -> Callable:
    def rule(key, value):
        if value not in options:
            return f"{key} must be one of {', '.join(map(repr, options))}; got {value!r}{suggest(str(value), options)}"
    return rule


def _integer(lo: int, meaning: str = "") -> Callable:
    def rule(key, value):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= lo):
            return f"{key} must be an integer >= {lo}{meaning}; got {value!r}"
    return rule


def _boolean(key, value):
    if not isinstance(value, bool):
        return f"{key} must be True or False; got {value!r}"


def _string(key, value):
    if not isinstance(value, str) or not value.strip():
        return f"{key} must be a non-empty string; got {value!r}"


FORM_RULES: dict[str, Callable] = {
    "task": _choice("lm", "text-cls", "vision-cls"),
    "dataset": _string,
    "data_limit": _integer(0, " (0 = all)"),
    "model_size": _choice("tiny", "small", "base"),
    "drift_shift": _string,
    "run_hp_search": _boolean,
    "search_method": _choice("grid", "random"),
    "n_trials": _integer(0),
    "export_model": _boolean,
}


# ---------------------------------------------------------------------------- the checks

def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, (list, tuple)) and any(_has_nul(v) for v in value)


@check
def no_nul_bytes(run: Run):
    for key, value in run.values.items():
        if _has_nul(value):
            yield (f"{key} contains a NUL byte (\\x00), which no name or path can hold. HINT: retype the value "
                   "(it was probably pasted with a control character)")


@check
def run_name_is_a_plain_folder_name(run: Run):
    name = run.text("run_name")
    if not _is_folder_name(name):
        return  # missing, '/', '.', NUL: TrainingConfig's rule or no_nul_bytes reports it
    if len(name) > RUN_NAME_MAX:
        yield (f"run_name is {len(name)} characters long; at most {RUN_NAME_MAX}. HINT: a short name such as "
               f"{_plain(name)[:40]!r}")
    bad = sorted({ch for ch in name if not RUN_NAME_CHARACTERS.fullmatch(ch)})
    if bad:
        yield (f"run_name {_short(name)} contains {', '.join(map(repr, bad))}; use letters, digits and _ . + = @ , -. "
               f"HINT: run_name={_plain(name)[:RUN_NAME_MAX]!r}")
    if name.startswith((".", "-")):
        yield f"run_name {_short(name)} starts with {name[0]!r} (a hidden file or an option). HINT: start it with a letter"


def _plain(name: str) -> str:
    return re.sub(r"[^\w.+=@,-]+", "-", name).strip(".-") or "run"


@check
def run_folders_are_writable(run: Run):
    folders = [("output_dir", run.run_dir)]
    if run.path("checkpoint_dir") is not None:
        folders.append(("checkpoint_dir", run.checkpoint_dir))
    for key, folder in folders:
        if folder is not None:
            yield from _folder_problems(key, folder)


def _folder_problems(key: str, folder: Path) -> Iterator[str]:
    long = [part for part in folder.parts if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES]
    if long:
        yield f"{key}: the folder name {_short(long[0])} is longer than {NAME_MAX_BYTES} bytes. HINT: a shorter name"
        return
    if why := unusable(folder):
        yield f"{key}: {_short(str(folder))} cannot be used ({why}). HINT: a shorter or plainer path"
        return
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        yield f"{key}: {folder} exists and is a file, not a folder. HINT: another {key} (or run_name)"
    elif not existing.is_dir():
        yield f"{key}: cannot create {folder}: {existing} is a file. HINT: another {key}"
    elif not os.access(existing, os.W_OK | os.X_OK):
        yield f"{key}: cannot write {folder}: {existing} is not writable by this user. HINT: a folder you own, e.g. 'runs'"
    elif (free := disk_free(existing)) < MIN_FREE_BYTES:
        yield (f"{key}: only {free / 2**20:.1f} MB free on the disk of {existing}; a run needs at least "
               f"{MIN_FREE_BYTES // 2**20} MB for checkpoints and logs. HINT: free some space, or put {key} on a "
               "bigger disk")


def disk_free(folder: Path) -> int:
    return shutil.disk_usage(folder).free


@check
def device_is_available(run: Run):
    device, m = run.text("device"), run.machine
    if device is None:
        return
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        index = int(device[5:]) if ":" in device else 0
        hint = "HINT: device='auto' (the GPU when there is one, else the CPU) or device='cpu'"
        if m.cuda_devices == 0:
            yield f"device={device!r} but this machine has no CUDA GPU (torch sees none). {hint}"
        elif index >= m.cuda_devices:
            yield (f"device={device!r} but this machine has {m.cuda_devices} CUDA GPU(s): cuda:0"
                   f"{'' if m.cuda_devices == 1 else f' to cuda:{m.cuda_devices - 1}'}. {hint}")
    elif device == "mps" and not m.mps:
        yield "device='mps' but Apple's MPS backend is not available here. HINT: device='auto' or 'cpu'"


@check
def precision_fits_the_device(run: Run):
    precision, device, m = run.text("precision"), run.text("device"), run.machine
    if device != "auto":
        return  # an explicit device: TrainingConfig's fp16/cpu rule and device_is_available speak
    if precision == "fp16" and m.auto_device != "cuda":
        yield (f"precision='fp16' needs a CUDA GPU; this run would train on the {m.auto_device} (device='auto'). "
               "HINT: precision='auto' (fp32 here, bf16/fp16 on a GPU), 'bf16' or 'fp32'")
    if precision == "bf16" and m.auto_device == "cuda" and not m.cuda_bf16:
        yield (f"precision='bf16' needs a GPU with bf16 support (Ampere or newer); {m.gpu} has none. "
               "HINT: precision='auto' (fp16 with loss scaling here) or 'fp16'")


@check
def wandb_can_start(run: Run):
    mode = run.text("wandb_mode")
    if mode in ("online", "offline") and importlib.util.find_spec("wandb") is None:
        yield f"wandb_mode={mode!r} needs the wandb package, which is not installed. HINT: pip install wandb, or wandb_mode='disabled'"
    elif mode == "online" or (mode == "auto" and os.environ.get("WANDB_MODE") == "online"):
        from .tracking import resolve_wandb_mode

        try:
            resolve_wandb_mode(mode)
        except ConfigError as e:
            yield " ".join(e.problems)


@check
def dataset_fits_the_task(run: Run):
    from .tasks import TaskSpec

    task, source = run.task, run.text("dataset")
    if task is None or not source or "\x00" in source:
        return
    if source == "builtin":
        from .data.builtin import min_data_limit

        limit, minimum = run.integer("data_limit"), min_data_limit(task, TaskSpec.preset(task))
        if limit and limit < minimum:
            yield (f"data_limit={limit} leaves no training examples of the built-in {task} data; it needs at least "
                   f"{minimum}. HINT: data_limit >= {minimum} (or no limit)")
    elif source.startswith("hf:"):
        if task == "vision-cls":
            yield f"dataset={source!r}: Hugging Face datasets are read for text tasks only. HINT: an image folder"
        elif not source[3:].strip():
            yield "dataset='hf:' names no dataset. HINT: dataset='hf:<name>' (e.g. 'hf:imdb') or a local folder"
        elif importlib.util.find_spec("datasets") is None:
            yield (f"dataset={source!r} needs the datasets package, which is not installed. HINT: pip install "
                   "datasets, or point dataset at local files")
    elif why := unusable(Path(source).expanduser()):
        yield f"dataset={_short(source)} cannot be read ({why}). HINT: dataset='builtin', or the path of your data"
    else:
        from .data.sources import source_problems

        max_seq_len = run.integer("max_seq_len") or TaskSpec.preset(task).max_seq_len
        yield from source_problems(task, Path(source).expanduser(), min(max_seq_len, MAX_SEQ_LEN))


@check
def max_seq_len_fits_in_memory(run: Run):
    from .models.builtin import SIZES

    n = run.integer("max_seq_len")
    if n is None or n < 2 or run.task == "vision-cls":
        return
    size = run.text("model_size") if run.text("model_size") in SIZES else "tiny"
    batch = run.integer("batch_size") if (run.integer("batch_size") or 0) >= 1 else 32
    n_layer, _, width = SIZES[size]
    per_token = batch * (BYTE_VOCAB + width * n_layer * ACTIVATIONS_PER_LAYER) * 4 + width * 16
    memory = run.machine.memory_bytes
    if n > MAX_SEQ_LEN or (memory and n * per_token > memory):
        fits = min(MAX_SEQ_LEN, memory // per_token) if memory else MAX_SEQ_LEN
        yield (f"max_seq_len={_short(n)} with batch_size={batch} needs ~{n * per_token / 2**30:.3g} GB for one batch "
               f"of the {size} model" + (f"; this machine has {memory / 2**30:.3g} GB" if memory else "")
               + f". HINT: max_seq_len <= {fits} (the presets use 128), or a smaller batch_size")


@check
def model_file_is_python(run: Run):
    path = run.path("model_file")
    if path is None:
        return
    if why := unusable(path):
        yield f"model_file={_short(str(path))} cannot be read ({why}). HINT: the path of your model's .py file"
    elif path.suffix != ".py":
        yield (f"model_file={str(path)!r} is not a .py file. HINT: the Python file that defines your nn.Module "
               "(e.g. model.py)")
    elif not path.is_file():
        yield f"model_file={str(path)!r} does not exist. HINT: check the path (relative paths start at {os.getcwd()})"


@check
def resume_is_a_checkpoint(run: Run):
    path = run.path("resume")
    if path is None or str(path) in ("auto", "never"):
        return
    hint = ("HINT: resume='auto' (the newest checkpoint of this run), 'never', or the path of a step-NNNNNNNN.pt "
            "or best.pt from a run's checkpoints folder")
    if why := unusable(path):
        yield f"resume={_short(str(path))} cannot be read ({why}). {hint}"
        return
    if not path.is_file():
        yield f"resume={_short(str(path))}: no such checkpoint file. {hint}"
        return
    from .engine.checkpoint import CheckpointError, load_checkpoint

    try:
        load_checkpoint(path, mmap=True)
    except CheckpointError as e:
        yield f"resume: {e}. {hint}"


@check
def early_stopping_metric_exists(run: Run):
    from .tasks import TaskSpec

    task, metric = run.task, run.text("early_stopping_metric")
    if task is None or not metric:
        return
    known = ["val_loss", "train_loss"] + [f"val_{m}" for m in TaskSpec.preset(task).metrics if m != "loss"]
    if metric not in known:
        yield (f"early_stopping_metric must be one of {', '.join(map(repr, known))} for task {task!r}; got "
               f"{metric!r}{suggest(metric, known)}. HINT: early_stopping_metric='val_loss' works for every task")


@check
def search_has_trials(run: Run):
    n = run.integer("n_trials")
    if run.flag("run_hp_search") and n is not None and n < 1:
        yield f"n_trials={n} but run_hp_search=True: the search needs at least 1 trial. HINT: n_trials=2, or run_hp_search=False"


@check
def drift_shift_fits_the_task(run: Run):
    from .data import DataError, parse_shift
    from .tasks import TaskSpec

    shift = run.text("drift_shift")
    if run.task is None or shift is None or "drift_shift" not in run.values:
        return
    try:
        parse_shift(shift, TaskSpec.preset(run.task))
    except DataError as e:
        yield f"drift_shift: {e}. HINT: drift_shift='none'"


def unusable(path: Path) -> str | None:
    """Why the file system refuses to even look at `path` (a name too long, a loop...); None otherwise.

    A path that does not exist is not refused here: the checks say what should be there.
    """
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def _short(value, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters (also for integers too long to print)."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python converts to text
        text = f"<an integer of ~{int(value.bit_length() * math.log10(2))} digits>"
    return text if len(text) <= limit else f"{text[:limit - 20]}...({len(text)} characters)"
