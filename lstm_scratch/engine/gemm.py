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
from . import blas, cublas_c, fused_cpu
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
    ws : a workspace for the copies of B made here: the panels (without one, one
        matmul a step), and the row-major copy of a transposed B (without one, a
        fresh array)
    panels : on NumPy, how :func:`panel_gemm` cuts B, (S, w) or w (S = 1); None
        decides (:func:`panel_layout`, for loops of PANEL_MIN_STEPS steps or more),
        0 is one matmul a step
    """
    xp = array_module(B)
    per_step = out.ndim == 3
    T, N, K = A.shape
    M = B.shape[1]
    if xp is np:
        if panels is None:
            layout = panel_layout(N, K, M, B.dtype) if T >= PANEL_MIN_STEPS else None
        else:
            layout = panels
        if layout and ws is not None:
            return panel_gemm(A, B, out, accumulate, layout, ws)
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


# Cutting B into panels reads and writes all of it once (~1.2 ms for a 512 x 2048 Wh,
# bench/results/profile_step.txt); a 32-row step saves 0.16-0.2 ms of it. Shorter
# loops (generation's one step at a time) multiply in one matmul.
PANEL_MIN_STEPS = 8


def panel_layout(rows, K, M, dtype):
    """How :func:`panel_gemm` should cut a per-step (rows, K) x (K, M) product:
    (S, w), K split into S equal blocks and M into panels of w columns; or None for
    one matmul.

    Panels where NumPy's BLAS is an OpenBLAS with small-matrix kernels, held to one
    thread (as in the batch-split workers), for float32 and up to 64 rows. S is the
    fewest blocks (1, 2, 4, 8 or 16, dividing K) that let a panel of 32 columns
    (16 above 32 rows) fit the small kernel, rows·(K/S)·w <= 10⁶; w is, of the
    multiples of 16 that fit, the one that pads M the least, and of those the
    widest (it can be narrower than 32 when that pads less). At 128 rows and more,
    one matmul is as fast: OpenBLAS's repacking of B is spread over enough rows
    (bench/gemm_align.py --panels; figures in bench/README.md).
    ``LSTM_SCRATCH_PANELS=0`` in the environment switches panels off.
    """
    if (np.dtype(dtype) != np.float32 or rows > 64 or os.environ.get("LSTM_SCRATCH_PANELS") == "0"
            or not (blas.small_kernels() and blas.one_thread())):
        return None
    if rows * K * M <= blas.SMALL_KERNEL_MNK:
        return None                                         # the whole product is small already
    narrowest = 32 if rows <= 32 else 16
    for splits in (1, 2, 4, 8, 16):
        if K % splits:
            continue
        limit = blas.SMALL_KERNEL_MNK // (rows * (K // splits))     # widest panel allowed
        if limit >= narrowest:
            return splits, panel_width(limit, M)
    return None


def panel_width(limit, M):
    """Of the multiples of 16 up to ``limit``, the one that pads M columns the least
    (P·w - M, P = ceil(M / w)), and of those the widest. limit >= 16."""
    return min(range(16, limit + 1, 16), key=lambda w: (-(-M // w) * w, -w))


def panel_gemm(A, B, out, accumulate, layout, ws):
    """``step_gemm``'s ``f(t)`` with B cut into panels: ``layout`` = (S, w), K split
    into S equal blocks and the columns into panels of w.

    OpenBLAS packs both operands into buffers before it multiplies; a (32, 512) x
    (512, 2048) product of a training step repacks all of Wh (4 MiB) every step to
    use each number 32 times, and runs at 60-85 GFLOP/s on a core that does ~105.
    Cut once per loop into contiguous (K/S, w) panels, each small enough for
    OpenBLAS's small-matrix kernel (no packing), the same product is one
    ``matmul`` over the stack of panels, then summed over the S blocks of K and put
    back in place. With Kb = K/S:

        Bp[s, p] = B[s·Kb : (s+1)·Kb, p·w : (p+1)·w]     (S, P, Kb, w), zero past B's last column
        Cp[s, p] = A[t][:, s·Kb : (s+1)·Kb] @ Bp[s, p]   (S, P, N, w), S·P small GEMMs, one call
        out[t][:, p·w : (p+1)·w] (+)= Σ_s Cp[s, p]

    Each number of out[t] is a dot product of K terms either way; only the order of
    the additions may differ from one matmul (a few ulps).
    """
    splits, width = (1, layout) if np.isscalar(layout) else layout
    T, N, K = A.shape
    M = B.shape[1]
    per_step = out.ndim == 3
    if B.shape[0] != K or out.shape[-2:] != (N, M) or (per_step and len(out) < T):
        raise ValueError(f"panel_gemm: A {A.shape}, B {B.shape} and out {out.shape} do not "
                         "make out[t] = A[t] @ B")
    if K % splits:
        raise ValueError(f"panel_gemm: K = {K} does not split into {splits} equal blocks")
    dtype = B.dtype
    Kb, P = K // splits, -(-M // width)
    # Named by shape in ws: valid while this loop runs, as long as no other loop with
    # the same shapes runs in between on the same workspace (the layers run one by one).
    Bp = ws.empty(np, f"panels{(splits, P, Kb, width)}", (splits, P, Kb, width), dtype)
    Cp = ws.empty(np, f"panel_products{(splits, P, N, width)}", (splits, P, N, width), dtype)
    kernels = fused_cpu.panel_kernels(dtype)
    pack, put_back = kernels if kernels is not None else (_pack_panels, _from_panels)
    pack(B, Bp)

    def f(t):
        a = A[t].reshape(N, splits, Kb).transpose(1, 0, 2)[:, None]   # (S, 1, N, Kb), a view
        np.matmul(a, Bp, out=Cp)
        put_back(Cp, out[t] if per_step else out, accumulate)
    f.path = "panels"
    f.layout = (splits, width)
    return f


def _pack_panels(B, Bp):
    """NumPy's :func:`.fused_cpu.pack_panels`."""
    S, P, Kb, w = Bp.shape
    M = B.shape[1]
    Bp[...] = 0
    for s in range(S):
        for p in range(P):
            Bp[s, p, :, :min(w, M - p * w)] = B[s * Kb:(s + 1) * Kb, p * w:(p + 1) * w]


