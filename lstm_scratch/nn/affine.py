"""Affine layers: a dense one, and the same thing fed one-hot rows.

Dense:    y = x W + b        x (..., D), W (D, M), b (M,) -> y (..., M)
One-hot:  y = onehot(ids) W + b = W[ids] + b
          ids (...) int in [0, V), W (V, M) -> y (..., M)

Multiplying a one-hot row by W just picks a row of W, so the one-hot forward
is a gather and never builds the one-hot tensor. Its backward here does build
it, (K, V) for K = prod(...) ids, as the plainest correct form:
dW = onehot(ids)ᵀ dy. (The engine does the same product, or a scatter-add of
the rows of dy for a large V: engine/layers.py.)
"""
from typing import NamedTuple

from ..backend import array_module


class AffineCache(NamedTuple):
    x: object  # (..., D) input, or (...) int ids for the one-hot form
    W: object  # (D, M)


def affine_forward(x, W, b):
    """y = x W + b.

    x : (..., D) float;  W : (D, M), b : (M,), same dtype as x
    Returns y (..., M) and the cache.
    """
    y = x @ W + b
    return y, AffineCache(x, W)


def affine_backward(dy, cache):
    """Gradients of y = x W + b.

    dy : (..., M) upstream gradient ∂L/∂y
    Returns dx (..., D), dW (D, M), db (M,).
    """
    x, W = cache
    D, M = W.shape
    dx = dy @ W.T                                           # y = x W  ->  dx = dy Wᵀ
    dW = x.reshape(-1, D).T @ dy.reshape(-1, M)             # y = x W  ->  dW = xᵀ dy, rows of all (...)
    db = dy.reshape(-1, M).sum(axis=0)                      # y = ... + b, b added to every row
    return dx, dW, db


def onehot(ids, V, dtype):
    """(..., V) one-hot rows of ``dtype`` for int ids (...) in [0, V)."""
    xp = array_module(ids)
    return xp.eye(V, dtype=dtype)[ids]


def onehot_affine_forward(ids, W, b):
    """y = onehot(ids) W + b, computed as the row gather W[ids] + b.

    ids : (...) int array of token ids in [0, V)
    W : (V, M), b : (M,)
    Returns y (..., M) with W's dtype, and the cache.
    """
    y = W[ids] + b                                          # onehot(k) W = W[k]
    return y, AffineCache(ids, W)


def onehot_affine_backward(dy, cache):
    """Gradients of y = onehot(ids) W + b. There is no dx: ids are not differentiable.

    dy : (..., M)
    Returns dW (V, M), db (M,).
    """
    ids, W = cache
    V, M = W.shape
    X = onehot(ids.reshape(-1), V, W.dtype)                 # (K, V) built, as in the forward's math
    dW = X.T @ dy.reshape(-1, M)                            # y = X W  ->  dW = Xᵀ dy
    db = dy.reshape(-1, M).sum(axis=0)
    return dW, db
