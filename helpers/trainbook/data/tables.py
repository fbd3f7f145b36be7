"""Labelled text tables (CSV, TSV, JSON lines) for text classification, read streaming and checked row by row.

    table = read_table(Path("reviews.csv"), text_column=None, label_column=None); for line, text, label in table.rows(): ...

- Encoding: see trainbook.data.textfile (UTF-8 with or without BOM, a BOM's UTF-16/32, or encoding=).
- Columns: text_column / label_column name them; by default `text` and `label`, else the one
  text-like and the one label-like column by name (sentence, review, ... / category, target, ...),
  else the only pair of a two-column file (the longer values are the text). The choice is printed.
- Bad rows (empty text, empty label, a wrong number of fields, a JSON line that is not an object)
  are collected into one DataError naming the file and each row's real 1-based line (blank lines
  and multi-line quoted fields counted), listing the first 5 and the total. skip_bad_rows=True
  drops them and prints one line with the count instead.
- Labels are names (strings); class ids follow their sorted order (numerically when every label is an integer).
"""

from __future__ import annotations

import collections
import csv
import difflib
import itertools
import json
from pathlib import Path

from .textfile import detect_encoding, open_text
from .types import DataError

TEXT_NAMES = ("text", "sentence", "content", "review", "document", "body", "comment", "tweet", "utterance",
              "message", "question", "abstract", "passage", "description")
LABEL_NAMES = ("label", "labels", "category", "class", "target", "sentiment", "intent", "topic", "tag", "y")
MAX_LISTED = 5  # bad rows listed in the error (the total is always given)


class Table:
    """A checked table: its columns, classes and bad rows; `rows()` reads the good rows again (streaming)."""

    def __init__(self, path: Path, codec: str, fmt: str, delimiter: str, columns: list[str]):
        self.path, self.codec, self.format, self.delimiter, self.columns = path, codec, fmt, delimiter, columns
        self.text_column = self.label_column = ""
        self.class_names: tuple = ()
        self.n_rows, self.bad = 0, []

    def rows(self):
        """(line, text, label name) of every good row, in file order."""
        for line, record, problem in _records(self.path, self.codec, self.format, self.delimiter):
            if problem is None:
                text, label = _cell(record.get(self.text_column)), _cell(record.get(self.label_column))
                if text.strip() and label.strip():
                    yield line, text, label.strip()

    def describe(self) -> dict:
        return {"source": str(self.path), "format": self.format, "encoding": self.codec,
                "text_column": self.text_column, "label_column": self.label_column, "rows": self.n_rows,
                "skipped_rows": len(self.bad)}


def read_table(path: Path, text_column: str | None = None, label_column: str | None = None,
               encoding: str | None = None, skip_bad_rows: bool = False) -> Table:
    """Check a labelled table in one streaming pass (see the module docstring).

    Returns:
        Table with text_column, label_column, class_names, n_rows (good rows) and bad [(line, reason)].
    Raises:
        DataError: unknown columns, undecodable bytes, bad rows (unless skip_bad_rows), no rows, one class.
    """
    path = Path(path)
    codec = detect_encoding(path, encoding)
    fmt, delimiter = _format(path, codec)
    records = _records(path, codec, fmt, delimiter)
    first = next(records, None)
    if first is None:
        raise DataError(f"{path}: file is empty (text-cls needs a header row, e.g. text,label)")
    columns = first[1]["__columns__"]
    table = Table(path, codec, fmt, delimiter, columns)
    sample = list(itertools.islice(records, 200))  # the first rows judge content when the names do not
    table.text_column, table.label_column, how = pick_columns(columns, text_column, label_column, str(path),
                                                              [r for _, r, p in sample if p is None])
    if how == "auto":
        print(f"{path.name}: text_column={table.text_column!r}, label_column={table.label_column!r} "
              "(auto; pass text_column=/label_column= to choose others)")
    labels = collections.Counter()
    for line, record, problem in _chain(sample, records):
        if problem is None:
            text, label = _cell(record.get(table.text_column)), _cell(record.get(table.label_column)).strip()
            problem = "empty text" if not text.strip() else "empty label" if not label else None
        if problem is None:
            labels[label] += 1
        else:
            table.bad.append((line, problem))
    table.n_rows = sum(labels.values())
    report_bad_rows(str(path), table.bad, table.n_rows + len(table.bad), skip_bad_rows)
    if not table.n_rows:
        raise DataError(f"{path}: has a header but no rows")
    table.class_names = class_names(labels, str(path))
    return table


