"""Every CuPy branch runs here without a GPU, on the fake CuPy of tests/fakecupy.py.

The fake's arrays are not NumPy arrays, so backend.py and the layers take
the branches a CuPy array takes; its ElementwiseKernel runs the CUDA kernel
bodies compiled for the host. Each test holds the "device" result to the
NumPy backend's. The tests go through the public API (CharLSTM, RMSprop,
generate, train/load), so that they hold whatever the engine looks like.
Skips (with the reason) where no C++ compiler is found.

On a GPU machine the same tests run on the real CuPy (bench/gpu_check.py does):

    LSTM_SCRATCH_CUPY_BRANCHES=gpu python -m pytest tests/test_cupy_branches.py

Where CharLSTM takes ``engine=`` (after the textbook/engine split), the model
tests run with each engine.
"""
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ON_GPU, device_tests_mark, fake_only
from lstm_scratch import CharLSTM, RMSprop, Vocab, generate
from lstm_scratch.backend import (array_module, bernoulli_mask, cupy_available, dropout_mask, get_backend,
                                  scatter_add_rows, take_rows, to_host)

pytestmark = device_tests_mark()
HERE = os.path.dirname(os.path.abspath(__file__))
ENGINES = ("fast", "reference") if "engine" in inspect.signature(CharLSTM).parameters else (None,)


@pytest.fixture
def fake(dev):
    """The fake ``cupy``/``cupyx`` for one test (the real CuPy with
    LSTM_SCRATCH_CUPY_BRANCHES=gpu); its Backend: conftest's ``dev``."""
    return dev


@pytest.fixture(params=ENGINES, ids=lambda e: f"engine={e}")
def engine(request):
    return request.param


def twins(fake, engine=None, **kwargs):
    kwargs = dict(dict(vocab_size=7, hidden_size=5, num_layers=2, dropout=0.0, dtype="float64",
                       seed=3), **kwargs)
    if engine is not None:
        kwargs["engine"] = engine
    return CharLSTM(backend="numpy", **kwargs), CharLSTM(backend=fake, **kwargs)


@fake_only
def test_fake_behaves_like_cupy_at_the_boundary(fake):
    a = fake.asarray(np.arange(6.0))
    assert not isinstance(a, np.ndarray) and array_module(a) is fake.xp
    with pytest.raises(TypeError):
        np.asarray(a)                       # implicit device -> host
    with pytest.raises(TypeError):
        a + np.ones(6)                      # a host array in device arithmetic
    np.testing.assert_array_equal(to_host(a * 2), np.arange(6.0) * 2)


def test_probe_and_get_backend_take_the_cupy_path(fake):
    assert cupy_available() == (True, "")
    for name in ("cupy", "auto"):
        be = get_backend(name)
        assert be.name == "cupy" and be.xp is fake.xp


@fake_only
def test_probe_says_why_cupy_cannot_run(fake, monkeypatch):
    from lstm_scratch.backend import BackendUnavailable
    monkeypatch.setattr(fake.xp.cuda.runtime, "getDeviceCount", lambda: 0)
    assert cupy_available() == (False, "backend 'cupy' needs a working CUDA GPU: no CUDA device found")
    assert get_backend("auto").name == "numpy"
    with pytest.raises(BackendUnavailable):
        get_backend("cupy")
    monkeypatch.setitem(sys.modules, "cupy", None)          # not installed
    ok, reason = cupy_available()
    assert not ok and "not installed" in reason


