"""Atomic checkpoints, retention, and the exact-resume state.

    path = atomic_save(state, ckpt_dir / "step-00000120.pt")
    state, path = load_latest(ckpt_dir)      # falls back past a corrupt newest file

Files are written to a temp file, fsynced, then renamed, so a crash mid-write never leaves a
half-written checkpoint under a real name. Before writing, free space is checked against the
checkpoint's size; a full disk (or any other write failure) removes the partial temp file and
raises CheckpointWriteError naming the disk, the sizes and the previous checkpoint, which is
intact. Loading uses torch.load(weights_only=True).
"""

from __future__ import annotations

import errno
import os
import shutil
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
    """torch.save to a temp file beside `path`, fsync it, rename over `path`, fsync the folder.

    Raises:
        CheckpointWriteError: too little free space for a checkpoint of this size (checked
            before writing), or the write failed (full disk, I/O error); the temp file is removed
            and the previous checkpoint is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    need = max(payload_bytes(obj), _newest_checkpoint_size(path.parent))
    free = free_bytes(path.parent)
    if free < need * SPACE_MARGIN:
        raise CheckpointWriteError(_no_space_message(path, need, free))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open_for_write(tmp) as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # a full disk reaches us as torch's RuntimeError with an OSError inside
        tmp.unlink(missing_ok=True)
        raise CheckpointWriteError(_write_failed_message(path, need, e)) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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


CHECKPOINT_KEYS = ("model", "optimizer", "scaler", "state", "rng", "config")  # what Trainer._save writes


def load_checkpoint(path: Path, map_location="cpu", mmap: bool = False) -> dict:
    """Load a trainbook checkpoint with weights_only=True (mmap=True: tensors are read lazily).

    Raises:
        CheckpointError: unreadable, not a torch.save archive, or not a trainbook checkpoint.
    """
    path = Path(path)
    if path.is_file() and not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is unreadable: it is not a zip archive written by torch.save "
                              "(a truncated file, or not a checkpoint)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False: never do that with a checkpoint
        raise CheckpointError(f"checkpoint {path} holds objects that are not tensors or plain values, so it was "
                              "not loaded (trainbook checkpoints are loaded with weights_only=True and never run "
                              "code); it is not a trainbook checkpoint") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable: {type(e).__name__}: {_first_line(e)}") from e
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(payload, dict) or k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} is not a trainbook checkpoint: it has no {', '.join(missing)} "
                              "(a bare state_dict or another program's file)")
    return payload


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else ""


class CheckpointError(RuntimeError):
    pass


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (usually a full disk); the previous one is intact."""

    def _render_traceback_(self):  # IPython shows the message alone: it names the disk, sizes and fix
        return [f"{type(self).__name__}: {self}"]


# --- free space and write failures ---

SPACE_MARGIN = 1.1  # a checkpoint needs its size plus 10% free before it is written


def open_for_write(path: Path):
    """The binary file a checkpoint is written to (a seam for tests that inject write faults)."""
    return open(path, "wb")


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def payload_bytes(obj) -> int:
    """Bytes of the tensors in a checkpoint payload (dicts, lists and tuples walked); ~ its file size."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(payload_bytes(v) for v in obj)
    return 0


def _newest_checkpoint_size(folder: Path) -> int:
    files = list_step_checkpoints(folder)
    return files[-1].stat().st_size if files else 0


def _is_no_space(error: BaseException) -> bool:
    while error is not None:  # torch.save raises RuntimeError("unexpected pos ...") from the OSError
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


def filesystem_of(folder: Path) -> str:
    """'<device> (<mount point>)' for the filesystem holding `folder`, from /proc/mounts where present."""
    mount = Path(folder).resolve()
    while not os.path.ismount(mount):
        mount = mount.parent
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            devices = {fields[1]: fields[0] for fields in (line.split() for line in fh) if len(fields) > 1}
    except OSError:
        devices = {}
    device = devices.get(str(mount))
    return f"{device} ({mount})" if device and device != str(mount) else str(mount)


def _previous_checkpoint(path: Path) -> str:
    if path.exists():
        return f"the previous checkpoint {path} is intact"
    steps = [p for p in list_step_checkpoints(path.parent) if p != path]
    return f"the previous checkpoint {steps[-1]} is intact" if steps else "no earlier checkpoint was written"


def _no_space_message(path: Path, need: int, free: int) -> str:
    return (f"no space left on {filesystem_of(path.parent)} writing {path} (needs ~{_mb(need)} MB, "
            f"{_mb(free)} MB free); {_previous_checkpoint(path)}. HINT: free some space (old runs, other "
            "checkpoints) or set checkpoint_dir to a bigger disk, then run again: it resumes from that checkpoint")


def _write_failed_message(path: Path, need: int, error: BaseException) -> str:
    free = free_bytes(path.parent)
    if _is_no_space(error) or free < need * SPACE_MARGIN:
        return _no_space_message(path, need, free)
    return (f"writing {path} failed ({type(error).__name__}: {error}); the partial file was removed and "
            f"{_previous_checkpoint(path)}. HINT: check the disk of {filesystem_of(path.parent)}, then run again")


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f}"


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


def load_weights(model, path) -> dict:
    """Put a trainbook checkpoint's model weights (e.g. a run's or a search trial's best.pt) into `model`.

        tb.load_weights(model, result.best_checkpoint)   # the reported (best) epoch's weights

    Args:
        model: the model the checkpoint was trained from (same architecture and parameter names).
        path: a checkpoint written by the Trainer.
    Returns:
        The checkpoint's training state (epoch, step, best_metric, best_epoch ...).
    Raises:
        CheckpointError: unreadable, not a trainbook checkpoint, or weights that do not fit `model`.
    """
    payload = load_checkpoint(path)
    try:
        getattr(model, "module", model).load_state_dict(payload["model"])
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {path} does not fit {type(model).__name__}: {_first_line(e)}. HINT: build "
                              "the model with the same source, size and task as the run that wrote it") from None
    return dict(payload["state"])
