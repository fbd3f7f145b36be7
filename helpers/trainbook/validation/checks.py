"""The checks of the validation pass, in the order their lines are reported.

    for check in CHECKS: problems += list(check(run))

Each check receives a Run and yields problem lines (the field or key, the problem, a HINT).
Run's readers return None for a value that is missing or of the wrong type; the type rules
report those, so a check skips them. Add a check for a new field or run key here, with @check.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator

from ..config import ConfigError, suggest
from .facts import Run, is_folder_name, short, unusable

RUN_NAME_MAX = 100                   # characters
RUN_NAME_CHARACTERS = re.compile(r"[\w.+=@,-]")  # letters and digits of any script, and _ . + = @ , -
MIN_FREE_BYTES = 50 * 2**20          # a run folder's disk needs this much free (checkpoints, logs)
MAX_SEQ_LEN = 2**20                  # above this, no machine holds a batch (and indices overflow)
BYTE_VOCAB, ACTIVATIONS_PER_LAYER = 256, 16  # the memory estimate of one batch: logits + activations per token
NAME_MAX_BYTES = 255                 # one path component, on common file systems

CHECKS: list[Callable[[Run], Iterator[str]]] = []


def check(fn):
    """Register a check: fn(run) yields problem lines."""
    CHECKS.append(fn)
    return fn


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
    if not is_folder_name(name):
        return  # missing, '/', '.', NUL: TrainingConfig's rule or no_nul_bytes reports it
    if len(name) > RUN_NAME_MAX:
        yield (f"run_name is {len(name)} characters long; at most {RUN_NAME_MAX}. HINT: a short name such as "
               f"{_plain(name)[:40]!r}")
    bad = sorted({ch for ch in name if not RUN_NAME_CHARACTERS.fullmatch(ch)})
    if bad:
        yield (f"run_name {short(name)} contains {', '.join(map(repr, bad))}; use letters, digits and _ . + = @ , -. "
               f"HINT: run_name={_plain(name)[:RUN_NAME_MAX]!r}")
    if name.startswith((".", "-")):
        yield f"run_name {short(name)} starts with {name[0]!r} (a hidden file or an option). HINT: start it with a letter"


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
        yield f"{key}: the folder name {short(long[0])} is longer than {NAME_MAX_BYTES} bytes. HINT: a shorter name"
        return
    if why := unusable(folder):
        yield f"{key}: {short(str(folder))} cannot be used ({why}). HINT: a shorter or plainer path"
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
        from ..tracking import resolve_wandb_mode

        try:
            resolve_wandb_mode(mode)
        except ConfigError as e:
            yield " ".join(e.problems)


@check
def dataset_fits_the_task(run: Run):
    from ..tasks import TaskSpec

    task, source = run.task, run.text("dataset")
    if task is None or not source or "\x00" in source:
        return
    if source == "builtin":
        from ..data.builtin import min_data_limit

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
        yield f"dataset={short(source)} cannot be read ({why}). HINT: dataset='builtin', or the path of your data"
    else:
        from ..data.sources import source_problems

        max_seq_len = run.integer("max_seq_len") or TaskSpec.preset(task).max_seq_len
        yield from source_problems(task, Path(source).expanduser(), min(max_seq_len, MAX_SEQ_LEN))


@check
def max_seq_len_fits_in_memory(run: Run):
    from ..models.builtin import SIZES

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
        yield (f"max_seq_len={short(n)} with batch_size={batch} needs ~{n * per_token / 2**30:.3g} GB for one batch "
               f"of the {size} model" + (f"; this machine has {memory / 2**30:.3g} GB" if memory else "")
               + f". HINT: max_seq_len <= {fits} (the presets use 128), or a smaller batch_size")


@check
def model_file_is_python(run: Run):
    path = run.path("model_file")
    if path is None:
        return
    if why := unusable(path):
        yield f"model_file={short(str(path))} cannot be read ({why}). HINT: the path of your model's .py file"
    elif path.suffix != ".py":
        yield (f"model_file={str(path)!r} is not a .py file. HINT: the Python file that defines your nn.Module "
               "(e.g. model.py)")
    elif not path.is_file():
        yield f"model_file={str(path)!r} does not exist. HINT: check the path (relative paths start at {os.getcwd()})"


@check
def model_source_exists(run: Run):
    source = run.values.get("model_source")
    if not isinstance(source, str) or source in ("", "builtin") or source.startswith(("gist:", "https://", "http://", "hf:")):
        return
    path = run.path("model_source")
    if why := unusable(path):
        yield f"model_source={short(source)} cannot be read ({why}). HINT: a .py file or a folder with model.py"
    elif not path.exists():
        yield (f"model_source={short(source)} does not exist. HINT: a .py file, a folder with model.py, a URL, "
               f"gist:<id> or hf:<name> (relative paths start at {os.getcwd()})")


@check
def resume_is_a_checkpoint(run: Run):
    path = run.path("resume")
    if path is None or str(path) in ("auto", "never"):
        return
    hint = ("HINT: resume='auto' (the newest checkpoint of this run), 'never', or the path of a step-NNNNNNNN.pt "
            "or best.pt from a run's checkpoints folder")
    if why := unusable(path):
        yield f"resume={short(str(path))} cannot be read ({why}). {hint}"
        return
    if not path.is_file():
        yield f"resume={short(str(path))}: no such checkpoint file. {hint}"
        return
    from ..engine.checkpoint import CheckpointError, load_checkpoint

    try:
        load_checkpoint(path, mmap=True)
    except CheckpointError as e:
        yield f"resume: {e}. {hint}"


@check
def early_stopping_metric_exists(run: Run):
    from ..tasks import TaskSpec

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
    from ..data import DataError, parse_shift
    from ..tasks import TaskSpec

    shift = run.text("drift_shift")
    if run.task is None or shift is None or "drift_shift" not in run.values:
        return
    try:
        parse_shift(shift, TaskSpec.preset(run.task))
    except DataError as e:
        yield f"drift_shift: {e}. HINT: drift_shift='none'"

