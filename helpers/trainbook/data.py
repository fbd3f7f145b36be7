"""Built-in offline datasets and shifted "current" sets (user data adapters: user_data.py).

    data = load_task_data("lm", source="builtin", seed=0, limit=2000)
    data.train, data.val, data.current, data.spec

Built-in data is real text and images nobody here wrote:
- lm: bytes of the Python standard library's source files, split by file (train/val/current
  never share a file); each split takes at most 8 random windows per file, so even a small
  split covers many files. The stdlib differs between Python versions, so the windows do too.
- text-cls: which stdlib package (asyncio, email, http, multiprocessing, unittest, xml) a
  128-byte window comes from; windows are shuffled and split per class, classes balanced.
- vision-cls: scikit-learn's bundled 8x8 digits, scaled to [0, 1].

`current` is an iid held-out split by default. `shift="kind"` or `"kind:strength"` gives a
documented distribution shift instead:
- text: "noise" (replace a fraction of bytes with random bytes, default 0.15),
  "truncate" (keep a fraction of each window, default 0.3), "packages" (lm: windows from the
  pydoc_data package, the language reference as English prose, never seen in training;
  text-cls: class prior shifted so one class holds a fraction of the samples, default 0.7).
- vision: "brightness" (add a constant, default 0.3), "noise" (Gaussian std, default 0.3),
  "rotation" (degrees, default 30).
"""

from __future__ import annotations

import dataclasses
import math
import random
import sysconfig
from pathlib import Path

import torch

from .tasks import TaskSpec

SHIFT_DEFAULTS = {
    "text": {"noise": 0.15, "truncate": 0.3, "packages": 0.7},
    "vision": {"brightness": 0.3, "noise": 0.3, "rotation": 30.0},
}
_LM_SHIFT_PACKAGES = ("pydoc_data",)  # the language reference as prose inside a .py file
_LM_WINDOWS_PER_FILE = 8  # lm splits sample at most this many windows per file: many files, iid-like
_SKIP_DIRS = {"test", "tests", "site-packages", "idle_test", "__pycache__"} | set(_LM_SHIFT_PACKAGES)


class DataError(ValueError):
    """Input data cannot be used; the message names the file and the problem."""


class ExampleDataset(torch.utils.data.Dataset):
    """A list of examples (dicts of tensors/ints) with a little provenance in `info`."""

    def __init__(self, examples: list[dict], info: dict | None = None):
        self.examples, self.info = examples, dict(info or {})

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]

    def __repr__(self):
        return f"ExampleDataset({len(self)} examples, {self.info.get('source', '?')})"


@dataclasses.dataclass
class TaskData:
    train: ExampleDataset
    val: ExampleDataset
    current: ExampleDataset
    spec: TaskSpec
    info: dict = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"task {self.spec.name}: train {len(self.train)} | val {len(self.val)} | "
                 f"current {len(self.current)} ({self.info.get('current', 'iid')})"]
        if "class_balance" in self.info:
            balance = ", ".join(f"{k} {v}" for k, v in self.info["class_balance"].items())
            lines.append(f"train class balance: {balance}")
        return "\n".join(lines)


def load_task_data(task: str, source: str = "builtin", seed: int = 0, limit: int | None = None,
                   shift: str | None = None, spec: TaskSpec | None = None) -> TaskData:
    """Load train/val/current splits for a task.

    Args:
        task: "lm", "text-cls" or "vision-cls".
        source: "builtin", a path (text file or folder of .txt for lm, CSV with text,label for
            text-cls, image folder with one sub-folder per class for vision-cls) or "hf:<name>".
        seed: controls file/row selection and shuffling.
        limit: at most this many training examples (val and current get limit // 4 each).
        shift: None/"none" for an iid current split, or "kind[:strength]" (see module doc).
        spec: override the task's preset spec (e.g. a longer max_seq_len).
    Returns:
        TaskData(train, val, current, spec, info).
    Raises:
        DataError: bad input, naming the file and the problem.
    """
    from . import user_data  # imports this module: a top-level import would be circular

    spec = spec or TaskSpec.preset(task)
    kind, strength = parse_shift(shift, spec)
    if source == "builtin":
        splits, info = _BUILTIN[task](spec, seed, limit, kind, strength)
    elif isinstance(source, str) and source.startswith("hf:"):
        splits, info, spec = user_data._load_hf(task, source[3:], spec, seed, limit)
    else:
        splits, info, spec = user_data._load_path(task, Path(source), spec, seed, limit)
    train, val, current = splits
    if kind != "none" and source != "builtin":
        current = apply_shift(current, spec, kind, strength, seed)
    info["current"] = "iid" if kind == "none" else f"shift {kind}:{strength:g}"
    if spec.kind == "classification":
        info["class_balance"] = class_balance(train, spec)
    mk = lambda part, ex: ExampleDataset(ex, {**info, "split": part})  # noqa: E731
    return TaskData(mk("train", train), mk("val", val), mk("current", current), spec, info)


