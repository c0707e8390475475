"""A character embedding, and embedding dropout (AWD-LSTM's embedded_dropout).

Lookup:   x = onehot(ids) E = E[ids]      ids (T, N) int in [0, V), E (V, D) -> x (T, N, D)
Dropout:  m = B / keep,  B ~ Bernoulli(keep) per row,  keep = 1 - p    (V, 1)
          Ẽ = E ⊙ m                       m broadcast over D             (V, D)

The lookup is the one-hot affine layer of nn/affine.py without the bias: a
one-hot row times E picks a row of E, so the forward is a gather. Its
backward builds the (K, V) one-hot matrix of the K = T·N ids, the plainest
correct form, dE = onehot(ids)ᵀ dx: a character that occurs k times in the
batch gets the sum of its k rows of dx, and one that does not occur gets 0.

Embedding dropout (Gal & Ghahramani 2016) drops whole rows of E, one mask
per batch: a dropped character is zero everywhere it occurs in the batch,
not just at some of its positions. It is DropConnect with one mask entry per
row, so it is :func:`.weight_drop.weight_drop_forward` with a (V, 1) mask,
and that is how it is computed here. A model runs it before the lookup,
x = Ẽ[ids], and its gradient back through both: dE = (onehot(ids)ᵀ dx) ⊙ m.
At evaluation there is no mask (Ẽ = E, E[m] = 1). The mask is drawn by the
caller and passed in; these functions draw nothing.
"""
from typing import NamedTuple

import numpy as np

from .affine import onehot
from .weight_drop import weight_drop_mask


class EmbeddingCache(NamedTuple):
    ids: object      # (T, N) int ids in [0, V)
    shape: tuple     # (V, D), E's shape


def embedding_forward(ids, E):
    """x = E[ids], the row gather that equals onehot(ids) E.

    ids : (T, N) int array of character ids in [0, V) (any shape works)
    E : (V, D) float, the embedding
    Returns x (T, N, D) with E's dtype (a copy, never a view of E), and the cache.
    """
    x = E[ids]                                              # x = onehot(ids) E = E[ids]   (T, N, D)
    return x, EmbeddingCache(ids, E.shape)


def embedding_backward(dx, cache):
    """dE of x = onehot(ids) E. There is no dids: ids are not differentiable.

    dx : (T, N, D) ∂L/∂x;  cache : from :func:`embedding_forward`
    Returns dE (V, D) ∂L/∂E, dx's dtype: row v is the sum of dx over the places where ids == v.
    """
    ids, (V, D) = cache
    X = onehot(ids.reshape(-1), V, dx.dtype)                # (K, V) built, as in the forward's math
    dE = X.T @ dx.reshape(-1, D)                            # x = X E  ->  dE = Xᵀ dx   (V, D)
    return dE


def embedding_dropout_mask(rng, V, p, dtype, xp=np):
    """One mask entry per row of E: 0 with probability p, else 1/(1-p).

    rng : numpy.random.Generator on the host
    V : vocabulary size (rows of E);  p : float in [0, 1), the drop probability
    dtype : E's dtype;  xp : numpy or cupy, where the mask lives
    Returns m (V, 1), or None when p == 0 (embedding dropout off).
    """
    return weight_drop_mask(rng, (V, 1), p, dtype, xp)     # m = B / (1-p), one B per row


def embedding_dropout_forward(E, mask):
    """Ẽ = E ⊙ m: whole rows of E dropped, the kept ones scaled by 1/(1-p).

    E : (V, D) float;  mask : (V, 1), E's dtype, from :func:`embedding_dropout_mask`;
        None means off
    Returns Ẽ (V, D) (E itself when the mask is None) and the cache, the mask.
    """
    if mask is None:
        return E, None
    return E * mask, mask                                   # Ẽ = E ⊙ m, m (V, 1) broadcast over D


def embedding_dropout_backward(dE_dropped, mask):
    """dE = dẼ ⊙ m.

    dE_dropped : (V, D) ∂L/∂Ẽ (what :func:`embedding_backward` returns for x = Ẽ[ids])
    mask : the cache of :func:`embedding_dropout_forward`
    Returns dE (V, D) ∂L/∂E (dE_dropped itself when the mask is None).
    """
    if mask is None:
        return dE_dropped
    return dE_dropped * mask                                # Ẽ = E ⊙ m  ->  dE = dẼ ⊙ m
