"""Persisting a run to persist_dir: atomic copies, a background thread, persisted retention, clear failures."""

import threading
from pathlib import Path

import pytest

import trainbook as tb
from trainbook import persist
from trainbook.config import ConfigError
from trainbook.persist import PersistError, Persister, copy_file, persist_folder


def make_persister(tmp_path, keep_last=2):
    run_dir = tmp_path / "runs" / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    return Persister(run_dir, run_dir / "checkpoints", tmp_path / "drive" / "run", keep_last=keep_last), run_dir


def step(run_dir, n, content=None) -> Path:
    path = run_dir / "checkpoints" / f"step-{n:08d}.pt"
    path.write_bytes(content or f"weights at step {n}".encode())
    return path


class GatedCopies:
    """Replaces persist.copy_file: each copy waits until the test opens the gate; records what the target held."""

    def __init__(self, monkeypatch):
        self.gate, self.started, self.names, self.seen = threading.Event(), threading.Event(), [], []
        self.real = persist.copy_file
        monkeypatch.setattr(persist, "copy_file", self)

    def __call__(self, src, dst):
        self.started.set()
        self.gate.wait(timeout=30)
        dst = Path(dst)
        self.seen.append(sorted(p.name for p in dst.parent.glob("step-*.pt")) if dst.parent.is_dir() else [])
        self.names.append(dst.name)
        return self.real(src, dst)


def test_copy_file_is_atomic_and_leaves_no_temp_file(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 3_000_000)
    assert copy_file(src, tmp_path / "deep" / "b.bin") == 3_000_000
    assert (tmp_path / "deep" / "b.bin").read_bytes() == src.read_bytes()
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["b.bin"]
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):
        copy_file(src, tmp_path / "file" / "c.bin")   # the destination's folder is a file


def test_files_keep_their_place_and_checkpoints_go_under_checkpoints(tmp_path):
    persister, run_dir = make_persister(tmp_path)
    (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')
    (run_dir / "bundle").mkdir()
    (run_dir / "bundle" / "model.safetensors").write_bytes(b"w")
    persister.copy(run_dir / "metrics.jsonl")
    persister.copy(step(run_dir, 1), checkpoint=True)
    persister.copy(run_dir / "bundle")
    persister.copy(run_dir / "missing.json", missing_ok=True)
    summary = persister.wait()
    target = tmp_path / "drive" / "run"
    assert (target / "metrics.jsonl").read_text() == '{"step": 1}\n'
    assert (target / "checkpoints" / "step-00000001.pt").read_bytes() == b"weights at step 1"
    assert (target / "bundle" / "model.safetensors").read_bytes() == b"w"
    assert summary["files"] == 3 and summary["bytes"] == len('{"step": 1}\n') + len(b"weights at step 1") + 1
    with pytest.raises(ValueError, match="outside the run folder"):
        persister.copy(tmp_path / "elsewhere.txt")


def test_training_does_not_wait_for_the_copy_and_the_run_waits_at_its_end(tmp_path, monkeypatch):
    copies = GatedCopies(monkeypatch)
    persister, run_dir = make_persister(tmp_path)
    persister.copy(step(run_dir, 1), checkpoint=True)   # returns while the copy is held at the gate
    assert copies.started.wait(timeout=30)
    assert not (tmp_path / "drive" / "run" / "checkpoints" / "step-00000001.pt").exists()
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (persister.wait(), done.set()))
    waiter.start()
    assert not done.wait(timeout=0.2)   # wait() blocks while a copy is in flight
    copies.gate.set()
    waiter.join(timeout=30)
    assert done.is_set() and (tmp_path / "drive" / "run" / "checkpoints" / "step-00000001.pt").is_file()


def test_an_older_persisted_checkpoint_is_deleted_only_after_a_newer_one_is_in_place(tmp_path, monkeypatch):
    copies = GatedCopies(monkeypatch)
    copies.gate.set()
    persister, run_dir = make_persister(tmp_path, keep_last=1)
    for n in range(1, 6):
        persister.copy(step(run_dir, n), checkpoint=True)
        persister.wait()
    assert copies.names == [f"step-{n:08d}.pt" for n in range(1, 6)]
    assert copies.seen == [[], *[[f"step-{n:08d}.pt"] for n in range(1, 5)]]   # never an empty folder mid-copy
    assert sorted(p.name for p in (tmp_path / "drive" / "run" / "checkpoints").iterdir()) == ["step-00000005.pt"]


