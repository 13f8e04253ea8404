"""Decoding: greedy, sampling and beam search over a Stepper, the PyTorch stepper, and the truth rules held while
decoding."""
