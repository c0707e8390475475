import numpy as np
import pytest
from hypothesis import given

from gradcheck import check_grads
from lstm_scratch.nn import locked_dropout_backward, locked_dropout_forward, locked_dropout_mask
from strategies import drop_probs, lstm_dims, seeds


@given(lstm_dims(), drop_probs, seeds)
def test_gradcheck_with_fixed_mask(dims, p, seed):
    T, N, D = dims["T"], dims["N"], dims["D"]
    rng = np.random.default_rng(seed)
    x = {"x": rng.standard_normal((T, N, D))}
    dy = rng.standard_normal((T, N, D))
    mask = locked_dropout_mask(rng, N, D, p, np.float64)
    assert mask.shape == (1, N, D)
    y, cache = locked_dropout_forward(x["x"], mask)
    np.testing.assert_array_equal(y, x["x"] * mask)
    check_grads(lambda: (locked_dropout_forward(x["x"], mask)[0] * dy).sum(), x,
                {"x": locked_dropout_backward(dy, cache)})


@given(lstm_dims(), drop_probs, seeds)
def test_the_mask_is_the_same_at_every_step(dims, p, seed):
    T, N, D = dims["T"], dims["N"], dims["D"]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, D))                      # nonzero almost surely
    dy = rng.standard_normal((T, N, D))
    mask = locked_dropout_mask(rng, N, D, p, np.float64)
    y, cache = locked_dropout_forward(x, mask)
    dx = locked_dropout_backward(dy, cache)
    assert (x != 0).all()
    # y[t] / x[t] is the mask at step t: the same for every t (to one rounding of x m / x)
    np.testing.assert_allclose(y / x, np.broadcast_to(y[:1] / x[:1], y.shape), rtol=1e-15)
    np.testing.assert_allclose(dx / dy, np.broadcast_to(dx[:1] / dy[:1], dx.shape), rtol=1e-15)
    # and a unit dropped at one step is dropped at all of them
    np.testing.assert_array_equal(y == 0, np.broadcast_to(mask == 0, y.shape))


def test_mask_values_and_mean():
    x = np.ones((3, 200, 500), np.float32)
    mask = locked_dropout_mask(np.random.default_rng(0), 200, 500, 0.2, np.float32)
    y, _ = locked_dropout_forward(x, mask)
    assert y.dtype == mask.dtype == np.float32 and mask.shape == (1, 200, 500)
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.8)}
    assert abs((mask == 0).mean() - 0.2) < 0.01        # 100k draws: sd of the rate is 0.0013
    assert abs(y.mean() - 1.0) < 0.02                   # inverted: E[y] = x
    for t in range(1, 3):
        np.testing.assert_array_equal(y[t], y[0])       # one draw, not three


def test_identity_when_off():
    assert locked_dropout_mask(np.random.default_rng(0), 2, 3, 0.0, np.float64) is None
    x = np.arange(12.0).reshape(2, 2, 3)
    y, cache = locked_dropout_forward(x, None)
    assert cache is None and y is x
    assert locked_dropout_backward(x, cache) is x


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_p_outside_0_1_is_refused(p):
    with pytest.raises(ValueError, match="locked dropout p must be in"):
        locked_dropout_mask(np.random.default_rng(0), 2, 3, p, np.float64)


def test_dtype_kept_and_nothing_mutated():
    rng = np.random.default_rng(1)
    x, dy = (rng.standard_normal((4, 2, 3)).astype(np.float32) for _ in range(2))
    mask = locked_dropout_mask(rng, 2, 3, 0.5, np.float32)
    before = [a.copy() for a in (x, dy, mask)]
    y, cache = locked_dropout_forward(x, mask)
    dx = locked_dropout_backward(dy, cache)
    assert mask.dtype == y.dtype == dx.dtype == np.float32
    for a, b in zip(before, (x, dy, mask)):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_mask():
    a, b = (locked_dropout_mask(np.random.default_rng(7), 4, 5, 0.5, np.float64) for _ in range(2))
    np.testing.assert_array_equal(a, b)
