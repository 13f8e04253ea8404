"""The seeded rule that draws GoogLeNet's weights for the Lasagne parity check: numpy only, so both
tools/lasagne_reference.py (in the Theano environment) and tests/test_seed.py use this one copy."""

from __future__ import annotations

import numpy as np


def random_weights(shapes: list[tuple[int, ...]], seed: int = 0) -> list[np.ndarray]:
    """He-scaled normal weights and small biases, drawn in order from one RandomState (stable across numpy)."""
    rng, out = np.random.RandomState(seed), []
    for s in shapes:
        fan_in = int(np.prod(s[1:])) if len(s) == 4 else s[0]
        scale = np.sqrt(2.0 / fan_in) if len(s) > 1 else 0.01
        out.append((rng.standard_normal(s) * scale).astype(np.float32))
    return out
