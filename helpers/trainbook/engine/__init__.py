"""Training engine: Trainer (orchestration), loop (one step), loader (batches), optim, checkpoint, distributed.

    result = Trainer(model, training_config=cfg, task_spec=spec).train(data.train, data.val)
"""

from .loop import NonFiniteLossError
from .trainer import Trainer, TrainResult

__all__ = ["NonFiniteLossError", "TrainResult", "Trainer"]
