"""User data adapters: a text file/folder, a CSV, an image folder or "hf:<name>" as splits.

    (train, val, current), info, spec = load_path("text-cls", Path("reviews.csv"), spec, seed=0, limit=None)
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import torch

from ..tasks import TaskSpec
from .sources import SNIFF_BYTES, binary_reason
from .types import DataError
from .windows import byte_windows


def _split(items: list, seed: int, limit: int | None):
    items = list(items)
    random.Random(seed).shuffle(items)
    n = len(items)
    n_small = max(1, n // 10)
    val, current, train = items[:n_small], items[n_small:2 * n_small], items[2 * n_small:]
    if limit is not None:
        train, val, current = train[:limit], val[:max(1, limit // 4)], current[:max(1, limit // 4)]
    return train, val, current


def load_path(task, path: Path, spec: TaskSpec, seed, limit):
    if not path.exists():
        raise DataError(f"{path}: does not exist (pass source='builtin' or an existing path)")
    if task == "lm":
        return _load_text_files(path, spec, seed, limit)
    if task == "text-cls":
        return _load_csv(path, spec, seed, limit)
    if task == "vision-cls":
        return _load_image_folder(path, spec, seed, limit)
    raise DataError(f"task must be one of 'lm', 'text-cls', 'vision-cls'; got {task!r}")


def _load_text_files(path: Path, spec, seed, limit):
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: folder has no .txt files (lm needs a text file or a folder of .txt)")
    windows = []
    for f in files:
        data = f.read_bytes()
        if reason := binary_reason(data[:SNIFF_BYTES]):
            raise DataError(f"{f}: not a text file ({reason}); lm reads text files or a folder of .txt")
        if not data.strip():
            raise DataError(f"{f}: file is empty (lm needs text)")
        if len(data) < 2:
            raise DataError(f"{f}: text is shorter than 2 tokens (bytes); nothing to predict")
        windows += byte_windows(data, spec.max_seq_len)
    if len(windows) < 3:
        raise DataError(f"{path}: only {len(windows)} window(s) of {spec.max_seq_len} bytes; "
                        "need at least 3 for train/val/current")
    return _split(windows, seed, limit), {"source": str(path), "files": len(files)}, spec


def _load_csv(path: Path, spec, seed, limit):
    if path.is_dir():
        raise DataError(f"{path}: is a folder; text-cls needs a CSV file with text,label columns")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            if not columns:
                raise DataError(f"{path}: file is empty (text-cls needs a header row text,label)")
            if not {"text", "label"} <= set(columns):
                raise DataError(f"{path}: needs columns 'text' and 'label'; found {columns}")
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}:{_first_non_utf8_line(path)}: not UTF-8 text ({e.reason}); save the CSV as "
                        "UTF-8") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable CSV ({e})") from None
    if not rows:
        raise DataError(f"{path}: has a header but no rows")
    names = sorted({r["label"] for r in rows})
    if len(names) < 2:
        raise DataError(f"{path}: only one class ({names[0]!r}); classification needs at least 2")
    index = {n: i for i, n in enumerate(names)}
    examples = []
    for line, r in enumerate(rows, start=2):
        data = (r["text"] or "").encode("utf-8")[: spec.max_seq_len]
        if len(data) < 1:
            raise DataError(f"{path}:{line}: empty text")
        examples.append({"input_ids": torch.tensor(list(data), dtype=torch.long), "labels": index[r["label"]]})
    spec = spec.replace(name="text-cls", num_classes=len(names), class_names=tuple(names))
    return _split(examples, seed, limit), {"source": str(path)}, spec


def _first_non_utf8_line(path: Path) -> int:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def _load_image_folder(path: Path, spec, seed, limit, size: int = 32):
    from PIL import Image, UnidentifiedImageError

    if not path.is_dir():
        raise DataError(f"{path}: vision-cls needs a folder with one sub-folder per class")
    classes = sorted(d.name for d in path.iterdir() if d.is_dir())
    if len(classes) < 2:
        raise DataError(f"{path}: found {len(classes)} class folder(s) {classes}; need at least 2")
    examples = []
    for label, name in enumerate(classes):
        files = sorted(f for f in (path / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path / name}: class folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        for f in files:
            try:
                with Image.open(f) as im:
                    im = im.convert("RGB").resize((size, size))
                    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(f"{f}: unreadable image ({e})") from None
            examples.append({"pixel_values": x.view(size, size, 3).permute(2, 0, 1).float() / 255, "labels": label})
    train, val, current = _split(examples, seed, limit)
    stacked = torch.stack([e["pixel_values"] for e in train])
    mean = tuple(round(v, 4) for v in stacked.mean(dim=(0, 2, 3)).tolist())
    std = tuple(round(max(v, 1e-3), 4) for v in stacked.std(dim=(0, 2, 3)).tolist())
    spec = spec.replace(num_classes=len(classes), class_names=tuple(classes), image_size=size,
                        channels=3, mean=mean, std=std)
    return (train, val, current), {"source": str(path)}, spec


def load_hf(task, name, spec, seed, limit):
    try:
        import datasets
    except ImportError:
        raise ImportError("source='hf:...' needs the datasets package: pip install datasets") from None
    ds = datasets.load_dataset(name, split="train")
    text_col = next((c for c in ("text", "sentence", "content") if c in ds.column_names), None)
    if task == "vision-cls" or text_col is None:
        raise DataError(f"hf:{name}: needs a text column (text/sentence/content); found {ds.column_names}")
    rows = ds.select(range(min(len(ds), (limit or len(ds)) * 2)))
    if task == "lm":
        data = "\n".join(rows[text_col]).encode("utf-8")
        return _split(byte_windows(data, spec.max_seq_len), seed, limit), {"source": f"hf:{name}"}, spec
    labels = rows["label"]
    n_classes = max(labels) + 1
    examples = [{"input_ids": torch.tensor(list(t.encode("utf-8")[: spec.max_seq_len]) or [0]), "labels": y}
                for t, y in zip(rows[text_col], labels)]
    spec = spec.replace(num_classes=n_classes, class_names=tuple(str(i) for i in range(n_classes)))
    return _split(examples, seed, limit), {"source": f"hf:{name}"}, spec
