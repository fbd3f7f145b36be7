"""From the user's text to split, tokenized datasets: records -> split -> tokenizer -> cached token store.

    splits, tok, info = tokenized_splits(records, spec, "bpe:2000", seed=0, limit=None)

A `Records` is an ordered source of (text, label, group) records: lm segments of text files, table
rows, or rows of a Hugging Face dataset; `group` says which split the source itself put a record
in (GROUP_TRAIN, GROUP_VAL, GROUP_TEST). The split is over records and depends only on the text
and the seed, never on the tokenizer, so every tokenizer is validated on the same text:
- with validation records: val = them; current = the test records, else 10% of train (seeded);
- otherwise a seeded 10% / 10% / 80% split into val / current / train.
A "bpe:<n>" tokenizer trains on the train records only. Token ids are cached on disk under
<cache_dir>/data/<source sha256>/<tokenizer sha256>, so a second run reads them back (memory-mapped).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from array import array
from pathlib import Path

import numpy as np

from .cache import TokenRows, TokenStore, TokenWindows, window_bounds
from .tokenizers import BPE_SAMPLE_BYTES, cache_root, parse_tokenizer, resolve_tokenizer
from .types import DataError

GROUP_TRAIN, GROUP_VAL, GROUP_TEST = 0, 1, 2


@dataclasses.dataclass
class Records:
    where: str            # the file, folder or dataset, for messages
    fingerprint: str      # sha256 of the content and of every option that changes the records
    read: object          # () -> iterator of (text, label (-1 for lm), group)
    meta: dict = dataclasses.field(default_factory=dict)  # kept in the store (e.g. class names)


def tokenized_splits(records: Records, spec, tokenizer="byte", seed: int = 0, limit: int | None = None,
                     cache_dir=None):
    """Split, tokenize (cached) and window `records` for spec.kind "lm" or "classification".

    Returns:
        ((train, val, current) datasets, Tokenizer, info dict with source, records, cache "hit"|"built").
    Raises:
        DataError: too few records to split, or no usable text.
    """
    root = cache_root(cache_dir) / "data" / records.fingerprint[:32]
    kind, _ = parse_tokenizer(tokenizer)
    if kind == "bpe":  # the split first: the tokenizer learns from the train records only
        layout = _layout(records, root)
        parts = split_records(layout["groups"], seed, records.where)
        sample = sample_records(parts[0], layout["n_bytes"], seed, BPE_SAMPLE_BYTES)
        tok = resolve_tokenizer(tokenizer, lambda: _texts(records, sample), seed=seed, cache_dir=cache_dir,
                                fingerprint=_sha(f"{records.fingerprint}|{json.dumps(sample)}"))
        store, hit = _store(records, root, tok)
    else:
        tok = resolve_tokenizer(tokenizer, None, seed=seed, cache_dir=cache_dir)
        store, hit = _store(records, root, tok)
        parts = split_records(store.groups, seed, records.where)
    info = {"source": records.where, "records": len(store), "tokenizer": tok.name, "cache": "hit" if hit else "built",
            "cache_dir": str(store.folder)}
    rng = np.random.default_rng(seed)
    small = None if limit is None else max(1, limit // 4)
    out = []
    for part, cap in zip(parts, (limit, small, small)):
        if spec.kind == "lm":
            starts, ends = window_bounds(store, np.sort(part), spec.max_seq_len)
            order = rng.permutation(len(starts))[:cap]
            out.append(TokenWindows(store, starts[order], ends[order], None if tok.is_byte else tok.token_bytes, info))
        else:
            out.append(TokenRows(store, rng.permutation(part)[:cap], spec.max_seq_len, info))
    if spec.kind == "lm" and min(len(d) for d in out) == 0:
        raise DataError(f"{records.where}: too little text for train/val/current windows of {spec.max_seq_len} "
                        f"tokens ({[len(d) for d in out]}). HINT: use more text or a smaller max_seq_len")
    return tuple(out), tok, info


def _store(records: Records, root: Path, tok) -> tuple[TokenStore, bool]:
    folder = root / (tok.sha[:32] or "byte")
    store = TokenStore.load(folder)
    if store is not None and store.meta.get("tokenizer_sha256") == tok.sha:
        return store, True
    store = TokenStore.build(folder, records.read(), tok, meta=records.meta)
    print(f"{Path(records.where).name}: tokenized {store.meta['bytes'] / 1e6:.1f} MB into {store.meta['tokens']:,} "
          f"{tok.name} tokens in {store.meta['seconds']:.1f}s (cached in {folder})")
    return store, False


def split_records(groups: np.ndarray, seed: int, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, current) record indices; see the module docstring."""
    train = np.flatnonzero(groups == GROUP_TRAIN)
    val, test = np.flatnonzero(groups == GROUP_VAL), np.flatnonzero(groups == GROUP_TEST)
    rng = np.random.default_rng(seed)
    if len(val):
        if len(test):
            return train, val, test
        train = rng.permutation(train)
        n = max(1, len(train) // 10)
        return np.sort(train[n:]), val, np.sort(train[:n])
    records = rng.permutation(np.concatenate([train, test]))
    if len(records) < 3:
        raise DataError(f"{where}: only {len(records)} record(s) of text; need at least 3 to split into "
                        "train/val/current. HINT: add text (or rows)")
    n = max(1, len(records) // 10)
    return np.sort(records[2 * n:]), np.sort(records[:n]), np.sort(records[n:2 * n])


def sample_records(train: np.ndarray, n_bytes: np.ndarray, seed: int, budget: int) -> list[int]:
    """Train records for a tokenizer to learn from: a seeded order, taken until `budget` bytes."""
    order = np.random.default_rng(seed + 7).permutation(train)
    sizes = np.cumsum(n_bytes[order])
    keep = order[: int(np.searchsorted(sizes, budget)) + 1]
    return sorted(int(i) for i in keep)


def _texts(records: Records, chosen):
    chosen = set(chosen or ())
    for i, (text, _, _) in enumerate(records.read()):
        if i in chosen:
            yield text


def _layout(records: Records, root: Path) -> dict:
    """Per record: group and UTF-8 bytes, from the cache or one pass over the records."""
    path = root / "layout.npz"
    if path.is_file():
        with np.load(path) as saved:
            return {k: saved[k] for k in saved.files}
    groups, n_bytes = array("b"), array("q")
    for text, _, group in records.read():
        groups.append(group)
        n_bytes.append(len(text.encode("utf-8")))
    layout = {"groups": np.asarray(groups, np.int8), "n_bytes": np.asarray(n_bytes, np.int64)}
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"layout.tmp{id(layout)}.npz"
    np.savez(tmp, **layout)
    tmp.replace(path)
    return layout


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
