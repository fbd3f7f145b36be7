"""What a cell's text reads as, for trainbook.lint's TB207: Python code in markdown, prose in a code cell.

    code_line("import os\nos.listdir()")  # 1: the first line of code; None for prose

Markdown is code when it parses as Python and holds an import, a def/class or a shell/magic line
(`!pip`, `%cd`), or two statements with a call or an assignment: prose almost never parses. A code
cell that does not parse is prose when at least half its lines are sentences (four or more words,
mostly letters, no call, bracket or `=`).
"""

from __future__ import annotations

import ast
import re

from .grammar import MAX_DEPTH, flatten

SHELL = re.compile(r"^\s*(%{1,2}[a-z_]+\b|!\s*(pip3?|python3?|git|wget|curl|apt(-get)?|nvidia-smi|ls|cd|mkdir|unzip|"
                   r"tar|cp|mv|rm)\b)")
STRONG = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
STATEMENTS = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.While, ast.With, ast.If, ast.Try)
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*[,.;:!?]?")


def code_line(text: str) -> int | None:
    """The first line of code in a markdown cell's text, or None when it is not code."""
    lines = text.split("\n")
    shell = [n for n, line in enumerate(lines) if SHELL.match(line)]
    for n in shell:
        lines[n] = lines[n][: len(lines[n]) - len(lines[n].lstrip())] + "pass"
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if flatten(tree)[1] > MAX_DEPTH:
        return None
    strong = [s.lineno for s in tree.body if isinstance(s, STRONG)] + [n + 1 for n in shell]
    statements = [s for s in tree.body if isinstance(s, STATEMENTS) or isinstance(s, ast.Expr) and
                  isinstance(s.value, ast.Call)]
    if strong:
        return min(strong)
    acts = any(isinstance(n, (ast.Call, ast.Assign, ast.AugAssign)) for s in statements for n in ast.walk(s))
    return statements[0].lineno if len(statements) >= 2 and acts else None


def prose_line(source: str) -> int | None:
    """The first prose line of a code cell that does not parse, when at least half its lines are prose."""
    lines = [(n, line.strip()) for n, line in enumerate(source.split("\n"), start=1)
             if line.strip() and not line.strip().startswith("#")]
    prose = [n for n, line in lines if _is_prose(line)]
    return prose[0] if lines and len(prose) * 2 >= len(lines) else None


def _is_prose(line: str) -> bool:
    body = re.sub(r"^([-*>]|\d+\.)\s+", "", line)
    words = body.split()
    if len(words) < 4 or re.search(r"\w\(|[=\[\]{}]|^(def|class|if|for|while|with|return|import|from)\b", body):
        return False
    return sum(bool(WORD.fullmatch(w.strip("`*()\"'"))) for w in words) >= 0.75 * len(words)
