"""The fast vanilla RNN layer of engine/rnn.py against the textbook nn/rnn.py."""
import functools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layer_checks import (check_backward_mutates_nothing, check_fast_equals_textbook,
                          check_fast_ids_equal_dense_onehot,
                          check_workspace_reused_with_carried_state)
from lstm_scratch import nn
from lstm_scratch.engine import rnn as fast
from lstm_scratch.engine.workspace import Workspace
from strategies import layer_dims, seeds
from test_rnn import random_layer

TEXTBOOK = (nn.rnn_forward, nn.rnn_backward)
FAST = (fast.rnn_forward, fast.rnn_backward)


@given(layer_dims(), seeds)
def test_equals_textbook_in_float64(dims, seed):
    rng = np.random.default_rng(seed)
    check_fast_equals_textbook(TEXTBOOK, FAST, random_layer(rng, **dims), rng,
                               rtol=1e-10, atol=1e-13, ws=Workspace())


@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 24), seeds)
def test_equals_textbook_in_float32(N, T, H, seed):
    """The compiled float32 step (where Numba is) within float32 rounding of the
    textbook: tanh32 is within 3.1e-7 of tanh, and T steps compound it."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, N, T, 5, H, dtype=np.float32)
    check_fast_equals_textbook(TEXTBOOK, FAST, layer, rng, rtol=1e-4, atol=1e-5)


@given(layer_dims(), st.booleans(), seeds)
def test_onehot_ids_equal_dense_onehot(dims, fused, seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, dims["N"], dims["T"], 5, dims["H"])        # V = 5
    check_fast_ids_equal_dense_onehot(TEXTBOOK, FAST, layer, rng, fused)


@pytest.mark.parametrize("zoneout", [False, True])
def test_backward_mutates_nothing(zoneout):
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=2, T=3, D=3, H=2)
    forward, backward = FAST
    if zoneout:                                 # d^h (T, N, H), in the cache: left alone too
        masks = (0.0, (rng.random((3, 2, 2)) < 0.5) * 1.0)
        forward = functools.partial(fast.rnn_forward, zoneout=masks)
    check_backward_mutates_nothing(forward, backward, layer, rng,
                                   cache_arrays=lambda cache: cache[2:])


def test_workspace_reused_with_carried_state():
    layer = random_layer(np.random.default_rng(3), N=2, T=6, D=3, H=4)
    check_workspace_reused_with_carried_state(nn.rnn_forward, fast.rnn_forward, layer, Workspace())
