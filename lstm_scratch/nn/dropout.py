"""Inverted dropout.

    m = (u < keep) / keep,  u ~ Uniform[0, 1),  keep = 1 - p
    y = x ⊙ m

Scaling by 1/keep at training time keeps E[y] = x, so nothing changes at
test time (y = x). The mask m is the whole cache: backward is dx = dy ⊙ m.
"""
from ..backend import array_module, dropout_mask


def dropout_forward(x, p, rng, train=True):
    """y = x ⊙ m with a fresh mask drawn from ``rng``.

    x : any shape, float
    p : drop probability in [0, 1)
    rng : numpy.random.Generator (host); used only when train and p > 0
    Returns y (same shape and dtype as x) and the cache (the mask, or None
    when dropout is the identity).
    """
    if not train or p == 0.0:
        return x, None
    mask = dropout_mask(rng, x.shape, 1.0 - p, x.dtype, array_module(x))
    return x * mask, mask


def dropout_backward(dy, mask):
    """dx = dy ⊙ m. ``mask`` is the cache returned by the forward."""
    return dy if mask is None else dy * mask
