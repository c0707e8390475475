"""Zoneout (nn/zoneout.py; the engine's LSTM, GRU and RNN layers): gradient checks in float64,
the engine against the textbook, and what it means."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_grads
from lstm_scratch.nn import lstm_forward
from lstm_scratch.nn.zoneout import (hidden_zoneout_backward, hidden_zoneout_forward,
                                     lstm_zoneout_backward, lstm_zoneout_forward,
                                     zoneout_backward, zoneout_forward, zoneout_mask)
from strategies import lstm_dims, seeds
import test_gru
import test_rnn
from lstm_scratch import nn
from lstm_scratch.engine import gru as engine_gru
from lstm_scratch.engine import lstm as engine_lstm
from lstm_scratch.engine import rnn as engine_rnn
from test_engine_lstm import F32_ATOL, F32_RTOL, F64_RTOL, assert_same
from test_lstm import random_layer

rates = st.floats(0.05, 0.9)


@given(st.integers(1, 3), st.integers(1, 4), rates, seeds)
def test_gradcheck_the_mix(N, H, z, seed):
    rng = np.random.default_rng(seed)
    arrays = {"prev": rng.standard_normal((N, H)), "new": rng.standard_normal((N, H))}
    dy = rng.standard_normal((N, H))
    for d in (zoneout_mask(rng, (N, H), z, np.float64), z):       # a mask, and the rate
        dprev, dnew = zoneout_backward(dy, zoneout_forward(arrays["prev"], arrays["new"], d)[1])
        check_grads(lambda: (zoneout_forward(arrays["prev"], arrays["new"], d)[0] * dy).sum(),
                    arrays, {"prev": dprev, "new": dnew})


@given(lstm_dims(), rates, rates, st.booleans(), st.booleans(), seeds)
def test_gradcheck_through_an_lstm_layer(dims, z_c, z_h, ids, at_rates, seed):
    """Every input of the layer, every weight, the initial state and the final state's
    gradient from the next chunk, with fresh masks each step (or the rates, as at evaluation)."""
    rng = np.random.default_rng(seed)
    T, N, H = dims["T"], dims["N"], dims["H"]
    layer = random_layer(rng, N, T, dims["D"], H, ids=ids)
    if at_rates:
        dc, dh_mask = z_c, z_h
    else:
        dc, dh_mask = (zoneout_mask(rng, (T, N, H), z, np.float64) for z in (z_c, z_h))
    dh, dhT, dcT = (rng.standard_normal(s) for s in ((T, N, H), (N, H), (N, H)))
    x = layer.pop("x")
    arrays = layer if ids else dict(layer, x=x)

    def loss():
        h, (hT, cT), _ = lstm_zoneout_forward(x if ids else arrays["x"], **layer, dc=dc, dh=dh_mask)
        return (h * dh).sum() + (hT * dhT).sum() + (cT * dcT).sum()

    _, _, cache = lstm_zoneout_forward(x, **layer, dc=dc, dh=dh_mask)
    g = lstm_zoneout_backward(dh, cache, dhT, dcT)
    assert (g["dx"] is None) == ids
    analytic = {"h0": g["dh0"], "c0": g["dc0"], "Wx": g["dWx"], "Wh": g["dWh"], "b": g["db"]}
    if not ids:
        analytic["x"] = g["dx"]
    check_grads(loss, arrays, analytic)


@given(lstm_dims(), seeds)
def test_rate_zero_is_the_plain_lstm(dims, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    h, (hT, cT), _ = lstm_zoneout_forward(**layer, dc=0.0, dh=0.0)
    h0, (hT0, cT0), _ = lstm_forward(**layer)
    np.testing.assert_allclose(h, h0, rtol=0, atol=1e-15)          # 0 * prev + 1 * new: exact
    np.testing.assert_allclose(cT, cT0, rtol=0, atol=1e-15)


def test_a_zoned_out_unit_keeps_its_value_and_passes_its_gradient_through():
    """Where d = 1 at every step, c_t = c_0 and h_t = h_0 exactly, and the gradient reaching
    c_T arrives at c_0 untouched (the identity through time)."""
    rng = np.random.default_rng(0)
    T, N, H = 5, 2, 3
    layer = random_layer(rng, N, T, 4, H)
    dc = np.zeros((T, N, H))
    dh = np.zeros((T, N, H))
    dc[:, 0, 1] = dh[:, 0, 1] = 1.0                           # row 0, unit 1 always zones out
    h, (hT, cT), cache = lstm_zoneout_forward(**layer, dc=dc, dh=dh)
    assert (h[:, 0, 1] == layer["h0"][0, 1]).all() and cT[0, 1] == layer["c0"][0, 1]
    dcT = np.zeros((N, H))
    dcT[0, 1] = 1.0
    g = lstm_zoneout_backward(np.zeros((T, N, H)), cache, None, dcT)
    assert g["dc0"][0, 1] == 1.0 and g["dh0"][0, 1] == 0.0


def test_the_mask_is_bernoulli_of_the_rate():
    d = zoneout_mask(np.random.default_rng(0), (400, 500), 0.3, np.float32)
    assert d.dtype == np.float32 and set(np.unique(d)) == {0.0, 1.0}
    assert abs(d.mean() - 0.3) < 0.005                       # 200,000 draws: sd 0.001
    assert zoneout_mask(np.random.default_rng(0), (2, 3), 0.0, np.float32) is None
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        zoneout_mask(np.random.default_rng(0), (2, 3), 1.0, np.float32)


# -- the engine (engine/lstm.py's zoneout=) against the textbook ------------------------

def _both(layer, dh, dhT, dcT, zoneout, fused):
    h, (hT, cT), cache = lstm_zoneout_forward(**layer, dc=zoneout[0], dh=zoneout[1])
    book = dict(h=h, hT=hT, cT=cT, **lstm_zoneout_backward(dh, cache, dhT, dcT))
    h, (hT, cT), cache = engine_lstm.lstm_forward(**layer, fused=fused, zoneout=zoneout)
    engine = dict(h=h.copy(), hT=hT.copy(), cT=cT.copy(),
                  **engine_lstm.lstm_backward(dh, cache, dhT, dcT, fused=fused))
    return book, engine


@given(lstm_dims(), rates, rates, st.booleans(), st.booleans(), st.booleans(), seeds)
def test_engine_equals_textbook_float64(dims, z_c, z_h, ids, at_rates, fused, seed):
    rng = np.random.default_rng(seed)
    T, N, H = dims["T"], dims["N"], dims["H"]
    layer = random_layer(rng, ids=ids, **dims)
    zoneout = ((z_c, z_h) if at_rates else
               tuple(zoneout_mask(rng, (T, N, H), z, np.float64) for z in (z_c, z_h)))
    dh, dhT, dcT = (rng.standard_normal(s) for s in ((T, N, H), (N, H), (N, H)))
    book, engine = _both(layer, dh, dhT, dcT, zoneout, fused)
    assert set(book) == set(engine)
    for k in book:
        assert_same(engine[k], book[k], F64_RTOL, k)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 24), st.booleans(), seeds)
def test_engine_equals_textbook_float32(N, T, H, at_rates, seed):
    """The compiled cell where Numba is, within test_engine_lstm.py's float32 bounds."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, N, T, 7, H, dtype=np.float32)
    zoneout = ((0.5, 0.05) if at_rates else
               tuple(zoneout_mask(rng, (T, N, H), z, np.float32) for z in (0.5, 0.05)))
    dh, dhT, dcT = (rng.standard_normal(s).astype(np.float32) for s in ((T, N, H), (N, H), (N, H)))
    book, engine = _both(layer, dh, dhT, dcT, zoneout, True)
    for k in book:
        if book[k] is not None:
            assert engine[k].dtype == np.float32, k
        assert_same(engine[k], book[k], F32_RTOL, k, atol=F32_ATOL)


