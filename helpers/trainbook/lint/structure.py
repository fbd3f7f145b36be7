"""The notebook's file structure, for trainbook.lint (TB201 to TB206, TB251).

    findings = check_structure(read_notebook(path), path)

Reads the notebook's JSON only: nbformat 4.5 schema and cell ids, code cell keys, source
stored as a list of lines (TB204 when what Jupyter runs differs from what was written: joined
lines, one character per item, a cell reduced to one comment line; TB206 when only the storage
differs), stripped outputs, and an Open-in-Colab badge that opens this file (later Colab links
must open another notebook of the repository).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

from .findings import Finding, cell_source

COLAB_URL = re.compile(r"https?://colab\.research\.google\.com/(?!assets/)[^\s)\"'<>\]]+")


# the file's structure: TB201 schema, TB202 ids, TB203 code cell keys, TB204/TB206 line lists,
# TB205 outputs, TB251 Colab badge (TB252 repository URLs: repository.py; code rules: rules.py)


def check_structure(nb: dict, path: Path) -> list[Finding]:
    """Check a notebook's JSON: nbformat 4.5 with ids, line lists, stripped outputs, Colab badge.

    Args:
        nb: the notebook as parsed JSON (see trainbook.lint.read_notebook).
        path: its file, for messages and the badge check.
    Returns:
        the findings.
    """
    import nbformat

    found = []
    add = lambda *where_what: found.append(Finding(str(path), *where_what))  # noqa: E731
    repaired, seen, minor = copy.deepcopy(nb), {}, nb.get("nbformat_minor")  # repaired: the schema check's copy
    if not isinstance(minor, int) or minor < 5:
        add(None, None, "TB201", f"nbformat_minor is {minor!r}; need 5, the version with cell ids (HINT: re-save "
                                 "it with nbformat.write(nbformat.read(path, as_version=4), path))")
        repaired["nbformat_minor"] = 5
    for i, (cell, fixed) in enumerate(zip(nb["cells"], repaired["cells"]), start=1):
        cell_id = cell.get("id")
        duplicate = isinstance(cell_id, str) and cell_id in seen
        if duplicate or not isinstance(cell_id, str) or not cell_id:
            add(i, 1, "TB202", f"duplicate cell id {cell_id!r} (also cell {seen[cell_id]})" if duplicate
                else "cell has no id (nbformat 4.5 needs one per cell)")
            fixed["id"] = f"tb-lint-{i}"
        else:
            seen[cell_id] = i
        if cell.get("cell_type") == "code":
            for key, empty in (("outputs", []), ("execution_count", None)):
                if key not in cell:
                    add(i, 1, "TB203", f"code cell has no {key!r} key (write it with nbformat or Jupyter)")
                    fixed[key] = empty
            outputs, count = cell.get("outputs") or [], cell.get("execution_count")
            if outputs or count is not None:
                add(i, 1, "TB205", f"outputs are not stripped ({len(outputs)} output(s), execution_count {count!r});"
                                   " strip them with nbstripout or `jupyter nbconvert --clear-output --inplace`")
        problems = source_problems(cell.get("source"), cell.get("cell_type") == "code")
        for line, code, message in problems:
            add(i, line, code, message)
        if problems:
            fixed["source"] = cell_source(cell)
    try:
        nbformat.validate(repaired)
    except nbformat.ValidationError as e:
        where = list(getattr(e, "absolute_path", None) or e.path)
        cell = where[1] + 1 if len(where) > 1 and where[0] == "cells" and isinstance(where[1], int) else None
        message = e.message.split("\n")[0]
        if message.endswith("is not valid under any of the given schemas"):  # do not print the whole cell
            message = f"the cell does not match the schema of cell_type {nb['cells'][cell - 1].get('cell_type')!r}" \
                if cell else "the notebook does not match the schema"
        add(cell, 1 if cell else None, "TB201", f"invalid nbformat 4.5: {message[:200]}")
    return found + _badge_findings(nb, path)


def source_problems(src, is_code: bool) -> list[tuple[int, str, str]]:
    """(line, code, message): the first fatal storage problem (TB204: Jupyter would run other text than
    was written) and the first cosmetic one (TB206: same text, stored differently)."""
    fatal, cosmetic = None, None
    if isinstance(src, str):
        cosmetic = (1, "source is a str, not a list of lines (write the notebook with nbformat)")
        fatal = _commented_code(src) if is_code else None
    elif not isinstance(src, list):
        fatal = (1, f"source is a {type(src).__name__}, not a list of lines: its text is lost")
    elif len(src) >= 3 and all(isinstance(s, str) and len(s) == 1 for s in src):
        fatal = (1, f"source is stored one character per item ({len(src)} items): a writer split a string into "
                    "characters (write the notebook with nbformat)")
    else:
        for n, line in enumerate(src, start=1):
            if not isinstance(line, str):
                fatal = fatal or (n, f"source line {n} is a {type(line).__name__}, not a string: its text is lost")
            elif n < len(src) and not line.endswith("\n"):
                joined = (line[-25:] + src[n][:25]) if isinstance(src[n], str) else line[-25:]
                fatal = fatal or (n, f'source line {n} does not end with "\\n", so Jupyter joins it with the next '
                                     f"line: {joined!r}")
            elif "\n" in line[:-1]:
                cosmetic = cosmetic or (n, f"source line {n} holds several lines; store one line per item "
                                           "(write the notebook with nbformat)")
            elif n == len(src) and line.endswith("\n"):
                cosmetic = cosmetic or (n, 'the last source line must not end with "\\n"')
        if not fatal and is_code and all(isinstance(s, str) for s in src):
            fatal = _commented_code("".join(src))
    return [(line, code, message) for code, found in (("TB204", fatal), ("TB206", cosmetic)) if found
            for line, message in [found]]


def _commented_code(text: str) -> tuple[int, str] | None:
    """A code cell that is one comment line holding code: lines were joined after a comment."""
    text = text.rstrip("\n")
    if "\n" in text or not text.lstrip().startswith("#"):
        return None
    comment = text.lstrip().lstrip("#")
    imports = re.findall(r"\bimport [\w.]+", comment)
    # two statements glued together: `f() g(...)`, `f() x = ...`, `import os x = ...`
    glued = re.search(r"(\)|\bimport\s+[\w.]+)\s+[A-Za-z_][\w.]*\s*(\(|=(?!=))", comment)
    if len(imports) < 2 and not glued:
        return None
    return 1, ("the cell is one comment line that holds code, so nothing in it runs (lines joined after a "
               f"comment?): {text[:60]!r}")


def repo_relative(path: Path) -> str:
    """`path` relative to the repository root (the nearest folder holding .git or helpers/)."""
    path = path.resolve()
    root = next((d for d in path.parents if (d / ".git").exists() or (d / "helpers").is_dir()), None)
    return path.relative_to(root).as_posix() if root else path.name


def _badge_findings(nb: dict, path: Path) -> list[Finding]:
    """The first Colab URL (the badge) must open this notebook; later ones (links to the suite's
    other notebooks) must open a notebook that exists in this repository."""
    rel, found, urls = repo_relative(path), [], 0
    root = path.resolve().parents[len(Path(rel).parts) - 1] if Path(rel).parts else path.parent
    for i, cell in enumerate(nb["cells"], start=1):
        for n, line in enumerate(cell_source(cell).split("\n") if cell.get("cell_type") == "markdown" else [], 1):
            for url in COLAB_URL.findall(line):
                urls += 1
                target = re.match(r"https?://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/([^?#]+)", url)
                if urls == 1 and (not target or target.group(1) != rel):
                    found.append(Finding(str(path), i, n, "TB251", f"the Open-in-Colab URL {url} does not open "
                                                                   f"this notebook; it must end with /blob/<branch>/{rel}"))
                elif urls > 1 and (not target or not target.group(1).endswith(".ipynb")
                                   or not (root / target.group(1)).is_file()):
                    found.append(Finding(str(path), i, n, "TB251", f"the Colab link {url} does not open a notebook of "
                                                                   "this repository; link to notebooks/<name>.ipynb"))
    if not urls:
        found.append(Finding(str(path), None, None, "TB251", "no Open-in-Colab badge; add [![Open In Colab]("
                             "https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research."
                             f"google.com/github/<owner>/<repo>/blob/main/{rel}) to the first cell"))
    return found
