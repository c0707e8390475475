"""The CuPy backend gives what the NumPy one gives. Skips, with the reason, without a GPU."""
import numpy as np
import pytest

from gradcheck import check_grads, layer_plain_and_fused
from lstm_scratch import CharRNN, RMSprop
from lstm_scratch.backend import cupy_available, get_backend, to_host

ok, reason = cupy_available()
pytestmark = pytest.mark.skipif(not ok, reason=f"CuPy tests need a GPU: {reason}")


def twin_models(dtype, cell="lstm", **kwargs):
    cpu = CharRNN(cell=cell, dtype=dtype, backend="numpy", **kwargs)
    gpu = CharRNN(cell=cell, dtype=dtype, backend="cupy", **kwargs)
    return cpu, gpu


def test_same_seed_same_initial_weights():
    cpu, gpu = twin_models("float32", vocab_size=7, hidden_size=5, num_layers=2, seed=3)
    for name in cpu.params:
        np.testing.assert_array_equal(cpu.params[name], to_host(gpu.params[name]))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("many_to_one", [False, True])
def test_loss_and_grads_match_numpy(many_to_one, cell):
    cpu, gpu = twin_models("float64", cell, vocab_size=11, hidden_size=16, num_layers=3,
                           dropout=0.0, seed=0)
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 11, (4, 9))
    targets = rng.integers(0, 11, (4,) if many_to_one else (4, 9))
    l_cpu, g_cpu, s_cpu = cpu.loss_and_grads(inputs, targets)
    l_gpu, g_gpu, s_gpu = gpu.loss_and_grads(inputs, targets)
    assert l_gpu == pytest.approx(l_cpu, rel=1e-12)
    for name in g_cpu:
        np.testing.assert_allclose(to_host(g_gpu[name]), g_cpu[name], rtol=1e-9, atol=1e-12)
    for layer_cpu, layer_gpu in zip(s_cpu, s_gpu):      # (h, c) or (h,)
        assert len(layer_cpu) == len(layer_gpu)
        for a1, a2 in zip(layer_cpu, layer_gpu):
            np.testing.assert_allclose(to_host(a2), a1, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_gradcheck_on_gpu(engine, cell):
    model = CharRNN(5, cell, 3, 2, dropout=0.3, dtype="float64", backend="cupy", seed=1,
                    engine=engine)
    xp = get_backend("cupy").xp
    rng = np.random.default_rng(1)
    for p in model.params.values():
        p[...] = xp.asarray(rng.standard_normal(p.shape) * 0.6)
    inputs, targets = rng.integers(0, 5, (2, 3)), rng.integers(0, 5, (2, 3))
    run = lambda: model.loss_and_grads(inputs, targets, dropout_rng=np.random.default_rng(4))
    _, grads, _ = run()
    check_grads(lambda: run()[0], model.params, grads)


def test_rmsprop_and_sampling_step_on_gpu():
    cpu, gpu = twin_models("float64", vocab_size=6, hidden_size=4, num_layers=2, dropout=0.0, seed=2)
    inputs = np.arange(12).reshape(2, 6) % 6
    for model in (cpu, gpu):
        opt = RMSprop(model.params, clip_norm=0.5)
        for _ in range(3):
            opt.step(model.loss_and_grads(inputs, inputs)[1])
    for name in cpu.params:
        np.testing.assert_allclose(to_host(gpu.params[name]), cpu.params[name], rtol=1e-9, atol=1e-12)
    p_cpu, _ = cpu.step(np.array([1, 2]))
    p_gpu, _ = gpu.step(np.array([1, 2]))
    np.testing.assert_allclose(to_host(p_gpu), p_cpu, rtol=1e-10)


@pytest.mark.parametrize("ids", [False, True])
def test_fused_kernels_equal_plain_code(ids):
    xp = get_backend("cupy").xp
    rng = np.random.default_rng(0)
    T, N, D, H = 7, 5, 6, 9
    x = rng.integers(0, D, (T, N)) if ids else rng.standard_normal((T, N, D))
    arrays = [rng.standard_normal(s) for s in ((N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,))]
    x, (h0, c0, Wx, Wh, b) = xp.asarray(x), [xp.asarray(a) for a in arrays]
    dh, dhT, dcT = (xp.asarray(rng.standard_normal(s)) for s in ((T, N, H), (N, H), (N, H)))
    plain, fused = layer_plain_and_fused(x, h0, c0, Wx, Wh, b, dh, dhT, dcT)
    for name, value in plain.items():
        np.testing.assert_allclose(to_host(fused[name]), to_host(value), rtol=1e-12,
                                   atol=1e-13, err_msg=name)


def test_training_and_checkpoints_cross_backends(tmp_path):
    import lstm_scratch as ls
    from conftest import make_text
    text = make_text(100)
    options = dict(hidden_size=16, seq_len=16, batch_size=8, max_steps=6, eval_every=3, dropout=0.0,
                   sample_temperatures=(), dtype="float64")
    ls.train(text, str(tmp_path / "gpu"), backend="cupy", **options)
    ls.train(text, str(tmp_path / "cpu"), backend="numpy", **options)
    on_cpu, vocab = ls.load(str(tmp_path / "gpu" / "latest.npz"), backend="numpy")
    on_gpu, _ = ls.load(str(tmp_path / "cpu" / "latest.npz"), backend="cupy")
    cpu_ref, _ = ls.load(str(tmp_path / "cpu" / "latest.npz"), backend="numpy")
    for name in cpu_ref.params:        # same seed, same data: the two runs agree closely
        np.testing.assert_allclose(on_cpu.params[name], cpu_ref.params[name], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(to_host(on_gpu.params[name]), cpu_ref.params[name])
    assert ls.generate(on_gpu, vocab, "The", 30, greedy=True) == \
        ls.generate(cpu_ref, vocab, "The", 30, greedy=True)
    assert ls.generate(on_gpu, vocab, "The", 30, beam_width=4) == \
        ls.generate(cpu_ref, vocab, "The", 30, beam_width=4)     # rows reordered on the GPU
