"""Subprocess used by test_models.py: train the nanoGPT-contract GPT on built-in lm data, optionally SIGKILL itself.

    python nanogpt_worker.py OUT_DIR [--kill-train-fetch N]

The model is built the nanoGPT way, `GPT(GPTConfig(...))` from `model.py` on sys.path. Writes
OUT_DIR/final.pt (the final state_dict and history) when training completes.
"""

import argparse
import os
import sys
from pathlib import Path

import torch

import trainbook as tb
from resume_worker import KillAfter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures" / "nanogpt"))
from model import GPT, GPTConfig  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--kill-train-fetch", type=int, default=0)
    args = p.parse_args()
    data = tb.load_task_data("lm", limit=64)
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=128, vocab_size=256, n_layer=2, n_head=2, n_embd=64, dropout=0.0, bias=False))
    cfg = tb.TrainingConfig(run_name="run", output_dir=args.out, epochs=2, batch_size=8, learning_rate=3e-3,
                            warmup_ratio=0.1, save_every_n_steps=1, keep_last=2, wandb_mode="disabled",
                            progress_bar=False, seed=7, num_workers=0)  # the kill is in __getitem__: in this process
    result = tb.Trainer(model, training_config=cfg, task_spec=data.spec).train(
        KillAfter(data.train, args.kill_train_fetch), data.val)
    torch.save({"state_dict": model.state_dict(), "history": result.history}, os.path.join(args.out, "final.pt"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
