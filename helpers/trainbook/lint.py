"""The notebook doctor: legacy API strings and the notebook contract.

    python -m trainbook.lint notebooks/        # exit 0 clean, 1 findings, 2 unreadable input

Findings print as `path:cell N:line L: CODE message` (cells counted from 1 over all cells),
`path:line L: CODE message` for .py and .md files, and `path: CODE message` for findings about a
whole notebook. A directory is searched for notebooks; name .py and .md files explicitly.
Codes: TB1xx legacy strings (this module); TB201-TB205, TB251 the file's structure
(lint_structure.py); TB211-TB242 the parameters cell and the code (lint_rules.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from importlib import resources
from pathlib import Path

PRAGMA = "trainbook-lint: allow legacy"
SKIP_DIRS = {".git", ".venv", "venv", ".ipynb_checkpoints", "__pycache__", "node_modules", "runs", "build"}
KIND_CODES = {"api": "TB101", "history": "TB102"}
KIND_WORDS = {"api": "legacy API", "history": "history wording"}
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


@dataclasses.dataclass(frozen=True, eq=False)
class Pattern:
    kind: str  # "api" (notebooks, .py, .md) or "history" (notebooks only)
    regex: re.Pattern
    reason: str
    use: str


# patterns: the package's data file, extended by pyproject.toml and --patterns files


def parse_patterns(data, source: str) -> list[Pattern]:
    """Turn `{"api": [...], "history": [...]}` from `source` into case-insensitive whole-word patterns.

    An entry is a string (a literal; spaces match any whitespace) or a table with exactly one of
    `pattern` (literal) or `regex`, and optional `reason` and `use`.

    Raises:
        LintConfigError: an unknown key, a wrong type or an invalid regex, naming `source`.
    """
    if not isinstance(data, dict):
        raise LintConfigError(f"{source}: expected a table with 'api' and/or 'history' lists")
    unknown = sorted(set(data) - set(KIND_CODES))
    if unknown:
        raise LintConfigError(f"{source}: unknown key(s) {unknown}; expected 'api' and/or 'history'")
    out = []
    for kind, items in data.items():
        if not isinstance(items, list):
            raise LintConfigError(f"{source}: '{kind}' must be a list; got {type(items).__name__}")
        for i, item in enumerate(items):
            out.append(_parse_entry(kind, {"pattern": item} if isinstance(item, str) else item,
                                    f"{source}: {kind}[{i}]"))
    return out


def _parse_entry(kind: str, item, where: str) -> Pattern:
    if not isinstance(item, dict):
        raise LintConfigError(f"{where}: expected a string or a table; got {type(item).__name__}")
    bad = sorted(set(item) - {"pattern", "regex", "reason", "use"})
    if bad:
        raise LintConfigError(f"{where}: unknown key(s) {bad}; expected pattern|regex, reason, use")
    if ("pattern" in item) == ("regex" in item):
        raise LintConfigError(f"{where}: give exactly one of 'pattern' (literal) or 'regex'")
    body = item.get("regex") or r"\s+".join(map(re.escape, str(item.get("pattern", "")).split()))
    if not body:
        raise LintConfigError(f"{where}: empty pattern")
    try:
        regex = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
    except re.error as e:
        raise LintConfigError(f"{where}: invalid regex {item['regex']!r}: {e}") from None
    return Pattern(kind, regex, str(item.get("reason", "listed in the lint patterns")), str(item.get("use", "")))


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in `start` (a folder or file) or any parent folder, or None."""
    start = start.resolve()
    for folder in [start, *start.parents] if start.is_dir() else start.parents:
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    return None


def _toml_table(path: Path) -> dict | None:
    """The [tool.trainbook.lint] table of a pyproject.toml, or None when it has none."""
    text = path.read_text(encoding="utf-8")
    if "tool.trainbook" not in text:
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        print(f"note: {path}: [tool.trainbook.lint] is ignored because this Python has no tomllib (3.11+); "
              "pass the patterns with --patterns FILE.json instead", file=sys.stderr)
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LintConfigError(f"{path}: invalid TOML: {e}") from None
    return data.get("tool", {}).get("trainbook", {}).get("lint")


