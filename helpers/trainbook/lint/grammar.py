"""Parsing notebook code for a target Python version (default 3.13, Colab's), for trainbook.lint.

    parser = TargetParser((3, 13)); tree, nodes, error = parser.parse(source)

Code is parsed with this interpreter's `ast` (feature_version set when the target is older). When
the target is newer than this Python, a cell this Python rejects is handed to the target's own
interpreter (python3.13 on PATH, under ~/.pyenv, or TRAINBOOK_PY313), which only parses it;
when there is none, the rejection stands with its version named and one note says so.
A tree nested deeper than MAX_DEPTH is an error too: the rules walk trees recursively. Each tree
comes with its nodes as a flat list, so the rules share one walk.
"""

from __future__ import annotations

import ast
import glob
import json
import os
import re
import shutil
import subprocess
import sys

HOST = sys.version_info[:2]
DEFAULT_TARGET = (3, 13)
MAX_DEPTH = 300
_CHECK = """import ast, json, sys
out = []
for source in json.load(sys.stdin):
    try:
        ast.parse(source)
        out.append(None)
    except SyntaxError as e:
        out.append([e.lineno or 1, e.msg])
    except (RecursionError, MemoryError, ValueError) as e:
        out.append([1, f"{type(e).__name__}: {e}".rstrip(": ")])
print(json.dumps({"version": sys.version_info[:2], "verdicts": out}))
"""
_FOUND = {}  # (target, where we looked) -> interpreter path or None, searched once per process


def parse_version(text: str, where: str) -> tuple[int, int]:
    """'3.13' -> (3, 13).

    Raises:
        ValueError: not a Python 3 version from 3.8 on, naming `where`.
    """
    match = re.fullmatch(r"(?:py)?3\.?(\d+)", str(text).strip())
    if not match or not 8 <= int(match.group(1)) <= 20:
        raise ValueError(f"{where}: target version must look like \"3.13\" (3.8 or newer); got {text!r}")
    return 3, int(match.group(1))


def version_text(version) -> str:
    return ".".join(map(str, version))


class TargetParser:
    """Parses cells for one target version; asks the target's interpreter when this one is older."""

    def __init__(self, target: tuple[int, int] = DEFAULT_TARGET):
        self.target, self.note = tuple(target), None  # note: why the target could not be checked, once

    def parse(self, source: str):
        """(tree, its nodes, None) or (None, [], (line, message, final)) for this interpreter's grammar at
        the target version; final: the error does not depend on the grammar, and the message is a whole
        sentence about the cell (too deep, null bytes)."""
        try:
            tree = ast.parse(source, feature_version=min(self.target, HOST))
        except SyntaxError as e:
            if "null bytes" in e.msg:
                return None, [], (1, f"cell does not parse as Python: {e.msg}", True)
            return None, [], (e.lineno or 1, e.msg, False)
        except (RecursionError, MemoryError) as e:
            return None, [], (1, f"cell is too deeply nested for Python's parser ({type(e).__name__}); split the "
                                 "expression into named parts", True)
        except ValueError as e:  # null bytes
            return None, [], (1, f"cell does not parse as Python: {e}", True)
        nodes, depth = flatten(tree)
        if depth > MAX_DEPTH:
            return None, [], (1, f"cell is not checked: it nests more than {MAX_DEPTH} levels deep; split the "
                                 "expression into named parts", True)
        return tree, nodes, None

    def confirm(self, sources: list[str]):
        """For sources this Python rejected: the target interpreter's verdicts (None: it parses), or None
        when the target is not newer than this Python or no interpreter for it is found."""
        if self.target <= HOST or not sources:
            return None
        for python in self._interpreters():
            try:
                done = subprocess.run([python, "-I", "-S", "-c", _CHECK], input=json.dumps(sources),
                                      capture_output=True, text=True, timeout=60)
                answer = json.loads(done.stdout) if done.returncode == 0 else {}
            except (OSError, subprocess.SubprocessError, ValueError):
                answer = {}
            verdicts = answer.get("verdicts") if tuple(answer.get("version", ())) == self.target else None
            if isinstance(verdicts, list) and len(verdicts) == len(sources):
                _FOUND[self._search_key()] = python
                return [(*v, False) if v else None for v in verdicts]
        _FOUND[self._search_key()] = None
        env = "TRAINBOOK_PY" + "".join(map(str, self.target))
        self.note = (f"cannot check for Python {version_text(self.target)} here: this is Python {version_text(HOST)} "
                     f"and no python{version_text(self.target)} was found (PATH, ~/.pyenv, {env}); cells it rejects "
                     f"are reported as TB221 for {version_text(HOST)}")
        return None

    def _search_key(self):
        env = "TRAINBOOK_PY" + "".join(map(str, self.target))
        root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        return self.target, os.environ.get(env), os.environ.get("PATH"), root

    def _interpreters(self):
        key = self._search_key()
        if key in _FOUND:
            return [_FOUND[key]] if _FOUND[key] else []
        name, env, root = f"python{version_text(self.target)}", "TRAINBOOK_PY" + "".join(map(str, self.target)), key[3]
        found = [os.environ.get(env), shutil.which(name),
                 *sorted(glob.glob(os.path.join(root, "versions", f"{version_text(self.target)}*", "bin", name)),
                         reverse=True)]
        return list(dict.fromkeys(p for p in found if p))


def flatten(tree, limit: int = MAX_DEPTH):
    """(every node of the tree but the Load/Store contexts, how deep it nests), without recursion;
    stops just past `limit` levels."""
    nodes, deepest, stack = [], 0, [(tree, 1)]
    leaf, node_type = ast.expr_context, ast.AST
    while stack:
        node, depth = stack.pop()
        nodes.append(node)
        if depth > deepest:
            deepest = depth
            if depth > limit:
                break
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                stack.extend((v, depth + 1) for v in value if isinstance(v, node_type))
            elif isinstance(value, node_type) and not isinstance(value, leaf):
                stack.append((value, depth + 1))
    return nodes, deepest


def parse_in_parts(source: str, parser: TargetParser):
    """A cell that does not parse as a whole, cut into top-level statements: (tree of the parts that
    parse, with the cell's line numbers; every identifier in the parts that do not)."""
    lines, starts = source.split("\n"), []
    for n, line in enumerate(lines):
        if line[:1] not in ("", " ", "\t", "#", ")", "]", "}") and not re.match(
                r"(else|elif|except|finally)\b", line) and not (n and lines[n - 1].rstrip().endswith("\\")):
            starts.append(n)
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    body, opaque = [], set()
    for a, b in zip(starts, starts[1:] + [len(lines)]):
        chunk = "\n".join(lines[a:b])
        tree, _, error = parser.parse(chunk) if chunk.strip() else (None, [], None)
        if tree is not None:
            ast.increment_lineno(tree, a)
            body += tree.body
        elif error is not None:
            opaque.update(re.findall(r"[A-Za-z_]\w*", chunk))
    return ast.Module(body=body, type_ignores=[]), opaque
