import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_grads
from lstm_scratch.nn import (affine_backward, affine_forward, onehot_affine_backward,
                             onehot_affine_forward)
from strategies import seeds


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), seeds)
def test_affine_gradcheck(T, N, D, M, seed):
    rng = np.random.default_rng(seed)
    arrays = dict(x=rng.standard_normal((T, N, D)), W=rng.standard_normal((D, M)),
                  b=rng.standard_normal(M))
    dy = rng.standard_normal((T, N, M))
    y, cache = affine_forward(**arrays)
    np.testing.assert_allclose(y, np.einsum("tnd,dm->tnm", arrays["x"], arrays["W"]) + arrays["b"])
    dx, dW, db = affine_backward(dy, cache)
    check_grads(lambda: (affine_forward(**arrays)[0] * dy).sum(), arrays,
                dict(x=dx, W=dW, b=db))


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 6), st.integers(1, 3), seeds)
def test_onehot_affine_is_gather_and_gradchecks(T, N, V, M, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, (T, N))          # repeated ids must accumulate
    arrays = dict(W=rng.standard_normal((V, M)), b=rng.standard_normal(M))
    dy = rng.standard_normal((T, N, M))
    y, cache = onehot_affine_forward(ids, **arrays)
    np.testing.assert_allclose(y, np.eye(V)[ids] @ arrays["W"] + arrays["b"], atol=1e-14)
    dW, db = onehot_affine_backward(dy, cache)
    check_grads(lambda: (onehot_affine_forward(ids, **arrays)[0] * dy).sum(), arrays,
                dict(W=dW, b=db))


def test_onehot_forward_does_not_alias_weights():
    W, b = np.zeros((3, 2), np.float32), np.ones(2, np.float32)
    y, _ = onehot_affine_forward(np.array([0, 0]), W, b)
    assert (W == 0).all() and y.dtype == np.float32 and (y == 1).all()
