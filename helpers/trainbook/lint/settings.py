"""The lint's settings: [tool.trainbook.lint] of the nearest pyproject.toml, then the command line.

    settings = load_settings(["notebooks"], select=["TB2"], ignore=["TB205"]); settings.enabled("TB223")

The table (all keys optional):

    [tool.trainbook.lint]
    select = ["TB"]                 # code prefixes to report, like ruff ("TB2", "TB22", "TB223", "ALL")
    ignore = ["TB205", "TB21"]      # code prefixes to leave out; the longer matching prefix wins
    packages = ["helpers/mypkg"]    # first-party packages (folders, relative to this file, or names)
    repository = "owner/name"       # the one repository every badge/clone/install/raw URL must name
    target-version = "3.13"         # the Python the notebook runs on
    api = [...]  history = [...]    # extra legacy patterns (patterns.py)

--select replaces `select`; --ignore adds to `ignore`; --package, --repository and
--target-version replace theirs.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
from functools import cached_property
from pathlib import Path

from .findings import CODES, LintConfigError
from .grammar import DEFAULT_TARGET, TargetParser, parse_version
from .package import PackageModel
from .patterns import Pattern, load_patterns
from .repository import parse_repository

KEYS = {"api", "history", "select", "ignore", "packages", "repository", "target-version"}
DEFAULT_PACKAGES = ["trainbook"]


@dataclasses.dataclass
class Settings:
    patterns: list[Pattern]
    select: list[str] = dataclasses.field(default_factory=lambda: ["TB"])
    ignore: list[str] = dataclasses.field(default_factory=list)
    packages: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_PACKAGES))
    packages_base: Path | None = None  # folder that relative package paths start from
    repository: tuple[str, str] | None = None
    repository_source: str = ""
    target: tuple[int, int] = DEFAULT_TARGET

    def enabled(self, code: str) -> bool:
        """Whether `code` is reported: the longest matching select/ignore prefix decides, ignore on a tie."""
        def best(prefixes):
            return max((len(p) if p != "ALL" else 0 for p in prefixes if p == "ALL" or code.startswith(p)), default=-1)

        selected, ignored = best(self.select), best(self.ignore)
        return selected >= 0 and selected > ignored

    @cached_property
    def model(self) -> PackageModel:
        """The first-party packages, read from source on first use (shared by every notebook)."""
        return PackageModel.load(self.packages, self.packages_base)

    @cached_property
    def parser(self) -> TargetParser:
        return TargetParser(self.target)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml in `start` (a folder or file) or any parent folder, or None."""
    start = start.resolve()
    for folder in [start, *start.parents] if start.is_dir() else start.parents:
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    return None


def read_table(path: Path) -> dict | None:
    """The [tool.trainbook.lint] table of a pyproject.toml, or None when it has none.

    Raises:
        LintConfigError: invalid TOML, or a table that is not a table.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LintConfigError(f"{path}: cannot read: {e}") from None
    if "tool.trainbook" not in text:
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        print(f"note: {path}: [tool.trainbook.lint] is ignored because this Python has no tomllib (3.11+); "
              "pass the patterns with --patterns FILE.json and the rules with --select/--ignore instead",
              file=sys.stderr)
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LintConfigError(f"{path}: invalid TOML: {e}") from None
    table = data.get("tool", {}).get("trainbook", {}).get("lint")
    if table is not None and not isinstance(table, dict):
        raise LintConfigError(f"{path}: [tool.trainbook.lint] must be a table; got {type(table).__name__}")
    return table


def load_settings(paths=(), extra_patterns=(), select=None, ignore=(), packages=None, repository=None,
                  target_version=None) -> Settings:
    """The settings for linting `paths`: the table of the nearest pyproject.toml (searched upward from
    the paths' common folder, then from the current directory), overridden by the arguments.

    Raises:
        LintConfigError: an unknown key, a value of the wrong type, an unknown rule code, an
            unreadable pattern file, a repository or version that does not parse.
    """
    existing = [os.path.abspath(p) for p in paths if os.path.exists(p)]
    pyproject = (find_pyproject(Path(os.path.commonpath(existing))) if existing else None) or find_pyproject(Path.cwd())
    table = (read_table(pyproject) if pyproject else None) or {}
    where = f"{pyproject} [tool.trainbook.lint]"
    unknown = sorted(set(table) - KEYS)
    if unknown:
        hints = [difflib.get_close_matches(k, KEYS, n=1) for k in unknown]
        raise LintConfigError(f"{where}: unknown key(s) {unknown}" + "".join(f"; did you mean {h[0]!r}?" for h in hints
                                                                             if h) + f"; expected {sorted(KEYS)}")
    patterns = load_patterns({k: table[k] for k in ("api", "history") if k in table}, where, extra_patterns)
    settings = Settings(patterns)
    settings.select = _codes(select, "--select") if select else _codes(table.get("select", ["TB"]), f"{where} select")
    settings.ignore = _codes(table.get("ignore", []), f"{where} ignore") + _codes(ignore, "--ignore")
    if packages:
        settings.packages = list(packages)
    elif "packages" in table:
        settings.packages = _strings(table["packages"], f"{where} packages")
        settings.packages_base = pyproject.parent
    if repository or "repository" in table:
        source = "--repository" if repository else f"{where} repository"
        settings.repository = parse_repository(repository or table["repository"], source)
        settings.repository_source = "--repository" if repository else f"repository in {pyproject}"
    if target_version or "target-version" in table:
        try:
            settings.target = parse_version(target_version or table["target-version"],
                                            "--target-version" if target_version else f"{where} target-version")
        except ValueError as e:
            raise LintConfigError(str(e)) from None
    return settings


def _strings(value, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LintConfigError(f"{where}: expected a list of strings; got {value!r}")
    return value


def _codes(values, where: str) -> list[str]:
    """Rule selectors, comma-separated or listed; each must be ALL or a prefix of a known code."""
    values = [values] if isinstance(values, str) else list(values) if isinstance(values, tuple) else values
    found = []
    for value in _strings(values, where):
        for code in filter(None, (c.strip().upper() for c in re.split(r"[,\s]+", value))):
            if code != "ALL" and not any(known.startswith(code) for known in CODES):
                close = difflib.get_close_matches(code, CODES, n=1)
                raise LintConfigError(f"{where}: unknown rule code {code!r}" + (f"; did you mean {close[0]!r}?" if close
                                      else "") + " (codes: TB100-TB252, listed in the README; prefixes like TB2 work)")
            found.append(code)
    return found
