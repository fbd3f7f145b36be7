"""The lint's shared records and inputs: Finding, the input errors, and reading a notebook's cells.

    nb = read_notebook(path); text = cell_source(nb["cells"][0])
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem: where it is (cell and line from 1; None when it concerns the whole file)."""

    path: str
    cell: int | None
    line: int | None
    code: str
    message: str

    def __str__(self):
        where = [f"cell {self.cell}"] if self.cell is not None else []
        where += [f"line {self.line}"] if self.line is not None else []
        return ":".join([self.path, *where]) + f": {self.code} {self.message}"


class LintInputError(Exception):
    """A file that cannot be linted (unreadable, invalid JSON, not a notebook): exit code 2."""


class LintConfigError(Exception):
    """A bad pattern list (pyproject.toml [tool.trainbook.lint] or --patterns FILE): exit code 2."""


def read_notebook(path: Path) -> dict:
    """Parse a notebook file as JSON and check it is an nbformat 4 notebook.

    Raises:
        LintInputError: unreadable file, invalid JSON, not a notebook, or another nbformat.
    """
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise LintInputError(f"{path}: cannot read file: {e}") from None
    except json.JSONDecodeError as e:
        raise LintInputError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise LintInputError(f"{path}: not a Jupyter notebook (no 'cells' list at the top level)")
    if nb.get("nbformat") != 4:
        raise LintInputError(f"{path}: nbformat {nb.get('nbformat')!r} is not supported; need 4 "
                             f"(HINT: jupyter nbconvert --to notebook --inplace {path})")
    for i, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict):
            raise LintInputError(f"{path}: not a Jupyter notebook (cell {i} is not a JSON object)")
    return nb


def cell_source(cell: dict) -> str:
    """A cell's source as one string (nbformat stores a list of lines or a string)."""
    src = cell.get("source", "")
    return "".join(s for s in src if isinstance(s, str)) if isinstance(src, list) else src if isinstance(src, str) else ""


def output_texts(cell: dict) -> list[str]:
    """The text of each output of a code cell: streams, text/* data, error tracebacks."""
    texts = []
    for out in cell.get("outputs") or []:
        if not isinstance(out, dict):
            continue
        data = out.get("data") if isinstance(out.get("data"), dict) else {}
        parts = [out.get("text", "")] + [v for k, v in data.items() if k.startswith("text/")]
        parts += [out.get("ename", ""), out.get("evalue", ""), *(out.get("traceback") or [])]
        texts.append(_ANSI.sub("", "\n".join("".join(p) if isinstance(p, list) else str(p) for p in parts if p)))
    return texts
