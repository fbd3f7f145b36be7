"""Fluent construction of a TrainingConfig."""

from __future__ import annotations

import dataclasses
from typing import Self

from .config import TrainingConfig

_PRESETS = {"quick": dict(epochs=1, batch_size=8), "full": dict(epochs=20)}


class TrainingConfigBuilder:
    def __init__(self, config: TrainingConfig | None = None):
        self.config = config or TrainingConfig()

    @classmethod
    def preset(cls, name: str):
        return cls(TrainingConfig(**_PRESETS[name]))

    def with_run(self, *, output_dir: str | None = None, run_name: str | None = None, seed: int | None = None) -> Self:
        return self._replace(output_dir=output_dir, run_name=run_name, seed=seed)

    def with_training(self, *, epochs: int | None = None, learning_rate: float | None = None,
                      batch_size: int | None = None, warmup_ratio: float | None = None) -> "TrainingConfigBuilder":
        return self._replace(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                             warmup_ratio=warmup_ratio)

    def with_tags(self, *tags):
        return type(self)(dataclasses.replace(self.config, tags=[*self.config.tags, *tags]))

    def with_extra(self, **fields) -> TrainingConfigBuilder:
        return self._replace(**fields)

    def build(self) -> TrainingConfig:
        return self.config

    def _replace(self, **changes) -> TrainingConfigBuilder:
        return TrainingConfigBuilder(dataclasses.replace(self.config, **{k: v for k, v in changes.items()
                                                                          if v is not None}))
