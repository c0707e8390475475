"""The GRU of nn/gru.py: gate order, float64 gradient checks, truncated BPTT,
dtype, and equality with torch.nn.GRU."""
import numpy as np
import pytest
from hypothesis import given

from lstm_scratch.nn import (GRU_GATE_ORDER, gru_backward, gru_forward, gru_gate_slice,
                             gru_step_backward, gru_step_forward, join_gru_gates,
                             split_gru_gates)
from layer_checks import (check_backward_gradcheck, check_backward_mutates_nothing,
                          check_float32_stays_float32, check_int_ids_are_one_hot_rows,
                          check_matches_torch, check_saturated_stays_finite,
                          check_step_backward_gradcheck, check_truncated_bptt_chunks_compose)
from strategies import layer_dims, seeds


def random_layer(rng, N, T, D, H, dtype=np.float64):
    return dict(x=rng.standard_normal((T, N, D)).astype(dtype),
                h0=rng.standard_normal((N, H)).astype(dtype),
                Wx=(rng.standard_normal((D, 3 * H)) * 0.5).astype(dtype),
                Wh=(rng.standard_normal((H, 3 * H)) * 0.5).astype(dtype),
                bx=rng.standard_normal(3 * H).astype(dtype),    # nonzero biases, both:
                bh=rng.standard_normal(3 * H).astype(dtype))    # b_hn must stay inside r ⊙ (...)


def reference_forward(x, h0, Wx, Wh, bx, bh):
    """PyTorch's documented equations, one gate matrix at a time."""
    sigmoid = lambda a: 1.0 / (1.0 + np.exp(-a))
    H = Wh.shape[0]
    W = {(side, g): M[:, gru_gate_slice(g, H)] for side, M in (("i", Wx), ("h", Wh)) for g in "rzn"}
    b = {(side, g): v[gru_gate_slice(g, H)] for side, v in (("i", bx), ("h", bh)) for g in "rzn"}
    h, hs = h0, []
    for x_t in x:
        r = sigmoid(x_t @ W["i", "r"] + b["i", "r"] + h @ W["h", "r"] + b["h", "r"])
        z = sigmoid(x_t @ W["i", "z"] + b["i", "z"] + h @ W["h", "z"] + b["h", "z"])
        n = np.tanh(x_t @ W["i", "n"] + b["i", "n"] + r * (h @ W["h", "n"] + b["h", "n"]))
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.stack(hs), h


def test_gate_order_is_pytorch_order():
    assert GRU_GATE_ORDER == ("r", "z", "n")
    a = np.arange(6.0).reshape(1, 6)
    r, z, n = split_gru_gates(a)
    assert (r == [[0, 1]]).all() and (z == [[2, 3]]).all() and (n == [[4, 5]]).all()
    np.testing.assert_array_equal(join_gru_gates(r, z, n), a)


@given(layer_dims(), seeds)
def test_forward_matches_plain_equations(dims, seed):
    layer = random_layer(np.random.default_rng(seed), **dims)
    h, hT, _ = gru_forward(**layer)
    h_ref, hT_ref = reference_forward(**layer)
    np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hT, hT_ref, rtol=1e-12, atol=1e-12)


@given(layer_dims(), seeds)
def test_step_backward_gradcheck(dims, seed):
    rng = np.random.default_rng(seed)
    check_step_backward_gradcheck(gru_step_forward, gru_step_backward, random_layer(rng, **dims), rng)


@given(layer_dims(), seeds)
def test_backward_gradcheck(dims, seed):
    rng = np.random.default_rng(seed)
    check_backward_gradcheck(gru_forward, gru_backward, random_layer(rng, **dims), rng)


@given(layer_dims(), seeds)
def test_truncated_bptt_chunks_compose(dims, seed):
    rng = np.random.default_rng(seed)
    dims["T"] += 1
    check_truncated_bptt_chunks_compose(gru_forward, gru_backward, random_layer(rng, **dims), rng)


def test_backward_mutates_nothing():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=2, T=3, D=3, H=2)
    check_backward_mutates_nothing(gru_forward, gru_backward, layer, rng)


def test_float32_stays_float32():
    layer = random_layer(np.random.default_rng(1), N=2, T=3, D=4, H=3, dtype=np.float32)
    check_float32_stays_float32(gru_forward, gru_backward, layer)


def test_saturated_gates_stay_finite():
    layer = random_layer(np.random.default_rng(2), N=2, T=5, D=3, H=2)
    check_saturated_stays_finite(gru_forward, gru_backward, layer, scaled=("Wx", "bx"))


@given(layer_dims(), seeds)
def test_matches_torch_gru(dims, seed):
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    rng = np.random.default_rng(seed)
    N, T, D, H = dims["N"], dims["T"], dims["D"], dims["H"]
    layer = random_layer(rng, **dims)
    dh, dhT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))

    check_matches_torch(torch, torch.nn.GRU(D, H).double(), gru_forward, gru_backward, layer,
                        biases=(layer["bx"], layer["bh"]), dh=dh, dhT=dhT,   # one to one
                        bias_grads=("dbx", "dbh"))


@given(layer_dims(), seeds)
def test_int_ids_are_one_hot_rows(dims, seed):
    rng = np.random.default_rng(seed)
    check_int_ids_are_one_hot_rows(gru_forward, gru_backward, random_layer(rng, **dims), rng)
