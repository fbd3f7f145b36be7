"""Execute notebooks/training.ipynb with papermill (typed parameters, cwd set) and assert on
the values it records in <run_dir>/record.json."""

import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "training.ipynb"


def run_notebook(tmp_path, **params):
    import papermill as pm

    params = {"output_dir": str(tmp_path / "runs"), "wandb_mode": "disabled", **params}
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters=params, cwd=str(ROOT / "notebooks"),
                        progress_bar=False, kernel_name="python3")
    record = json.loads((tmp_path / "runs" / params.get("run_name", "notebook") / "record.json").read_text())
    return nbformat.read(out, as_version=4), record


def test_committed_notebook_is_what_build_py_writes():
    proc = subprocess.run([sys.executable, str(ROOT / "notebooks" / "build.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_committed_notebook_has_stripped_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def bundle_equals_checkpoint(bundle_dir, checkpoint) -> bool:
    """True when the bundle's model (reloaded, so tied weights are back) has exactly the checkpoint's tensors."""
    import torch
    from safetensors.torch import load_file

    import trainbook as tb

    stored = load_file(str(Path(bundle_dir) / "model.safetensors"))
    reported = torch.load(checkpoint, weights_only=True)["model"]
    reloaded = tb.load_bundle(bundle_dir)[0].state_dict()
    return (set(stored) <= set(reported) and reloaded.keys() == reported.keys()
            and all(torch.equal(reloaded[k].cpu(), reported[k]) for k in reported))


def shown_twice(nb) -> list:
    """Images (image/png payloads) and text tables (a header line over a dashed line) that appear more than once."""
    seen, twice = set(), []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        for out in cell.outputs:
            items = [("png", out["data"]["image/png"])] if "image/png" in out.get("data", {}) else []
            text = out.get("text", "") or out.get("data", {}).get("text/plain", "")
            lines = text.splitlines()
            items += [("table", "\n".join(lines[i:i + 3])) for i in range(len(lines) - 1)
                      if lines[i + 1].strip() and set(lines[i + 1].replace(" ", "")) == {"-"}]
            for item in items:
                (twice.append(item[0]) if item in seen else seen.add(item))
    return twice


def test_default_parameters_train_and_improve(tmp_path):
    from trainbook import task_defaults

    nb, record = run_notebook(tmp_path)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    assert record["task"] == "lm" and record["epochs"] == task_defaults("lm")["epochs"]
    assert math.isfinite(record["final_val_loss"]) and record["final_val_loss"] < record["first_val_loss"]
    assert record["final_val_loss"] < math.log(256)
    run_dir = tmp_path / "runs" / "notebook"
    for name in ("training_config.json", "results.json", "metrics.jsonl", "training_curves.png", "checkpoints/best.pt",
                 "drift_dashboard.png", "bundle/model.safetensors", "bundle/inference.py"):
        assert (run_dir / name).exists(), name
    assert record["bundle_parity"] <= 1e-5
    assert record["dataset_drift"] is False  # iid current split
    # what is exported is what is reported: the best epoch's checkpoint, named in the bundle's metadata
    assert record["export"]["source"] == "training" and record["export"]["best_epoch"] == record["best_epoch"]
    assert record["export"]["checkpoint"] == str(run_dir / "checkpoints" / "best.pt")
    assert bundle_equals_checkpoint(run_dir / "bundle", run_dir / "checkpoints" / "best.pt")
    meta = json.loads((run_dir / "bundle" / "metadata.json").read_text())
    assert meta["metrics"]["best_metric"] == pytest.approx(record["best_metric"]) and meta["metrics"]["best_epoch"] == record["best_epoch"]
    # the classical baseline, on the same splits, recorded next to the model
    assert record["baseline"]["metric"] == "val_bits_per_byte" and record["baseline"]["n_val"] > 0
    assert record["model_vs_baseline"]["baseline"] == record["baseline"]["value"]
    cells = {c.get("id"): c for c in nb.cells if c.cell_type == "code"}
    assert "model vs baseline: val_bits_per_byte" in "".join(o.get("text", "") for o in cells["results"].outputs)
    assert record["sample"]["continuation"] and "sample (temperature 0.8, top-k 40" in cells["sample"].outputs[0]["text"]
    # quiet output: no Out[] anywhere, no figure or table twice, the explorer a single line, a short config summary
    assert not [c.get("id") for c in cells.values() for o in c.outputs if o.output_type == "execute_result"]
    assert shown_twice(nb) == []
    assert [o.get("text", "").count("\n") for o in cells["drift-explorer"].outputs] == [1]
    summary = "".join(o.get("text", "") for o in cells["config"].outputs).splitlines()
    assert summary[0].split() == ["run_name", "notebook"] and len(summary) < 15 and not any("wandb_entity" in line for line in summary)


def test_non_default_parameters_are_applied(tmp_path):
    _, record = run_notebook(tmp_path, epochs=1, batch_size=8, learning_rate=0.002, data_limit=400, model_size="small",
                             run_name="small")
    config = json.loads((tmp_path / "runs" / "small" / "training_config.json").read_text())
    assert (config["epochs"], config["batch_size"], config["learning_rate"]) == (1, 8, 0.002)
    assert record["epochs"] == 1 and record["total_steps"] == 50  # 400 windows / 8
    assert record["model_parameters"] > 500_000  # the small GPT, not the tiny one


@pytest.mark.parametrize("task,shift", [("text-cls", "noise"), ("vision-cls", "rotation")])
def test_classification_tasks_beat_chance_and_flag_a_shift(task, shift, tmp_path):
    _, record = run_notebook(tmp_path, task=task, epochs=3, data_limit=600 if task == "text-cls" else 0,
                             drift_shift=shift, export_model=False)
    chance = 1 / (6 if task == "text-cls" else 10)
    assert record["final"]["val_accuracy"] > chance + 0.05
    assert record["dataset_drift"] is True and record["drifted_features"]
    assert not (tmp_path / "runs" / "notebook" / "bundle").exists()


def test_hyperparameter_search_section_exports_the_better_trial(tmp_path):
    nb, record = run_notebook(tmp_path, task="vision-cls", epochs=1, learning_rate=1e-5, run_hp_search=True, n_trials=2)
    assert record["search_trials"] == 2 and math.isfinite(record["search_best_metric"])
    assert set(record["search_best_params"]) == {"learning_rate", "weight_decay"}
    run_dir = tmp_path / "runs" / "notebook"
    assert (run_dir / "search.png").exists()
    # learning_rate 1e-5 barely trains; the grid's 1e-3 trials do better, so their best checkpoint is exported
    assert record["search_best_metric"] < record["best_metric"]
    assert record["export"]["source"].startswith("search trial") and record["export"]["best_metric"] == record["search_best_metric"]
    assert record["export"]["checkpoint"].startswith(str(run_dir / "search-grid"))
    assert bundle_equals_checkpoint(run_dir / "bundle", record["export"]["checkpoint"])
    assert not bundle_equals_checkpoint(run_dir / "bundle", run_dir / "checkpoints" / "best.pt")
    meta = json.loads((run_dir / "bundle" / "metadata.json").read_text())
    assert meta["metrics"]["best_metric"] == pytest.approx(record["search_best_metric"])
    search = next(c for c in nb.cells if c.get("id") == "search")
    text = "".join(o.get("text", "") for o in search.outputs if o.output_type == "stream")
    assert [line.split(" | ")[0] for line in text.splitlines() if " | " in line and line.startswith("trial ")] == [
        "trial 1/2", "trial 2/2"]
    assert shown_twice(nb) == [] and not any("text/html" in o.get("data", {}) for o in search.outputs)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["lm", "text-cls", "vision-cls"])
def test_the_default_form_beats_the_classical_baseline(task, tmp_path):
    """papermill -p task <t> alone (plus a temporary output_dir and W&B off): the model beats tb.baseline."""
    import time

    start = time.perf_counter()
    _, record = run_notebook(tmp_path, task=task)
    wall = time.perf_counter() - start
    baseline, final = record["baseline"], record["final"][record["baseline"]["metric"]]
    print(f"{task}: {baseline['metric']} model {final:.4f} vs baseline {baseline['value']:.4f} in {wall:.0f} s")
    assert record["model_vs_baseline"]["beats"] is True
    assert final < baseline["value"] if baseline["mode"] == "min" else final > baseline["value"]


@pytest.mark.slow
def test_a_save_to_disk_folder_with_string_labels_trains_and_the_bundle_prints_class_names(tmp_path):
    """papermill -p dataset hf:<dir>, with the form's tokenizer, text_column and label_column."""
    import os
    import random

    import datasets

    words = {"sports": "goal match team score", "cooking": "oven recipe salt bake", "travel": "train hotel beach map"}
    rng = random.Random(0)
    names = sorted(words)
    verdicts = [names[i % 3] for i in range(300)]
    bodies = [" ".join(rng.choice(words[v].split()) for _ in range(8)) for v in verdicts]
    folder = tmp_path / "reviews_ds"
    datasets.Dataset.from_dict({"id": list(range(300)), "review_body": bodies, "verdict": verdicts}).save_to_disk(str(folder))
    out = tmp_path / "executed.ipynb"
    params = ["-p", "task", "text-cls", "-p", "dataset", f"hf:{folder}", "-p", "tokenizer", "bpe:300",
              "-p", "text_column", "review_body", "-p", "label_column", "verdict", "-p", "epochs", "3",
              "-p", "data_limit", "0", "-p", "wandb_mode", "disabled", "-p", "output_dir", str(tmp_path / "runs")]
    env = {**os.environ, "TRAINBOOK_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "papermill", str(NOTEBOOK), str(out), *params, "--cwd",
                           str(ROOT / "notebooks"), "--no-progress-bar", "-k", "python3"],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "notebook" / "record.json").read_text())
    assert record["class_names"] == names and record["tokenizer"] == "bpe:300" and record["vocab_size"] <= 300
    assert record["final"]["val_accuracy"] > 1 / 3 + 0.2
    assert (tmp_path / "runs" / "notebook" / "bundle" / "tokenizer.json").is_file()
    assert (tmp_path / "runs" / "notebook" / "tokenizer" / "tokenizer.json").is_file()
    lines = record["inference_lines"]
    assert len(lines) == 3 and all(line.split("\t")[1] in names for line in lines)