def parse_shift(shift: str | None, spec: TaskSpec) -> tuple[str, float]:
    """'noise:0.2' -> ('noise', 0.2); None/'none' -> ('none', 0.0)."""
    if shift in (None, "", "none"):
        return "none", 0.0
    kind, _, value = str(shift).partition(":")
    options = SHIFT_DEFAULTS[spec.modality]
    if kind not in options:
        raise DataError(f"shift must be 'none' or one of {sorted(options)} for {spec.modality} "
                        f"tasks (optionally 'kind:strength'); got {shift!r}")
    try:
        strength = float(value) if value else options[kind]
    except ValueError:
        raise DataError(f"shift strength must be a number, as in 'noise:0.2'; got {shift!r}") from None
    return kind, strength


def class_balance(examples, spec: TaskSpec) -> dict:
    counts = [0] * spec.num_classes
    for e in examples:
        counts[int(e["labels"])] += 1
    names = spec.class_names or tuple(str(i) for i in range(spec.num_classes))
    return {names[i]: c for i, c in enumerate(counts)}


# --- built-in text ---

def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files(packages=None) -> list[Path]:
    root = stdlib_dir()
    if packages is None:
        files = [p for p in root.rglob("*.py") if not (_SKIP_DIRS & set(p.relative_to(root).parts[:-1]))]
    else:
        files = [p for pkg in packages for p in (root / pkg).rglob("*.py")
                 if not ({"test", "tests", "idle_test"} & set(p.relative_to(root).parts[:-1]))]
    return sorted(files)


def _windows(data: bytes, length: int) -> list[dict]:
    if len(data) < 2:
        return []
    ids = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    return [{"input_ids": ids[i:i + length]} for i in range(0, len(ids), length) if len(ids) - i >= 2]


def _take_windows(files, length, budget, per_file=None, rng=None) -> list[dict]:
    """Windows of `length` bytes from files in order; with per_file, a random sample of at most
    that many windows per file, so a small budget still covers many files."""
    out = []
    for f in files:
        if budget is not None and len(out) >= budget:
            break
        windows = _windows(f.read_bytes(), length)
        if per_file is not None and len(windows) > per_file:
            windows = [windows[i] for i in sorted(rng.sample(range(len(windows)), per_file))]
        out += windows
    return out if budget is None else out[:budget]


