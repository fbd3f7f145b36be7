"""A notebook parsed once for the code rules: its cells, each code cell's ast, and the findings so far.

    ctx = ParsedNotebook(read_notebook(path), path); ctx.code  # [(cell number, tree or None, magics)]

No cell is executed: sources are parsed with `ast` after IPython magics and shell lines
(`%pip ...`, `!ls`, `x = !ls`) are neutralised, so line numbers stay those of the cell.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .findings import Finding, cell_source

BODY_MAGICS = {"capture", "time", "timeit", "prun"}  # cell magics whose body is Python


class ParsedNotebook:
    """A notebook being checked: its cells, parsed code cells, parameters, and the findings so far."""

    def __init__(self, nb: dict, path: Path):
        self.cells, self.path, self.findings = nb["cells"], path, []
        self.params = {}  # parameter name -> (value, cell, line)
        self.broken, self.uses_trainbook = set(), False  # cells that do not parse; imports trainbook
        self.code = []  # (cell number, tree or None, [(line, magic or shell line)])
        for i, cell in enumerate(self.cells, start=1):
            if cell.get("cell_type") == "code":
                self.code.append((i, *self._parse(i, cell_source(cell))))

    def add(self, cell, line, code, message):
        self.findings.append(Finding(str(self.path), cell, line, code, message))

    def _parse(self, cell_no: int, text: str):
        lines, magics = text.split("\n"), []
        if lines[0].startswith("%%"):
            if lines[0][2:].split(" ")[0] not in BODY_MAGICS:
                return None, [(1, lines[0])]  # %%bash, %%writefile, ...: not Python
            magics.append((1, lines[0]))
            lines[0] = ""
        for n, line in enumerate(lines):
            stripped, indent = line.lstrip(), line[: len(line) - len(line.lstrip())]
            assigned = re.match(r"([A-Za-z_][\w, ]*?)\s*=\s*[%!](?!=)", stripped)
            if stripped.startswith(("%", "!")) or assigned:
                magics.append((n + 1, stripped))
                lines[n] = indent + (f"{assigned.group(1)} = None" if assigned else "pass")
        for source in (text, "\n".join(lines)) if magics else ("\n".join(lines),):
            try:  # the text as written first: a line starting with "%" may continue an expression
                return ast.parse(source), [] if source is text else magics
            except SyntaxError as e:
                error = e
        self.add(cell_no, error.lineno or 1, "TB221", f"cell does not parse as Python: {error.msg}")
        self.broken.add(cell_no)
        return None, magics
