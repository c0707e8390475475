"""The textbook LSTM (lstm_scratch/nn/lstm.py): its equations, and gradient checks of its backward."""
import numpy as np
import pytest
from hypothesis import given

from gradcheck import check_grads
from layer_checks import (check_backward_gradcheck, check_backward_mutates_nothing,
                          check_float32_stays_float32, check_saturated_stays_finite,
                          check_truncated_bptt_chunks_compose)
from lstm_scratch.nn import (GATE_ORDER, gate_slice, join_gates, lstm_backward, lstm_forward,
                             lstm_step_backward, lstm_step_forward, split_gates)
from strategies import lstm_dims, seeds


def random_layer(rng, N, T, D, H, dtype=np.float64, ids=False, V=5):
    x = rng.integers(0, V, (T, N)) if ids else rng.standard_normal((T, N, D)).astype(dtype)
    D = V if ids else D
    return dict(x=x,
                h0=rng.standard_normal((N, H)).astype(dtype),
                c0=rng.standard_normal((N, H)).astype(dtype),
                Wx=(rng.standard_normal((D, 4 * H)) * 0.5).astype(dtype),
                Wh=(rng.standard_normal((H, 4 * H)) * 0.5).astype(dtype),
                b=rng.standard_normal(4 * H).astype(dtype))    # nonzero biases: catch mixed-up blocks


def reference_forward(x, h0, c0, Wx, Wh, b):
    """The cell equations written the plainest way, one gate matrix at a time."""
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))
    H = Wh.shape[0]
    blocks = {name: gate_slice(name, H) for name in GATE_ORDER}
    h, c, hs = h0, c0, []
    for x_t in x:
        a = x_t @ Wx + h @ Wh + b
        i, f = sigmoid(a[:, blocks["i"]]), sigmoid(a[:, blocks["f"]])
        g, o = np.tanh(a[:, blocks["g"]]), sigmoid(a[:, blocks["o"]])
        c = f * c + i * g
        h = o * np.tanh(c)
        hs.append(h)
    return np.stack(hs), h, c


def test_gate_order_is_pytorch_order():
    assert GATE_ORDER == ("i", "f", "g", "o")
    a = np.arange(8.0).reshape(1, 8)
    i, f, g, o = split_gates(a)
    assert (i == [[0, 1]]).all() and (f == [[2, 3]]).all()
    assert (g == [[4, 5]]).all() and (o == [[6, 7]]).all()
    np.testing.assert_array_equal(join_gates(i, f, g, o), a)


@given(lstm_dims(), seeds)
def test_step_backward_gradcheck(dims, seed):
    rng = np.random.default_rng(seed)
    N, D, H = dims["N"], dims["D"], dims["H"]
    layer = random_layer(rng, N=N, T=1, D=D, H=H)
    arrays = dict(x=layer["x"][0], h_prev=layer["h0"], c_prev=layer["c0"],
                  Wx=layer["Wx"], Wh=layer["Wh"], b=layer["b"])
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))   # upstream for h_t and c_t

    def f():
        h, c, _ = lstm_step_forward(**arrays)
        return (h * dh).sum() + (c * dc).sum()

    h, c, cache = lstm_step_forward(**arrays)
    # c_t feeds h_t inside the step: the backward's dc is only the part from outside
    grads = lstm_step_backward(dh, dc, cache)
    check_grads(f, arrays, dict(zip(("x", "h_prev", "c_prev", "Wx", "Wh", "b"), grads)))


def test_step_backward_mutates_neither_arguments_nor_cache():
    rng = np.random.default_rng(3)
    layer = random_layer(rng, N=2, T=1, D=3, H=2)
    h, c, cache = lstm_step_forward(layer["x"][0], layer["h0"], layer["c0"],
                                    layer["Wx"], layer["Wh"], layer["b"])
    dh, dc = rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    before = [a.copy() for a in (dh, dc, *cache)]
    lstm_step_backward(dh, dc, cache)
    for a, b in zip(before, (dh, dc, *cache)):
        np.testing.assert_array_equal(a, b)


@given(lstm_dims(), seeds)
def test_forward_matches_plain_equations(dims, seed):
    layer = random_layer(np.random.default_rng(seed), **dims)
    h, (hT, cT), _ = lstm_forward(**layer)
    h_ref, hT_ref, cT_ref = reference_forward(**layer)
    np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hT, hT_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cT, cT_ref, rtol=1e-12, atol=1e-12)


@given(lstm_dims(), seeds)
def test_backward_gradcheck(dims, seed):
    rng = np.random.default_rng(seed)
    check_backward_gradcheck(lstm_forward, lstm_backward, random_layer(rng, **dims), rng,
                             state=("h", "c"))


@given(lstm_dims(), seeds)
def test_backward_gradcheck_onehot_ids(dims, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, ids=True, **dims)
    dh = rng.standard_normal((dims["T"], dims["N"], dims["H"]))
    ids = layer.pop("x")

    def f():
        return (lstm_forward(ids, **layer)[0] * dh).sum()

    g = lstm_backward(dh, lstm_forward(ids, **layer)[2])
    assert g["dx"] is None
    check_grads(f, layer, {"h0": g["dh0"], "c0": g["dc0"],
                           "Wx": g["dWx"], "Wh": g["dWh"], "b": g["db"]})


@given(lstm_dims(), seeds)
def test_onehot_ids_equal_dense_onehot(dims, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, ids=True, **dims)
    ids = layer.pop("x")
    onehot = np.eye(5)[ids]                     # (T, N, V)
    dh = rng.standard_normal(ids.shape + (dims["H"],))
    h_ids, _, cache_ids = lstm_forward(ids, **layer)
    h_dense, _, cache_dense = lstm_forward(onehot, **layer)
    np.testing.assert_allclose(h_ids, h_dense, rtol=1e-12, atol=1e-14)
    g_ids, g_dense = lstm_backward(dh, cache_ids), lstm_backward(dh, cache_dense)
    for name in ("dWx", "dWh", "db", "dh0", "dc0"):
        np.testing.assert_allclose(g_ids[name], g_dense[name], rtol=1e-10, atol=1e-12)


@given(lstm_dims(), seeds)
def test_truncated_bptt_chunks_compose(dims, seed):
    rng = np.random.default_rng(seed)
    dims["T"] += 1
    check_truncated_bptt_chunks_compose(lstm_forward, lstm_backward, random_layer(rng, **dims), rng,
                                        state=("h", "c"))


def test_backward_mutates_nothing():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=2, T=3, D=3, H=2)
    check_backward_mutates_nothing(lstm_forward, lstm_backward, layer, rng, state=("h", "c"))


@pytest.mark.parametrize("ids", [False, True])
def test_float32_stays_float32(ids):
    layer = random_layer(np.random.default_rng(1), N=2, T=3, D=4, H=3, dtype=np.float32, ids=ids)
    check_float32_stays_float32(lstm_forward, lstm_backward, layer, state=("h", "c"))


def test_saturated_gates_stay_finite():
    layer = random_layer(np.random.default_rng(2), N=2, T=5, D=3, H=2)
    check_saturated_stays_finite(lstm_forward, lstm_backward, layer, scaled=("Wx", "b"))
