"""The affine, one-hot and dropout layers of :mod:`lstm_scratch.nn`, writing into
given buffers (``out=``) so that a training step can reuse its memory
(:mod:`.workspace`), with one GEMM over all leading axes.

Same equations, same caches (``nn.affine.AffineCache``) as the textbook; the
one-hot backward is one compiled pass over dy on NumPy where Numba is
(:func:`.fused_cpu.onehot_backward`), else ``backend.scatter_add_rows``: a GEMM
with the (K, V) 0/1 matrix for V <= 512, a sort and segment sum above.
tests/test_engine_lstm.py holds each to its textbook twin.
"""
import numpy as np

from ..backend import array_module, empty_aligned, scatter_add_rows, take_rows
from ..nn.affine import AffineCache
from . import fused_cpu


def affine_forward(x, W, b, out=None):
    """y = x W + b, x (..., D) -> y (..., M), into ``out`` (C-contiguous) when given."""
    xp = array_module(W)
    D, M = W.shape
    if out is None:
        out = xp.empty(x.shape[:-1] + (M,), W.dtype)
    y = xp.matmul(x.reshape(-1, D), W, out=out.reshape(-1, M)).reshape(out.shape)
    y += b
    return y, AffineCache(x, W)


def affine_backward(dy, cache, dx_out=None):
    """dx (..., D) (into ``dx_out`` when given), dW (D, M) C-contiguous on a 64-byte
    boundary, db (M,)."""
    x, W = cache
    xp = array_module(W)
    D, M = W.shape
    if dx_out is None:
        dx_out = xp.empty(x.shape, W.dtype)
    dy2 = dy.reshape(-1, M)                                 # (K, M), K = prod(...)
    dx = xp.matmul(dy2, W.T, out=dx_out.reshape(-1, D)).reshape(x.shape)
    dW = xp.matmul(x.reshape(-1, D).T, dy2, out=empty_aligned(xp, W.shape, W.dtype))
    return dx, dW, dy2.sum(axis=0)


def onehot_affine_forward(ids, W, b, out=None):
    """y = W[ids] + b, ids (...) -> y (..., M), into ``out`` when given."""
    y = take_rows(W, ids, out)                              # not a view of W: safe to add into
    y += b
    return y, AffineCache(ids, W)


def onehot_affine_backward(dy, cache, want_db=True):
    """dW (V, M), db (M,) of y = W[ids] + b: dW[ids[k]] += dy[k] for every k.

    On NumPy with Numba, one compiled pass over dy does both sums
    (:func:`.fused_cpu.onehot_backward`); elsewhere ``scatter_add_rows`` and a sum,
    which ``want_db=False`` skips (db is then None: an embedding has no bias).
    """
    ids, W = cache
    xp = array_module(W)
    M = W.shape[1]
    dy2 = dy.reshape(-1, M)
    if ids.size != dy2.shape[0]:
        raise ValueError(f"onehot_affine_backward: {ids.size} ids for {dy2.shape[0]} rows of dy")
    dW = xp.zeros_like(W)
    same_dtype = dy2.dtype == W.dtype
    kernel = fused_cpu.onehot_kernel(W.dtype) if xp is np and same_dtype else None
    if kernel is not None:
        db = xp.zeros(M, W.dtype)
        kernel(ids.reshape(-1), dy2, dW, db)
        return dW, db
    scatter_add_rows(dW, ids.reshape(-1), dy2)
    return dW, (dy2.sum(axis=0) if want_db else None)


def dropout_forward(x, mask, out=None):
    """y = x ⊙ m into ``out`` (x is never changed); x itself when the mask is None."""
    return (x, None) if mask is None else (array_module(x).multiply(x, mask, out=out), mask)


def dropout_backward(dy, mask, out=None):
    """dx = dy ⊙ m into ``out`` (which may be dy); dy itself when the mask is None."""
    return dy if mask is None else array_module(dy).multiply(dy, mask, out=out)
