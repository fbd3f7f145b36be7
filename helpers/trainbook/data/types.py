"""The data package's shared types: DataError, ReadOptions, ExampleDataset and TaskData.

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


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How to read the user's data (the keyword arguments of load_task_data)."""

    tokenizer: str = "byte"             # "byte" | "bpe:<vocab_size>" | "hf:<name-or-dir>"
    text_column: str | None = None      # None: auto (text, or the only text-like column)
    label_column: str | None = None     # None: auto (label, or the only label-like column)
    image_column: str | None = None     # hf vision: None: auto (image, img, or the only Image feature)
    encoding: str | None = None         # None: UTF-8 (a BOM picks UTF-8/16/32)
    skip_bad_rows: bool = False         # drop bad rows with a count instead of raising
    cache_dir: str | None = None        # tokenized data and tokenizers; None: $TRAINBOOK_CACHE_DIR or ~/.cache/trainbook


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
    tokenizer: object = None  # text tasks: the Tokenizer behind spec.vocab_size (trainbook.data.tokenizers)

    def describe(self) -> str:
        lines = [f"task {self.spec.name}: train {len(self.train)} | val {len(self.val)} | "
                 f"current {len(self.current)} ({self.info.get('current', 'iid')})"]
        if "class_balance" in self.info:
            balance = ", ".join(f"{k} {v}" for k, v in self.info["class_balance"].items())
            lines.append(f"train class balance: {balance}")
        return "\n".join(lines)