# --- re-running the notebook: the safe re-run rule and what a re-run keeps ---

QUICK = {"data_limit": 200, "epochs": 1, "learning_rate": 0.003, "export_model": False, "run_name": "same"}


def execute(tmp_path, name, **params):
    import papermill as pm

    params = {"output_dir": str(tmp_path / "runs"), "wandb_mode": "disabled", **QUICK, **params}
    out = tmp_path / f"{name}.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters=params, cwd=str(ROOT / "notebooks"),
                        progress_bar=False, kernel_name="python3")
    nb = nbformat.read(out, as_version=4)
    return {c.get("id"): c for c in nb.cells if c.cell_type == "code"}


def outputs(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_run_all_after_editing_the_form_trains_in_a_new_folder_and_a_rerun_keeps_the_record(tmp_path):
    runs = tmp_path / "runs"
    execute(tmp_path, "first", wandb_mode="offline")
    first_config = (runs / "same" / "training_config.json").read_bytes()
    first = json.loads((runs / "same" / "record.json").read_text())
    assert first["wandb_mode"] == "offline" and Path(first["wandb_dir"]).is_dir()

    cells = execute(tmp_path, "again", wandb_mode="offline")   # the same form: the finished run is loaded
    assert "run already finished" in outputs(cells["train"])
    again = json.loads((runs / "same" / "record.json").read_text())
    assert again["wall_time_s"] == first["wall_time_s"] and again["wandb_dir"] == first["wandb_dir"]

    cells = execute(tmp_path, "edited", learning_rate=0.001, wandb_mode="offline")
    assert f"(learning_rate 0.003 -> 0.001); this run is 'same-2' in {runs / 'same-2'}" in outputs(cells["config"])
    assert json.loads((runs / "same-2" / "training_config.json").read_text())["learning_rate"] == 0.001
    assert json.loads((runs / "same-2" / "record.json").read_text())["epochs"] == 1
    assert (runs / "same" / "training_config.json").read_bytes() == first_config

    execute(tmp_path, "never", resume="never")   # the first form, but a new run asked for
    assert json.loads((runs / "same-3" / "training_config.json").read_text())["learning_rate"] == 0.003
    assert (runs / "same" / "training_config.json").read_bytes() == first_config


def test_make_run_twice_keeps_the_first_executed_notebook(tmp_path):
    fake = tmp_path / "python"   # stands in for .venv/bin/python: papermill writes its output path
    fake.write_text('#!/bin/sh\necho "executed by run $$" > "$4"\n')
    fake.chmod(0o755)
    make = ["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), "-o", "install", "run",
            f"PY={fake}", "RUN_NAME=twice"]
    texts = []
    for _ in range(3):
        done = subprocess.run(make, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        texts.append({p.name: p.read_text() for p in (tmp_path / "runs" / "twice").iterdir()})
    assert sorted(texts[-1]) == ["training-2.ipynb", "training-3.ipynb", "training.ipynb"]
    assert texts[-1]["training.ipynb"] == texts[0]["training.ipynb"]
    assert texts[-1]["training-2.ipynb"] == texts[1]["training-2.ipynb"] != texts[0]["training.ipynb"]


# --- models the user brings ---

TB_MODEL = '''import torch
import torch.nn as nn


class CausalBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model=32, nhead=2, dim_feedforward=64, dropout=0.0, batch_first=True)

    def forward(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.layer(x, src_mask=mask, is_causal=True)


class BuilderTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(256, 32)
        self.pos = nn.Embedding(128, 32)
        self.block = CausalBlock()
        self.head = nn.Linear(32, 256)

    def forward(self, input_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.head(self.block(self.embed(input_ids) + self.pos(positions)))


class BigramBaseline(nn.Module):
    def __init__(self):
        super().__init__()
        self.table = nn.Embedding(256, 256)

    def forward(self, input_ids):
        return self.table(input_ids)
'''
TB_CONFIG = json.dumps({"model_name": "BuilderTransformer", "d_model": 32, "n_heads": 2, "n_layers": 1})


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["folder", "gist"])
def test_a_transformer_builder_model_trains_exports_and_reloads_in_the_notebook(kind, tmp_path, monkeypatch):
    import hashlib

    import torch

    import trainbook as tb
    from gist_server import serve

    folder = tmp_path / "builder-export"
    folder.mkdir()
    (folder / "model.py").write_text(TB_MODEL)
    (folder / "config.json").write_text(TB_CONFIG)
    revision = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
    with serve({"5e1f0c2a9b7d": {revision: {"model.py": TB_MODEL, "config.json": TB_CONFIG}}}) as server:
        monkeypatch.setenv("TRAINBOOK_GIST_API_URL", server.url)  # the kernel inherits the environment
        monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
        source = str(folder) if kind == "folder" else "gist:5e1f0c2a9b7d"
        nb, record = run_notebook(tmp_path, model_source=source, data_limit=240, epochs=2, learning_rate=0.003)
    assert record["model_class"] == "BuilderTransformer" and record["model_origin"] == kind
    assert record["model_parameters"] == tb.count_parameters(tb.load_model(folder))
    if kind == "gist":
        assert record["model_sha256"] == {"model.py": hashlib.sha256(TB_MODEL.encode()).hexdigest(),
                                          "config.json": hashlib.sha256(TB_CONFIG.encode()).hexdigest()}
        assert [path for path, _ in server.requests] == ["/gists/5e1f0c2a9b7d"]
    assert record["final_val_loss"] < record["first_val_loss"] < math.log(256) + 0.5
    assert record["bundle_parity"] <= 1e-5
    print(f"\n{kind}: val_loss {record['first_val_loss']:.4f} -> {record['final_val_loss']:.4f}, "
          f"bundle parity {record['bundle_parity']:.2e}")
    out = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "BuilderTransformer: " in out and f"from {kind} {source}" in out

    bundle = tmp_path / "runs" / "notebook" / "bundle"
    with pytest.raises(tb.BundleError, match="trust_remote_code=True"):
        tb.load_bundle(bundle)  # its model is code: loading it elsewhere needs trust
    reloaded, meta = tb.load_bundle(bundle, trust_remote_code=True)  # reload here, from the bundle alone
    assert type(reloaded).__name__ == "BuilderTransformer"
    assert meta["model_config"]["origin"]["kind"] == kind and "model_code/model.py" in meta["files"]
    x = torch.randint(0, 256, (2, 16))
    best = tmp_path / "runs" / "notebook" / "checkpoints" / "best.pt"  # what the notebook exports
    trained = torch.load(best, weights_only=True)["model"]
    again = tb.load_model(folder)
    again.load_state_dict(trained)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), again.eval()(x), atol=1e-5)


