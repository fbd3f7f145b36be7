"""torchrun worker used by test_distributed.py: the trainbook CLI, with one rank SIGKILLed once.

    torchrun --nproc_per_node 2 --max_restarts 1 ddp_kill_worker.py RANK STEP train --config run.json

On the first attempt (TORCHELASTIC_RESTART_COUNT=0) process RANK kills itself when it starts
optimizer step STEP; torchrun then restarts every process and the run resumes from the newest
rank-0 checkpoint. Later attempts run the plain CLI.
"""

import os
import signal
import sys

from trainbook import cli
from trainbook.engine import loop


def kill_at(step_to_kill: int):
    real_step = loop.StepRunner.step

    def step(self, micro_batches, step):
        if step == step_to_kill:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_step(self, micro_batches, step)

    loop.StepRunner.step = step


if __name__ == "__main__":
    kill_rank, kill_step = int(sys.argv[1]), int(sys.argv[2])
    if os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0" and int(os.environ["RANK"]) == kill_rank:
        kill_at(kill_step)
    sys.exit(cli.main(sys.argv[3:]))
