import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_scratch import UserError
from lstm_scratch.backend import (ALIGN, Backend, BackendUnavailable, array_module, cupy_available,
                                  dropout_mask, empty_aligned, get_backend, scatter_add_rows,
                                  to_host)
from strategies import seeds


def test_numpy_backend():
    be = get_backend("numpy")
    assert be.name == "numpy" and be.xp is np
    assert get_backend(be) is be
    a = be.asarray([1, 2], dtype=np.float32)
    assert a.dtype == np.float32 and to_host(a) is a and array_module(a) is np


def test_unknown_backend_is_one_line():
    with pytest.raises(UserError, match=r"unknown backend 'gpu': expected one of numpy, cupy, auto"):
        get_backend("gpu")


def test_auto_falls_back_to_numpy_without_a_gpu():
    ok, _ = cupy_available()
    assert get_backend("auto").name == ("cupy" if ok else "numpy")


def test_cupy_without_gpu_is_a_clear_error():
    ok, reason = cupy_available()
    if ok:
        pytest.skip("a GPU is present: nothing to refuse")
    with pytest.raises(BackendUnavailable) as err:
        get_backend("cupy")
    message = str(err.value)
    assert message == reason and "\n" not in message
    assert "backend 'cupy' needs" in message


@given(st.integers(1, 6), st.integers(0, 30), st.integers(1, 3), seeds)
def test_scatter_add_rows_equals_add_at(V, K, M, seed):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, V, K)
    src = rng.standard_normal((K, M))
    dst = rng.standard_normal((V, M))
    expected = dst.copy()
    np.add.at(expected, rows, src)
    scatter_add_rows(dst, rows, src)
    np.testing.assert_allclose(dst, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_dtype_and_values(dtype):
    mask = dropout_mask(np.random.default_rng(0), (50, 40), 0.75, dtype)
    assert mask.dtype == dtype and mask.shape == (50, 40)
    assert set(np.unique(mask)) <= {0.0, dtype(1 / 0.75)}


def test_backend_repr():
    assert repr(Backend("numpy", np)) == "Backend('numpy')"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=0, max_size=3), st.sampled_from(["float32", "float64", "int64"]),
       st.sampled_from("CF"))
def test_empty_aligned_is_empty_on_a_64_byte_boundary(shape, dtype, order):
    a = empty_aligned(np, tuple(shape), dtype, order)
    assert a.shape == tuple(shape) and a.dtype == np.dtype(dtype)
    assert a.flags[f"{order}_CONTIGUOUS"] and a.flags.writeable
    assert a.ctypes.data % ALIGN == 0 or a.size == 0
    a[...] = 1                      # its own memory, all of it
    assert a.sum() == a.size


def test_parameters_and_workspace_buffers_start_on_64_byte_boundaries():
    """Why: OpenBLAS multiplies by a 64-byte-aligned B up to a quarter faster (backend.ALIGN)."""
    from lstm_scratch import CharLSTM
    from lstm_scratch.engine.workspace import Workspace
    model = CharLSTM(65, 48, 2, dropout=0.1, seed=0)
    assert all(p.ctypes.data % ALIGN == 0 for p in model.params.values())
    x = np.random.default_rng(0).integers(0, 65, (5, 7))
    _, grads, _ = model.loss_and_grads(x, x)
    products = ["Wh0", "Wx1", "Wh1", "Wy"]               # the gradients that are GEMM outputs
    assert all(grads[name].ctypes.data % ALIGN == 0 for name in products)
    ws = Workspace()
    assert ws.empty(np, "a", (3, 5), np.float32).ctypes.data % ALIGN == 0
    assert ws.empty(np, "b", (3, 5), np.float32, "F").ctypes.data % ALIGN == 0
