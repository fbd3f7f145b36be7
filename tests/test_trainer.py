import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

import trainbook as tb
from trainbook.config import ConfigError
from trainbook.engine import checkpoint as ckpt
from trainbook.engine.loop import NonFiniteLossError
from trainbook.engine.optim import lr_multiplier, param_groups
from trainbook.tasks import TaskSpec

WORKER = Path(__file__).parent / "workers" / "resume_worker.py"
LM32 = TaskSpec.preset("lm").replace(max_seq_len=32)


def cfg_for(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), epochs=2, batch_size=8, learning_rate=3e-3, wandb_mode="disabled",
                progress_bar=False, resume="never")
    return tb.TrainingConfig(**{**base, **kw})


def variable_length_lm(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 32, (n,), generator=g)
    return [{"input_ids": torch.randint(0, 256, (int(k),), generator=g)} for k in lengths]


# --- the acceptance cases ---

def test_validation_loss_improves_on_builtin_data(tmp_path):
    data = tb.load_task_data("lm", limit=400, spec=LM32)
    model = tb.build_model(data.spec, "tiny")
    result = tb.Trainer(model, training_config=cfg_for(tmp_path, epochs=3), task_spec=data.spec).train(data.train, data.val)
    first, last = result.history[0]["val_loss"], result.history[-1]["val_loss"]
    assert math.isfinite(last) and last < first < math.log(256)
    saved = json.loads((Path(result.run_dir) / "results.json").read_text())
    assert saved["history"][-1]["val_loss"] == last and saved["total_steps"] == result.total_steps == 3 * 50


def _train_weights(tmp_path, examples, bs, accum, optimizer):
    model = tb.build_model(LM32, "tiny", dropout=0.0, seed=0)
    cfg = cfg_for(tmp_path, run_name=f"{optimizer}-bs{bs}", batch_size=bs, gradient_accumulation_steps=accum,
                  epochs=2, optimizer=optimizer)
    result = tb.Trainer(model, training_config=cfg, task_spec=LM32).train(examples)
    assert result.total_steps == 4
    return model.state_dict(), [h["train_loss"] for h in result.history]


def test_accumulation_equals_the_big_batch(tmp_path):
    """4 x 8 with accumulation == one batch of 32, on variable-length text (padding differs)."""
    examples = variable_length_lm(64)
    big, big_loss = _train_weights(tmp_path, examples, 32, 1, "sgd")
    acc, acc_loss = _train_weights(tmp_path, examples, 8, 4, "sgd")
    for name in big:
        assert torch.allclose(big[name], acc[name], atol=1e-6, rtol=0), name
    assert acc_loss == pytest.approx(big_loss, abs=1e-6)


def test_accumulation_with_adamw_matches_up_to_adam_amplification(tmp_path):
    """AdamW divides by sqrt(v): an element whose gradient is ~0 turns float-rounding noise into an
    update of order lr, so a few elements differ by ~1e-5 while the losses agree to 1e-6."""
    examples = variable_length_lm(64)
    big, big_loss = _train_weights(tmp_path, examples, 32, 1, "adamw")
    acc, acc_loss = _train_weights(tmp_path, examples, 8, 4, "adamw")
    assert acc_loss == pytest.approx(big_loss, abs=1e-6)
    for name in big:
        assert torch.allclose(big[name], acc[name], atol=1e-4, rtol=0), name


def test_trainer_matches_a_hand_written_loop_bit_for_bit(tmp_path):
    """No extras (constant lr, no clipping, no dropout): the Trainer is a plain AdamW loop."""
    data = tb.load_task_data("lm", limit=64, spec=LM32)
    cfg = cfg_for(tmp_path, lr_schedule="constant", max_grad_norm=0.0, weight_decay=0.0, epochs=2, seed=3)
    model = tb.build_model(LM32, "tiny", dropout=0.0, seed=0)
    tb.Trainer(model, training_config=cfg, task_spec=LM32).train(data.train)

    ref = tb.build_model(LM32, "tiny", dropout=0.0, seed=0)
    opt = torch.optim.AdamW(param_groups(ref, 0.0), lr=cfg.learning_rate, betas=(0.9, 0.95), eps=1e-8)
    collate = tb.collator_for(LM32)
    for epoch in range(2):
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(3 + epoch)).tolist()
        for i in range(0, len(order), 8):
            batch = collate([data.train[j] for j in order[i:i + 8]])
            logits = ref(batch["input_ids"])
            targets = batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 256), targets.reshape(-1),
                                                     ignore_index=-100, reduction="sum") / (targets != -100).sum()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    for name, value in ref.state_dict().items():
        assert torch.equal(value, model.state_dict()[name]), name