@pytest.mark.slow
def test_model_class_picks_another_class_of_the_model_source(tmp_path):
    folder = tmp_path / "builder-export"
    folder.mkdir()
    (folder / "model.py").write_text(TB_MODEL)
    (folder / "config.json").write_text(TB_CONFIG)  # names BuilderTransformer
    _, record = run_notebook(tmp_path, model_source=str(folder), model_class="BigramBaseline", data_limit=64, epochs=1,
                             export_model=False)
    assert record["model_class"] == "BigramBaseline" and record["model_parameters"] == 256 * 256
def test_format_table_aligns_named_columns_left_and_the_rest_right():
    from trainbook.notebook import format_table

    text = format_table([{"check": "shapes", "n": 1.5, "hint": "ok"}, {"check": "gradient_flow", "n": 12, "hint": "fix"}],
                        left=("check", "hint"))
    assert text.splitlines() == ["check            n  hint",
                                 "-------------  ---  ----",
                                 "shapes         1.5  ok",
                                 "gradient_flow   12  fix"]


def test_invalid_form_values_stop_the_config_cell_before_any_data_with_every_problem_and_no_traceback(tmp_path):
    import papermill as pm

    out = tmp_path / "executed.ipynb"
    params = {"output_dir": str(tmp_path / "runs"), "wandb_mode": "disabled", "precision": "fp16", "epochs": -1,
              "run_hp_search": True, "n_trials": 0, "run_name": "my run", "drift_shift": "rotation"}
    with pytest.raises(pm.PapermillExecutionError, match="ConfigError"):
        pm.execute_notebook(str(NOTEBOOK), str(out), parameters=params, cwd=str(ROOT / "notebooks"),
                            progress_bar=False, kernel_name="python3")
    nb = nbformat.read(out, as_version=4)
    cells = {c.id: c for c in nb.cells}
    error = next(o for o in cells["config"].outputs if o.output_type == "error")
    assert error.ename == "ConfigError" and len(error.traceback) == 1  # the message, not a traceback
    message = error.traceback[0]
    assert message.startswith("ConfigError: invalid run settings (5 problems):")
    for expected in ("precision='fp16' needs a CUDA GPU", "epochs must be an integer >= 1; got -1",
                     "n_trials=0 but run_hp_search=True", "run_name 'my run' contains ' '", "drift_shift: shift must be"):
        assert expected in message, expected
    assert all(cells[name].execution_count is None for name in ("data", "model", "train"))
    assert not (tmp_path / "runs" / "my run").exists()