def pick_columns(columns, text_column, label_column, where: str, sample=(), label_like=()) -> tuple[str, str, str]:
    """The (text, label) column names and "given" or "auto" (see the module docstring).

    Args:
        columns: the names found. text_column / label_column: the caller's choice (None: auto).
        where: the file or dataset, for messages. sample: a few rows (dicts) to judge content by.
        label_like: columns known to hold labels (e.g. a datasets ClassLabel).
    Raises:
        DataError: a named column that does not exist, or no way to tell which columns to use.
    """
    for name, value in (("text_column", text_column), ("label_column", label_column)):
        if value is not None and value not in columns:
            close = difflib.get_close_matches(str(value), [str(c) for c in columns], n=1)
            raise DataError(f"{where}: {name}={value!r} is not a column; found {list(columns)}"
                            + (f" (did you mean {close[0]!r}?)" if close else ""))
    if text_column is not None and label_column is not None:
        return text_column, label_column, "given"
    lower = {str(c).lower(): c for c in columns}
    text = text_column or _by_name(lower, TEXT_NAMES, exclude=label_column)
    label = label_column or next((c for c in label_like if c != text), None) or _by_name(lower, LABEL_NAMES, exclude=text)
    others = [c for c in columns if c not in (text, label)]
    if (text is None) != (label is None) and len(others) == 1:
        text, label = text or others[0], label or others[0]
    elif text is None and label is None and len(columns) == 2:
        a, b = columns
        mean = lambda c: sum(len(_cell(r.get(c))) for r in sample) / max(1, len(sample))  # noqa: E731
        text, label = (a, b) if mean(a) >= mean(b) else (b, a)
    if text is None or label is None or text == label:
        raise DataError(f"{where}: cannot tell which columns hold the text and the label; found {list(columns)}. "
                        "HINT: pass text_column='...' and label_column='...' (notebook form fields text_column, "
                        "label_column)")
    return text, label, "auto"


def report_bad_rows(where: str, bad: list, total: int, skip: bool):
    """Raise one DataError listing bad rows [(line, reason)], or print their count when skipping."""
    if not bad:
        return
    if skip:
        kinds = collections.Counter("wrong field count" if "field(s)" in reason else reason.split(" (")[0]
                                    for _, reason in bad)
        print(f"{Path(where).name}: skipped {len(bad)} bad row(s) of {total} (skip_bad_rows=True): "
              + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
        return
    listed = "\n".join(f"  {where}{':' if isinstance(line, int) else ' '}{line}: {reason}"
                       for line, reason in bad[:MAX_LISTED])
    more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
    raise DataError(f"{where}: {len(bad)} bad row(s) of {total}:\n{listed}{more}\n"
                    "HINT: fix these lines, or pass skip_bad_rows=True to drop them")


def class_names(counts, where: str) -> tuple:
    """Label names in id order: numeric order when every name is an integer, else sorted text."""
    names = sorted(counts)
    if all(_is_int(n) for n in names):
        names.sort(key=int)
    if len(names) < 2:
        raise DataError(f"{where}: only one class ({names[0]!r}); classification needs at least 2")
    return tuple(names)


# --- reading records ---

def _format(path: Path, codec: str) -> tuple[str, str]:
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(f"{path}: is a folder; text-cls needs one CSV, TSV or JSON-lines file (or hf:<folder>)")
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl", ""
    if suffix in (".tsv", ".tab"):
        return "csv", "\t"
    if suffix == ".csv":
        return "csv", ","
    with open_text(path, codec) as fh:  # other names: sniff the header's delimiter
        head = fh.readline()
    found = [d for d in (",", "\t", ";", "|") if d in head]
    return "csv", found[0] if found else ","


def _records(path: Path, codec: str, fmt: str, delimiter: str):
    """(first line, row dict, problem or None) per record; the first item carries the columns."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))
    with open_text(path, codec, newline="" if fmt == "csv" else None) as fh:
        if fmt == "jsonl":
            yield from _json_records(path, fh)
            return
        reader, end, header = csv.reader(fh, delimiter=delimiter), 0, None
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise DataError(f"{path}:{end + 1}: cannot be parsed as CSV ({e})") from None
            start, end = end + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip() and header is not None):
                continue  # a blank line
            if header is None:
                header = [c.strip() for c in row]
                yield start, {"__columns__": header}, None
            elif len(row) != len(header):
                yield start, {}, f"{len(row)} field(s); the header has {len(header)}"
            else:
                yield start, dict(zip(header, row)), None


def _json_records(path: Path, fh):
    columns = None
    for line, raw in enumerate(fh, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            if columns is None:
                raise DataError(f"{path}:{line}: not JSON lines ({e.msg}); text-cls reads one JSON object per "
                                "line (.jsonl)") from None
            yield line, {}, f"invalid JSON ({e.msg})"
            continue
        if not isinstance(record, dict):
            if columns is None:
                raise DataError(f"{path}:{line}: expected one JSON object per line; got a {type(record).__name__}")
            yield line, {}, f"not a JSON object (a {type(record).__name__})"
            continue
        if columns is None:
            columns = list(record)
            yield line, {"__columns__": columns}, None
        yield line, record, None


def _chain(first, rest):
    yield from first
    yield from rest


def _cell(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _by_name(lower: dict, names, exclude=None):
    found = [lower[n] for n in names if n in lower and lower[n] != exclude]
    return found[0] if found else None


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False
