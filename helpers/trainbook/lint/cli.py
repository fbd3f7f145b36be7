"""The notebook doctor: legacy API strings, the notebook contract, and the notebook against its helper package.

    python -m trainbook.lint notebooks/        # exit 0 clean, 1 findings, 2 unreadable input or bad settings

Findings print as `path:cell N:line L: CODE message` (cells counted from 1 over all cells),
`path:line L: CODE message` for .py and .md files, and `path: CODE message` for findings about a
whole notebook; `--format json` prints one JSON object instead. A directory is searched for
notebooks; name .py and .md files explicitly. Codes: TB1xx legacy strings (patterns.py);
TB201-TB206, TB251 the file's structure (structure.py); TB252 repository URLs (repository.py);
TB207-TB244 the cells and the code (rules.py and the modules it names). Choose them with
--select/--ignore or [tool.trainbook.lint] (settings.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .findings import Finding, LintConfigError, LintInputError, cell_source, output_texts, read_notebook
from .patterns import PRAGMA, legacy_findings
from .repository import check_repository
from .rules import check_notebook
from .settings import Settings, load_settings
from .structure import check_structure

SKIP_DIRS = {".git", ".venv", "venv", ".ipynb_checkpoints", "__pycache__", "node_modules", "runs", "build"}
RECURSION_LIMIT = 4000  # the rules walk trees up to grammar.MAX_DEPTH deep, a few frames per level


def lint_file(path: Path, settings: Settings | None = None) -> tuple[list[Finding], list[Finding]]:
    """Lint one notebook (every rule) or one .py/.md file (legacy API patterns).

    Args:
        path: the file.
        settings: rules, patterns, packages (default: load_settings([path])).
    Returns:
        (findings, allowed by the pragma), only codes the settings enable.
    Raises:
        LintInputError: the file cannot be linted (unreadable, not a notebook, nested too deeply).
        LintConfigError: a package named in the settings does not exist.
    """
    settings = settings or load_settings([str(path)])
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    try:
        findings, allowed = _lint(path, settings)
    except RecursionError:
        raise LintInputError(f"{path}: nested too deeply to lint (a cell, output or metadata); "
                             "split it up") from None
    finally:
        sys.setrecursionlimit(limit)
    return [f for f in findings if settings.enabled(f.code)], [f for f in allowed if settings.enabled("TB100")]


def _lint(path: Path, settings: Settings):
    if path.suffix == ".ipynb":
        nb = read_notebook(path)
        units = []
        for i, cell in enumerate(nb["cells"], start=1):
            units.append((i, cell_source(cell), ""))
            units += [(i, text, f"output {k}") for k, text in enumerate(output_texts(cell), start=1)]
        findings, allowed = legacy_findings(str(path), units, settings.patterns)
        findings += check_structure(nb, path)
        findings += check_repository(nb, path, settings.repository, settings.repository_source,
                                     sorted(settings.model.top_names))
        return findings + check_notebook(nb, path, settings.model, settings.parser), allowed
    if path.suffix in (".py", ".md"):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise LintInputError(f"{path}: cannot read file: {e}") from None
        return legacy_findings(str(path), [(None, text, "")], [p for p in settings.patterns if p.kind == "api"])
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainbook.lint", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=["notebooks"],
                        help="notebooks, .py/.md files, or folders searched for notebooks (default: notebooks)")
    parser.add_argument("--select", action="append", default=[], metavar="CODES",
                        help="report only these codes or prefixes, comma-separated (TB2, TB223, ALL); "
                             "replaces `select` in [tool.trainbook.lint]")
    parser.add_argument("--ignore", action="append", default=[], metavar="CODES",
                        help="leave out these codes or prefixes; adds to `ignore` in [tool.trainbook.lint]")
    parser.add_argument("--package", action="append", default=[], metavar="PATH",
                        help="a first-party package folder (or .py file, or installed name) the notebook uses; "
                             "repeatable (default: the installed trainbook)")
    parser.add_argument("--repository", metavar="OWNER/NAME",
                        help="the repository every badge, clone, install and raw URL must name")
    parser.add_argument("--target-version", metavar="3.13", help="the Python the notebook runs on (default 3.13)")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="output format (default text)")
    parser.add_argument("--patterns", action="append", default=[], metavar="FILE",
                        help="extra patterns, a JSON file shaped like trainbook/lint/patterns.json")
    parser.add_argument("-v", "--verbose", action="store_true", help=f"also report lines silenced by '{PRAGMA}'")
    return parser


def main(argv=None) -> int:
    """Command line entry point (`python -m trainbook.lint`, `trainbook-lint`).

    Returns:
        0 when clean, 1 when there are findings, 2 when an input or the settings are unreadable.
    """
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.paths, args.patterns, args.select, args.ignore, args.package,
                                 args.repository, args.target_version)
        files = collect_files(args.paths)
        findings, allowed, errors = [], [], []
        for path in files:
            try:
                found, ok = lint_file(path, settings)
            except LintInputError as e:
                errors.append((str(path), str(e)))
                continue
            findings += found
            allowed += ok
    except LintConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    shown = sorted(findings + (allowed if args.verbose else []),
                   key=lambda f: (f.path, f.cell or 0, f.line or 0, f.code))
    notes = [settings.parser.note] if settings.parser.note else []
    if args.format == "json":
        print(json.dumps({"findings": [f.to_dict() for f in shown], "unreadable": [
            {"path": p, "message": m} for p, m in errors], "notes": notes, "files_checked": len(files)}, indent=1))
    else:
        for finding in shown:
            print(finding)
        for _, error in errors:
            print(error, file=sys.stderr)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        summary = f"{len(findings)} finding(s), {len(errors)} unreadable, {len(files)} file(s) checked"
        print(summary + (f", {len(allowed)} allowed by pragma" if allowed else ""))
    return 2 if errors else 1 if findings else 0
