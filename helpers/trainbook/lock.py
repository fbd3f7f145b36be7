"""One process per run folder: a lock file in the run folder, held for the whole run.

    with RunLock(cfg.run_dir, run_name=cfg.run_name):   # RunLockedError when another process holds it
        ...
    RunLock(run_dir).check()                            # the same error, without taking the lock

The lock file (run.lock) holds the holder's pid, host, start time and the process start ticks
from /proc (so a reused pid is not mistaken for the holder). A lock whose process is gone on this
host is stale: it is removed with one line and taken over. The holder touches the file every
HEARTBEAT_S; a lock from another host (a run folder on a shared or Drive disk, a new Colab VM)
is stale once it has not been touched for STALE_AFTER_S. The lock is re-entrant within one
process, so the CLI can take it before loading data and the Trainer take it again for the run. This module
imports nothing heavy, so `python -m trainbook train` can refuse a busy run folder before torch loads.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import threading
import time
from pathlib import Path

LOCK_NAME = "run.lock"
HEARTBEAT_S = 30.0        # the holder touches the lock file this often
STALE_AFTER_S = 300.0     # a lock from another host untouched this long is stale
_HELD: dict[str, int] = {}  # lock path -> how many times this process holds it
_HELD_GUARD = threading.Lock()


class RunLockedError(RuntimeError):
    """Another process is training in the same run folder."""

    def _render_traceback_(self):  # IPython shows the message alone: it names the holder and the fix
        return [f"{type(self).__name__}: {self}"]


class RunLock:
    """The lock of one run folder; a context manager.

    Args:
        run_dir: the run folder (created when missing).
        run_name: the run's name, used in the HINT of the error (run_name='<name>-2').
    """

    def __init__(self, run_dir, run_name: str | None = None):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.run_name = run_name or self.run_dir.name
        self._key, self._created, self._beating = None, [], None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self):
        """Take the lock, replacing a stale one.

        Raises:
            RunLockedError: a live process (or one on another host) holds it; the message names
                it and the fix.
        """
        self._created = [d for d in (self.run_dir, *self.run_dir.parents) if not d.exists()]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key] += 1
                self._key = key
                return
            for _ in range(3):  # a stale lock removed by us may be taken by another process first
                if _create(self.path, _this_holder()):
                    _HELD[key], self._key = 1, key
                    self._beating = _heartbeat(self.path)
                    return
                holder = read_holder(self.path)
                if holder is not None and not is_stale(holder, self.path):
                    raise RunLockedError(self._held_message(holder))
                why = "no longer running" if holder is None or holder.get("host") == _host() else \
                    f"not touched for over {STALE_AFTER_S / 60:g} minutes"
                print(f"run lock: removing a stale lock {self.path} ({describe(holder)}, {why})")
                _remove_if_unchanged(self.path, holder)
            raise RunLockedError(f"{self.path}: could not take the run lock; other processes keep taking it")

    def check(self):
        """Raise RunLockedError if a live process holds the lock; takes nothing, writes nothing."""
        holder = read_holder(self.path)
        if holder is not None and str(self.path.resolve()) not in _HELD and not is_stale(holder, self.path):
            raise RunLockedError(self._held_message(holder))

    def release(self):
        """Drop one hold; the file is deleted when this process no longer holds the lock."""
        if self._key is None:
            return
        with _HELD_GUARD:
            _HELD[self._key] -= 1
            if _HELD[self._key] == 0:
                del _HELD[self._key]
                if self._beating is not None:
                    self._beating.set()
                holder = read_holder(self.path)
                if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == _host():
                    self.path.unlink(missing_ok=True)
                for folder in self._created:  # a run that failed before writing anything leaves no folder
                    if folder.is_dir() and not any(folder.iterdir()):
                        folder.rmdir()
            self._key = None

    def _held_message(self, holder: dict) -> str:
        return (f"run folder {self.run_dir} is in use by {describe(holder)} (lock file {self.path}). "
                f"HINT: wait for that run to finish, or give this run another name: run_name='{self.run_name}-2' "
                f"(--set run_name={self.run_name}-2 on the command line); if no such process is running, "
                f"delete {self.path} (a lock from another machine expires {STALE_AFTER_S / 60:g} minutes after "
                "its last heartbeat)")


def describe(holder: dict | None) -> str:
    if holder is None:
        return "an unreadable lock file"
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started_at')}"


def read_holder(path: Path) -> dict | None:
    """The holder recorded in a lock file, or None when it is missing or unreadable."""
    try:
        holder = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def is_stale(holder: dict, path: Path) -> bool:
    """True when the holder is a process of this host that no longer runs (or a reused pid), or a
    process of another host that has not touched the lock file for STALE_AFTER_S."""
    pid = holder.get("pid")
    if holder.get("host") != _host():
        try:
            return time.time() - path.stat().st_mtime > STALE_AFTER_S
        except FileNotFoundError:  # removed meanwhile
            return True
    if not isinstance(pid, int) or isinstance(pid, bool):
        return False
    if pid == os.getpid():
        return True  # this process does not hold it (see _HELD): left over from an earlier run here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        pass
    ticks = _process_start_ticks(pid)
    return ticks is not None and holder.get("process_start") not in (None, ticks)


def _heartbeat(path: Path) -> threading.Event:
    """Touch `path` every HEARTBEAT_S until the returned event is set (a daemon thread)."""
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT_S):
            try:
                os.utime(path)
            except FileNotFoundError:  # deleted by hand: nothing left to keep alive
                return

    threading.Thread(target=beat, name="trainbook-run-lock", daemon=True).start()
    return stop


def _this_holder() -> dict:
    return {"pid": os.getpid(), "host": _host(), "process_start": _process_start_ticks(os.getpid()),
            "started_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def _host() -> str:
    return socket.gethostname()


def _process_start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux /proc), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])  # field 22 of stat; the name in () may hold spaces


def _create(path: Path, holder: dict) -> bool:
    """Write the lock file only if none exists, atomically: a reader never sees a half-written lock."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(holder) + "\n", encoding="utf-8")
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a filesystem without hard links (some network and FUSE mounts)
        return _create_exclusive(path, holder)
    finally:
        tmp.unlink(missing_ok=True)


def _create_exclusive(path: Path, holder: dict) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(holder) + "\n")
    return True


def _remove_if_unchanged(path: Path, holder: dict | None):
    if read_holder(path) == holder:  # another process may have replaced the stale lock meanwhile
        path.unlink(missing_ok=True)


def run_lock(cfg):
    """The lock a process takes for cfg's run folder: RunLock, or a no-op on DDP ranks other than 0."""
    import contextlib

    from .env import torchrun_env

    launched = torchrun_env()
    if cfg.strategy == "ddp" and launched is not None and launched["rank"] != 0:
        return contextlib.nullcontext()
    return RunLock(cfg.run_dir, run_name=cfg.run_name)
