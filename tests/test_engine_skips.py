"""The products the fast layers skip (engine/lstm.py, gru.py, rnn.py), for every cell:
h_0 Wh and h_0's rows of dWh from a zero state, and the last step's dh_0 product
when the caller does not want it (the model never does: truncated BPTT)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import test_gru
import test_lstm
import test_rnn
from layer_checks import check_fast_skip_is_taken, check_fast_skips_zero_products
from lstm_scratch import nn
from lstm_scratch.engine import gru as fast_gru
from lstm_scratch.engine import lstm as fast_lstm
from lstm_scratch.engine import rnn as fast_rnn
from strategies import layer_dims, seeds

CELLS = {   # textbook pair, engine pair, random_layer(rng, N, T, D, H)
    "lstm": ((nn.lstm_forward, nn.lstm_backward), (fast_lstm.lstm_forward, fast_lstm.lstm_backward),
             test_lstm.random_layer),
    "gru": ((nn.gru_forward, nn.gru_backward), (fast_gru.gru_forward, fast_gru.gru_backward),
            test_gru.random_layer),
    "rnn": ((nn.rnn_forward, nn.rnn_backward), (fast_rnn.rnn_forward, fast_rnn.rnn_backward),
            test_rnn.random_layer),
}


@given(st.sampled_from(sorted(CELLS)), layer_dims(), st.sampled_from(["none", "h", "both"]),
       st.booleans(), seeds)
def test_skipped_zero_products_change_nothing(cell, dims, zero_state, fused, seed):
    textbook, fast, random_layer = CELLS[cell]
    rng = np.random.default_rng(seed)
    check_fast_skips_zero_products(textbook, fast, random_layer(rng, **dims), rng, zero_state, fused)


@given(layer_dims(), st.sampled_from(["none", "h", "both"]), st.booleans(), seeds)
def test_skipped_zero_products_change_nothing_for_int_ids(dims, zero_state, fused, seed):
    textbook, fast, _ = CELLS["lstm"]
    rng = np.random.default_rng(seed)
    layer = test_lstm.random_layer(rng, ids=True, **dims)
    check_fast_skips_zero_products(textbook, fast, layer, rng, zero_state, fused)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_skip_is_taken(cell):
    _, fast, random_layer = CELLS[cell]
    check_fast_skip_is_taken(fast, random_layer(np.random.default_rng(0), N=2, T=3, D=3, H=4))


def test_skip_is_taken_for_int_ids():
    layer = test_lstm.random_layer(np.random.default_rng(0), N=2, T=3, D=3, H=4, ids=True)
    check_fast_skip_is_taken(CELLS["lstm"][1], layer)
