"""A seeded fuzz of `python -m trainbook train` (run in-process through cli.main): random config
files and --set values over every key, with values that are valid, invalid, of the wrong type,
absurd (huge numbers, NUL bytes, 300-character names) or not JSON at all.

The acceptance: no traceback ever (any exception out of cli.main fails the test), and every
refused config exits 2 with a message naming a key the case changed. Accepted configs really
train: at most 2 optimizer steps (max_steps is fixed) on at most 40 examples, so they stay fast.
"""

import contextlib
import io
import json
import random
import re

import pytest
import torch

from trainbook import cli
from trainbook.config import FIELD_NAMES

N_CASES = 320
SEED = 22
BASE = dict(task="vision-cls", data_limit=16, epochs=1, batch_size=8, max_steps=2, wandb_mode="disabled",
            progress_bar=False)
JUNK = [None, True, False, 0, -1, 1, 2.5, -0.0, 1e308, 10**30, "", "x", " ", "nan", "\x00", "\u00e9" * 3, "a" * 300,
        [], [1, "a"], {}, {"a": 1}, [[[[[[]]]]]]]
RAW_SET_VALUES = ["1e999", "-Infinity", "NaN", "{", "[1,", "1" * 5001, "[" * 3000 + "]" * 3000, "True", "None",
                  "=", "'quoted'", "0x10"]
CHOICES = {  # per key: values worth trying (valid ones, and invalid ones of the right type)
    "task": ["vision-cls", "lm", "text-cls", "vision", "LM"],
    "dataset": ["builtin", "{text}", "{csv}", "{images}", "/bin/ls", "{missing}", "hf:imdb", "hf:", "{tmp}"],
    "data_limit": [1, 4, 5, 16, 40, 0],
    "model_size": ["tiny", "small", "huge"],
    "model_file": ["{json}", "{missing}.py", "{tmp}"],
    "model_class": ["Net", "Nope"],
    "model_source": ["{missing}.py", "{json}", "gist:abc", "hf:", "{tmp}"],
    "trust_remote_code": [True, False, "yes"],
    "tokenizer": ["byte", "bpe:300", "bpe:2", "gpt2", "hf:"],
    "text_column": ["text", "", "nope"],
    "label_column": ["label", "", "nope"],
    "encoding": ["utf-8", "latin-1", "klingon"],
    "skip_bad_rows": [True, False, "yes"],
    "dropout": [0.0, 0.5, 1.0],
    "max_seq_len": [16, 64, 1, 10**9, 2**64],
    "run_name": ["r", "a b", "x" * 300, "-x", ".", "a/b", "ok-1", "\u00fcber"],
    "output_dir": ["{runs}", "/proc/nope", "{json}", "runs\x00"],
    "seed": [0, 7, 2**32, -5],
    "epochs": [1, 3, 0, 10**6],
    "batch_size": [1, 8, 0],
    "learning_rate": [1e-3, 0.0, 11.0, "1e-3"],
    "weight_decay": [0.0, 0.1, -1.0],
    "optimizer": ["adamw", "sgd", "adam"],
    "lr_schedule": ["cosine", "linear", "constant", "cosin"],
    "warmup_ratio": [0.0, 0.5, 1.0],
    "warmup_steps": [0, 1, -1],
    "min_lr_ratio": [0.0, 1.0, 2.0],
    "max_grad_norm": [0.0, 1.0, -1.0],
    "gradient_accumulation_steps": [1, 2, 0],
    "precision": ["auto", "fp32", "bf16", "fp16", "fp8"],
    "device": ["auto", "cpu", "cuda", "cuda:1", "mps", "tpu"],
    "num_workers": ["auto", 0, 2, 65, "many"],
    "deterministic": [True, False],
    "eval_every_n_epochs": [1, 2, 0],
    "early_stopping_patience": [0, 1],
    "early_stopping_metric": ["val_loss", "val_accuracy", "val_perplexity", "nope"],
    "early_stopping_mode": ["auto", "min", "max", "up"],
    "early_stopping_min_delta": [0.0, -1.0],
    "checkpoint_dir": ["", "{ckpt}", "{json}/x"],
    "save_every_n_epochs": [0, 1],
    "save_every_n_steps": [0, 1],
    "keep_last": [1, 0],
    "resume": ["auto", "never", "{json}", "{missing}.pt", "/bin/ls"],
    "persist_dir": ["", "{tmp}/drive", "{json}", "/proc/nope"],
    "on_config_change": ["refuse", "new_run", "later"],
    "wandb_mode": ["disabled", "online", "sometimes"],
    "wandb_project": ["p", ""],
    "wandb_entity": ["", "me"],
    "log_every_n_steps": [1, 0],
    "progress_bar": [False],
    "export_bundle": [True, False],
    "export_formats": [["safetensors"], ["onnx"], []],
    "strategy": ["single", "ddp"],
    "config_version": [2, 1, 3],
    "learning_rat": [1e-3],  # unknown keys
    "zzz": [1],
}
EXCLUDED = {"compile", "max_steps"}  # compile=True spends minutes compiling; max_steps keeps accepted runs short


