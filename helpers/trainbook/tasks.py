"""Task specifications (data, not behaviour) and the collators they select.

    spec = TaskSpec.preset("lm"); collate = collator_for(spec)

Batch keys: text -> input_ids, attention_mask, labels; vision -> pixel_values, labels.
For language modelling labels are the unshifted input_ids (-100 on padding); the loss shifts.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

IGNORE_INDEX = -100

_PRESETS = {
    "lm": dict(name="lm", modality="text", kind="lm", input_key="input_ids", label_key="labels",
               vocab_size=256, max_seq_len=128, metrics=("loss", "perplexity", "bits_per_byte")),
    "text-cls": dict(name="text-cls", modality="text", kind="classification", input_key="input_ids",
                     label_key="labels", vocab_size=256, max_seq_len=128, num_classes=6,
                     metrics=("loss", "accuracy"),
                     class_names=("asyncio", "email", "http", "multiprocessing", "unittest", "xml")),
    "vision-cls": dict(name="vision-cls", modality="vision", kind="classification",
                       input_key="pixel_values", label_key="labels", num_classes=10, image_size=8,
                       channels=1, mean=(0.3053,), std=(0.3760,), metrics=("loss", "accuracy"),
                       class_names=tuple(str(i) for i in range(10))),
}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str                      # lm | text-cls | vision-cls | a user name
    modality: str                  # text | vision
    kind: str                      # lm | classification
    input_key: str = "input_ids"   # batch key of the model input
    label_key: str = "labels"      # batch key of the targets
    vocab_size: int = 0            # text: number of token ids (256 for bytes)
    max_seq_len: int = 0           # text: longest sequence fed to the model
    num_classes: int = 0           # classification: number of classes
    image_size: int = 0            # vision: height = width in pixels
    channels: int = 0              # vision: image channels
    mean: tuple = ()               # vision: per-channel mean used to normalise (once, in the collator)
    std: tuple = ()                # vision: per-channel std
    metrics: tuple = ("loss",)     # metrics reported each evaluation
    class_names: tuple = ()        # classification: a name per class index
    tokenizer: str = "byte"        # text: "byte" | "bpe:<vocab_size>" | "hf:<name-or-dir>" (trainbook.data.tokenizers)
    tokenizer_sha: str = ""        # text: sha256 of the tokenizer's tokenizer.json ("" for bytes)

    def __post_init__(self):
        for f in ("mean", "std", "metrics", "class_names"):
            if isinstance(getattr(self, f), list):
                object.__setattr__(self, f, tuple(getattr(self, f)))
        problems = []
        if self.modality not in ("text", "vision"):
            problems.append(f"modality must be 'text' or 'vision'; got {self.modality!r}")
        if self.kind not in ("lm", "classification"):
            problems.append(f"kind must be 'lm' or 'classification'; got {self.kind!r}")
        if self.modality == "text" and (self.vocab_size < 2 or self.max_seq_len < 2):
            problems.append(f"text tasks need vocab_size >= 2 and max_seq_len >= 2; got "
                            f"{self.vocab_size} and {self.max_seq_len}")
        if self.kind == "classification" and self.num_classes < 2:
            problems.append(f"classification needs num_classes >= 2; got {self.num_classes}")
        if self.modality == "vision" and not (len(self.mean) == len(self.std) == self.channels >= 1):
            problems.append(f"vision tasks need channels >= 1 and one mean/std per channel; got "
                            f"channels={self.channels}, mean={self.mean}, std={self.std}")
        if problems:
            raise ValueError("invalid TaskSpec:\n  " + "\n  ".join(problems))

    @classmethod
    def preset(cls, name: str) -> "TaskSpec":
        """The spec of a built-in task: 'lm', 'text-cls' or 'vision-cls'."""
        if name not in _PRESETS:
            raise ValueError(f"task must be one of {', '.join(map(repr, _PRESETS))}; got {name!r}")
        return cls(**_PRESETS[name])

    def replace(self, **changes) -> "TaskSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TaskSpec field(s): {', '.join(unknown)}")
        return cls(**d)


TASK_NAMES = tuple(_PRESETS)


class TextCollator:
    """Pads variable-length token sequences on the right.

    Each example is a dict with `input_ids` (1-D long tensor) and, for classification, `labels`
    (an int). LM labels are the input ids with -100 on padding. Examples of a subword tokenizer
    carry `n_bytes` (the text bytes of their targets); the batch then has `n_bytes` per example,
    from which the Trainer reports bits per byte.
    """

    def __init__(self, spec: TaskSpec, pad_id: int = 0):
        self.spec, self.pad_id = spec, pad_id

    def __call__(self, examples: Sequence[dict]) -> dict:
        seqs = [e["input_ids"][: self.spec.max_seq_len] for e in examples]
        length = max(len(s) for s in seqs)
        input_ids = torch.full((len(seqs), length), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for i, s in enumerate(seqs):
            input_ids[i, : len(s)] = s
            attention_mask[i, : len(s)] = 1
        if self.spec.kind == "lm":
            labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
        else:
            labels = torch.tensor([int(e["labels"]) for e in examples], dtype=torch.long)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        if "n_bytes" in examples[0]:
            batch["n_bytes"] = torch.tensor([int(e["n_bytes"]) for e in examples], dtype=torch.long)
        return batch


class VisionDataCollator:
    """Stacks images (C, H, W floats in [0, 1]) and normalises them once with the spec's mean/std."""

    def __init__(self, spec: TaskSpec):
        self.mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, examples: Sequence[dict]) -> dict:
        pixels = torch.stack([e["pixel_values"] for e in examples]).float()
        labels = torch.tensor([int(e["labels"]) for e in examples], dtype=torch.long)
        return {"pixel_values": (pixels - self.mean) / self.std, "labels": labels}


