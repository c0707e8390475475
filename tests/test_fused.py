"""The CUDA kernels of engine/fused.py, checked without a GPU.

Their bodies are plain C++ once T is a type and tanh comes from <cmath>: we
compile them for the host with the machine's C++ compiler, run them over
every (n, j) like the GPU would, and compare with the NumPy cell functions.
Skips (with the reason) where no C++ compiler is found.
"""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch.engine import fused
from lstm_scratch.engine.lstm import lstm_cell_backward, lstm_cell_forward, sigmoid_via_tanh
from strategies import seeds

CXX = shutil.which("c++") or shutil.which("g++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler to build the kernels on the host")

SOURCE = """
#include <cmath>
#include <cstddef>
using std::tanh;
typedef double T;
extern "C" void fwd(const T* c_prev, long long H, T* a, T* c, T* tanh_c, T* h, ptrdiff_t size) {
  for (ptrdiff_t i = 0; i < size; ++i) { %s }
}
extern "C" void bwd(const T* gates, const T* c_prev, const T* tanh_c, const T* dh_up,
                    const T* dh_next, long long H, T* da, T* dc_next, ptrdiff_t size) {
  for (ptrdiff_t i = 0; i < size; ++i) { %s }
}
"""


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kernels")
    (folder / "k.cpp").write_text(SOURCE % (fused._FORWARD, fused._BACKWARD))
    subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-o", str(folder / "k.so"), str(folder / "k.cpp")],
                   check=True, capture_output=True)
    lib = ctypes.CDLL(str(folder / "k.so"))
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    long, size = ctypes.c_longlong, ctypes.c_ssize_t

    def forward(c_prev, H, a, c, tanh_c, h):
        lib.fwd(ptr(c_prev), long(H), ptr(a), ptr(c), ptr(tanh_c), ptr(h), size(c.size))

    def backward(gates, c_prev, tanh_c, dh_up, dh_next, H, da, dc_next):
        lib.bwd(ptr(gates), ptr(c_prev), ptr(tanh_c), ptr(dh_up), ptr(dh_next), long(H),
                ptr(da), ptr(dc_next), size(dc_next.size))
    return forward, backward


@given(st.integers(1, 4), st.integers(1, 5), seeds)
def test_kernels_equal_numpy_cell(kernels, N, H, seed):
    kernel_forward, kernel_backward = kernels
    rng = np.random.default_rng(seed)
    scale, shift = sigmoid_via_tanh(H, np.float64, np)
    a = rng.standard_normal((N, 4 * H)) * 2                  # a_t
    c_prev = rng.standard_normal((N, H))
    outs = {}
    for name, run in (("numpy", None), ("kernel", kernel_forward)):
        gates, c, tanh_c, h = a.copy(), *(np.empty((N, H)) for _ in range(3))
        if run is None:
            lstm_cell_forward(gates, c_prev, scale, shift, c, tanh_c, h, np.empty((N, H)))
        else:
            run(c_prev, H, gates, c, tanh_c, h)
        outs[name] = (gates, c, tanh_c, h)
    for x, y in zip(outs["numpy"], outs["kernel"]):
        np.testing.assert_allclose(y, x, rtol=1e-13, atol=1e-15)

    gates, _, tanh_c, _ = outs["numpy"]
    dh_up, dh_next, dc_next = (rng.standard_normal((N, H)) for _ in range(3))
    results = {}
    for name in ("numpy", "kernel"):
        da, dc = np.empty((N, 4 * H)), dc_next.copy()
        if name == "numpy":
            lstm_cell_backward(dh_up, gates, c_prev, tanh_c, da, dh_next, dc,
                               tuple(np.empty((N, H)) for _ in range(3)))
        else:
            kernel_backward(gates, c_prev, tanh_c, dh_up, dh_next, H, da, dc)
        results[name] = (da, dc)
    for x, y in zip(results["numpy"], results["kernel"]):
        np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-14)
