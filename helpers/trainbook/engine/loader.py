"""Batches through torch.utils.data.DataLoader: worker processes, prefetch, pinned memory.

    feed = BatchFeed(data.train, collate, seed=0, num_workers=2, device=device)
    for batch in feed.epoch(micro_batches, epoch=1): ...   # collated micro-batches, in order

The caller decides the order: `micro_batches` are lists of sample indices (see
accumulation_windows), so data order stays a function of (seed, epoch), a resumed run passes
only the micro-batches it has not seen, and DDP shards stay what DistContext made them.
Workers only fetch and collate; batches come back in order, pinned when the device is CUDA.

Randomness in a dataset's __getitem__ (augmentations) draws from torch, numpy and python RNGs
seeded for each micro-batch from (seed, epoch, index of its first sample), in a worker and in
the main process alike. So results do not depend on num_workers, and with num_workers=0 the
main process's own RNG streams (dropout) are restored after each fetch. Datasets of fixed items
(lists, trainbook's ExampleDataset) draw no randomness and skip the seeding.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import random
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from ..data import DataError, ExampleDataset

PREFETCH_FACTOR = 2      # micro-batches each worker keeps ready ahead of the loop
EVAL_EPOCH = -1          # the `epoch` of evaluation fetches in the seed of their RNGs
_MASK64 = (1 << 64) - 1
# datasets whose items are fixed values: fetching them draws no randomness, so no seeding is needed
FIXED_ITEM_TYPES = (list, tuple, ExampleDataset)


def accumulation_windows(order: list[int], batch_size: int, accumulation: int) -> list[list[list[int]]]:
    """Split an epoch's sample order into micro-batches, grouped into accumulation windows.

    Returns:
        windows[w][m] = the sample indices of micro-batch m of optimizer step w.
    """
    micro = micro_batches(order, batch_size)
    return [micro[i:i + accumulation] for i in range(0, len(micro), accumulation)]


def micro_batches(order: list[int], batch_size: int) -> list[list[int]]:
    """Consecutive slices of `order` of `batch_size` indices (the last one may be shorter)."""
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def batch_seed(seed: int, epoch: int, index: int) -> int:
    """A 64-bit seed for the RNGs of one fetch: splitmix64 over (seed, epoch, index)."""
    x = 0
    for value in (seed, epoch, index):
        x = ((x ^ (value & _MASK64)) + 0x9E3779B97F4A7C15) & _MASK64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
        x ^= x >> 31
    return x


def start_method() -> str:
    """How worker processes start: 'fork' where it is safe, else 'spawn'.

    fork (Linux) lets workers inherit the dataset, so a dataset class defined in a notebook cell
    works, and nothing is pickled; it is also what Colab and Jupyter on Linux need, since Python
    3.14 makes 'forkserver' the default there. macOS (fork is unsafe with its system frameworks)
    and Windows (no fork) use 'spawn', which pickles the dataset into each worker.
    """
    return "fork" if "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin" else "spawn"


def check_picklable(dataset, name: str, method: str, num_workers: int):
    """Raise DataError naming the dataset when `method` needs to pickle it and cannot.

    Raises:
        DataError: the dataset's class lives in a notebook cell, or pickling it fails.
    """
    if method == "fork":
        return
    cls = type(dataset)
    main = sys.modules.get("__main__")
    if cls.__module__ == "__main__" and not getattr(main, "__file__", None):
        problem = f"its class {cls.__qualname__} is defined in a notebook cell, which a worker process cannot import"
    else:
        try:
            pickle.dumps(dataset)
            return
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            problem = f"pickling it failed: {type(e).__name__}: {e}"
    raise DataError(f"{name} ({cls.__name__}) cannot be sent to worker processes: num_workers={num_workers} starts "
                    f"them with {method!r} on this platform, and {problem}. HINT: define the dataset class at the "
                    "top level of a .py file and import it, or set num_workers=0")


class BatchFeed:
    """One DataLoader over `dataset` whose order is given per epoch.

    Args:
        dataset: any map-style dataset (len + integer indexing).
        collate: the task's collator (list of examples -> batch dict).
        seed: the run's seed; with (epoch, first index) it seeds each fetch's RNGs.
        num_workers: worker processes; 0 fetches in the calling process.
        device: batches are pinned for non_blocking copies when this is a CUDA device.
        name: how errors name the dataset (e.g. "train_data").
        persistent: keep the workers alive between epochs (close() stops them).
    Raises:
        DataError: workers must start with 'spawn' and the dataset cannot be pickled.
    """

    def __init__(self, dataset, collate, *, seed: int, num_workers: int, device: torch.device,
                 name: str = "dataset", persistent: bool = True):
        self.name, self.num_workers, self._sampler, options = name, num_workers, _GivenBatches(), {}
        if num_workers > 0:
            method = start_method()
            check_picklable(dataset, name, method, num_workers)
            options = dict(prefetch_factor=PREFETCH_FACTOR, persistent_workers=persistent,
                           multiprocessing_context=method)
        # the generator keeps DataLoader's base-seed draw off the global torch RNG
        self._loader = DataLoader(SeededFetch(dataset, seed), batch_sampler=self._sampler, collate_fn=collate,
                                  num_workers=num_workers, pin_memory=device.type == "cuda",
                                  generator=torch.Generator().manual_seed(seed), **options)
        self._iterator = None

    @property
    def pin_memory(self) -> bool:
        """True when batches come back in pinned memory (CUDA), ready for non_blocking copies."""
        return self._loader.pin_memory

    def epoch(self, batches: list[list[int]], epoch: int):
        """An iterator over the collated micro-batches `batches` (index lists), in that order."""
        self._sampler.keys = [[(epoch, i) for i in b] for b in batches]
        self._iterator = iter(self._loader)
        return self._iterator

    def close(self):
        """Stop the worker processes now (they also stop when the feed is garbage collected)."""
        shutdown = getattr(self._iterator, "_shutdown_workers", None)  # torch's own clean-up, as in its __del__
        if shutdown is not None:
            shutdown()
        self._iterator = None


class _GivenBatches:
    """A batch sampler that yields the (epoch, index) key lists it was last given."""

    def __init__(self):
        self.keys: list[list[tuple[int, int]]] = []

    def __iter__(self):
        return iter(self.keys)

    def __len__(self):
        return len(self.keys)


class SeededFetch(Dataset):
    """Fetches a micro-batch's samples with the RNGs seeded from (seed, epoch, first index)."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed
        self.seeded = type(dataset) not in FIXED_ITEM_TYPES  # exact types: a subclass may augment

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list:
        if not self.seeded:
            return [self.dataset[i] for _, i in keys]
        epoch, first = keys[0]
        in_worker = get_worker_info() is not None
        with _seeded_rngs(batch_seed(self.seed, epoch, first), restore=not in_worker):
            return [self.dataset[i] for _, i in keys]


@contextlib.contextmanager
def _seeded_rngs(seed: int, restore: bool):
    """Seed torch (CPU), numpy and python RNGs; put the old states back afterwards when `restore`."""
    saved = (torch.get_rng_state(), random.getstate(), np.random.get_state()) if restore else None
    torch.default_generator.manual_seed(seed)  # not torch.manual_seed: that would reseed CUDA too
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    try:
        yield
    finally:
        if saved is not None:
            torch.set_rng_state(saved[0])
            random.setstate(saved[1])
            np.random.set_state(saved[2])
