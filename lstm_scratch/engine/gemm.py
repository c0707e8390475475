"""The per-step product of a time loop, ``out_t (+)= A[t] B``, as cheap as it can be.

On NumPy this is ``xp.matmul`` (and an add), by a row-major B (a transposed B is
copied to row-major once per loop: OpenBLAS multiplies a thin block by it 23-42%
faster). Where OpenBLAS has small-matrix kernels and runs on one thread (the
batch-split workers), B is instead cut once per loop into panels those kernels
take whole, which skips the repacking of all of B that every step's GEMM
otherwise does (:func:`panel_gemm`).

On CuPy the product of one step is
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
from . import blas, fused_cpu
from .workspace import FRESH


def step_gemm(A, B, out, accumulate=False, scratch=None, ws=None, panels=None):
    """A function ``f(t)`` doing ``out[t] = A[t] @ B``, or ``out[t] += A[t] @ B``.

    A : (T, N, K) stack read one step at a time (a view such as hs[:-1] is fine)
    B : (K, M), the same every step: row-major, or the transpose of a row-major
        matrix (Whᵀ), which is copied to row-major once here (:func:`colmajor_copy`)
    out : (T, N, M) stack, or (N, M): the same buffer every step
    accumulate : add the product into out[t] instead of overwriting it
    scratch : (N, M) buffer for the product before the add (NumPy, or CuPy where
        cuBLAS is not called directly); needed when accumulate
    ws : a workspace for the copies of B made here (needed unless B is row-major)
    panels : columns per panel for :func:`panel_gemm`; None decides
        (:func:`panel_width`), 0 is one matmul a step
    """
    xp = array_module(B)
    per_step = out.ndim == 3
    T, N, K = A.shape
    M = B.shape[1]
    if xp is np:
        width = panel_width(N, K, M, B.dtype) if panels is None else panels
        if width and ws is not None:
            return panel_gemm(A, B, out, accumulate, width, ws)
    if not B.flags.c_contiguous:
        B = colmajor_copy(B.T, FRESH if ws is None else ws, f"colmajor{B.shape}").T
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


def panel_width(rows, K, M, dtype):
    """Columns per panel for a per-step (rows, K) x (K, M) product, or 0 for one matmul.

    Panels where NumPy's BLAS is an OpenBLAS with small-matrix kernels, held to one
    thread (as in the batch-split workers), for float32 and up to 64 rows: the widest
    panel the small kernel takes (rows·K·w <= 10⁶) that is a multiple of 16, with the
    least padding; 13-15 columns where 16 do not fit, up to 32 rows. Elsewhere one
    matmul is as fast or faster: narrower panels, and from 128 rows, where OpenBLAS's
    repacking of B is spread over enough rows (bench/gemm_align.py --panels; figures
    in bench/README.md). ``LSTM_SCRATCH_PANELS=0`` in the environment switches them off.
    """
    if (np.dtype(dtype) != np.float32 or rows > 64 or os.environ.get("LSTM_SCRATCH_PANELS") == "0"
            or not (blas.small_kernels() and blas.one_thread())):
        return 0
    limit = blas.SMALL_KERNEL_MNK // max(1, rows * K)       # widest panel allowed
    if limit >= M:
        return 0                                            # the whole product is small already
    if limit >= 16:
        return min(range(16, limit + 1, 16), key=lambda w: (-(-M // w) * w, -w))
    return limit if limit >= 13 and rows <= 32 else 0


def panel_gemm(A, B, out, accumulate, width, ws):
    """``step_gemm``'s ``f(t)`` with B cut into panels of ``width`` columns.

    OpenBLAS packs both operands into buffers before it multiplies; a (32, 512) x
    (512, 2048) product of a training step repacks all of Wh (4 MiB) every step to
    use each number 32 times, and runs at 60-85 GFLOP/s on a core that does ~105.
    Cut once per loop into contiguous (K, w) panels, each small enough for
    OpenBLAS's small-matrix kernel (no packing), the same product is one
    ``matmul`` over the stack of panels, then put back in place:

        Bp[p] = B[:, p·w : (p+1)·w]          (P, K, w), zero past B's last column
        Cp = A[t] @ Bp                        (P, N, w), P small GEMMs in one call
        out[t][:, p·w : (p+1)·w] (+)= Cp[p]

    Each number of out[t] is one dot product of K terms either way; only the order of
    the additions inside it may differ from one matmul (a few ulps).
    """
    T, N, K = A.shape
    M = B.shape[1]
    dtype = B.dtype
    P = -(-M // width)
    Bp = ws.empty(np, f"panels{(P, K, width)}", (P, K, width), dtype)
    Cp = ws.empty(np, f"panel_products{(P, N, width)}", (P, N, width), dtype)
    kernels = fused_cpu.panel_kernels(dtype)
    pack, put_back = kernels if kernels is not None else (_pack_panels, _from_panels)
    pack(B, Bp)
    per_step = out.ndim == 3

    def f(t):
        np.matmul(A[t], Bp, out=Cp)
        put_back(Cp, out[t] if per_step else out, accumulate)
    f.path = "panels"
    return f


def _pack_panels(B, Bp):
    """NumPy's :func:`.fused_cpu.pack_panels`."""
    P, K, w = Bp.shape
    M = B.shape[1]
    Bp[...] = 0
    for p in range(P):
        Bp[p, :, :min(w, M - p * w)] = B[:, p * w:(p + 1) * w]


def _from_panels(Cp, C, accumulate):
    """NumPy's :func:`.fused_cpu.from_panels`."""
    P, N, w = Cp.shape
    flat = Cp.transpose(1, 0, 2).reshape(N, P * w)[:, :C.shape[1]]
    if accumulate:
        C += flat
    else:
        C[...] = flat


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
