"""Sampling drawn on the device (lstm_scratch/engine/device_sampling.py and .cu).

Here, without a GPU, the kernels run on the fake CuPy (tests/fakecupy.py), which
compiles device_sampling.cu for the host and records and replays CUDA graphs
(tests/test_nvrtc.py compiles the same file as CUDA device code). On a GPU machine the same
tests run on the real CuPy (bench/gpu_check.py does):

    LSTM_SCRATCH_CUPY_BRANCHES=gpu python -m pytest tests/test_device_sampling.py

Held to the host, whose code is the reference: the stack's step (against
``model.step_logits`` on NumPy), the uniforms (against NumPy's PCG64), the draw
with temperature, top-k and top-p (against sampling.py's functions, exactly, on
random logits and on ties), the draws' frequencies (chi-square against the
softmax), and whole texts (greedy, seeded, N rows, stop).
"""
import numpy as np
import pytest

from conftest import device_tests_mark, fake_only
from lstm_scratch import CharRNN, Vocab, generate
from lstm_scratch.backend import to_host
from lstm_scratch.engine import device_sampling, graphs
from lstm_scratch.engine.device_sampling import DeviceSampler, kernels, row_states, split128
from lstm_scratch.sampling import draw_rows, next_char_distribution, next_char_weights

pytestmark = device_tests_mark()
VOCAB = Vocab(sorted("abcdefgh \n"))


def twins(dev, **kwargs):
    """The same model on NumPy and on the device (weights are drawn on the host)."""
    kwargs = dict(dict(vocab_size=len(VOCAB.chars), hidden_size=12, num_layers=2, dropout=0.0,
                       dtype="float64", seed=3), **kwargs)
    return CharRNN(backend="numpy", **kwargs), CharRNN(backend=dev, **kwargs)


def test_the_kernels_draw_numpys_pcg64_uniforms(dev):
    k = kernels(dev.xp, np.dtype(np.float64))
    for N, used in ((1, 0), (3, 1), (5, 7)):
        rng = np.random.default_rng(11)
        rng.random(used)                                   # a Generator part way along
        states, (A, C) = row_states(rng, N)
        want = rng.random((9, N))                          # what the host would draw, by row
        for row in range(N):
            state, out = dev.xp.asarray(states[row]), dev.xp.zeros(9, np.float64)
            k["pcg64_uniforms"]((1,), (1,), (state, *split128(A), *split128(C), np.int64(9), out))
            np.testing.assert_array_equal(to_host(out), want[:, row])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "lstm-zoneout", "gru-zoneout",
                                  "rnn-zoneout"])
@pytest.mark.parametrize("layers, embedding, tied", [(1, 0, False), (2, 0, False), (3, 6, False),
                                                     (2, 12, True)])
