"""load_task_data: train/val/current splits of a task from built-in data or the user's files.

    data = load_task_data("lm", source="builtin", seed=0, limit=2000)
    data.train, data.val, data.current, data.spec
"""

from __future__ import annotations

from pathlib import Path

from ..tasks import TaskSpec
from .builtin import BUILTIN
from .shifts import apply_shift, parse_shift
from .types import DataError, ExampleDataset, TaskData
from .user import load_hf, load_path


def load_task_data(task: str, source: str = "builtin", seed: int = 0, limit: int | None = None,
                   shift: str | None = None, spec: TaskSpec | None = None) -> TaskData:
    """Load train/val/current splits for a task.

    Args:
        task: "lm", "text-cls" or "vision-cls".
        source: "builtin", a path (text file or folder of .txt for lm, CSV with text,label for
            text-cls, image folder with one sub-folder per class for vision-cls) or "hf:<name>".
        seed: controls file/row selection and shuffling.
        limit: at most this many training examples (val and current get limit // 4 each).
        shift: None/"none" for an iid current split, or "kind[:strength]" (see module doc).
        spec: override the task's preset spec (e.g. a longer max_seq_len).
    Returns:
        TaskData(train, val, current, spec, info).
    Raises:
        DataError: bad input, naming the file and the problem.
    """
    spec = spec or TaskSpec.preset(task)
    kind, strength = parse_shift(shift, spec)
    if source == "builtin":
        splits, info = BUILTIN[task](spec, seed, limit, kind, strength)
    elif isinstance(source, str) and source.startswith("hf:"):
        splits, info, spec = load_hf(task, source[3:], spec, seed, limit)
    else:
        splits, info, spec = load_path(task, Path(source), spec, seed, limit)
    train, val, current = splits
    if not train:
        raise DataError(f"{source}: no training examples left with data_limit={limit} (val {len(val)}, current "
                        f"{len(current)}). HINT: a larger data_limit, or more data")
    if kind != "none" and source != "builtin":
        current = apply_shift(current, spec, kind, strength, seed)
    info["current"] = "iid" if kind == "none" else f"shift {kind}:{strength:g}"
    if spec.kind == "classification":
        info["class_balance"] = class_balance(train, spec)
    mk = lambda part, ex: ExampleDataset(ex, {**info, "split": part})  # noqa: E731
    return TaskData(mk("train", train), mk("val", val), mk("current", current), spec, info)


def class_balance(examples, spec: TaskSpec) -> dict:
    counts = [0] * spec.num_classes
    for e in examples:
        counts[int(e["labels"])] += 1
    names = spec.class_names or tuple(str(i) for i in range(spec.num_classes))
    return {names[i]: c for i, c in enumerate(counts)}
