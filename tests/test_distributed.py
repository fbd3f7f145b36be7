"""DDP under torchrun on CPU (gloo), the data sharding rule, and the notebook/launcher guardrails.

The torchrun tests launch `python -m torch.distributed.run --standalone` (a free port is picked
by the launcher) with per-rank output captured under --log_dir.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import trainbook as tb
from trainbook import cli, env
from trainbook.engine.distributed import DistContext
from trainbook.env import DistributedSetupError

KILL_WORKER = Path(__file__).parent / "workers" / "ddp_kill_worker.py"
TORCHRUN_COMMAND = "torchrun --nproc_per_node 2 -m trainbook train --config run.json"
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                 "TORCHELASTIC_RESTART_COUNT")
# per rank: micro-batches of 4, 2 accumulated -> 16 samples per optimizer step over 2 ranks;
# 40 samples -> windows of 16, 16, 8 -> 3 steps per epoch. SGD: its update is linear in the gradient,
# so the DDP/single difference stays at float rounding (AdamW divides by sqrt(v) and amplifies it).
RUN = dict(task="lm", data_limit=40, max_seq_len=32, dropout=0.0, seed=3, epochs=2, batch_size=4,
           gradient_accumulation_steps=2, optimizer="sgd", learning_rate=0.1, save_every_n_steps=1,
           wandb_mode="disabled", progress_bar=False, output_dir="out", num_workers=1)  # a data worker per rank
SINGLE = dict(batch_size=16, gradient_accumulation_steps=1)  # the same global batch in one process
STEPS = 6


def _clean_env(**extra):
    return {**{k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}, **extra}


def _torchrun(workdir: Path, *args, env=None) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "run.json").write_text(json.dumps(RUN))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "--log_dir", "logs", "--redirects", "3", *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env or _clean_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr + _rank_logs(workdir)
    return proc


def _rank_logs(workdir: Path) -> str:
    return "".join(f"\n== {p}\n{p.read_text()}" for p in sorted((workdir / "logs").glob("*/attempt_*/*/*.log")))


def _rank_output(workdir: Path, attempt: int, rank: int, stream: str = "stdout") -> str:
    (path,) = (workdir / "logs").glob(f"*/attempt_{attempt}/{rank}/{stream}.log")
    return path.read_text()


def _final(workdir: Path):
    """(final state_dict, results.json) of the run under workdir/out/run."""
    results = json.loads((workdir / "out" / "run" / "results.json").read_text())
    payload = torch.load(workdir / results["last_checkpoint"], weights_only=True)
    return payload["model"], results


def _step_rows(workdir: Path) -> list[int]:
    rows = [json.loads(line) for line in (workdir / "out" / "run" / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "train/loss" in r]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One uninterrupted 2-process run of the plain CLI (strategy not set: torchrun switches to ddp)."""
    workdir = tmp_path_factory.mktemp("ddp")
    _torchrun(workdir, "-m", "trainbook", "train", "--config", "run.json")
    return workdir


# --- torchrun, 2 processes on CPU ---

