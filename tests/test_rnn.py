"""The vanilla RNN of nn/rnn.py: float64 gradient checks, truncated BPTT,
dtype, and equality with torch.nn.RNN(nonlinearity="tanh")."""
import numpy as np
import pytest
from hypothesis import given

from gradcheck import check_grads
from lstm_scratch.nn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from strategies import layer_dims, seeds


def random_layer(rng, N, T, D, H, dtype=np.float64):
    return dict(x=rng.standard_normal((T, N, D)).astype(dtype),
                h0=rng.standard_normal((N, H)).astype(dtype),
                Wx=(rng.standard_normal((D, H)) * 0.5).astype(dtype),
                Wh=(rng.standard_normal((H, H)) * 0.5).astype(dtype),
                b=rng.standard_normal(H).astype(dtype))      # nonzero bias


def test_step_is_the_equation():
    rng = np.random.default_rng(0)
    x, h_prev = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    Wx, Wh, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal(4)
    h, _ = rnn_step_forward(x, h_prev, Wx, Wh, b)
    for n in range(2):
        for j in range(4):
            a = sum(x[n, d] * Wx[d, j] for d in range(3)) + sum(h_prev[n, k] * Wh[k, j]
                                                                for k in range(4)) + b[j]
            assert abs(h[n, j] - np.tanh(a)) < 1e-14