def _builtin_lm(spec, seed, limit, kind, strength):
    files = _stdlib_files()
    random.Random(seed).shuffle(files)
    n_hold = max(1, len(files) // 10)
    val_files, cur_files, train_files = files[:n_hold], files[n_hold:2 * n_hold], files[2 * n_hold:]
    small = None if limit is None else max(1, limit // 4)
    rng = random.Random(seed)
    take = lambda fs, budget: _take_windows(fs, spec.max_seq_len, budget, _LM_WINDOWS_PER_FILE, rng)  # noqa: E731
    train, val = take(train_files, limit), take(val_files, small)
    if kind == "packages":  # windows of a package never seen in training, drawn from all its text
        current = _take_windows(_stdlib_files(_LM_SHIFT_PACKAGES), spec.max_seq_len, None)
        rng.shuffle(current)
        current = current[:small]
    else:
        current = take(cur_files, small)
        current = apply_shift(current, spec, kind, strength, seed) if kind != "none" else current
    info = {"source": f"python stdlib source ({stdlib_dir()})", "train_files": len(train_files),
            "val_files": len(val_files)}
    return (train, val, current), info


def _builtin_text_cls(spec, seed, limit, kind, strength):
    rng = random.Random(seed)
    per_class = []
    for label, pkg in enumerate(spec.class_names):
        windows = [w for w in _take_windows(_stdlib_files([pkg]), spec.max_seq_len, None)
                   if len(w["input_ids"]) == spec.max_seq_len]
        rng.shuffle(windows)
        per_class.append([{**w, "labels": label} for w in windows])
    n = min(len(w) for w in per_class)  # balance classes
    if limit is not None:
        n = min(n, max(1, math.ceil(limit / spec.num_classes * 1.5)))
    n_train, n_small = int(n * 2 / 3), max(1, n // 6)
    train = [e for w in per_class for e in w[:n_train]]
    val = [e for w in per_class for e in w[n_train:n_train + n_small]]
    current = [e for w in per_class for e in w[n_train + n_small:n_train + 2 * n_small]]
    if kind == "packages":  # prior shift: class 0 dominates the current set
        pool = [e for w in per_class for e in w[n_train + n_small:]]
        major = [e for e in pool if e["labels"] == 0]
        others = [e for e in pool if e["labels"] != 0]
        n_major = min(len(major), int(len(current) * strength))
        current = major[:n_major] + others[: len(current) - n_major]
    elif kind != "none":
        current = apply_shift(current, spec, kind, strength, seed)
    for part in (train, val, current):
        rng.shuffle(part)
    if limit is not None:
        train, val, current = train[:limit], val[:max(1, limit // 4)], current[:max(1, limit // 4)]
    return (train, val, current), {"source": "python stdlib packages " + ", ".join(spec.class_names)}


# --- built-in vision ---

def _builtin_vision(spec, seed, limit, kind, strength):
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = digits.target.tolist()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).tolist()
    n_small = len(order) * 15 // 100
    parts = order[:n_small], order[n_small:2 * n_small], order[2 * n_small:]
    val, current, train = ([{"pixel_values": images[i], "labels": labels[i]} for i in p] for p in parts)
    if limit is not None:
        train, val, current = train[:limit], val[:max(1, limit // 4)], current[:max(1, limit // 4)]
    if kind != "none":
        current = apply_shift(current, spec, kind, strength, seed)
    return (train, val, current), {"source": "scikit-learn digits (1797 images, 8x8)"}


_BUILTIN = {"lm": _builtin_lm, "text-cls": _builtin_text_cls, "vision-cls": _builtin_vision}


# --- shifts ---

def apply_shift(examples: list[dict], spec: TaskSpec, kind: str, strength: float, seed: int = 0) -> list[dict]:
    """Return shifted copies of examples (see the module docstring for the kinds)."""
    g = torch.Generator().manual_seed(seed + 1)
    out = []
    for e in examples:
        e = dict(e)
        if spec.modality == "text":
            ids = e["input_ids"]
            if kind == "noise":
                mask = torch.rand(len(ids), generator=g) < strength
                ids = torch.where(mask, torch.randint(0, spec.vocab_size, ids.shape, generator=g), ids)
            elif kind == "truncate":
                ids = ids[: max(2, int(len(ids) * strength))]
            e["input_ids"] = ids
        else:
            x = e["pixel_values"]
            if kind == "brightness":
                x = x + strength
            elif kind == "noise":
                x = x + strength * torch.randn(x.shape, generator=g)
            elif kind == "rotation":
                x = _rotate(x, strength)
            e["pixel_values"] = x.clamp(0.0, 1.0)
        out.append(e)
    return out


def _rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    theta = math.radians(degrees)
    rot = torch.tensor([[math.cos(theta), -math.sin(theta), 0.0],
                        [math.sin(theta), math.cos(theta), 0.0]]).unsqueeze(0)
    grid = torch.nn.functional.affine_grid(rot, [1, *x.shape], align_corners=False)
    return torch.nn.functional.grid_sample(x.unsqueeze(0), grid, align_corners=False).squeeze(0)
