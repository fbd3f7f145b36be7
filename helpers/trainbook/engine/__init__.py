"""Training engine: Trainer (orchestration), loop (one step), loader (batches), optim, checkpoint, resume,
distributed.

    result = Trainer(model, training_config=cfg, task_spec=spec).train(data.train, data.val)
"""

from .checkpoint import load_weights
from .loop import NonFiniteLossError
from .resume import choose_run_folder
from .result import TrainResult
from .trainer import Trainer

__all__ = ["NonFiniteLossError", "TrainResult", "Trainer", "choose_run_folder", "load_weights"]
