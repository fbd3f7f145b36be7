"""The cells of notebooks/model_check.ipynb, the suite's model testing lab (written by build.py).

    cells = model_check_cells(REPO, VERSION, SETUP_CELLS)   # [(kind, id, source), ...]

The setup cells are the training notebook's, passed in by build.py, so both notebooks install
and verify the helper package the same way.
"""

from __future__ import annotations


def model_check_cells(repo: str, version: str, setup_cells: list) -> list[tuple]:
    """The notebook's cells: title, parameters, the shared setup, then data, model, checks,
    figure, and the way on to training.ipynb with the overall verdict last.

    Args:
        repo: GitHub owner/name (badge and links). version: the helper version `helpers_ref` pins.
        setup_cells: the shared setup cells from build.py.
    """
    colab = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks"
    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    return [
        ("markdown", "title", f'''\
# trainbook model check: test a model before you train it

[![Open In Colab]({badge})]({colab}/model_check.ipynb)

Load a model (a built-in one, or your own `.py` file) and check it on the task's data before
spending GPU hours on it. Ten checks each say `pass`, `warn`, `fail` or `skip`, with the numbers
they measured and one line on what to fix. A failing check does not stop the notebook; the last
cell states the overall verdict and points you to the [training notebook]({colab}/training.ipynb).

Headless, from a checkout:

```
make model-check                           # writes runs/model-check/
papermill notebooks/model_check.ipynb out.ipynb -p model_source my_model.py -p model_class GPT -p level full
```'''),
        ("parameters", "parameters", f'''\
task = "lm"  # @param ["lm", "text-cls", "vision-cls"]
model_source = "builtin"  # @param {{type:"string"}}
model_class = ""  # @param {{type:"string"}}
model_size = "tiny"  # @param ["tiny", "small", "base"]
level = "quick"  # @param ["quick", "full"]
seed = 0  # @param {{type:"integer"}}
helpers_ref = "v{version}"  # @param {{type:"string"}}
run_name = "model-check"  # @param {{type:"string"}}
output_dir = "runs"  # @param {{type:"string"}}'''),
        *setup_cells,
        ("code", "environment", '''\
env = tb.environment()
print(f"device {env['device']} | gpu {env['gpu']} | {env['cpu_threads']} CPU threads | torch {env['torch']} | "
      f"trainbook {env['trainbook']}")'''),
        ("markdown", "data-md", '''\
## Data

The task's built-in training split: the checks that need real inputs (initial loss, gradient
flow, overfitting one batch, the LR range test, noise robustness) draw their batches from it,
collated exactly as the Trainer collates them.'''),
        ("code", "data", '''\
data = tb.load_task_data(task, source="builtin", seed=seed, limit=400 if level == "quick" else 2000)
spec = data.spec
print(data.describe())'''),
        ("markdown", "model-md", '''\
## Model

`model_source = "builtin"` builds the task's built-in model of `model_size`. Anything else goes
to `tb.load_model`, as in the training notebook: a `.py` file, a folder with `model.py` (and a
`config.json`, as Transformer Builder exports), a URL, `gist:<id>` or `hf:<name or folder>`;
`model_class` picks the class when the source defines several. The forward may take
`input_ids`/`pixel_values` or nanoGPT's `(idx, targets=None)` and return logits, a tuple, a dict
or an object with `.logits`.'''),
        ("code", "model", '''\
import torch

torch.manual_seed(seed)
if model_source == "builtin":
    model = tb.build_model(spec, size=model_size, seed=seed)
else:
    model = tb.load_model(model_source, class_name=model_class or None, task_spec=spec,
                          trust_remote_code=model_source.startswith(("https://", "http://", "gist:")))
print(f"{type(model).__name__} from {model_source}: {tb.count_parameters(model):,} parameters")'''),
        ("markdown", "checks-md", '''\
## Checks

`shapes` (batch sizes 1, 2, 7; text lengths 1, 2, max; one token too many must raise),
`causal_mask` (language models: later tokens must not change earlier logits), `initial_loss`
(near ln(number of outputs) at init), `gradient_flow` (every parameter gets a finite, non-zero
gradient), `numerics` (no NaN/inf on extreme inputs; bf16 close to fp32), `overfit_one_batch`
(it can memorise 4 examples), `lr_range` (level `full`: suggests a learning rate),
`memory_and_speed` (measured on this device), `attention` (per-head entropy, collapsed heads),
`noise_robustness` (warn-only). The model's weights are the same afterwards.'''),
        ("code", "checks", '''\
from pathlib import Path

run_dir = Path(output_dir) / run_name
report = tb.check_model(model, spec, data=data, level=level, seed=seed)
print(report)
report.save(run_dir / "model_check.json")
tb.record(run_dir, task=task, model_source=model_source, model_class=type(model).__name__, level=level,
          parameters=report.parameters, checks=report.verdicts, check_hints={r.name: r.hint for r in report.results},
          check_numbers={r.name: r.numbers for r in report.results}, overall=report.overall,
          suggested_lr=report.suggested_lr, check_seconds=round(sum(r.seconds for r in report.results), 2))'''),
        ("markdown", "figure-md", '''\
## Figure

Left: the gradient norm of each layer after one backward pass (log scale, input at the top);
red bars have no, zero or non-finite gradients, and norms that span more than three orders of
magnitude mean vanishing or exploding gradients. Middle: the LR range test (level `full`), the
training loss while the learning rate grows; the dashed line is the suggestion, a tenth of the
rate at the lowest loss. Right: training-step time and activation memory against batch size.'''),
        ("code", "figure", '''\
from IPython.display import Image, display

figure_path = run_dir / "model_check.png"
report.figure().savefig(figure_path, dpi=90)
display(Image(filename=str(figure_path)))'''),
        ("markdown", "next-md", f'''\
## Next: train it

[![Open In Colab]({badge})]({colab}/training.ipynb)

Fix every `fail` first. Then open the training notebook with the same `task` and, after a
`full` check, the suggested `learning_rate` printed below.'''),
        ("code", "verdict", '''\
if report.suggested_lr is not None:
    print(f"suggested learning_rate: {report.suggested_lr:.2g}")
    print(f"papermill notebooks/training.ipynb out.ipynb -p task {task} -p learning_rate {report.suggested_lr:.2g}")
else:
    print("no suggested learning_rate: run this notebook with level = 'full' for the LR range test")
for name in report.failed:
    print(f"fix {name}: {report[name].hint}")
print(report.verdict_line())'''),
    ]
