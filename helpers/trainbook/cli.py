"""Command line: python -m trainbook train|lint ...

    python -m trainbook train --config run.json --set epochs=3

`train` reads one flat JSON object: any TrainingConfig field plus the run keys below. The same
command runs under `torchrun --nproc_per_node N`; there it trains with strategy="ddp".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .runconfig import RUN_KEYS, RunSpec, check_run_config, clip, did_you_mean, read_config_file, split_overrides
from .runconfig import build_run_config, parse_overrides  # noqa: F401 - also called as cli.build_run_config

COMMANDS = {
    "train": "train a model from a JSON config file (alone, or under torchrun for DDP)",
    "lint": "check notebooks and .py/.md files for legacy API strings and the notebook contract",
}


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
    print(f"error: unknown command {command!r}{did_you_mean(command, COMMANDS)}\n{_usage()}", file=sys.stderr)
    return 2


def _usage() -> str:
    lines = ["usage: python -m trainbook <command> [args...]", "", "commands:"]
    lines += [f"  {name:<6} {text}" for name, text in COMMANDS.items()]
    lines += ["", "`python -m trainbook <command> --help` lists a command's options."]
    return "\n".join(lines)


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
        print(f"error: config {args.config}:\n  " + "\n  ".join(map(clip, e.problems)), file=sys.stderr)
        return 2
    except (DistributedSetupError, RunLockedError, UserInputError) as e:
        print(f"error: {clip(str(e))}", file=sys.stderr)
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


def _say(rank: int, line: str):
    if rank == 0:
        print(line, flush=True)


def _destroy_process_group():
    if "torch.distributed" not in sys.modules:  # nothing was started (and importing torch costs seconds)
        return
    import torch.distributed as torch_dist

    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
