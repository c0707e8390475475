import numpy as np
import pytest
from hypothesis import given

from gradcheck import check_grads
from lstm_scratch.nn import (embedding_backward, embedding_dropout_backward,
                             embedding_dropout_forward, embedding_dropout_mask, embedding_forward)
from strategies import drop_probs, embedding_dims, seeds


def random_ids(rng, T, N, V):
    """(T, N) ids with at least one id repeated whenever there are two places for it."""
    ids = rng.integers(0, V, (T, N))
    if ids.size > 1:
        ids.flat[-1] = ids.flat[0]                          # a repeat: dE must sum, not assign
    return ids


@given(embedding_dims(), seeds)
def test_lookup_is_onehot_times_E(dims, seed):
    T, N, V, D = dims["T"], dims["N"], dims["V"], dims["D"]
    rng = np.random.default_rng(seed)
    ids, E = random_ids(rng, T, N, V), rng.standard_normal((V, D))
    x, cache = embedding_forward(ids, E)
    assert x.shape == (T, N, D) and cache.shape == (V, D)
    np.testing.assert_array_equal(x, np.eye(V)[ids] @ E)    # a one-hot row picks one row exactly


@given(embedding_dims(), seeds)
def test_gradcheck_lookup_with_repeated_ids(dims, seed):
    T, N, V, D = dims["T"], dims["N"], dims["V"], dims["D"]
    rng = np.random.default_rng(seed)
    ids = random_ids(rng, T, N, V)
    arrays = {"E": rng.standard_normal((V, D))}
    dx = rng.standard_normal((T, N, D))
    _, cache = embedding_forward(ids, arrays["E"])
    check_grads(lambda: (embedding_forward(ids, arrays["E"])[0] * dx).sum(), arrays,
                {"E": embedding_backward(dx, cache)})


def test_a_repeated_id_sums_its_rows_and_an_unused_one_gets_zero():
    ids = np.array([[0, 2], [0, 0]])
    dx = np.arange(12.0).reshape(2, 2, 3)                   # rows [0 1 2] [3 4 5] [6 7 8] [9 10 11]
    _, cache = embedding_forward(ids, np.zeros((3, 3)))
    dE = embedding_backward(dx, cache)
    np.testing.assert_array_equal(dE, [[15, 18, 21], [0, 0, 0], [3, 4, 5]])


@given(embedding_dims(), drop_probs, seeds)
def test_gradcheck_dropout_alone(dims, p, seed):
    V, D = dims["V"], dims["D"]
    rng = np.random.default_rng(seed)
    arrays = {"E": rng.standard_normal((V, D))}
    dE_dropped = rng.standard_normal((V, D))
    mask = embedding_dropout_mask(rng, V, p, np.float64)
    E_dropped, cache = embedding_dropout_forward(arrays["E"], mask)
    np.testing.assert_array_equal(E_dropped, arrays["E"] * mask)
    check_grads(lambda: (embedding_dropout_forward(arrays["E"], mask)[0] * dE_dropped).sum(),
                arrays, {"E": embedding_dropout_backward(dE_dropped, cache)})


@given(embedding_dims(), drop_probs, seeds)
def test_gradcheck_dropout_composed_with_lookup(dims, p, seed):
    """x = (E ⊙ m)[ids]: the gradient of E through both, dE = (onehot(ids)ᵀ dx) ⊙ m."""
    T, N, V, D = dims["T"], dims["N"], dims["V"], dims["D"]
    rng = np.random.default_rng(seed)
    ids = random_ids(rng, T, N, V)
    arrays = {"E": rng.standard_normal((V, D))}
    dx = rng.standard_normal((T, N, D))
    mask = embedding_dropout_mask(rng, V, p, np.float64)

    def loss():
        E_dropped, _ = embedding_dropout_forward(arrays["E"], mask)
        return (embedding_forward(ids, E_dropped)[0] * dx).sum()

    E_dropped, drop_cache = embedding_dropout_forward(arrays["E"], mask)
    _, cache = embedding_forward(ids, E_dropped)
    dE = embedding_dropout_backward(embedding_backward(dx, cache), drop_cache)
    check_grads(loss, arrays, {"E": dE})


def test_row_mask_drops_whole_rows():
    V, D, p = 100_000, 3, 0.2
    E = np.ones((V, D), np.float32)
    mask = embedding_dropout_mask(np.random.default_rng(0), V, p, np.float32)
    E_dropped, _ = embedding_dropout_forward(E, mask)
    assert mask.shape == (V, 1) and E_dropped.dtype == mask.dtype == np.float32
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.8)}
    assert abs((mask == 0).mean() - p) < 0.01               # 100k rows: sd of the rate is 0.0013
    assert abs(E_dropped.mean() - 1.0) < 0.02               # inverted: E[Ẽ] = E
    np.testing.assert_array_equal(E_dropped, np.repeat(E_dropped[:, :1], D, axis=1))  # whole rows
    x, _ = embedding_forward(np.array([[5, 5, 5]]), E_dropped)
    assert len(np.unique(x)) == 1                           # dropped everywhere or nowhere


def test_identity_when_off():
    assert embedding_dropout_mask(np.random.default_rng(0), 5, 0.0, np.float64) is None
    E = np.arange(10.0).reshape(5, 2)
    E_dropped, cache = embedding_dropout_forward(E, None)
    assert cache is None and E_dropped is E
    assert embedding_dropout_backward(E, cache) is E


def test_p_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="must be in"):
        embedding_dropout_mask(np.random.default_rng(0), 5, 1.0, np.float64)


def test_dtype_kept_and_nothing_mutated():
    rng = np.random.default_rng(1)
    ids = np.array([[0, 3], [3, 1]])
    E, dE_dropped = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2))
    dx = rng.standard_normal((2, 2, 3)).astype(np.float32)
    mask = embedding_dropout_mask(rng, 4, 0.5, np.float32)
    arrays = (ids, E, dE_dropped, dx, mask)
    before = [a.copy() for a in arrays]
    E_dropped, drop_cache = embedding_dropout_forward(E, mask)
    x, cache = embedding_forward(ids, E_dropped)
    E_dropped_before = E_dropped.copy()
    x[...] = 7.0                                            # x is a copy: E_dropped must not change
    dE = embedding_backward(dx, cache)
    dE2 = embedding_dropout_backward(dE_dropped, drop_cache)
    assert mask.dtype == E_dropped.dtype == x.dtype == dE.dtype == dE2.dtype == np.float32
    np.testing.assert_array_equal(E_dropped, E_dropped_before)
    for a, b in zip(before, arrays):
        np.testing.assert_array_equal(a, b)
