import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_grads
from lstm_scratch.backend import dropout_mask
from lstm_scratch.nn import dropout_backward, dropout_forward
from strategies import seeds


@given(st.integers(1, 4), st.integers(1, 4), st.floats(0.05, 0.9), seeds)
def test_gradcheck_with_fixed_mask(N, H, p, seed):
    rng = np.random.default_rng(seed)
    x = {"x": rng.standard_normal((N, H))}
    dy = rng.standard_normal((N, H))
    mask = dropout_mask(np.random.default_rng(seed), (N, H), 1.0 - p, np.float64)
    y, cache = dropout_forward(x["x"], mask)
    np.testing.assert_array_equal(y, x["x"] * mask)
    check_grads(lambda: (dropout_forward(x["x"], mask)[0] * dy).sum(), x,
                {"x": dropout_backward(dy, cache)})


def test_mask_values_and_mean():
    x = np.ones((200, 500), np.float32)
    mask = dropout_mask(np.random.default_rng(0), x.shape, 0.8, np.float32)
    y, _ = dropout_forward(x, mask)
    assert y.dtype == mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.8)}
    assert abs((mask == 0).mean() - 0.2) < 0.01        # 100k draws: sd of the rate is 0.0013
    assert abs(y.mean() - 1.0) < 0.02                   # inverted: E[y] = x


def test_identity_when_off():
    x = np.arange(6.0).reshape(2, 3)
    y, cache = dropout_forward(x, None)
    assert cache is None and y is x
    assert dropout_backward(x, cache) is x


def test_same_seed_same_mask():
    a = dropout_mask(np.random.default_rng(7), (4, 5), 0.5, np.float64)
    b = dropout_mask(np.random.default_rng(7), (4, 5), 0.5, np.float64)
    np.testing.assert_array_equal(a, b)