@pytest.mark.parametrize("add_at", [True, False], ids=["add.at", "cupyx.scatter_add"])
def test_take_rows_and_scatter_add_rows(fake, add_at, monkeypatch):
    if not add_at:                          # a CuPy before 13: no ufunc.at
        add = fake.xp.add
        monkeypatch.setattr(fake.xp, "add", lambda *args, **kwargs: add(*args, **kwargs))
    rng = np.random.default_rng(0)
    for V in (7, 600):                      # one-hot GEMM, then add.at or scatter_add (> 512 rows)
        W = rng.standard_normal((V, 3))
        ids = rng.integers(0, V, (4, 5))
        out = fake.xp.empty((4, 5, 3))
        got = take_rows(fake.asarray(W), fake.asarray(ids), out=out)
        assert got is out
        np.testing.assert_array_equal(to_host(got), W[ids])
        rows, src = ids.ravel(), rng.standard_normal((20, 3))
        dst, dst_dev = np.zeros((V, 3)), fake.xp.zeros((V, 3))
        scatter_add_rows(dst, rows, src)
        scatter_add_rows(dst_dev, fake.asarray(rows), fake.asarray(src))
        np.testing.assert_allclose(to_host(dst_dev), dst, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("accumulate", [False, True], ids=["out=", "out+="])
@pytest.mark.parametrize("stack", [True, False], ids=["out[t]", "one out"])
@pytest.mark.parametrize("tf32, cublas", [(False, "1"), (True, "1"), (False, "0")],
                         ids=["", "CUPY_TF32=1", "LSTM_SCRATCH_CUBLAS=0"])
def test_step_gemm_is_the_product(fake, dtype, accumulate, stack, tf32, cublas, monkeypatch):
    """engine.gemm.step_gemm: one cuBLAS call a step with precomputed pointers on CuPy
    (cupy.matmul where CUPY_TF32 is set), equal to A[t] @ B on the host."""
    from lstm_scratch.engine.gemm import step_gemm
    if ON_GPU:      # CuPy reads CUPY_TF32 at its first float32 product: make that happen first
        fake.xp.ones((2, 2), "float32") @ fake.xp.ones((2, 2), "float32")
    monkeypatch.setenv("CUPY_TF32", "1" if tf32 else "0")
    monkeypatch.setenv("LSTM_SCRATCH_CUBLAS", cublas)
    rng = np.random.default_rng(7)
    for T, N, K, M in [(1, 1, 1, 1), (3, 5, 7, 9), (4, 2, 33, 17), (2, 9, 16, 64)]:
        hs = rng.standard_normal((T + 1, N, K)).astype(dtype)    # A = hs[:-1], a view, as in the engine
        B = rng.standard_normal((K, M)).astype(dtype)
        before = rng.standard_normal((T, N, M) if stack else (N, M)).astype(dtype)
        if not accumulate:
            before[...] = np.nan                                  # must not be read (beta = 0)
        out = fake.asarray(before)
        f = step_gemm(fake.asarray(hs)[:-1], fake.asarray(B), out, accumulate,
                      scratch=fake.xp.empty((N, M), dtype))
        assert f.path == ("matmul" if (tf32 and dtype == "float32") or cublas == "0" else "cublas")
        for t in range(T):
            f(t)
            want = hs[t].astype(np.float64) @ B
            got = to_host(out[t] if stack else out).astype(np.float64)
            prev = before[t] if stack else before
            if accumulate:
                want = want + prev
            # float32: within K+1 roundings of the largest term, whatever the summation order
            bound = (np.abs(hs[t]) @ np.abs(B) + (np.abs(prev) if accumulate else 0)) \
                * (K + 1) * np.finfo(dtype).eps
            assert np.all(np.abs(got - want) <= bound + 1e-300), (T, N, K, M, t)
            if not stack and accumulate:
                before = to_host(out).copy()                      # the next step adds to this


def test_step_gemm_falls_back_where_cublas_would_differ(fake, monkeypatch):
    """Layouts the one-call path does not take (out not row-contiguous, out overlapping A)
    run cupy.matmul, and still give A[t] @ B; a B that is not row-major (Whᵀ, a strided
    view) is copied to row-major first and goes through cuBLAS; a step past the end raises."""
    from lstm_scratch.engine.gemm import step_gemm
    monkeypatch.setenv("CUPY_TF32", "0")
    monkeypatch.delenv("LSTM_SCRATCH_CUBLAS", raising=False)
    rng = np.random.default_rng(3)
    T, N, K = 3, 4, 6
    hs = rng.standard_normal((T + 1, N, K))
    B = rng.standard_normal((K, K))
    cases = {"B transposed": (fake.asarray(hs)[:-1], fake.asarray(B).T, fake.xp.empty((T, N, K)),
                              "cublas"),
             "B strided": (fake.asarray(hs)[:-1], fake.asarray(np.repeat(B, 2, axis=1))[:, ::2],
                           fake.xp.empty((T, N, K)), "cublas"),
             "out column-major": (fake.asarray(hs)[:-1], fake.asarray(B),
                                  fake.xp.empty((T, K, N)).transpose(0, 2, 1), "matmul")}
    for name, (A, Bd, out, path) in cases.items():
        f = step_gemm(A, Bd, out)
        assert f.path == path, name
        for t in range(T):
            f(t)
        np.testing.assert_allclose(to_host(out), hs[:-1] @ to_host(Bd), rtol=1e-12, err_msg=name)
    # out = hs[1:] over A = hs[:-1]: the recurrence h_{t+1} = h_t B, in place
    dev = fake.asarray(hs)
    f = step_gemm(dev[:-1], fake.asarray(B), dev[1:])
    assert f.path == "matmul"
    want = hs.copy()
    for t in range(T):
        f(t)
        want[t + 1] = want[t] @ B
    np.testing.assert_allclose(to_host(dev), want, rtol=1e-12)
    f = step_gemm(fake.asarray(hs)[:-1], fake.asarray(B), fake.xp.empty((T, N, K)))
    assert f.path == "cublas"
    with pytest.raises(IndexError):
        f(T)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell, want", [("lstm", ["cublas"] * 4), ("gru", ["cublas"] * 4),
                                         ("rnn", ["cublas"] * 4)])
