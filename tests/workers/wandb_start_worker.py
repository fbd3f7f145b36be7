"""Start W&B the way a training run does (MetricsTracker.for_run, wandb_mode='auto'), log one row and
finish, printing wall-clock stamps: "ATTEMPT <mode> <t>" before each wandb.init, "STARTED <t> <mode>"
and "FINISHED <t>". The caller's environment points WANDB_BASE_URL at its server.

    python wandb_start_worker.py RUN_DIR START_BUDGET_S
"""

import sys
import time

from trainbook.config import TrainingConfig
from trainbook.tracking import MetricsTracker, wandb_run

wandb_run.START_BUDGET_S = float(sys.argv[2])
start_run = wandb_run._start_run


def stamped(wandb, cfg, run_dir, mode, *args):
    print(f"ATTEMPT {mode} {time.time()!r}", flush=True)
    return start_run(wandb, cfg, run_dir, mode, *args)


wandb_run._start_run = stamped
cfg = TrainingConfig(output_dir=sys.argv[1], wandb_mode="auto", run_name="bounded")
print(f"STARTING {time.time()!r}", flush=True)
tracker = MetricsTracker.for_run(cfg, cfg.run_dir)
print(f"STARTED {time.time()!r} {tracker.info['wandb_mode']} wandb {sys.modules['wandb'].__version__}", flush=True)
tracker.log({"train/loss": 1.0}, step=1)
tracker.finish()
print(f"FINISHED {time.time()!r}", flush=True)