def collator_for(spec: TaskSpec):
    """The collator matching the spec's modality."""
    return TextCollator(spec) if spec.modality == "text" else VisionDataCollator(spec)


# --- per-task training defaults: what the notebook's form means by "auto" ---

TASK_DEFAULTS = {  # measured on a 2-core CPU against tb.baseline; see README "The defaults" for the numbers
    "lm": dict(model_size="tiny", data_limit=800, epochs=4, batch_size=4, learning_rate=4e-3, lr_schedule="cosine"),
    "text-cls": dict(model_size="tiny", data_limit=1600, epochs=4, batch_size=16, learning_rate=3e-3,
                     lr_schedule="cosine"),
    "vision-cls": dict(model_size="tiny", data_limit=0, epochs=3, batch_size=16, learning_rate=3e-3,
                       lr_schedule="cosine"),
}
AUTO = {"model_size": "auto", "data_limit": -1, "epochs": 0, "batch_size": 0, "learning_rate": 0}
"""The form value that means "the task's default", per setting."""


def task_defaults(task: str, **form) -> dict:
    """The task's training defaults, with the given form values kept where they are not "auto".

        settings = task_defaults("text-cls", model_size="auto", epochs=0, learning_rate=1e-3)

    A setting is "auto" when its value is AUTO's: model_size "auto", data_limit -1, epochs 0,
    batch_size 0, learning_rate 0. lr_schedule is always the task's (the form has no field for it).
    A task without defaults (a typo) gets lm's, so the validation pass can report the task itself.

    Args:
        task: "lm", "text-cls" or "vision-cls".
        **form: model_size, data_limit, epochs, batch_size, learning_rate (any subset).
    Returns:
        {setting: value} for every setting of TASK_DEFAULTS[task]; ready for tb.validate_run(**settings).
    Raises:
        TypeError: a keyword that is not one of those settings.
    """
    unknown = sorted(set(form) - set(AUTO))
    if unknown:
        raise TypeError(f"task_defaults() got unexpected setting(s) {', '.join(map(repr, unknown))}; "
                        f"settings: {', '.join(AUTO)}")
    settings = dict(TASK_DEFAULTS.get(task, TASK_DEFAULTS["lm"]))
    settings.update({key: value for key, value in form.items() if not is_auto(key, value)})
    return settings


def is_auto(key: str, value) -> bool:
    """True when `value` is the form's "auto" for setting `key` (AUTO)."""
    return key in AUTO and type(value) is not bool and value == AUTO[key]
