"""The GRU of nn/gru.py: gate order, float64 gradient checks, truncated BPTT,
dtype, and equality with torch.nn.GRU."""
import numpy as np
import pytest
from hypothesis import given

from gradcheck import check_grads
from lstm_scratch.nn import (GRU_GATE_ORDER, gru_backward, gru_forward, gru_gate_slice,
                             gru_step_backward, gru_step_forward, join_gru_gates,
                             split_gru_gates)
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
    layer = random_layer(rng, **dims)
    step = dict(x=layer["x"][0], h_prev=layer["h0"], Wx=layer["Wx"], Wh=layer["Wh"],
                bx=layer["bx"], bh=layer["bh"])
    dh = rng.standard_normal((dims["N"], dims["H"]))
    f = lambda: (gru_step_forward(**step)[0] * dh).sum()
    dx, dh_prev, dWx, dWh, dbx, dbh = gru_step_backward(dh, gru_step_forward(**step)[1])
    check_grads(f, step, dict(x=dx, h_prev=dh_prev, Wx=dWx, Wh=dWh, bx=dbx, bh=dbh))


@given(layer_dims(), seeds)
def test_backward_gradcheck(dims, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    dh = rng.standard_normal((dims["T"], dims["N"], dims["H"]))    # random upstream,
    dhT = rng.standard_normal((dims["N"], dims["H"]))              # and for the carried state

    def f():
        h, hT, _ = gru_forward(**layer)
        return (h * dh).sum() + (hT * dhT).sum()

    g = gru_backward(dh, gru_forward(**layer)[2], dhT)
    check_grads(f, layer, {"x": g["dx"], "h0": g["dh0"], "Wx": g["dWx"], "Wh": g["dWh"],
                           "bx": g["dbx"], "bh": g["dbh"]})


@given(layer_dims(), seeds)
def test_truncated_bptt_chunks_compose(dims, seed):
    """Two chunks, state and gradients handed across, equal one long sequence."""
    rng = np.random.default_rng(seed)
    dims["T"] += 1
    layer = random_layer(rng, **dims)
    x, h0, T = layer.pop("x"), layer.pop("h0"), dims["T"]
    dh = rng.standard_normal((T, dims["N"], dims["H"]))
    k = T // 2
    h_full, _, cache_full = gru_forward(x, h0, **layer)
    h_a, h_k, cache_a = gru_forward(x[:k], h0, **layer)
    h_b, _, cache_b = gru_forward(x[k:], h_k, **layer)
    np.testing.assert_allclose(np.concatenate([h_a, h_b]), h_full, rtol=1e-12, atol=1e-14)
    g_full, g_b = gru_backward(dh, cache_full), gru_backward(dh[k:], cache_b)
    g_a = gru_backward(dh[:k], cache_a, dhT=g_b["dh0"])
    for name in ("dWx", "dWh", "dbx", "dbh"):
        np.testing.assert_allclose(g_a[name] + g_b[name], g_full[name], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([g_a["dx"], g_b["dx"]]), g_full["dx"],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_a["dh0"], g_full["dh0"], rtol=1e-10, atol=1e-12)


def test_backward_mutates_nothing():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=2, T=3, D=3, H=2)
    dh, dhT = rng.standard_normal((3, 2, 2)), rng.standard_normal((2, 2))
    _, _, cache = gru_forward(**layer)
    arrays = (dh, dhT, *layer.values(), *(a for step in cache.steps for a in step))
    before = [a.copy() for a in arrays]
    gru_backward(dh, cache, dhT)
    for a, b in zip(before, arrays):
        np.testing.assert_array_equal(a, b)


def test_float32_stays_float32():
    layer = random_layer(np.random.default_rng(1), N=2, T=3, D=4, H=3, dtype=np.float32)
    h, hT, cache = gru_forward(**layer)
    assert h.dtype == hT.dtype == np.float32
    g = gru_backward(np.ones_like(h), cache, np.ones_like(hT))
    assert all(v.dtype == np.float32 for v in g.values())


def test_saturated_gates_stay_finite():
    layer = random_layer(np.random.default_rng(2), N=2, T=5, D=3, H=2)
    layer["Wx"] *= 1e4
    layer["bx"] *= 1e4
    h, hT, cache = gru_forward(**layer)
    g = gru_backward(np.ones_like(h), cache)
    assert np.isfinite(h).all() and all(np.isfinite(v).all() for v in g.values())


@given(layer_dims(), seeds)
def test_matches_torch_gru(dims, seed):
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    rng = np.random.default_rng(seed)
    N, T, D, H = dims["N"], dims["T"], dims["D"], dims["H"]
    layer = random_layer(rng, **dims)
    dh, dhT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))

    gru = torch.nn.GRU(D, H).double()
    with torch.no_grad():                          # one to one: nothing summed or split
        gru.weight_ih_l0.copy_(torch.tensor(layer["Wx"].T))
        gru.weight_hh_l0.copy_(torch.tensor(layer["Wh"].T))
        gru.bias_ih_l0.copy_(torch.tensor(layer["bx"]))
        gru.bias_hh_l0.copy_(torch.tensor(layer["bh"]))
    x = torch.tensor(layer["x"], requires_grad=True)
    h0 = torch.tensor(layer["h0"][None], requires_grad=True)       # (layers, N, H)
    out, hT = gru(x, h0)
    ((out * torch.tensor(dh)).sum() + (hT[0] * torch.tensor(dhT)).sum()).backward()

    h, our_hT, cache = gru_forward(**layer)
    g = gru_backward(dh, cache, dhT)
    close = lambda ours, theirs: np.testing.assert_allclose(ours, theirs.detach().numpy(),
                                                           rtol=1e-10, atol=1e-12)
    close(h, out)
    close(our_hT, hT[0])
    close(g["dx"], x.grad)
    close(g["dh0"], h0.grad[0])
    close(g["dWx"], gru.weight_ih_l0.grad.T)
    close(g["dWh"], gru.weight_hh_l0.grad.T)
    close(g["dbx"], gru.bias_ih_l0.grad)
    close(g["dbh"], gru.bias_hh_l0.grad)


@given(layer_dims(), seeds)
def test_int_ids_are_one_hot_rows(dims, seed):
    """(T, N) int ids give what their one-hot (T, N, D) rows give; dx is then None."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    ids = rng.integers(0, dims["D"], (dims["T"], dims["N"]))
    onehot = np.eye(dims["D"])[ids]                                     # (T, N, D)
    dh = rng.standard_normal((dims["T"], dims["N"], dims["H"]))
    outs = [gru_forward(**dict(layer, x=x)) for x in (ids, onehot)]
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    g_ids, g_hot = (gru_backward(dh, out[2]) for out in outs)
    assert g_ids["dx"] is None and g_hot["dx"].shape == onehot.shape
    for name in ("dh0", "dWx", "dWh", "dbx", "dbh"):
        np.testing.assert_allclose(g_ids[name], g_hot[name], rtol=1e-14, atol=1e-14)
