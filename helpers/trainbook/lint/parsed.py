"""A notebook parsed once for the code rules: its cells, each code cell's ast, and the findings so far.

    ctx = ParsedNotebook(read_notebook(path), path); ctx.code  # [(cell number, tree or None, magics)]
    for node in ctx.nodes[cell]: ...                            # every node of a cell, walked once

No cell is executed: sources are parsed with `ast` after IPython magics and shell lines
(`%pip ...`, `!ls`, `x = !ls`, `tb.Trainer?`) are neutralised, so line numbers stay those of the cell. Cells are
parsed for the target Python version (grammar.py). A cell that does not parse is reported once
(TB221, or TB207 when it reads as prose) and still yields the statements that parse on their own;
`opaque[cell]` holds every identifier of the parts that do not, so later rules neither trust nor
report them.
"""

from __future__ import annotations

import re
from pathlib import Path

from .findings import Finding, cell_source
from .grammar import HOST, TargetParser, flatten, parse_in_parts, version_text
from .prose import prose_line

BODY_MAGICS = {"capture", "time", "timeit", "prun"}  # cell magics whose body is Python


class ParsedNotebook:
    """A notebook being checked: its cells, parsed code cells, parameters, and the findings so far."""

    def __init__(self, nb: dict, path: Path, parser: TargetParser | None = None):
        self.cells, self.path, self.findings = nb["cells"], path, []
        self.parser = parser or TargetParser()
        self.params = {}  # parameter name -> (value, cell, line)
        self.broken, self.opaque, self.uses_package = set(), {}, False  # cells that do not parse; their names
        self.code, failed = [], []  # code: (cell number, tree or None, [(line, magic or shell line)])
        self.nodes, self._memo = {}, {}  # cell -> its nodes; (what, cell) -> a rule's shared result
        for i, cell in enumerate(self.cells, start=1):
            if cell.get("cell_type") == "code":
                source, tree, self.nodes[i], error, magics = self._parse(cell_source(cell))
                self.code.append((i, tree, magics))
                if error:
                    failed.append((len(self.code) - 1, source, error))
        grammar = [(slot, source) for slot, source, error in failed if not error[2]]
        verdicts = dict(zip((slot for slot, _ in grammar), self.parser.confirm([s for _, s in grammar]) or ()))
        target = version_text(self.parser.target)
        for slot, source, error in failed:
            cell_no, _, magics = self.code[slot]
            tree, self.opaque[cell_no] = parse_in_parts(source, self.parser)
            self.code[slot], self.nodes[cell_no] = (cell_no, tree, magics), flatten(tree)[0]
            self.broken.add(cell_no)
            if error[2] or self.parser.target <= HOST:
                self._report(cell_no, source, error, target)
            elif slot not in verdicts:
                self._report(cell_no, source, error, f"{version_text(HOST)} (cannot check for {target} here)")
            elif verdicts[slot] is not None:
                self._report(cell_no, source, verdicts[slot], target)

    def add(self, cell, line, code, message):
        self.findings.append(Finding(str(self.path), cell, line, code, message))

    def shared(self, what: str, cell: int, compute):
        """compute() once per (what, cell): results several rules need, e.g. a cell's bound names."""
        key = (what, cell)
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _report(self, cell_no: int, source: str, error, version: str):
        prose = prose_line(source)
        if prose:
            self.add(cell_no, prose, "TB207", "code cell reads as prose (markdown saved as a code cell?); "
                                              "change its type to markdown")
        else:
            self.add(cell_no, error[0], "TB221", error[1] if error[2] else
                     f"cell does not parse as Python {version}: {error[1]}")

    def _parse(self, text: str):
        """(source parsed, tree, nodes, error, magics): the text as written first when it has magic-like
        lines, since a line starting with "%" may continue an expression."""
        source, magics = self._neutralise(text)
        if source is None:
            return None, None, [], None, magics
        if magics:
            tree, nodes, _ = self.parser.parse(text)
            if tree is not None:
                return text, tree, nodes, None, []
        return (source, *self.parser.parse(source), magics)

    @staticmethod
    def _neutralise(text: str):
        """(Python source with magics and shell lines replaced, [(line, magic)]); source None for %%bash-like cells."""
        lines, magics = text.split("\n"), []
        if lines[0].startswith("%%"):
            if lines[0][2:].split(" ")[0] not in BODY_MAGICS:
                return None, [(1, lines[0])]  # %%bash, %%writefile, ...: not Python
            magics.append((1, lines[0]))
            lines[0] = ""
        for n, line in enumerate(lines):
            stripped, indent = line.lstrip(), line[: len(line) - len(line.lstrip())]
            assigned = re.match(r"([A-Za-z_][\w, ]*?)\s*=\s*[%!](?!=)", stripped)
            help_line = re.fullmatch(r"\?{0,2}[\w.]+\?{0,2}", stripped) and "?" in stripped  # tb.Trainer?
            if stripped.startswith(("%", "!")) or assigned or help_line:
                magics.append((n + 1, stripped))
                lines[n] = indent + (f"{assigned.group(1)} = None" if assigned else "pass")
        return "\n".join(lines), magics
