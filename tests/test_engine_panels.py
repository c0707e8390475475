"""The per-step product by panels (engine/gemm.py, :func:`panel_gemm`): B cut once into
contiguous (K/S, w) panels for OpenBLAS's small-matrix kernel, the product of a step one
matmul over the stack, summed over the S blocks of K and put back in place. It must be
the product, whatever the shapes, the layout (S, w), B's memory layout and the kernels
(compiled or NumPy); the fast layers built on it must still equal the textbook; and it
is chosen only where it pays."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import test_engine_skips
from layer_checks import textbook_and_fast
from lstm_scratch.engine import blas, fused_cpu, gemm
from lstm_scratch.engine.workspace import Workspace
from strategies import layer_dims, seeds

COMPILED = fused_cpu.panel_kernels(np.float32) is not None


def use_numpy_kernels(monkeypatch):
    monkeypatch.setattr(fused_cpu, "panel_kernels", lambda dtype: None)


@given(T=st.integers(1, 3), N=st.integers(1, 5), Kb=st.integers(1, 12), splits=st.sampled_from([1, 2, 3, 4]),
       M=st.integers(1, 40), width=st.integers(1, 44), dtype=st.sampled_from(["float32", "float64"]),
       accumulate=st.booleans(), stack=st.booleans(), transposed=st.booleans(),
       compiled=st.booleans() if COMPILED else st.just(False), seed=seeds)
def test_panel_gemm_is_the_product(T, N, Kb, splits, M, width, dtype, accumulate, stack,
                                   transposed, compiled, seed):
    """out[t] (+)= A[t] @ B for every step, within K + 1 roundings of the largest term
    (the small kernel and the sum over blocks may add the K terms in another order
    than one matmul)."""
    K = Kb * splits
    rng = np.random.default_rng(seed)
    hs = rng.standard_normal((T + 1, N, K)).astype(dtype)
    B = rng.standard_normal((M, K)).astype(dtype).T if transposed else \
        rng.standard_normal((K, M)).astype(dtype)
    before = rng.standard_normal((T, N, M) if stack else (N, M)).astype(dtype)
    if not accumulate:
        before[...] = np.nan                                # must not be read
    out = before.copy()
    with pytest.MonkeyPatch.context() as mp:
        if not compiled:
            use_numpy_kernels(mp)
        f = gemm.step_gemm(hs[:-1], B, out, accumulate, scratch=np.empty((N, M), dtype),
                           ws=Workspace(), panels=(splits, width))
    assert f.path == "panels" and f.layout == (splits, width)
    prev = before
    for t in range(T):
        f(t)
        got = (out[t] if stack else out).astype(np.float64)
        base = prev[t] if stack else prev
        want = hs[t].astype(np.float64) @ B.astype(np.float64) + (base if accumulate else 0)
        bound = (np.abs(hs[t]) @ np.abs(B) + (np.abs(base) if accumulate else 0)) \
            * (K + 1) * np.finfo(dtype).eps
        assert np.all(np.abs(got - want) <= bound + 1e-300), (T, N, K, M, width, t)
        if not stack:
            prev = out.copy()                               # the next step adds to this


@pytest.mark.skipif(not COMPILED, reason="Numba is not installed (or LSTM_SCRATCH_NUMBA=0)")
@given(Kb=st.integers(1, 12), splits=st.integers(1, 4), M=st.integers(1, 30), width=st.integers(1, 33),
       R=st.integers(1, 4), dtype=st.sampled_from(["float32", "float64"]), transposed=st.booleans(),
       seed=seeds)
def test_compiled_panel_kernels_equal_their_numpy_twins(Kb, splits, M, width, R, dtype, transposed,
                                                         seed):
    """pack_panels only copies: equal to the bit. from_panels adds the S blocks in the
    same order as its twin, then once into C; with one block that is equal to the bit,
    with more, within S roundings (the compiler may vectorise the sum differently)."""
    pack, put_back = fused_cpu.panel_kernels(np.dtype(dtype))
    rng = np.random.default_rng(seed)
    K = Kb * splits
    B = rng.standard_normal((M, K)).astype(dtype).T if transposed else \
        rng.standard_normal((K, M)).astype(dtype)
    P = -(-M // width)
    shape = (splits, P, Kb, width)
    ours, theirs = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
    pack(B, ours)
    gemm._pack_panels(B, theirs)
    np.testing.assert_array_equal(ours, theirs)
    assert not ours[:, -1, :, M - (P - 1) * width:].any()   # the padding is zero
    Cp = rng.standard_normal((splits, P, R, width)).astype(dtype)
    C0 = rng.standard_normal((R, M)).astype(dtype)
    for accumulate in (False, True):
        a, b = C0.copy(), C0.copy()
        put_back(Cp, a, accumulate)
        gemm._from_panels(Cp, b, accumulate)
        if splits == 1:
            np.testing.assert_array_equal(a, b)
        else:
            terms = np.abs(Cp).sum(axis=0).transpose(1, 0, 2).reshape(R, -1)[:, :M] + np.abs(C0)
            assert np.all(np.abs(a - b) <= (splits + 1) * np.finfo(dtype).eps * terms)


@pytest.mark.skipif(not COMPILED, reason="Numba is not installed (or LSTM_SCRATCH_NUMBA=0)")
def test_compiled_panel_kernels_check_shapes():
    """Compiled without bounds checks, so a shape that does not fit raises, writing nothing."""
    pack, put_back = fused_cpu.panel_kernels(np.dtype(np.float32))
    B = np.ones((4, 10), np.float32)
    # too few panels, too many, K not S blocks of Kb, panels too narrow
    for shape in [(1, 2, 4, 4), (1, 4, 4, 4), (1, 3, 5, 4), (2, 3, 3, 4), (1, 3, 4, 3)]:
        Bp = np.full(shape, 7, np.float32)
        with pytest.raises(ValueError, match="pack_panels"):
            pack(B, Bp)
        assert (Bp == 7).all()
    C = np.full((2, 10), 7, np.float32)
    for shape in [(1, 2, 2, 4), (2, 4, 2, 4), (1, 3, 3, 4)]:
        with pytest.raises(ValueError, match="from_panels"):
            put_back(np.ones(shape, np.float32), C, True)
        assert (C == 7).all()


@pytest.mark.parametrize("cell", sorted(test_engine_skips.CELLS))
@given(dims=layer_dims(), width=st.integers(1, 13), split=st.booleans(), zero_state=st.booleans(),
       fused=st.booleans(), seed=seeds)
def test_fast_layers_with_panels_equal_the_textbook(cell, dims, width, split, zero_state, fused,
                                                    seed):
    """Every cell's forward and backward products by panels (of any width, padded or not,
    K whole or in H-row blocks): the same outputs and gradients as the textbook (1e-10, float64)."""
    textbook, fast, random_layer = test_engine_skips.CELLS[cell]
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, **dims)
    if zero_state:
        layer["h0"] = np.zeros_like(layer["h0"])
    T, N = layer["x"].shape[:2]
    dh = rng.standard_normal((T, N, layer["h0"].shape[1]))
    paths = []
    real = gemm.panel_gemm

    def recording(*args):
        f = real(*args)
        paths.append(f.path)
        return f
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gemm, "PANEL_MIN_STEPS", 1)
        H = layer["h0"].shape[1]      # K is H (forward) or a multiple of it (backward)
        mp.setattr(gemm, "panel_layout", lambda rows, K, M, dtype: (K // H if split else 1, width))
        mp.setattr(gemm, "panel_gemm", recording)
        ref, ours = textbook_and_fast(textbook, fast, layer, dh, None, fused=fused)
    assert paths == ["panels", "panels"]                    # forward and backward
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-10, atol=1e-13, err_msg=k)


@pytest.fixture
def small_kernel_blas(monkeypatch):
    """As if NumPy's BLAS were an OpenBLAS with small-matrix kernels, on one thread."""
    monkeypatch.setattr(blas, "small_kernels", lambda: True)
    monkeypatch.setattr(blas, "one_thread", lambda: True)
    monkeypatch.delenv("LSTM_SCRATCH_PANELS", raising=False)


