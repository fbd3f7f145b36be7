"""Cells of the wrong kind, for trainbook.lint: TB207 markdown that is code (code that reads as prose:
parsed.py, with prose.py), TB214 Colab form annotations without the form view.

    check_cells(ctx)  # ctx: a trainbook.lint.parsed.ParsedNotebook; adds TB207 (markdown) and TB214
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .findings import cell_source
from .prose import code_line

if TYPE_CHECKING:
    from .parsed import ParsedNotebook

FORM = re.compile(r"^\s*#\s*@title\b|#\s*@param\b")


def check_cells(ctx: ParsedNotebook):
    for i, cell in enumerate(ctx.cells, start=1):
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        if cell.get("cell_type") == "markdown":
            line = code_line(cell_source(cell))
            if line:
                ctx.add(i, line, "TB207", "markdown cell holds Python code, so it never runs; change its type to code")
        tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
        if cell.get("cell_type") == "code" and meta.get("cellView") != "form" and "parameters" not in tags:
            for n, text in enumerate(cell_source(cell).split("\n"), start=1):
                if "@" in text and FORM.search(text):
                    what = "# @title" if "@title" in text else "# @param"
                    ctx.add(i, n, "TB214", f'cell has a Colab form field ({what}) but no metadata "cellView": "form"; '
                                           "Colab shows its code as a wall of text instead of the form")
                    break
