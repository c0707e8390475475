"""Locked (variational) dropout (Gal & Ghahramani 2016; AWD-LSTM's LockedDropout).

    m = B / keep,  B ~ Bernoulli(keep) entrywise,  keep = 1 - p      (1, N, D)
    y_t = x_t ⊙ m[0]            for every t = 1..T                    (N, D)

Plain dropout draws a new mask for every (t, n, d); locked dropout draws one
per sequence and feature and holds it over time: unit d of sequence n is
either off for the whole sequence or on (scaled by 1/keep) for all of it.
Gal and Ghahramani derive this as the variational posterior of a Bayesian
RNN; in practice a mask that changes every step adds noise at every step,
which the recurrence accumulates, while a fixed one does not.

Written as one broadcast: x (T, N, D) ⊙ m (1, N, D). The backward multiplies
by the same m at every t. At evaluation there is no mask (y = x, E[m] = 1).
The mask is drawn by the caller and passed in; these functions draw nothing.
"""
import numpy as np

from ..backend import dropout_mask


def locked_dropout_mask(rng, N, D, p, dtype, xp=np):
    """One mask per sequence: 0 with probability p, else 1/(1-p).

    rng : numpy.random.Generator on the host
    N : batch size, D : feature width;  p : float in [0, 1), the drop probability
    dtype : the activations' dtype;  xp : numpy or cupy, where the mask lives
    Returns m (1, N, D), or None when p == 0 (dropout off).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"locked dropout p must be in [0, 1), got {p}")
    if p == 0:
        return None
    return dropout_mask(rng, (1, N, D), 1.0 - p, dtype, xp)    # m = B / (1-p), B ~ Bernoulli(1-p)


def locked_dropout_forward(x, mask):
    """y = x ⊙ m, the same m at every time step.

    x : (T, N, D) float, time-major
    mask : (1, N, D), x's dtype, from :func:`locked_dropout_mask`; None means off
    Returns y (T, N, D) (x itself when the mask is None) and the cache, the mask.
    """
    if mask is None:
        return x, None
    y = x * mask                                    # y_t = x_t ⊙ m, m (1, N, D) broadcast over T
    return y, mask


def locked_dropout_backward(dy, mask):
    """dx = dy ⊙ m, the same m at every t.

    dy : (T, N, D) ∂L/∂y;  mask : the cache of :func:`locked_dropout_forward`
    Returns dx (T, N, D) ∂L/∂x (dy itself when the mask is None).
    """
    if mask is None:
        return dy
    dx = dy * mask                                  # y_t = x_t ⊙ m  ->  dx_t = dy_t ⊙ m
    return dx
