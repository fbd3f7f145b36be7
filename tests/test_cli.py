import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainbook import cli
from trainbook.config import ConfigError

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
USER_MODEL = '''
import torch


class BagOfBytes(torch.nn.Module):
    def __init__(self, num_classes=6):
        super().__init__()
        self.embed = torch.nn.EmbeddingBag(256, 8)
        self.head = torch.nn.Linear(8, num_classes)

    def forward(self, input_ids):
        return self.head(self.embed(input_ids))
'''


@pytest.fixture(autouse=True)
def outside_torchrun(monkeypatch):
    for key in TORCHRUN_VARS:
        monkeypatch.delenv(key, raising=False)


def write_config(tmp_path, **d) -> str:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(d))
    return str(path)


def quick(tmp_path, **kw) -> dict:
    base = dict(task="vision-cls", data_limit=32, epochs=1, batch_size=16, wandb_mode="disabled",
                progress_bar=False, output_dir=str(tmp_path / "runs"))
    return {**base, **kw}


# --- the command line ---

def test_help_lists_the_commands():
    proc = subprocess.run([sys.executable, "-m", "trainbook", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "usage: python -m trainbook <command>" in proc.stdout
    assert "\n  train " in proc.stdout and "\n  lint " in proc.stdout


def test_unknown_command_is_refused_with_a_suggestion(capsys):
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian' (did you mean 'train'?)" in capsys.readouterr().err


def test_train_help_lists_the_run_keys(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(key in out for key in cli.RUN_KEYS) and "--set FIELD=VALUE" in out


# --- the config file ---

def test_unknown_keys_are_rejected_by_name_with_a_suggestion(tmp_path, capsys):
    path = write_config(tmp_path, task="lm", learning_rat=1e-3, modle_size="tiny", zzz=1)
    assert cli.main(["train", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'learning_rat' (did you mean 'learning_rate'?)" in err
    assert "unknown key 'modle_size' (did you mean 'model_size'?)" in err
    assert "unknown key 'zzz'\n" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as e:
        cli.build_run_config({"task": "vison-cls", "learning_rate": -1, "dropout": 1.5, "data_limit": 0,
                              "model_size": "huge"})
    text = str(e.value)
    assert "task must be one of 'lm', 'text-cls', 'vision-cls'; got 'vison-cls' (did you mean 'vision-cls'?)" in text
    assert "learning_rate must be a number in (0.0, 10.0]; got -1" in text
    assert "dropout must be a number in [0, 1); got 1.5" in text
    assert "data_limit must be an integer >= 1 or null; got 0" in text
    assert "model_size must be one of 'tiny', 'small', 'base'; got 'huge'" in text


def test_a_missing_task_says_how_to_add_it():
    with pytest.raises(ConfigError, match=r"missing key 'task'.*--set task=lm"):
        cli.build_run_config({"epochs": 1})


def test_model_keys_must_agree():
    with pytest.raises(ConfigError) as e:
        cli.build_run_config({"task": "lm", "model_file": "m.py", "model_size": "tiny", "dropout": 0.0})
    assert "model_size applies to built-in models only" in str(e.value)
    assert "dropout applies to built-in models only" in str(e.value)
    with pytest.raises(ConfigError, match="model_class needs model_file"):
        cli.build_run_config({"task": "lm", "model_class": "GPT"})
    with pytest.raises(ConfigError, match="max_seq_len applies to text tasks only"):
        cli.build_run_config({"task": "vision-cls", "max_seq_len": 16})


def test_a_saved_training_config_plus_a_task_is_a_valid_run_config(tmp_path):
    from trainbook.config import TrainingConfig

    cfg = TrainingConfig(epochs=4, learning_rate=1e-3, strategy="ddp")
    run, built = cli.build_run_config({**json.loads(cfg.save(tmp_path / "c.json").read_text()), "task": "lm"})
    assert built == cfg
    assert (run.task, run.dataset, run.model_size, run.data_limit) == ("lm", "builtin", "tiny", None)


@pytest.mark.parametrize("content,message", [
    (None, "does not exist"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "must hold one JSON object of field -> value; got list"),
])
def test_unreadable_config_files_exit_2_without_a_traceback(tmp_path, capsys, content, message):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content)
    assert cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_missing_dataset_path_exits_2_naming_it(tmp_path, capsys):
    path = write_config(tmp_path, **quick(tmp_path, dataset=str(tmp_path / "nope")))
    assert cli.main(["train", "--config", path]) == 2
    assert f"dataset={str(tmp_path / 'nope')!r} does not exist. HINT: dataset='builtin'" in capsys.readouterr().err


# --- --set ---

def test_set_values_are_json_when_they_parse_and_strings_otherwise():
    got = cli.parse_overrides(["epochs=3", "learning_rate=1e-4", 'precision="bf16"', "wandb_mode=disabled",
                               "deterministic=true", "compile=False", 'export_formats=["safetensors"]',
                               "run_name=a=b", "data_limit=null", "resume="])
    assert got == {"epochs": 3, "learning_rate": 1e-4, "precision": "bf16", "wandb_mode": "disabled",
                   "deterministic": True, "compile": False, "export_formats": ["safetensors"],
                   "run_name": "a=b", "data_limit": None, "resume": ""}
    assert type(got["epochs"]) is int


def test_set_without_a_field_name_is_an_error(tmp_path, capsys):
    path = write_config(tmp_path, **quick(tmp_path))
    assert cli.main(["train", "--config", path, "--set", "epochs", "--set", "=3"]) == 2
    err = capsys.readouterr().err
    assert "--set 'epochs' must look like field=value" in err and "--set '=3' must look like" in err


def test_set_keys_are_checked_like_file_keys(tmp_path, capsys):
    path = write_config(tmp_path, **quick(tmp_path))
    assert cli.main(["train", "--config", path, "--set", "epoch=2", "--set", "precision=fp8"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'epoch' (did you mean 'epochs'?)" in err
    assert "precision must be one of 'auto', 'fp32', 'bf16', 'fp16'; got 'fp8'" in err


# --- training ---

def test_python_m_trainbook_train_trains_and_prints_the_run_dir(tmp_path):
    path = write_config(tmp_path, **quick(tmp_path, task="lm", max_seq_len=32, data_limit=16, batch_size=8,
                                          epochs=3, run_name="bytes"))
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    proc = subprocess.run([sys.executable, "-m", "trainbook", "train", "--config", path, "--set", "epochs=2",
                           "--set", "learning_rate=3e-3"], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr
    run_dir = (tmp_path / "runs" / "bytes").resolve()
    assert proc.stdout.splitlines()[-1] == f"run dir: {run_dir}"
    saved = json.loads((run_dir / "training_config.json").read_text())
    assert (saved["epochs"], saved["learning_rate"], saved["strategy"]) == (2, 3e-3, "single")
    results = json.loads((run_dir / "results.json").read_text())
    assert [h["epoch"] for h in results["history"]] == [1, 2] and results["total_steps"] == 4
    assert results["history"][-1]["val_loss"] < results["history"][0]["val_loss"]
    assert (run_dir / "metrics.jsonl").stat().st_size > 0


def test_a_user_model_file_is_trained(tmp_path, capsys):
    (tmp_path / "model.py").write_text(USER_MODEL)
    path = write_config(tmp_path, **quick(tmp_path, task="text-cls", model_file=str(tmp_path / "model.py"),
                                          model_class="BagOfBytes", max_seq_len=24, data_limit=24))
    assert cli.main(["train", "--config", path]) == 0
    out = capsys.readouterr().out
    run_dir = Path(out.splitlines()[-1].removeprefix("run dir: "))
    assert run_dir == (tmp_path / "runs" / "run").resolve()
    assert json.loads((run_dir / "results.json").read_text())["total_steps"] == 2


def test_an_ambiguous_model_file_asks_for_model_class(tmp_path, capsys):
    (tmp_path / "model.py").write_text(USER_MODEL + "\n\nclass Other(BagOfBytes):\n    pass\n")
    path = write_config(tmp_path, **quick(tmp_path, task="text-cls", model_file=str(tmp_path / "model.py")))
    assert cli.main(["train", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "2 nn.Module classes ['BagOfBytes', 'Other']" in err and "the config key is model_class" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_data_keys_are_checked_with_the_rest():
    with pytest.raises(ConfigError) as e:
        cli.build_run_config({"task": "vision-cls", "tokenizer": "bpe:2000", "text_column": "", "skip_bad_rows": "yes"})
    text = str(e.value)
    assert "tokenizer applies to text tasks only (task is 'vision-cls')" in text
    assert "text_column must be a non-empty string or null; got ''" in text
    assert "skip_bad_rows must be true or false; got 'yes'" in text
    with pytest.raises(ConfigError, match=r"tokenizer must be 'byte', 'bpe:<vocab_size>'"):
        cli.build_run_config({"task": "lm", "tokenizer": "gpt2"})


def test_table_columns_tokenizer_and_bad_rows_reach_the_data(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TRAINBOOK_CACHE_DIR", str(tmp_path / "cache"))
    rows = "".join(f"{i},text number {i} is {'good' if i % 2 else 'bad'},{'up' if i % 2 else 'down'}\n" for i in range(60))
    (tmp_path / "t.csv").write_text("id,body_text,stars\n" + rows + "61,,up\n")
    path = write_config(tmp_path, **quick(tmp_path, task="text-cls", dataset=str(tmp_path / "t.csv"), data_limit=None,
                                          max_seq_len=32))
    assert cli.main(["train", "--config", path]) == 2
    assert "cannot tell which columns" in capsys.readouterr().err
    assert cli.main(["train", "--config", path, "--set", "text_column=body_text", "--set", "label_column=stars"]) == 2
    assert "t.csv:62: empty text" in capsys.readouterr().err
    assert cli.main(["train", "--config", path, "--set", "text_column=body_text", "--set", "label_column=stars",
                     "--set", "skip_bad_rows=true", "--set", "tokenizer=bpe:300"]) == 0
    run_dir = tmp_path / "runs" / "run"
    assert json.loads((run_dir / "tokenizer" / "trainbook_tokenizer.json").read_text())["name"] == "bpe:300"


def test_a_model_source_folder_is_trained_with_its_config_json(tmp_path, capsys):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "model.py").write_text(USER_MODEL + "\n\nclass Other(BagOfBytes):\n    pass\n")
    (tmp_path / "export" / "config.json").write_text(json.dumps({"class_name": "Other", "num_classes": 6}))
    path = write_config(tmp_path, **quick(tmp_path, task="text-cls", model_source=str(tmp_path / "export"),
                                          max_seq_len=24, data_limit=24))
    assert cli.main(["train", "--config", path]) == 0
    assert "training text-cls" in capsys.readouterr().out


@pytest.mark.parametrize("keys,message", [
    (dict(model_source="gist:aa5a315d61ae9438b18d"), 'is code fetched from the internet; it runs only with '
                                                      '"trust_remote_code": true in the config'),
    (dict(model_source="nowhere/model.py"), "nowhere/model.py: no such model file or folder"),
])
def test_model_source_problems_are_one_line_each(keys, message, tmp_path, capsys):
    path = write_config(tmp_path, **quick(tmp_path, **keys))
    assert cli.main(["train", "--config", path]) == 2


# --- every user error exits 2 with one message naming the key (issue's probe list) ---

def _raw_config(tmp_path, data: bytes) -> str:
    path = tmp_path / "run.json"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("data,message", [
    (b"\xff\xfe{\x00\"task\x00\"", "is not UTF-8 text (byte 0 is b'\\xff')"),
    (Path(sys.executable).read_bytes()[:4096], "is not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, "the JSON value is nested too deeply"),
    (b'{"task": "lm", "epochs": ' + b"7" * 5001 + b"}", "a number with 5001 digits; no setting takes a number that long"),
], ids=["non-utf8", "binary", "deeply-nested", "5001-digit-integer"])
def test_unreadable_config_file_content_exits_2_without_a_traceback(tmp_path, capsys, data, message):
    assert cli.main(["train", "--config", _raw_config(tmp_path, data)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_model_file_and_model_source_are_exclusive_and_trust_is_a_boolean():
    with pytest.raises(ConfigError) as e:
        cli.build_run_config({"task": "lm", "model_file": "m.py", "model_source": "gist:1", "model_size": "tiny",
                              "trust_remote_code": "yes"})
    assert e.value.problems == ["model_file and model_source both name a model; keep one (model_source takes any source)",
                                "model_size applies to built-in models only; remove it or remove model_file",
                                "trust_remote_code must be true or false; got 'yes'"]


@pytest.mark.parametrize("item,message", [
    ("epochs=" + "7" * 5001, "--set epochs=...: a number with 5001 digits"),
    ("dropout=" + "[" * 100_000, "--set dropout=...: the JSON value is nested too deeply"),
    ("seed=" + "[" * 5000 + "]" * 5000, "--set seed=...: the JSON value is nested too deeply"),
])
def test_set_values_that_json_cannot_hold_are_named(tmp_path, capsys, item, message):
    path = write_config(tmp_path, **quick(tmp_path))
    assert cli.main(["train", "--config", path, "--set", item]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


PROBES = [  # --set values that used to pass the config and fail at run time (exit 1 with a traceback)
    ("device=cuda:1", "device", "device='cuda:1' but this machine has"),
    ("device=cuda", "device", "device='cuda' but this machine has"),
    ("precision=fp16", "precision", "precision='fp16' needs a CUDA GPU"),
    ("max_seq_len=18446744073709551616", "max_seq_len", "max_seq_len=18446744073709551616 with batch_size=16 needs ~"),
    ("max_seq_len=1000000000", "max_seq_len", "max_seq_len=1000000000 with batch_size=16 needs ~"),
    ("run_name=" + "r" * 300, "run_name", "run_name is 300 characters long; at most 100"),
    ('output_dir="runs\\u0000x"', "output_dir", "output_dir contains a NUL byte"),
    ("data_limit=1", "data_limit", "data_limit=1 leaves no training examples of the built-in text-cls data"),
    ("model_file={tmp}/run.json", "model_file", "is not a .py file"),
    ("resume={tmp}/run.json", "resume", "is not a zip archive written by torch.save"),
    ("dataset=/bin/ls", "dataset", "dataset='/bin/ls' is not a text file (it holds NUL bytes"),
    ("dataset=hf:imdb", "dataset", "dataset='hf:imdb' needs the datasets package, which is not installed"),
]


@pytest.mark.parametrize("item,key,message", PROBES, ids=[p[0][:30] for p in PROBES])
def test_values_this_machine_cannot_run_exit_2_before_any_work(tmp_path, capsys, monkeypatch, item, key, message):
    import trainbook.data

    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before validation refused the run")

    monkeypatch.setattr(trainbook.data, "load_task_data", no_data)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the probes assume a machine without CUDA
    monkeypatch.setitem(sys.modules, "datasets", None)              # and without the datasets package
    task = "lm" if key in ("max_seq_len", "dataset") else "text-cls"
    path = write_config(tmp_path, **quick(tmp_path, task=task))
    assert cli.main(["train", "--config", path, "--set", item.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "HINT:" in err and "Traceback" not in err and "weights_only=False" not in err
    assert not (tmp_path / "runs").exists()


def test_every_problem_of_file_set_and_machine_is_listed_in_one_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = write_config(tmp_path, **quick(tmp_path, task="lm", learning_rat=1.0))
    assert cli.main(["train", "--config", path, "--set", "device=cuda:1", "--set", "epochs=0", "--set",
                     "dataset=/bin/ls", "--set", "seed=" + "1" * 5000]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"error: config {path}:"
    assert [line.strip().split(" ")[0].split("=")[0] for line in lines[1:]] == [
        "--set", "unknown", "epochs", "device", "dataset"]


@pytest.mark.parametrize("args,message", [
    (["--set", "device=cuda:7"], "device='cuda:7' but this machine has"),
    (["--set", "dataset=/bin/ls"], "dataset='/bin/ls' is not a text file"),
    (["--set", "resume=/bin/ls"], "resume: checkpoint /bin/ls is unreadable"),
])
def test_as_a_real_process_user_errors_exit_2_with_one_message(tmp_path, args, message):
    path = write_config(tmp_path, **quick(tmp_path, task="lm"))
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    proc = subprocess.run([sys.executable, "-m", "trainbook", "train", "--config", path, *args],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
