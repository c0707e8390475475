"""The vanilla RNN of nn/rnn.py: float64 gradient checks, truncated BPTT,
dtype, and equality with torch.nn.RNN(nonlinearity="tanh")."""
import numpy as np
import pytest
from hypothesis import given

from lstm_scratch.nn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from layer_checks import (check_backward_gradcheck, check_backward_mutates_nothing,
                          check_float32_stays_float32, check_int_ids_are_one_hot_rows,
                          check_matches_torch, check_saturated_stays_finite,
                          check_step_backward_gradcheck, check_truncated_bptt_chunks_compose)
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
    check_step_backward_gradcheck(rnn_step_forward, rnn_step_backward, random_layer(rng, **dims), rng)


@given(layer_dims(), seeds)
def test_backward_gradcheck(dims, seed):
    rng = np.random.default_rng(seed)
    check_backward_gradcheck(rnn_forward, rnn_backward, random_layer(rng, **dims), rng)


@given(layer_dims(), seeds)
def test_truncated_bptt_chunks_compose(dims, seed):
    rng = np.random.default_rng(seed)
    dims["T"] += 1
    check_truncated_bptt_chunks_compose(rnn_forward, rnn_backward, random_layer(rng, **dims), rng)


def test_backward_mutates_nothing():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=2, T=3, D=3, H=2)
    check_backward_mutates_nothing(rnn_forward, rnn_backward, layer, rng)


def test_float32_stays_float32():
    layer = random_layer(np.random.default_rng(1), N=2, T=3, D=4, H=3, dtype=np.float32)
    check_float32_stays_float32(rnn_forward, rnn_backward, layer)


def test_saturated_stays_finite():
    layer = random_layer(np.random.default_rng(2), N=2, T=5, D=3, H=2)
    check_saturated_stays_finite(rnn_forward, rnn_backward, layer, scaled=("Wx",))


@given(layer_dims(), seeds)
def test_matches_torch_rnn(dims, seed):
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    rng = np.random.default_rng(seed)
    N, T, D, H = dims["N"], dims["T"], dims["D"], dims["H"]
    layer = random_layer(rng, **dims)
    b_ih = rng.standard_normal(H)                  # torch's two biases; ours is their sum
    b_hh = layer["b"] - b_ih
    dh, dhT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))

    check_matches_torch(torch, torch.nn.RNN(D, H, nonlinearity="tanh").double(), rnn_forward,
                        rnn_backward, layer, biases=(b_ih, b_hh), dh=dh, dhT=dhT,
                        bias_grads=("db", "db"))            # ∂L/∂b_ih = ∂L/∂b_hh = ∂L/∂b


@given(layer_dims(), seeds)
def test_int_ids_are_one_hot_rows(dims, seed):
    rng = np.random.default_rng(seed)
    check_int_ids_are_one_hot_rows(rnn_forward, rnn_backward, random_layer(rng, **dims), rng)
