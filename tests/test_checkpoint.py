"""Checkpoints on a disk that fills (trainbook.engine.checkpoint): a clear CheckpointWriteError, no
temp file left, the previous checkpoint intact and loadable, and an exact resume on a bigger disk.

The disk is a real size-limited tmpfs when this process may mount one (root); the fault-injected
writer tests run everywhere and cover torch's own failure (RuntimeError with the OSError inside).
"""

import contextlib
import errno
import io
import os
import re
import subprocess

import pytest
import torch

import trainbook as tb
from trainbook.engine import checkpoint as ckpt
from trainbook.engine.checkpoint import CheckpointError, CheckpointWriteError

DATA = tb.load_task_data("vision-cls", limit=32)


def config(tmp_path, ckpt_dir, **kw):
    return tb.TrainingConfig(output_dir=str(tmp_path / "runs"), run_name="r", checkpoint_dir=str(ckpt_dir), epochs=2,
                             batch_size=8, learning_rate=3e-3, wandb_mode="disabled", progress_bar=False,
                             save_every_n_steps=1, keep_last=2, resume="never", **kw)


def train(cfg):
    model = tb.build_model(DATA.spec, "tiny", seed=0)
    result = tb.Trainer(model, training_config=cfg, task_spec=DATA.spec).train(DATA.train, DATA.val)
    return model, result


@contextlib.contextmanager
def small_disk(path, size_bytes):
    """A tmpfs of size_bytes mounted at path (skips the test where mounting is not allowed)."""
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_disk_that_fills_stops_with_a_clear_error_and_the_run_resumes_exactly_on_a_bigger_disk(tmp_path):
    reference, reference_result = train(config(tmp_path / "reference", tmp_path / "reference-ckpt"))
    size = ckpt.list_step_checkpoints(tmp_path / "reference-ckpt")[-1].stat().st_size
    disk_size = (int(size * 2.5) // 4096 + 1) * 4096  # room for two checkpoints, not three

    with small_disk(tmp_path / "small", disk_size) as disk:
        cfg = config(tmp_path, disk)
        with pytest.raises(CheckpointWriteError) as error:
            train(cfg)
        message = str(error.value)
        assert re.fullmatch(
            rf"no space left on tmpfs \({re.escape(str(disk))}\) writing {re.escape(str(disk))}/step-00000003\.pt "
            rf"\(needs ~[\d.]+ MB, [\d.]+ MB free\); the previous checkpoint {re.escape(str(disk))}/step-00000002\.pt "
            r"is intact\. HINT: free some space .* or set checkpoint_dir to a bigger disk, then run again: it resumes "
            r"from that checkpoint", message), message
        assert sorted(p.name for p in disk.iterdir()) == ["step-00000001.pt", "step-00000002.pt"]  # no temp file
        assert ckpt.load_checkpoint(disk / "step-00000002.pt")["state"]["step"] == 2

        subprocess.run(["mount", "-o", f"remount,size={disk_size * 8}", str(disk)], check=True)  # a bigger disk
        resumed, result = train(tb.TrainingConfigBuilder.from_config(cfg).with_checkpointing(resume="auto").build())
    assert result.resumed_from.endswith("step-00000002.pt") and result.total_steps == reference_result.total_steps
    for name, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_enospc_inside_torch_save_on_a_real_small_disk_removes_the_temp_file(tmp_path, monkeypatch):
    with small_disk(tmp_path / "small", 64 * 1024) as disk:
        (disk / "step-00000001.pt").write_bytes(b"previous")
        monkeypatch.setattr(ckpt, "free_bytes", lambda folder: 10**12)  # the pre-check is fooled: the write fills
        with pytest.raises(CheckpointWriteError, match=r"no space left on tmpfs .* writing .*step-00000002\.pt "
                                                       r"\(needs ~1\.0 MB, .* the previous checkpoint .*step-00000001\.pt is intact"):
            ckpt.atomic_save({"w": torch.zeros(2**18)}, disk / "step-00000002.pt")
        assert sorted(p.name for p in disk.iterdir()) == ["step-00000001.pt"]


class FillingFile(io.FileIO):
    """A file on a disk with `room` bytes left: writes past it fail with ENOSPC, like a full filesystem."""

    room = 0

    def write(self, data):
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_a_fault_injected_full_disk_gives_the_same_error_without_root(tmp_path, monkeypatch):
    ckpt.atomic_save({"w": torch.zeros(1000)}, tmp_path / "step-00000001.pt")
    FillingFile.room = 5000
    monkeypatch.setattr(ckpt, "open_for_write", lambda path: FillingFile(path, "wb"))
    with pytest.raises(CheckpointWriteError, match=r"no space left on .* writing .*step-00000002\.pt \(needs ~0\.4 MB,"
                                                   r" .*; the previous checkpoint .*step-00000001\.pt is intact") as error:
        ckpt.atomic_save({"w": torch.zeros(100_000)}, tmp_path / "step-00000002.pt")
    assert isinstance(error.value.__cause__, RuntimeError)  # torch's writer failure, translated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001.pt"]
    assert torch.equal(ckpt.torch.load(tmp_path / "step-00000001.pt")["w"], torch.zeros(1000))


def test_too_little_free_space_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "free_bytes", lambda folder: 1000)
    with pytest.raises(CheckpointWriteError, match=r"needs ~0\.4 MB, 0\.0 MB free\); no earlier checkpoint was written"):
        ckpt.atomic_save({"w": torch.zeros(100_000)}, tmp_path / "best.pt")
    assert list(tmp_path.iterdir()) == []


