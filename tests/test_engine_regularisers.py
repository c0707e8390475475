"""The engine's regularisers (engine/regularisers.py) against the textbook (nn/).

Weight drop, locked dropout and the embedding forward are one multiply per
entry on both sides, of the same two numbers (the gather only moves them):
IEEE multiplication is correctly rounded, in SIMD lanes or not, so the two
are equal to the bit, in float32 and float64 alike, and that is asserted.

The embedding backward is a sum: row v of dE adds up the rows of dx whose id
is v. The textbook does it as one GEMM with the (K, V) one-hot matrix, the
engine as a compiled pass over dx (or backend.scatter_add_rows), and BLAS
may split and reorder a GEMM's sums. So these are not bit-equal: each is the
same n_v terms summed in some order, within (n_v - 1) u S of the exact sum
(Higham, Accuracy and Stability, §4.2; u = 2^-24 in float32, 2^-53 in
float64; S = Σ |terms|), and the row mask's multiply adds one rounding to
each. We require |engine - textbook| <= 2 (K + 1) u S m for K = T·N ids, and
in float64 also 1e-12 of dE's largest entry.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import nn
from lstm_scratch.backend import ALIGN
from lstm_scratch.engine import regularisers
from strategies import drop_probs, embedding_dims, lstm_dims, seeds

dtypes = st.sampled_from([np.float32, np.float64])
F64_RTOL = 1e-12


@given(lstm_dims(), st.sampled_from([1, 3, 4]), drop_probs, dtypes, seeds)
def test_weight_drop_engine_equals_textbook(dims, G, p, dtype, seed):
    H = dims["H"]
    rng = np.random.default_rng(seed)
    Wh, dW = (rng.standard_normal((H, G * H)).astype(dtype) for _ in range(2))
    mask = nn.weight_drop_mask(rng, Wh.shape, p, dtype)
    book, _ = nn.weight_drop_forward(Wh, mask)
    engine, cache = regularisers.weight_drop_forward(Wh, mask)
    np.testing.assert_array_equal(engine, book)            # one correctly rounded multiply each
    assert engine.dtype == dtype and cache is mask
    assert engine.flags.c_contiguous and engine.ctypes.data % ALIGN == 0   # the GEMM's aligned B
    out = np.empty_like(Wh)
    assert regularisers.weight_drop_forward(Wh, mask, out=out)[0] is out
    np.testing.assert_array_equal(out, book)

    book_d = nn.weight_drop_backward(dW, mask)
    np.testing.assert_array_equal(regularisers.weight_drop_backward(dW, mask), book_d)
    buf = dW.copy()
    assert regularisers.weight_drop_backward(buf, mask, out=buf) is buf   # in place, into dW
    np.testing.assert_array_equal(buf, book_d)


@given(lstm_dims(), drop_probs, dtypes, seeds)
def test_locked_dropout_engine_equals_textbook(dims, p, dtype, seed):
    T, N, D = dims["T"], dims["N"], dims["D"]
    rng = np.random.default_rng(seed)
    x, dy = (rng.standard_normal((T, N, D)).astype(dtype) for _ in range(2))
    mask = nn.locked_dropout_mask(rng, N, D, p, dtype)
    out = np.empty_like(x)
    engine, cache = regularisers.locked_dropout_forward(x, mask, out=out)
    assert engine is out and cache is mask
    np.testing.assert_array_equal(engine, nn.locked_dropout_forward(x, mask)[0])
    np.testing.assert_array_equal(regularisers.locked_dropout_forward(x, mask)[0], engine)
    book_d = nn.locked_dropout_backward(dy, mask)
    np.testing.assert_array_equal(regularisers.locked_dropout_backward(dy, mask), book_d)
    buf = dy.copy()
    assert regularisers.locked_dropout_backward(buf, mask, out=buf) is buf
    np.testing.assert_array_equal(buf, book_d)
    assert engine.dtype == buf.dtype == dtype


def textbook_embedding(ids, E, dx, mask):
    """x = (E ⊙ m)[ids] and dE, the textbook way: Ẽ built, looked up, then back through both."""
    E_dropped, drop_cache = nn.embedding_dropout_forward(E, mask)
    x, cache = nn.embedding_forward(ids, E_dropped)
    return x, nn.embedding_dropout_backward(nn.embedding_backward(dx, cache), drop_cache)


@given(embedding_dims(), drop_probs, dtypes, st.booleans(), st.booleans(), seeds)
def test_embedding_engine_equals_textbook(dims, p, dtype, dropout, given_out, seed):
    T, N, V, D = dims["T"], dims["N"], dims["V"], dims["D"]
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, (T, N))
    if ids.size > 1:
        ids.flat[-1] = ids.flat[0]                          # a repeat: the rows must add
    E = rng.standard_normal((V, D)).astype(dtype)
    dx = rng.standard_normal((T, N, D)).astype(dtype)
    mask = nn.embedding_dropout_mask(rng, V, p, dtype) if dropout else None
    x_book, dE_book = textbook_embedding(ids, E, dx, mask)

    out = np.empty((T, N, D), dtype) if given_out else None
    x, cache = regularisers.embedding_forward(ids, E, mask, out=out)
    assert out is None or x is out
    np.testing.assert_array_equal(x, x_book)               # E[ids] m[ids] = (E m)[ids], one multiply
    dE = regularisers.embedding_backward(dx, cache)
    assert x.dtype == dE.dtype == dtype and dE.shape == (V, D)

    # a sum of the same terms in another order: the bound of the module docstring
    u = np.finfo(dtype).eps / 2
    S = np.eye(V)[ids.reshape(-1)].T @ np.abs(dx.reshape(-1, D).astype(np.float64))   # Σ |terms|
    m = np.ones((V, 1)) if mask is None else mask.astype(np.float64)
    err = np.abs(dE.astype(np.float64) - dE_book.astype(np.float64))
    assert (err <= 2 * (ids.size + 1) * u * S * m).all(), err.max()
    if dtype == np.float64:
        assert err.max() <= F64_RTOL * max(np.abs(dE_book).max(), 1e-30)


def test_off_returns_the_inputs_and_nothing_is_mutated():
    rng = np.random.default_rng(0)
    Wh, x, E = (rng.standard_normal(s) for s in ((2, 8), (3, 2, 4), (5, 4)))
    Wh_dropped, cache = regularisers.weight_drop_forward(Wh, None)
    assert Wh_dropped is Wh and cache is None
    assert regularisers.weight_drop_backward(Wh, None) is Wh
    y, cache = regularisers.locked_dropout_forward(x, None)
    assert y is x and cache is None and regularisers.locked_dropout_backward(x, None) is x
    ids = np.array([[0, 4], [4, 2]])
    x_e, _ = regularisers.embedding_forward(ids, E)
    np.testing.assert_array_equal(x_e, E[ids])

    masks = (nn.weight_drop_mask(rng, Wh.shape, 0.5, np.float64),
             nn.locked_dropout_mask(rng, 2, 4, 0.5, np.float64),
             nn.embedding_dropout_mask(rng, 5, 0.5, np.float64))
    dx = rng.standard_normal((2, 2, 4))
    arrays = (Wh, x, E, ids, dx, *masks)
    before = [a.copy() for a in arrays]
    regularisers.weight_drop_backward(Wh, masks[0])
    regularisers.weight_drop_forward(Wh, masks[0])
    regularisers.locked_dropout_backward(x, masks[1])
    regularisers.locked_dropout_forward(x, masks[1])
    x_e, cache = regularisers.embedding_forward(ids, E, masks[2])
    x_e[...] = 7.0                                          # a copy of E's rows, not a view
    regularisers.embedding_backward(dx, cache)
    for a, b in zip(before, arrays):
        np.testing.assert_array_equal(a, b)