def test_nan_at_step_k_stops_there_and_keeps_a_finite_checkpoint(tmp_path):
    class PoisonAt(torch.nn.Module):
        def __init__(self, inner, k):
            super().__init__()
            self.inner, self.k, self.calls = inner, k, 0

        def forward(self, input_ids, attention_mask=None):
            out = self.inner(input_ids)
            self.calls += self.training
            return out * float("nan") if self.training and self.calls == self.k else out

    data = tb.load_task_data("lm", limit=64, spec=LM32)
    model = PoisonAt(tb.build_model(LM32, "tiny"), k=5)
    cfg = cfg_for(tmp_path, save_every_n_steps=1, keep_last=3)
    with pytest.raises(NonFiniteLossError, match=r"(?s)non-finite loss \(nan\) at optimizer step 5.*step-00000004\.pt"):
        tb.Trainer(model, training_config=cfg, task_spec=LM32).train(data.train, data.val)
    files = [p.name for p in ckpt.list_step_checkpoints(cfg.resolved_checkpoint_dir)]
    assert files == ["step-00000002.pt", "step-00000003.pt", "step-00000004.pt"]
    state = ckpt.load_checkpoint(cfg.resolved_checkpoint_dir / files[-1])
    assert state["state"]["step"] == 4
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def _run_worker(out, *args):
    return subprocess.run([sys.executable, str(WORKER), str(out), *args], capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    proc = _run_worker(out)
    assert proc.returncode == 0, proc.stderr
    return torch.load(out / "final.pt", weights_only=True)


@pytest.mark.parametrize("case,args", [
    ("inside-accumulation-window", ["--kill-train-fetch", "29"]),   # 2nd micro-batch of step 4, epoch 1
    ("mid-epoch", ["--kill-train-fetch", "65"]),                    # start of step 9, epoch 2
    ("epoch-boundary", ["--kill-val-fetch", "1"]),                  # during epoch 1's evaluation
    ("during-checkpoint-write", ["--kill-save", "5"]),              # half-written step-5 checkpoint
])
def test_sigkill_then_resume_equals_uninterrupted_run(case, args, tmp_path, reference_run):
    killed = _run_worker(tmp_path, *args)
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / "final.pt").exists()
    ckpt_dir = tmp_path / "run" / "checkpoints"
    if case == "during-checkpoint-write":
        assert [p.name for p in ckpt.list_step_checkpoints(ckpt_dir)] == ["step-00000003.pt", "step-00000004.pt"]
        assert ckpt.load_checkpoint(ckpt_dir / "step-00000004.pt")["state"]["step"] == 4
        assert list(ckpt_dir.glob(".step-00000005.pt.tmp-*"))  # the partial write never got a real name
    resumed = _run_worker(tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at step" in resumed.stdout
    _assert_same_run(torch.load(tmp_path / "final.pt", weights_only=True), reference_run)
    assert not list(ckpt_dir.glob(".*.tmp-*"))  # cleaned on resume


def _assert_same_run(final, reference):
    for name, value in reference["state_dict"].items():
        assert torch.equal(value, final["state_dict"][name]), name
    timings = ("samples_per_s", "tokens_per_s", "epoch_time_s", "data_wait_s")
    strip = lambda h: [{k: v for k, v in row.items() if k not in timings} for row in h]  # noqa: E731
    assert strip(final["history"]) == strip(reference["history"])


def test_two_data_workers_give_the_weights_of_a_run_without_workers(tmp_path, reference_run):
    """The worker's data is augmented from torch, numpy and python RNGs and the model has dropout."""
    proc = _run_worker(tmp_path, "--num-workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "num_workers 2" in proc.stdout
    _assert_same_run(torch.load(tmp_path / "final.pt", weights_only=True), reference_run)


@pytest.mark.parametrize("case,kill_batch,resume_step", [
    ("inside-accumulation-window", 8, 3),   # 2nd micro-batch of step 4, epoch 1
    ("mid-epoch", 17, 8),                   # 1st micro-batch of step 9, epoch 2
])
def test_sigkill_with_two_data_workers_then_resume_equals_the_run_without_workers(case, kill_batch, resume_step,
                                                                                  tmp_path, reference_run):
    # the training process is killed as the micro-batch reaches the loop; its workers had fetched ahead
    killed = _run_worker(tmp_path, "--num-workers", "2", "--kill-at-batch", str(kill_batch))
    assert killed.returncode == -9, killed.stderr
    assert not (tmp_path / "final.pt").exists()
    resumed = _run_worker(tmp_path, "--num-workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed at step {resume_step} from" in resumed.stdout
    _assert_same_run(torch.load(tmp_path / "final.pt", weights_only=True), reference_run)


# --- checkpoints ---

def test_corrupt_newest_checkpoint_falls_back_with_a_warning(tmp_path):
    data = tb.load_task_data("vision-cls", limit=32)
    cfg = cfg_for(tmp_path, save_every_n_steps=1, keep_last=3, epochs=1)
    tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train)
    newest = ckpt.list_step_checkpoints(cfg.resolved_checkpoint_dir)[-1]
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match=rf"checkpoint .*{newest.name} is unreadable.*falling back"):
        state, path = ckpt.load_latest(cfg.resolved_checkpoint_dir)
    assert path.name == "step-00000003.pt" and state["state"]["step"] == 3


def test_retention_keeps_last_n_plus_best(tmp_path):
    data = tb.load_task_data("vision-cls", limit=64)
    cfg = cfg_for(tmp_path, epochs=4, keep_last=2)
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    names = sorted(p.name for p in cfg.resolved_checkpoint_dir.iterdir())
    assert names == ["best.pt", "step-00000024.pt", "step-00000032.pt"]
    best = ckpt.load_checkpoint(result.best_checkpoint)
    assert best["state"]["best_epoch"] == result.best_epoch
    assert result.last_checkpoint.endswith("step-00000032.pt")


def test_finished_run_is_loaded_not_retrained(tmp_path, capsys):
    data = tb.load_task_data("vision-cls", limit=32)
    cfg = cfg_for(tmp_path, epochs=1, resume="auto")
    first = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    again = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    assert "run already finished at step 4" in capsys.readouterr().out
    assert again.history == first.history and again.resumed_from.endswith("step-00000004.pt")


def test_resume_with_different_settings_is_refused(tmp_path):
    data = tb.load_task_data("vision-cls", limit=32)
    cfg = cfg_for(tmp_path, epochs=1, resume="auto")
    tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train)
    changed = tb.TrainingConfigBuilder.from_config(cfg).with_training(learning_rate=1e-4, epochs=2).build()
    with pytest.raises(ConfigError, match=r"(?s)learning_rate: checkpoint 0\.003, now 0\.0001.*resume='never'"):
        tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=changed, task_spec=data.spec).train(data.train)