# -- the GRU and the RNN: zoneout on h, their only state ---------------------------------

HIDDEN_CELLS = {   # name: (random layer, step forward, step backward, grad names, engine module)
    "gru": (test_gru.random_layer, nn.gru_step_forward, nn.gru_step_backward,
            ("dWx", "dWh", "dbx", "dbh"), engine_gru),
    "rnn": (test_rnn.random_layer, nn.rnn_step_forward, nn.rnn_step_backward,
            ("dWx", "dWh", "db"), engine_rnn),
}


@pytest.mark.parametrize("cell", HIDDEN_CELLS)
@given(lstm_dims(), rates, st.booleans(), seeds)
def test_gradcheck_through_a_gru_or_rnn_layer(cell, dims, z_h, at_rates, seed):
    make, step_forward, step_backward, names, _ = HIDDEN_CELLS[cell]
    rng = np.random.default_rng(seed)
    T, N, H = dims["T"], dims["N"], dims["H"]
    arrays = make(rng, N, T, dims["D"], H)
    d = z_h if at_rates else zoneout_mask(rng, (T, N, H), z_h, np.float64)
    dh, dhT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))
    weights = lambda: tuple(v for k, v in arrays.items() if k not in ("x", "h0"))   # noqa: E731

    def loss():
        h, hT, _ = hidden_zoneout_forward(step_forward, arrays["x"], arrays["h0"], weights(), d)
        return (h * dh).sum() + (hT * dhT).sum()

    _, _, cache = hidden_zoneout_forward(step_forward, arrays["x"], arrays["h0"], weights(), d)
    g = hidden_zoneout_backward(step_backward, names, dh, cache, dhT)
    weight_names = [k for k in arrays if k not in ("x", "h0")]
    analytic = {"x": g["dx"], "h0": g["dh0"], **{k: g["d" + k] for k in weight_names}}
    check_grads(loss, arrays, analytic)


