"""Training engine: Trainer (orchestration), loop (one step), optim, checkpoint, resume, distributed.

    result = Trainer(model, training_config=cfg, task_spec=spec).train(data.train, data.val)
"""

from .loop import NonFiniteLossError
from .resume import choose_run_folder
from .trainer import Trainer, TrainResult

__all__ = ["NonFiniteLossError", "TrainResult", "Trainer", "choose_run_folder"]