def _from_panels(Cp, C, accumulate):
    """NumPy's :func:`.fused_cpu.from_panels`."""
    S, P, N, w = Cp.shape
    total = Cp[0].copy()
    for s in range(1, S):
        total += Cp[s]
    flat = total.transpose(1, 0, 2).reshape(N, P * w)[:, :C.shape[1]]
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
    op_n, host = cublas.CUBLAS_OP_N, cublas.CUBLAS_POINTER_MODE_HOST
    scalars = np.array([1.0, 1.0 if accumulate else 0.0], dtype)       # alpha, beta on the host
    alpha, beta = scalars.ctypes.data, scalars.ctypes.data + isz
    a0, a_step = A.data.ptr, A.strides[0]
    b = B.data.ptr
    c0, c_step = out.data.ptr, (out.strides[0] if per_step else 0)
    arrays = (A, B, out, scalars)                # kept alive as long as f is
    c = cublas_c.c_api(cublas)
    if c is not None:
        # cuBLAS's C functions (cublas_c.py): no stream set per call, so a CUDA graph can
        # hold these calls. The stream is set once here: the current one, as CuPy's would.
        cublas.setStream(handle, xp.cuda.get_current_stream().ptr)
        gemm = c.sgemm if dtype == np.float32 else c.dgemm

        def f(t):
            if not 0 <= t < T:                       # no pointer past the arrays' ends
                raise IndexError(f"step {t} of a loop of {T}")
            cublas_c.check(c.set_pointer_mode(handle, host), "cublasSetPointerMode")
            cublas_c.check(gemm(handle, op_n, op_n, M, N, K, alpha, b, M, a0 + t * a_step, K,
                                beta, c0 + t * c_step, M), "gemm")
    else:                                        # CuPy's wrappers: each sets the stream
        gemm = cublas.sgemm if dtype == np.float32 else cublas.dgemm

        def f(t):
            if not 0 <= t < T:
                raise IndexError(f"step {t} of a loop of {T}")
            cublas.setPointerMode(handle, host)
            gemm(handle, op_n, op_n, M, N, K, alpha, b, M, a0 + t * a_step, K, beta,
                 c0 + t * c_step, M)
    f.arrays, f.path, f.capturable = arrays, "cublas", c is not None
    return f
