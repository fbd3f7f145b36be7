"""Atomic checkpoints, retention, and the exact-resume state.

    path = save_checkpoint(state, ckpt_dir / "step-00000120.pt")
    state, path = load_latest(ckpt_dir)      # falls back past a corrupt newest file

Files are written to a temp file, fsynced, then renamed, so a crash mid-write never leaves a
half-written checkpoint under a real name. Loading uses torch.load(weights_only=True).
"""

from __future__ import annotations

import os
import pickle
import random
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

STEP_PATTERN = re.compile(r"^step-(\d{8})\.pt$")
BEST_NAME = "best.pt"


def step_path(ckpt_dir: Path, step: int) -> Path:
    return Path(ckpt_dir) / f"step-{step:08d}.pt"


def atomic_save(obj, path: Path) -> Path:
    """torch.save to a temp file beside `path`, fsync it, rename over `path`, fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict):
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """Load a checkpoint with weights_only=True. Raises CheckpointError if unreadable."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable: {type(e).__name__}: {e}") from e


class CheckpointError(RuntimeError):
    pass


def list_step_checkpoints(ckpt_dir: Path) -> list[Path]:
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    return sorted(p for p in ckpt_dir.iterdir() if STEP_PATTERN.match(p.name))


def load_latest(ckpt_dir: Path, map_location="cpu", more_dirs=()) -> tuple[dict | None, Path | None]:
    """The newest readable step checkpoint; a corrupt newer one is skipped with a warning.

    Args:
        ckpt_dir: the run's checkpoint folder.
        map_location: passed to torch.load.
        more_dirs: other folders holding this run's checkpoints (its persisted copy); the newest
            step across all of them wins, and ckpt_dir wins a tie (a local read is faster).
    Returns:
        (payload, path), or (None, None) when no readable checkpoint exists.
    """
    folders = [Path(ckpt_dir), *map(Path, more_dirs)]
    candidates = [(int(STEP_PATTERN.match(p.name).group(1)), -rank, p)
                  for rank, folder in enumerate(folders) for p in list_step_checkpoints(folder)]
    for _step, _rank, path in sorted(candidates, reverse=True):
        try:
            return load_checkpoint(path, map_location), path
        except CheckpointError as e:
            warnings.warn(f"{e}; falling back to the previous checkpoint", RuntimeWarning, stacklevel=2)
    return None, None


def apply_retention(ckpt_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` step checkpoints (best.pt is separate). Returns removed."""
    removed = list_step_checkpoints(ckpt_dir)[:-keep_last]
    for p in removed:
        p.unlink()
    return removed


def clean_temp_files(ckpt_dir: Path):
    """Remove temp files left by a process killed mid-write."""
    if Path(ckpt_dir).is_dir():
        for p in Path(ckpt_dir).glob(".*.tmp-*"):
            p.unlink()