def test_the_stacks_step_equals_step_logits(dev, cell, layers, embedding, tied):
    zoneout = {}
    if cell.endswith("-zoneout"):       # every step mixes the previous state in by the rates
        cell = cell.split("-")[0]
        zoneout = dict(zoneout_cell=0.5 if cell == "lstm" else 0.0, zoneout_hidden=0.2)
    cpu, gpu = twins(dev, cell=cell, num_layers=layers, embedding_size=embedding,
                     tie_weights=tied, hidden_size=12 if tied else 37, **zoneout)
    rng = np.random.default_rng(0)
    N = 3
    state = [tuple(rng.standard_normal((N, cpu.hidden_size)) * 0.5 for _ in layer)
             for layer in cpu.init_state(N)]
    sampler = DeviceSampler(gpu, [tuple(dev.xp.asarray(a) for a in layer) for layer in state],
                            dev.xp.zeros((N, cpu.vocab_size)), length=5)
    for ids in ([1, 4, 0], [9, 9, 2]):
        sampler.ids[...] = dev.xp.asarray(np.array(ids, np.int32))
        sampler.advance()
        z, state = cpu.step_logits(np.array(ids), state)
        np.testing.assert_allclose(to_host(sampler.z), z, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(to_host(sampler.h[-1]), state[-1][0], rtol=1e-12, atol=1e-12)
        if cell == "lstm":
            np.testing.assert_allclose(to_host(sampler.c[0]), state[0][1], rtol=1e-12, atol=1e-12)


def test_float32_step_within_rounding(dev):
    """float32: the same sums in another order; |Δz| within 1e-5 of |z| ~ 1 (30 float32 ulps)."""
    cpu, gpu = twins(dev, dtype="float32", hidden_size=64)
    sampler = DeviceSampler(gpu, gpu.init_state(2), dev.xp.zeros((2, cpu.vocab_size), np.float32), 3)
    sampler.ids[...] = dev.xp.asarray(np.array([2, 5], np.int32))
    sampler.advance()
    z, _ = cpu.step_logits(np.array([2, 5]))
    assert to_host(sampler.z).dtype == np.float32
    np.testing.assert_allclose(to_host(sampler.z), z, rtol=1e-5, atol=1e-5)


def one_draw(dev, z, rng, **options):
    """ids (N,) from the draw kernel, for logits z (N, V), with ``rng``'s numbers."""
    cpu, gpu = twins(dev, vocab_size=z.shape[1], hidden_size=4, num_layers=1)
    sampler = DeviceSampler(gpu, gpu.init_state(z.shape[0]), dev.xp.asarray(z), length=1,
                            rng=rng, **options)
    return next(sampler.chunks())[:, 0]


def host_draw(z, rng, temperature=1.0, greedy=False, top_k=None, top_p=None):
    if greedy:
        return np.argmax(z, axis=-1)
    return draw_rows(next_char_weights(z, temperature, top_k, top_p), rng.random(z.shape[0]))


@pytest.mark.parametrize("options", [dict(), dict(temperature=0.3), dict(temperature=2.5),
                                     dict(top_k=1), dict(top_k=4), dict(top_p=0.5),
                                     dict(top_p=0.93, top_k=6), dict(greedy=True)])
def test_the_draw_equals_the_hosts(dev, options):
    """Random logits, 400 rows: every id the host's, with the host's uniforms."""
    z = np.random.default_rng(1).standard_normal((400, 23)) * 2
    got = one_draw(dev, z, np.random.default_rng(7), **options)
    np.testing.assert_array_equal(got, host_draw(z, np.random.default_rng(7), **options))


@pytest.mark.parametrize("options", [dict(top_k=3), dict(top_p=0.4), dict(top_p=0.75, top_k=5)])
def test_ties_are_kept_as_on_the_host(dev, options):
    """Logits with many equal values: top-k keeps every tie at the cutoff, top-p takes
    tied chars lower id first, as sampling.nucleus does."""
    z = np.random.default_rng(2).integers(0, 4, size=(300, 9)).astype(np.float64)
    got = one_draw(dev, z, np.random.default_rng(3), **options)
    np.testing.assert_array_equal(got, host_draw(z, np.random.default_rng(3), **options))


def test_equal_weights_exactly_at_top_p(dev):
    """Four equal chars, top_p 0.5: the mass ahead of the third is exactly half, so only
    the first two are kept (a char is kept while the mass ahead is below top_p)."""
    z = np.zeros((2000, 4))
    got = one_draw(dev, z, np.random.default_rng(5), top_p=0.5)
    assert set(got.tolist()) == {0, 1}
    np.testing.assert_array_equal(got, host_draw(z, np.random.default_rng(5), top_p=0.5))


def test_a_zero_uniform_never_draws_a_dropped_char(dev):
    """u = 0 (a PCG64 state whose halves are equal outputs 0): the first kept char, not
    char 0, which top-k dropped."""
    z = np.array([[-5.0, 1.0, 2.0, 3.0]])
    _, gpu = twins(dev, vocab_size=4, hidden_size=4, num_layers=1)
    sampler = DeviceSampler(gpu, gpu.init_state(1), dev.xp.asarray(z), length=1, top_k=3)
    sampler.rng[...] = dev.xp.asarray(np.array([[7, 7]], np.uint64))
    assert next(sampler.chunks())[0, 0] == 1
    assert draw_rows(next_char_weights(z, top_k=3), np.zeros(1))[0] == 1


@pytest.mark.parametrize("options", [dict(), dict(temperature=0.7, top_k=5), dict(top_p=0.8)])
def test_draw_frequencies_follow_the_distribution(dev, options):
    """20,000 rows with the same logits: counts against the host's probabilities by a
    chi-square test (the 1e-6 tail: a correct sampler fails once in a million runs);
    chars the filters drop never come out."""
    from math import erfc, sqrt
    z = np.random.default_rng(4).standard_normal(12) * 1.5
    N = 20000
    got = one_draw(dev, np.repeat(z[None], N, axis=0), np.random.default_rng(9), **options)
    p = next_char_distribution(z, **options)
    counts = np.bincount(got, minlength=z.size)
    assert counts[p == 0].sum() == 0
    kept = p > 0
    chi2 = (((counts - N * p)[kept]) ** 2 / (N * p[kept])).sum()
    dof = kept.sum() - 1
    if dof == 0:
        return
    z_score = (chi2 - dof) / sqrt(2 * dof)             # ~ N(0, 1) for this many draws
    assert 0.5 * erfc(z_score / sqrt(2)) > 1e-6, (chi2, dof)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_texts_equal_the_hosts(dev, cell):
    """Whole texts: greedy, seeded, top-k and top-p, N rows, a stop text, lengths across
    chunks (CHUNK = 64): each equal to the NumPy model's, char for char (float64)."""
    cpu, gpu = twins(dev, cell=cell)
    for options in (dict(greedy=True), dict(seed=1), dict(seed=2, temperature=0.6, top_k=4),
                    dict(seed=3, top_p=0.9), dict(seed=4, num_samples=5),
                    dict(seed=5, num_samples=3, stop="a")):
        for length in (1, 64, 150):
            assert (generate(gpu, VOCAB, "ab", length, **options)
                    == generate(cpu, VOCAB, "ab", length, **options)), (options, length)


def test_same_seed_same_text_other_seed_other_text(dev):
    _, gpu = twins(dev)
    first = generate(gpu, VOCAB, "b", 200, seed=8)
    assert generate(gpu, VOCAB, "b", 200, seed=8) == first
    assert generate(gpu, VOCAB, "b", 200, seed=9) != first
    assert generate(gpu, VOCAB, "b", 0, seed=8) == "b"


def test_without_a_graph_the_kernels_run_one_by_one(dev, monkeypatch, capsys):
    """Where capture fails, the same launches run eagerly, with the same text, said once."""
    _, gpu = twins(dev)
    want = generate(gpu, VOCAB, "ab", 130, seed=6, num_samples=2)

    def refuse(self, mode=None):
        raise RuntimeError("capture is not supported here")
    refusing = type("Refusing", (dev.xp.cuda.Stream,), {"begin_capture": refuse})
    monkeypatch.setattr(dev.xp.cuda, "Stream", refusing)       # a stream that cannot capture
    monkeypatch.setattr(graphs, "_SAID", set())
    assert generate(gpu, VOCAB, "ab", 130, seed=6, num_samples=2) == want
    generate(gpu, VOCAB, "ab", 10, seed=6)
    err = capsys.readouterr().err
    assert err.count("sampling launches kernel by kernel: no CUDA graph") == 1
    assert "capture is not supported here" in err


def test_where_the_device_sampler_applies(dev, monkeypatch):
    cpu, gpu = twins(dev)
    assert device_sampling.applies(gpu) is None
    assert "NumPy" in device_sampling.applies(cpu)
    assert "reference" in device_sampling.applies(CharRNN(10, hidden_size=4, backend=dev,
                                                          engine="reference"))
    monkeypatch.setenv("LSTM_SCRATCH_DEVICE_SAMPLING", "0")
    assert "LSTM_SCRATCH_DEVICE_SAMPLING=0" in device_sampling.applies(gpu)
    # the host path on the device's model: a seed still gives the same text
    assert generate(gpu, VOCAB, "ab", 50, seed=2) == generate(cpu, VOCAB, "ab", 50, seed=2)


@fake_only
def test_the_fake_graph_refuses_what_a_real_capture_cannot_do(dev):
    xp = dev.xp
    k = kernels(xp, np.dtype(np.float64))
    stream = xp.cuda.Stream(non_blocking=True)
    state = xp.asarray(np.array([0x1234567890ABCDEF, 0xFEDCBA0987654321], np.uint64))
    out = xp.zeros(2)
    with stream:
        stream.begin_capture()
        with pytest.raises(RuntimeError, match="during graph capture"):
            xp.zeros(3)                                # an allocation
        with pytest.raises(RuntimeError, match="during graph capture"):
            xp.asnumpy(out)                            # a copy to the host
        stream.end_capture()
    with stream:
        stream.begin_capture()
        k["pcg64_uniforms"]((1,), (1,), (state, *split128(1), *split128(1), np.int64(2), out))
        graph = stream.end_capture()
    assert to_host(out).tolist() == [0.0, 0.0]         # recorded, not run
    graph.launch(stream)
    assert (to_host(out) > 0).all()
    del out
    with pytest.raises(RuntimeError, match="freed after capture"):
        graph.launch(stream)
    with pytest.raises(TypeError, match="NumPy scalar"):
        k["pcg64_uniforms"]((1,), (1,), (state, 1, 1, 1, 1, 2, state))


def test_sample_auto_says_which_backend_and_why(dev, monkeypatch):
    """``sample --backend auto``: the GPU where the device sampler runs; where it cannot,
    whichever of the two a short run measures faster; CuPy without a GPU: the CPU, and why."""
    from lstm_scratch import sampling_backend
    from lstm_scratch.checkpoint import load_checkpoint
    saved = load_checkpoint("shakespeare")
    model, _, line = sampling_backend.sampling_model(saved, "auto", "shakespeare")
    assert model.backend.name == "cupy"
    assert line == "sample: on the GPU (cupy), every char drawn on the device"
    monkeypatch.setenv("LSTM_SCRATCH_DEVICE_SAMPLING", "0")
    model, _, line = sampling_backend.sampling_model(saved, "auto", "shakespeare", 2)
    assert line.startswith(f"sample: on {model.backend.name}, measured faster for this request")
    assert line.count("chars/s") == 1 and "LSTM_SCRATCH_DEVICE_SAMPLING=0" in line
    monkeypatch.setattr(sampling_backend, "cupy_available", lambda: (False, "no CUDA device found"))
    model, _, line = sampling_backend.sampling_model(saved, "auto", "shakespeare")
    assert model.backend.name == "numpy"
    assert line == "sample: on the CPU (numpy): no CUDA device found"
    assert sampling_backend.sampling_model(saved, "numpy", "shakespeare")[2] is None


@fake_only
def test_a_graph_that_fails_to_launch_falls_back_to_launches(dev, monkeypatch, capsys):
    import fakecupy
    cpu, gpu = twins(dev)

    def broken(self, stream=None):
        raise RuntimeError("cudaErrorInvalidValue: invalid argument")
    monkeypatch.setattr(fakecupy._Graph, "launch", broken)
    monkeypatch.setattr(graphs, "_SAID", set())
    assert generate(gpu, VOCAB, "ab", 150, seed=4) == generate(cpu, VOCAB, "ab", 150, seed=4)
    assert capsys.readouterr().err.count("the CUDA graph failed to launch") == 1
