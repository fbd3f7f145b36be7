"""load_task_data: train/val/current splits of a task from built-in data or the user's files.

    data = load_task_data("lm", source="builtin", seed=0, limit=2000)
    data.train, data.val, data.current, data.spec
"""

from __future__ import annotations

from pathlib import Path

from ..tasks import TaskSpec
from .builtin import BUILTIN
from .shifts import apply_shift, parse_shift
from .tokenizers import parse_tokenizer
from .types import DataError, ExampleDataset, ReadOptions, TaskData
from .user import load_path


def load_task_data(task: str, source: str = "builtin", seed: int = 0, limit: int | None = None,
                   shift: str | None = None, spec: TaskSpec | None = None, *, tokenizer: str = "byte",
                   text_column: str | None = None, label_column: str | None = None,
                   image_column: str | None = None, encoding: str | None = None, skip_bad_rows: bool = False,
                   cache_dir: str | None = None) -> TaskData:
    """Load train/val/current splits for a task.

    Args:
        task: "lm", "text-cls" or "vision-cls".
        source: "builtin"; a path: text file or folder of .txt (lm), CSV/TSV/JSON-lines table
            (text-cls), image folder with one sub-folder per class (vision-cls); or "hf:<name>": a
            hub name, a save_to_disk folder or a folder of parquet/csv/json files.
        seed: controls file/row selection and shuffling.
        limit: at most this many training examples (val and current get limit // 4 each).
        shift: None/"none" for an iid current split, or "kind[:strength]" (see module doc).
        spec: override the task's preset spec (e.g. a longer max_seq_len).
        tokenizer: text tasks: "byte" (default), "bpe:<vocab_size>" (trained on the train split,
            cached) or "hf:<name-or-dir>" (pretrained, AutoTokenizer); sets spec.vocab_size.
        text_column, label_column, image_column: the columns of a table or dataset (None: auto, printed).
        encoding: of text files and tables (None: UTF-8; a BOM picks UTF-8/16/32).
        skip_bad_rows: drop bad table rows with a one-line count instead of raising.
        cache_dir: tokenized data and trained tokenizers (None: $TRAINBOOK_CACHE_DIR or ~/.cache/trainbook).
    Returns:
        TaskData(train, val, current, spec, info, tokenizer).
    Raises:
        DataError: bad input, naming the file (and line) and the problem.
    """
    spec = spec or TaskSpec.preset(task)
    kind, strength = parse_shift(shift, spec)
    if parse_tokenizer(tokenizer)[0] != "byte" and spec.modality != "text":
        raise DataError(f"tokenizer={tokenizer!r} applies to text tasks; task {task!r} reads images")
    options = ReadOptions(tokenizer, text_column, label_column, image_column, encoding, skip_bad_rows, cache_dir)
    if source == "builtin":
        splits, info, tok = BUILTIN[task](spec, seed, limit, kind, strength, options)
    elif isinstance(source, str) and source.startswith("hf:"):
        from .hf import load_hf

        splits, info, spec, tok = load_hf(task, source[3:], spec, seed, limit, options)
    else:
        splits, info, spec, tok = load_path(task, Path(source), spec, seed, limit, options)
    if tok is not None:
        spec = spec.replace(vocab_size=tok.vocab_size, tokenizer=tok.name, tokenizer_sha=tok.sha)
        info["tokenizer"] = tok.name
    train, val, current = splits
    if not train:
        raise DataError(f"{source}: no training examples left with data_limit={limit} (val {len(val)}, current "
                        f"{len(current)}). HINT: a larger data_limit, or more data")
    if kind != "none" and source != "builtin":
        current = apply_shift(list(current), spec, kind, strength, seed)
    info["current"] = "iid" if kind == "none" else f"shift {kind}:{strength:g}"
    if spec.kind == "classification":
        info["class_balance"] = class_balance(train, spec)
    return TaskData(_dataset("train", train, info), _dataset("val", val, info), _dataset("current", current, info),
                    spec, info, tok)


def _dataset(split: str, examples, info: dict):
    if isinstance(examples, list):
        return ExampleDataset(examples, {**info, "split": split})
    examples.info = {**info, "split": split}  # a dataset over a token store
    return examples


def class_balance(examples, spec: TaskSpec) -> dict:
    counts = [0] * spec.num_classes
    labels = getattr(examples, "labels", None)  # datasets over a token store know their labels
    for y in (labels if labels is not None else (e["labels"] for e in examples)):
        counts[int(y)] += 1
    names = spec.class_names or tuple(str(i) for i in range(spec.num_classes))
    return {names[i]: c for i, c in enumerate(counts)}
