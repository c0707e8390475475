"""The average of the weights (lstm_scratch/ema.py): its update, its ramp, that
applying it gives the live weights back bit for bit, and its state."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import UserError
from lstm_scratch.ema import EMA
from strategies import seeds


def params_of(rng, dtype=np.float64):
    return {"W": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)}


@given(st.floats(0.5, 0.999), st.integers(1, 30), seeds)
def test_update_is_the_formula(decay, steps, seed):
    rng = np.random.default_rng(seed)
    params = params_of(rng)
    ema = EMA(params, decay)
    expected = {k: v.copy() for k, v in params.items()}
    for t in range(1, steps + 1):
        for p in params.values():
            p += rng.standard_normal(p.shape)               # an optimizer step
        d = min(decay, (1 + t) / (10 + t))
        assert ema.rate() == d
        ema.update(params)
        for k in expected:
            expected[k] = d * expected[k] + (1 - d) * params[k]
            np.testing.assert_allclose(ema.average[k], expected[k], rtol=1e-12, atol=1e-12)
    assert ema.updates == steps


def test_ramp_then_decay():
    ema = EMA(params_of(np.random.default_rng(0)), 0.99)
    assert ema.rate() == 2 / 11                             # t = 1: follows θ closely
    ema.updates = 10_000
    assert ema.rate() == 0.99


def test_applied_gives_the_live_weights_back_even_on_an_error():
    rng = np.random.default_rng(1)
    params = params_of(rng, np.float32)
    live = {k: v.copy() for k, v in params.items()}
    ema = EMA(params, 0.9)
    for a in ema.average.values():
        a += 1.0
    with ema.applied(params):
        for k in params:
            np.testing.assert_array_equal(params[k], ema.average[k])
    for k in params:
        np.testing.assert_array_equal(params[k], live[k])
    with pytest.raises(KeyboardInterrupt):
        with ema.applied(params):
            raise KeyboardInterrupt
    for k in params:
        np.testing.assert_array_equal(params[k], live[k])


def test_state_round_trip_and_checks():
    rng = np.random.default_rng(2)
    params = params_of(rng)
    a = EMA(params, 0.9)
    for _ in range(3):
        params["W"] += 1.0
        a.update(params)
    b = EMA(params_of(np.random.default_rng(3)), 0.9)
    b.load_state_dict(a.state_dict(), a.updates)
    params["W"] += 1.0
    a.update(params)
    b.update(params)
    for k in params:
        np.testing.assert_array_equal(a.average[k], b.average[k])
    with pytest.raises(UserError, match="weight average: W is missing or has another shape"):
        b.load_state_dict({"W": np.zeros((2, 2)), "b": np.zeros(4)}, 1)
    with pytest.raises(UserError, match=r"ema decay must be in \(0, 1\)"):
        EMA(params, 1.0)