def test_another_write_failure_names_the_error_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt.atomic_save({"w": torch.ones(3)}, tmp_path / "best.pt")

    def broken(path):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(ckpt, "open_for_write", broken)
    with pytest.raises(CheckpointWriteError, match=r"writing .*best\.pt failed \(OSError: \[Errno 5\] Input/output "
                                                   r"error\); .* the previous checkpoint .*best\.pt is intact"):
        ckpt.atomic_save({"w": torch.zeros(3)}, tmp_path / "best.pt")
    assert torch.equal(torch.load(tmp_path / "best.pt")["w"], torch.ones(3))


class NotATensor:
    pass


def test_a_checkpoint_holding_other_objects_is_refused_without_torchs_weights_only_false_advice(tmp_path):
    torch.save({"model": NotATensor()}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError) as error:
        ckpt.load_checkpoint(tmp_path / "odd.pt")
    assert "holds objects that are not tensors or plain values, so it was not loaded" in str(error.value)
    assert "weights_only=False" not in str(error.value) and error.value.__cause__ is None


# --- load_weights: the reported checkpoint, into a model ---

def test_load_weights_puts_best_pt_into_a_model_and_its_bundle_holds_exactly_those_weights(tmp_path):
    from safetensors.torch import load_file

    data = tb.load_task_data("vision-cls", limit=24)
    cfg = tb.TrainingConfig(epochs=3, batch_size=8, learning_rate=3e-3, output_dir=str(tmp_path), run_name="r",
                            wandb_mode="disabled", progress_bar=False,
                            early_stopping_mode="max")  # "best" = highest val_loss: the first epoch, not the last
    model = tb.build_model(data.spec, "tiny")
    result = tb.Trainer(model, training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    best = torch.load(result.best_checkpoint, weights_only=True)["model"]
    assert result.best_epoch == 1 and not all(torch.equal(v, best[k]) for k, v in model.state_dict().items())

    state = tb.load_weights(model, result.best_checkpoint)
    assert state["best_epoch"] == 1 and all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    path = tb.export_bundle(model, cfg, data.spec, tmp_path / "bundle",
                            metrics={"best_metric": result.best_metric, "best_epoch": result.best_epoch})
    stored = load_file(str(path / "model.safetensors"))
    assert stored.keys() == best.keys() and all(torch.equal(stored[k], best[k]) for k in best)


def test_load_weights_names_a_checkpoint_that_does_not_fit_the_model(tmp_path):
    data = tb.load_task_data("vision-cls", limit=24)
    cfg = tb.TrainingConfig(epochs=1, batch_size=8, output_dir=str(tmp_path), run_name="r", wandb_mode="disabled",
                            progress_bar=False)
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(
        data.train, data.val)
    with pytest.raises(CheckpointError, match=r"does not fit VisionCNN: .*HINT: build the model with the same source"):
        tb.load_weights(tb.build_model(data.spec, "small"), result.best_checkpoint)
