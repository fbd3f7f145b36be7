"""The notebook doctor: legacy API strings and the notebook contract.

    python -m trainbook.lint notebooks/        # exit 0 clean, 1 findings, 2 unreadable input

Findings print as `path:cell N:line L: CODE message` (cells counted from 1 over all cells),
`path:line L: CODE message` for .py and .md files, and `path: CODE message` for findings about a
whole notebook. A directory is searched for notebooks; name .py and .md files explicitly.
Codes: TB1xx legacy strings (this module); TB201-TB205, TB251 the file's structure
(structure.py); TB211-TB242 the parameters cell and the code (rules.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .findings import Finding, LintConfigError, LintInputError, cell_source, output_texts, read_notebook
from .patterns import PRAGMA, Pattern, legacy_findings, load_patterns
from .rules import check_notebook
from .structure import check_structure

SKIP_DIRS = {".git", ".venv", "venv", ".ipynb_checkpoints", "__pycache__", "node_modules", "runs", "build"}


def lint_file(path: Path, patterns: list[Pattern]) -> tuple[list[Finding], list[Finding]]:
    """Lint one notebook (legacy strings and contract) or one .py/.md file (API patterns).

    Returns:
        (findings, allowed by the pragma).
    Raises:
        LintInputError: the file cannot be linted.
    """
    if path.suffix == ".ipynb":
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

