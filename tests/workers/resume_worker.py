"""Subprocess used by test_trainer.py and test_resume.py: train a tiny GPT, optionally SIGKILL itself.

    python resume_worker.py OUT_DIR [--num-workers N] [--kill-train-fetch N] [--kill-val-fetch N]
                            [--kill-save N] [--kill-at-batch N]
                            [--persist-dir DIR [--kill-after-persisted N]]

The data is augmented (a random crop drawn from torch, numpy and python RNGs) and the model has
dropout, so every RNG stream matters. Writes OUT_DIR/final.pt (the final state_dict, history and
resumed_from) when training completes.
--kill-after-persisted N: SIGKILL at the moment the (N+1)-th step checkpoint is about to be renamed
into DIR, so exactly N persisted checkpoints exist and the next one is a complete temp file.
"""

import argparse
import os
import random
import signal
import sys

import numpy as np
import torch

import trainbook as tb
import trainbook.engine.checkpoint as ckpt
from trainbook.engine import loader


class KillAfter(torch.utils.data.Dataset):
    """Crops a random 0-4 tokens off the front of each item; SIGKILLs the fetching process at the N-th fetch."""

    def __init__(self, data, kill_at):
        self.data, self.kill_at, self.fetched = data, kill_at, 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.fetched += 1
        if self.kill_at and self.fetched == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        ids = self.data[i]["input_ids"]
        start = int(torch.randint(0, 2, ())) + int(np.random.randint(0, 2)) + random.randrange(3)
        return {"input_ids": ids[min(start, len(ids) - 2):]}


def kill_at_batch(n):
    """SIGKILL the training process when the n-th training micro-batch reaches the loop (workers or not)."""
    real_epoch, seen = loader.BatchFeed.epoch, {"n": 0}

    def epoch(self, batches, epoch_no):
        for batch in real_epoch(self, batches, epoch_no):
            if self.name == "train_data":
                seen["n"] += 1
                if seen["n"] == n:
                    os.kill(os.getpid(), signal.SIGKILL)
            yield batch

    loader.BatchFeed.epoch = epoch


def kill_during_save(n):
    """Make the n-th checkpoint write stop halfway through, then SIGKILL."""
    real_save, calls = torch.save, {"n": 0}

    def partial_save(obj, fh, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            fh.write(b"PK\x03\x04 half a checkpoint")
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, fh, *args, **kwargs)

    ckpt.torch.save = partial_save


def kill_after_persisted(persist_dir, n):
    """SIGKILL when the (n+1)-th step checkpoint copy is renamed into persist_dir (an audit hook sees every rename)."""
    seen = set()
    prefix = os.path.join(os.path.abspath(persist_dir), "")

    def hook(event, args):
        if event == "os.rename":
            dst = os.path.abspath(os.fspath(args[1]))
            if dst.startswith(prefix) and os.path.basename(dst).startswith("step-"):
                seen.add(dst)
                if len(seen) > n:
                    os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--kill-train-fetch", type=int, default=0)
    p.add_argument("--kill-val-fetch", type=int, default=0)
    p.add_argument("--kill-save", type=int, default=0)
    p.add_argument("--kill-at-batch", type=int, default=0)
    p.add_argument("--accum", type=int, default=2)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--persist-dir", default="")
    p.add_argument("--kill-after-persisted", type=int, default=0)
    args = p.parse_args()
    if args.kill_save:
        kill_during_save(args.kill_save)
    if args.kill_at_batch:
        kill_at_batch(args.kill_at_batch)
    if args.kill_after_persisted:
        kill_after_persisted(args.persist_dir, args.kill_after_persisted)
    spec = tb.TaskSpec.preset("lm").replace(max_seq_len=32)
    data = tb.load_task_data("lm", limit=48, spec=spec)
    model = tb.build_model(spec, "tiny", dropout=0.1, seed=0)
    cfg = tb.TrainingConfig(run_name="run", output_dir=args.out, epochs=2, batch_size=4, learning_rate=3e-3,
                            warmup_ratio=0.2, gradient_accumulation_steps=args.accum, save_every_n_steps=1,
                            keep_last=2, wandb_mode="disabled", progress_bar=False, seed=7,
                            num_workers=args.num_workers, persist_dir=args.persist_dir)
    result = tb.Trainer(model, training_config=cfg, task_spec=spec).train(
        KillAfter(data.train, args.kill_train_fetch), KillAfter(data.val, args.kill_val_fetch))
    torch.save({"state_dict": model.state_dict(), "history": result.history, "resumed_from": result.resumed_from},
               os.path.join(args.out, "final.pt"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
