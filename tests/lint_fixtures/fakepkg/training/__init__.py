"""Training: the Trainer, its result, and the bare loop."""

from .loop import Trainer, TrainResult, training_loop

__all__ = ["TrainResult", "Trainer", "training_loop"]
