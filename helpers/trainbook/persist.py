"""Persisting a run: a copy of its files in a folder that outlives the machine (in Colab, Google Drive).

    persister = Persister.for_config(cfg)   # does nothing when cfg.persist_dir is ""
    persister.copy(ckpt_path, checkpoint=True); persister.wait()

The run is written to its local folder first (fast disk), then each file is copied to
`<persist_dir>/<run_name>/` under the same relative path (checkpoints under `checkpoints/`): to a
temp name, fsynced, renamed. Copies run in order in one background thread, so training does not
wait for a slow Drive; the run waits for them before it ends (`wait`). A persisted step checkpoint
is deleted (retention) only after a newer one has been renamed into place, so the persisted folder
always holds a complete checkpoint: the newest one is never the only copy in flight.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import threading
import time
import warnings
from collections import deque
from pathlib import Path

from .config import ConfigError
from .env import in_colab

DRIVE_MOUNTPOINT = "/content/drive"          # where the notebook mounts Google Drive in Colab
STEP_PREFIX, STEP_SUFFIX = "step-", ".pt"     # step checkpoints: step-00000120.pt (engine.checkpoint)
COPY_CHUNK = 1 << 20                          # bytes per read/write while copying


class PersistError(RuntimeError):
    """Files of a run could not be copied to persist_dir (the local run folder is complete)."""


@dataclasses.dataclass
class CopyRecord:
    """One finished copy: what, how many bytes, and whose time it took."""
    name: str            # path relative to the persisted run folder
    bytes: int
    queued_s: float      # time the caller (the training loop) spent handing the copy over
    copy_s: float        # time the background thread spent copying, fsyncing and renaming


def copy_file(src, dst) -> int:
    """Copy `src` to `dst` atomically: a temp file beside dst, fsync, rename, fsync the folder.

    Args:
        src: a path, or a file object open for binary reading (read from its start).
        dst: the destination path; its folder is created.
    Returns:
        The number of bytes copied.
    Raises:
        OSError: the source cannot be read or the destination written (the temp file is removed).
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        with _as_reader(src) as reader, open(tmp, "wb") as out:
            reader.seek(0)
            shutil.copyfileobj(reader, out, COPY_CHUNK)
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(dst.parent)
    return size


def copy_tree(src, dst) -> int:
    """Copy every regular file under folder `src` to the same place under `dst` (each with copy_file).

    Symlinks are skipped (W&B links its debug logs from ~/.cache into a run folder; Drive keeps no links).

    Returns:
        The number of bytes copied.
    """
    src, total = Path(src), 0
    for path in sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink()):
        total += copy_file(path, Path(dst) / path.relative_to(src))
    return total


