"""Train in OUT/runs/shared (the Trainer takes the run lock) and hold at the end of epoch 1
until the file OUT/release exists; prints "holding" when it waits and "done <steps>" at the end.

    python lock_holder_worker.py OUT
"""

import sys
import time
from pathlib import Path

import trainbook as tb

out = Path(sys.argv[1])
data = tb.load_task_data("vision-cls", limit=32)
cfg = tb.TrainingConfig(output_dir=str(out / "runs"), run_name="shared", epochs=2, batch_size=8, wandb_mode="disabled",
                        progress_bar=False, resume="never")


def hold_after_epoch_1(row):
    if row["epoch"] == 1:
        print("holding", flush=True)
        while not (out / "release").exists():
            time.sleep(0.05)
    return False


result = tb.Trainer(tb.build_model(data.spec, "tiny"), training_config=cfg, task_spec=data.spec).train(
    data.train, data.val, on_epoch_end=hold_after_epoch_1)
print("done", result.total_steps, flush=True)