def test_ddp_weights_match_a_single_process_run_with_the_same_global_batch(ddp_run, tmp_path, monkeypatch, capsys):
    for key in TORCHRUN_VARS:
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "run.json").write_text(json.dumps(RUN))
    overrides = [f"{k}={v}" for k, v in {**SINGLE, "output_dir": str(tmp_path / "out")}.items()]
    assert cli.main(["train", "--config", str(tmp_path / "run.json"), *sum((["--set", o] for o in overrides), [])]) == 0
    assert f"run dir: {(tmp_path / 'out' / 'run').resolve()}" in capsys.readouterr().out

    ddp, ddp_results = _final(ddp_run)
    single, single_results = _final(tmp_path)
    max_diff = max((ddp[k] - single[k]).abs().max().item() for k in single)
    print(f"max |w_ddp - w_single| = {max_diff:.3g} over {len(single)} tensors")
    assert max_diff < 1e-5
    initial = tb.build_model(tb.TaskSpec.preset("lm").replace(max_seq_len=32), "tiny", dropout=0.0, seed=3)
    assert max((ddp[k] - w).abs().max().item() for k, w in initial.state_dict().items()) > 1e-3  # it trained
    assert ddp_results["total_steps"] == single_results["total_steps"] == STEPS
    for a, b in zip(ddp_results["history"], single_results["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)  # validation summed over both ranks


def test_only_rank_zero_writes_the_run_dir_and_prints_it(ddp_run):
    assert sorted(p.name for p in ddp_run.iterdir()) == ["logs", "out", "run.json"]
    assert [p.name for p in (ddp_run / "out").iterdir()] == ["run"]
    run_dir = ddp_run / "out" / "run"
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.json", "metrics.jsonl",
                                                        "results.json", "summary.json", "training_config.json"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "best.pt", f"step-{STEPS - 1:08d}.pt", f"step-{STEPS:08d}.pt"]
    assert _step_rows(ddp_run) == list(range(1, STEPS + 1))  # one writer: no row twice
    assert json.loads((run_dir / "training_config.json").read_text())["strategy"] == "ddp"
    rank0, rank1 = _rank_output(ddp_run, 0, 0), _rank_output(ddp_run, 0, 1)
    assert f"run dir: {run_dir.resolve()}" in rank0.splitlines()
    assert "strategy='ddp'" in rank0
    assert "num_workers 1" in rank0  # each rank feeds its shard through a data worker
    assert "run dir" not in rank1 and "strategy=" not in rank1


def test_a_killed_rank_is_restarted_and_resumes_exactly_from_the_rank0_checkpoint(ddp_run, tmp_path):
    # rank 1 is SIGKILLed as it starts step 5 (mid epoch 2); torchrun restarts both processes once.
    # A restart must not reuse the agent's store: stale gloo addresses of the dead attempt make
    # init_process_group fail at random (pytorch/pytorch#135712), hence the variable.
    _torchrun(tmp_path, "--max_restarts", "1", str(KILL_WORKER), "1", "5", "train", "--config", "run.json",
              env=_clean_env(TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1"))
    first = _rank_output(tmp_path, 0, 0)
    assert "run dir" not in first
    resumed = re.search(r"resumed at step (\d+) from (\S+)", _rank_output(tmp_path, 1, 0))
    assert resumed and 1 <= int(resumed.group(1)) <= 4, _rank_logs(tmp_path)
    assert "resumed at step" not in _rank_output(tmp_path, 1, 1)  # console lines come from rank 0 only
    got, results = _final(tmp_path)
    want, want_results = _final(ddp_run)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert [h["train_loss"] for h in results["history"]] == [h["train_loss"] for h in want_results["history"]]
    # rows logged after the checkpoint were dropped and logged again, once; rows before it survive
    # (the JSONL log is flushed and fsynced before every checkpoint)
    assert _step_rows(tmp_path) == list(range(1, STEPS + 1))


# --- the data sharding rule (no processes needed) ---

@pytest.mark.parametrize("n,world,batch", [(40, 2, 4), (41, 2, 4), (30, 3, 2)])
def test_rank_micro_batches_together_are_one_slice_of_the_single_process_order(n, world, batch):
    single = DistContext().epoch_indices(n, seed=5, epoch=1)
    shards = [DistContext(True, r, world).epoch_indices(n, seed=5, epoch=1) for r in range(world)]
    padded = single + single[: world * DistContext(True, 0, world).shard_len(n) - n]
    assert all(len(s) == len(padded) // world for s in shards)
    for start in range(0, len(shards[0]), batch):
        together = [i for s in shards for i in s[start:start + batch]]
        assert sorted(together) == sorted(padded[start * world:(start + batch) * world])
    assert sorted(i for s in shards for i in s) == sorted(padded)


def test_data_order_is_a_function_of_seed_and_epoch():
    ctx = DistContext(True, 1, 2)
    assert ctx.epoch_indices(20, seed=0, epoch=3) == ctx.epoch_indices(20, seed=0, epoch=3)
    assert ctx.epoch_indices(20, seed=0, epoch=3) != ctx.epoch_indices(20, seed=0, epoch=4)


# --- guardrails ---

def _tiny_lm_run(tmp_path):
    spec = tb.TaskSpec.preset("lm").replace(max_seq_len=16)
    data = [{"input_ids": torch.arange(i, i + 16) % 256} for i in range(8)]
    cfg = tb.TrainingConfig(strategy="ddp", output_dir=str(tmp_path), wandb_mode="disabled", progress_bar=False)
    return tb.build_model(spec, "tiny"), cfg, spec, data


def test_ddp_inside_a_notebook_raises_with_the_torchrun_command_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(env, "in_notebook", lambda: True)
    for key, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(key, value)  # even when torchrun's variables are present
    model, cfg, spec, data = _tiny_lm_run(tmp_path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DistributedSetupError, match=re.escape("cannot run inside a notebook. Run: " + TORCHRUN_COMMAND)):
        tb.Trainer(model, training_config=cfg, task_spec=spec).train(data)
    assert list(tmp_path.iterdir()) == []
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not torch.distributed.is_initialized()


def test_ddp_outside_torchrun_raises_with_the_same_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(env, "in_notebook", lambda: False)
    for key in TORCHRUN_VARS:
        monkeypatch.delenv(key, raising=False)
    model, cfg, spec, data = _tiny_lm_run(tmp_path)
    with pytest.raises(DistributedSetupError, match=r"needs the torchrun launcher.*" + re.escape(TORCHRUN_COMMAND)):
        tb.Trainer(model, training_config=cfg, task_spec=spec).train(data)
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_ddp_in_a_notebook_before_loading_data(tmp_path, monkeypatch, capsys):
    import trainbook.data

    def no_data(*args, **kwargs):
        raise AssertionError("data was loaded before the guardrail")

    monkeypatch.setattr(env, "in_notebook", lambda: True)
    monkeypatch.setattr(trainbook.data, "load_task_data", no_data)
    (tmp_path / "run.json").write_text(json.dumps({"task": "lm", "strategy": "ddp"}))
    assert cli.main(["train", "--config", str(tmp_path / "run.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: strategy='ddp' cannot run inside a notebook") and TORCHRUN_COMMAND in err
    assert "Traceback" not in err