def test_the_engines_multiply_through_cublas(fake, cell, want, dtype, monkeypatch):
    """The per-step products of every cell's layer take the one-call path on CuPy,
    forward and backward (a silent fallback would only be slower, so nothing else would
    see it; the RNN's forward adds into its own buffer a, apart from hs, for it).
    Loss and gradients as on the host."""
    import importlib
    layer_module = importlib.import_module(f"lstm_scratch.engine.{cell}")
    monkeypatch.setenv("CUPY_TF32", "0")
    monkeypatch.delenv("LSTM_SCRATCH_CUBLAS", raising=False)
    paths, real = [], layer_module.step_gemm

    def recording(*args, **kwargs):
        f = real(*args, **kwargs)
        paths.append(f.path)
        return f
    monkeypatch.setattr(layer_module, "step_gemm", recording)
    from lstm_scratch.model import CharRNN
    ids = np.random.default_rng(0).integers(0, 7, (3, 6))
    results = []
    for backend in (fake, "numpy"):
        model = CharRNN(7, cell, 5, 2, dropout=0.0, dtype=dtype, seed=3, backend=backend)
        xs = fake.asarray(ids) if backend is fake else ids
        loss, grads, _ = model.loss_and_grads(xs, xs)
        results.append((float(loss), {k: to_host(v) for k, v in grads.items()}))
    assert paths[:4] == want, paths     # CuPy: forward layers 0, 1, then backward layers 1, 0
    (loss_dev, g_dev), (loss_host, g_host) = results
    rtol, atol = (1e-10, 1e-14) if dtype == "float64" else (1e-4, 1e-6)
    assert loss_dev == pytest.approx(loss_host, rel=rtol)
    for k in g_host:
        np.testing.assert_allclose(g_dev[k], g_host[k], rtol=rtol, atol=atol, err_msg=k)


def test_dropout_mask_on_the_device(fake):
    masks = [to_host(dropout_mask(np.random.default_rng(5), (50, 40), 0.8, "float32", fake.xp))
             for _ in range(2)]
    np.testing.assert_array_equal(masks[0], masks[1])          # the host seed decides
    assert masks[0].dtype == np.float32
    assert set(np.unique(masks[0])) == {np.float32(0), np.float32(1 / 0.8)}


