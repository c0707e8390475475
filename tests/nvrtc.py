"""NVRTC, CUDA's runtime compiler, called through ctypes: compiles CUDA sources to PTX
on a machine with no GPU (NVRTC needs no driver), so the tests catch what only
the CUDA compiler rejects. fakecupy compiles the same sources for the host, which
accepts them as C++; this compiles them as CUDA device code.

The library comes from the ``nvidia-cuda-nvrtc-cu12`` wheel (.ci/run installs it)
or the CUDA toolkit. :func:`compile_ptx` returns the PTX, or raises with NVRTC's log.
"""
import ctypes
import glob
import importlib.util
import os


def find_library():
    """The path of libnvrtc, or None."""
    spec = importlib.util.find_spec("nvidia")
    roots = list(spec.submodule_search_locations) if spec and spec.submodule_search_locations else []
    candidates = [p for root in roots for p in glob.glob(os.path.join(root, "cuda_nvrtc", "lib",
                                                                      "libnvrtc.so*"))]
    candidates += glob.glob("/usr/local/cuda*/lib64/libnvrtc.so*")
    candidates = [p for p in candidates if "builtins" not in p and ".alt." not in p]
    return sorted(candidates)[0] if candidates else None


def available():
    """(True, "") where NVRTC loads here, else (False, why)."""
    path = find_library()
    if path is None:
        return False, "no libnvrtc (pip install nvidia-cuda-nvrtc-cu12)"
    try:
        ctypes.CDLL(path)
    except OSError as exc:
        return False, f"libnvrtc did not load: {exc}"
    return True, ""


def compile_ptx(source, name="kernel.cu", arch="compute_90", options=()):
    """PTX (str) for ``source``; RuntimeError with the compiler's log if it fails."""
    lib = ctypes.CDLL(find_library())
    prog = ctypes.c_void_p()
    check = _checker(lib)
    check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None),
          "create")
    try:
        opts = [f"-arch={arch}".encode()] + [o.encode() for o in options]
        array = (ctypes.c_char_p * len(opts))(*opts)
        result = lib.nvrtcCompileProgram(prog, len(opts), array)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        if result != 0:
            raise RuntimeError(f"NVRTC failed on {name}:\n{log.value.decode(errors='replace')}")
        check(lib.nvrtcGetPTXSize(prog, ctypes.byref(size)), "PTX size")
        ptx = ctypes.create_string_buffer(size.value)
        check(lib.nvrtcGetPTX(prog, ptx), "PTX")
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _checker(lib):
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def check(result, what):
        if result != 0:
            raise RuntimeError(f"NVRTC {what}: {lib.nvrtcGetErrorString(result).decode()}")
    return check


C_TYPES = {"int64": "long long", "int32": "int", "float32": "float", "float64": "double",
           "bool": "bool", "uint64": "unsigned long long"}


def elementwise_source(in_params, out_params, operation, name, T):
    """A CUDA kernel around a ``cupy.ElementwiseKernel`` body of raw arrays and scalars
    (as the library writes them), T the array type: one thread per index i, as CuPy's."""
    def params(spec, const):
        out = []
        for part in spec.split(","):
            words = part.split()
            raw, type_, pname = words[0] == "raw", words[-2], words[-1]
            ctype = "T" if type_ == "T" else C_TYPES[type_]
            out.append(f"{'const ' if const and raw else ''}{ctype}{'*' if raw else ''} {pname}")
        return out
    args = params(in_params, True) + params(out_params, False)
    return (f"typedef {C_TYPES[T]} T;\n"
            f'extern "C" __global__ void {name}({", ".join(args)}, long long _size) {{\n'
            "  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
            f"  if (i < _size) {{\n{operation}\n  }}\n}}\n")