def test_more_epochs_continue_a_finished_run(tmp_path):
    data = tb.load_task_data("vision-cls", limit=32)
    cfg = cfg_for(tmp_path, epochs=1, resume="auto")
    tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train)
    longer = tb.TrainingConfigBuilder.from_config(cfg).with_training(epochs=3).build()
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=longer, task_spec=data.spec).train(data.train)
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and result.total_steps == 12


# --- schedule, optimizer, early stopping, precision, compile ---

def test_lr_schedules():
    cfg = tb.TrainingConfig(warmup_steps=10, min_lr_ratio=0.1)
    assert lr_multiplier(0, 110, cfg) == pytest.approx(0.1)
    assert lr_multiplier(9, 110, cfg) == pytest.approx(1.0)
    assert lr_multiplier(10, 110, cfg) == pytest.approx(1.0)
    assert lr_multiplier(109, 110, cfg) == pytest.approx(0.1)
    assert lr_multiplier(59, 110, cfg) == pytest.approx(0.55, abs=0.01)
    linear = tb.TrainingConfig(lr_schedule="linear", min_lr_ratio=0.0)
    assert [lr_multiplier(s, 11, linear) for s in (0, 5, 10)] == pytest.approx([1.0, 0.5, 0.0])
    assert lr_multiplier(7, 10, tb.TrainingConfig(lr_schedule="constant", warmup_ratio=0.5)) == 1.0


def test_no_weight_decay_on_biases_norms_and_embeddings():
    model = tb.build_model(TaskSpec.preset("lm"), "tiny")
    decay, plain = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert decayed and all(n.endswith("weight") and "ln" not in n and "tok" not in n and "pos" not in n for n in decayed)
    assert "transformer.tok.weight" in {names[id(p)] for p in plain["params"]}
    assert plain["weight_decay"] == 0.0


