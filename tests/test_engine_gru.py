"""The fast GRU layer of engine/gru.py against the textbook nn/gru.py."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import nn
from lstm_scratch.engine import gru as fast
from lstm_scratch.engine.workspace import Workspace
from strategies import layer_dims, seeds
from test_gru import random_layer


def both(layer, dh, dhT, fused=True, ws=None):
    """(textbook, fast): each a dict of h, hT and the gradients."""
    outs = []
    for forward, backward, extra in ((nn.gru_forward, nn.gru_backward, {}),
                                     (fast.gru_forward, fast.gru_backward,
                                      dict(fused=fused, **({} if ws is None else dict(ws=ws))))):
        h, hT, cache = forward(**layer, **extra)
        outs.append(dict(h=h.copy(), hT=hT.copy(), **backward(dh, cache, dhT, **extra)))
    return outs


@given(layer_dims(), seeds)
def test_equals_textbook_in_float64(dims, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    dh = rng.standard_normal((dims["T"], dims["N"], dims["H"]))
    dhT = rng.standard_normal((dims["N"], dims["H"]))
    ref, ours = both(layer, dh, dhT, ws=Workspace())
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-10, atol=1e-13, err_msg=k)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 24), seeds)
def test_equals_textbook_in_float32(N, T, H, seed):
    """The compiled float32 step (where Numba is) within float32 rounding of the
    textbook: tanh32 is within 3.1e-7 of tanh, and T steps compound it."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, N, T, 5, H, dtype=np.float32)
    dh, dhT = (rng.standard_normal(s).astype(np.float32) for s in ((T, N, H), (N, H)))
    ref, ours = both(layer, dh, dhT)
    for k in ref:
        assert ours[k].dtype == np.float32
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=k)


@given(layer_dims(), st.booleans(), seeds)
def test_onehot_ids_equal_dense_onehot(dims, fused, seed):
    rng = np.random.default_rng(seed)
    T, N, H, V = dims["T"], dims["N"], dims["H"], 5
    layer = random_layer(rng, N, T, V, H)
    ids = rng.integers(0, V, (T, N))
    layer["x"] = np.eye(V)[ids]
    dh = rng.standard_normal((T, N, H))
    ref, _ = both(layer, dh, None)
    layer["x"] = ids
    h, hT, cache = fast.gru_forward(**layer, fused=fused)
    g = fast.gru_backward(dh, cache, fused=fused)
    assert g["dx"] is None
    np.testing.assert_allclose(h, ref["h"], rtol=1e-10, atol=1e-13)
    for k in ("dh0", "dWx", "dWh", "dbx", "dbh"):
        np.testing.assert_allclose(g[k], ref[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_backward_mutates_nothing():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=2, T=3, D=3, H=2)
    dh, dhT = rng.standard_normal((3, 2, 2)), rng.standard_normal((2, 2))
    _, _, cache = fast.gru_forward(**layer)
    arrays = (dh, dhT, *layer.values(), *cache[2:])
    before = [a.copy() for a in arrays]
    fast.gru_backward(dh, cache, dhT)
    for a, b in zip(before, arrays):
        np.testing.assert_array_equal(a, b)


def test_workspace_reused_with_carried_state():
    """Chunk 2 starts from chunk 1's h_T, a view into the very buffer it reuses."""
    rng = np.random.default_rng(3)
    layer = random_layer(rng, N=2, T=6, D=3, H=4)
    x, h0 = layer.pop("x"), layer.pop("h0")
    ws = Workspace()
    _, hT, _ = fast.gru_forward(x[:3], h0, **layer, ws=ws)
    h, _, _ = fast.gru_forward(x[3:], hT, **layer, ws=ws)
    h_ref, _, _ = nn.gru_forward(x, h0, **layer)
    np.testing.assert_allclose(h, h_ref[3:], rtol=1e-10, atol=1e-13)
