"""The per-step product of a time loop, ``out_t (+)= A[t] B``, as cheap to launch as it can be.

On NumPy this is ``xp.matmul`` (and an add). On CuPy the product of one step is
small (a (64, 512) x (512, 2048) GEMM takes a few microseconds on the device) and
``cupy.matmul`` spends ~24 us of host time deciding layouts and checking
arguments, every step: a 2x512 training step at batch 64 makes 200 of them and
the GPU waits on the host (bench/README.md, "First run on a GPU"). Here those
decisions are made once per loop, and each step is one cuBLAS call with its
pointers worked out in advance; accumulating uses cuBLAS's beta = 1, so
``a_t += h_{t-1} Wh`` needs no separate add either.

Row-major arrays seen by cuBLAS (column-major) are their transposes, so
out_t = A_t B is computed as out_tᵀ = Bᵀ A_tᵀ: ``gemm(N, N, m=M, n=N, k=K, B, ldb=M,
A_t, lda=K, out_t, ldc=M)``.

Used only where it computes what ``cupy.matmul`` would: float32 or float64, rows
contiguous, out apart from A and B, and float32 only without ``CUPY_TF32`` (CuPy's TF32
products go through another cuBLAS call, which this one would not follow; like CuPy,
this reads the variable, so a compute type set through CuPy's internals is not seen).
Elsewhere, or with ``LSTM_SCRATCH_CUBLAS=0`` in the environment (to compare, or to
rule it out), it is ``xp.matmul``. tests/test_cupy_branches.py holds both against NumPy.
"""
import os

import numpy as np

from ..backend import array_module
from . import fused_cpu


def step_gemm(A, B, out, accumulate=False, scratch=None):
    """A function ``f(t)`` doing ``out[t] = A[t] @ B``, or ``out[t] += A[t] @ B``.

    A : (T, N, K) stack read one step at a time (a view such as hs[:-1] is fine)
    B : (K, M), the same every step (C-contiguous for the one-call path)
    out : (T, N, M) stack, or (N, M): the same buffer every step
    accumulate : add the product into out[t] instead of overwriting it
    scratch : (N, M) buffer for the product before the add (NumPy, or CuPy where
        cuBLAS is not called directly); needed when accumulate
    """
    xp = array_module(B)
    per_step = out.ndim == 3
    if xp is not np:
        direct = _cublas_gemm(xp, A, B, out, per_step, accumulate)
        if direct is not None:
            return direct

    def f(t):
        target = out[t] if per_step else out
        if accumulate:
            xp.matmul(A[t], B, out=scratch)
            target += scratch
        else:
            xp.matmul(A[t], B, out=target)
    f.path = "matmul"
    return f


def colmajor_copy(W, ws, name):
    """A column-major copy of W in the workspace ``ws`` (buffer ``name``), so that
    Wᵀ is row-major: OpenBLAS multiplies a thin block by a row-major Wᵀ 23-42%
    faster than by a transposed view of row-major W (bench/gemm_align.py
    --layouts). Copied in 8 x 8 tiles by :func:`.fused_cpu.transpose_into` where it
    is compiled (2-4x as fast as NumPy's strided copy)."""
    xp = array_module(W)
    out = ws.empty(xp, name, W.shape, W.dtype, "F")
    kernel = fused_cpu.transpose_kernel(W.dtype) if xp is np else None
    if kernel is not None:
        kernel(W, out.T)
    else:
        out[...] = W
    return out


def _cublas_gemm(xp, A, B, out, per_step, accumulate):
    """``f(t)`` as one cuBLAS gemm a step, or None where it would not equal cupy.matmul."""
    dtype = B.dtype
    if os.environ.get("LSTM_SCRATCH_CUBLAS") == "0":
        return None
    if dtype == np.float32 and int(os.environ.get("CUPY_TF32", "0") or 0) > 0:
        return None
    if dtype not in (np.float32, np.float64) or A.dtype != dtype or out.dtype != dtype:
        return None
    T, N, K = A.shape
    M = B.shape[1]
    isz = dtype.itemsize
    rows_ok = A.strides[1:] == (K * isz, isz) and out.strides[-2:] == (M * isz, isz)
    shapes_ok = B.shape[0] == K and out.shape[-2:] == (N, M) and (not per_step or len(out) == T)
    if not (rows_ok and shapes_ok and B.flags.c_contiguous):
        return None
    if xp.may_share_memory(out, A) or xp.may_share_memory(out, B):   # cuBLAS's result: undefined
        return None
    cublas, handle = xp.cuda.cublas, xp.cuda.device.get_cublas_handle()
    gemm = cublas.sgemm if dtype == np.float32 else cublas.dgemm
    op_n, host = cublas.CUBLAS_OP_N, cublas.CUBLAS_POINTER_MODE_HOST
    scalars = np.array([1.0, 1.0 if accumulate else 0.0], dtype)       # alpha, beta on the host
    alpha, beta = scalars.ctypes.data, scalars.ctypes.data + isz
    a0, a_step = A.data.ptr, A.strides[0]
    b = B.data.ptr
    c0, c_step = out.data.ptr, (out.strides[0] if per_step else 0)
    arrays = (A, B, out, scalars)                # kept alive as long as f is

    def f(t):
        if not 0 <= t < T:                           # no pointer past the arrays' ends
            raise IndexError(f"step {t} of a loop of {T}")
        cublas.setPointerMode(handle, host)
        gemm(handle, op_n, op_n, M, N, K, alpha, b, M, a0 + t * a_step, K, beta, c0 + t * c_step, M)
    f.arrays, f.path = arrays, "cublas"
    return f
