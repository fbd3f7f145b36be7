"""Notebook lint: legacy API strings and the notebook contract.

    python -m trainbook.lint notebooks/        # exit 0 clean, 1 findings, 2 unreadable input

Findings are printed as `path:cell N:line L: CODE message` (cells counted from 1 over all cells).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from importlib import resources
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Finding:
    path: str
    cell: int | None
    line: int
    code: str
    message: str

    def __str__(self):
        where = f"cell {self.cell}:line {self.line}" if self.cell is not None else f"line {self.line}"
        return f"{self.path}:{where}: {self.code} {self.message}"


class UnreadableInput(Exception):
    pass


def load_patterns() -> list[dict]:
    data = json.loads(resources.files("trainbook").joinpath("lint_patterns.json").read_text())
    return [{**p, "kind": kind} for kind, items in data.items() for p in items]


def _compile(pattern: str) -> re.Pattern:
    return re.compile(r"(?<![A-Za-z0-9_])" + re.escape(pattern).replace(r"\ ", r"\s+") + r"(?![A-Za-z0-9_])",
                      re.IGNORECASE)


def legacy_findings(path: str, cells: list[tuple[int | None, str]], patterns: list[dict]) -> list[Finding]:
    compiled = [(_compile(p["pattern"]), p) for p in patterns]
    out = []
    for cell, text in cells:
        for lineno, line in enumerate(text.splitlines(), start=1):
            for rx, p in compiled:
                if rx.search(line):
                    code = "TB101" if p["kind"] == "api" else "TB102"
                    out.append(Finding(path, cell, lineno, code,
                                       f"{p['pattern']!r}: {p['reason']}; use {p['use']}"))
    return out


def read_notebook(path: Path) -> dict:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UnreadableInput(f"{path}: cannot read notebook: {e}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise UnreadableInput(f"{path}: not a Jupyter notebook (no 'cells' list)")
    if nb.get("nbformat") != 4:
        raise UnreadableInput(f"{path}: nbformat {nb.get('nbformat')!r} is not supported (need 4)")
    return nb


def cell_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def lint_notebook(path: Path, patterns: list[dict]) -> list[Finding]:
    nb = read_notebook(path)
    cells = [(i, cell_text(c)) for i, c in enumerate(nb["cells"], start=1)]
    return legacy_findings(str(path), cells, patterns)


def lint_paths(paths: list[str]) -> tuple[list[Finding], list[str]]:
    patterns = load_patterns()
    findings, errors = [], []
    for raw in paths:
        p = Path(raw)
        files = sorted(p.rglob("*.ipynb")) if p.is_dir() else [p]
        files = [f for f in files if ".ipynb_checkpoints" not in f.parts]
        for f in files:
            try:
                findings += lint_notebook(f, patterns)
            except UnreadableInput as e:
                errors.append(str(e))
    return findings, errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainbook.lint", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["notebooks"])
    args = parser.parse_args(argv)
    findings, errors = lint_paths(args.paths)
    for f in findings:
        print(f)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{len(findings)} finding(s), {len(errors)} unreadable file(s)")
    return 2 if errors else 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
