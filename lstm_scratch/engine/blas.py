"""What the loaded BLAS is and does, asked once through threadpoolctl.

Inspecting the loaded libraries costs ~10 ms, so the controller is made once;
after that, reading OpenBLAS's current thread count is one C call (~1 us).
"""
import functools
import os

import numpy as np

# OpenBLAS cores whose sgemm/dgemm come with "small-matrix" kernels: a product with
# M·N·K <= 10⁶ (and A not transposed) skips the packing of A and B into buffers and
# runs straight from the arrays (kernel/x86_64/sgemm_small_kernel_permit_skylakex.c;
# the Cooperlake and Sapphire Rapids builds share these kernels). They arrived with
# the 0.3.16/0.3.17 releases: 0.3.17 is the first version assumed to have them. Where
# the assumption is wrong, panels are slower, never wrong.
SMALL_KERNEL_CORES = ("skylakex", "cooperlake", "sapphirerapids")
SMALL_KERNEL_MNK = 100 ** 3
SMALL_KERNEL_SINCE = (0, 3, 17)


@functools.lru_cache(maxsize=1)
def controller():
    """threadpoolctl's view of the BLAS (and OpenMP) libraries loaded in this process."""
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


@functools.lru_cache(maxsize=1)
def _openblas():
    """The OpenBLAS NumPy calls (the one in NumPy's own folder where SciPy or another
    package loaded a second), or None (another BLAS, or none of them NumPy's)."""
    libs = controller().select(internal_api="openblas").lib_controllers
    if len(libs) > 1:
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))      # site-packages
        libs = [lib for lib in libs
                if os.path.basename(os.path.dirname(lib.filepath)).startswith("numpy")
                or os.path.dirname(lib.filepath).startswith(os.path.join(numpy_dir, "numpy"))]
    return libs[0] if len(libs) == 1 else None


def _version(text):
    parts = []
    for piece in str(text or "").split(".")[:3]:
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


@functools.lru_cache(maxsize=1)
def small_kernels():
    """True where NumPy's BLAS is an OpenBLAS with the small-matrix GEMM kernels."""
    lib = _openblas()
    if lib is None:
        return False
    core = str(getattr(lib, "architecture", "") or "").lower()
    return core in SMALL_KERNEL_CORES and _version(lib.version) >= SMALL_KERNEL_SINCE


def one_thread():
    """True while NumPy's OpenBLAS runs on one thread (inside the batch-split
    workers of :mod:`.parallel`, or in an MPI process given one core)."""
    lib = _openblas()
    return lib is not None and lib.num_threads == 1
