"""The Numba cell of engine/fused_cpu.py against the plain NumPy cell.

Skips (with the reason) where Numba is not installed; the plain path is what
every other test runs then.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch.model import CharLSTM
from lstm_scratch.engine import fused_cpu
from lstm_scratch.engine.fused import backward_kernel, forward_kernel
from lstm_scratch.engine.lstm import lstm_cell_backward, lstm_cell_forward, sigmoid_via_tanh
from gradcheck import layer_plain_and_fused
from strategies import seeds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(not fused_cpu.ENABLED,
                                reason="Numba not installed (or LSTM_SCRATCH_NUMBA=0): "
                                       "the plain NumPy cell is the only one")


@pytest.fixture(scope="module")
def tanh32_array():
    from numba import njit
    fused_cpu._compiled()                                   # fused_cpu.tanh32 is now compiled

    @njit
    def apply(x, out):
        for k in range(x.size):
            out[k] = fused_cpu.tanh32(x[k])
    return lambda x: (apply(x, out := np.empty_like(x)), out)[1]


def test_tanh32_is_within_float32_rounding_of_tanh(tanh32_array):
    x = np.concatenate([np.linspace(-12, 12, 400_001), np.geomspace(1e-30, 1e-2, 2_000),
                        [0.0, np.inf, -np.inf, np.float32(3.4e38)]]).astype(np.float32)
    x = np.concatenate([x, -x])
    t = tanh32_array(x)
    exact = np.tanh(x.astype(np.float64))
    assert t.dtype == np.float32
    assert np.abs(t - exact).max() < 4e-7                   # np.tanh's own float32 error: 6e-8
    assert np.abs(t).max() <= 1.0
    tiny = np.abs(x) < 1e-3                                 # tanh x ≈ x: relative error there too
    np.testing.assert_allclose(t[tiny], exact[tiny], rtol=1e-6)
    # Odd, to within 16 float32 ulps, not bit for bit. tanh32 computes x P(u) / Q(u) from
    # u = x², the same for x and -x; but the compiled loop over the array runs most
    # elements in SIMD lanes and the rest in a scalar tail, and the compiler may fuse a
    # Horner step ``a u + b`` into one FMA (one rounding instead of two) in one and not
    # the other (seen on AVX-512: 3 of 402,005 values 1 ulp apart). Evaluating P and Q
    # in float32 with every step fused, and with none, differs by at most 8 ulps of the
    # result over 5M points of [0, 9.5] (the worst near x = 6, where tanh x ≈ 1 - 1e-5); 16
    # leaves room for a compiler that fuses some steps and not others. A sign or clamp
    # that is not symmetric would be off by far more.
    pos, neg = t[: x.size // 2], t[x.size // 2:]
    ulp = np.spacing(np.abs(pos))
    assert (np.abs(pos + neg) <= 16 * ulp).all()
    assert (np.sign(pos) == -np.sign(neg)).all()


def _cell_inputs(rng, N, H, dtype):
    scale, shift = sigmoid_via_tanh(H, dtype, np)
    a = (rng.standard_normal((N, 4 * H)) * 3).astype(dtype)     # a_t
    c_prev = (rng.standard_normal((N, H)) * 2).astype(dtype)
    return a, c_prev, scale, shift


def _forward(a, c_prev, scale, shift, fused):
    N, H = c_prev.shape
    gates, c, tanh_c, h = a.copy(), *(np.empty_like(c_prev) for _ in range(3))
    lstm_cell_forward(gates, c_prev, scale, shift, c, tanh_c, h, np.empty_like(c_prev), fused)
    return gates, c, tanh_c, h


def _backward(gates, c_prev, tanh_c, dh_up, dh_next, dc_next, fused):
    da, dc = np.empty_like(gates), dc_next.copy()
    lstm_cell_backward(dh_up, gates, c_prev, tanh_c, da, dh_next, dc,
                       tuple(np.empty_like(c_prev) for _ in range(3)), fused)
    return da, dc


@given(st.integers(1, 5), st.integers(1, 40), seeds)
def test_cell_equals_numpy_cell_in_float32(N, H, seed):
    rng = np.random.default_rng(seed)
    a, c_prev, scale, shift = _cell_inputs(rng, N, H, np.float32)
    plain, fused = (_forward(a, c_prev, scale, shift, f) for f in (False, True))
    for x, y in zip(plain, fused):
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)
    gates, _, tanh_c, _ = plain
    ups = [rng.standard_normal((N, H)).astype(np.float32) for _ in range(3)]
    for x, y in zip(*(_backward(gates, c_prev, tanh_c, *ups, f) for f in (False, True))):
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6)


@given(st.integers(1, 4), st.integers(1, 9), seeds)
def test_backward_algebra_is_exact_in_float64(N, H, seed):
    # The backward loop has no tanh: run in float64 it must agree with the NumPy
    # cell to rounding, which pins every index and every factor.
    rng = np.random.default_rng(seed)
    a, c_prev, scale, shift = _cell_inputs(rng, N, H, np.float64)
    gates, _, tanh_c, _ = _forward(a, c_prev, scale, shift, fused=False)
    dh_up, dh_next, dc_next = (rng.standard_normal((N, H)) for _ in range(3))
    plain = _backward(gates, c_prev, tanh_c, dh_up, dh_next, dc_next, fused=False)
    da, dc = np.empty_like(gates), dc_next.copy()
    cell_backward = fused_cpu.kernels(np.float32)[1]       # compiled; run here on float64
    cell_backward(gates, c_prev, tanh_c, dh_up, dh_next, da, dc)
    np.testing.assert_allclose(da, plain[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dc, plain[1], rtol=1e-12, atol=1e-14)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 24), st.booleans(), seeds)
def test_layer_fused_equals_plain_in_float32(N, T, H, ids, seed):
    rng = np.random.default_rng(seed)
    D = 7
    f32 = lambda *shape: (rng.standard_normal(shape) * 0.5).astype(np.float32)
    x = rng.integers(0, D, (T, N)) if ids else f32(T, N, D)
    h0, c0, Wx, Wh, b = f32(N, H), f32(N, H), f32(D, 4 * H), f32(H, 4 * H), f32(4 * H)
    dh, dhT, dcT = f32(T, N, H), f32(N, H), f32(N, H)
    plain, fused = layer_plain_and_fused(x, h0, c0, Wx, Wh, b, dh, dhT, dcT)
    for k, v in plain.items():
        np.testing.assert_allclose(fused[k], v, rtol=1e-4, atol=2e-6, err_msg=k)


@given(st.integers(1, 40), st.integers(1, 9), st.integers(1, 20),
       st.sampled_from([np.float32, np.float64]), st.sampled_from([np.int32, np.int64]), seeds)
def test_onehot_backward_equals_scatter_and_sum(K, V, M, dtype, id_dtype, seed):
    """dW[ids[k]] += dy[k], db += dy[k]: the same sums as backend.scatter_add_rows and
    dy.sum(0), in another order (rows added one by one instead of in a GEMM): equal
    within 8 float32 ulps of the largest entry for the K <= 40 terms drawn here,
    and 1e-12 in float64."""
    from lstm_scratch.backend import scatter_add_rows
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, K).astype(id_dtype)           # repeats: rows must accumulate
    dy = rng.standard_normal((K, M)).astype(dtype)
    dW, db = np.zeros((V, M), dtype), np.zeros(M, dtype)
    fused_cpu.onehot_kernel(dtype)(ids, dy, dW, db)
    ref = np.zeros((V, M), dtype)
    scatter_add_rows(ref, ids, dy)
    tol = 8 * np.finfo(np.float32).eps if dtype == np.float32 else 1e-12
    scale = np.abs(dy).sum(axis=0).max()                    # bounds every entry of dW and db
    np.testing.assert_allclose(dW, ref, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(db, dy.sum(axis=0), rtol=0, atol=tol * scale)


@pytest.mark.parametrize("bad", [-1, 5])
def test_onehot_backward_refuses_an_id_outside_the_vocabulary(bad):
    ids = np.array([0, 4, bad, 1])
    dy = np.ones((4, 3), np.float32)
    with pytest.raises(IndexError, match="outside the vocabulary"):
        fused_cpu.onehot_kernel(np.float32)(ids, dy, np.zeros((5, 3), np.float32), np.zeros(3, np.float32))


def test_compiled_loops_refuse_shapes_that_disagree():
    """They run without bounds checks, so they check the shapes first."""
    f32 = lambda *shape: np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="disagree"):       # 2 ids for 4 rows of dy
        fused_cpu.onehot_kernel(np.float32)(np.array([0, 1]), f32(4, 3), f32(5, 3), f32(3))
    with pytest.raises(ValueError, match="disagree"):
        fused_cpu.onehot_kernel(np.float32)(np.array([0, 1]), f32(2, 3), f32(5, 2), f32(3))
    with pytest.raises(ValueError, match="must be"):
        fused_cpu.transpose_kernel(np.float32)(f32(3, 5), f32(3, 5))


@given(st.integers(1, 30), st.integers(1, 30), st.sampled_from([np.float32, np.float64]), seeds)
def test_transpose_into_is_the_transpose(R, C, dtype, seed):
    """A copy, no arithmetic: equal bit for bit, tails of the 8 x 8 tiles included."""
    src = np.random.default_rng(seed).standard_normal((R, C)).astype(dtype)
    dst = np.full((C, R), np.nan, dtype)
    fused_cpu.transpose_kernel(dtype)(src, dst)
    np.testing.assert_array_equal(dst, src.T)


def test_model_step_with_numba_matches_plain(monkeypatch):
    rng = np.random.default_rng(0)
    ids, targets = rng.integers(0, 20, (4, 12)), rng.integers(0, 20, (4, 12))
    results = {}
    for enabled in (False, True):
        monkeypatch.setattr(fused_cpu, "ENABLED", enabled)
        forward_kernel.cache_clear(), backward_kernel.cache_clear()
        assert (forward_kernel(np, np.dtype(np.float32)) is not None) == enabled
        model = CharLSTM(20, 32, 2, dropout=0.3, seed=1)
        results[enabled] = model.loss_and_grads(ids, targets, dropout_rng=np.random.default_rng(2))
    monkeypatch.undo()
    forward_kernel.cache_clear(), backward_kernel.cache_clear()
    (loss0, g0, _), (loss1, g1, _) = results[False], results[True]
    assert abs(loss1 - loss0) < 1e-6 * loss0
    for name in g0:
        np.testing.assert_allclose(g1[name], g0[name], rtol=1e-3, atol=1e-6, err_msg=name)



def test_compiles_without_a_cache_where_none_can_be_written(monkeypatch):
    import numba
    njit = numba.njit

    def no_cache_dir(cache=False, **options):
        if cache:
            raise RuntimeError("cannot cache function: no locator available")
        return njit(**options)
    monkeypatch.setattr(numba, "njit", no_cache_dir)
    double = fused_cpu._jit(lambda x: 2 * x)
    assert double(np.float32(1.5)) == 3.0


def test_numba_is_imported_on_first_use_only():
    # lstm_scratch itself must start fast: Numba takes ~0.6 s to import.
    code = ("import sys, lstm_scratch, lstm_scratch.cli; assert 'numba' not in sys.modules; "
            "from lstm_scratch.engine.fused import forward_kernel; import numpy as np; "
            "assert forward_kernel(np, np.dtype('float32')) is not None; "
            "assert 'numba' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=ROOT))
