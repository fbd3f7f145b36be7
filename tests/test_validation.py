"""The validation pass (trainbook.validation: facts, checks, validate): every problem with a run's settings and the machine,
at once, one line each with a HINT, before any work.

Machine facts are passed in (Machine(...)) where a test needs a GPU this machine may not have;
everything else (files, folders, checkpoints, packages) is real.
"""

import json
import os
import sys

import pytest
import torch

import trainbook as tb
from trainbook.config import ConfigError
from trainbook.validation import MIN_FREE_BYTES, Machine, run_problems, validate_run

CPU = Machine(cuda_devices=0, memory_bytes=16 * 2**30)
ONE_OLD_GPU = Machine(cuda_devices=1, cuda_bf16=False, gpu="Tesla T4", memory_bytes=16 * 2**30)


def problems(tmp_path, machine=CPU, **values):
    return run_problems({"output_dir": str(tmp_path / "runs"), "wandb_mode": "disabled", **values}, machine)


def one(tmp_path, key_text, machine=CPU, **values):
    found = [p for p in problems(tmp_path, machine, **values) if key_text in p]
    assert len(found) == 1, problems(tmp_path, machine, **values)
    assert "HINT:" in found[0]
    return found[0]


# --- validate_run: the notebook's entry point ---

def test_validate_run_returns_the_config_built_from_the_preset_and_the_form(tmp_path):
    cfg = validate_run(preset="quick", machine=CPU, task="lm", dataset="builtin", data_limit=800, model_size="tiny",
                       drift_shift="none", run_hp_search=False, search_method="grid", n_trials=2, export_model=True,
                       output_dir=str(tmp_path), run_name="nb", epochs=2, learning_rate=3e-3, wandb_mode="disabled")
    assert isinstance(cfg, tb.TrainingConfig)
    assert (cfg.epochs, cfg.learning_rate, cfg.log_every_n_steps, cfg.run_dir) == (2, 3e-3, 5, tmp_path / "nb")


def test_validate_run_reports_every_group_and_every_kind_of_problem_at_once(tmp_path):
    with pytest.raises(ConfigError) as error:
        validate_run(preset="quick", machine=CPU, task="lm", output_dir=str(tmp_path), wandb_mode="disabled",
                     epochs=0, learning_rate=-1.0, precision="fp16", run_name="my run", run_hp_search=True,
                     n_trials=0, search_method="grd", drift_shift="rotation", data_limit=-2, modle_size="tiny")
    text = str(error.value)
    assert text.startswith("invalid run settings (10 problems):")
    for expected in ("epochs must be an integer >= 1; got 0", "learning_rate must be a number in (0.0, 10.0]",
                     "precision='fp16' needs a CUDA GPU", "run_name 'my run' contains ' '",
                     "n_trials=0 but run_hp_search=True", "search_method must be one of 'grid', 'random'; got 'grd'",
                     "drift_shift: shift must be 'none' or one of", "data_limit must be an integer >= 0 (0 = all)",
                     "unknown key 'modle_size' (did you mean 'model_size'?)"):
        assert expected in text, expected


def test_an_invalid_config_error_shows_its_message_not_a_traceback_in_ipython():
    error = ConfigError(["epochs must be an integer >= 1; got 0"])
    assert error._render_traceback_() == ["ConfigError: invalid TrainingConfig:\n  epochs must be an integer >= 1; got 0"]


# --- the machine ---

@pytest.mark.parametrize("device,machine,expected", [
    ("cuda", CPU, "device='cuda' but this machine has no CUDA GPU"),
    ("cuda:1", CPU, "device='cuda:1' but this machine has no CUDA GPU"),
    ("cuda:1", ONE_OLD_GPU, "device='cuda:1' but this machine has 1 CUDA GPU(s): cuda:0."),
    ("mps", CPU, "device='mps' but Apple's MPS backend is not available"),
])
def test_a_device_this_machine_lacks_is_refused(device, machine, expected, tmp_path):
    assert expected in one(tmp_path, "device=", machine, device=device)


def test_an_existing_gpu_passes(tmp_path):
    assert problems(tmp_path, ONE_OLD_GPU, device="cuda:0", precision="fp16") == []


@pytest.mark.parametrize("precision,machine,expected", [
    ("fp16", CPU, "precision='fp16' needs a CUDA GPU; this run would train on the cpu (device='auto')"),
    ("bf16", ONE_OLD_GPU, "precision='bf16' needs a GPU with bf16 support (Ampere or newer); Tesla T4 has none"),
])
def test_precision_is_checked_against_the_device_auto_picks(precision, machine, expected, tmp_path):
    assert expected in one(tmp_path, "precision=", machine, precision=precision)


def test_the_detected_machine_matches_torch():
    machine = Machine.detect()
    assert machine.cuda_devices == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert machine.memory_bytes > 2**30


# --- names and folders ---

@pytest.mark.parametrize("name,expected", [
    ("x" * 300, "run_name is 300 characters long; at most 100"),
    ("a b", "run_name 'a b' contains ' '"),
    ("run;rm -rf", "contains ' ', ';'"),
    ("-lr", "starts with '-'"),
])
def test_run_names_are_plain_short_folder_names(name, expected, tmp_path):
    assert any(expected in p for p in problems(tmp_path, run_name=name))


def test_unicode_letters_are_fine_in_a_run_name(tmp_path):
    assert problems(tmp_path, run_name="mödell-ß_2=ok") == []


def test_a_nul_byte_in_any_value_is_named(tmp_path):
    found = problems(tmp_path, output_dir="runs\x00x", wandb_project="p\x00")
    assert [p.split(" ")[0] for p in found] == ["output_dir", "wandb_project"]
    assert all("NUL byte" in p for p in found)


