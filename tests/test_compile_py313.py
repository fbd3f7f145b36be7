"""Colab's Python (3.13) compiles helpers/ and every notebook's code cells, warnings as errors.

    .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_compile_py313.py
    TRAINBOOK_PY313=/path/to/python3.13 ...   # when python3.13 is neither on PATH nor under ~/.pyenv

Notebook code cells are written out as one script per notebook; IPython magics and shell lines
(`%pip ...`, `!ls`) become `pass  # <the line>`, cell magics (`%%bash`) drop the whole cell.
`-W error` makes SyntaxWarnings (an invalid escape such as "\\d" in a plain string) fail too:
Colab shows them to every user. Skipped, with the reason, where no Python 3.13 is found.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PY313_ENV = "TRAINBOOK_PY313"


def python_minor(python: str) -> str | None:
    """'3.13' for a working interpreter, None for one that does not run (e.g. a pyenv shim with no version)."""
    try:
        done = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
                              capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_python313() -> str | None:
    """TRAINBOOK_PY313, else a working python3.13 on PATH, else the newest ~/.pyenv/versions/3.13.*."""
    if os.environ.get(PY313_ENV):
        return os.environ[PY313_ENV]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which("python3.13"),
                  *sorted(glob.glob(os.path.join(pyenv_root, "versions", "3.13*", "bin", "python3.13")), reverse=True)]
    return next((c for c in candidates if c and python_minor(c) == "3.13"), None)


def notebook_as_script(path: Path) -> str:
    """The notebook's code cells as one Python script, magics neutralised, each cell headed by its id."""
    nb = nbformat.read(path, as_version=4)
    chunks = []
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        header = f"# cell {cell.get('id', number)}"
        if lines and lines[0].lstrip().startswith("%%"):
            chunks.append(f"{header}: cell magic {lines[0].strip()!r} not compiled\n")
            continue
        body = []
        for line in lines:
            code = line.lstrip()
            if code.startswith(("%", "!")):
                line = f"{line[:len(line) - len(code)]}pass  # {code}"
            body.append(line)
        chunks.append(header + "\n" + "\n".join(body) + "\n")
    return "\n".join(chunks)


def compile_with(python: str, *paths: Path, pycache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(pycache)}   # no .pyc files land in the checkout
    return subprocess.run([python, "-W", "error", "-m", "compileall", "-q", "-f", *map(str, paths)],
                          env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def python313() -> str:
    python = find_python313()
    if python is None:
        pytest.skip(f"no Python 3.13 found (python3.13 on PATH, ~/.pyenv/versions/3.13.*, or {PY313_ENV}): "
                    "Colab's Python is not checked on this machine")
    version = python_minor(python)
    assert version == "3.13", f"{PY313_ENV}={python} is Python {version or '(does not run)'}, not 3.13"
    return python


def test_notebook_as_script_neutralises_magics(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys\nif True:\n    %pip install -q x\n    !ls\n"),
                nbformat.v4.new_markdown_cell("# not code"),
                nbformat.v4.new_code_cell("%%bash\necho hi")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    script = notebook_as_script(path)
    assert "if True:\n    pass  # %pip install -q x\n    pass  # !ls\n" in script
    assert "echo hi" not in script and "not code" not in script
    compile(script, "nb.py", "exec")


def test_helpers_and_notebooks_compile_under_python313(python313, tmp_path):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks found under notebooks/"
    scripts = tmp_path / "notebooks"
    scripts.mkdir()
    for nb in notebooks:
        (scripts / f"{nb.stem}.py").write_text(notebook_as_script(nb))
    done = compile_with(python313, ROOT / "helpers" / "trainbook", scripts, pycache=tmp_path / "pycache")
    assert done.returncode == 0, f"Python 3.13 rejects:\n{done.stdout}{done.stderr}"


def test_python313_check_fails_on_bad_syntax_and_syntax_warnings(python313, tmp_path):
    (tmp_path / "escape.py").write_text('PATTERN = "\\d+"\n')       # SyntaxWarning on 3.12+
    (tmp_path / "print.py").write_text('print "hello"\n')            # SyntaxError
    done = compile_with(python313, tmp_path, pycache=tmp_path / "pycache")
    assert done.returncode != 0
    assert "escape.py" in done.stdout + done.stderr and "invalid escape sequence" in done.stdout + done.stderr
    assert "print.py" in done.stdout + done.stderr
