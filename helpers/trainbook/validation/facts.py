"""What the validation checks look at: this machine (Machine) and one run's values (Run).

    run = Run({"task": "lm", "device": "cuda"}, Machine.detect()); run.text("device")
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from ..config import TrainingConfig

DEFAULTS = {**{f.name: f.default for f in dataclasses.fields(TrainingConfig)}, "dataset": "builtin"}


@dataclasses.dataclass(frozen=True)
class Machine:
    """What this machine offers, as the checks see it (tests pass their own)."""

    cuda_devices: int = 0
    cuda_bf16: bool = False
    mps: bool = False
    gpu: str | None = None
    memory_bytes: int = 0  # the training device's memory (GPU 0, else RAM); 0 = unknown

    @classmethod
    def detect(cls) -> "Machine":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
        memory = torch.cuda.get_device_properties(0).total_memory if n else ram_bytes()
        return cls(n, bool(n and torch.cuda.is_bf16_supported()), mps, torch.cuda.get_device_name(0) if n else None,
                   memory)

    @property
    def auto_device(self) -> str:
        return "cuda" if self.cuda_devices else "mps" if self.mps else "cpu"


def ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: unknown
        return 0


class Run:
    """The values of one run (TrainingConfig defaults filled in) and the machine, for the checks."""

    def __init__(self, values: dict, machine: Machine):
        self.values, self.machine = {**DEFAULTS, **values}, machine

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        return value if isinstance(value, str) else None

    def integer(self, key: str) -> int | None:
        value = self.values.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def flag(self, key: str) -> bool | None:
        value = self.values.get(key)
        return value if isinstance(value, bool) else None

    def path(self, key: str) -> Path | None:
        """A non-empty string value without NUL bytes, as a Path."""
        value = self.text(key)
        return Path(value) if value and "\x00" not in value else None

    @property
    def task(self) -> str | None:
        from ..tasks import TASK_NAMES

        task = self.text("task")
        return task if task in TASK_NAMES else None

    @property
    def run_dir(self) -> Path | None:
        output_dir, name = self.path("output_dir"), self.text("run_name")
        return output_dir / name if output_dir is not None and is_folder_name(name) else None

    @property
    def checkpoint_dir(self) -> Path | None:
        return self.path("checkpoint_dir") or (self.run_dir / "checkpoints" if self.run_dir else None)


def is_folder_name(name) -> bool:
    return (isinstance(name, str) and bool(name.strip()) and not {"\x00", "/", "\\"} & set(name)
            and name not in (".", ".."))


def unusable(path: Path) -> str | None:
    """Why the file system refuses to even look at `path` (a name too long, a loop...); None otherwise.

    A path that does not exist is not refused here: the checks say what should be there.
    """
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def short(value, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters (also for integers too long to print)."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python converts to text
        text = f"<an integer of ~{int(value.bit_length() * math.log10(2))} digits>"
    return text if len(text) <= limit else f"{text[:limit - 20]}...({len(text)} characters)"