def test_unwritable_or_file_folders_are_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert "exists and is a file" in one(tmp_path, "output_dir", run_name="afile", output_dir=str(tmp_path))
    assert "is a file" in one(tmp_path, "checkpoint_dir", checkpoint_dir=str(tmp_path / "afile" / "ckpt"))
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert "is not writable" in one(tmp_path, "output_dir", output_dir=str(locked))


def test_too_little_free_space_is_refused_before_the_run(tmp_path, monkeypatch):
    from trainbook.validation import checks

    monkeypatch.setattr(checks, "disk_free", lambda folder: MIN_FREE_BYTES // 4)
    line = one(tmp_path, "output_dir", run_name="r")
    assert f"only {MIN_FREE_BYTES / 4 / 2**20:.1f} MB free on the disk of {tmp_path}" in line


# --- data ---

def test_a_binary_file_is_not_a_text_dataset(tmp_path):
    line = one(tmp_path, "dataset=", task="lm", dataset="/bin/ls")
    assert line.startswith("dataset='/bin/ls' is not a text file (it holds NUL bytes")


@pytest.mark.parametrize("task,make,expected", [
    ("lm", lambda p: p.mkdir(), "is a folder without .txt files"),
    ("lm", lambda p: p.write_bytes(b"short"), "holds 5 bytes, fewer than 3 windows of max_seq_len=128"),
    ("text-cls", lambda p: p.write_bytes(b"text,label\n\x00\x01,a\n" * 9), "is not a text file (it holds NUL bytes"),
    ("text-cls", lambda p: p.mkdir(), "is a folder"),
    ("vision-cls", lambda p: p.write_text("x"), "is a file"),
    ("vision-cls", lambda p: (p / "only").mkdir(parents=True), "has 1 class folder(s) ['only']; at least 2"),
])
def test_the_data_source_must_match_the_task(task, make, expected, tmp_path):
    source = tmp_path / "data"
    make(source)
    assert expected in one(tmp_path, "dataset=", task=task, dataset=str(source))


def test_good_user_data_passes(tmp_path):
    (tmp_path / "notes.txt").write_text("some text\n" * 100)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1") * 40)  # byte-level lm reads any text
    assert problems(tmp_path, task="lm", dataset=str(tmp_path / "latin1.txt")) == []
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(5)))
    assert problems(tmp_path, task="lm", dataset=str(tmp_path / "notes.txt")) == []
    assert problems(tmp_path, task="text-cls", dataset=str(tmp_path / "d.csv")) == []


def test_text_cls_data_limit_below_the_builtin_minimum_is_refused(tmp_path):
    line = one(tmp_path, "data_limit", task="text-cls", data_limit=1)
    assert "data_limit=1 leaves no training examples of the built-in text-cls data; it needs at least 5" in line
    assert len(tb.load_task_data("text-cls", limit=5).train) >= 1  # the minimum really works
    with pytest.raises(tb.DataError, match="no training examples left with data_limit=4"):
        tb.load_task_data("text-cls", limit=4)


def test_a_huggingface_dataset_needs_the_datasets_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # not installed, as far as find_spec can tell
    assert "needs the datasets package, which is not installed" in one(tmp_path, "dataset=", task="lm",
                                                                       dataset="hf:imdb")


# --- sizes, files, checkpoints ---

def test_a_sequence_length_that_would_exhaust_memory_is_refused(tmp_path):
    line = one(tmp_path, "max_seq_len", task="lm", max_seq_len=10**9, batch_size=16)
    assert line.startswith("max_seq_len=1000000000 with batch_size=16 needs ~") and "this machine has 16 GB" in line
    assert "max_seq_len=18446744073709551616" in one(tmp_path, "max_seq_len", task="lm", max_seq_len=2**64)
    assert problems(tmp_path, task="lm", max_seq_len=4096) == []


def test_model_file_must_be_an_existing_py_file(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert "is not a .py file" in one(tmp_path, "model_file", task="lm", model_file=str(tmp_path / "config.json"))
    assert "does not exist" in one(tmp_path, "model_file", task="lm", model_file=str(tmp_path / "gone.py"))


def test_resume_must_name_a_trainbook_checkpoint_and_never_suggests_weights_only_false(tmp_path):
    (tmp_path / "notes.json").write_text("{}")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "state_dict.pt")
    import pickle
    (tmp_path / "evil.pt").write_bytes(pickle.dumps(print))  # not a zip: refused before unpickling
    for name, expected in (("notes.json", "not a zip archive written by torch.save"),
                           ("state_dict.pt", "not a trainbook checkpoint: it has no model, optimizer"),
                           ("evil.pt", "not a zip archive"), ("missing.pt", "no such checkpoint file")):
        line = one(tmp_path, "resume", resume=str(tmp_path / name))
        assert expected in line and "weights_only=False" not in line


def test_early_stopping_metric_must_exist_for_the_task(tmp_path):
    line = one(tmp_path, "early_stopping_metric", task="text-cls", early_stopping_metric="val_perplexity")
    assert "one of 'val_loss', 'train_loss', 'val_accuracy' for task 'text-cls'; got 'val_perplexity'" in line
    assert problems(tmp_path, task="lm", early_stopping_metric="val_perplexity") == []


def test_online_wandb_without_a_key_is_refused_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("WANDB_API_KEY", "NETRC", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    found = [p for p in problems(tmp_path, wandb_mode="online") if "wandb_mode='online'" in p]
    assert len(found) == 1 and "needs an API key" in found[0] and "HINT:" in found[0]


def test_a_valid_cli_style_config_has_no_problems(tmp_path):
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), wandb_mode="disabled")
    assert run_problems({**json.loads(json.dumps(cfg.to_dict())), "task": "vision-cls"}, CPU) == []
