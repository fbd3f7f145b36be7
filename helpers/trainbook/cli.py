"""Command line: python -m trainbook train|lint ...

    python -m trainbook train --config run.json --set epochs=3

`train` reads one flat JSON object: any TrainingConfig field plus the run keys below. The same
command runs under `torchrun --nproc_per_node N`; there it trains with strategy="ddp".
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
import sys
from pathlib import Path

COMMANDS = {
    "train": "train a model from a JSON config file (alone, or under torchrun for DDP)",
    "lint": "check notebooks and .py/.md files for legacy API strings and the notebook contract",
}

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


def main(argv=None) -> int:
    """Entry point of `python -m trainbook` and the `trainbook` script. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        return train_main(rest)
    if command == "lint":
        from .lint import main as lint_main

        return lint_main(rest)
    print(f"error: unknown command {command!r}{_did_you_mean(command, COMMANDS)}\n{_usage()}", file=sys.stderr)
    return 2


def _usage() -> str:
    lines = ["usage: python -m trainbook <command> [args...]", "", "commands:"]
    lines += [f"  {name:<6} {text}" for name, text in COMMANDS.items()]
    lines += ["", "`python -m trainbook <command> --help` lists a command's options."]
    return "\n".join(lines)


def _did_you_mean(word: str, options) -> str:
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
            problems.append(f"--set {_clip(repr(item))} must look like field=value (e.g. --set epochs=3)")
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
    problems = [f"unknown key {k!r}{_did_you_mean(k, known)}" for k in d if k not in known]
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
                        + _did_you_mean(task, TASK_NAMES))
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

def train_main(argv: list[str]) -> int:
    """`python -m trainbook train --config run.json [--set field=value ...]`.

    Args:
        argv: the arguments after `train`.
    Returns:
        0 after training (rank 0 prints `run dir: <path>`); 2 for any user error: a bad config
        file, key or value, something this machine cannot do (trainbook.validation), a data or
        model file, a checkpoint to resume, a run folder in use by another process, or a
        distributed setup error; 1 when a checkpoint cannot be written (full disk). Each is one
        message without a traceback; a traceback is a bug in trainbook.
    """
    parser = argparse.ArgumentParser(
        prog="python -m trainbook train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train from a JSON config: one flat object of TrainingConfig fields plus these keys:\n"
                    + "\n".join(f"  {k:<12} {v}" for k, v in RUN_KEYS.items())
                    + "\n\nUnder `torchrun --nproc_per_node N -m trainbook train ...` it trains with DDP.")
    parser.add_argument("--config", required=True, metavar="FILE", help="the JSON config file")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="overrides",
                        help="override one key; VALUE is JSON when it parses (3, 1e-4, true), else a string")
    args = parser.parse_args(argv)

    from .config import ConfigError
    from .env import DistributedSetupError, torchrun_env
    from .lock import RunLockedError

    launched = torchrun_env()
    rank = launched["rank"] if launched else 0
    try:
        overrides, set_problems = split_overrides(args.overrides)
        d = {**read_config_file(args.config), **overrides}
        if rank == 0:  # under DDP only rank 0 holds the lock; the others must not find it "busy"
            refuse_a_busy_run_folder(d)  # a second process on this run folder stops here, before torch loads
        result = _validate_and_train(d, set_problems, launched, rank)
    except ConfigError as e:
        print(f"error: config {args.config}:\n  " + "\n  ".join(map(_clip, e.problems)), file=sys.stderr)
        return 2
    except (DistributedSetupError, RunLockedError, UserInputError) as e:
        print(f"error: {_clip(str(e))}", file=sys.stderr)
        return 2
    except DiskError as e:  # the machine, not the config: a full disk
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        _destroy_process_group()
    _say(rank, f"run dir: {Path(result.run_dir).resolve()}")
    return 0


class UserInputError(Exception):
    """A data file, model file or checkpoint the user named cannot be used (wraps the original)."""


