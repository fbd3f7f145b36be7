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


def test_default_parameters_train_and_improve(tmp_path):
    nb, record = run_notebook(tmp_path)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    assert record["task"] == "lm" and record["epochs"] == 2
    assert math.isfinite(record["final_val_loss"]) and record["final_val_loss"] < record["first_val_loss"]
    assert record["final_val_loss"] < math.log(256)
    run_dir = tmp_path / "runs" / "notebook"
    for name in ("training_config.json", "results.json", "metrics.jsonl", "training_curves.png", "checkpoints/best.pt",
                 "drift_dashboard.png", "bundle/model.safetensors", "bundle/inference.py"):
        assert (run_dir / name).exists(), name
    assert record["bundle_parity"] <= 1e-5
    assert record["dataset_drift"] is False  # iid current split


def test_non_default_parameters_are_applied(tmp_path):
    _, record = run_notebook(tmp_path, epochs=1, batch_size=8, run_name="small")
    config = json.loads((tmp_path / "runs" / "small" / "training_config.json").read_text())
    assert (config["epochs"], config["batch_size"]) == (1, 8)
    assert record["epochs"] == 1 and record["total_steps"] == 100  # 800 windows / 8


@pytest.mark.parametrize("task,shift", [("text-cls", "noise"), ("vision-cls", "rotation")])
def test_classification_tasks_beat_chance_and_flag_a_shift(task, shift, tmp_path):
    _, record = run_notebook(tmp_path, task=task, epochs=3, data_limit=600 if task == "text-cls" else 0,
                             drift_shift=shift, export_model=False)
    chance = 1 / (6 if task == "text-cls" else 10)
    assert record["final"]["val_accuracy"] > chance + 0.05
    assert record["dataset_drift"] is True and record["drifted_features"]
    assert not (tmp_path / "runs" / "notebook" / "bundle").exists()


def test_hyperparameter_search_section(tmp_path):
    _, record = run_notebook(tmp_path, task="vision-cls", epochs=1, run_hp_search=True, n_trials=2,
                             export_model=False)
    assert record["search_trials"] == 2 and math.isfinite(record["search_best_metric"])
    assert set(record["search_best_params"]) == {"learning_rate", "weight_decay"}
    assert (tmp_path / "runs" / "notebook" / "search.png").exists()


def test_invalid_form_values_stop_the_config_cell_before_any_data_with_every_problem_and_no_traceback(tmp_path):
    import papermill as pm

    out = tmp_path / "executed.ipynb"
    params = {"output_dir": str(tmp_path / "runs"), "wandb_mode": "disabled", "precision": "fp16", "epochs": 0,
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
    for expected in ("precision='fp16' needs a CUDA GPU", "epochs must be an integer >= 1; got 0",
                     "n_trials=0 but run_hp_search=True", "run_name 'my run' contains ' '", "drift_shift: shift must be"):
        assert expected in message, expected
    assert all(cells[name].execution_count is None for name in ("data", "model", "train"))
    assert not (tmp_path / "runs" / "my run").exists()