def load_patterns(paths=(), extra_files=()) -> list[Pattern]:
    """The built-in patterns, then [tool.trainbook.lint] of the nearest pyproject.toml (searched upward
    from the linted paths' common folder, then from the current directory), then `extra_files` (JSON
    files shaped like trainbook/lint_patterns.json).

    Raises:
        LintConfigError: a pattern source that is unreadable or malformed.
    """
    text = resources.files("trainbook").joinpath("lint_patterns.json").read_text(encoding="utf-8")
    patterns = parse_patterns(json.loads(text), "trainbook/lint_patterns.json")
    existing = [os.path.abspath(p) for p in paths if os.path.exists(p)]
    pyproject = (find_pyproject(Path(os.path.commonpath(existing))) if existing else None) or find_pyproject(Path.cwd())
    table = _toml_table(pyproject) if pyproject else None
    if table is not None:
        patterns += parse_patterns(table, f"{pyproject} [tool.trainbook.lint]")
    for extra in extra_files:
        try:
            data = json.loads(Path(extra).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise LintConfigError(f"{extra}: cannot read patterns: {e}") from None
        patterns += parse_patterns(data, str(extra))
    return patterns


# the legacy rule (TB101 API patterns, TB102 history wording; TB100 = allowed by the pragma)


def match_line(line: str, patterns: list[Pattern]) -> list[tuple[Pattern, str]]:
    """Every (pattern, matched text) on one line; overlapping matches keep the longest."""
    hits = sorted(((m.start(), -len(m.group(0)), p, m.group(0)) for p in patterns
                   for m in p.regex.finditer(line)), key=lambda h: (h[0], h[1]))
    kept, end, seen = [], -1, set()
    for start, negative_len, p, text in hits:
        if start < end or (id(p), text.lower()) in seen:
            continue
        end = start - negative_len
        seen.add((id(p), text.lower()))
        kept.append((p, text))
    return kept


def legacy_findings(path: str, units, patterns: list[Pattern]) -> tuple[list[Finding], list[Finding]]:
    """Match the patterns line by line in `units` of the file `path`.

    Args:
        units: (cell number or None, text, where) triples; `where` is "" for a source or
            "output K" for a cell's K-th output (lines then count within that output).
    Returns:
        (findings, allowed): lines carrying the pragma go to `allowed` as TB100.
    """
    findings, allowed = [], []
    pragma = re.compile(re.escape(PRAGMA), re.IGNORECASE)
    for cell, text, where in units:
        for lineno, line in enumerate(text.splitlines(), start=1):
            silenced = bool(pragma.search(line))
            for p, matched in match_line(pragma.sub(" ", line), patterns):
                code, message = KIND_CODES[p.kind], f"{KIND_WORDS[p.kind]} {matched!r}" + (f" in {where}" if where else "")
                message += f": {p.reason}" + (f"; use {p.use}" if p.use else "")
                if silenced:
                    code, message = "TB100", f"allowed by pragma: {code} {message}"
                (allowed if silenced else findings).append(Finding(path, cell, lineno, code, message))
    return findings, allowed


# inputs


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


def lint_file(path: Path, patterns: list[Pattern]) -> tuple[list[Finding], list[Finding]]:
    """Lint one notebook (legacy strings and contract) or one .py/.md file (API patterns).

    Returns:
        (findings, allowed by the pragma).
    Raises:
        LintInputError: the file cannot be linted.
    """
    if path.suffix == ".ipynb":
        from .lint_rules import check_notebook
        from .lint_structure import check_structure

        nb = read_notebook(path)
        units = []
        for i, cell in enumerate(nb["cells"], start=1):
            units.append((i, cell_source(cell), ""))
            units += [(i, text, f"output {k}") for k, text in enumerate(output_texts(cell), start=1)]
        findings, allowed = legacy_findings(str(path), units, patterns)
        return findings + check_structure(nb, path) + check_notebook(nb, path), allowed
    if path.suffix in (".py", ".md"):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise LintInputError(f"{path}: cannot read file: {e}") from None
        return legacy_findings(str(path), [(None, text, "")], [p for p in patterns if p.kind == "api"])
    if not path.exists():
        raise LintInputError(f"{path}: no such file or directory")
    raise LintInputError(f"{path}: not a notebook, .py or .md file")


def collect_files(paths: list[str]) -> list[Path]:
    """Files to lint: named files as given, and the notebooks under named directories."""
    files = []
    for raw in paths:
        p = Path(raw)
        if not p.is_dir():
            files.append(p)
            continue
        for found in sorted(p.rglob("*.ipynb")):
            rel = found.relative_to(p).parts[:-1]
            if not any(part in SKIP_DIRS or part.startswith(".") for part in rel):
                files.append(found)
    return files


def main(argv=None) -> int:
    """Command line entry point (`python -m trainbook.lint`, `trainbook-lint`).

    Returns:
        0 when clean, 1 when there are findings, 2 when an input or a pattern list is unreadable.
    """
    parser = argparse.ArgumentParser(prog="python -m trainbook.lint", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=["notebooks"],
                        help="notebooks, .py/.md files, or folders searched for notebooks (default: notebooks)")
    parser.add_argument("--patterns", action="append", default=[], metavar="FILE",
                        help="extra patterns, a JSON file shaped like trainbook/lint_patterns.json")
    parser.add_argument("-v", "--verbose", action="store_true", help=f"also report lines silenced by '{PRAGMA}'")
    args = parser.parse_args(argv)
    try:
        patterns = load_patterns(args.paths, args.patterns)
    except LintConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = collect_files(args.paths)
    findings, allowed, errors = [], [], []
    for path in files:
        try:
            found, ok = lint_file(path, patterns)
        except LintInputError as e:
            errors.append(str(e))
            continue
        findings += found
        allowed += ok
    shown = findings + (allowed if args.verbose else [])
    for finding in sorted(shown, key=lambda f: (f.path, f.cell or 0, f.line or 0, f.code)):
        print(finding)
    for error in errors:
        print(error, file=sys.stderr)
    summary = f"{len(findings)} finding(s), {len(errors)} unreadable, {len(files)} file(s) checked"
    print(summary + (f", {len(allowed)} allowed by pragma" if allowed else ""))
    return 2 if errors else 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