def test_zoneout_mask_on_the_device(fake):
    masks = [to_host(bernoulli_mask(np.random.default_rng(5), (50, 40), 0.3, "float32", fake.xp))
             for _ in range(2)]
    np.testing.assert_array_equal(masks[0], masks[1])          # the host seed decides
    assert masks[0].dtype == np.float32 and set(np.unique(masks[0])) == {0.0, 1.0}


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_zoneout_trains_on_the_device_as_on_the_host(fake, engine, cell):
    """The mix after each step (after the CUDA cell kernels, on the fast engine) and its
    backward: the device's loss and gradients are the host's (the masks are copied from
    the host model's draw)."""
    from lstm_scratch.model import CharRNN
    kwargs = dict(vocab_size=11, cell=cell, hidden_size=6, num_layers=2, dropout=0.0,
                  dtype="float64", seed=3, zoneout_cell=0.5 if cell == "lstm" else 0.0,
                  zoneout_hidden=0.2, **({} if engine is None else dict(engine=engine)))
    cpu, dev = CharRNN(backend="numpy", **kwargs), CharRNN(backend=fake, **kwargs)
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, 11, (4, 9)), rng.integers(0, 11, (4, 9))
    masks = cpu.dropout_masks(9, 4, False, np.random.default_rng(1))
    dev_masks = masks._replace(zoneout=[tuple(None if d is None else fake.xp.asarray(d)
                                              for d in pair) for pair in masks.zoneout],
                               layers=[None if m is None else fake.xp.asarray(m)
                                       for m in masks.layers])
    l1, g1, _ = cpu._loss_and_grads(*cpu._check_batch(inputs, targets), None, masks)
    l2, g2, _ = dev._loss_and_grads(*dev._check_batch(inputs, targets), None, dev_masks)
    assert l2 == pytest.approx(l1, rel=1e-12)
    for name in g1:
        np.testing.assert_allclose(to_host(g2[name]), g1[name], rtol=1e-9, atol=1e-12, err_msg=name)
    assert dev.loss(inputs, targets)[0] == pytest.approx(cpu.loss(inputs, targets)[0], rel=1e-12)


@pytest.mark.parametrize("many_to_one", [False, True])
def test_loss_grads_logits_step_match_numpy(fake, engine, many_to_one):
    cpu, dev = twins(fake, engine, vocab_size=11, hidden_size=6, num_layers=3)
    rng = np.random.default_rng(0)
    inputs = rng.integers(0, 11, (4, 9))
    targets = rng.integers(0, 11, (4,) if many_to_one else (4, 9))
    (l1, g1, s1), (l2, g2, s2) = cpu.loss_and_grads(inputs, targets), dev.loss_and_grads(inputs, targets)
    assert l2 == pytest.approx(l1, rel=1e-12)
    for name in g1:
        np.testing.assert_allclose(to_host(g2[name]), g1[name], rtol=1e-9, atol=1e-12, err_msg=name)
    for (h1, c1), (h2, c2) in zip(s1, s2):
        np.testing.assert_allclose(to_host(h2), h1, rtol=1e-10, atol=1e-12)
    assert dev.loss(inputs, targets)[0] == pytest.approx(cpu.loss(inputs, targets)[0], rel=1e-12)
    z1, _ = cpu.logits(inputs)
    z2, _ = dev.logits(inputs)
    np.testing.assert_allclose(to_host(z2), z1, rtol=1e-10)
    for method in ("step", "step_logits"):
        p1, st1 = getattr(cpu, method)(np.array([1, 2]))
        p2, st2 = getattr(dev, method)(np.array([1, 2]))
        p1b, _ = getattr(cpu, method)(np.array([3, 4]), st1)
        p2b, _ = getattr(dev, method)(np.array([3, 4]), st2)
        np.testing.assert_allclose(to_host(p2), p1, rtol=1e-10)
        np.testing.assert_allclose(to_host(p2b), p1b, rtol=1e-10)


def test_float32_training_with_dropout_runs_on_the_device(fake, engine):
    _, dev = twins(fake, engine, dtype="float32", dropout=0.3, hidden_size=8)
    inputs = np.arange(24).reshape(3, 8) % 7
    loss, grads, _ = dev.loss_and_grads(inputs, inputs)
    assert np.isfinite(loss)
    assert all(array_module(g) is fake.xp and g.dtype == np.float32 for g in grads.values())