def test_the_fuzz_covers_every_key():
    assert set(FIELD_NAMES) - set(CHOICES) == EXCLUDED
    assert set(cli.RUN_KEYS) <= set(CHOICES)


def make_files(root):
    """Real inputs for the placeholders: a text file, a CSV, an image folder, a JSON file."""
    from PIL import Image

    (root / "notes.txt").write_text("".join(f"line {i}: the quick brown fox\n" for i in range(200)))
    (root / "reviews.csv").write_text("text,label\n" + "".join(f"review number {i},{'ab'[i % 2]}\n" for i in range(40)))
    for label in ("cats", "dogs"):
        (root / "images" / label).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (8, 8), (40 * i, 100 if label == "cats" else 200, 0)).save(root / "images" / label / f"{i}.png")
    (root / "settings.json").write_text("{}")
    return {"{text}": root / "notes.txt", "{csv}": root / "reviews.csv", "{images}": root / "images",
            "{json}": root / "settings.json", "{missing}": root / "missing", "{tmp}": root, "{runs}": root / "runs",
            "{ckpt}": root / "ckpt"}


def fill(value, places):
    if isinstance(value, str):
        for name, path in places.items():
            value = value.replace(name, str(path))
    return value


def draw_case(rng, places, index):
    """(file dict, --set items, changed keys)."""
    file, sets, changed = {**BASE, "output_dir": str(places["{runs}"]), "run_name": f"case-{index}"}, [], []
    for key in rng.sample(sorted(CHOICES), rng.randint(1, 4)):
        value = fill(rng.choice(CHOICES[key]) if rng.random() < 0.6 else rng.choice(JUNK), places)
        changed.append(key)
        channel = rng.random()
        if channel < 0.5:
            file[key] = value
        elif channel < 0.9:
            sets.append(f"{key}={json.dumps(value)}")
        elif channel < 0.95 and isinstance(value, str):
            sets.append(f"{key}={value}")  # unquoted: a string unless it parses as JSON
        else:
            sets.append(f"{key}={rng.choice(RAW_SET_VALUES)}")
    return file, sets, changed


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No W&B key or netrc, no torchrun, and the machine's global torch flags restored after each case."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("WANDB_API_KEY", "NETRC", "WANDB_MODE", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_random_configs_never_traceback_and_every_refusal_names_a_changed_key(tmp_path, isolated):
    places, rng = make_files(tmp_path), random.Random(SEED)
    codes, failures = {}, []
    for index in range(N_CASES):
        file, sets, changed = draw_case(rng, places, index)
        config = tmp_path / f"case-{index}.json"
        config.write_text(json.dumps(file))
        argv = ["train", "--config", str(config)] + [a for item in sets for a in ("--set", item)]
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(argv)
        except BaseException as e:  # a traceback: a bug in trainbook
            failures.append(f"case {index} {changed}: {type(e).__name__}: {str(e)[:300]}\n  argv {str(argv)[:300]}")
            continue
        finally:
            torch.use_deterministic_algorithms(False)
        codes[code] = codes.get(code, 0) + 1
        message = err.getvalue()
        if code == 2 and not any(re.search(rf"(?<![\w]){re.escape(k)}(?![\w])", message) for k in changed):
            failures.append(f"case {index}: exit 2 names none of {changed}:\n{message[:500]}")
        elif code not in (0, 2):
            failures.append(f"case {index} {changed}: exit {code}:\n{message[:500]}")
        elif "Traceback" in message:
            failures.append(f"case {index} {changed}: a traceback was printed:\n{message[:500]}")
    print(f"{N_CASES} cases: exit codes {dict(sorted(codes.items()))}")
    assert failures == [], "\n".join(failures[:10])
    assert codes.get(0, 0) >= 10 and codes.get(2, 0) >= 200  # both sides of the pass were exercised
