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
