"""The one place that chooses NumPy or CuPy.

Array code never imports CuPy and never asks which backend it runs on: it
takes a :class:`Backend` (or reads ``xp`` from one) and calls the same few
functions on either. This module is the only file that imports ``cupy``.

Randomness stays on the host: every random draw starts from a NumPy
``Generator`` (seeded from the config, saved in checkpoints). On CuPy the
host generator only seeds the device draw, so resuming is exact on both.

    >>> be = get_backend("numpy")
    >>> be.xp.zeros(3, dtype="float32").dtype
    dtype('float32')
"""
from __future__ import annotations

import contextlib
import functools
import sys

import numpy as np

from .errors import UserError

BACKEND_NAMES = ("numpy", "cupy", "auto")

# scatter_add_rows uses a one-hot GEMM up to this many destination rows: its
# cost grows with V, a sort + reduceat's does not (crossover measured near 700
# rows for a (3200, 2048) float32 src: bench/README.md).
ONEHOT_MATMUL_MAX_ROWS = 512


class BackendUnavailable(UserError):
    """Raised when ``"cupy"`` is requested but cannot run here."""


class Backend:
    """An array module ``xp`` plus the helpers the layers need.

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"cupy"``.
    xp : module
        ``numpy`` or ``cupy``; array code calls ``xp.tanh`` and friends.
    """

    def __init__(self, name, xp):
        self.name = name
        self.xp = xp

    def __repr__(self):
        return f"Backend({self.name!r})"

    # -- crossing host <-> device: only at the edges (batches in, scalars out)
    def asarray(self, a, dtype=None):
        """Host or device array -> array on this backend (copies only if needed)."""
        return self.xp.asarray(a, dtype=dtype)

    def to_host(self, a):
        """Array on this backend -> ``numpy.ndarray``."""
        return to_host(a)


def to_host(a):
    """NumPy or CuPy array -> ``numpy.ndarray`` (no copy for NumPy)."""
    return a if isinstance(a, np.ndarray) else array_module(a).asnumpy(a)


def array_module(a):
    """``numpy`` or ``cupy``, whichever owns array ``a``.

    Layers call this instead of importing CuPy: a CuPy array can only exist
    once CuPy has been imported, so ``sys.modules`` already holds it.
    """
    if isinstance(a, np.ndarray):
        return np
    return sys.modules[type(a).__module__.split(".")[0]]


# Where big arrays start, in bytes: a cache line, and one AVX-512 vector. NumPy's
# allocations start 16 bytes past one. OpenBLAS multiplies by a 64-byte-aligned B
# much faster when the product is thin: (32, 512) x (512, 2048) took 960-1,110 us
# with B 8-56 bytes past a boundary, 840 us on one (bench/gemm_align.py).
ALIGN = 64


def empty_aligned(xp, shape, dtype, order="C"):
    """``xp.empty(shape, dtype, order=order)`` starting on an ``ALIGN``-byte boundary
    (CuPy's allocations already start on 256-byte ones)."""
    if xp is not np:
        return xp.empty(shape, dtype, order=order)
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape, order=order)


def take_rows(W, ids, out=None):
    """``W[ids]``, written into ``out`` (shape ids.shape + W.shape[1:]) when given.

    ids must be valid row numbers: on NumPy the gather then runs unbuffered.
    """
    xp = array_module(W)
    if out is None:
        return W[ids]
    if xp is np:
        return np.take(W, ids, axis=0, out=out, mode="clip")   # "raise" would copy via a buffer
    out[...] = W[ids]
    return out


def scatter_add_rows(dst, rows, src):
    """``dst[rows[k]] += src[k]`` for every k, repeated rows summed.

    dst : (V, M) array, updated in place
    rows : (K,) int array
    src : (K, M) array, same dtype as dst
    """
    xp = array_module(dst)
    if dst.shape[0] <= ONEHOT_MATMUL_MAX_ROWS:
        # Few rows (a character vocabulary): one GEMM with a (K, V) 0/1 matrix
        # is ~10x faster than any scatter, on either backend.
        onehot = (rows[:, None] == xp.arange(dst.shape[0])).astype(dst.dtype)
        dst += onehot.T @ src
    elif xp is np:
        _scatter_add_rows_numpy(dst, rows, src)
    elif hasattr(xp.add, "at"):                       # CuPy >= 13
        xp.add.at(dst, rows, src)
    else:                                             # older CuPy (deprecated in 14)
        sys.modules["cupyx"].scatter_add(dst, rows, src)


def dropout_mask(rng, shape, keep, dtype, xp=np):
    """Inverted-dropout mask on ``xp``: ``1/keep`` with probability ``keep``, else 0.

    rng : numpy.random.Generator on the host (its state is checkpointed)
    Returns an array of ``shape`` and ``dtype``.
    """
    dtype = np.dtype(dtype)
    u = _uniforms(rng, shape, dtype, xp)
    return xp.multiply(u < keep, dtype.type(1.0 / keep), out=u)   # u's memory becomes the mask


