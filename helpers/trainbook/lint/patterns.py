"""Legacy API strings (TB101) and history wording (TB102): the pattern lists and matching them line by line.

    findings, allowed = legacy_findings(path, units, load_patterns())

The built-in list is trainbook/lint/patterns.json, extended by `api`/`history` in the
[tool.trainbook.lint] table (settings.py finds it) and by --patterns FILE.json;
`trainbook-lint: allow legacy` on a line silences it (reported as TB100 with --verbose).
"""

from __future__ import annotations

import dataclasses
import json
import re
from importlib import resources
from pathlib import Path

from .findings import Finding, LintConfigError

PRAGMA = "trainbook-lint: allow legacy"
KIND_CODES = {"api": "TB101", "history": "TB102"}
KIND_WORDS = {"api": "legacy API", "history": "history wording"}


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


def load_patterns(table=None, table_source: str = "", extra_files=()) -> list[Pattern]:
    """The built-in patterns, then those of a [tool.trainbook.lint] table (its `api` and `history` keys),
    then `extra_files` (JSON files shaped like trainbook/lint/patterns.json).

    Raises:
        LintConfigError: a pattern source that is unreadable or malformed.
    """
    text = resources.files("trainbook.lint").joinpath("patterns.json").read_text(encoding="utf-8")
    patterns = parse_patterns(json.loads(text), "trainbook/lint/patterns.json")
    if table:
        patterns += parse_patterns(table, table_source)
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
    anything = re.compile("|".join(f"(?:{p.regex.pattern})" for p in patterns), re.IGNORECASE) if patterns else None
    for cell, text, where in units:
        if anything is None or not anything.search(text):
            continue  # one search over the whole text rules out most cells
        for lineno, line in enumerate(text.splitlines(), start=1):
            silenced = bool(pragma.search(line))
            for p, matched in match_line(pragma.sub(" ", line), patterns):
                code, message = KIND_CODES[p.kind], f"{KIND_WORDS[p.kind]} {matched!r}" + (f" in {where}" if where else "")
                message += f": {p.reason}" + (f"; use {p.use}" if p.use else "")
                if silenced:
                    code, message = "TB100", f"allowed by pragma: {code} {message}"
                (allowed if silenced else findings).append(Finding(path, cell, lineno, code, message))
    return findings, allowed
