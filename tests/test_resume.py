"""Run folders and resuming: the safe re-run rule, resuming from persist_dir, loaded runs keeping their record."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import trainbook as tb
from trainbook.config import ConfigError
from trainbook.engine import checkpoint as ckpt
from trainbook.engine.resume import choose_run_folder, newest_checkpoint, recorded_config

WORKER = Path(__file__).parent / "workers" / "resume_worker.py"


@pytest.fixture(scope="module")
def vision():
    return tb.load_task_data("vision-cls", limit=32)


def cfg_for(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "runs"), epochs=1, batch_size=8, learning_rate=3e-3, wandb_mode="disabled",
                progress_bar=False)
    return tb.TrainingConfig(**{**base, **kw})


def train(cfg, data):
    return tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train,
                                                                                                       data.val)


# --- the safe re-run rule ---

def test_a_new_run_name_and_the_same_settings_keep_their_folder(tmp_path, capsys):
    cfg = cfg_for(tmp_path)
    assert choose_run_folder(cfg).run_dir == cfg.run_dir
    cfg.save(cfg.run_dir / "training_config.json")
    longer = tb.TrainingConfigBuilder.from_config(cfg).with_training(epochs=5).build()  # resumable change
    assert choose_run_folder(longer).run_name == "run"
    assert capsys.readouterr().out == ""


def test_changed_settings_get_the_next_numbered_folder_and_one_line_naming_the_change(tmp_path, capsys):
    cfg = cfg_for(tmp_path)
    cfg.save(cfg.run_dir / "training_config.json")
    changed = tb.TrainingConfigBuilder.from_config(cfg).with_training(learning_rate=1e-3).build()
    chosen = choose_run_folder(changed)
    assert chosen.run_name == "run-2" and chosen.learning_rate == 1e-3 and chosen.resume == "auto"
    assert capsys.readouterr().out == (f"run 'run' in {cfg.run_dir} was trained with other settings "
                                       f"(learning_rate 0.003 -> 0.001); this run is 'run-2' in {chosen.run_dir}\n")
    chosen.save(chosen.run_dir / "training_config.json")
    # the same changed form again (say after a disconnect) continues run-2; a third setting gets run-3
    assert choose_run_folder(changed).run_name == "run-2"
    assert "continuing 'run-2'" in capsys.readouterr().out
    third = tb.TrainingConfigBuilder.from_config(cfg).with_training(batch_size=4).build()
    assert choose_run_folder(third).run_name == "run-3"


def test_resume_never_starts_a_new_numbered_folder_even_with_the_same_settings(tmp_path, capsys):
    cfg = cfg_for(tmp_path, resume="never")
    first = choose_run_folder(cfg)
    assert (first.run_name, first.resume) == ("run", "auto")
    first.save(first.run_dir / "training_config.json")
    assert choose_run_folder(cfg).run_name == "run-2"
    assert capsys.readouterr().out == (f"run 'run' in {cfg.run_dir} is kept (resume='never'); "
                                       f"this run is 'run-2' in {tmp_path / 'runs' / 'run-2'}\n")


def test_a_folder_without_config_or_checkpoints_is_free_and_an_unreadable_config_is_not(tmp_path, capsys):
    cfg = cfg_for(tmp_path)
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / "training.ipynb").write_text("{}")   # what `make run` leaves before the first run
    assert choose_run_folder(cfg).run_name == "run"
    (cfg.run_dir / "training_config.json").write_text('{"learning_rat": 0.1}')
    assert recorded_config(cfg)[1].endswith("unknown field 'learning_rat' (did you mean 'learning_rate'?)")
    assert choose_run_folder(cfg).run_name == "run-2"
    assert "is not resumable (" in capsys.readouterr().out


def test_a_run_found_only_in_persist_dir_counts(tmp_path):
    cfg = cfg_for(tmp_path, persist_dir=str(tmp_path / "drive"))
    cfg.save(tmp_path / "drive" / "run" / "training_config.json")   # a fresh runtime: nothing local
    changed = tb.TrainingConfigBuilder.from_config(cfg).with_training(learning_rate=1e-3).build()
    assert choose_run_folder(cfg).run_name == "run"
    assert choose_run_folder(changed).run_name == "run-2"


def test_new_run_in_the_trainer_keeps_the_first_runs_config_and_refuse_stays_the_default(tmp_path, vision, capsys):
    first = train(cfg_for(tmp_path), vision)
    recorded = (Path(first.run_dir) / "training_config.json").read_bytes()
    changed = cfg_for(tmp_path, learning_rate=1e-3)
    with pytest.raises(ConfigError, match=r"(?s)learning_rate: checkpoint 0\.003, now 0\.001.*on_config_change='new_run'"):
        train(changed, vision)
    second = train(cfg_for(tmp_path, learning_rate=1e-3, on_config_change="new_run"), vision)
    assert second.run_dir == str(tmp_path / "runs" / "run-2") and second.resumed_from is None
    assert json.loads((Path(second.run_dir) / "training_config.json").read_text())["learning_rate"] == 1e-3
    assert (Path(first.run_dir) / "training_config.json").read_bytes() == recorded
    assert "was trained with other settings (learning_rate 0.003 -> 0.001); this run is 'run-2'" in capsys.readouterr().out


# --- resuming from persist_dir ---

def test_newest_checkpoint_looks_locally_and_in_persist_dir(tmp_path):
    cfg = cfg_for(tmp_path, persist_dir=str(tmp_path / "drive"))
    local, persisted = cfg.resolved_checkpoint_dir, tmp_path / "drive" / "run" / "checkpoints"
    for folder, step in ((local, 3), (persisted, 3), (persisted, 5)):
        payload = dict.fromkeys(ckpt.CHECKPOINT_KEYS, {}) | {"where": str(folder), "step": step}  # a checkpoint's keys
        ckpt.atomic_save(payload, ckpt.step_path(folder, step))
    payload, path = newest_checkpoint(cfg)
    assert path == ckpt.step_path(persisted, 5) and payload["step"] == 5
    ckpt.step_path(persisted, 5).write_bytes(b"PK\x03\x04 torn")
    with pytest.warns(RuntimeWarning, match="step-00000005.pt is unreadable"):
        payload, path = newest_checkpoint(cfg)
    assert path == ckpt.step_path(local, 3) and payload["where"] == str(local)   # a tie: the local copy


def test_a_fresh_runtime_resumes_from_persist_dir_and_takes_best_and_metrics_back(tmp_path, vision):
    drive = tmp_path / "drive"
    cfg = cfg_for(tmp_path, persist_dir=str(drive), epochs=2)
    first = train(cfg, vision)
    assert first.persist["dir"] == str(drive / "run") and first.persist["files"] >= 5
    assert sorted(p.name for p in (drive / "run" / "checkpoints").iterdir()) == \
        ["best.pt", "step-00000004.pt", "step-00000008.pt"]
    assert (drive / "run" / "results.json").read_text() == (Path(first.run_dir) / "results.json").read_text()
    shutil.rmtree(tmp_path / "runs")   # the runtime reset: the local disk is empty
    longer = train(cfg_for(tmp_path, persist_dir=str(drive), epochs=3, output_dir=str(tmp_path / "fresh")), vision)
    assert longer.resumed_from == str(drive / "run" / "checkpoints" / "step-00000008.pt")
    assert [h["epoch"] for h in longer.history] == [1, 2, 3] and longer.history[:2] == first.history
    rows = [json.loads(line) for line in (Path(longer.run_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train/loss" in r] == list(range(1, 13))   # steps 1-8 came back from Drive
    assert Path(longer.best_checkpoint).is_file() and Path(longer.best_checkpoint).parent.parent == Path(longer.run_dir)


def test_a_loaded_run_reports_what_the_first_run_recorded(tmp_path, vision, capsys):
    cfg = cfg_for(tmp_path)
    first = train(cfg, vision)
    results = json.loads((Path(first.run_dir) / "results.json").read_text())
    results["tracking"]["wandb_dir"] = "/runs/run/wandb/offline-run-1"   # as an offline W&B run records it
    (Path(first.run_dir) / "results.json").write_text(json.dumps(results))
    again = train(cfg, vision)
    assert "run already finished at step 4" in capsys.readouterr().out
    assert again.wall_time_s == first.wall_time_s and again.tracking["wandb_dir"] == "/runs/run/wandb/offline-run-1"
    assert again.history == first.history


def test_after_a_reset_a_finished_run_loads_from_persist_dir_with_its_offline_wandb_folder(tmp_path, vision,
                                                                                          monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")   # nothing may reach the network
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")
    cfg = cfg_for(tmp_path, persist_dir=str(tmp_path / "drive"), wandb_mode="offline")
    first = train(cfg, vision)
    wandb_dir = Path(first.tracking["wandb_dir"])
    regular = lambda: {p.relative_to(wandb_dir): p.read_bytes() for p in wandb_dir.rglob("*")  # noqa: E731
                       if p.is_file() and not p.is_symlink()}   # W&B links its debug logs from ~/.cache
    files = regular()
    assert any(p.suffix == ".wandb" for p in files) and first.tracking["wandb_sync_command"]
    shutil.rmtree(tmp_path / "runs")   # a runtime reset
    again = train(cfg, vision)
    assert again.resumed_from == str(tmp_path / "drive" / "run" / "checkpoints" / "step-00000004.pt")
    assert again.wall_time_s == first.wall_time_s and again.tracking == first.tracking
    assert regular() == files   # what `wandb sync` uploads came back from persist_dir


# --- the acceptance run: SIGKILL after the first persisted checkpoint, local folder lost ---

def run_worker(out, *args):
    return subprocess.run([sys.executable, str(WORKER), str(out), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_killed_run_resumes_from_persist_dir_with_a_new_output_dir_bit_exactly(tmp_path):
    uninterrupted = run_worker(tmp_path / "a")
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    drive = tmp_path / "drive"
    killed = run_worker(tmp_path / "b", "--persist-dir", str(drive), "--kill-after-persisted", "1")
    assert killed.returncode == -9, killed.stderr
    persisted = drive / "run" / "checkpoints"
    steps = ckpt.list_step_checkpoints(persisted)
    assert len(steps) == 1, sorted(p.name for p in persisted.iterdir())
    assert list(persisted.glob(".step-*.pt.tmp-*")), "the second copy was not in flight when the process died"
    shutil.rmtree(tmp_path / "b")

    resumed = run_worker(tmp_path / "b-fresh", "--persist-dir", str(drive))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed at step {int(steps[0].stem[5:])} from {steps[0]}" in resumed.stdout
    a = torch.load(tmp_path / "a" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "b-fresh" / "final.pt", weights_only=True)
    assert b["resumed_from"] == str(steps[0]) and Path(b["resumed_from"]).is_relative_to(drive)
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    timing = ("_per_s", "_time_s", "_wait_s")   # wall-clock measurements differ between any two runs
    strip = lambda h: [{k: v for k, v in row.items() if not k.endswith(timing)} for row in h]  # noqa: E731
    assert strip(b["history"]) == strip(a["history"])
    assert not list(persisted.glob(".*.tmp-*"))   # the torn copy was cleaned when the run started again