@given(layer_dims(), seeds)
def test_step_backward_gradcheck(dims, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    step = dict(x=layer["x"][0], h_prev=layer["h0"], Wx=layer["Wx"], Wh=layer["Wh"], b=layer["b"])
    dh = rng.standard_normal((dims["N"], dims["H"]))
    f = lambda: (rnn_step_forward(**step)[0] * dh).sum()
    dx, dh_prev, dWx, dWh, db = rnn_step_backward(dh, rnn_step_forward(**step)[1])
    check_grads(f, step, dict(x=dx, h_prev=dh_prev, Wx=dWx, Wh=dWh, b=db))


@given(layer_dims(), seeds)
def test_backward_gradcheck(dims, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    dh = rng.standard_normal((dims["T"], dims["N"], dims["H"]))    # random upstream,
    dhT = rng.standard_normal((dims["N"], dims["H"]))              # and for the carried state

    def f():
        h, hT, _ = rnn_forward(**layer)
        return (h * dh).sum() + (hT * dhT).sum()

    g = rnn_backward(dh, rnn_forward(**layer)[2], dhT)
    check_grads(f, layer, {"x": g["dx"], "h0": g["dh0"], "Wx": g["dWx"],
                           "Wh": g["dWh"], "b": g["db"]})


@given(layer_dims(), seeds)
def test_truncated_bptt_chunks_compose(dims, seed):
    """Two chunks, state and gradients handed across, equal one long sequence."""
    rng = np.random.default_rng(seed)
    dims["T"] += 1
    layer = random_layer(rng, **dims)
    x, h0, T = layer.pop("x"), layer.pop("h0"), dims["T"]
    dh = rng.standard_normal((T, dims["N"], dims["H"]))
    k = T // 2
    h_full, _, cache_full = rnn_forward(x, h0, **layer)
    h_a, h_k, cache_a = rnn_forward(x[:k], h0, **layer)
    h_b, _, cache_b = rnn_forward(x[k:], h_k, **layer)
    np.testing.assert_allclose(np.concatenate([h_a, h_b]), h_full, rtol=1e-12, atol=1e-14)
    g_full, g_b = rnn_backward(dh, cache_full), rnn_backward(dh[k:], cache_b)
    g_a = rnn_backward(dh[:k], cache_a, dhT=g_b["dh0"])
    for name in ("dWx", "dWh", "db"):
        np.testing.assert_allclose(g_a[name] + g_b[name], g_full[name], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([g_a["dx"], g_b["dx"]]), g_full["dx"],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_a["dh0"], g_full["dh0"], rtol=1e-10, atol=1e-12)


def test_backward_mutates_nothing():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=2, T=3, D=3, H=2)
    dh, dhT = rng.standard_normal((3, 2, 2)), rng.standard_normal((2, 2))
    _, _, cache = rnn_forward(**layer)
    arrays = (dh, dhT, *layer.values(), *(a for step in cache.steps for a in step))
    before = [a.copy() for a in arrays]
    rnn_backward(dh, cache, dhT)
    for a, b in zip(before, arrays):
        np.testing.assert_array_equal(a, b)


def test_float32_stays_float32():
    layer = random_layer(np.random.default_rng(1), N=2, T=3, D=4, H=3, dtype=np.float32)
    h, hT, cache = rnn_forward(**layer)
    assert h.dtype == hT.dtype == np.float32
    g = rnn_backward(np.ones_like(h), cache, np.ones_like(hT))
    assert all(v.dtype == np.float32 for v in g.values())


def test_saturated_stays_finite():
    layer = random_layer(np.random.default_rng(2), N=2, T=5, D=3, H=2)
    layer["Wx"] *= 1e4
    h, hT, cache = rnn_forward(**layer)
    g = rnn_backward(np.ones_like(h), cache)
    assert np.isfinite(h).all() and all(np.isfinite(v).all() for v in g.values())


@given(layer_dims(), seeds)
def test_matches_torch_rnn(dims, seed):
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    rng = np.random.default_rng(seed)
    N, T, D, H = dims["N"], dims["T"], dims["D"], dims["H"]
    layer = random_layer(rng, **dims)
    b_ih = rng.standard_normal(H)                  # torch's two biases; ours is their sum
    b_hh = layer["b"] - b_ih
    dh, dhT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))

    rnn = torch.nn.RNN(D, H, nonlinearity="tanh").double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(layer["Wx"].T))
        rnn.weight_hh_l0.copy_(torch.tensor(layer["Wh"].T))
        rnn.bias_ih_l0.copy_(torch.tensor(b_ih))
        rnn.bias_hh_l0.copy_(torch.tensor(b_hh))
    x = torch.tensor(layer["x"], requires_grad=True)
    h0 = torch.tensor(layer["h0"][None], requires_grad=True)       # (layers, N, H)
    out, hT = rnn(x, h0)
    ((out * torch.tensor(dh)).sum() + (hT[0] * torch.tensor(dhT)).sum()).backward()

    h, our_hT, cache = rnn_forward(**layer)
    g = rnn_backward(dh, cache, dhT)
    close = lambda ours, theirs: np.testing.assert_allclose(ours, theirs.detach().numpy(),
                                                           rtol=1e-10, atol=1e-12)
    close(h, out)
    close(our_hT, hT[0])
    close(g["dx"], x.grad)
    close(g["dh0"], h0.grad[0])
    close(g["dWx"], rnn.weight_ih_l0.grad.T)
    close(g["dWh"], rnn.weight_hh_l0.grad.T)
    close(g["db"], rnn.bias_ih_l0.grad)
    close(g["db"], rnn.bias_hh_l0.grad)


@given(layer_dims(), seeds)
def test_int_ids_are_one_hot_rows(dims, seed):
    """(T, N) int ids give what their one-hot (T, N, D) rows give; dx is then None."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    ids = rng.integers(0, dims["D"], (dims["T"], dims["N"]))
    onehot = np.eye(dims["D"])[ids]                                     # (T, N, D)
    dh = rng.standard_normal((dims["T"], dims["N"], dims["H"]))
    outs = [rnn_forward(**dict(layer, x=x)) for x in (ids, onehot)]
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    g_ids, g_hot = (rnn_backward(dh, out[2]) for out in outs)
    assert g_ids["dx"] is None and g_hot["dx"].shape == onehot.shape
    for name in ("dh0", "dWx", "dWh", "db"):
        np.testing.assert_allclose(g_ids[name], g_hot[name], rtol=1e-14, atol=1e-14)
