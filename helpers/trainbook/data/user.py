"""User data adapters: text file(s), a table (CSV/TSV/JSON lines) or an image folder as splits.

    (train, val, current), info, spec, tok = load_path("text-cls", Path("reviews.csv"), spec, 0, None, ReadOptions())

Text goes through trainbook.data.corpus (split over records, tokenized, cached on disk); see
trainbook.data.textfile for encodings and trainbook.data.tables for columns and bad rows.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from ..tasks import TaskSpec
from .corpus import Records, tokenized_splits
from .tables import read_table
from .sources import SNIFF_BYTES, binary_reason
from .textfile import iter_segments, segment_size, sha256_files
from .types import DataError, ReadOptions


def _split(items: list, seed: int, limit: int | None):
    items = list(items)
    random.Random(seed).shuffle(items)
    n = len(items)
    n_small = max(1, n // 10)
    val, current, train = items[:n_small], items[n_small:2 * n_small], items[2 * n_small:]
    if limit is not None:
        train, val, current = train[:limit], val[:max(1, limit // 4)], current[:max(1, limit // 4)]
    return train, val, current


def load_path(task, path: Path, spec: TaskSpec, seed, limit, options: ReadOptions = ReadOptions()):
    """Splits of the user's files. Returns ((train, val, current), info, spec, tokenizer or None)."""
    if not path.exists():
        raise DataError(f"{path}: does not exist (pass source='builtin' or an existing path)")
    if task == "lm":
        return _load_text_files(path, spec, seed, limit, options)
    if task == "text-cls":
        return _load_table(path, spec, seed, limit, options)
    if task == "vision-cls":
        return (*_load_image_folder(path, spec, seed, limit), None)
    raise DataError(f"task must be one of 'lm', 'text-cls', 'vision-cls'; got {task!r}")


def _load_text_files(path: Path, spec, seed, limit, options: ReadOptions):
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"{path}: folder has no .txt files (lm needs a text file or a folder of .txt)")
    for f in files:
        size = f.stat().st_size
        with open(f, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
        if reason := binary_reason(head):
            raise DataError(f"{f}: not a text file ({reason}); lm reads text files or a folder of .txt")
        if size == 0 or (size < 4096 and not head.strip()):
            raise DataError(f"{f}: file is empty (lm needs text)")
        if size < 2:
            raise DataError(f"{f}: text is shorter than 2 tokens (bytes); nothing to predict")
    size = segment_size(sum(f.stat().st_size for f in files))
    fingerprint = f"lm-text|{sha256_files(files)}|{options.encoding}|{size}"
    records = Records(str(path), _sha(fingerprint),
                      lambda: ((text, -1, 0) for _, text in iter_segments(files, options.encoding, size)))
    splits, tok, info = tokenized_splits(records, spec, options.tokenizer, seed, limit, options.cache_dir)
    return splits, {**info, "files": len(files)}, spec, tok


def _load_table(path: Path, spec, seed, limit, options: ReadOptions):
    table = read_table(path, options.text_column, options.label_column, options.encoding, options.skip_bad_rows)
    index = {name: i for i, name in enumerate(table.class_names)}
    fingerprint = (f"table|{sha256_files([path])}|{table.codec}|{table.text_column}|{table.label_column}|"
                   f"{'|'.join(table.class_names)}")
    records = Records(str(path), _sha(fingerprint),
                      lambda: ((text, index[label], 0) for _, text, label in table.rows()))
    splits, tok, info = tokenized_splits(records, spec, options.tokenizer, seed, limit, options.cache_dir)
    spec = spec.replace(num_classes=len(table.class_names), class_names=table.class_names)
    return splits, {**info, **table.describe()}, spec, tok


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
                    x = image_tensor(im, size)
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(f"{f}: unreadable image ({e})") from None
            examples.append({"pixel_values": x, "labels": label})
    train, val, current = _split(examples, seed, limit)
    return (train, val, current), {"source": str(path)}, vision_spec(spec, train, tuple(classes), size)


def image_tensor(image, size: int = 32) -> torch.Tensor:
    """A PIL image as 3 x size x size floats in [0, 1]."""
    im = image.convert("RGB").resize((size, size))
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    return x.view(size, size, 3).permute(2, 0, 1).float() / 255


def vision_spec(spec: TaskSpec, train: list, class_names: tuple, size: int) -> TaskSpec:
    """The spec of RGB images of `size`, normalised with the train split's per-channel mean and std."""
    stacked = torch.stack([e["pixel_values"] for e in train])
    mean = tuple(round(v, 4) for v in stacked.mean(dim=(0, 2, 3)).tolist())
    std = tuple(round(max(v, 1e-3), 4) for v in stacked.std(dim=(0, 2, 3)).tolist())
    return spec.replace(num_classes=len(class_names), class_names=class_names, image_size=size,
                        channels=3, mean=mean, std=std)
