import numpy as np
from hypothesis import given

from lstm_scratch.engine.stepper import Stepper
from strategies import model_dims, seeds
from test_model import random_model


@given(model_dims(), seeds)
def test_stepper_equals_sequence_forward(dims, seed):
    model = random_model(dims, seed)
    rng = np.random.default_rng(seed)
    B, T, V = dims["B"], dims["T"], dims["V"]
    inputs = rng.integers(0, V, (B, T + 1))
    _, state = model.logits(inputs[:, :1])
    step = Stepper(model, state)
    for t in range(1, T + 1):
        z_step = step(inputs[:, t]).copy()
        z_seq, seq_state = model.logits(inputs[:, :t + 1])
        np.testing.assert_allclose(z_step, z_seq, rtol=1e-10, atol=1e-12)
    for (h1, c1), (h2, c2) in zip(step.state(), seq_state):
        np.testing.assert_allclose(h1, h2, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c1, c2, rtol=1e-10, atol=1e-12)


def test_returned_logits_survive_the_next_step():
    model = random_model(dict(V=5, H=3, L=2), 0)
    step = Stepper(model)
    z1 = step(np.array([1]))
    kept = z1.copy()
    z2 = step(np.array([2]))
    np.testing.assert_array_equal(z1, kept)
    assert not np.shares_memory(z1, z2)
