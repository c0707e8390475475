"""σ, the logistic sigmoid, for the gates of every cell.

    σ(z) = 1 / (1 + e^(-z)),    σ'(z) = σ(z) (1 - σ(z))
    tanh'(z) = 1 - tanh(z)²

Backward passes take both derivatives from the outputs the forward kept
(s = σ(z), t = tanh(z)), never from z.
"""
from ..backend import array_module


def sigmoid(z):
    """σ(z), any shape and float dtype (kept).

    Written as 0.5 tanh(0.5 z) + 0.5, which equals 1 / (1 + e^(-z)) and never
    overflows: e^(-z) would be inf in float32 for z < -88.
    """
    xp = array_module(z)
    return 0.5 * xp.tanh(0.5 * z) + 0.5