def test_a_newer_checkpoint_replaces_a_queued_older_one_and_the_file_is_read_as_it_was_queued(tmp_path, monkeypatch):
    copies = GatedCopies(monkeypatch)
    persister, run_dir = make_persister(tmp_path)
    persister.copy(step(run_dir, 1), checkpoint=True)   # in flight, held at the gate
    assert copies.started.wait(timeout=30)
    persister.copy(step(run_dir, 2), checkpoint=True)   # queued ...
    (run_dir / "checkpoints" / "step-00000002.pt").unlink()   # ... local retention may delete it: fine
    persister.copy(step(run_dir, 3), checkpoint=True)   # ... and superseded before it started
    best = run_dir / "checkpoints" / "best.pt"
    best.write_bytes(b"best at 1")
    persister.copy(best, checkpoint=True)
    best.with_name("new").write_bytes(b"best at 3")
    best.with_name("new").replace(best)   # atomic_save renames over best.pt
    persister.copy(best, checkpoint=True)   # same destination, still queued: takes its place
    copies.gate.set()
    persister.wait()
    assert copies.names == ["step-00000001.pt", "step-00000003.pt", "best.pt"]
    assert (tmp_path / "drive" / "run" / "checkpoints" / "best.pt").read_bytes() == b"best at 3"


def test_a_failed_copy_is_warned_about_then_raised_at_the_end_with_a_hint(tmp_path):
    persister, run_dir = make_persister(tmp_path)
    (tmp_path / "drive" / "run").mkdir(parents=True)
    (tmp_path / "drive" / "run" / "checkpoints").write_text("a file where a folder should be")
    with pytest.warns(RuntimeWarning, match="could not persist .*step-00000001.pt .*the local copy is kept"):
        persister.copy(step(run_dir, 1), checkpoint=True)
        with pytest.raises(PersistError, match=r"(?s)1 file\(s\) of the run were not copied.*step-00000001.pt.*HINT"):
            persister.wait()
    assert step(run_dir, 1).is_file()


def test_persist_dir_on_an_unmounted_drive_in_colab_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(persist, "DRIVE_MOUNTPOINT", str(tmp_path / "content" / "drive"))
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    cfg = tb.TrainingConfig(output_dir=str(tmp_path / "runs"), persist_dir=str(tmp_path / "content/drive/MyDrive/tb"))
    with pytest.raises(ConfigError, match=r"(?s)is on Google Drive, which is not mounted.*HINT: run `from google"):
        Persister.for_config(cfg)
    assert not (tmp_path / "content").exists()   # nothing was written where the mount goes
    (tmp_path / "content" / "drive" / "MyDrive").mkdir(parents=True)
    assert Persister.for_config(cfg).target == tmp_path / "content/drive/MyDrive/tb/run"


def test_an_unwritable_persist_dir_is_a_config_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    cfg = tb.TrainingConfig(output_dir=str(tmp_path / "runs"), persist_dir=str(tmp_path / "file" / "drive"))
    with pytest.raises(ConfigError, match=r"(?s)persist_dir=.*file/drive.*cannot create.*HINT"):
        Persister.for_config(cfg)
    assert type(Persister.for_config(tb.TrainingConfig())).__name__ == "NullPersister"


def test_persist_folder_replaces_an_older_copy_of_a_folder_inside_the_run(tmp_path):
    cfg = tb.TrainingConfig(output_dir=str(tmp_path / "runs"), persist_dir=str(tmp_path / "drive"))
    bundle = cfg.run_dir / "bundle"
    bundle.mkdir(parents=True)
    (bundle / "old.txt").write_text("old")
    persist_folder(bundle, cfg)
    (bundle / "old.txt").unlink()
    (bundle / "model.safetensors").write_text("new")
    assert persist_folder(bundle, cfg) == tmp_path / "drive" / "run" / "bundle"
    assert [p.name for p in (tmp_path / "drive" / "run" / "bundle").iterdir()] == ["model.safetensors"]
    assert persist_folder(tmp_path / "elsewhere", cfg) is None


def test_a_new_persister_removes_partial_copies_left_by_a_killed_process(tmp_path):
    target = tmp_path / "drive" / "run"
    (target / "checkpoints").mkdir(parents=True)
    (target / "checkpoints" / ".step-00000002.pt.tmp-123").write_bytes(b"half")
    (target / ".bundle.tmp-123").mkdir()
    (target / ".bundle.tmp-123" / "model.safetensors").write_bytes(b"half")
    (target / "checkpoints" / "step-00000001.pt").write_bytes(b"whole")
    make_persister(tmp_path)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == \
        ["checkpoints", "checkpoints/step-00000001.pt"]
