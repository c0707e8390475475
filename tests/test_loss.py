import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_grads
from lstm_scratch.nn import (log_softmax, softmax_cross_entropy_backward,
                             softmax_cross_entropy_forward)
from strategies import seeds


# Logits up to ~±12: beyond that a confident row's loss (~e^-24) is below what
# float64 differences resolve; test_huge_logits_are_finite covers that regime.
@given(st.integers(1, 6), st.integers(2, 7), st.floats(0.1, 4.0), seeds)
def test_gradcheck(M, V, scale, seed):
    rng = np.random.default_rng(seed)
    z = {"z": rng.standard_normal((M, V)) * scale}
    y = rng.integers(0, V, M)
    loss, cache = softmax_cross_entropy_forward(z["z"], y)
    naive = -np.mean(np.log(np.exp(z["z"][np.arange(M), y]) / np.exp(z["z"]).sum(1)))
    np.testing.assert_allclose(loss, naive, rtol=1e-9)
    dloss = 0.7
    check_grads(lambda: dloss * softmax_cross_entropy_forward(z["z"], y)[0], z,
                {"z": softmax_cross_entropy_backward(dloss, cache)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_are_finite(dtype):
    z = np.array([[1e30, -1e30, 0.0], [3e4, 3e4, -3e4]], dtype)
    loss, cache = softmax_cross_entropy_forward(z, np.array([1, 2]))
    dz = softmax_cross_entropy_backward(1.0, cache)
    assert loss.dtype == dz.dtype == dtype
    assert np.isfinite(loss) and np.isfinite(dz).all()
    assert loss > 1e4                          # the targets are hopeless: a large, finite loss


def test_uniform_logits_give_log_v():
    V = 65
    loss, _ = softmax_cross_entropy_forward(np.zeros((4, V)), np.arange(4))
    assert loss == pytest.approx(np.log(V))


def test_log_softmax_rows_normalise():
    z = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32) * 50
    p = np.exp(log_softmax(z))
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
