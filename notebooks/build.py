"""Write the suite's notebooks from their cell sources, with nbformat: notebooks/training.ipynb
(cells in training_cells.py) and notebooks/model_check.ipynb (cells in model_check_cells.py); both
share the setup cells defined here.

    python notebooks/build.py            # rewrite the notebooks (outputs stripped)
    python notebooks/build.py --check    # exit 1 if a committed notebook differs

The notebooks are the product's face; these files are where they are edited. Each cell is
(kind, id, source); ids are stable so diffs stay small.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPO = "trainbook/trainbook"  # GitHub owner/name: the one constant the badge and install URL use
NOTEBOOK_PATH = "notebooks/training.ipynb"
VERSION = "0.1.0"  # must equal trainbook.__version__ (checked by the lint and the tests)
COLAB_URL = f"https://colab.research.google.com/github/{REPO}/blob/main/{NOTEBOOK_PATH}"
MODEL_CHECK_URL = f"https://colab.research.google.com/github/{REPO}/blob/main/notebooks/model_check.ipynb"

PARAMETERS = f'''\
task = "lm"  # @param ["lm", "text-cls", "vision-cls"]
dataset = "builtin"  # @param {{type:"string"}}
tokenizer = "byte"  # @param ["byte", "bpe:2000", "hf:gpt2"] {{allow-input: true}}
text_column = ""  # @param {{type:"string"}}
label_column = ""  # @param {{type:"string"}}
# @markdown `auto` settings (`model_size` "auto", `data_limit` -1, `epochs`, `batch_size`, `learning_rate` 0) take the task's defaults (`tb.task_defaults`), chosen so a 2-core CPU beats the classical baseline in about a minute; any other value is used as given (`data_limit` 0 = all the data).
data_limit = -1  # @param {{type:"integer"}}
model_size = "auto"  # @param ["auto", "tiny", "small", "base"]
# @markdown `model_source`: "builtin" (`model_size` above), a .py file, a folder with model.py + config.json (a Transformer-Builder export), https://.../model.py, gist:<id>[@revision] or hf:<name-or-folder>. Code from a URL or Gist runs here (trust_remote_code=True): read it first. `model_class`: the class to build ("" = config.json's or the only one).
model_source = "builtin"  # @param {{type:"string"}}
model_class = ""  # @param {{type:"string"}}
epochs = 0  # @param {{type:"integer"}}
batch_size = 0  # @param {{type:"integer"}}
learning_rate = 0.0  # @param {{type:"number"}}
weight_decay = 0.01  # @param {{type:"number"}}
warmup_ratio = 0.1  # @param {{type:"number"}}
gradient_accumulation_steps = 1  # @param {{type:"integer"}}
precision = "auto"  # @param ["auto", "fp32", "bf16", "fp16"]
seed = 0  # @param {{type:"integer"}}
wandb_mode = "auto"  # @param ["auto", "online", "offline", "disabled"]
wandb_project = "trainbook"  # @param {{type:"string"}}
drift_shift = "none"  # @param ["none", "noise", "truncate", "packages", "brightness", "rotation"]
run_hp_search = False  # @param {{type:"boolean"}}
search_method = "grid"  # @param ["grid", "random"]
n_trials = 2  # @param {{type:"integer"}}
export_model = True  # @param {{type:"boolean"}}
helpers_ref = "v{VERSION}"  # @param {{type:"string"}}
run_name = "notebook"  # @param {{type:"string"}}
output_dir = "runs"  # @param {{type:"string"}}
# @markdown `persist_dir`: in Colab, a folder under `/content/drive/MyDrive/...` (Drive is mounted for you) keeps a copy of the run that survives a runtime reset; `resume = "never"` starts a new numbered run folder.
persist_dir = ""  # @param {{type:"string"}}
resume = "auto"  # @param ["auto", "never"]'''

_SETUP = [
    ("markdown", "setup-md", '''\
## Setup

In Colab the helper package is installed from the repository at `helpers_ref`, only when it is
missing or another version; elsewhere the local checkout is used. `verify_installation` fails
loudly when the version is wrong.<<DRIVE_MD>>'''),
    ("code", "setup", f'''\
import importlib
import importlib.metadata
import importlib.util
import os
import sys

IN_COLAB = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
REPO_URL = os.environ.get("TRAINBOOK_REPO_URL", "https://github.com/{REPO}")
WANTED_VERSION = helpers_ref.removeprefix("v")


def installed_trainbook_version():
    try:
        return importlib.metadata.version("trainbook")
    except importlib.metadata.PackageNotFoundError:
        return None


if IN_COLAB:
    from google.colab import output

    output.enable_custom_widget_manager()
<<DRIVE>>    if installed_trainbook_version() != WANTED_VERSION:
        %pip install -q "trainbook @ git+{{REPO_URL}}@{{helpers_ref}}#subdirectory=helpers"
        for name in [m for m in sys.modules if m == "trainbook" or m.startswith("trainbook.")]:
            del sys.modules[name]
        importlib.invalidate_caches()
elif importlib.util.find_spec("trainbook") is None:
    for candidate in ("helpers", os.path.join("..", "helpers")):
        if os.path.isdir(os.path.join(candidate, "trainbook")):
            sys.path.insert(0, os.path.abspath(candidate))
            break

import trainbook as tb

installed_version = tb.verify_installation(f"=={{WANTED_VERSION}}")'''),
]

DRIVE_MD = """ A `persist_dir` under `/content/drive` mounts Google Drive
(Colab asks for access once per runtime)."""
DRIVE_MOUNT = """\
    if persist_dir.startswith("/content/drive/") and not os.path.isdir("/content/drive/MyDrive"):
        from google.colab import drive

        drive.mount("/content/drive")  # persist_dir is on Google Drive: mount it once per runtime
"""


def setup_cells(mount_drive: bool) -> list[tuple]:
    """The setup cells every notebook of the suite starts with (the Colab install + verify contract).
    With mount_drive (the training notebook) a `persist_dir` under /content/drive mounts Google Drive."""
    return [(kind, name, source.replace("<<DRIVE>>", DRIVE_MOUNT if mount_drive else "")
             .replace("<<DRIVE_MD>>", DRIVE_MD if mount_drive else "")) for kind, name, source in _SETUP]


def notebooks() -> dict:
    """{file name in notebooks/: cells} for every notebook of the suite."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from model_check_cells import model_check_cells
    from training_cells import training_cells

    return {"training.ipynb": training_cells(COLAB_URL, MODEL_CHECK_URL, PARAMETERS, setup_cells(mount_drive=True)),
            "model_check.ipynb": model_check_cells(REPO, VERSION, setup_cells(mount_drive=False))}


def build(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
        "accelerator": "GPU",
    }
    for kind, cell_id, source in cells:
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
        if kind == "parameters":
            cell.metadata = {"tags": ["parameters"], "cellView": "form"}
        cell.id = cell_id
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(nb) -> str:
    """The notebook as git stores it: sources as line lists, 1-space indent, trailing newline."""
    import json

    data = json.loads(nbformat.writes(nb))
    for cell in data["cells"]:
        src = cell["source"]
        cell["source"] = src.splitlines(keepends=True) if isinstance(src, str) else src
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = 0
    for name, cells in notebooks().items():
        path = Path(__file__).resolve().parent / name
        text = render(build(cells))
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                print(f"{path} is out of date: run python notebooks/build.py")
                stale += 1
            continue
        path.write_text(text)
        print(f"wrote {path}")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
