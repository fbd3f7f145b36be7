"""The data package's shared types: DataError, ExampleDataset and TaskData.

    data = TaskData(train, val, current, spec)   # what load_task_data returns
"""

from __future__ import annotations

import dataclasses

import torch

from ..tasks import TaskSpec


class DataError(ValueError):
    """Input data cannot be used; the message names the file and the problem."""

    def _render_traceback_(self):  # IPython (Jupyter, Colab) shows the message alone, not a traceback
        return [f"{type(self).__name__}: {self}"]


class ExampleDataset(torch.utils.data.Dataset):
    """A list of examples (dicts of tensors/ints) with a little provenance in `info`."""

    def __init__(self, examples: list[dict], info: dict | None = None):
        self.examples, self.info = examples, dict(info or {})

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]

    def __repr__(self):
        return f"ExampleDataset({len(self)} examples, {self.info.get('source', '?')})"


@dataclasses.dataclass
class TaskData:
    train: ExampleDataset
    val: ExampleDataset
    current: ExampleDataset
    spec: TaskSpec
    info: dict = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"task {self.spec.name}: train {len(self.train)} | val {len(self.val)} | "
                 f"current {len(self.current)} ({self.info.get('current', 'iid')})"]
        if "class_balance" in self.info:
            balance = ", ".join(f"{k} {v}" for k, v in self.info["class_balance"].items())
            lines.append(f"train class balance: {balance}")
        return "\n".join(lines)
