"""What a task feeds the model."""

from __future__ import annotations

import dataclasses

_PRESETS = {"lm": dict(modality="text", max_length=128), "vision-cls": dict(modality="vision", num_classes=10)}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    modality: str
    max_length: int = 0
    num_classes: int = 0

    @classmethod
    def preset(cls, name: str) -> TaskSpec:
        return cls(name=name, **_PRESETS[name])

    @property
    def is_text(self) -> bool:
        return self.modality == "text"
