"""Training engine: Trainer (orchestration), loop (one step), optim, checkpoint, distributed."""