def persist_folder(folder, cfg) -> Path | None:
    """Copy a folder of a run (e.g. its export bundle) to the same place in the persisted run folder.

    The copy is written beside its destination under a temp name, then put in place of any older copy.

    Args:
        folder: a folder inside cfg.run_dir.
        cfg: the run's TrainingConfig.
    Returns:
        The persisted folder, or None when persist_dir is "" or `folder` is outside the run folder.
    Raises:
        ConfigError: persist_dir is on an unmounted Drive.
        OSError: the copy failed (the local folder is untouched).
    """
    target, folder, run_dir = persisted_run_dir(cfg), Path(folder).absolute(), cfg.run_dir.absolute()
    if target is None or not folder.is_relative_to(run_dir):
        return None
    check_persist_dir(cfg.persist_dir)
    dst = target / folder.relative_to(run_dir)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    copy_tree(folder, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    fsync_folder(dst.parent)
    return dst


def fsync_folder(folder: Path):
    """fsync a folder so a rename inside it is durable; filesystems that cannot (some FUSE mounts) are skipped."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # "not supported here" is not a failure
            raise
    finally:
        os.close(fd)


class _as_reader:
    """A context manager giving a binary reader for a path or an already open file object."""

    def __init__(self, src):
        self.src, self.fh = src, None

    def __enter__(self):
        if hasattr(self.src, "read"):
            return self.src
        self.fh = open(self.src, "rb")
        return self.fh

    def __exit__(self, *exc):
        if self.fh is not None:
            self.fh.close()


def persisted_run_dir(cfg) -> Path | None:
    """`<persist_dir>/<run_name>` for a TrainingConfig, or None when persist_dir is ""."""
    return Path(cfg.persist_dir) / cfg.run_name if cfg.persist_dir else None


def check_persist_dir(persist_dir: str):
    """Refuse a Drive path in Colab when Drive is not mounted (the copies would be wiped with /content).

    Raises:
        ConfigError: in Colab, persist_dir is under /content/drive and Drive is not mounted there.
    """
    path = os.path.abspath(persist_dir)
    if in_colab() and path.startswith(DRIVE_MOUNTPOINT + "/") and not os.path.isdir(f"{DRIVE_MOUNTPOINT}/MyDrive"):
        raise ConfigError([f"persist_dir={persist_dir!r} is on Google Drive, which is not mounted at "
                           f"{DRIVE_MOUNTPOINT}: files written there would be lost with the runtime",
                           f"HINT: run `from google.colab import drive; drive.mount({DRIVE_MOUNTPOINT!r})` first "
                           "(the training notebook does this when persist_dir is under /content/drive)"])


class Persister:
    """Copies files of one run to its persisted folder, in order, in a background thread.

        persister = Persister(run_dir, ckpt_dir, persist_dir / run_name, keep_last=2)

    Args:
        run_dir: the local run folder; a file inside it keeps its relative path.
        ckpt_dir: the local checkpoint folder; its files go to `<target>/checkpoints/`.
        target: the persisted run folder.
        keep_last: persisted step checkpoints kept (best.pt is kept in addition).
    """

    def __init__(self, run_dir, ckpt_dir, target, keep_last: int):
        self.run_dir, self.ckpt_dir = Path(run_dir).absolute(), Path(ckpt_dir).absolute()
        self.target, self.keep_last = Path(target), keep_last
        self.records: list[CopyRecord] = []
        self.failures: list[str] = []
        self._jobs: deque = deque()
        self._busy = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.waited_s = 0.0
        for folder in (self.target, self.target / "checkpoints"):  # partial copies of a killed process
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp-*"):
                    if tmp.is_dir():
                        shutil.rmtree(tmp)   # a folder copy (persist_folder)
                    else:
                        tmp.unlink()

    @classmethod
    def for_config(cls, cfg) -> Persister | NullPersister:
        """The persister of a TrainingConfig: a Persister when persist_dir is set, else a NullPersister.

        Raises:
            ConfigError: persist_dir is on an unmounted Drive (see check_persist_dir) or cannot be created.
        """
        if not cfg.persist_dir:
            return NullPersister()
        check_persist_dir(cfg.persist_dir)
        target = persisted_run_dir(cfg)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError([f"persist_dir={cfg.persist_dir!r}: cannot create {target} ({e.strerror or e})",
                               "HINT: pick a folder you can write to, or persist_dir='' to keep the run "
                               "in output_dir only"]) from None
        return cls(cfg.run_dir, cfg.resolved_checkpoint_dir, target, cfg.keep_last)

    def target_of(self, path) -> Path:
        """Where a local file of this run goes in the persisted folder."""
        path = Path(path).absolute()
        if path.is_relative_to(self.ckpt_dir):
            return self.target / "checkpoints" / path.relative_to(self.ckpt_dir)
        if path.is_relative_to(self.run_dir):
            return self.target / path.relative_to(self.run_dir)
        raise ValueError(f"{path} is outside the run folder {self.run_dir} and its checkpoints {self.ckpt_dir}")

    def copy(self, path, *, checkpoint: bool = False, missing_ok: bool = False):
        """Queue a copy of one local file (or, for a folder, of every file in it).

        A file is opened now, so a later rename over it or a local retention delete does not
        change what is copied. A queued copy to the same destination that has not started yet
        is replaced; so is a queued older step checkpoint, when `checkpoint` is set.

        Args:
            path: a file or folder of this run.
            checkpoint: a step checkpoint or best.pt; persisted retention runs after its copy.
            missing_ok: a missing path is skipped instead of raising FileNotFoundError.
        """
        t0, path = time.perf_counter(), Path(path)
        if not path.exists() and missing_ok:
            return
        dst = self.target_of(path)
        source = path if path.is_dir() else open(path, "rb")
        job = (source, dst, checkpoint, time.perf_counter() - t0)
        with self._cond:
            same = [i for i, j in enumerate(self._jobs) if j[1] == dst]
            if same:  # not started yet: the newer source takes its place in the queue
                _close(self._jobs[same[0]][0])
                self._jobs[same[0]] = job
            else:
                for older in [j for j in self._jobs if checkpoint and _is_step(dst) and _is_step(j[1])]:
                    self._jobs.remove(older)  # superseded before it started; retention would delete it
                    _close(older[0])
                self._jobs.append(job)
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="trainbook-persist", daemon=True)
                self._thread.start()

    def wait(self) -> dict:
        """Block until every queued copy is done.

        Returns:
            A summary: dir, files, bytes, copy_s (background time), waited_s (time spent waiting).
        Raises:
            PersistError: a copy failed (each failure was also warned about when it happened).
        """
        self._drain()
        if self.failures:
            raise PersistError(f"{len(self.failures)} file(s) of the run were not copied to {self.target}:\n  "
                               + "\n  ".join(self.failures) + f"\nthe local run folder {self.run_dir} is complete. "
                               "HINT: check that persist_dir is writable and has space (Drive quota), then run "
                               "again: the run resumes and copies its files")
        return self.summary()

    def finish(self, paths) -> dict:
        """Queue copies of a run's last files (missing ones are skipped), then wait for every copy (see wait)."""
        for path in paths:
            self.copy(path, missing_ok=True)
        return self.wait()

    def close(self):
        """Wait for queued copies and do not raise: used while another error propagates (failures were warned)."""
        self._drain()

    def _drain(self):
        t0 = time.perf_counter()
        with self._cond:
            while self._jobs or self._busy:
                self._cond.wait()
        self.waited_s += time.perf_counter() - t0

    def summary(self) -> dict:
        """dir, files, bytes; copy_s (background thread), queued_s (callers handing copies over), waited_s
        (callers waiting in wait); checkpoints and checkpoint_copy_s for the checkpoint files alone."""
        ckpts = [r for r in self.records if r.name.startswith("checkpoints/")]
        return {"dir": str(self.target), "files": len(self.records), "bytes": sum(r.bytes for r in self.records),
                "copy_s": round(sum(r.copy_s for r in self.records), 6),
                "queued_s": round(sum(r.queued_s for r in self.records), 6), "waited_s": round(self.waited_s, 6),
                "checkpoints": len(ckpts), "checkpoint_bytes": sum(r.bytes for r in ckpts),
                "checkpoint_copy_s": round(sum(r.copy_s for r in ckpts), 6)}

    def _work(self):
        while True:
            with self._cond:
                if not self._jobs:  # idle: the thread ends; the next copy() starts another
                    self._thread = None
                    return
                source, dst, checkpoint, queued_s = self._jobs.popleft()
                self._busy = True
            t0 = time.perf_counter()
            try:
                size = copy_tree(source, dst) if isinstance(source, Path) else copy_file(source, dst)
                if checkpoint and _is_step(dst):
                    self._retain(dst.parent)
                self.records.append(CopyRecord(str(dst.relative_to(self.target)), size, queued_s,
                                               time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - recorded, warned now, raised by wait()
                self.failures.append(f"{dst}: {type(e).__name__}: {e}")
                warnings.warn(f"could not persist {dst} ({type(e).__name__}: {e}); training goes on and the "
                              "local copy is kept", RuntimeWarning, stacklevel=1)
            finally:
                _close(source)
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _retain(self, folder: Path):
        steps = sorted(p for p in folder.iterdir() if _is_step(p))
        for old in steps[:-self.keep_last]:
            old.unlink(missing_ok=True)


class NullPersister:
    """persist_dir is "": nothing is copied, so the Trainer never branches on persisting."""

    records: list = []
    target = None

    def copy(self, path, *, checkpoint: bool = False, missing_ok: bool = False):
        pass

    def wait(self) -> dict:
        return {}

    def finish(self, paths) -> dict:
        return {}

    def close(self):
        pass

    def summary(self) -> dict:
        return {}


def _is_step(path: Path) -> bool:
    name = Path(path).name
    middle = name[len(STEP_PREFIX):-len(STEP_SUFFIX)]
    return name.startswith(STEP_PREFIX) and name.endswith(STEP_SUFFIX) and middle.isdigit()


def _close(source):
    if hasattr(source, "close"):
        source.close()