def test_early_stopping_stops_after_patience(tmp_path):
    data = tb.load_task_data("vision-cls", limit=64)
    cfg = cfg_for(tmp_path, epochs=10, early_stopping_patience=2, early_stopping_min_delta=100.0)
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


def test_early_stopping_on_accuracy_maximises(tmp_path):
    data = tb.load_task_data("vision-cls", limit=128)
    cfg = cfg_for(tmp_path, epochs=3, early_stopping_metric="val_accuracy", learning_rate=1e-2)
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    assert result.best_metric == max(h["val_accuracy"] for h in result.history)


def test_early_stopping_needs_validation_data(tmp_path):
    data = tb.load_task_data("vision-cls", limit=16)
    cfg = cfg_for(tmp_path, early_stopping_patience=1)
    with pytest.raises(ConfigError, match="early_stopping_patience=1 needs val_data"):
        tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train)


def test_max_steps_stops_training(tmp_path):
    data = tb.load_task_data("vision-cls", limit=64)
    cfg = cfg_for(tmp_path, epochs=5, max_steps=3)
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train)
    assert result.total_steps == 3 and len(result.history) == 1


def test_bf16_autocast_on_cpu_trains(tmp_path):
    data = tb.load_task_data("lm", limit=64, spec=LM32)
    cfg = cfg_for(tmp_path, precision="bf16", epochs=1)
    result = tb.Trainer(tb.build_model(LM32, "tiny"), training_config=cfg, task_spec=LM32).train(data.train, data.val)
    assert math.isfinite(result.history[-1]["val_loss"])


def test_fp16_without_cuda_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present: fp16 is valid here")
    data = tb.load_task_data("vision-cls", limit=16)
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg_for(tmp_path, precision="fp16"),
                   task_spec=data.spec).train(data.train)


def test_compile_failure_warns_once_and_falls_back(tmp_path, monkeypatch):
    def broken_compile(model, **kwargs):
        def run(*a, **k):
            raise RuntimeError("no compiler here")
        return run
    monkeypatch.setattr(torch, "compile", broken_compile)
    data = tb.load_task_data("vision-cls", limit=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg_for(tmp_path, compile=True),
                            task_spec=data.spec).train(data.train, data.val)
    messages = [str(w.message) for w in caught if "torch.compile failed" in str(w.message)]
    assert messages == ["torch.compile failed (RuntimeError: no compiler here); running the model eagerly"]
    assert result.total_steps == 8


def test_metrics_jsonl_has_one_row_per_optimizer_step(tmp_path):
    data = tb.load_task_data("vision-cls", limit=64)
    cfg = cfg_for(tmp_path, batch_size=4, gradient_accumulation_steps=4, epochs=2)
    result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(data.train, data.val)
    rows = tb.read_metrics(result.run_dir)
    steps = [r["step"] for r in rows if "train/loss" in r]
    assert steps == list(range(1, 9)) and result.total_steps == 8
    assert sum("epoch/val_loss" in r for r in rows) == 2


def test_ddp_guardrail_outside_torchrun(tmp_path, monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    data = tb.load_task_data("vision-cls", limit=16)
    with pytest.raises(RuntimeError, match=r"strategy='ddp' needs the torchrun launcher.*torchrun --nproc_per_node 2 -m trainbook train --config run.json"):
        tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg_for(tmp_path, strategy="ddp"),
                   task_spec=data.spec).train(data.train)


def test_history_records_how_long_the_loop_waited_for_data(tmp_path):
    class Slow(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            time.sleep(0.01)
            return {"pixel_values": torch.zeros(1, 8, 8), "labels": i % 10}

    spec = TaskSpec.preset("vision-cls")
    cfg = cfg_for(tmp_path, epochs=1, num_workers=0)
    row = tb.Trainer(tb.build_model(spec, "tiny"), training_config=cfg, task_spec=spec).train(Slow()).history[0]
    assert 16 * 0.01 <= row["data_wait_s"] <= row["epoch_time_s"]


def test_trainer_requires_a_task_spec():
    with pytest.raises(TypeError, match=r"Trainer needs task_spec="):
        tb.Trainer(torch.nn.Linear(2, 2))


def test_predecessor_trainer_call_form(tmp_path):
    data = tb.load_task_data("vision-cls", limit=32)
    model = tb.build_model(data.spec, "tiny")
    trainer = tb.Trainer(model=model, config=model.config, training_config=cfg_for(tmp_path, epochs=1), task_spec=data.spec)
    result = trainer.train(train_data=data.train, val_data=data.val)
    assert os.path.isdir(result.run_dir) and result.total_steps == 4
