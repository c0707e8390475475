"""The compiled RNN and GRU steps of engine/cells_cpu.py against the plain array steps.

Skips (with the reason) where Numba is not installed; the plain path is what
every other test runs then.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch.engine import cells_cpu, fused_cpu
from lstm_scratch.engine.gru import gru_cell_backward, gru_cell_forward
from strategies import seeds

pytestmark = pytest.mark.skipif(not fused_cpu.ENABLED,
                                reason="Numba not installed (or LSTM_SCRATCH_NUMBA=0): "
                                       "the plain array steps are the only ones")


def gru_step_inputs(rng, N, H, dtype):
    f = lambda *shape: (rng.standard_normal(shape) * 2).astype(dtype)
    return f(N, 3 * H), f(N, 3 * H), f(N, H)                # ax_t, ah_t, h_{t-1}


def run_gru_forward(cell, a, ah, h_prev):
    a, ah, ah_n, h = a.copy(), ah.copy(), np.empty_like(h_prev), np.empty_like(h_prev)
    cell(a, ah, h_prev, ah_n, h)
    return a, ah_n, h


def run_gru_backward(cell, gates, h_prev, ah_n, dh_up, dh_next):
    dax, dah, dh_next = np.empty_like(gates), np.empty_like(gates), dh_next.copy()
    cell(gates, h_prev, ah_n, dh_up, dh_next, dax, dah)
    return dax, dah, dh_next


@given(st.integers(1, 5), st.integers(1, 40), seeds)
def test_gru_step_equals_plain_in_float32(N, H, seed):
    rng = np.random.default_rng(seed)
    forward, backward = cells_cpu.kernels("gru", np.float32)
    inputs = gru_step_inputs(rng, N, H, np.float32)
    plain, compiled = (run_gru_forward(cell, *inputs) for cell in (gru_cell_forward, forward))
    for x, y in zip(plain, compiled):
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)
    gates, ah_n, _ = plain
    ups = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(2)]
    for x, y in zip(*(run_gru_backward(cell, gates, inputs[2], ah_n, *ups)
                      for cell in (gru_cell_backward, backward))):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)


@given(st.integers(1, 4), st.integers(1, 9), seeds)
def test_gru_backward_algebra_is_exact_in_float64(N, H, seed):
    # No tanh in the backward loop: in float64 it must agree with the plain
    # step to rounding, which pins every index and every factor.
    rng = np.random.default_rng(seed)
    backward = cells_cpu.kernels("gru", np.float32)[1]      # compiled; run here on float64
    a, ah, h_prev = gru_step_inputs(rng, N, H, np.float64)
    gates, ah_n, _ = run_gru_forward(gru_cell_forward, a, ah, h_prev)
    ups = [rng.standard_normal((N, H)) for _ in range(2)]
    for x, y in zip(*(run_gru_backward(cell, gates, h_prev, ah_n, *ups)
                      for cell in (gru_cell_backward, backward))):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-14)


@given(st.integers(1, 5), st.integers(1, 40), seeds)
def test_rnn_step_equals_plain(N, H, seed):
    rng = np.random.default_rng(seed)
    forward, backward = cells_cpu.kernels("rnn", np.float32)
    a, hWh = (rng.standard_normal((N, H)).astype(np.float32) * 2 for _ in range(2))
    h = hWh.copy()
    forward(a, h)
    np.testing.assert_allclose(h, np.tanh(hWh + a), rtol=1e-5, atol=1e-6)
    h64 = h.astype(np.float64)
    dh_up, dh_next = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    da = np.empty_like(h64)
    backward(h64, dh_up, dh_next, da)                       # float64: exact algebra
    np.testing.assert_allclose(da, (dh_up + dh_next) * (1 - h64 * h64), rtol=1e-12, atol=1e-14)


def test_only_float32_and_only_when_enabled(monkeypatch):
    assert cells_cpu.kernels("gru", np.float64) is None
    monkeypatch.setattr(fused_cpu, "ENABLED", False)
    assert cells_cpu.kernels("rnn", np.float32) is None
