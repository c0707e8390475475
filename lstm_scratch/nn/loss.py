"""Softmax followed by categorical cross-entropy, in one numerically stable step.

For M rows of logits z (M, V) and integer targets y (M,):

    log p[k, :] = z[k, :] - logsumexp(z[k, :])      (M, V)
    L = -(1/M) Σ_k log p[k, y_k]                    scalar, nats

logsumexp subtracts the row max before exp, so huge logits never overflow
and log p is never log(0). The gradient is the classic

    ∂L/∂z[k, :] = (p[k, :] - onehot(y_k)) / M
"""
from typing import NamedTuple

from ..backend import array_module


class SoftmaxCECache(NamedTuple):
    probs: object    # (M, V) softmax(z)
    targets: object  # (M,) int


def log_softmax(z):
    """log softmax over the last axis, stable for any finite z. Same shape and dtype."""
    xp = array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy_forward(z, targets):
    """Mean cross-entropy of softmax(z) against integer targets.

    z : (M, V) float logits
    targets : (M,) int in [0, V)
    Returns the loss as a 0-d array of z's dtype (nats), and the cache.
    """
    xp = array_module(z)
    M = z.shape[0]
    log_p = log_softmax(z)                                          # (M, V)
    loss = -log_p[xp.arange(M), targets].sum() / z.dtype.type(M)
    return loss, SoftmaxCECache(xp.exp(log_p), targets)


def softmax_cross_entropy_backward(dloss, cache):
    """∂L/∂z = dloss * (p - onehot(y)) / M, shape (M, V)."""
    probs, targets = cache
    xp = array_module(probs)
    M = probs.shape[0]
    dz = probs.copy()
    dz[xp.arange(M), targets] -= 1                  # p - onehot(y), without building onehot
    dz *= probs.dtype.type(dloss / M)
    return dz
