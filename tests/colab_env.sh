#!/usr/bin/env bash
# Build the "Colab versions" virtual environment: Colab's notebook stack, pinned, without trainbook.
#
#     bash tests/colab_env.sh [VENV_DIR]      # default .venv-colab; rebuilt only when the pins change
#
# The pins are in tests/colab_requirements.txt. trainbook is deliberately NOT installed: the
# notebook's setup cell installs it from a git ref, as in Colab (tests/test_colab.py drives that).
# papermill is not installed either (Colab has none): the test runs papermill from .venv and
# starts the notebook's kernel with this environment's python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-colab}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
REQS=tests/colab_requirements.txt
STAMP="$VENV/.colab-stamp"
wanted="$("$PYTHON" --version) $TORCH_SPEC $(sha256sum "$REQS" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
    echo "$VENV is up to date ($wanted)"
    exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
# this machine's pip config names local package folders that lack most packages: drop that noise
"$VENV/bin/python" -m pip install -q "$TORCH_SPEC" -r "$REQS" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
"$VENV/bin/python" -m pip check
if "$VENV/bin/python" -c "import trainbook" 2>/dev/null; then
    echo "$VENV: trainbook is importable but must not be (the notebook installs it)" >&2
    exit 1
fi
echo "$wanted" > "$STAMP"
"$VENV/bin/python" -c "import sys, torch, numpy, ipywidgets, ipykernel, IPython, tqdm, wandb
print('python', sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__,
      'ipywidgets', ipywidgets.__version__, 'ipykernel', ipykernel.__version__,
      'ipython', IPython.__version__, 'tqdm', tqdm.__version__, 'wandb', wandb.__version__)"
