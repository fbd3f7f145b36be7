"""Command line: python -m trainbook train|lint ...

    python -m trainbook lint notebooks/
"""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m trainbook {lint} [args...]")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "lint":
        from .lint import main as lint_main

        return lint_main(rest)
    print(f"unknown command {command!r}; expected one of: lint", file=sys.stderr)
    return 2
