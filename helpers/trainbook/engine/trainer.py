"""The Trainer: orchestration of one training run, readable top to bottom.

    result = Trainer(model, training_config=cfg, task_spec=spec).train(data.train, data.val)

Data order in epoch e is randperm(len(train), seed + e), so a resumed run skips exactly the
batches it has already seen. Batches come through a DataLoader (engine/loader.py) with
cfg.num_workers worker processes. Checkpoints hold everything needed for a bit-exact resume on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from pathlib import Path

import torch

from ..config import ConfigError, TrainingConfig
from ..env import check_strategy, resolve_device, resolve_num_workers
from ..lock import run_lock
from ..models.adapter import make_forward
from ..persist import NullPersister, Persister
from ..tasks import TaskSpec, collator_for
from ..tracking import MetricsTracker
from .checkpoint import (BEST_NAME, apply_retention, atomic_save, clean_temp_files, list_step_checkpoints,
                         load_checkpoint, rng_state, set_rng_state, step_path)
from .distributed import DistContext
from .loader import EVAL_EPOCH, BatchFeed, accumulation_windows, micro_batches
from .loop import (NonFiniteLossError, StepRunner, autocast_for, count_targets, loss_sum, resolve_precision,
                   to_device)
from .optim import build_optimizer, lr_multiplier, set_lr
from .result import TrainResult, progress_bar, silent, summary_line, tracker_info
from .resume import (check_resumable, choose_run_folder, is_persisted, newest_checkpoint, recorded_result,
                     restore_local_files)

# the run's own files copied to persist_dir when it ends (checkpoints are copied as they are written)
RUN_FILES = ("metrics.jsonl", "config.json", "summary.json", "results.json", "wandb")


@dataclasses.dataclass
class _State:
    epoch: int = 0               # current epoch (0-based)
    window: int = 0              # optimizer steps done inside the current epoch
    step: int = 0                # optimizer steps done in total
    history: list = dataclasses.field(default_factory=list)
    best_metric: float | None = None
    best_epoch: int | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    finished: bool = False
    epoch_sums: dict = dataclasses.field(default_factory=dict)  # running sums inside the current epoch


EPOCH_SUMS = ("loss", "grad_norm", "steps", "samples", "tokens", "time", "data_wait")


class Trainer:
    """Trains any nn.Module whose forward takes the batch and returns logits.

    Args:
        model: a built-in model or any nn.Module (see trainbook.engine.loop.make_forward).
        config: the model's own config (kept for export; optional).
        training_config: a TrainingConfig (default: TrainingConfig()).
        task_spec: the TaskSpec; selects the collator, loss and metrics.
    """

    def __init__(self, model, config=None, training_config: TrainingConfig | None = None,
                 task_spec: TaskSpec | None = None, tracker: MetricsTracker | None = None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if task_spec is None:
            raise TypeError("Trainer needs task_spec=, e.g. tb.TaskSpec.preset('lm') or data.spec")
        self.model, self.model_config = model, config
        self.cfg = training_config if training_config is not None else TrainingConfig()
        self.spec, self.tracker = task_spec, tracker
        self.collate = collator_for(task_spec)
        self._persist = NullPersister()

    # ------------------------------------------------------------------ train
    def train(self, train_data, val_data=None, resume: str | None = None, on_epoch_end=None) -> TrainResult:
        # on_epoch_end(row) -> bool: called with each epoch's history row; True stops the run (stopped_early)
        if self.cfg.on_config_change == "new_run":  # same run_name, other settings: a new numbered run folder
            self.cfg = choose_run_folder(dataclasses.replace(self.cfg, resume=resume or self.cfg.resume))
            resume = None
        self._check_inputs(train_data, val_data)
        with run_lock(self.cfg):  # one process per run folder (RunLockedError names the holder); DDP: rank 0
            return self._train(train_data, val_data, resume, on_epoch_end)

    def _train(self, train_data, val_data, resume, on_epoch_end) -> TrainResult:
        cfg, spec, t0 = self.cfg, self.spec, time.perf_counter()
        dist = DistContext.from_config(cfg)
        persist = self._persist = Persister.for_config(cfg) if dist.is_main else NullPersister()
        device = resolve_device(cfg.device) if not dist.enabled else dist.device
        precision = resolve_precision(cfg.precision, device)
        run_dir, ckpt_dir = cfg.run_dir, cfg.resolved_checkpoint_dir
        say = print if dist.is_main else silent  # one console line per event, from rank 0
        train_feed = self.feed(train_data, device, "train_data")  # workers start at the first epoch
        val_feed = self.feed(val_data, device, "val_data") if val_data is not None else None
        torch.manual_seed(cfg.seed)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)

        model = self.model.to(device)
        optimizer = build_optimizer(model, cfg, device)
        model = dist.wrap(model)
        runner = StepRunner(self._maybe_compile(model), optimizer, spec, precision, device, cfg.max_grad_norm,
                            world_size=dist.world_size, all_reduce=dist.all_reduce_sum if dist.enabled else None)
        steps_per_epoch = math.ceil(math.ceil(dist.shard_len(len(train_data)) / cfg.batch_size)
                                    / cfg.gradient_accumulation_steps)
        total_steps = steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            total_steps = min(total_steps, cfg.max_steps)

        # restore the newest checkpoint of this run when resuming
        state, resumed_from = self._restore(resume or cfg.resume, ckpt_dir, optimizer, runner, device)
        if state.finished:
            say(f"run already finished at step {state.step}; result loaded from {resumed_from}")
            loaded = self._result(state, run_dir, ckpt_dir, t0, resumed_from)
            return dataclasses.replace(loaded, **recorded_result(run_dir))  # the first run's wall time and W&B
        tracker = self.tracker or MetricsTracker.for_run(cfg, run_dir, dist.rank,
                                                         resume_step=state.step if resumed_from else None)
        if dist.is_main:
            clean_temp_files(ckpt_dir)
            cfg.save(run_dir / "training_config.json")
            from ..data import save_tokenizer  # here: the data package is not needed to train

            save_tokenizer(spec, run_dir / "tokenizer")  # subword tokenizers only
            tracker.log_config(cfg.to_dict())
            persist.copy(run_dir / "training_config.json")
        say(f"training {spec.name} on {device} ({precision}) | {len(train_data)} samples | "
              f"{steps_per_epoch} steps/epoch x {cfg.epochs} epochs | num_workers {train_feed.num_workers}"
              + (f" | resumed at step {state.step} from {resumed_from}" if resumed_from else ""))

        try:
            for epoch in range(state.epoch, cfg.epochs):
                model.train()
                order = dist.epoch_indices(len(train_data), cfg.seed, epoch)  # a function of (seed, epoch)
                windows = accumulation_windows(order, cfg.batch_size, cfg.gradient_accumulation_steps)
                batches = train_feed.epoch([idx for window in windows[state.window:] for idx in window], epoch)
                bar = progress_bar(cfg, dist, total=len(windows), initial=state.window, desc=f"epoch {epoch + 1}/{cfg.epochs}")
                epoch_t0 = time.perf_counter()
                sums = state.epoch_sums = {**dict.fromkeys(EPOCH_SUMS, 0.0), **state.epoch_sums}
                for window in windows[state.window:]:
                    set_lr(optimizer, cfg.learning_rate * lr_multiplier(state.step, total_steps, cfg))
                    wait_t0 = time.perf_counter()  # the time the step waits for its data
                    micro = [next(batches) for _ in window]
                    sums["data_wait"] += time.perf_counter() - wait_t0
                    try:
                        out = runner.step(micro, state.step + 1)
                    except NonFiniteLossError as e:
                        bar.close()
                        last = list_step_checkpoints(ckpt_dir)
                        raise NonFiniteLossError(e.step, e.value, last[-1] if last else None) from None
                    state.step, state.window = state.step + 1, state.window + 1
                    for key, value in (("loss", out.loss), ("grad_norm", out.grad_norm), ("steps", 1),
                                       ("samples", out.n_samples), ("tokens", out.n_tokens)):
                        sums[key] += value
                    tracker.log({"train/loss": out.loss, "train/lr": optimizer.param_groups[0]["lr"],
                                 "train/grad_norm": out.grad_norm, "epoch": epoch + state.window / len(windows)},
                                step=state.step)
                    bar.update(1)
                    # once in a while: refresh the progress-bar numbers
                    if state.step % cfg.log_every_n_steps == 0:
                        bar.set_postfix(loss=f"{out.loss:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}", refresh=False)
                    # once in a while: a mid-epoch checkpoint
                    if cfg.save_every_n_steps and state.step % cfg.save_every_n_steps == 0 and dist.is_main:
                        sums["time"], epoch_t0 = sums["time"] + time.perf_counter() - epoch_t0, time.perf_counter()
                        tracker.checkpoint_saved(state.step)
                        self._save(state, model, optimizer, runner, ckpt_dir)
                    if cfg.max_steps and state.step >= cfg.max_steps:
                        break
                bar.close()

                # end of epoch: evaluate, record, early-stop check, checkpoint
                elapsed = sums["time"] + time.perf_counter() - epoch_t0
                last_epoch = epoch + 1 == cfg.epochs or bool(cfg.max_steps and state.step >= cfg.max_steps)
                n = max(1, sums["steps"])
                row = {"epoch": epoch + 1, "step": state.step, "train_loss": sums["loss"] / n,
                       "lr": optimizer.param_groups[0]["lr"], "grad_norm": sums["grad_norm"] / n,
                       "samples_per_s": sums["samples"] * dist.world_size / elapsed, "epoch_time_s": elapsed,
                       "data_wait_s": sums["data_wait"]}
                if spec.modality == "text":
                    row["tokens_per_s"] = sums["tokens"] * dist.world_size / elapsed
                if val_data is not None and ((epoch + 1) % cfg.eval_every_n_epochs == 0 or last_epoch):
                    row.update(self.evaluate(val_data, model=model, device=device, precision=precision, dist=dist,
                                             feed=val_feed))
                state.history.append(row)
                state.epoch, state.window, state.epoch_sums = epoch + 1, 0, {}
                improved = self._track_best(state, row, val_data is not None)
                tracker.log({f"epoch/{k}": v for k, v in row.items()}, step=state.step)
                say(summary_line(row, cfg.epochs))
                # once in a while: epoch checkpoint, and the best one
                stop_requested = bool(on_epoch_end is not None and on_epoch_end(dict(row)))
                state.stopped_early = stop_requested or bool(cfg.early_stopping_patience
                                                             and state.bad_evals >= cfg.early_stopping_patience)
                state.finished = bool(last_epoch or state.stopped_early)
                if dist.is_main:
                    tracker.checkpoint_saved(state.step)
                    if improved:
                        self._save(state, model, optimizer, runner, ckpt_dir, name=BEST_NAME)
                    if state.finished or (cfg.save_every_n_epochs and state.epoch % cfg.save_every_n_epochs == 0):
                        self._save(state, model, optimizer, runner, ckpt_dir)
                if stop_requested:
                    say("stopped: on_epoch_end asked to stop")
                elif state.stopped_early:
                    say(f"early stopping: {self._metric_name()} did not improve for {state.bad_evals} evaluations")
                if state.finished:
                    break
        except BaseException:  # interrupted or failed: close W&B and the log, finish the copies, then re-raise
            tracker.finish()
            persist.close()
            raise
        finally:  # stop the data worker processes, also when interrupted
            for feed in (f for f in (train_feed, val_feed) if f is not None):
                feed.close()
        dist.barrier()  # every rank sees rank 0's last checkpoint in its result
        result = self._result(state, run_dir, ckpt_dir, t0, resumed_from, tracking=tracker_info(tracker))
        if dist.is_main:
            result.bundle_path = self._export(result, model, device)
            tracker.log_summary({"best_metric": result.best_metric, "best_epoch": result.best_epoch,
                                 "wall_time_s": result.wall_time_s, "total_steps": result.total_steps,
                                 "parameters": sum(p.numel() for p in self.model.parameters())})
            (Path(run_dir) / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        tracker.finish()
        result.persist = persist.finish([Path(run_dir) / name for name in RUN_FILES])  # waits for every copy
        dist.barrier()
        return result

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, data, model=None, device=None, precision=None, dist=None, feed=None) -> dict:
        """Validation loss and the task's metrics over `data` (summed over ranks under DDP).

        `feed` is a BatchFeed over `data` to reuse (train() passes its own); by default one is
        made with cfg.num_workers workers that stop when the pass ends.

        lm: val_loss is the mean loss per token; val_bits_per_byte divides the summed loss by the
        bytes of text of the targets (batch "n_bytes" for subword tokenizers, one per target for
        bytes), so it compares across tokenizers.
        """
        model = model or self.model
        device = device or next(model.parameters()).device
        precision = precision or resolve_precision(self.cfg.precision, device)
        forward, spec = make_forward(model, self.spec), self.spec
        was_training = model.training
        model.eval()
        indices = list(range(len(data)))
        if dist is not None and dist.enabled:
            indices = indices[dist.rank::dist.world_size]
        totals = torch.zeros(4, dtype=torch.float64)  # loss sum, targets, correct, bytes of the targets' text
        feed = feed or self.feed(data, device, "data", persistent=False)
        for batch in feed.epoch(micro_batches(indices, self.cfg.batch_size), EVAL_EPOCH):
            batch = to_device(batch, device)
            with autocast_for(precision, device):
                logits = forward(batch)
            labels = batch[spec.label_key]
            totals[0] += float(loss_sum(logits, labels, spec))
            targets = count_targets(batch, spec)
            totals[1] += targets
            totals[3] += float(batch["n_bytes"].sum()) if "n_bytes" in batch else targets
            if spec.kind == "classification":
                totals[2] += float((logits.argmax(-1) == labels).sum())
        if dist is not None and dist.enabled:
            totals = dist.all_reduce_tensor(totals)
        model.train(was_training)
        loss = float(totals[0] / totals[1].clamp(min=1))
        metrics = {"val_loss": loss}
        if spec.kind == "lm":
            metrics["val_perplexity"] = math.exp(min(loss, 50.0))
            metrics["val_bits_per_byte"] = float(totals[0] / totals[3].clamp(min=1)) / math.log(2)
        else:
            metrics["val_accuracy"] = float(totals[2] / totals[1].clamp(min=1))
        return metrics

    # ------------------------------------------------------------------ helpers
    def _check_inputs(self, train_data, val_data):
        cfg = self.cfg
        check_strategy(cfg.strategy)
        if train_data is None or len(train_data) == 0:
            raise ValueError("train_data is empty; pass a dataset of examples (e.g. data.train)")
        if cfg.early_stopping_patience and val_data is None:
            raise ConfigError([f"early_stopping_patience={cfg.early_stopping_patience} needs val_data; "
                               "pass val_data= or set early_stopping_patience=0"])
        known = {"val_loss", "train_loss"} | {f"val_{m}" for m in self.spec.metrics}
        if cfg.early_stopping_metric not in known:
            raise ConfigError([f"early_stopping_metric must be one of {sorted(known)} for task "
                               f"{self.spec.name!r}; got {cfg.early_stopping_metric!r}"])

    def _metric_name(self) -> str:
        return self.cfg.early_stopping_metric

    def _metric_mode(self) -> str:
        mode = self.cfg.early_stopping_mode
        return ("max" if "acc" in self._metric_name() else "min") if mode == "auto" else mode

    def _track_best(self, state: _State, row: dict, has_val: bool) -> bool:
        """Update the best metric; returns True when this epoch is the new best."""
        name = self._metric_name() if has_val else "train_loss"
        if name not in row:  # no evaluation this epoch
            return False
        best, sign = state.best_metric, (1 if self._metric_mode() == "min" else -1)
        if best is None or sign * (best - row[name]) > self.cfg.early_stopping_min_delta:
            state.best_metric, state.best_epoch, state.bad_evals = row[name], row["epoch"], 0
            return True
        state.bad_evals += 1
        return False

    def feed(self, data, device, name: str, persistent: bool = True) -> BatchFeed:
        """A BatchFeed over `data` with cfg.num_workers ('auto' resolved) and the run's seed."""
        return BatchFeed(data, self.collate, seed=self.cfg.seed, num_workers=resolve_num_workers(self.cfg.num_workers),
                         device=device, name=name, persistent=persistent)

    def _maybe_compile(self, model):
        if not self.cfg.compile:
            return model
        return _CompileWithFallback(model)

    def _save(self, state, model, optimizer, runner, ckpt_dir, name=None):
        target = getattr(model, "module", model)
        payload = {"model": target.state_dict(), "optimizer": optimizer.state_dict(),
                   "scaler": runner.scaler.state_dict(), "scheduler": {"step": state.step},
                   "state": dataclasses.asdict(state), "rng": rng_state(), "config": self.cfg.to_dict()}
        path = atomic_save(payload, Path(ckpt_dir) / name if name else step_path(ckpt_dir, state.step))
        if name is None:
            apply_retention(ckpt_dir, self.cfg.keep_last)
        self._persist.copy(self.cfg.run_dir / "metrics.jsonl", missing_ok=True)  # rows up to this step go first
        self._persist.copy(path, checkpoint=True)
        return path

    def _restore(self, resume: str, ckpt_dir: Path, optimizer, runner, device):
        if resume == "never":
            return _State(), None
        if resume == "auto":  # the newest checkpoint of this run, locally or in persist_dir
            payload, path = newest_checkpoint(self.cfg, map_location=device)
        else:
            path = Path(resume)
            if not path.is_file():
                raise FileNotFoundError(f"resume={resume!r}: no such checkpoint file")
            payload = load_checkpoint(path, map_location=device)
        if payload is None:
            return _State(), None
        check_resumable(payload, self.cfg, path)
        if is_persisted(self.cfg, path):  # a fresh runtime: take the persisted logs and best.pt back first
            restore_local_files(self.cfg)
        getattr(self.model, "module", self.model).load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        runner.scaler.load_state_dict(payload["scaler"])
        set_rng_state(payload["rng"])
        state = _State(**payload["state"])
        if state.epoch < self.cfg.epochs and not state.stopped_early and not (
                self.cfg.max_steps and state.step >= self.cfg.max_steps):
            state.finished = False  # more epochs were asked for than the checkpoint's run had
        return state, str(path)

    def _result(self, state, run_dir, ckpt_dir, t0, resumed_from, tracking=None) -> TrainResult:
        steps = list_step_checkpoints(ckpt_dir)
        best = Path(ckpt_dir) / BEST_NAME
        return TrainResult(history=state.history, best_epoch=state.best_epoch, best_metric=state.best_metric,
                           best_metric_name=self._metric_name(), best_checkpoint=str(best) if best.exists() else None,
                           last_checkpoint=str(steps[-1]) if steps else resumed_from, run_dir=str(run_dir),
                           stopped_early=state.stopped_early, wall_time_s=time.perf_counter() - t0,
                           total_steps=state.step, resumed_from=resumed_from, tracking=tracking or {})

    def _export(self, result: TrainResult, model, device):
        if not self.cfg.export_bundle:
            return None
        from ..export import export_trained

        return export_trained(self, result)


class _CompileWithFallback(torch.nn.Module):
    """torch.compile'd forward; on a compile failure at the first call, warn once and run eager."""

    def __init__(self, model):
        super().__init__()
        self.eager = model
        self.compiled = torch.compile(model)
        self.failed = False

    def forward(self, *args, **kwargs):
        if self.failed:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as e:  # compile errors surface at the first call; fall back loudly
            self.failed = True
            warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e)[:200]}); running the model eagerly",
                          RuntimeWarning, stacklevel=2)
            return self.eager(*args, **kwargs)
