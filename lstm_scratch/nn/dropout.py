"""Inverted dropout.

    m = (u < keep) / keep,  u ~ Uniform[0, 1),  keep = 1 - p
    y = x ⊙ m

Scaling by 1/keep at training time keeps E[y] = x, so nothing changes at
test time (y = x). The mask m is the whole cache: backward is dx = dy ⊙ m.

The mask is drawn by ``backend.dropout_mask(rng, shape, keep, dtype, xp)`` from
an explicit host Generator, so a batch split across workers can be given
slices of one mask and compute exactly what the whole batch would.
"""
from ..backend import array_module


def dropout_forward(x, mask, out=None):
    """y = x ⊙ m.

    x : any shape, float
    mask : same shape and dtype as x, from ``backend.dropout_mask`` (values
        0 or 1/keep); None means dropout is off (evaluation, or p = 0)
    out : optional array to write y into (x itself is never changed)
    Returns y and the cache (the mask).
    """
    return (x, None) if mask is None else (array_module(x).multiply(x, mask, out=out), mask)


def dropout_backward(dy, mask, out=None):
    """dx = dy ⊙ m. ``mask`` is the cache returned by the forward; ``out`` may be dy."""
    return dy if mask is None else array_module(dy).multiply(dy, mask, out=out)
