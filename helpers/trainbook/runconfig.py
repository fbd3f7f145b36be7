"""The run config of `python -m trainbook train`: the config file, --set values and the run keys.

    run, cfg = check_run_config({**read_config_file(path), **parse_overrides(["epochs=3"])})

A run config is one flat JSON object: any TrainingConfig field plus the RUN_KEYS (task, data,
model). build_run_config checks both and returns (RunSpec, TrainingConfig); check_run_config adds
the validation pass against this machine (trainbook.validation). Every problem is one line of a
ConfigError; the CLI prints it and exits 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from pathlib import Path

# keys of the config file beside the TrainingConfig fields
RUN_KEYS = {
    "task": "lm | text-cls | vision-cls (required)",
    "dataset": "'builtin' (default), a path (text file(s) for lm, CSV/TSV/JSONL for text-cls, image folder for "
               "vision-cls) or hf:<name-or-folder>",
    "tokenizer": "text tasks: byte (default) | bpe:<vocab_size> | hf:<name-or-dir>",
    "text_column": "the text column of a table or dataset (default: auto)",
    "label_column": "the label column of a table or dataset (default: auto)",
    "encoding": "encoding of text files and tables (default: UTF-8; a BOM is detected)",
    "skip_bad_rows": "drop bad table rows with a count instead of failing (default false)",
    "model_size": "built-in model size: tiny | small | base (default tiny)",
    "model_file": "a .py file defining an nn.Module, used instead of a built-in model",
    "model_source": "any model source instead: a .py file, a folder with model.py (+ config.json), "
                    "https://.../model.py, gist:<id>[@revision] or hf:<name-or-folder>",
    "model_class": "the class to build from model_file / model_source (default: config.json's or the only one)",
    "trust_remote_code": "true to run model code fetched from a URL or Gist (model_source); default false",
    "dropout": "built-in model dropout, in [0, 1) (default 0.1)",
    "data_limit": "at most this many training examples (default: all)",
    "max_seq_len": "text tasks: longest sequence fed to the model (default: the task preset)",
}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What to train, beside the TrainingConfig: task, data and model (see RUN_KEYS)."""

    task: str
    dataset: str = "builtin"
    tokenizer: str = "byte"
    text_column: str | None = None
    label_column: str | None = None
    encoding: str | None = None
    skip_bad_rows: bool = False
    model_size: str | None = None
    model_file: str | None = None
    model_source: str | None = None
    model_class: str | None = None
    trust_remote_code: bool = False
    dropout: float | None = None
    data_limit: int | None = None
    max_seq_len: int | None = None


def did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------- config file

def parse_overrides(items: list[str]) -> dict:
    """Turn `--set field=value` items into a dict; values are JSON when they parse, else strings.

    Raises:
        ConfigError: an item without '=' or with an empty field name.
    """
    from .config import ConfigError

    out, problems = split_overrides(items)
    if problems:
        raise ConfigError(problems)
    return out


def split_overrides(items: list[str]) -> tuple[dict, list[str]]:
    """parse_overrides without raising: (the values that parse, a problem line for each that does not)."""
    out, problems = {}, []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {clip(repr(item))} must look like field=value (e.g. --set epochs=3)")
            continue
        try:
            out[key.strip()] = _parse_value(raw)
        except ValueError as e:
            problems.append(f"--set {key.strip()}=...: {e}")
    return out, problems


def _parse_value(raw: str):
    if raw in ("True", "False", "None"):  # Python spellings, for convenience
        return {"True": True, "False": False, "None": None}[raw]
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
    except (RecursionError, ValueError) as e:  # nesting too deep, or an integer of more than 4300 digits
        raise ValueError(_json_limit(e)) from None


def _json_limit(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "the JSON value is nested too deeply. HINT: a flat value (number, string, list)"
    digits = re.search(r"has (\d+) digits", str(error))
    return (f"a number with {digits.group(1) if digits else 'too many'} digits; no setting takes a number that long "
            "(Python reads at most 4300). HINT: a plain number such as 3 or 1e-4")


def read_config_file(path) -> dict:
    """The JSON object in `path`. Raises ConfigError (missing file, bad JSON, not an object)."""
    from .config import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"config file {path} does not exist"])
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError([f"{path} is not UTF-8 text (byte {e.start} is {e.object[e.start:e.start + 1]!r}); a config "
                           "file is one JSON object. HINT: save it as UTF-8 JSON, e.g. cfg.save('run.json')"]) from None
    except OSError as e:
        raise ConfigError([f"config file {path} cannot be read ({e.strerror or e})"]) from None
    except json.JSONDecodeError as e:
        raise ConfigError([f"{path} is not valid JSON: {e}"]) from None
    except (RecursionError, ValueError) as e:
        raise ConfigError([f"{path}: {_json_limit(e)}"]) from None
    if not isinstance(d, dict):
        raise ConfigError([f"{path} must hold one JSON object of field -> value; got {type(d).__name__}"])
    return d


