"""Affine layers: a dense one, and the same thing fed one-hot rows.

Dense:    y = x W + b        x (..., D), W (D, M), b (M,) -> y (..., M)
One-hot:  y = onehot(ids) W + b = W[ids] + b
          ids (...) int in [0, V), W (V, M) -> y (..., M)

The one-hot form never builds the (..., V) one-hot tensor: multiplying a
one-hot row by W just picks a row of W, so the forward is a gather and the
backward is a scatter-add of the upstream rows into dW.
"""
from typing import NamedTuple

from ..backend import array_module, scatter_add_rows, take_rows


class AffineCache(NamedTuple):
    x: object  # (..., D) input, or (...) int ids for the one-hot form
    W: object  # (D, M)


def affine_forward(x, W, b, out=None):
    """y = x W + b.

    x : (..., D) float array
    W : (D, M), b : (M,), same dtype as x
    out : optional C-contiguous (..., M) array to write y into
    Returns y (..., M) and the cache.
    """
    xp = array_module(W)
    D, M = W.shape
    if out is None:
        out = xp.empty(x.shape[:-1] + (M,), W.dtype)
    y = xp.matmul(x.reshape(-1, D), W, out=out.reshape(-1, M)).reshape(out.shape)
    y += b
    return y, AffineCache(x, W)


def affine_backward(dy, cache, dx_out=None):
    """Gradients of y = x W + b.

    dy : (..., M) upstream gradient ∂L/∂y
    dx_out : optional C-contiguous (..., D) array to write dx into
    Returns dx (..., D), dW (D, M) (in W's memory layout, as every weight
    gradient here: the optimizer walks them side by side), db (M,).
    """
    x, W = cache
    xp = array_module(W)
    D, M = W.shape
    if dx_out is None:
        dx_out = xp.empty(x.shape, W.dtype)
    dy2 = dy.reshape(-1, M)                       # (K, M), K = prod(...)
    dx = xp.matmul(dy2, W.T, out=dx_out.reshape(-1, D)).reshape(x.shape)   # y = x W  ->  dx = dy Wᵀ
    dW = xp.matmul(x.reshape(-1, D).T, dy2, out=xp.empty_like(W))   # y = x W  ->  dW = xᵀ dy
    db = dy2.sum(axis=0)                          # y = ... + b, b broadcast over K rows
    return dx, dW, db


def onehot_affine_forward(ids, W, b, out=None):
    """y = onehot(ids) W + b, computed as the row gather W[ids] + b.

    ids : (...) int array of token ids in [0, V)
    W : (V, M), b : (M,)
    out : optional (..., M) array to write y into
    Returns y (..., M) with W's dtype, and the cache.
    """
    y = take_rows(W, ids, out)                    # (..., M) W[ids], not a view: safe to add into
    y += b
    return y, AffineCache(ids, W)


def onehot_affine_backward(dy, cache):
    """Gradients of y = W[ids] + b. There is no dx: ids are not differentiable.

    dy : (..., M)
    Returns dW (V, M), db (M,).
    """
    ids, W = cache
    xp = array_module(W)
    M = W.shape[1]
    dy2 = dy.reshape(-1, M)
    dW = xp.zeros_like(W)
    scatter_add_rows(dW, ids.reshape(-1), dy2)    # row ids[k] of W fed y[k]: dW[ids[k]] += dy[k]
    db = dy2.sum(axis=0)
    return dW, db