def _hidden_both(cell, layer, dh, dhT, d, **engine_kw):
    """Every output of the textbook's GRU or RNN layer with zoneout on h and of the engine's,
    keyed alike (as :func:`_both` for the LSTM)."""
    _, step_forward, step_backward, names, engine = HIDDEN_CELLS[cell]
    layer = dict(layer)
    x, h0 = layer.pop("x"), layer.pop("h0")
    weights = tuple(layer.values())
    h, hT, cache = hidden_zoneout_forward(step_forward, x, h0, weights, d)
    book = dict(h=h, hT=hT, **hidden_zoneout_backward(step_backward, names, dh, cache, dhT))
    h, hT, cache = getattr(engine, f"{cell}_forward")(x, h0, *weights, zoneout=(0.0, d),
                                                       **engine_kw)
    fast = dict(h=h.copy(), hT=hT.copy(),
                **getattr(engine, f"{cell}_backward")(dh, cache, dhT, **engine_kw))
    return book, fast


@pytest.mark.parametrize("cell", HIDDEN_CELLS)
@given(lstm_dims(), rates, st.booleans(), st.booleans(), seeds)
def test_gru_and_rnn_engine_equals_textbook_float64(cell, dims, z_h, at_rates, fused, seed):
    make = HIDDEN_CELLS[cell][0]
    rng = np.random.default_rng(seed)
    T, N, H = dims["T"], dims["N"], dims["H"]
    layer = make(rng, N, T, dims["D"], H)
    d = z_h if at_rates else zoneout_mask(rng, (T, N, H), z_h, np.float64)
    dh, dhT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))
    book, fast = _hidden_both(cell, layer, dh, dhT, d, fused=fused)
    assert set(book) == set(fast)
    for k in book:
        assert_same(fast[k], book[k], F64_RTOL, k)


@pytest.mark.parametrize("cell", HIDDEN_CELLS)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 24), st.booleans(), seeds)
def test_gru_and_rnn_engine_equals_textbook_float32(cell, N, T, H, at_rates, seed):
    """The compiled float32 steps (where Numba is), within test_engine_gru.py's bounds."""
    make = HIDDEN_CELLS[cell][0]
    rng = np.random.default_rng(seed)
    layer = make(rng, N, T, 5, H, dtype=np.float32)
    d = 0.3 if at_rates else zoneout_mask(rng, (T, N, H), 0.3, np.float32)
    dh, dhT = (rng.standard_normal(s).astype(np.float32) for s in ((T, N, H), (N, H)))
    book, fast = _hidden_both(cell, layer, dh, dhT, d)
    for k in book:
        assert fast[k].dtype == np.float32, k
        np.testing.assert_allclose(fast[k], book[k], rtol=1e-4, atol=1e-5, err_msg=k)
