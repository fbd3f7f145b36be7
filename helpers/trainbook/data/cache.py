"""Tokenized data on disk: the token ids of every record (an lm segment or a table row), memory-mapped.

    store = TokenStore.load(folder) or TokenStore.build(folder, records, tokenizer)

A store folder holds ids.bin (all ids, the tokenizer's smallest dtype), records.npz (per record:
token offsets, label, group, UTF-8 bytes of its text) and store.json. It is written into a temporary
folder and renamed, so a crash never leaves half a store. Datasets over a store (TokenWindows for
lm, TokenRows for classification) read ids through np.memmap: the corpus stays on disk, and
pickling one (DataLoader workers) sends the file name, not the data.
"""

from __future__ import annotations

import json
import os
from array import array
import shutil
import time
from pathlib import Path

import numpy as np
import torch

STORE_VERSION = 1
_BATCH_CHARS = 4 << 20  # records are tokenized in batches of about this many characters


class TokenStore:
    """Token ids of records on disk. offsets[i]:offsets[i + 1] are record i's ids."""

    def __init__(self, folder: Path, meta: dict, arrays):
        self.folder, self.meta = Path(folder), meta
        self.offsets, self.labels, self.groups, self.n_bytes = (arrays[k] for k in ("offsets", "labels", "groups", "n_bytes"))
        self.dtype = np.dtype(meta["dtype"])
        self._ids = None

    def __len__(self):
        return len(self.groups)

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            n = int(self.offsets[-1])
            self._ids = (np.memmap(self.folder / "ids.bin", dtype=self.dtype, mode="r", shape=(n,)) if n
                         else np.zeros(0, self.dtype))
        return self._ids

    def __getstate__(self):
        return {**self.__dict__, "_ids": None}

    @classmethod
    def load(cls, folder) -> "TokenStore | None":
        """The store in `folder`, or None when there is none (or it was written by another version)."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "store.json").read_text())
            if meta.get("version") != STORE_VERSION:
                return None
            with np.load(folder / "records.npz") as arrays:
                return cls(folder, meta, {k: arrays[k] for k in arrays.files})
        except (OSError, ValueError, KeyError):
            return None

    @classmethod
    def build(cls, folder, records, tokenizer, meta: dict | None = None) -> "TokenStore":
        """Tokenize `records` ((text, label, group) in order) streaming into a new store in `folder`."""
        folder = Path(folder)
        tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        t0 = time.perf_counter()
        offsets, labels, groups, n_bytes = array("q", [0]), array("q"), array("b"), array("q")  # 8 bytes a row
        try:
            with open(tmp / "ids.bin", "wb") as out:
                batch, chars = [], 0
                for text, label, group in records:
                    batch.append(text)
                    labels.append(label)
                    groups.append(group)
                    chars += len(text)
                    if chars >= _BATCH_CHARS:
                        _write(out, batch, tokenizer, offsets, n_bytes)
                        batch, chars = [], 0
                _write(out, batch, tokenizer, offsets, n_bytes)
            arrays = {"offsets": np.asarray(offsets, np.int64), "labels": np.asarray(labels, np.int64),
                      "groups": np.asarray(groups, np.int8), "n_bytes": np.asarray(n_bytes, np.int64)}
            np.savez(tmp / "records.npz", **arrays)
            meta = {**(meta or {}), "version": STORE_VERSION, "dtype": np.dtype(tokenizer.dtype).name,
                    "tokenizer": tokenizer.name, "tokenizer_sha256": tokenizer.sha, "records": len(groups),
                    "tokens": int(offsets[-1]), "bytes": int(sum(n_bytes)),
                    "seconds": round(time.perf_counter() - t0, 3)}
            (tmp / "store.json").write_text(json.dumps(meta, indent=2) + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(folder, meta, arrays)


def _write(out, batch, tokenizer, offsets, n_bytes):
    if not batch:
        return
    for text, ids in zip(batch, tokenizer.encode_batch(batch)):
        out.write(ids.astype(tokenizer.dtype).tobytes())
        offsets.append(offsets[-1] + len(ids))
        n_bytes.append(len(text.encode("utf-8")))


def window_bounds(store: TokenStore, records: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of windows of `length` ids inside each record; a last window needs >= 2 ids."""
    lo, hi = store.offsets[records], store.offsets[records + 1]
    counts = np.where(hi - lo >= 2, (hi - lo - 1 + length - 1) // length, 0)
    first = np.repeat(lo, counts)
    step = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    starts = first + step * length
    return starts, np.minimum(starts + length, np.repeat(hi, counts))


class TokenWindows(torch.utils.data.Dataset):
    """lm examples: {"input_ids"} windows of a store (plus "n_bytes", the bytes of the targets, when
    the tokenizer is not bytes: ids 1.. of the window, for val_bits_per_byte)."""

    def __init__(self, store: TokenStore, starts, ends, token_bytes=None, info: dict | None = None):
        self.store, self.starts, self.ends, self.token_bytes = store, starts, ends, token_bytes
        self.info = dict(info or {})

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        ids = np.asarray(self.store.ids[self.starts[i]:self.ends[i]], dtype=np.int64)
        example = {"input_ids": torch.from_numpy(ids)}
        if self.token_bytes is not None:
            example["n_bytes"] = int(self.token_bytes[ids[1:]].sum())
        return example

    def __repr__(self):
        return f"TokenWindows({len(self)} windows, {self.info.get('source', '?')})"


class TokenRows(torch.utils.data.Dataset):
    """Classification examples: {"input_ids" (at most max_len ids), "labels"} per record of a store."""

    def __init__(self, store: TokenStore, records, max_len: int, info: dict | None = None):
        self.store, self.records, self.max_len, self.info = store, np.asarray(records), max_len, dict(info or {})
        self.labels = store.labels[self.records]

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        r = self.records[i]
        lo = self.store.offsets[r]
        hi = min(self.store.offsets[r + 1], lo + self.max_len)
        ids = np.asarray(self.store.ids[lo:hi], dtype=np.int64)
        return {"input_ids": torch.from_numpy(ids), "labels": int(self.labels[i])}

    def __repr__(self):
        return f"TokenRows({len(self)} rows, {self.info.get('source', '?')})"
