"""Built-in offline datasets: stdlib source text (lm, text-cls) and scikit-learn digits (vision-cls).

    (train, val, current), info, tokenizer = BUILTIN["lm"](spec, 0, 2000, "none", 0.0, ReadOptions())

Built-in data is real text and images nobody here wrote:
- lm: bytes of the Python standard library's source files, split by file (train/val/current
  never share a file); each split takes at most 8 random windows per file, so even a small
  split covers many files. The stdlib differs between Python versions, so the windows do too.
- text-cls: which stdlib package (asyncio, email, http, multiprocessing, unittest, xml) a
  128-byte window comes from; windows are shuffled and split per class, classes balanced.
- vision-cls: scikit-learn's bundled 8x8 digits, scaled to [0, 1].

With a tokenizer other than "byte" (ReadOptions.tokenizer) the same text is tokenized: lm windows
are max_seq_len tokens of the same files (a "bpe:<n>" tokenizer trains on the train files only);
text-cls examples are the same 128-byte windows, tokenized (a bpe trains on the train windows).

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

import math
import random
import sysconfig
from pathlib import Path

import torch

from .shifts import apply_shift
from .tokenizers import BPE_SAMPLE_BYTES, resolve_tokenizer
from .windows import byte_windows, token_windows

_LM_SHIFT_PACKAGES = ("pydoc_data",)  # the language reference as prose inside a .py file
_LM_WINDOWS_PER_FILE = 8  # lm splits sample at most this many windows per file: many files, iid-like
_SKIP_DIRS = {"test", "tests", "site-packages", "idle_test", "__pycache__"} | set(_LM_SHIFT_PACKAGES)


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


def _take_windows(files, length, budget, per_file=None, rng=None, encode=None) -> list[dict]:
    """Windows of `length` tokens from files in order; with per_file, a random sample of at most
    that many windows per file, so a small budget still covers many files. encode(file) -> ids
    (default: the file's bytes); a subword tokenizer's windows carry n_bytes."""
    out = []
    for f in files:
        if budget is not None and len(out) >= budget:
            break
        windows = byte_windows(f.read_bytes(), length) if encode is None else encode(f, length)
        if per_file is not None and len(windows) > per_file:
            windows = [windows[i] for i in sorted(rng.sample(range(len(windows)), per_file))]
        out += windows
    return out if budget is None else out[:budget]


def _file_encoder(tok):
    """None for bytes (the windows of today's built-in data); else file -> token windows with n_bytes."""
    if tok.is_byte:
        return None
    return lambda f, length: token_windows(torch.from_numpy(tok.encode(_read_text(f))), length, tok.token_bytes)


def _read_text(f: Path) -> str:
    return f.read_bytes().decode("utf-8", "replace")


def _train_texts(files):
    """The text of `files` in order, up to BPE_SAMPLE_BYTES (the files are already in a seeded order)."""
    total = 0
    for f in files:
        if total >= BPE_SAMPLE_BYTES:
            return
        text = _read_text(f)
        total += len(text)
        yield text


def _builtin_lm(spec, seed, limit, kind, strength, options):
    files = _stdlib_files()
    random.Random(seed).shuffle(files)
    n_hold = max(1, len(files) // 10)
    val_files, cur_files, train_files = files[:n_hold], files[n_hold:2 * n_hold], files[2 * n_hold:]
    tok = resolve_tokenizer(options.tokenizer, lambda: _train_texts(train_files), seed=seed, cache_dir=options.cache_dir)
    encode = _file_encoder(tok)
    small = None if limit is None else max(1, limit // 4)
    rng = random.Random(seed)
    take = lambda fs, budget: _take_windows(fs, spec.max_seq_len, budget, _LM_WINDOWS_PER_FILE, rng, encode)  # noqa: E731
    train, val = take(train_files, limit), take(val_files, small)
    if kind == "packages":  # windows of a package never seen in training, drawn from all its text
        current = _take_windows(_stdlib_files(_LM_SHIFT_PACKAGES), spec.max_seq_len, None, encode=encode)
        rng.shuffle(current)
        current = current[:small]
    else:
        current = take(cur_files, small)
        current = apply_shift(current, spec.replace(vocab_size=tok.vocab_size), kind, strength, seed) \
            if kind != "none" else current
    info = {"source": f"python stdlib source ({stdlib_dir()})", "train_files": len(train_files),
            "val_files": len(val_files)}
    return (train, val, current), info, tok


def text_cls_counts(available: int, limit: int | None, num_classes: int) -> tuple[int, int, int]:
    """Windows taken per class (balanced), and of those for train and for val/current each."""
    n = available if limit is None else min(available, max(1, math.ceil(limit / num_classes * 1.5)))
    return n, int(n * 2 / 3), max(1, n // 6)


def min_data_limit(task: str, spec) -> int:
    """The smallest data_limit that leaves the built-in data of `task` a training example."""
    if task != "text-cls":
        return 1
    return next(limit for limit in range(1, 10 * spec.num_classes + 10)
                if text_cls_counts(10**6, limit, spec.num_classes)[1] >= 1)


def _builtin_text_cls(spec, seed, limit, kind, strength, options):
    rng = random.Random(seed)
    per_class = []
    for label, pkg in enumerate(spec.class_names):
        windows = [w for w in _take_windows(_stdlib_files([pkg]), spec.max_seq_len, None)
                   if len(w["input_ids"]) == spec.max_seq_len]
        rng.shuffle(windows)
        per_class.append([{**w, "labels": label} for w in windows])
    n, n_train, n_small = text_cls_counts(min(len(w) for w in per_class), limit, spec.num_classes)
    train = [e for w in per_class for e in w[:n_train]]
    val = [e for w in per_class for e in w[n_train:n_train + n_small]]
    current = [e for w in per_class for e in w[n_train + n_small:n_train + 2 * n_small]]
    if kind == "packages":  # prior shift: class 0 dominates the current set
        pool = [e for w in per_class for e in w[n_train + n_small:]]
        major = [e for e in pool if e["labels"] == 0]
        others = [e for e in pool if e["labels"] != 0]
        n_major = min(len(major), int(len(current) * strength))
        current = major[:n_major] + others[: len(current) - n_major]
    tok = resolve_tokenizer(options.tokenizer, lambda: [_window_text(e) for e in train], seed=seed,
                            cache_dir=options.cache_dir)
    if not tok.is_byte:  # the same windows, tokenized
        train, val, current = ([{"input_ids": torch.from_numpy(tok.encode(_window_text(e))[: spec.max_seq_len]),
                                 "labels": e["labels"]} for e in part] for part in (train, val, current))
    if kind not in ("none", "packages"):
        current = apply_shift(current, spec.replace(vocab_size=tok.vocab_size), kind, strength, seed)
    for part in (train, val, current):
        rng.shuffle(part)
    if limit is not None:
        train, val, current = train[:limit], val[:max(1, limit // 4)], current[:max(1, limit // 4)]
    return (train, val, current), {"source": "python stdlib packages " + ", ".join(spec.class_names)}, tok


def _window_text(example) -> str:
    return bytes(example["input_ids"].tolist()).decode("utf-8", "replace")


# --- built-in vision ---

def _builtin_vision(spec, seed, limit, kind, strength, options):
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
    return (train, val, current), {"source": "scikit-learn digits (1797 images, 8x8)"}, None


BUILTIN = {"lm": _builtin_lm, "text-cls": _builtin_text_cls, "vision-cls": _builtin_vision}
