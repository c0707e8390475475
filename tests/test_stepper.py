import numpy as np
import pytest
from hypothesis import given

from lstm_scratch import UserError
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


def test_a_stepper_reads_the_parameters_as_they_are_now():
    # It copies no weight (issue 15: model.step paid for copies of all of them every
    # call), so an update after it was built is seen: as model.logits sees it.
    model = random_model(dict(V=5, H=3, L=2), 1)
    step = Stepper(model)
    for name in ("Wx0", "Wh1", "b1", "Wy"):
        model.params[name] *= 1.5                   # in place, as the optimizer updates
    z = step(np.array([2]))
    np.testing.assert_allclose(z, model.logits(np.array([[2]]))[0], rtol=1e-12, atol=1e-12)


def test_step_logits_takes_the_stepper_and_leaves_the_callers_state_alone():
    model = random_model(dict(V=5, H=3, L=2), 2)
    _, state = model.logits(np.array([[1, 4], [3, 0]]))
    kept = [tuple(a.copy() for a in layer) for layer in state]
    z, new_state = model.step_logits(np.array([2, 1]), state)
    z_seq, seq_state = model.logits(np.array([[1, 4, 2], [3, 0, 1]]))
    np.testing.assert_allclose(z, z_seq, rtol=1e-10, atol=1e-12)
    for got, want, before, after in zip(new_state, seq_state, kept, state):
        for g, w, b, a in zip(got, want, before, after):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
            np.testing.assert_array_equal(a, b)     # the caller's arrays are not changed


def test_step_logits_refuses_ids_outside_the_vocabulary():
    model = random_model(dict(V=5, H=3, L=1), 3)
    for bad in (np.array([5]), np.array([-1])):
        with pytest.raises(UserError, match=r"character ids in \[0, 5\)"):
            model.step_logits(bad)
