"""Metrics tracking: a local JSONL log always, W&B when asked, never a prompt.

    tracker = MetricsTracker.for_run(cfg, run_dir); tracker.log({"train/loss": 2.1}, step=10); tracker.finish()
"""

from .metrics import JSONLTracker, MetricsTracker, NullTracker, Tracker, read_metrics
from .wandb_run import WandbTracker, find_wandb_api_key, make_wandb_tracker, resolve_wandb_mode

__all__ = ["JSONLTracker", "MetricsTracker", "NullTracker", "Tracker", "WandbTracker", "find_wandb_api_key",
           "make_wandb_tracker", "read_metrics", "resolve_wandb_mode"]
