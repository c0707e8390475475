"""Weight drop: DropConnect on the recurrent weights (Merity et al. 2017, AWD-LSTM).

    M = B / keep,  B ~ Bernoulli(keep) entrywise,  keep = 1 - p     (H, G·H)
    W̃h = Wh ⊙ M                                                    (H, G·H)

G is the number of gate blocks (4 for the LSTM, 3 for the GRU, 1 for the
RNN). One M is drawn per batch and the layer then runs over all T steps
with W̃h in place of Wh: every h_{t-1} W̃h drops the *same* connections.

Why this regularises the recurrence without touching the loop: dropout on
h_{t-1} needs a fresh multiply inside every step, so a fused recurrent
kernel (cuDNN's, or this project's compiled cell) would have to be opened
up. Weight drop changes the weights once, before the sequence, and leaves
the cell alone: the loop is a plain LSTM with weights W̃h, run by any
kernel unchanged. The layer's backward gives ∂L/∂W̃h, summed over the T
steps that used it; one multiply by the same mask takes it to ∂L/∂Wh.

At evaluation there is no mask: W̃h = Wh, which is E[W̃h] since E[M] = 1
(the 1/keep scaling of inverted dropout, nn/dropout.py).

The mask is drawn by the caller (``weight_drop_mask``, from an explicit host
Generator) and passed in; these functions draw nothing.
"""
import numpy as np

from ..backend import dropout_mask


def weight_drop_mask(rng, shape, p, dtype, xp=np):
    """M for one batch: 0 with probability p, else 1/(1-p).

    rng : numpy.random.Generator on the host
    shape : (H, G·H), Wh's shape;  p : float in [0, 1), the drop probability
    dtype : Wh's dtype;  xp : numpy or cupy, where the mask lives
    Returns M of ``shape`` and ``dtype``, or None when p == 0 (weight drop off).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"weight drop p must be in [0, 1), got {p}")
    if p == 0:
        return None
    return dropout_mask(rng, shape, 1.0 - p, dtype, xp)        # M = B / (1-p), B ~ Bernoulli(1-p)


def weight_drop_forward(Wh, mask):
    """W̃h = Wh ⊙ M.

    Wh : (H, G·H) float, the recurrent weights
    mask : (H, G·H), Wh's dtype, from :func:`weight_drop_mask`; None means off
        (evaluation, or p = 0). Anything that broadcasts against Wh works:
        the embedding dropout's (V, 1) row mask (nn/embedding.py) is one.
    Returns W̃h (H, G·H) (Wh itself when the mask is None) and the cache, the mask.
    """
    if mask is None:
        return Wh, None
    Wh_dropped = Wh * mask                                      # W̃h = Wh ⊙ M
    return Wh_dropped, mask


def weight_drop_backward(dWh_dropped, mask):
    """dWh = dW̃h ⊙ M.

    dWh_dropped : (H, G·H) ∂L/∂W̃h, the dWh that the layer's backward returns
    mask : the cache of :func:`weight_drop_forward`
    Returns dWh (H, G·H) ∂L/∂Wh (dWh_dropped itself when the mask is None).
    """
    if mask is None:
        return dWh_dropped
    dWh = dWh_dropped * mask                                    # W̃h = Wh ⊙ M  ->  dWh = dW̃h ⊙ M
    return dWh
