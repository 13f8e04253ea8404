"""Training: the loop, its data, its state and resume, self-critical training, DDP helpers, checkpoints."""
