"""The lint's shared records and inputs: Finding, the input errors, and reading a notebook's cells.

    nb = read_notebook(path); text = cell_source(nb["cells"][0])
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MAX_JSON_DEPTH = 64  # nbformat nests about 6 levels; widget state a few more

# every code the lint reports: (kind, what); kind is bug (the notebook fails or does something else
# than it says), policy (this project's conventions) or style (storage only). The README lists them.
CODES = {
    "TB100": ("-", "`-v` only: a line silenced by the allow pragma"),
    "TB101": ("bug", "a name of the previous notebook API (trainbook/lint/patterns.json); notebooks, .py, .md"),
    "TB102": ("policy", "migration-guide wording; notebooks only"),
    "TB201": ("bug", "not valid nbformat 4.5"),
    "TB202": ("bug", "cell without an id, or a duplicate id"),
    "TB203": ("bug", "code cell without `outputs` / `execution_count`"),
    "TB204": ("bug", "source lines Jupyter would run differently: a line not ending in \"\\n\" joined with the next, "
                     "one character per item, a code cell reduced to one comment line holding code"),
    "TB205": ("policy", "outputs not stripped"),
    "TB206": ("style", "source stored as one string, several lines in one item, or a last line ending in \"\\n\""),
    "TB207": ("bug", "wrong cell type: markdown that is Python code, or a code cell that reads as prose"),
    "TB211": ("policy", "not exactly one code cell tagged `parameters`"),
    "TB212": ("policy", "parameters cell lacks `\"cellView\": \"form\"`"),
    "TB213": ("policy", "a parameters line is not `name = literal  # @param ...`"),
    "TB214": ("bug", "a cell with `# @title` or `# @param` lacks `\"cellView\": \"form\"`"),
    "TB221": ("bug", "a code cell does not parse for the target Python (default 3.13), or nests too deeply"),
    "TB222": ("policy", "`globals()` / `locals()` probing"),
    "TB223": ("bug", "a name used before an earlier cell defines or imports it"),
    "TB224": ("bug", "an import in try/except ImportError whose handler swallows the failure, used later"),
    "TB231": ("bug", "`google.colab`, `drive.mount`, `userdata`, `%pip` outside `if IN_COLAB:` (or a try/except "
                     "ImportError guard)"),
    "TB232": ("bug", "`input()` / `getpass()`"),
    "TB241": ("policy", "the helper ref (`helpers_ref`, the pinned install) is not the package's `__version__`"),
    "TB242": ("bug", "a first-party module or name that does not exist (`from pkg.x import y`, `tb.Y`)"),
    "TB243": ("bug", "a call to a first-party function or class that does not match its signature (unknown "
                     "keyword, too many positional arguments, a missing required one)"),
    "TB244": ("bug", "an attribute a first-party class does not have, read on a value of that class"),
    "TB251": ("policy", "the Open-in-Colab badge does not point at this notebook"),
    "TB252": ("bug", "a badge, clone, install or raw URL names another repository than the notebook's one"),
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem: where it is (cell and line from 1; None when it concerns the whole file)."""

    path: str
    cell: int | None
    line: int | None
    code: str
    message: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self):
        where = [f"cell {self.cell}"] if self.cell is not None else []
        where += [f"line {self.line}"] if self.line is not None else []
        return ":".join([self.path, *where]) + f": {self.code} {self.message}"


class LintInputError(Exception):
    """A file that cannot be linted (unreadable, invalid JSON, not a notebook): exit code 2."""


class LintConfigError(Exception):
    """Bad settings ([tool.trainbook.lint], --patterns FILE, --select, --package, ...): exit code 2."""


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
    except RecursionError:
        raise LintInputError(f"{path}: JSON nested too deeply to read (more than about 1000 levels); "
                             "not a notebook nbformat writes") from None
    depth = json_depth(nb)
    if depth > MAX_JSON_DEPTH:
        raise LintInputError(f"{path}: JSON nested more than {MAX_JSON_DEPTH} levels deep; a notebook needs far "
                             "fewer (HINT: look for runaway metadata or widget state)")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise LintInputError(f"{path}: not a Jupyter notebook (no 'cells' list at the top level)")
    if nb.get("nbformat") != 4:
        raise LintInputError(f"{path}: nbformat {nb.get('nbformat')!r} is not supported; need 4 "
                             f"(HINT: jupyter nbconvert --to notebook --inplace {path})")
    for i, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict):
            raise LintInputError(f"{path}: not a Jupyter notebook (cell {i} is not a JSON object)")
    return nb


def json_depth(data, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep lists and dicts nest (stops counting just past `limit`), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


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
