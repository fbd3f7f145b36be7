"""The version ranges in requirements.txt and helpers/pyproject.toml admit what Google Colab ships.

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_colab_versions.py

COLAB is the table to update when Colab's runtime moves on (its date is COLAB_AS_OF). The pins of
the "Colab versions" environment (tests/colab_requirements.txt, `make test-colab`) must agree with it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
COLAB_AS_OF = "2026-11"
COLAB = {           # what Colab's default runtime has (issue 12); "x.y" means any x.y.* release
    "python": "3.13",
    "torch": "2.11",
    "numpy": "2.1",
    "ipywidgets": "7.7.1",
    "ipykernel": "6.17",
    "tqdm": "4.67",
    "wandb": "0.28.1",
}
COLAB_MARKER_ENV = {"python_version": "3.13", "python_full_version": "3.13.0", "sys_platform": "linux",
                    "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython"}


def read_requirements_txt(path: Path) -> list[str]:
    """The requirement lines of a requirements file: comments, blank lines and pip options dropped."""
    lines = []
    for raw in path.read_text().splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line and not line.startswith("-"):
            lines.append(line)
    return lines


def read_pyproject() -> tuple[list[str], str]:
    """(every dependency line, base and optional, of helpers/pyproject.toml; its requires-python)."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "helpers" / "pyproject.toml").read_text())["project"]
    lines = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        lines.extend(group)
    return lines, project["requires-python"]


def colab_rejections(lines: list[str], colab: dict[str, str]) -> list[str]:
    """One message per requirement whose range excludes the Colab version of its package."""
    problems = []
    for line in lines:
        req = Requirement(line)
        version = colab.get(req.name.lower())
        if version is None or (req.marker is not None and not req.marker.evaluate(COLAB_MARKER_ENV)):
            continue
        if not req.specifier.contains(Version(version), prereleases=True):
            problems.append(f"{line!r} rejects Colab's {req.name} {version} (as of {COLAB_AS_OF})")
    return problems


def declared_names(lines: list[str]) -> set[str]:
    return {Requirement(line).name.lower() for line in lines}


def test_requirements_txt_admits_colab_versions():
    lines = read_requirements_txt(ROOT / "requirements.txt")
    assert colab_rejections(lines, COLAB) == []
    missing = set(COLAB) - {"python"} - declared_names(lines)
    assert not missing, f"requirements.txt declares no range for {sorted(missing)}; the table checks nothing there"


def test_helpers_pyproject_admits_colab_versions():
    lines, requires_python = read_pyproject()
    assert colab_rejections(lines, COLAB) == []
    assert SpecifierSet(requires_python).contains(COLAB["python"]), \
        f"requires-python {requires_python!r} rejects Colab's Python {COLAB['python']}"
    assert {"torch", "numpy", "tqdm", "ipywidgets", "wandb"} <= declared_names(lines)


def test_colab_env_pins_agree_with_the_table():
    pins = {Requirement(line).name.lower(): Requirement(line).specifier
            for line in read_requirements_txt(ROOT / "tests" / "colab_requirements.txt")}
    for name in ("numpy", "ipywidgets", "ipykernel", "tqdm", "wandb"):
        pinned = [s.version for s in pins[name] if s.operator == "=="]
        assert len(pinned) == 1, f"tests/colab_requirements.txt must pin {name} with ==, has {pins[name]}"
        wanted = COLAB[name] if COLAB[name].count(".") == 2 else COLAB[name] + ".*"
        assert Version(pinned[0]) in SpecifierSet(f"=={wanted}"), \
            f"tests/colab_requirements.txt pins {name}=={pinned[0]}, Colab has {COLAB[name]} (as of {COLAB_AS_OF})"


def test_a_range_that_excludes_colab_is_reported():
    problems = colab_rejections(["numpy<2", "tqdm>=4.66", "wandb>=0.17; python_version < '3.12'",
                                 "ipywidgets>=8"], COLAB)
    assert problems == [f"'numpy<2' rejects Colab's numpy 2.1 (as of {COLAB_AS_OF})",
                        f"'ipywidgets>=8' rejects Colab's ipywidgets 7.7.1 (as of {COLAB_AS_OF})"]
