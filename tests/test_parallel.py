import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lstm_scratch as ls
from lstm_scratch import CharLSTM, CharRNN, RMSprop
from lstm_scratch.engine import fused_cpu
from lstm_scratch.engine.parallel import ThreadedDataParallel, auto_workers
from strategies import model_dims, seeds


@given(st.sampled_from(["lstm", "gru", "rnn"]), model_dims(), st.integers(2, 4), st.booleans(),
       st.booleans(), seeds)
def test_split_batch_equals_whole_batch(cell, dims, workers, many_to_one, with_state, seed):
    model = CharRNN(dims["V"], cell, dims["H"], dims["L"], dropout=0.3, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    B, T, V = dims["B"] + 2, dims["T"], dims["V"]
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = ([tuple(rng.standard_normal(a.shape) for a in layer) for layer in model.init_state(B)]
             if with_state else None)
    one = ThreadedDataParallel(model, 1).loss_and_grads(
        inputs, targets, state, dropout_rng=np.random.default_rng(seed))
    split = ThreadedDataParallel(model, workers).loss_and_grads(
        inputs, targets, state, dropout_rng=np.random.default_rng(seed))
    assert split[0] == pytest.approx(one[0], rel=1e-12)
    for name in one[1]:
        np.testing.assert_allclose(split[1][name], one[1][name], rtol=1e-10, atol=1e-13)
    for layer1, layer2 in zip(one[2], split[2]):           # BLAS may round rows differently
        assert len(layer1) == len(layer2) == (2 if cell == "lstm" else 1)
        for a1, a2 in zip(layer1, layer2):
            np.testing.assert_allclose(a2, a1, rtol=1e-12, atol=1e-15)
    loss_one, _ = model.loss(inputs, targets, state)
    loss_split, _ = ThreadedDataParallel(model, workers).loss(inputs, targets, state)
    assert loss_split == pytest.approx(loss_one, rel=1e-12)


def test_parallel_rmsprop_is_identical():
    rng = np.random.default_rng(0)
    shapes = {"big": (700, 600), "small": (3,)}
    a = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    b = {k: v.copy() for k, v in a.items()}
    runner = ThreadedDataParallel(CharLSTM(3, 1, 1), 2)
    opt_a, opt_b = RMSprop(a, clip_norm=10.0), RMSprop(b, clip_norm=10.0, map_fn=runner.map)
    for _ in range(3):
        g = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        opt_a.step(g)
        opt_b.step(g)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_auto_workers():
    assert auto_workers(CharLSTM(5, 16, 1), 64) == 1                 # small: overhead wins
    wide = CharLSTM(5, 256, 1)
    assert 1 <= auto_workers(wide, 64) <= 64 // 8
    assert auto_workers(wide, 8) == 1
    # H = 128 pays only with the compiled cell, and never in float64 (plain cell there)
    from lstm_scratch.engine.parallel import available_cores
    many = min(available_cores(), 64 // 8)
    for dtype in ("float32", "float64"):
        compiled = fused_cpu.ENABLED and dtype == "float32"
        assert auto_workers(CharLSTM(5, 128, 1, dtype=dtype), 64) == (many if compiled else 1)


def test_training_with_threads_resumes_exactly(corpus_file, tmp_path, capsys):
    options = dict(hidden_size=12, seq_len=16, batch_size=8, backend="numpy", threads=2,
                   sample_temperatures=(), eval_every=5)
    ls.train(corpus_file, str(tmp_path / "a"), max_steps=10, **options)
    ls.train(corpus_file, str(tmp_path / "b"), max_steps=5, **options)
    ls.train(corpus_file, resume=str(tmp_path / "b" / "latest.npz"), max_steps=10)
    a, _ = ls.load(str(tmp_path / "a" / "latest.npz"), backend="numpy")
    b, _ = ls.load(str(tmp_path / "b" / "latest.npz"), backend="numpy")
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert "with 2 worker thread(s)" in capsys.readouterr().out


def test_a_training_run_leaves_no_threads_behind(corpus_file):
    # each ls.train() in a notebook left its 2 idle pool threads alive
    import threading
    options = dict(hidden_size=12, seq_len=16, batch_size=8, backend="numpy", threads=2,
                   sample_temperatures=(), max_steps=3, val_frac=0.0)
    before = threading.active_count()
    for _ in range(2):
        model, vocab, _ = ls.train(corpus_file, **options)
    assert threading.active_count() == before
    assert ls.generate(model, vocab, "a", 5, seed=0)          # the model still works after
