"""The run lock (trainbook.lock): one process per run folder, stale locks taken over.

The two-process test runs a real holder (a Trainer run paused between its epochs) and starts a
second run on the same folder, in-process through the CLI and as a real `python -m trainbook`.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import trainbook as tb
from trainbook import cli
from trainbook.lock import LOCK_NAME, RunLock, RunLockedError, run_lock

WORKER = Path(__file__).parent / "workers" / "lock_holder_worker.py"
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@pytest.fixture(autouse=True)
def outside_torchrun(monkeypatch):
    for key in TORCHRUN_VARS:
        monkeypatch.delenv(key, raising=False)


def write_lock(run_dir: Path, **holder):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "started_at": "2026-01-01T00:00:00",
                                                 "process_start": None, **holder}))


def test_a_second_process_on_the_same_run_folder_fails_at_once_naming_the_holder(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        lines = iter(holder.stdout.readline, "")
        assert any(line.strip() == "holding" for line in lines)  # the first run is between its epochs
        config = tmp_path / "run.json"
        config.write_text(json.dumps({"task": "vision-cls", "data_limit": 32, "epochs": 2, "batch_size": 8,
                                      "wandb_mode": "disabled", "progress_bar": False, "run_name": "shared",
                                      "output_dir": str(tmp_path / "runs")}))
        t0 = time.perf_counter()
        code = cli.main(["train", "--config", str(config)])
        in_process_s = time.perf_counter() - t0
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        assert f"is in use by pid {holder.pid} on {socket.gethostname()}" in err
        assert "HINT: wait for that run to finish, or give this run another name: run_name='shared-2'" in err

        t0 = time.perf_counter()
        second = subprocess.run([sys.executable, "-m", "trainbook", "train", "--config", str(config)],
                                capture_output=True, text=True, timeout=120)
        process_s = time.perf_counter() - t0
        assert second.returncode == 2 and f"in use by pid {holder.pid}" in second.stderr, second.stderr
        assert holder.poll() is None  # both failed while the first run was still going
        print(f"second run refused after {in_process_s:.2f}s in-process, {process_s:.2f}s as a new process")
    finally:
        (tmp_path / "release").write_text("")
        out, _ = holder.communicate(timeout=300)
    assert holder.returncode == 0 and out.strip().endswith("done 8"), out
    run_dir = tmp_path / "runs" / "shared"
    steps = [row["step"] for row in tb.read_metrics(run_dir) if "train/loss" in row]
    assert steps == list(range(1, 9))  # the first run's metrics: every step once, in order
    assert not (run_dir / LOCK_NAME).exists()  # released at the end


def test_a_lock_whose_process_is_gone_is_replaced_with_a_message(tmp_path, capsys):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_lock(tmp_path / "run", pid=int(gone.stdout))
    with RunLock(tmp_path / "run"):
        assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"removing a stale lock {tmp_path / 'run' / LOCK_NAME} (pid {int(gone.stdout)} on" in capsys.readouterr().out
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_live_pid_that_started_later_than_the_lock_is_a_reused_pid(tmp_path):
    write_lock(tmp_path / "run", pid=os.getppid(), process_start=1)  # alive, but not the process that locked
    with RunLock(tmp_path / "run"):
        pass


def test_a_live_holder_and_a_holder_on_another_host_keep_the_lock(tmp_path):
    write_lock(tmp_path / "a", pid=os.getppid())
    with pytest.raises(RunLockedError, match=rf"in use by pid {os.getppid()} on {socket.gethostname()}"):
        RunLock(tmp_path / "a").acquire()
    write_lock(tmp_path / "b", pid=1, host="another-machine")
    with pytest.raises(RunLockedError, match="pid 1 on another-machine since 2026-01-01T00:00:00"):
        RunLock(tmp_path / "b", run_name="exp").acquire()


def test_a_lock_from_another_host_expires_when_its_heartbeat_stops(tmp_path, capsys):
    write_lock(tmp_path / "run", pid=1, host="old-colab-vm")
    ten_minutes_ago = time.time() - 600
    os.utime(tmp_path / "run" / LOCK_NAME, (ten_minutes_ago, ten_minutes_ago))
    with RunLock(tmp_path / "run"):
        pass
    assert "pid 1 on old-colab-vm since 2026-01-01T00:00:00, not touched for over 5 minutes" in capsys.readouterr().out


def test_the_holder_touches_its_lock_while_it_runs(tmp_path, monkeypatch):
    from trainbook import lock

    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    with RunLock(tmp_path / "run"):
        path = tmp_path / "run" / LOCK_NAME
        old = time.time() - 600
        os.utime(path, (old, old))
        deadline = time.time() + 30
        while path.stat().st_mtime < old + 1 and time.time() < deadline:
            time.sleep(0.05)
        assert path.stat().st_mtime > old + 1


def test_the_lock_is_reentrant_in_one_process_and_released_by_the_last_holder(tmp_path):
    outer = RunLock(tmp_path / "run")
    with outer:
        with RunLock(tmp_path / "run"):  # the CLI holds it, then the Trainer takes it again
            pass
        assert (tmp_path / "run" / LOCK_NAME).exists()
    assert not (tmp_path / "run").exists()  # nothing was written: the folder it created is gone too


def test_the_trainer_releases_the_lock_when_training_fails(tmp_path):
    data = tb.load_task_data("vision-cls", limit=16)
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), epochs=1, batch_size=8, wandb_mode="disabled",
                            progress_bar=False, early_stopping_metric="val_accuracy", save_every_n_steps=1)

    class Boom(Exception):
        pass

    def stop(row):
        raise Boom()

    with pytest.raises(Boom):
        tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(
            data.train, data.val, on_epoch_end=stop)
    assert not (cfg.run_dir / LOCK_NAME).exists()


def test_under_ddp_only_rank_zero_takes_the_lock(tmp_path, monkeypatch):
    cfg = tb.TrainingConfig(output_dir=str(tmp_path), strategy="ddp")
    for rank, expected in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("LOCAL_RANK", rank)
        with run_lock(cfg):
            assert (cfg.run_dir / LOCK_NAME).exists() is expected
