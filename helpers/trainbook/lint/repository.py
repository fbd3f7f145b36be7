"""Repository URLs, for trainbook.lint: TB252 a badge, clone, install or raw URL that names another repository.

    findings = check_repository(nb, path, configured=("acme", "demo"), packages={"trainbook"})

The repository is the configured one ([tool.trainbook.lint] repository, --repository), else the
one the notebook's Open-in-Colab badge opens, else the one its first-party package is installed
from. A GitHub URL is the project's when it is the badge, installs a first-party package
(`pkg @ git+URL`, `#egg=pkg`), or shares the owner or the name with the repository; links to
other projects (`github.com/karpathy/nanoGPT`) are left alone.
"""

from __future__ import annotations

import re
from pathlib import Path

from .findings import Finding, LintConfigError, cell_source

URLS = [
    ("badge", re.compile(r"https?://colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)")),
    ("url", re.compile(r"(?:git\+)?https?://(?:www\.)?github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?"
                       r"(?=[/@#?\s\"'`)\]>]|$)")),
    ("url", re.compile(r"https?://raw\.githubusercontent\.com/([\w.-]+)/([\w.-]+)")),
    ("url", re.compile(r"git@github\.com:([\w.-]+)/([\w.-]+?)(?:\.git)?(?=[\s\"'`)]|$)")),
    ("url", re.compile(r"https?://nbviewer\.(?:jupyter\.)?org/github/([\w.-]+)/([\w.-]+)")),
]


def parse_repository(text: str, where: str) -> tuple[str, str]:
    """'owner/name' or a GitHub URL -> ('owner', 'name').

    Raises:
        LintConfigError: anything else, naming `where`.
    """
    match = re.fullmatch(r"(?:https?://(?:www\.)?github\.com/)?([\w.-]+)/([\w.-]+?)(?:\.git)?/?", str(text).strip())
    if not match:
        raise LintConfigError(f"{where}: repository must be 'owner/name' or https://github.com/owner/name; "
                              f"got {text!r}")
    return match.group(1), match.group(2)


def repository_urls(nb: dict, packages) -> list[tuple[int, int, str, str, str, str]]:
    """(cell, line, kind, owner, name, url) for every GitHub URL; kind: badge | install | url."""
    names = "|".join(map(re.escape, packages))
    install = re.compile(rf"\b({names})\s*@\s*git\+|#egg=({names})\b") if packages else None
    found = []
    for i, cell in enumerate(nb["cells"], start=1):
        for n, line in enumerate(cell_source(cell).split("\n"), start=1):
            if "github" not in line:
                continue
            for kind, pattern in URLS:
                for m in pattern.finditer(line):
                    what = "install" if kind == "url" and install and install.search(line) and "git+" in line else kind
                    found.append((i, n, what, m.group(1), m.group(2), m.group(0)))
    return found


def check_repository(nb: dict, path: Path, configured=None, source: str = "", packages=()) -> list[Finding]:
    """TB252 for each project URL that names another repository than the notebook's one.

    Args:
        configured: ('owner', 'name') from the settings, or None to take the badge's (or the install's).
        source: where `configured` came from, for messages.
        packages: first-party package names (their git installs are the project's).
    Returns:
        the findings; none when no repository is configured and the notebook names none.
    """
    urls = repository_urls(nb, packages)
    reference = configured
    if reference is None:
        first = next((u for u in urls if u[2] == "badge"), None) or next((u for u in urls if u[2] == "install"), None)
        if first is None:
            return []
        what = "Open-in-Colab badge" if first[2] == "badge" else "install"
        reference, source = (first[3], first[4]), f"the {what} in cell {first[0]}"
    owner, name = (part.lower() for part in reference)
    found = []
    for cell, line, kind, url_owner, url_name, url in urls:
        ours = kind != "url" or url_owner.lower() in (owner, name) or url_name.lower() in (owner, name)
        if ours and (url_owner.lower(), url_name.lower()) != (owner, name):
            found.append(Finding(str(path), cell, line, "TB252", f"{url} names the repository {url_owner}/{url_name}, "
                                 f"but this notebook's repository is {reference[0]}/{reference[1]} ({source}); the "
                                 "badge, clone, install and raw URLs must all name one repository"))
    return found
