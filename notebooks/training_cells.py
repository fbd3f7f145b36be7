"""The cells of notebooks/training.ipynb, the suite's training notebook (written by build.py).

    cells = training_cells(colab_url, model_check_url, PARAMETERS, setup_cells(mount_drive=True))

Each cell is (kind, id, source); the parameters and setup cells come from build.py, which the
model check notebook shares.
"""

from __future__ import annotations


def training_cells(colab_url: str, model_check_url: str, parameters: str, setup: list) -> list[tuple]:
    """The notebook's cells: title, form, setup, environment, config, data, model, training,
    results, drift, search and export.

    Args:
        colab_url: this notebook's Open-in-Colab URL. model_check_url: the model check notebook's.
        parameters: the form cell's source. setup: the shared setup cells (with the Drive mount).
    """
    return [
    ("markdown", "title", f'''\
# trainbook: train, track, check drift, export

[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url})

Fill the form below and run all cells. Everything runs offline on built-in data (the Python
standard library's own source for text, scikit-learn's digits for images) unless you point
`dataset` at your own files (a text file for `lm`, a CSV/TSV/JSONL table for `text-cls`, an image
folder for `vision-cls`) or at `hf:<dataset name or save_to_disk folder>`. Text is byte-level
unless `tokenizer` says `bpe:<vocab size>` (trained on your train split) or `hf:<tokenizer>`;
`text_column`/`label_column` name your table's columns (empty: found by name and printed).
A GPU is used when there is one. Check a model before training it with the suite's
[model check notebook]({model_check_url}).

Headless, from a checkout:

```
make run                                   # writes runs/notebook/
papermill notebooks/training.ipynb out.ipynb -p epochs 5 -p batch_size 8 -p task vision-cls
```'''),
    ("parameters", "parameters", parameters),
    *setup,
    ("code", "environment", '''\
env = tb.environment()
for key, value in env.items():
    print(f"{key:<15} {value}")
print(f"{'precision':<15} {precision} -> {env['auto_precision'] if precision == 'auto' else precision}")'''),
    ("markdown", "config-md", '''\
## Training config

Every form value is checked here, before any data or model work, against this machine too (device,
precision, folders and free space, data files, search settings). All problems are listed at once,
one line each with a HINT. The config is built from the `quick` preset with the form's values; the
`auto` ones are the task's defaults (`tb.task_defaults(task)`: model size, data limit, epochs, batch
size, learning rate and schedule). The summary lists what differs from the preset.

The run folder is `output_dir/run_name` when it is new or holds a run with the same settings (that
run resumes). Changed the form and kept `run_name`? Then this run gets a new folder `run_name-2`
(then `-3` ...) and one line says which fields changed; an existing run's `training_config.json`
is never overwritten. `resume = "never"` always starts a new numbered folder.'''),
    ("code", "config", '''\
task_settings = tb.task_defaults(task, model_size=model_size, data_limit=data_limit, epochs=epochs,
                                 batch_size=batch_size, learning_rate=learning_rate)
training_config = tb.validate_run(
    preset="quick", run_name=run_name, output_dir=output_dir, seed=seed, weight_decay=weight_decay,
    warmup_ratio=warmup_ratio, gradient_accumulation_steps=gradient_accumulation_steps,
    precision=precision, wandb_mode=wandb_mode, wandb_project=wandb_project,
    resume=resume, persist_dir=persist_dir, on_config_change="new_run",
    task=task, dataset=dataset, tokenizer=tokenizer, text_column=text_column, label_column=label_column,
    model_source=model_source, model_class=model_class, drift_shift=drift_shift, run_hp_search=run_hp_search,
    search_method=search_method, n_trials=n_trials, export_model=export_model, **task_settings)
training_config = tb.choose_run_folder(training_config)
run_dir = training_config.run_dir
if not (run_dir / "training_config.json").exists():
    training_config.save(run_dir / "training_config.json")
print(training_config.summary(against=tb.TrainingConfigBuilder.preset("quick").build()))
print(f"model_size {task_settings['model_size']}, data_limit {task_settings['data_limit'] or 'all'}")'''),
    ("markdown", "data-md", '''\
## Data

`train` and `val` never share a source file (your own text: a segment of it); `current` is
held-out data for the drift check (shifted when `drift_shift` is not "none"). The tokenizer fixes
the model's vocabulary and travels with the run folder and the exported bundle.'''),
    ("code", "data", '''\
data = tb.load_task_data(task, source=dataset, seed=seed, limit=task_settings["data_limit"] or None,
                         shift=None if drift_shift == "none" else drift_shift,
                         tokenizer=tokenizer,
                         text_column=text_column or None, label_column=label_column or None)
spec = data.spec
print(data.describe())
if spec.modality == "text":
    print(f"tokenizer {spec.tokenizer}: vocabulary {spec.vocab_size}")'''),
    ("markdown", "model-md", '''\
## Model

A built-in model of size `model_size`, or your own from `model_source`: a file, a folder (model.py
and config.json, as Transformer Builder exports it), a URL, a GitHub Gist or a transformers model
(`hf:`). Fetched code is cached with the sha256 of every file, printed below; pin a Gist revision
(`gist:<id>@<revision>`) to train the same code every time.'''),
    ("code", "model", '''\
import copy

import torch

if model_source == "builtin":
    model = tb.build_model(spec, size=task_settings["model_size"], seed=seed)
    model_origin = {"kind": "builtin", "source": f"size {task_settings['model_size']}"}
else:
    torch.manual_seed(seed)  # your model initialises its weights from torch's global generator
    model = tb.load_model(model_source, class_name=model_class or None, task_spec=spec,
                          trust_remote_code=model_source.startswith(("https://", "http://", "gist:")))
    model_origin = model.trainbook_source
untrained_model = copy.deepcopy(model) if model_source != "builtin" else None
model_sha256 = (model_origin.get("fetched") or {}).get("sha256", {})
print(f"{type(model).__name__}: {tb.count_parameters(model):,} parameters, from {model_origin['kind']} "
      f"{model_origin['source']}")
for file_name, digest in model_sha256.items():
    print(f"  {file_name} sha256 {digest}")'''),
    ("markdown", "train-md", '''\
## Train

Checkpoints go to `run_dir/checkpoints`; running this cell again resumes from the newest one.
With `persist_dir`, every checkpoint (and the logs, results and export bundle) is also copied to
`persist_dir/<run folder>` in the background; after a runtime reset, Run all resumes from there.
A finished run is loaded, not trained again, and reports what it recorded when it finished.
W&B: `wandb_mode="auto"` logs online when an API key is available (the Colab secret
`WANDB_API_KEY`, the `WANDB_API_KEY` variable, or `wandb login`), otherwise offline into
`run_dir/wandb/`; the Results cell prints the run URL or the `wandb sync` command.
After training, `model` holds the best epoch's weights (`best.pt`, lowest `val_loss`): the one
the results report, the drift check profiles and the export bundles.'''),
    ("code", "train", '''\
trainer = tb.Trainer(model, training_config=training_config, task_spec=spec)
result = trainer.train(data.train, data.val)
if result.best_checkpoint:
    tb.load_weights(model, result.best_checkpoint)
    print(f"model: the best epoch's weights (epoch {result.best_epoch}, {result.best_metric_name} "
          f"{result.best_metric:.4f}) from {result.best_checkpoint}")'''),
    ("code", "curves", '''\
from IPython.display import Image, display

curves_path = run_dir / "training_curves.png"
tb.plot_training(result).savefig(curves_path, dpi=90)
display(Image(filename=str(curves_path)))'''),
    ("code", "sample", '''\
if spec.kind == "lm":  # a short sample: the start of a val example, continued by the model
    from trainbook.export import continue_text

    model.eval()
    prompt = data.tokenizer.decode(data.val[0]["input_ids"][:48].tolist()).encode("utf-8")
    sampled = continue_text(model, spec, prompt, 96, next(model.parameters()).device, temperature=0.8, top_k=40,
                            seed=seed)
    print(f"sample (temperature 0.8, top-k 40, seed {seed}):\\n{prompt.decode('utf-8', 'replace')}|{sampled}")
    tb.record(run_dir, sample={"prompt": prompt.decode("utf-8", "replace"), "continuation": sampled})'''),
    ("markdown", "results-md", '''\
## Results

The metrics per epoch, then the model against a classical baseline fitted on the same train split
and scored on the same val split (`tb.baseline(data)`: a smoothed byte bigram for `lm`, logistic
regression on byte counts or pixels for classification).'''),
    ("code", "results", '''\
first, last = result.history[0], result.history[-1]
best_row = next((row for row in result.history if row["epoch"] == result.best_epoch), last)
tb.show_table(result.history, columns=[k for k in last if k != "epoch_time_s"])
baseline = tb.baseline(data)
model_value = best_row.get(baseline["metric"], float("nan"))
beats = model_value < baseline["value"] if baseline["mode"] == "min" else model_value > baseline["value"]
print(f"model vs baseline: {baseline['metric']} {model_value:.4f} (epoch {best_row['epoch']}) vs "
      f"{baseline['value']:.4f} ({baseline['model']}): {'better' if beats else 'NOT better'}")
tb.record(run_dir, baseline=baseline, model_vs_baseline={"metric": baseline["metric"], "model": model_value,
                                                         "baseline": baseline["value"], "beats": bool(beats)})
tb.record(run_dir, task=task, tokenizer=spec.tokenizer, vocab_size=spec.vocab_size,
          class_names=list(spec.class_names), epochs=len(result.history), total_steps=result.total_steps,
          first_val_loss=first["val_loss"], final_val_loss=last["val_loss"],
          best_metric=result.best_metric, best_epoch=result.best_epoch,
          wall_time_s=result.wall_time_s, final=last, model_class=type(model).__name__,
          model_parameters=tb.count_parameters(model), model_origin=model_origin["kind"], model_sha256=model_sha256)
print(f"best {result.best_metric_name} {result.best_metric:.4f} at epoch {result.best_epoch}")
print(f"run folder: {run_dir}")
tb.record(run_dir, wandb_mode=(result.tracking or {}).get("wandb_mode"), wandb_dir=(result.tracking or {}).get("wandb_dir"))
tracking = result.tracking or {}
if tracking.get("wandb_url"):
    print(f"W&B run: {tracking['wandb_url']}")
elif tracking.get("wandb_sync_command"):
    print(f"W&B offline run: {tracking['wandb_dir']}")
    print(f"upload it with: {tracking['wandb_sync_command']}")
else:
    print(f"W&B: {tracking.get('wandb_mode', 'not used')}; metrics in {run_dir / 'metrics.jsonl'}")
if result.persist:
    print(f"persisted to {result.persist['dir']} ({result.persist['files']} copies in the background)")'''),
    ("markdown", "drift-md", '''\
## Drift

Is `data.current` (shifted when `drift_shift` is not "none") still like the training data? Both
are profiled with the trained model and compared feature by feature: a feature drifts when its
change is large (PSI >= 0.25, JS distance >= 0.1) and significant (KS / chi-square p < 0.05).
The dataset drifts when half of the data features drift, or the labels do; the model's outputs
are shown but not counted. The profile is JSON and travels with the exported model.'''),
    ("code", "drift", '''\
reference_profile = tb.profile_dataset(data.train, spec, model=model)
drift_report = tb.compare_profiles(reference_profile, tb.profile_dataset(data.current, spec, model=model))
print(drift_report)
tb.record(run_dir, drift_shift=drift_shift, drift_share=drift_report.share_drifted,
          dataset_drift=drift_report.dataset_drift,
          drifted_features=[r["feature"] for r in drift_report.rows if r["drifted"]])
drift_path = run_dir / "drift_dashboard.png"
tb.plot_drift_dashboard(drift_report).savefig(drift_path, dpi=90)
display(Image(filename=str(drift_path)))'''),
    ("markdown", "drift-explorer-md", '''\
Pick any feature to see its reference and current distributions (a dropdown in Jupyter and
Colab; a headless run prints one line instead, the dashboard above has every feature).'''),
    ("code", "drift-explorer", "tb.drift_explorer(drift_report);"),
    ("markdown", "search-md", '''\
## Hyperparameter search

Runs when `run_hp_search` is on: `n_trials` trials (`search_method` grid or random) from the
config above, each a fresh model in `run_dir/search-<method>/trial-NNN`, with median pruning.
The journal `search.jsonl` makes it resumable: run the cell again after a disconnect and
finished trials are not repeated. Only the best trial's checkpoint is kept.'''),
    ("code", "search", '''\
search_result, best_search_config = None, None
if model_source == "builtin":
    def new_model():
        return tb.build_model(spec, size=task_settings["model_size"], seed=seed)
else:
    def new_model():
        return copy.deepcopy(untrained_model)
if run_hp_search:
    if search_method == "grid":
        search_space = {"learning_rate": [1e-3, 3e-3, 1e-2], "weight_decay": [0.0, 0.05]}
    else:
        search_space = {"learning_rate": tb.loguniform(1e-4, 3e-2), "weight_decay": tb.uniform(0.0, 0.1)}
    search_result = tb.run_search(
        training_config, search_space,
        model_factory=new_model,
        train_data=data.train, val_data=data.val, task_spec=spec,
        method=search_method, n_trials=n_trials, metric="val_loss", mode="min", seed=seed,
        prune="median", search_dir=run_dir / f"search-{search_method}")
    tb.show_table(search_result.table())  # the one results table (each trial printed one line as it ended)
    search_plot_path = run_dir / "search.png"
    tb.plot_search(search_result).savefig(search_plot_path, dpi=90)
    display(Image(filename=str(search_plot_path)))
    best = search_result.best
    if best is None:
        print("no search trial finished; see the errors in the table above")
    else:
        best_search_config = best.config
        print(f"best checkpoint: {best.checkpoint}")
        print("changed from training_config:",
              {k: v for k, v in training_config.diff(best.config).items() if k in best.params})
    tb.record(run_dir, search_best_metric=None if best is None else best.metric,
              search_trials=len(search_result.trials), search_best_params=None if best is None else best.params)
else:
    print("hyperparameter search is off (set run_hp_search = True in the form to run it)")'''),
    ("markdown", "export-md", '''\
## Export

What is exported is what was reported: the training run's best epoch (`best.pt`), or the best
search trial's checkpoint when the search ran and reached a lower `val_loss`; the bundle's
metadata names that checkpoint and its metrics. A bundle folder in `run_dir/bundle`: the weights (safetensors), the model, training and task
configs, the drift reference profile from above, `metadata.json` (versions, metrics, sha256 of
every file) and `inference.py`. It is reloaded and compared with the trained model before it is
used; then `inference.py` runs on a few validation samples in a fresh Python process. This notebook
trusts the bundle it just wrote; `tb.load_bundle(path)` on a bundle from elsewhere runs none of its
code (see the README on bundles).'''),
    ("code", "export", '''\
if export_model:
    import subprocess

    from trainbook.export import write_samples

    export_model, export_config, export_profile = model, training_config, reference_profile
    export_metrics = {"best_metric_name": result.best_metric_name, "best_metric": result.best_metric,
                      "best_epoch": result.best_epoch, "checkpoint": result.best_checkpoint, "source": "training"}
    best = search_result.best if search_result is not None else None
    if (best is not None and best.checkpoint and search_result.metric == result.best_metric_name
            and best.metric < result.best_metric):
        export_model, export_config = new_model(), best.config
        tb.load_weights(export_model, best.checkpoint)
        export_profile = tb.profile_dataset(data.train, spec, model=export_model)
        export_metrics = {"best_metric_name": search_result.metric, "best_metric": best.metric,
                          "best_epoch": best.best_epoch, "checkpoint": best.checkpoint, "source": f"search trial {best.index}"}
    print(f"exporting the {export_metrics['source']}'s best epoch ({export_metrics['best_epoch']}, "
          f"{export_metrics['best_metric_name']} {export_metrics['best_metric']:.4f}): {export_metrics['checkpoint']}")
    bundle_dir = tb.export_bundle(
        export_model, export_config, spec, run_dir / "bundle", reference_profile=export_profile, metrics=export_metrics,
        example_batch=[data.val[i] for i in range(min(8, len(data.val)))])
    # this notebook wrote the bundle a moment ago from its own model, so its code (if any) is trusted;
    # a bundle from anyone else: load it with the default trust_remote_code=False (runs no bundle code)
    bundle_model, bundle_meta = tb.load_bundle(bundle_dir, trust_remote_code=True)
    bundle_parity = bundle_meta["parity"]["max_abs_diff"]
    print(f"bundle {bundle_dir}: {', '.join(sorted(bundle_meta['files']))}")
    print(f"reload parity: max abs diff {bundle_parity:.2e} (tolerance {bundle_meta['parity']['tolerance']:g})")
    samples = write_samples(data.val, spec, run_dir / ("samples" if spec.modality == "vision" else "samples.txt"), n=3)
    inference = subprocess.run([sys.executable, str(bundle_dir / "inference.py"), str(samples)],
                               capture_output=True, text=True)
    if inference.returncode != 0:
        raise RuntimeError(f"inference.py failed:\\n{inference.stderr}")
    print(f"$ python {bundle_dir / 'inference.py'} {samples}\\n{inference.stdout}")
    tb.record(run_dir, bundle_parity=bundle_parity, bundle_path=str(bundle_dir), export=export_metrics,
              inference_lines=inference.stdout.splitlines())
else:
    print("export_model is False: no bundle written")'''),
    ]