@pytest.mark.parametrize("rows, K, M, layout", [
    (32, 512, 2048, (1, 32)),    # C2's forward: up to 61 columns fit; 32 pads none
    (32, 2048, 512, (4, 32)),    # C2's backward: 15 fit; K in 4 blocks lets 61 fit
    (64, 512, 2048, (1, 16)),    # C1's forward: above 32 rows 16 columns will do
    (64, 2048, 512, (4, 16)),    # C1's backward: 7 fit; in 4 blocks, 30
    (25, 128, 512, (1, 256)),    # C3's forward: 312 fit; 256 makes 2 panels and no padding
    (25, 512, 128, (1, 64)),     # C3's backward: 78 fit
    (32, 512, 1536, (1, 48)),    # a GRU's forward: 48 divides 1536, 32 would too but is narrower
    (16, 4096, 1024, (4, 32)),
    (32, 300, 1200, (1, 80)),    # 104 fit: 16, 48 and 80 divide 1200, 96 would pad it to 1248
    (32, 3001, 100, None),       # K prime: no split helps
    (128, 512, 2048, None),      # from 128 rows one matmul is as fast
    (25, 128, 128, None),        # the whole product is small already
    (10, 40, 90, None),
])
def test_panel_layout_rule(small_kernel_blas, rows, K, M, layout):
    got = gemm.panel_layout(rows, K, M, np.float32)
    assert got == layout
    if got:
        S, w = got
        assert K % S == 0 and rows * (K // S) * w <= blas.SMALL_KERNEL_MNK and w % 16 == 0


def test_panels_only_where_they_pay(small_kernel_blas, monkeypatch):
    """Not for float64 (gradient checks; not measured), not with LSTM_SCRATCH_PANELS=0,
    not where BLAS runs on several threads or has no small-matrix kernels."""
    assert gemm.panel_layout(32, 512, 2048, np.float32) == (1, 32)
    assert gemm.panel_layout(32, 512, 2048, np.float64) is None
    monkeypatch.setenv("LSTM_SCRATCH_PANELS", "0")
    assert gemm.panel_layout(32, 512, 2048, np.float32) is None
    monkeypatch.delenv("LSTM_SCRATCH_PANELS")
    monkeypatch.setattr(blas, "one_thread", lambda: False)
    assert gemm.panel_layout(32, 512, 2048, np.float32) is None
    monkeypatch.setattr(blas, "one_thread", lambda: True)
    monkeypatch.setattr(blas, "small_kernels", lambda: False)
    assert gemm.panel_layout(32, 512, 2048, np.float32) is None


def test_panel_gemm_refuses_shapes_that_do_not_fit():
    """Where matmul would raise, so does panel_gemm, writing nothing: B's rows are not
    A's columns, out is not (N, M), a stack of out shorter than A."""
    A = np.ones((3, 4, 6))
    B = np.ones((6, 10))
    for a, b, out in [(A, np.ones((7, 10)), np.zeros((3, 4, 10))),
                      (A, B, np.zeros((3, 4, 9))),
                      (A, B, np.zeros((3, 1, 10))),
                      (A, B, np.zeros((2, 4, 10)))]:
        with pytest.raises(ValueError, match="do not make out"):
            gemm.step_gemm(a, b, out, ws=Workspace(), panels=(1, 4))
        assert not out.any()


def test_short_loops_multiply_in_one_matmul(small_kernel_blas):
    """Cutting B costs about what 4-8 steps save: loops shorter than PANEL_MIN_STEPS
    (generation, one step at a time) take one matmul a step."""
    B = np.ones((512, 2048), np.float32)
    for T in (1, gemm.PANEL_MIN_STEPS - 1, gemm.PANEL_MIN_STEPS):
        A = np.ones((T, 32, 512), np.float32)
        f = gemm.step_gemm(A, B, np.empty((T, 32, 2048), np.float32), ws=Workspace())
        assert f.path == ("panels" if T >= gemm.PANEL_MIN_STEPS else "matmul"), T


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_float32_model_trains_the_same_with_panels(cell, monkeypatch):
    """A two-layer float32 model on two batch-split workers, its workspaces kept from
    step to step and shared by the layers: loss and gradients with every per-step
    product by panels (K in two blocks) equal those with one matmul a step, to float32
    rounding, over three steps of carried state."""
    from lstm_scratch.engine.parallel import ThreadedDataParallel
    from lstm_scratch.model import CharRNN
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 11, (6, 12)), rng.integers(0, 11, (6, 12))
    results, paths = {}, []
    real = gemm.panel_gemm

    def recording(*args):
        paths.append(args[4])
        return real(*args)
    monkeypatch.setattr(gemm, "panel_gemm", recording)
    for panels in (False, True):
        if panels:
            monkeypatch.setattr(gemm, "panel_layout", lambda rows, K, M, dtype: (2, 16))
            monkeypatch.setattr(gemm, "PANEL_MIN_STEPS", 1)
        model = CharRNN(11, cell, 16, 2, dropout=0.0, seed=1)
        runner = ThreadedDataParallel(model, workers=2)
        state, out = None, []
        for _ in range(3):
            loss, grads, state = runner.loss_and_grads(x.T, y.T, state)
            out.append((loss, {k: v.copy() for k, v in grads.items()}))
        runner.close()
        results[panels] = out
        assert len(paths) == (3 * 2 * 2 * 2 if panels else 0)   # steps x workers x layers x passes
    for (loss0, g0), (loss1, g1) in zip(results[False], results[True]):
        np.testing.assert_allclose(loss1, loss0, rtol=1e-5)
        for k in g0:
            np.testing.assert_allclose(g1[k], g0[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_step_gemm_takes_panels_by_the_rule(small_kernel_blas):
    """step_gemm decides by panel_layout where no layout is given; without a workspace
    for the panels it multiplies in one matmul; a K that does not split as asked is refused."""
    A = np.ones((8, 32, 512), np.float32)
    out = np.empty((8, 32, 2048), np.float32)
    B = np.ones((512, 2048), np.float32)
    f = gemm.step_gemm(A, B, out, ws=Workspace())
    assert f.path == "panels" and f.layout == (1, 32)
    assert gemm.step_gemm(A, B, out).path == "matmul"
    assert gemm.step_gemm(A, B, out, ws=Workspace(), panels=0).path == "matmul"
    with pytest.raises(ValueError, match="does not split into 3"):
        gemm.step_gemm(A, B, out, ws=Workspace(), panels=(3, 32))


class FakeOpenBLAS:
    def __init__(self, architecture, version, num_threads=1):
        self.architecture, self.version, self.num_threads = architecture, version, num_threads


@pytest.mark.parametrize("lib, small", [
    (FakeOpenBLAS("SkylakeX", "0.3.31.188.0"), True),
    (FakeOpenBLAS("Cooperlake", "0.3.21"), True),
    (FakeOpenBLAS("SapphireRapids", "0.3.27.dev"), True),
    (FakeOpenBLAS("Haswell", "0.3.31.188.0"), False),      # no small-matrix kernels
    (FakeOpenBLAS("Zen", "0.3.31"), False),
    (FakeOpenBLAS("SkylakeX", "0.3.13"), False),           # before they were built
    (FakeOpenBLAS(None, None), False),
    (None, False),                                          # MKL, Accelerate, BLIS...
])
def test_small_kernels_by_core_and_version(monkeypatch, lib, small):
    monkeypatch.setattr(blas, "_openblas", lambda: lib)
    blas.small_kernels.cache_clear()
    try:
        assert blas.small_kernels() is small
    finally:
        blas.small_kernels.cache_clear()


class FakeController:
    def __init__(self, libs):
        self.lib_controllers = libs

    def select(self, internal_api):
        return self


def test_numpy_s_openblas_is_the_one_asked(monkeypatch, tmp_path):
    """With SciPy's OpenBLAS loaded beside NumPy's, NumPy's is the one that counts;
    with one, that one; with none of them NumPy's, none."""
    import os
    site = os.path.dirname(os.path.dirname(np.__file__))
    ours = FakeOpenBLAS("SkylakeX", "0.3.31")
    ours.filepath = os.path.join(site, "numpy.libs", "libscipy_openblas64_-x.so")
    scipy_s = FakeOpenBLAS("Haswell", "0.3.27")
    scipy_s.filepath = os.path.join(site, "scipy.libs", "libscipy_openblas-y.so")
    for libs, want in [([scipy_s, ours], ours), ([ours], ours), ([scipy_s], scipy_s),
                       ([scipy_s, scipy_s], None), ([], None)]:
        monkeypatch.setattr(blas, "controller", lambda: FakeController(libs))
        blas._openblas.cache_clear()
        try:
            assert blas._openblas() is want
        finally:
            blas._openblas.cache_clear()


def test_one_thread_reads_the_current_count(monkeypatch):
    lib = FakeOpenBLAS("SkylakeX", "0.3.31", num_threads=2)
    monkeypatch.setattr(blas, "_openblas", lambda: lib)
    assert not blas.one_thread()
    lib.num_threads = 1
    assert blas.one_thread()
    monkeypatch.setattr(blas, "_openblas", lambda: None)
    assert not blas.one_thread()
