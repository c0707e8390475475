"""Inverted dropout.

    m = (u < keep) / keep,  u ~ Uniform[0, 1),  keep = 1 - p
    y = x ⊙ m

Scaling by 1/keep at training time keeps E[y] = x, so nothing changes at
test time (y = x). The mask m is the whole cache: backward is dx = dy ⊙ m.

The mask is drawn by ``backend.dropout_mask(rng, shape, keep, dtype, xp)`` from
an explicit host Generator, by the model, and handed to the layer: so both
engines, and every worker of a split batch, compute with the same mask.
"""


def dropout_forward(x, mask):
    """y = x ⊙ m.

    x : any shape, float
    mask : same shape and dtype as x, from ``backend.dropout_mask`` (values
        0 or 1/keep); None means dropout is off (evaluation, or p = 0)
    Returns y (x itself when the mask is None) and the cache (the mask).
    """
    if mask is None:
        return x, None
    return x * mask, mask


def dropout_backward(dy, mask):
    """dx = dy ⊙ m. ``mask`` is the cache returned by the forward (dy itself when None)."""
    return dy if mask is None else dy * mask