def test_rmsprop_matches_numpy_and_its_state_round_trips(fake, engine):
    cpu, dev = twins(fake, engine)
    inputs = np.arange(12).reshape(2, 6) % 7
    opts = [RMSprop(m.params, clip_norm=0.05) for m in (cpu, dev)]      # clips
    for model, opt in zip((cpu, dev), opts):
        for _ in range(3):
            opt.step(model.loss_and_grads(inputs, inputs)[1])
    for name in cpu.params:
        np.testing.assert_allclose(to_host(dev.params[name]), cpu.params[name], rtol=1e-9, atol=1e-12)
    state = opts[1].state_dict()
    assert all(isinstance(v, np.ndarray) for k, v in state.items() if k.startswith("v."))
    fresh = RMSprop(dev.params)
    fresh.load_state_dict(state)
    for name, v in fresh.v.items():
        assert array_module(v) is fake.xp
        np.testing.assert_array_equal(to_host(v), state[f"v.{name}"])


def test_generate_matches_numpy(fake, engine):
    cpu, dev = twins(fake, engine, vocab_size=6, hidden_size=8)
    vocab = Vocab(sorted("abcde\n"))
    for options in (dict(greedy=True), dict(temperature=0.7, seed=1), dict(top_k=3, seed=2)):
        assert generate(dev, vocab, "ab", 40, **options) == generate(cpu, vocab, "ab", 40, **options)


def test_train_on_device_checkpoint_loads_on_both(fake, tmp_path):
    import lstm_scratch as ls
    from conftest import make_text
    text = make_text(60)
    options = dict(hidden_size=8, seq_len=12, batch_size=4, max_steps=4, eval_every=2, dropout=0.0,
                   sample_temperatures=(), dtype="float64", out=open(os.devnull, "w"))
    ls.train(text, str(tmp_path / "dev"), backend="cupy", **options)
    ls.train(text, str(tmp_path / "cpu"), backend="numpy", **options)
    on_cpu, vocab = ls.load(str(tmp_path / "dev" / "latest.npz"), backend="numpy")
    back_on_dev, _ = ls.load(str(tmp_path / "dev" / "latest.npz"), backend="cupy")
    cpu_ref, _ = ls.load(str(tmp_path / "cpu" / "latest.npz"), backend="numpy")
    for name in cpu_ref.params:
        assert array_module(back_on_dev.params[name]) is fake.xp
        np.testing.assert_allclose(on_cpu.params[name], cpu_ref.params[name], rtol=1e-6, atol=1e-8)
        np.testing.assert_array_equal(to_host(back_on_dev.params[name]), on_cpu.params[name])
    assert ls.generate(back_on_dev, vocab, "The", 20, greedy=True) == \
        ls.generate(cpu_ref, vocab, "The", 20, greedy=True)


@fake_only
def test_the_cupy_suite_passes_on_the_fake(tmp_path):
    """tests/test_cupy.py, unchanged, with the fake installed as a pytest plugin:
    what the GPU machine runs, run here (none may skip)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "fakecupy", "-rs", os.path.join(HERE, "test_cupy.py")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "skipped" not in out.stdout.splitlines()[-1], out.stdout[-2000:]


def test_resume_on_the_device_is_bit_identical(fake, tmp_path):
    """Resuming moves the carried state and the optimizer's v back to the device."""
    import lstm_scratch as ls
    from conftest import make_text
    text = make_text(60)
    options = dict(hidden_size=8, seq_len=12, batch_size=4, eval_every=3, dropout=0.2, mode="stream",
                   sample_temperatures=(), backend="cupy", out=open(os.devnull, "w"))
    ls.train(text, str(tmp_path / "straight"), max_steps=6, **options)
    ls.train(text, str(tmp_path / "split"), max_steps=3, **options)
    ls.train(text, resume=str(tmp_path / "split" / "latest.npz"), max_steps=6, backend="cupy",
             out=open(os.devnull, "w"))
    straight, _ = ls.load(str(tmp_path / "straight" / "latest.npz"), backend="numpy")
    split, _ = ls.load(str(tmp_path / "split" / "latest.npz"), backend="numpy")
    for name in straight.params:
        np.testing.assert_array_equal(split.params[name], straight.params[name], err_msg=name)
