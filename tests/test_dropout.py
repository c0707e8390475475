import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_grads
from lstm_scratch.nn import dropout_backward, dropout_forward
from strategies import seeds


@given(st.integers(1, 4), st.integers(1, 4), st.floats(0.05, 0.9), seeds)
def test_gradcheck_with_fixed_mask(N, H, p, seed):
    rng = np.random.default_rng(seed)
    x = {"x": rng.standard_normal((N, H))}
    dy = rng.standard_normal((N, H))
    # A fresh Generator with the same seed draws the same mask on every call.
    f = lambda: (dropout_forward(x["x"], p, np.random.default_rng(seed))[0] * dy).sum()
    _, mask = dropout_forward(x["x"], p, np.random.default_rng(seed))
    check_grads(f, x, {"x": dropout_backward(dy, mask)})


def test_mask_values_and_mean():
    x = np.ones((200, 500), np.float32)
    y, mask = dropout_forward(x, 0.2, np.random.default_rng(0))
    assert y.dtype == mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.8)}
    assert abs((mask == 0).mean() - 0.2) < 0.01        # 100k draws: sd of the rate is 0.0013
    assert abs(y.mean() - 1.0) < 0.02                   # inverted: E[y] = x


@pytest.mark.parametrize("p, train", [(0.0, True), (0.5, False)])
def test_identity_when_off(p, train):
    x = np.arange(6.0).reshape(2, 3)
    y, mask = dropout_forward(x, p, np.random.default_rng(0), train=train)
    assert mask is None and y is x
    assert dropout_backward(x, mask) is x


def test_same_seed_same_mask():
    x = np.ones((4, 5))
    a = dropout_forward(x, 0.5, np.random.default_rng(7))[1]
    b = dropout_forward(x, 0.5, np.random.default_rng(7))[1]
    np.testing.assert_array_equal(a, b)
