"""engine/wavefront.py: the layers of an LSTM stack run as a wavefront over
layers and time compute the model's own loss, gradients and final state."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lstm_scratch as ls
from lstm_scratch import CharRNN
from lstm_scratch.engine import lstm as engine_lstm
from lstm_scratch.engine.parallel import ThreadedDataParallel
from lstm_scratch.engine.wavefront import chunk_steps
from strategies import seeds


def batch(model, rng, B, T, many_to_one, with_state):
    V = model.vocab_size
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = ([tuple(rng.standard_normal(a.shape).astype(model.dtype) for a in layer)
              for layer in model.init_state(B)] if with_state else None)
    return inputs, targets, state


def both_ways(model, workers, inputs, targets, state, seed):
    """(loss, grads, state) of the model's own computation, then of the wavefront."""
    own = ThreadedDataParallel(model, 1).loss_and_grads(
        inputs, targets, state, dropout_rng=np.random.default_rng(seed))
    runner = ThreadedDataParallel(model, workers, schedule="layers")
    assert runner.schedule == "layers"
    wave = runner.loss_and_grads(inputs, targets, state, dropout_rng=np.random.default_rng(seed))
    return own, wave, runner


@settings(deadline=None)
@given(B=st.integers(1, 4), T=st.integers(1, 25), V=st.integers(2, 6), H=st.integers(1, 5),
       L=st.integers(2, 4), workers=st.integers(2, 3), dropout=st.sampled_from([0.0, 0.4]),
       many_to_one=st.booleans(), with_state=st.booleans(), seed=seeds)
def test_wavefront_equals_the_model_float64(B, T, V, H, L, workers, dropout, many_to_one,
                                            with_state, seed):
    # float64: the same products on the same rows, only cut into ranges of steps
    # (and the head's sums in parts), so agreement to 1e-10 leaves no room for a
    # wrong step, mask or chunk boundary.
    model = CharRNN(V, "lstm", H, L, dropout=dropout, dtype="float64", seed=seed)
    args = batch(model, np.random.default_rng(seed), B, T, many_to_one, with_state)
    own, wave, runner = both_ways(model, workers, *args, seed)
    assert wave[0] == pytest.approx(own[0], rel=1e-12)
    assert list(wave[1]) == list(own[1])
    for name in own[1]:
        np.testing.assert_allclose(wave[1][name], own[1][name], rtol=1e-10, atol=1e-13,
                                   err_msg=name)
    for layer_own, layer_wave in zip(own[2], wave[2]):
        for a, b in zip(layer_own, layer_wave):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
    inputs, targets, state = args
    loss, final = runner.loss(inputs, targets, state)
    assert loss == pytest.approx(model.loss(inputs, targets, state)[0], rel=1e-12)
    runner.close()


def test_wavefront_equals_the_model_float32():
    # float32, a Keras-recipe-like shape (many-to-one) and a stream one: the range
    # GEMMs may round differently from the whole-sequence ones (other M, other
    # kernel blocking), so the tolerance is that of the engine-vs-textbook tests:
    # 2e-5 of an array's largest entry plus 1e-6.
    for many_to_one, T in ((True, 20), (False, 30)):
        model = CharRNN(30, "lstm", 64, 2, dropout=0.2, seed=3)
        args = batch(model, np.random.default_rng(1), 16, T, many_to_one, True)
        own, wave, runner = both_ways(model, 2, *args, seed=7)
        assert wave[0] == pytest.approx(own[0], rel=1e-5)
        for name in own[1]:
            g = own[1][name]
            np.testing.assert_allclose(wave[1][name], g, rtol=0,
                                       atol=2e-5 * np.abs(g).max() + 1e-6, err_msg=name)
            assert wave[1][name].dtype == np.float32
        runner.close()


def test_chunks():
    assert chunk_steps(1) == 1 and chunk_steps(10) == 1 and chunk_steps(50) == 5
    assert chunk_steps(101) == 11


def test_an_error_in_a_task_is_raised_and_the_next_call_works(monkeypatch):
    model = CharRNN(7, "lstm", 4, 3, dropout=0.2, dtype="float64", seed=0)
    inputs, targets, state = batch(model, np.random.default_rng(0), 3, 12, False, False)
    runner = ThreadedDataParallel(model, 2, schedule="layers")
    good = runner.loss_and_grads(inputs, targets, dropout_rng=np.random.default_rng(0))
    steps = engine_lstm.LSTMForward.steps

    def failing(self, x, t0):
        if t0 == 4 and x.dtype.kind == "f":             # layer 1 or 2, third chunk
            raise MemoryError("out of memory in a task")
        return steps(self, x, t0)
    monkeypatch.setattr(engine_lstm.LSTMForward, "steps", failing)
    with pytest.raises(MemoryError, match="in a task"):
        runner.loss_and_grads(inputs, targets, dropout_rng=np.random.default_rng(0))
    monkeypatch.setattr(engine_lstm.LSTMForward, "steps", steps)
    again = runner.loss_and_grads(inputs, targets, dropout_rng=np.random.default_rng(0))
    assert again[0] == good[0]
    for name in good[1]:
        np.testing.assert_array_equal(again[1][name], good[1][name])
    runner.close()


def test_after_close_the_wavefront_runs_on_the_calling_thread():
    model = CharRNN(7, "lstm", 4, 2, dropout=0.2, dtype="float64", seed=0)
    inputs, targets, state = batch(model, np.random.default_rng(0), 3, 9, True, True)
    runner = ThreadedDataParallel(model, 2)
    assert runner.schedule == "layers"                  # auto picks it for an LSTM stack
    before = runner.loss_and_grads(inputs, targets, state, dropout_rng=np.random.default_rng(0))
    runner.close()
    after = runner.loss_and_grads(inputs, targets, state, dropout_rng=np.random.default_rng(0))
    assert after[0] == before[0]
    for name in before[1]:
        np.testing.assert_array_equal(after[1][name], before[1][name])


@pytest.mark.parametrize("cell,layers,workers", [("gru", 2, 2), ("rnn", 2, 2), ("lstm", 1, 2),
                                                 ("lstm", 2, 1)])
def test_where_the_wavefront_does_not_run(cell, layers, workers):
    model = CharRNN(5, cell, 4, layers)
    assert ThreadedDataParallel(model, workers).schedule == "batch"
    with pytest.raises(ValueError, match="layers schedule needs"):
        ThreadedDataParallel(model, workers, schedule="layers")
    assert ThreadedDataParallel(CharRNN(5, "lstm", 4, 2, engine="reference"), 2).schedule == "batch"
    with pytest.raises(ValueError, match="schedule must be one of"):
        ThreadedDataParallel(model, workers, schedule="rows")


def test_training_with_the_wavefront_resumes_exactly(corpus_file, tmp_path, capsys):
    options = dict(hidden_size=12, num_layers=2, seq_len=16, batch_size=8, backend="numpy",
                   threads=2, sample_temperatures=(), eval_every=5)
    ls.train(corpus_file, str(tmp_path / "a"), max_steps=10, **options)
    assert "layers as a wavefront" in capsys.readouterr().out
    ls.train(corpus_file, str(tmp_path / "b"), max_steps=5, **options)
    ls.train(corpus_file, resume=str(tmp_path / "b" / "latest.npz"), max_steps=10)
    a, _ = ls.load(str(tmp_path / "a" / "latest.npz"), backend="numpy")
    b, _ = ls.load(str(tmp_path / "b" / "latest.npz"), backend="numpy")
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
