"""Cheap checks of a data source before it is loaded: kind (file, folder, text, binary) and size.

    problems = source_problems("lm", Path("notes.txt"), max_seq_len=128)   # [] when it looks usable

Used by the validation pass (trainbook.validation) so that a binary file, a CSV without its
columns or an image "folder" that is a file is refused before any work. Reading stays bounded:
the first bytes of a file, the first rows of a CSV, directory listings.
"""

from __future__ import annotations

from pathlib import Path

SNIFF_BYTES = 1 << 16
CSV_ROWS_NEEDED = 3  # one each for train, val and current


def binary_reason(head: bytes, utf8: bool = False) -> str | None:
    """Why these first bytes of a file are not text (None when they are).

    Text in any 8-bit encoding has no NUL bytes; programs, archives and images do. utf8=True
    also requires UTF-8 (what the CSV reader decodes); byte-level lm data may be any encoding.
    """
    if b"\x00" in head:
        return "it holds NUL bytes: binary data such as a program, an archive or an image"
    if utf8:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start < len(head) - 3:  # a character cut at the end of the sniffed bytes is fine
                return f"byte {e.start} is not UTF-8 ({head[e.start:e.start + 1]!r})"
    return None


def source_problems(task: str, path: Path, max_seq_len: int) -> list[str]:
    """Problems with a local data source for `task`, one line each naming the path and the fix."""
    if not path.exists():
        return [f"dataset={str(path)!r} does not exist. HINT: dataset='builtin', or the path of your data"]
    if task == "lm":
        return _text_problems(path, max_seq_len)
    if task == "text-cls":
        return _csv_problems(path)
    return _image_folder_problems(path)


def _text_problems(path: Path, max_seq_len: int) -> list[str]:
    hint = "HINT: lm reads a text file or a folder of .txt files"
    if path.is_dir():
        first = next(path.rglob("*.txt"), None)
        return [] if first else [f"dataset={str(path)!r} is a folder without .txt files. {hint}"]
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if reason := binary_reason(head):
        return [f"dataset={str(path)!r} is not a text file ({reason}). {hint}"]
    size = path.stat().st_size
    if size < 2 * max_seq_len + 2:  # the loader needs 3 windows: train, val and current
        return [f"dataset={str(path)!r} holds {size} bytes, fewer than 3 windows of max_seq_len={max_seq_len} "
                "bytes (train, val and current). HINT: more text, or a smaller max_seq_len"]
    return []


def _csv_problems(path: Path) -> list[str]:
    """A folder or binary data is refused here; encodings, columns and bad rows are read_table's
    (trainbook.data.tables), whose DataError names the file and line."""
    hint = "HINT: text-cls reads a CSV, TSV or JSONL file, or hf:<dataset> for a Hugging Face dataset"
    if path.is_dir():
        return [f"dataset={str(path)!r} is a folder. {hint}"]
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if reason := binary_reason(head):
        return [f"dataset={str(path)!r} is not a text file ({reason}). {hint}"]
    return []


def _image_folder_problems(path: Path) -> list[str]:
    hint = "HINT: vision-cls reads a folder with one sub-folder of images per class"
    if not path.is_dir():
        return [f"dataset={str(path)!r} is a file. {hint}"]
    classes = [d.name for d in path.iterdir() if d.is_dir()]
    if len(classes) < 2:
        return [f"dataset={str(path)!r} has {len(classes)} class folder(s) {sorted(classes)}; at least 2 are "
                f"needed. {hint}"]
    return []