def check_run_config(d: dict, problems: list[str] = ()):
    """build_run_config plus the validation pass (trainbook.validation): every problem at once.

    Args:
        d: the flat config (file plus --set values). problems: ones found already (bad --set items).
    Raises:
        ConfigError: the given problems, the file's keys and values, and what this machine cannot do.
    """
    from .config import ConfigError
    from .validation import run_problems

    problems, built = list(problems), None
    try:
        built = build_run_config(d)
    except ConfigError as e:
        problems += e.problems
    problems += [p for p in run_problems(d) if p not in problems]
    if problems:
        raise ConfigError(problems)
    return built


def build_run_config(d: dict):
    """Split a flat config dict into (RunSpec, TrainingConfig), reporting every problem at once.

    Raises:
        ConfigError: unknown keys (with the closest name) and invalid values, one line each.
    """
    from .config import FIELD_NAMES, ConfigError, TrainingConfig

    known = [*RUN_KEYS, *FIELD_NAMES]
    problems = [f"unknown key {k!r}{did_you_mean(k, known)}" for k in d if k not in known]
    run = {k: v for k, v in d.items() if k in RUN_KEYS}
    problems += _run_problems(run)
    cfg = None
    try:
        cfg = TrainingConfig.from_dict({k: v for k, v in d.items() if k in FIELD_NAMES})
    except ConfigError as e:
        problems += e.problems
    if problems:
        raise ConfigError(problems)
    if "model_file" not in run and "model_source" not in run:
        run.setdefault("model_size", "tiny")
    return RunSpec(**run), cfg


def _run_problems(run: dict) -> list[str]:
    from .models import SIZES
    from .tasks import TASK_NAMES

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    problems = []
    task = run.get("task")
    if task is None:
        problems.append(f"missing key 'task': one of {', '.join(map(repr, TASK_NAMES))} "
                        "(add \"task\": \"lm\" to the file or pass --set task=lm)")
    elif task not in TASK_NAMES:
        problems.append(f"task must be one of {', '.join(map(repr, TASK_NAMES))}; got {task!r}"
                        + did_you_mean(task, TASK_NAMES))
    if not isinstance(run.get("dataset", "builtin"), str) or not run.get("dataset", "builtin"):
        problems.append(f"dataset must be 'builtin' or a path; got {run['dataset']!r}")
    problems += _data_problems(run, task)
    if "model_size" in run and (not isinstance(run["model_size"], str) or run["model_size"] not in SIZES):
        problems.append(f"model_size must be one of {', '.join(map(repr, SIZES))}; got {run['model_size']!r}")
    for key in ("model_file", "model_source", "model_class"):
        if key in run and not (isinstance(run[key], str) and run[key]):
            problems.append(f"{key} must be a non-empty string; got {run[key]!r}")
    if "model_file" in run and "model_source" in run:
        problems.append("model_file and model_source both name a model; keep one (model_source takes any source)")
    custom = next((key for key in ("model_file", "model_source") if key in run), None)
    if custom:
        problems += [f"{key} applies to built-in models only; remove it or remove {custom}"
                     for key in ("model_size", "dropout") if key in run]
    elif "model_class" in run:
        problems.append("model_class needs model_file or model_source (the model code that defines it)")
    if not isinstance(run.get("trust_remote_code", False), bool):
        problems.append(f"trust_remote_code must be true or false; got {run['trust_remote_code']!r}")
    dropout = run.get("dropout", 0.0)
    if not (isinstance(dropout, (int, float)) and not isinstance(dropout, bool) and 0 <= dropout < 1):
        problems.append(f"dropout must be a number in [0, 1); got {dropout!r}")
    if run.get("data_limit") is not None and not (is_int(run["data_limit"]) and run["data_limit"] >= 1):
        problems.append(f"data_limit must be an integer >= 1 or null; got {run['data_limit']!r}")
    if run.get("max_seq_len") is not None:
        if not (is_int(run["max_seq_len"]) and run["max_seq_len"] >= 2):
            problems.append(f"max_seq_len must be an integer >= 2 or null; got {run['max_seq_len']!r}")
        elif task == "vision-cls":
            problems.append("max_seq_len applies to text tasks only (task is 'vision-cls')")
    return problems


def _data_problems(run: dict, task) -> list[str]:
    from .data import DataError, parse_tokenizer

    problems = []
    try:
        parse_tokenizer(run.get("tokenizer", "byte"))
    except DataError as e:
        problems.append(str(e))
    if task == "vision-cls" and run.get("tokenizer", "byte") != "byte":
        problems.append("tokenizer applies to text tasks only (task is 'vision-cls')")
    for key in ("text_column", "label_column", "encoding"):
        if run.get(key) is not None and not (isinstance(run[key], str) and run[key]):
            problems.append(f"{key} must be a non-empty string or null; got {run[key]!r}")
    if not isinstance(run.get("skip_bad_rows", False), bool):
        problems.append(f"skip_bad_rows must be true or false; got {run['skip_bad_rows']!r}")
    return problems


# ---------------------------------------------------------------------- train


def clip(line: str, limit: int = 2000) -> str:
    return line if len(line) <= limit else f"{line[:limit]}... ({len(line)} characters)"
