import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_grads
from lstm_scratch.backend import dropout_mask
from lstm_scratch.nn import (lstm_backward, lstm_forward, weight_drop_backward,
                             weight_drop_forward, weight_drop_mask)
from strategies import drop_probs, lstm_dims, seeds
from test_lstm import random_layer


@given(st.integers(1, 4), st.sampled_from([1, 3, 4]), drop_probs, seeds)
def test_gradcheck_with_fixed_mask(H, G, p, seed):
    rng = np.random.default_rng(seed)
    arrays = {"Wh": rng.standard_normal((H, G * H))}        # G gate blocks: RNN, GRU, LSTM
    dWh_dropped = rng.standard_normal((H, G * H))
    mask = weight_drop_mask(rng, (H, G * H), p, np.float64)
    Wh_dropped, cache = weight_drop_forward(arrays["Wh"], mask)
    np.testing.assert_array_equal(Wh_dropped, arrays["Wh"] * mask)
    check_grads(lambda: (weight_drop_forward(arrays["Wh"], mask)[0] * dWh_dropped).sum(), arrays,
                {"Wh": weight_drop_backward(dWh_dropped, cache)})


@given(lstm_dims(), drop_probs, seeds)
def test_gradcheck_through_an_lstm_layer(dims, p, seed):
    """Wh -> W̃h -> every step of the layer: dWh = (Σ_t h_{t-1}ᵀ da_t) ⊙ M."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    T, N, H = dims["T"], dims["N"], dims["H"]
    dh, dhT, dcT = (rng.standard_normal(s) for s in ((T, N, H), (N, H), (N, H)))
    mask = weight_drop_mask(rng, layer["Wh"].shape, p, np.float64)
    arrays = {"Wh": layer.pop("Wh")}

    def loss():
        h, (hT, cT), _ = lstm_forward(Wh=weight_drop_forward(arrays["Wh"], mask)[0], **layer)
        return (h * dh).sum() + (hT * dhT).sum() + (cT * dcT).sum()

    Wh_dropped, cache = weight_drop_forward(arrays["Wh"], mask)
    _, _, lstm_cache = lstm_forward(Wh=Wh_dropped, **layer)
    dWh_dropped = lstm_backward(dh, lstm_cache, dhT, dcT)["dWh"]
    check_grads(loss, arrays, {"Wh": weight_drop_backward(dWh_dropped, cache)})


@given(lstm_dims(), drop_probs, seeds)
def test_first_step_is_equal_and_later_steps_differ(dims, p, seed):
    """The meaning test of salesforce/awd-lstm-lm's weight_drop.py: from h0 = 0, step 0's
    h never meets Wh (h0 W̃h = 0 whatever the mask), so two masks give the same h_1;
    from step 1 on h_{t-1} W̃h differs, and so does h."""
    rng = np.random.default_rng(seed)
    T, N, H = max(dims["T"], 2), dims["N"], dims["H"]
    layer = random_layer(rng, N, T, dims["D"], H)
    layer["h0"][:], layer["c0"][:] = 0.0, 0.0
    Wh = layer.pop("Wh")
    masks = [weight_drop_mask(rng, Wh.shape, p, np.float64)]
    while True:                                             # (1, 4) masks can match: redraw
        masks.append(weight_drop_mask(rng, Wh.shape, p, np.float64))
        if (masks[1] != masks[0]).any():
            break
        masks.pop()
    h_a, h_b = (lstm_forward(Wh=weight_drop_forward(Wh, m)[0], **layer)[0] for m in masks)
    np.testing.assert_array_equal(h_a[0], h_b[0])
    for t in range(1, T):
        assert (h_a[t] != h_b[t]).any(), t


def test_the_mask_is_an_inverted_dropout_mask():
    """M is dropout's mask of Wh's shape (whose values and mean test_dropout.py checks):
    E[M] = 1, so E[W̃h] = Wh."""
    mask = weight_drop_mask(np.random.default_rng(0), (200, 500), 0.2, np.float32)
    np.testing.assert_array_equal(mask, dropout_mask(np.random.default_rng(0), (200, 500), 0.8,
                                                     np.float32))
    assert mask.dtype == np.float32 and abs(mask.mean() - 1.0) < 0.02


def test_identity_when_off():
    assert weight_drop_mask(np.random.default_rng(0), (2, 8), 0.0, np.float64) is None
    Wh = np.arange(16.0).reshape(2, 8)
    Wh_dropped, cache = weight_drop_forward(Wh, None)
    assert cache is None and Wh_dropped is Wh                # evaluation: W̃h = Wh
    assert weight_drop_backward(Wh, cache) is Wh


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_p_outside_0_1_is_refused(p):
    with pytest.raises(ValueError, match="weight drop p must be in"):
        weight_drop_mask(np.random.default_rng(0), (2, 8), p, np.float64)


def test_dtype_kept_and_nothing_mutated():
    rng = np.random.default_rng(1)
    Wh, dW = (rng.standard_normal((3, 12)).astype(np.float32) for _ in range(2))
    mask = weight_drop_mask(rng, Wh.shape, 0.5, np.float32)
    before = [a.copy() for a in (Wh, dW, mask)]
    Wh_dropped, cache = weight_drop_forward(Wh, mask)
    dWh = weight_drop_backward(dW, cache)
    assert mask.dtype == Wh_dropped.dtype == dWh.dtype == np.float32
    assert Wh_dropped is not Wh and dWh is not dW
    for a, b in zip(before, (Wh, dW, mask)):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_mask():
    a, b = (weight_drop_mask(np.random.default_rng(7), (4, 16), 0.5, np.float64) for _ in range(2))
    np.testing.assert_array_equal(a, b)