class DiskError(Exception):
    """A checkpoint could not be written: the disk, not the config (wraps CheckpointWriteError)."""


def refuse_a_busy_run_folder(d: dict):
    """RunLockedError when a live process holds the lock of the run folder that `d` names."""
    from .config import TrainingConfig
    from .lock import RunLock

    output_dir, name = d.get("output_dir", TrainingConfig.output_dir), d.get("run_name", TrainingConfig.run_name)
    if all(isinstance(v, str) and v and "\x00" not in v for v in (output_dir, name)) and "/" not in name:
        RunLock(Path(output_dir) / name, run_name=name).check()


def _validate_and_train(d: dict, set_problems: list, launched, rank: int):
    """The validation pass, the DDP guardrail, the run lock, then training; returns the TrainResult."""
    from .data import DataError
    from .engine.checkpoint import CheckpointError, CheckpointWriteError
    from .env import check_strategy
    from .lock import run_lock

    ddp = bool(launched and launched["world_size"] > 1 and d.get("strategy", "single") == "single")
    if ddp:
        d["strategy"] = "ddp"
    run, cfg = check_run_config(d, set_problems)  # every problem with the config and this machine, before any work
    if ddp:
        _say(rank, f"torchrun started {launched['world_size']} processes: training with strategy='ddp'")
    check_strategy(cfg.strategy)  # guardrail before any data or model work
    try:
        with run_lock(cfg):  # taken before the data loads; the Trainer holds it again for the run
            return _train(run, cfg)
    except (DataError, FileNotFoundError, CheckpointError) as e:
        raise UserInputError(str(e)) from e
    except CheckpointWriteError as e:
        raise DiskError(str(e)) from e


def _train(run: RunSpec, cfg):
    """Data, model and Trainer from a RunSpec and a TrainingConfig; returns the TrainResult."""
    from . import data as tb_data
    from . import models
    from .config import ConfigError
    from .engine.trainer import Trainer
    from .tasks import TaskSpec

    spec = TaskSpec.preset(run.task)
    if run.max_seq_len is not None:
        spec = spec.replace(max_seq_len=run.max_seq_len)
    data = tb_data.load_task_data(run.task, source=run.dataset, seed=cfg.seed, limit=run.data_limit, spec=spec,
                                  tokenizer=run.tokenizer, text_column=run.text_column, label_column=run.label_column,
                                  encoding=run.encoding, skip_bad_rows=run.skip_bad_rows)
    if run.model_file or run.model_source:
        key, source = ("model_file", run.model_file) if run.model_file else ("model_source", run.model_source)
        if source.startswith(("gist:", "https://", "http://")) and not run.trust_remote_code:
            raise ConfigError([f"{key}: {source} is code fetched from the internet; it runs only with "
                               '"trust_remote_code": true in the config. HINT: read the code first, then add it'])
        try:
            model = models.load_model(source, class_name=run.model_class, trust_remote_code=run.trust_remote_code,
                                      task_spec=data.spec)
        except (ValueError, ImportError, OSError) as e:  # a bad class, arguments, source or fetch: one line
            hint = " (the config key is model_class)" if "class_name=" in str(e) else ""
            raise ConfigError([f"{key}: {e}{hint}"]) from None
    else:
        dropout = 0.1 if run.dropout is None else float(run.dropout)
        model = models.build_model(data.spec, run.model_size, dropout=dropout, seed=cfg.seed)
    return Trainer(model, training_config=cfg, task_spec=data.spec).train(data.train, data.val)


def _clip(line: str, limit: int = 2000) -> str:
    return line if len(line) <= limit else f"{line[:limit]}... ({len(line)} characters)"


def _say(rank: int, line: str):
    if rank == 0:
        print(line, flush=True)


def _destroy_process_group():
    if "torch.distributed" not in sys.modules:  # nothing was started (and importing torch costs seconds)
        return
    import torch.distributed as torch_dist

    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
