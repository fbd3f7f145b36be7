"""Hugging Face `datasets` sources: source="hf:<hub name | save_to_disk folder | folder of parquet/csv/json>".

    (train, val, current), info, spec, tok = load_hf("text-cls", "data/reviews_ds", spec, 0, None, ReadOptions())

- A folder written by `save_to_disk` (a Dataset or a DatasetDict) is read with `load_from_disk`;
  any other folder with `load_dataset(folder)` (parquet, csv, json files; split names from file
  names); anything else is a hub name (needs the network).
- Splits: the dataset's validation split (validation, valid, val or dev) is the val split and its
  test split the current one; without a validation split, a seeded 10/10/80 split of the rows.
  A split whose labels are all missing (-1, as in GLUE's test sets) is left out, with one line.
- Labels: a ClassLabel keeps its ids and names; strings map to sorted names (ids in that order);
  other integers map to their sorted values. The names end up in spec.class_names.
- Columns: text_column / label_column / image_column, or auto (see trainbook.data.tables.pick_columns).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..tasks import TaskSpec
from .corpus import GROUP_TEST, GROUP_TRAIN, GROUP_VAL, Records, split_records, tokenized_splits
from .tables import TEXT_NAMES, class_names, pick_columns, report_bad_rows
from .textfile import segment_size, sha256_files
from .tokenizers import cache_root
from .types import DataError, ReadOptions

VALIDATION_NAMES = ("validation", "valid", "val", "dev")
IMAGE_NAMES = ("image", "img", "picture", "pixel_values")


def load_hf(task: str, name: str, spec: TaskSpec, seed: int, limit, options: ReadOptions):
    """Splits of a datasets source. Returns ((train, val, current), info, spec, tokenizer or None).

    Raises:
        DataError: an unreadable source, unknown columns, bad rows, or one class only.
        ImportError: the datasets package is missing.
    """
    where = f"hf:{name}"
    splits = _open(name, where, options.cache_dir)
    groups = _groups(splits, where)
    first = splits[groups[0][0]]
    if task == "vision-cls":
        return _vision(splits, groups, first, where, spec, seed, limit, options)
    if task == "lm":
        column = _text_column(first, options.text_column, where)
        return _lm(splits, groups, column, where, spec, seed, limit, options)
    label_like = [c for c, f in first.features.items() if type(f).__name__ == "ClassLabel"]
    text, label, how = pick_columns(first.column_names, options.text_column, options.label_column, where,
                                    [first[i] for i in range(min(50, len(first)))], label_like)
    if how == "auto":
        print(f"{where}: text_column={text!r}, label_column={label!r} (auto; pass text_column=/label_column= "
              "to choose others)")
    names, to_id = _label_map(splits, groups, label, first.features[label], where)
    groups = _labelled(splits, groups, label, to_id, where)
    bad = [(f"{split} row {i}", "empty text" if not str(row[text] or "").strip() else "empty label")
           for split, _ in groups for i, row in enumerate(_rows(splits[split], [text, label]))
           if not str(row[text] or "").strip() or to_id(row[label]) is None]
    total = sum(len(splits[s]) for s, _ in groups)
    report_bad_rows(where, bad, total, options.skip_bad_rows)

    def read():
        for split, group in groups:
            for row in _rows(splits[split], [text, label]):
                y = to_id(row[label])
                if str(row[text] or "").strip() and y is not None:
                    yield str(row[text]), y, group

    records = Records(where, _fingerprint(splits, groups, f"cls|{text}|{label}|{'|'.join(names)}"), read)
    parts, tok, info = tokenized_splits(records, spec, options.tokenizer, seed, limit, options.cache_dir)
    spec = spec.replace(num_classes=len(names), class_names=names)
    return parts, {**info, "splits": [s for s, _ in groups], "text_column": text, "label_column": label}, spec, tok


# --- opening ---

def _open(name: str, where: str, cache_dir) -> dict:
    try:
        import datasets
    except ImportError:
        raise ImportError("source='hf:...' needs the datasets package: pip install datasets") from None
    folder = Path(name).expanduser()
    try:
        if folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(folder))
        elif folder.is_dir():
            loaded = datasets.load_dataset(str(folder), cache_dir=str(cache_root(cache_dir) / "hf"))
        else:
            loaded = datasets.load_dataset(name, cache_dir=str(cache_root(cache_dir) / "hf"))
    except (OSError, ValueError, ConnectionError, ImportError) as e:
        hint = ("a local folder must be written by save_to_disk or hold parquet/csv/json files" if folder.is_dir()
                else "a hub name needs the network (and the exact name, e.g. 'imdb'); offline, use a folder written "
                     "by Dataset.save_to_disk or a folder of parquet/csv/json files")
        raise DataError(f"{where}: cannot load it ({type(e).__name__}: {str(e).splitlines()[0][:300]}). "
                        f"HINT: {hint}") from None
    return dict(loaded) if isinstance(loaded, dict) else {"train": loaded}


def _groups(splits: dict, where: str) -> list[tuple[str, int]]:
    """[(split name, group)]: train (or the first split), validation, test."""
    names = list(splits)
    if not names:
        raise DataError(f"{where}: the dataset has no splits")
    train = "train" if "train" in splits else names[0]
    val = next((n for n in VALIDATION_NAMES if n in splits and n != train), None)
    test = "test" if "test" in splits and "test" != train else None
    out = [(train, GROUP_TRAIN)] + ([(val, GROUP_VAL)] if val else []) + ([(test, GROUP_TEST)] if test else [])
    unused = [n for n in names if n not in dict(out)]
    if unused:
        print(f"{where}: using splits {[n for n, _ in out]}; not using {unused}")
    return out


def _rows(ds, columns):
    """Rows of `columns` as dicts, read in batches (Arrow), without the other columns."""
    for batch in ds.select_columns(columns).iter(batch_size=1000):
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys)):
            yield dict(zip(keys, values))


def _fingerprint(splits: dict, groups, options: str) -> str:
    h = hashlib.sha256(options.encode("utf-8"))
    for split, group in groups:
        ds = splits[split]
        files = [f["filename"] for f in getattr(ds, "cache_files", [])]
        h.update(f"|{split}:{group}:{len(ds)}:".encode())
        if files:
            h.update(sha256_files(files).encode())
        else:  # an in-memory dataset: hash its content
            for batch in ds.iter(batch_size=1000):
                h.update(repr(batch).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


# --- labels ---

def _label_map(splits, groups, column: str, feature, where: str):
    """(class names, value -> id or None for a missing label)."""
    if type(feature).__name__ == "ClassLabel":
        names = tuple(feature.names)
        return names, lambda v: None if v is None or not 0 <= int(v) < len(names) else int(v)
    values = set()
    for split, _ in groups:
        values.update(v for v in splits[split].unique(column) if v is not None and str(v).strip() not in ("", "-1"))
    if not values:
        raise DataError(f"{where}: label column {column!r} has no labels")
    names = class_names({str(v).strip(): 1 for v in values}, f"{where} column {column!r}")
    index = {n: i for i, n in enumerate(names)}
    return names, lambda v: None if v is None else index.get(str(v).strip())


def _labelled(splits, groups, column, to_id, where):
    """The groups whose split has at least one label (a test split without labels is left out)."""
    keep = []
    for split, group in groups:
        if group != GROUP_TRAIN and all(to_id(v) is None for v in splits[split].unique(column)):
            print(f"{where}: split {split!r} has no labels (all missing); not using it")
            continue
        keep.append((split, group))
    return keep


# --- lm and vision ---

def _text_column(ds, text_column, where: str) -> str:
    strings = [c for c, f in ds.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]
    if text_column is not None:
        if text_column not in ds.column_names:
            raise DataError(f"{where}: text_column={text_column!r} is not a column; found {ds.column_names}")
        return text_column
    named = [c for c in TEXT_NAMES if c in strings]
    if named or len(strings) == 1:
        column = (named or strings)[0]
        print(f"{where}: text_column={column!r} (auto; pass text_column= to choose another)")
        return column
    raise DataError(f"{where}: cannot tell which column holds the text; string columns {strings}. "
                    "HINT: pass text_column='...'")


def _lm(splits, groups, column, where, spec, seed, limit, options: ReadOptions):
    total = sum(len(row[column] or "") for split, _ in groups for row in _rows(splits[split], [column]))
    size = segment_size(total)

    def read():  # rows joined by newlines into segments of about `size` characters
        for split, group in groups:
            parts, length = [], 0
            for row in _rows(splits[split], [column]):
                text = (row[column] or "") + "\n"
                parts.append(text)
                length += len(text)
                if length >= size:
                    yield "".join(parts), -1, group
                    parts, length = [], 0
            if parts:
                yield "".join(parts), -1, group

    records = Records(where, _fingerprint(splits, groups, f"lm|{column}|{size}"), read)
    parts, tok, info = tokenized_splits(records, spec, options.tokenizer, seed, limit, options.cache_dir)
    return parts, {**info, "splits": [s for s, _ in groups], "text_column": column}, spec, tok


def _vision(splits, groups, first, where, spec, seed, limit, options: ReadOptions, size: int = 32):
    from .user import image_tensor, vision_spec

    images = [c for c, f in first.features.items() if type(f).__name__ == "Image"]
    column = options.image_column or next((c for c in IMAGE_NAMES if c in first.column_names), None) \
        or (images[0] if len(images) == 1 else None)
    if column not in first.column_names:
        raise DataError(f"{where}: image_column={column!r} is not a column (found {first.column_names}). "
                        "HINT: pass image_column='...'")
    label_like = [c for c, f in first.features.items() if type(f).__name__ == "ClassLabel"]
    label = options.label_column or (label_like[0] if label_like else "label")
    if label not in first.column_names:
        raise DataError(f"{where}: label_column={label!r} is not a column; found {first.column_names}")
    names, to_id = _label_map(splits, groups, label, first.features[label], where)
    index = [(split, group, i) for split, group in groups for i in range(len(splits[split]))]
    parts = split_records(np.asarray([g for _, g, _ in index], np.int8), seed, where)
    caps = (limit, None if limit is None else max(1, limit // 4), None if limit is None else max(1, limit // 4))
    out = []
    for part, cap in zip(parts, caps):
        examples = []
        for k in np.random.default_rng(seed).permutation(part)[:cap]:
            split, _, i = index[k]
            row = splits[split][int(i)]
            y = to_id(row[label])
            if y is not None and row[column] is not None:
                examples.append({"pixel_values": image_tensor(row[column], size), "labels": y})
        out.append(examples)
    spec = vision_spec(spec, out[0], names, size)
    return tuple(out), {"source": where, "image_column": column, "label_column": label}, spec, None
