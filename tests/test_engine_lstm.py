"""The fast LSTM (engine/lstm.py, engine/layers.py, whole models) against the textbook (nn/).

float64: the two compute the same sums in other orders (one GEMM over all
steps against a sum of per-step products; a scaled tanh against σ), so they
agree to rounding; we require 1e-10 of each array's largest entry.

float32: rounding differs by more. ε = 2^-23 ≈ 1.2e-7 per operation, a
value passes through ~T (D + H) roundings in the recurrence and the sums
over time, and the compiled cell's tanh is within 3.1e-7 of tanh (docs/math.md):
for the shapes drawn here (T ≤ 6, widths ≤ 24) we allow 2e-5 of each
array's largest entry (~170 ulps of it), plus 1e-6 absolute (8 ulps of 1.0,
the scale of the inputs and upstream gradients: a gradient that shrank
through T small forget gates still carries the rounding of the O(1) values
it came from). Measured over 300 draws: at most 1.4e-6 relative. Never
bit-equality: BLAS and Numba may vectorise the two paths differently.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import CharLSTM, UserError
from lstm_scratch import nn
from lstm_scratch.backend import dropout_mask
from lstm_scratch.engine import layers
from lstm_scratch.engine import lstm as engine_lstm
from strategies import lstm_dims, model_dims, seeds
from test_lstm import random_layer
from test_model import random_model

F64_RTOL = 1e-10
F32_RTOL, F32_ATOL = 2e-5, 1e-6


def assert_same(actual, desired, rtol, what="", atol=0.0):
    """max |actual - desired| <= rtol * max |desired| + atol (an array's scale, not each entry's)."""
    if desired is None:
        assert actual is None, what
        return
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    assert actual.shape == desired.shape, (what, actual.shape, desired.shape)
    scale = max(np.abs(desired).max(initial=0.0), 1e-30)
    err = (np.abs(actual - desired).max(initial=0.0) - atol) / scale
    assert err <= rtol, f"{what}: relative error {err:.2e} > {rtol:.0e} (beyond atol {atol:.0e})"


def both_layers(layer, dh, dhT, dcT, fused=True):
    """Every output of the textbook layer and of the engine's, keyed alike."""
    outs = []
    for forward, backward, kw in ((nn.lstm_forward, nn.lstm_backward, {}),
                                  (engine_lstm.lstm_forward, engine_lstm.lstm_backward,
                                   dict(fused=fused))):
        h, (hT, cT), cache = forward(**layer, **kw)
        g = backward(dh, cache, dhT, dcT, **kw)
        outs.append(dict(h=h, hT=hT, cT=cT, **g))
    return outs


@given(lstm_dims(), st.booleans(), st.booleans(), seeds)
def test_layer_engine_equals_textbook_float64(dims, ids, final_grads, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, ids=ids, **dims)              # nonzero h0, c0: a carried state
    T, N, H = dims["T"], dims["N"], dims["H"]
    dh = rng.standard_normal((T, N, H))
    dhT, dcT = ((rng.standard_normal((N, H)), rng.standard_normal((N, H))) if final_grads
                else (None, None))
    book, engine = both_layers(layer, dh, dhT, dcT)
    assert set(book) == set(engine)
    for k in book:
        assert_same(engine[k], book[k], F64_RTOL, k)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 24), st.booleans(), seeds)
def test_layer_engine_equals_textbook_float32(N, T, H, ids, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, N, T, 7, H, dtype=np.float32, ids=ids, V=7)
    dh, dhT, dcT = (rng.standard_normal(s).astype(np.float32) for s in ((T, N, H), (N, H), (N, H)))
    book, engine = both_layers(layer, dh, dhT, dcT)         # the compiled cell, where Numba is
    for k in book:
        if book[k] is not None:
            assert engine[k].dtype == book[k].dtype == np.float32, k
        assert_same(engine[k], book[k], F32_RTOL, k, F32_ATOL)