def bernoulli_mask(rng, shape, p, dtype, xp=np):
    """A 0/1 mask on ``xp``: 1 with probability ``p``, else 0 (zoneout's d).

    rng : numpy.random.Generator on the host, drawn from as :func:`dropout_mask` does
    Returns an array of ``shape`` and ``dtype``.
    """
    dtype = np.dtype(dtype)
    u = _uniforms(rng, shape, dtype, xp)
    return xp.multiply(u < p, dtype.type(1.0), out=u)             # u's memory becomes the mask


def _uniforms(rng, shape, dtype, xp):
    """U(0, 1) of ``shape`` and ``dtype`` on ``xp``, from the host Generator ``rng``."""
    if xp is np:
        return rng.random(shape, dtype=dtype)
    # One host draw seeds the device stream: masks stay reproducible.
    seed = int(rng.integers(0, 2**63 - 1))
    return xp.random.default_rng(seed).random(shape, dtype=dtype)


@functools.lru_cache(maxsize=None)
def elementwise_kernel(xp, in_params, out_params, operation, name):
    """A compiled ``cupy.ElementwiseKernel`` (built once per signature), or None
    on NumPy, where the caller runs its plain array code instead."""
    if xp is np:
        return None
    return xp.ElementwiseKernel(in_params, out_params, operation, name)


def _scatter_add_rows_numpy(dst, rows, src):
    # np.add.at is ~10x slower than sorting the rows once and summing each
    # run of equal rows with np.add.reduceat.
    if rows.size == 0:
        return
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    dst[sorted_rows[starts]] += np.add.reduceat(src[order], starts, axis=0)


def _probe_cupy():
    """Return the cupy module if a CUDA device really works here, else raise.

    ``import cupy`` succeeds on machines without a GPU; only the first CUDA
    call fails. So we ask for a device and run one tiny kernel.
    """
    try:
        import cupy
        import cupyx
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend 'cupy' needs CuPy, which is not installed ({exc}); "
            "install it with: pip install 'lstm-scratch[gpu]'") from None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device found")
        float((cupy.arange(4, dtype=cupy.float32) * 2).sum())
    except Exception as exc:  # CUDARuntimeError, CompileException, ...
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackendUnavailable(
            f"backend 'cupy' needs a working CUDA GPU: {first_line}") from None
    return cupy, cupyx


def cupy_available():
    """``(True, "")`` if the CuPy backend can run here, else ``(False, reason)``."""
    try:
        _probe_cupy()
    except BackendUnavailable as exc:
        return False, str(exc)
    return True, ""


def get_backend(name="auto"):
    """Return the :class:`Backend` for ``"numpy"``, ``"cupy"`` or ``"auto"``.

    ``"auto"`` picks CuPy when a usable GPU is present, else NumPy.
    A :class:`Backend` passed in is returned as it is.
    """
    if isinstance(name, Backend):
        return name
    if name not in BACKEND_NAMES:
        raise UserError(f"unknown backend {name!r}: expected one of {', '.join(BACKEND_NAMES)}")
    if name == "numpy":
        return Backend("numpy", np)
    try:
        cupy, _ = _probe_cupy()
    except BackendUnavailable:
        if name == "auto":
            return Backend("numpy", np)
        raise
    return Backend("cupy", cupy)


def set_tf32(backend, on):
    """Float32 products of ``backend`` in TF32 (``on``) or in full float32, where it is
    CuPy: the math mode of CuPy's cuBLAS handle for this thread and device (CuPy keeps
    one per thread), which its matmul and our direct calls (engine/gemm.py) both use.
    Returns the mode it replaced (None on NumPy, where nothing happens)."""
    if backend.name != "cupy":
        return None
    cublas = backend.xp.cuda.cublas
    handle = backend.xp.cuda.device.get_cublas_handle()
    before = cublas.getMathMode(handle)
    cublas.setMathMode(handle, cublas.CUBLAS_TF32_TENSOR_OP_MATH if on else
                       cublas.CUBLAS_DEFAULT_MATH)
    return before


@contextlib.contextmanager
def tf32_products(backend, on):
    """:func:`set_tf32` for the block, the math mode before it restored after."""
    before = set_tf32(backend, on)
    try:
        yield
    finally:
        if before is not None:
            backend.xp.cuda.cublas.setMathMode(backend.xp.cuda.device.get_cublas_handle(), before)


def gpu_count():
    """CUDA devices CuPy sees here (0 without CuPy or a GPU)."""
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:       # ImportError, CUDARuntimeError
        return 0


def use_gpu(index):
    """Make GPU ``index`` (modulo the GPUs present) CuPy's current device: one GPU per
    process of a machine. Without CuPy or a GPU, nothing happens."""
    count = gpu_count()
    if count > 0:
        import cupy
        cupy.cuda.Device(index % count).use()


def nccl_all_reducer(size, rank, bcast):
    """A function summing a CuPy array in place over ``size`` processes, with NCCL.

    bcast : rank 0's object to every process (MPI's ``comm.bcast``), to share
        NCCL's unique id; the sum then runs on the devices, on the current stream.
    """
    import cupy
    from cupy.cuda import nccl
    uid = bcast(nccl.get_unique_id() if rank == 0 else None, root=0)
    comm = nccl.NcclCommunicator(size, uid, rank)
    types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64}

    def all_reduce(buf):
        comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, types[np.dtype(buf.dtype)],
                       nccl.NCCL_SUM, cupy.cuda.get_current_stream().ptr)
    return all_reduce
