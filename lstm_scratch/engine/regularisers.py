"""The AWD-LSTM regularisers of :mod:`lstm_scratch.nn`, writing into given buffers
(``out=``) so that a training step can reuse its memory, as :mod:`.layers` does for
dropout and the affine layers.

Same equations, same masks (the model draws them, in regularisers.py, of the
shapes ``nn.weight_drop_mask``, ``nn.locked_dropout_mask`` and
``nn.embedding_dropout_mask`` make):

- :func:`weight_drop_forward` / :func:`weight_drop_backward` equal
  ``nn.weight_drop.weight_drop_forward`` / ``weight_drop_backward``;
- :func:`locked_dropout_forward` / :func:`locked_dropout_backward` equal
  ``nn.locked_dropout.locked_dropout_forward`` / ``locked_dropout_backward``;
- :func:`embedding_forward` equals ``nn.embedding.embedding_dropout_forward``
  then ``nn.embedding.embedding_forward`` (x = Ẽ[ids]), and
  :func:`embedding_backward` equals ``embedding_backward`` then
  ``embedding_dropout_backward``.

The one difference: the textbook builds Ẽ = E ⊙ m, (V, D), and gathers from it;
the engine gathers E[ids] and scales each gathered row by m[ids], the same one
multiply per entry, with no (V, D) copy. tests/test_engine_regularisers.py holds
each to its textbook twin.
"""
from typing import NamedTuple

from ..backend import array_module, empty_aligned, take_rows
from ..nn.affine import AffineCache
from .layers import dropout_backward, dropout_forward, onehot_affine_backward


class EmbeddingCache(NamedTuple):
    ids: object        # (T, N) int ids in [0, V)
    E: object          # (V, D) the embedding, undropped (its shape and dtype make dE)
    row_mask: object   # (V, 1) the embedding dropout mask, or None


def weight_drop_forward(Wh, mask, out=None):
    """W̃h = Wh ⊙ M into ``out`` (H, G·H); Wh itself when the mask is None.

    ``out`` is made C-contiguous on a 64-byte boundary when not given: W̃h is the B
    of every step's h_{t-1} W̃h GEMM, which runs faster aligned (backend.ALIGN).
    Returns (W̃h, mask).
    """
    if mask is None:
        return Wh, None
    xp = array_module(Wh)
    if out is None:
        out = empty_aligned(xp, Wh.shape, Wh.dtype)
    return xp.multiply(Wh, mask, out=out), mask


def weight_drop_backward(dW, mask, out=None):
    """dWh = dW̃h ⊙ M into ``out`` (which may be dW itself); dW itself when the mask is None."""
    if mask is None:
        return dW
    xp = array_module(dW)
    if out is None:
        out = empty_aligned(xp, dW.shape, dW.dtype)
    return xp.multiply(dW, mask, out=out)


# Locked dropout is the engine's dropout multiply, whose mask (1, N, D) broadcasts
# over T: y = x ⊙ m into ``out`` (x never changed), dx = dy ⊙ m into ``out`` (which
# may be dy); x or dy itself when the mask is None.
locked_dropout_forward = dropout_forward
locked_dropout_backward = dropout_backward


def embedding_forward(ids, E, row_mask=None, out=None):
    """x = (E ⊙ m)[ids] = E[ids] ⊙ m[ids], into ``out`` (T, N, D) when given.

    ids : (T, N) int in [0, V);  E : (V, D);  row_mask : (V, 1), E's dtype, or None
        (no embedding dropout)
    Gathers first and scales the T·N gathered rows, never building Ẽ (V, D).
    Returns x (T, N, D) and the cache.
    """
    x = take_rows(E, ids, out)                              # x = E[ids]; a copy: safe to scale
    if row_mask is not None:
        x *= take_rows(row_mask, ids)                       # ⊙ m[ids], (T, N, 1) over D
    return x, EmbeddingCache(ids, E, row_mask)


def embedding_backward(dx, cache):
    """dE (V, D) of x = (E ⊙ m)[ids]: dẼ[ids[k]] += dx[k] for every k, then dE = dẼ ⊙ m.

    The scatter-add is the one-hot layer's (:func:`.layers.onehot_affine_backward`: one
    compiled pass on NumPy with Numba, else ``scatter_add_rows``), without its bias
    sum, which an embedding does not have.
    """
    ids, E, row_mask = cache
    dE, _ = onehot_affine_backward(dx, AffineCache(ids, E), want_db=False)   # dẼ = onehotᵀ dx
    if row_mask is not None:
        dE *= row_mask                                          # Ẽ = E ⊙ m  ->  dE = dẼ ⊙ m
    return dE