@pytest.mark.parametrize("zoneout", [False, True])
def test_engine_backward_mutates_nothing(zoneout):
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=2, T=3, D=3, H=2)
    dh, dhT, dcT = rng.standard_normal((3, 2, 2)), rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    masks = tuple((rng.random((3, 2, 2)) < 0.5) * 1.0 for _ in "ch") if zoneout else None
    _, _, cache = engine_lstm.lstm_forward(**layer, zoneout=masks)

    def arrays():                       # everything handed in, and the cache (masks included)
        kept = [a for a in cache[1:-1]] + list(cache.zoneout or ())
        return (dh, dhT, dcT, *layer.values(), *kept)
    before = [a.copy() for a in arrays()]
    engine_lstm.lstm_backward(dh, cache, dhT, dcT)
    for a, b in zip(before, arrays()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_onehot_backward_refuses_ids_that_do_not_match_dy(dtype):
    from lstm_scratch.nn.affine import AffineCache
    ids = np.arange(8)[:2]                                  # a view with more ids behind it
    with pytest.raises(ValueError, match="2 ids for 4 rows of dy"):
        layers.onehot_affine_backward(np.ones((4, 3), dtype), AffineCache(ids, np.zeros((8, 3), dtype)))


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), seeds)
def test_affine_onehot_dropout_engine_equal_textbook(T, N, D, M, seed):
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((T, N, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    dy = rng.standard_normal((T, N, M))
    (y0, c0), (y1, c1) = nn.affine_forward(x, W, b), layers.affine_forward(x, W, b)
    assert_same(y1, y0, F64_RTOL, "y")
    for k, (g1, g0) in enumerate(zip(layers.affine_backward(dy, c1), nn.affine_backward(dy, c0))):
        assert_same(g1, g0, F64_RTOL, f"affine grad {k}")
    ids = rng.integers(0, D, (T, N))                        # repeats: rows must accumulate
    (y0, c0), (y1, c1) = nn.onehot_affine_forward(ids, W, b), layers.onehot_affine_forward(ids, W, b)
    assert_same(y1, y0, F64_RTOL, "onehot y")
    for k, (g1, g0) in enumerate(zip(layers.onehot_affine_backward(dy, c1),
                                     nn.onehot_affine_backward(dy, c0))):
        assert_same(g1, g0, F64_RTOL, f"onehot grad {k}")
    mask = dropout_mask(rng, x.shape, 0.6, np.float64)
    (y0, m0), (y1, m1) = nn.dropout_forward(x, mask), layers.dropout_forward(x, mask, np.empty_like(x))
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(layers.dropout_backward(x.copy(), m1), nn.dropout_backward(x, m0))


def model_pair(dims, seed, dropout, dtype):
    """Two models, one per engine, with the same random (nonzero) parameters."""
    fast = random_model(dims, seed, dropout, dtype)
    book = CharLSTM(dims["V"], dims["H"], dims["L"], dropout=dropout, dtype=dtype, seed=seed,
                    engine="reference")
    book.load_params(fast.params)
    return fast, book


def assert_runs_equal(fast, book, inputs, targets, state, rtol, atol=0.0):
    """loss_and_grads of both models from the same seed (both draw the dropout masks
    from their own, equally seeded Generator): loss, every gradient, the final state."""
    (l1, g1, s1), (l0, g0, s0) = (m.loss_and_grads(inputs, targets, state) for m in (fast, book))
    assert abs(l1 - l0) <= rtol * abs(l0), (l1, l0)
    for name in g0:
        assert g1[name].dtype == g0[name].dtype == fast.dtype
        assert_same(g1[name], g0[name], rtol, name, atol)
    for l, ((h1, c1), (h0, c0)) in enumerate(zip(s1, s0)):
        assert_same(h1, h0, rtol, f"h_T of layer {l}", atol)
        assert_same(c1, c0, rtol, f"c_T of layer {l}", atol)
    assert abs(fast.loss(inputs, targets, state)[0] - book.loss(inputs, targets, state)[0]) \
        <= rtol * abs(l0)


@given(model_dims(), st.booleans(), st.booleans(), st.sampled_from([0.0, 0.3]), seeds)
def test_model_engines_agree_float64(dims, many_to_one, with_state, dropout, seed):
    fast, book = model_pair(dims, seed, dropout, "float64")
    rng = np.random.default_rng(seed + 1)
    B, T, V, H = dims["B"], dims["T"], dims["V"], dims["H"]
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = ([(rng.standard_normal((B, H)), rng.standard_normal((B, H))) for _ in range(dims["L"])]
             if with_state else None)
    assert_runs_equal(fast, book, inputs, targets, state, F64_RTOL)


@pytest.mark.parametrize("many_to_one", [False, True])
def test_model_engines_agree_float32(many_to_one):
    fast, book = model_pair(dict(V=11, H=24, L=2), 3, 0.25, "float32")
    for p in fast.params.values():
        p *= 0.5                                            # moderate gates, as in training
    book.load_params(fast.params)
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 11, (5, 6))
    targets = rng.integers(0, 11, (5,) if many_to_one else (5, 6))
    assert_runs_equal(fast, book, inputs, targets, None, F32_RTOL, F32_ATOL)


def test_engine_is_checked_and_not_part_of_the_architecture():
    with pytest.raises(UserError, match="engine must be one of fast, reference, got 'slow'"):
        CharLSTM(5, 3, 1, engine="slow")
    fast, book = CharLSTM(5, 3, 1, engine="fast"), CharLSTM(5, 3, 1, engine="reference")
    assert fast.config == book.config and "engine" not in fast.config
    for name in fast.params:
        np.testing.assert_array_equal(fast.params[name], book.params[name])
