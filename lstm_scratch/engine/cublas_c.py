"""cuBLAS's own C functions, called through ctypes, for products a CUDA graph can hold.

CuPy's cuBLAS wrappers (``cupy.cuda.cublas.sgemm`` and the rest) set the handle's
stream before every call, and refuse to while a stream is capturing (cupy #6290):
a time loop that calls them can never be a CUDA graph. The C functions take the
handle as it is, so the caller sets its stream once (outside any capture) and the
calls in between are captured like any kernel launch.

Which library: the one CuPy's own cuBLAS module is linked to, its functions looked
up through that module (dlsym searches what a library was linked with), never a
library found by name, which could be another cuBLAS than the one that made CuPy's
handle (a process can map two: CuPy 14 finds libraries by name, .so.13 first).
Where that module has no file (the tests' fake CuPy), the one libcublas.so* in the
process's map of loaded files (/proc/self/maps), and none if there are several.
None where neither finds one; the callers then use CuPy's wrappers, whose loops run
launch by launch.
"""
import ctypes
import os
import types

STATUS_OK = 0
_GEMM_ARGS = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
              ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
              ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
_found = None


def loaded_library(maps="/proc/self/maps"):
    """The path of the one libcublas.so* mapped into this process, or None (none, or
    several: which one made CuPy's handle is then unknown)."""
    try:
        with open(maps) as f:
            paths = {line.split(None, 5)[-1].strip() for line in f if "libcublas.so" in line}
    except OSError:
        return None
    paths = sorted(p for p in paths if os.path.basename(p).startswith("libcublas.so"))
    return paths[0] if len(paths) == 1 else None


def c_api(cublas_module=None):
    """sgemm, dgemm, set_pointer_mode and set_workspace (None where this cuBLAS has
    none) of the C API of the cuBLAS that ``cublas_module`` (``cupy.cuda.cublas``) was
    linked with, or None.

    ``sgemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)`` as
    cublasSgemm_v2 (pointers as ints); each returns cuBLAS's status (0: success).
    Found once; not finding it is asked again next time (CuPy may load it later).
    """
    global _found
    if _found is None:
        path = getattr(cublas_module, "__file__", None) or loaded_library()
        if path is None:
            return None
        try:
            lib = ctypes.CDLL(path)                 # already loaded: the same library
            sgemm, dgemm = lib.cublasSgemm_v2, lib.cublasDgemm_v2
            set_pointer_mode = lib.cublasSetPointerMode_v2
        except (OSError, AttributeError):
            return None
        for gemm in (sgemm, dgemm):
            gemm.argtypes, gemm.restype = _GEMM_ARGS, ctypes.c_int
        set_pointer_mode.argtypes, set_pointer_mode.restype = [ctypes.c_void_p, ctypes.c_int], ctypes.c_int
        set_workspace = getattr(lib, "cublasSetWorkspace_v2", None)      # cuBLAS >= 11.4
        if set_workspace is not None:
            set_workspace.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            set_workspace.restype = ctypes.c_int
        _found = types.SimpleNamespace(sgemm=sgemm, dgemm=dgemm, set_pointer_mode=set_pointer_mode,
                                       set_workspace=set_workspace, path=path)
    return _found


def check(status, what):
    if status != STATUS_OK:
        raise RuntimeError(f"cuBLAS {what} failed with status {status}")
