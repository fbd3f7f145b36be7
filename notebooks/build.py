"""Write notebooks/training.ipynb from the cell sources below, with nbformat.

    python notebooks/build.py            # rewrite the notebook (outputs stripped)
    python notebooks/build.py --check    # exit 1 if the committed notebook differs

The notebook is the product's face; this file is where it is edited. Each cell is
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

PARAMETERS = f'''\
task = "lm"  # @param ["lm", "text-cls", "vision-cls"]
dataset = "builtin"  # @param {{type:"string"}}
data_limit = 800  # @param {{type:"integer"}}
model_size = "tiny"  # @param ["tiny", "small", "base"]
epochs = 2  # @param {{type:"integer"}}
batch_size = 16  # @param {{type:"integer"}}
learning_rate = 0.003  # @param {{type:"number"}}
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
output_dir = "runs"  # @param {{type:"string"}}'''

CELLS = [
    ("markdown", "title", f'''\
# trainbook: train, track, check drift, export

[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_URL})

Fill the form below and run all cells. Everything runs offline on built-in data (the Python
standard library's own source for text, scikit-learn's digits for images) unless you point
`dataset` at your own files. A GPU is used when there is one.

Headless, from a checkout:

```
make run                                   # writes runs/notebook/
papermill notebooks/training.ipynb out.ipynb -p epochs 5 -p batch_size 8 -p task vision-cls
```'''),
    ("parameters", "parameters", PARAMETERS),
    ("markdown", "setup-md", '''\
## Setup

In Colab the helper package is installed from the repository at `helpers_ref`, only when it is
missing or another version; elsewhere the local checkout is used. `verify_installation` fails
loudly when the version is wrong.'''),
    ("code", "setup", f'''\
import importlib
import importlib.util
import os
import sys

IN_COLAB = "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ
REPO_URL = os.environ.get("TRAINBOOK_REPO_URL", "https://github.com/{REPO}")
WANTED_VERSION = helpers_ref.removeprefix("v")


def installed_trainbook_version():
    spec = importlib.util.find_spec("trainbook")
    if spec is None:
        return None
    return importlib.import_module("trainbook").__version__


if IN_COLAB:
    from google.colab import output

    output.enable_custom_widget_manager()
    if installed_trainbook_version() != WANTED_VERSION:
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

tb.verify_installation(f"=={{WANTED_VERSION}}")'''),
    ("code", "environment", '''\
env = tb.environment()
for key, value in env.items():
    print(f"{key:<15} {value}")
print(f"{'precision':<15} {precision} -> {env['auto_precision'] if precision == 'auto' else precision}")'''),
    ("markdown", "data-md", '''\
## Data

`train` and `val` never share a source file; `current` is held-out data for the drift check
(shifted when `drift_shift` is not "none").'''),
    ("code", "data", '''\
data = tb.load_task_data(task, source=dataset, seed=seed, limit=data_limit or None,
                         shift=None if drift_shift == "none" else drift_shift)
spec = data.spec
print(data.describe())'''),
    ("markdown", "model-md", "## Model"),
    ("code", "model", '''\
model = tb.build_model(spec, size=model_size, seed=seed)
print(f"{type(model).__name__}: {tb.count_parameters(model):,} parameters")'''),
    ("markdown", "config-md", '''\
## Training config

Built from the `quick` preset with the form's values, validated, and saved in the run folder.'''),
    ("code", "config", '''\
training_config = (
    tb.TrainingConfigBuilder.preset("quick")
    .with_run(run_name=run_name, output_dir=output_dir, seed=seed)
    .with_training(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                   weight_decay=weight_decay, warmup_ratio=warmup_ratio,
                   gradient_accumulation_steps=gradient_accumulation_steps)
    .with_precision(precision=precision)
    .with_tracking(wandb_mode=wandb_mode, wandb_project=wandb_project)
    .build()
)
run_dir = training_config.run_dir
training_config.save(run_dir / "training_config.json")
print(training_config.summary())'''),
    ("markdown", "train-md", '''\
## Train

Checkpoints go to `run_dir/checkpoints`; running this cell again resumes from the newest one.'''),
    ("code", "train", '''\
trainer = tb.Trainer(model, training_config=training_config, task_spec=spec)
result = trainer.train(data.train, data.val)'''),
    ("code", "curves", '''\
from IPython.display import Image, display

curves_path = run_dir / "training_curves.png"
tb.plot_training(result).savefig(curves_path, dpi=90)
display(Image(filename=str(curves_path)))'''),
    ("markdown", "results-md", "## Results"),
    ("code", "results", '''\
first, last = result.history[0], result.history[-1]
tb.show_table(result.history, columns=[k for k in last if k != "epoch_time_s"])
tb.record(run_dir, task=task, epochs=len(result.history), total_steps=result.total_steps,
          first_val_loss=first["val_loss"], final_val_loss=last["val_loss"],
          best_metric=result.best_metric, best_epoch=result.best_epoch,
          wall_time_s=result.wall_time_s, final=last)
print(f"best {result.best_metric_name} {result.best_metric:.4f} at epoch {result.best_epoch}")
print(f"run folder: {run_dir}")'''),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
        "accelerator": "GPU",
    }
    for kind, cell_id, source in CELLS:
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
    path = Path(__file__).resolve().parent / "training.ipynb"
    text = render(build())
    if "--check" in argv:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date: run python notebooks/build.py")
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
