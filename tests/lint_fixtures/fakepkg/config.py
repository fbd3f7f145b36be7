"""The run's settings: one frozen dataclass."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import ClassVar


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    FORMAT: ClassVar[int] = 2          # a class constant, not a field
    output_dir: str = "runs"
    run_name: str = "run"
    epochs: int = 1
    learning_rate: float = 1e-3
    batch_size: int = 16
    warmup_ratio: float = 0.0
    tags: list = dataclasses.field(default_factory=list)
    _: dataclasses.KW_ONLY
    seed: int = 0

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.run_name

    def save(self, path) -> Path:
        Path(path).write_text(json.dumps(dataclasses.asdict(self)))
        return Path(path)

    @classmethod
    def load(cls, path) -> "TrainingConfig":
        return cls(**json.loads(Path(path).read_text()))

    def summary(self) -> str:
        return f"{self.run_name}: {self.epochs} epochs at lr {self.learning_rate}"
