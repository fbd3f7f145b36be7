"""Export bundle A (seed 1) to OUT, then export bundle B (seed 2) over it and SIGKILL this process
just before step STEP of the replace (trainbook.export.replace.STEPS).

    python bundle_replace_worker.py OUT STEP
"""

import os
import signal
import sys

import trainbook as tb
from trainbook.export import replace

out, step = sys.argv[1], sys.argv[2]
spec = tb.TaskSpec.preset("vision-cls")
cfg = tb.TrainingConfig(wandb_mode="disabled")
tb.export_bundle(tb.build_model(spec, "tiny", seed=1), cfg, spec, out)


def kill_before(current):
    if current == step:
        os.kill(os.getpid(), signal.SIGKILL)


replace.FAULT_HOOK = kill_before
tb.export_bundle(tb.build_model(spec, "tiny", seed=2), cfg, spec, out)
print("not killed")
