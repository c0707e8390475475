"""A stand-in for CuPy, for tests only: host memory behind a device array's type.

    python -m pytest -p fakecupy tests/test_cupy.py     # the CuPy tests, no GPU (tests/ on the path)

With it, ``Backend("cupy", fake)`` runs every branch the real CuPy would take
(``isinstance(a, np.ndarray)`` is False, ``array_module(a)`` finds the module
named ``cupy`` in sys.modules), on a machine without a GPU:

- ``ndarray`` wraps a NumPy array, is *not* a NumPy subclass, and, like CuPy's,
  refuses implicit conversion (``np.asarray(a)`` raises TypeError: use
  ``cupy.asnumpy``) and host arrays in its arithmetic;
- module functions are NumPy's, taking and returning wrapped arrays; ``asarray``
  and ``array`` copy host data, as a transfer to the device would;
- ``random.default_rng`` draws a different stream from NumPy's (as CuPy's does);
- ``ElementwiseKernel`` compiles the CUDA body for the host with the C++
  compiler (as tests/test_fused.py does) and runs it over every index i,
  raw arrays indexed in C order like CuPy's CArray; one compile per source;
- ``RawModule`` compiles a whole CUDA source for the host (``__global__`` and
  ``__device__`` erased, blockIdx/threadIdx zero, blockDim/gridDim one, so a
  grid-stride loop runs every index in turn); its kernels take contiguous device
  arrays and NumPy scalars only (the C type of a Python number is a guess);
- ``cuda.Stream`` with ``begin_capture``/``end_capture``: while a stream
  captures, kernel launches are recorded (their pointers, as a CUDA graph holds
  them), any other array operation raises (it would allocate, or copy to the
  host), and ``Graph.launch`` replays them, refusing if an array they point
  into has been freed since (cupy #9655's trap);
- cuBLAS's C API (cublasSgemm_v2, cublasDgemm_v2, cublasSetPointerMode_v2) in a host
  library named libcublas.so.12, loaded into the process, whose calls run or are
  recorded like kernels; CuPy's Python wrappers (``cuda.cublas.sgemm``) refuse capture,
  as CuPy's do (they set the stream first);
- ``cuda.Device().synchronize``, ``cuda.runtime.getDeviceCount`` and
  ``getDeviceProperties``, ``cuda.cublas``'s sgemm and dgemm on host
  pointers (``ndarray.data.ptr``), ufuncs' ``at`` (``cupy.add.at``), and ``cupyx.scatter_add``
  (what CuPy before 13 had instead).

What it cannot catch: device-speed issues, CUDA-only compile errors (the
host compiler accepts the body as C++), and host-side NumPy calls that take
a wrapped array's ``.a`` directly (nothing in lstm_scratch does).
"""
import ctypes
import functools
import hashlib
import shutil
import subprocess
import tempfile
import types
import weakref

import numpy as np

CXX = shutil.which("c++") or shutil.which("g++")


def _unwrap(x, strict=False):
    """Wrapped arrays -> NumPy, recursively through lists, tuples and dicts."""
    if isinstance(x, ndarray):
        return x.a
    if strict and isinstance(x, np.ndarray):
        raise TypeError(f"fakecupy: a host numpy.ndarray {x.shape} in device arithmetic "
                        "(CuPy raises here too: move it with cupy.asarray)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, strict) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, strict) for k, v in x.items()}
    return x


def _wrap(x, originals=()):
    """NumPy results -> wrapped arrays (a result that *is* an ``out=`` argument comes
    back as the caller's wrapper); NumPy scalars become 0-d arrays, as in CuPy."""
    for orig in originals:
        if isinstance(orig, ndarray) and x is orig.a:
            return orig
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, np.generic):
        return ndarray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v, originals) for v in x)
    if isinstance(x, list):
        return [_wrap(v, originals) for v in x]
    return x


def _outs(kwargs):
    out = kwargs.get("out")
    return out if isinstance(out, tuple) else (out,)


def _call(fn, args, kwargs, strict=False):
    _refuse_while_capturing(getattr(fn, "__name__", "an array operation"))
    result = fn(*_unwrap(args, strict), **_unwrap(kwargs, strict))
    return _wrap(result, _outs(kwargs))


class ndarray:
    """A "device" array: NumPy memory in ``.a``, CuPy's rules at the boundary."""
    __array_priority__ = 100                 # np_array + fake -> our __radd__ (which refuses)

    def __init__(self, a):
        self.a = a

    # -- crossing to the host only on purpose
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream=None, order="C", out=None, blocking=True):
        _refuse_while_capturing("get (a copy to the host)")
        return self.a.copy()

    @property
    def __cuda_array_interface__(self):     # what interop code sniffs a CuPy array by
        return self.a.__array_interface__

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _call(getattr(ufunc, method), inputs, kwargs, strict=True)

    def __array_function__(self, func, types_, args, kwargs):
        return _call(func, args, kwargs)

    # -- the ndarray API: attributes and methods of the NumPy array, wrapped
    def __getattr__(self, name):
        # "a" before it is set (copy, pickle); dunders such as __array_interface__,
        # which NumPy would use to read the memory without asking
        if name == "a" or name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self.a, name)
        if callable(value):
            return lambda *args, **kwargs: _call(value, args, kwargs)
        return _wrap(value)

    @property
    def data(self):                          # cupy.cuda.MemoryPointer: .ptr, the first element's address
        return types.SimpleNamespace(ptr=self.a.ctypes.data)

    def __repr__(self):
        return f"fakecupy.ndarray({self.a!r})"

    def __len__(self):
        return len(self.a)

    def __iter__(self):
        return (_wrap(v) for v in self.a)

    def __getitem__(self, key):
        return _wrap(self.a[_unwrap(key)])

    def __setitem__(self, key, value):
        _refuse_while_capturing("a copy into an array")
        self.a[_unwrap(key)] = _unwrap(value)

    def __float__(self):
        return float(self.a)

    def __int__(self):
        return int(self.a)

    def __index__(self):
        return self.a.__index__()

    def __bool__(self):
        return bool(self.a)


def _operator(name):
    def op(self, *args):
        _refuse_while_capturing(name)
        result = getattr(self.a, name)(*_unwrap(args, strict=True))
        if result is NotImplemented:
            return result
        return self if result is self.a else _wrap(result)     # in place: the same wrapper
    op.__name__ = name
    return op


for _name in ("add sub mul truediv floordiv mod pow matmul and or xor lshift rshift".split()):
    for _form in ("__{}__", "__r{}__", "__i{}__"):
        setattr(ndarray, _form.format(_name), _operator(_form.format(_name)))
for _name in ("lt le eq ne gt ge neg pos abs invert".split()):
    setattr(ndarray, f"__{_name}__", _operator(f"__{_name}__"))
ndarray.__module__ = "cupy"          # array_module(a) reads the array type's module: "cupy"
ndarray.__hash__ = None


# -- ElementwiseKernel: the CUDA body compiled for the host -----------------------
C_TYPES = {"int64": "long long", "int32": "int", "float32": "float", "float64": "double",
           "bool": "bool"}


def _params(spec):
    """'raw T a, int64 H' -> [(raw?, type, name), ...]."""
    out = []
    for part in spec.split(","):
        words = part.split()
        raw = words[0] == "raw"
        type_, name = words[-2], words[-1]
        if not raw and type_ == "T":
            raise NotImplementedError("fakecupy runs raw T arrays and scalars only")
        out.append((raw, type_, name))
    return out


class _Compiler:
    """One shared library per kernel source, built once per process."""

    def __init__(self):
        self.folder, self.libs = None, {}

    def load(self, source):
        key = hashlib.sha1(source.encode()).hexdigest()[:16]
        if key not in self.libs:
            if CXX is None:
                raise RuntimeError("fakecupy: no C++ compiler to build ElementwiseKernel bodies")
            self.folder = self.folder or tempfile.mkdtemp(prefix="fakecupy-")
            cpp, so = f"{self.folder}/{key}.cpp", f"{self.folder}/{key}.so"
            with open(cpp, "w") as f:
                f.write(source)
            subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-o", so, cpp], check=True,
                           capture_output=True)
            self.libs[key] = ctypes.CDLL(so)
        return self.libs[key]


_COMPILER = _Compiler()


class ElementwiseKernel:
    """``cupy.ElementwiseKernel`` for raw-array kernels called with ``size=``."""

    def __init__(self, in_params, out_params, operation, name="kernel"):
        self.inputs, self.outputs = _params(in_params), _params(out_params)
        self.operation, self.name = operation, name

    def _source(self, T):
        args = [(f"const {'T' if t == 'T' else C_TYPES[t]}* " if raw else f"{C_TYPES[t]} ") + name
                for raw, t, name in self.inputs]
        args += [(f"{'T' if t == 'T' else C_TYPES[t]}* " if raw else f"{C_TYPES[t]} ") + name
                 for raw, t, name in self.outputs]
        return ("#include <cmath>\n#include <cstddef>\nusing namespace std;\n"
                f"typedef {C_TYPES[T]} T;\n"
                f'extern "C" void {self.name}({", ".join(args)}, ptrdiff_t _size) {{\n'
                f"  for (ptrdiff_t i = 0; i < _size; ++i) {{\n{self.operation}\n  }}\n}}\n")

    def __call__(self, *args, size=None):
        params = self.inputs + self.outputs
        if len(args) != len(params) or size is None:
            raise TypeError(f"{self.name}: expected {len(params)} arguments and size=")
        arrays = [_unwrap(a, strict=True) for a in args]
        T = next(a.dtype.name for a, (raw, t, _) in zip(arrays, params) if raw and t == "T")
        fn = getattr(_COMPILER.load(self._source(T)), self.name)
        # CuPy indexes a raw array by its C-order element number, whatever its strides:
        # a non-contiguous argument runs on a contiguous copy, written back if an output.
        c_args, write_back = [], []
        for k, (a, (raw, t, _)) in enumerate(zip(arrays, params)):
            if not raw:
                c_args.append(getattr(ctypes, {"long long": "c_longlong", "int": "c_int",
                                               "float": "c_float", "double": "c_double",
                                               "bool": "c_bool"}[C_TYPES[t]])(a))
                continue
            if t == "T" and a.dtype.name != T:
                raise TypeError(f"{self.name}: argument {k} is {a.dtype}, T is {T}")
            buf = a if a.flags.c_contiguous else np.ascontiguousarray(a)
            if buf is not a and k >= len(self.inputs):
                write_back.append((a, buf))
            c_args.append(buf.ctypes.data_as(ctypes.c_void_p))
        owners = [weakref.ref(_root(a)) for a, (raw, _, _) in zip(arrays, params) if raw]

        def run():
            fn(*c_args, ctypes.c_ssize_t(size))
            for a, buf in write_back:
                a[...] = buf
        _launch(run, owners, self.name)


# -- RawModule: a whole CUDA source compiled for the host ---------------------------
HOST_PRELUDE = """#include <cmath>
#include <cstddef>
using namespace std;
#define __global__
#define __device__
struct fakecupy_dim3 { unsigned x, y, z; };
static const fakecupy_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static const fakecupy_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
"""
SCALARS = {np.dtype(t): c for t, c in ((np.int32, ctypes.c_int32), (np.int64, ctypes.c_int64),
                                       (np.uint64, ctypes.c_uint64), (np.float32, ctypes.c_float),
                                       (np.float64, ctypes.c_double))}


def _root(a):
    """The array that owns a view's memory."""
    while a.base is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a


class _RawKernel:
    def __init__(self, lib, name):
        self.fn, self.name = getattr(lib, name), name

    def __call__(self, grid, block, args, shared_mem=0):
        c_args, owners = [], []
        for k, a in enumerate(args):
            if isinstance(a, ndarray):
                if not a.a.flags.c_contiguous:
                    raise TypeError(f"{self.name}: argument {k} is not contiguous (a raw "
                                    "kernel reads its pointer as a flat C-order array)")
                c_args.append(ctypes.c_void_p(a.a.ctypes.data))
                owners.append(weakref.ref(_root(a.a)))
            elif isinstance(a, np.generic) and a.dtype in SCALARS:
                c_args.append(SCALARS[a.dtype](a.item()))
            else:
                raise TypeError(f"{self.name}: argument {k} is {type(a).__name__}: pass a "
                                "device array or a NumPy scalar of the parameter's type")
        _launch(lambda: self.fn(*c_args), owners, self.name)


def _launch(run, owners, name):
    """Run a launch now, or record it where the current stream captures."""
    stream = _Stream.current
    if stream is not None and stream.recorded is not None:
        stream.recorded.append((run, owners, name))
    else:
        run()


class RawModule:
    """``cupy.RawModule(code=...)``: the source compiled for the host, once."""

    def __init__(self, code, options=(), **kwargs):
        self.lib = _COMPILER.load(HOST_PRELUDE + code)

    def get_function(self, name):
        return _RawKernel(self.lib, name)


class _Graph:
    def __init__(self, recorded):
        self.recorded = recorded

    def launch(self, stream=None):
        self.launches = getattr(self, "launches", 0) + 1
        for run, owners, name in self.recorded:
            if any(owner() is None for owner in owners):
                raise RuntimeError(f"fakecupy: graph replay of {name} reads an array freed "
                                   "after capture (the graph holds its address, not the array)")
            run()


class _Stream:
    """``cupy.cuda.Stream``: work runs at once, except what a capture records."""
    current = None

    def __init__(self, non_blocking=False, null=False):
        self.recorded, self._outer, self.ptr = None, [], 0

    def __enter__(self):
        self._outer.append(_Stream.current)
        _Stream.current = self
        return self

    def __exit__(self, *exc):
        _Stream.current = self._outer.pop()
        return False

    def begin_capture(self, mode=None):
        if self.recorded is not None:
            raise RuntimeError("fakecupy: this stream is already capturing")
        self.recorded = []

    def end_capture(self):
        if self.recorded is None:
            raise RuntimeError("fakecupy: end_capture without begin_capture")
        graph, self.recorded = _Graph(self.recorded), None
        return graph

    def synchronize(self):
        _refuse_while_capturing("synchronize")


_NULL_STREAM = _Stream(null=True)


def _refuse_while_capturing(what):
    stream = _Stream.current
    if stream is not None and stream.recorded is not None:
        raise RuntimeError(f"fakecupy: {what} during graph capture (only kernel launches "
                           "on preallocated arrays may be captured)")


# -- the modules --------------------------------------------------------------------
def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        out = np.asarray(a.a, dtype=dtype, order=order)
        return a if out is a.a else ndarray(out)
    return ndarray(np.array(a, dtype=dtype, order=order or "K", copy=True))   # host -> device


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return ndarray(np.array(a.a, dtype=dtype, copy=copy, order=order))
    return ndarray(np.array(a, dtype=dtype, order=order, copy=True))


def asnumpy(a):
    _refuse_while_capturing("asnumpy (a copy to the host)")
    return a.a.copy() if isinstance(a, ndarray) else np.asarray(a)


class _Generator:
    """cupy.random.Generator: its own stream (not NumPy's), device arrays out."""

    def __init__(self, seed):
        self._rng = np.random.Generator(np.random.Philox(seed))

    def __getattr__(self, name):
        fn = getattr(self._rng, name)
        return lambda *args, **kwargs: _call(fn, args, kwargs)


class _Device:
    def __init__(self, device=0):
        self.id = device

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _column_major(ptr, rows, cols, ld, dtype):
    """The (rows, cols) column-major matrix with leading dimension ld at address ptr."""
    isz = np.dtype(dtype).itemsize
    size = ld * (cols - 1) + rows
    flat = np.ctypeslib.as_array((ctypes.c_char * (size * isz)).from_address(ptr)).view(dtype)
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (isz, ld * isz))


def _gemm_call(dtype, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    """cuBLAS's <t>gemm on host memory: C = alpha op(A) op(B) + beta C, column-major, with
    the scalars' values (read at the call, as cuBLAS reads host-mode ones); C's old values
    are not read when beta is 0. Runs now, or is recorded by a capturing stream."""
    opA = _column_major(A, *((m, k) if transa == 0 else (k, m)), lda, dtype)
    opB = _column_major(B, *((k, n) if transb == 0 else (n, k)), ldb, dtype)
    opA, opB = (opA if transa == 0 else opA.T), (opB if transb == 0 else opB.T)
    c = _column_major(C, m, n, ldc, dtype)

    def run():
        product = alpha * (opA @ opB)
        c[...] = product if beta == 0 else product + beta * c
    _launch(run, (), np.dtype(dtype).char.replace("f", "s") + "gemm")


def _gemm(dtype):
    """CuPy's wrapper of <t>gemm: sets the handle's stream first, which a capture refuses
    (cupy #6290), then the call, alpha and beta read from host pointers."""
    def gemm(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        _set_stream(handle, 0)
        if _cublas.mode != _cublas.CUBLAS_POINTER_MODE_HOST:
            raise RuntimeError("fakecupy: only host pointer mode is emulated")
        alpha, beta = (_column_major(p, 1, 1, 1, dtype)[0, 0] for p in (alpha, beta))
        _gemm_call(dtype, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
    gemm.__name__ = np.dtype(dtype).char.replace("f", "s") + "gemm"
    return gemm


# cuBLAS's C API for ctypes callers (lstm_scratch/engine/cublas_c.py): a host library
# named libcublas.so.12, loaded into the process (so it shows in /proc/self/maps) when
# the fake is made; its gemms hand their arguments to Python, which runs or records them.
FAKE_CUBLAS_C = r"""
typedef int (*gemm_cb)(int dbl, int ta, int tb, int m, int n, int k, double alpha,
                       const void* A, int lda, const void* B, int ldb, double beta, void* C,
                       int ldc);
static gemm_cb callback = 0;
static int pointer_mode = 0;
extern "C" void fakecublas_set_callback(gemm_cb f) { callback = f; }
extern "C" int cublasSetPointerMode_v2(void* handle, int mode) { pointer_mode = mode; return 0; }
extern "C" int cublasSetWorkspace_v2(void* handle, void* workspace, unsigned long bytes) {
    return workspace && bytes ? 0 : 7;
}
extern "C" int cublasSgemm_v2(void* handle, int ta, int tb, int m, int n, int k,
                              const float* alpha, const float* A, int lda, const float* B,
                              int ldb, const float* beta, float* C, int ldc) {
    if (pointer_mode != 0 || !callback) return 7;    /* only host scalars are emulated */
    return callback(0, ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
}
extern "C" int cublasDgemm_v2(void* handle, int ta, int tb, int m, int n, int k,
                              const double* alpha, const double* A, int lda, const double* B,
                              int ldb, const double* beta, double* C, int ldc) {
    if (pointer_mode != 0 || !callback) return 7;
    return callback(1, ta, tb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
}
"""
_GEMM_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                            ctypes.c_int, ctypes.c_int, ctypes.c_double, ctypes.c_void_p,
                            ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_double,
                            ctypes.c_void_p, ctypes.c_int)


@_GEMM_CB
def _c_gemm(dbl, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    try:
        _gemm_call(np.float64 if dbl else np.float32, ta, tb, m, n, k, alpha, A, lda, B, ldb,
                   beta, C, ldc)
        return 0
    except Exception:                    # a status, as the C function would return one
        return 14                        # CUBLAS_STATUS_INTERNAL_ERROR


@functools.lru_cache(maxsize=None)
def load_c_cublas():
    """The fake C cuBLAS, built and loaded once per process (None without a compiler)."""
    if CXX is None:
        return None
    folder = tempfile.mkdtemp(prefix="fakecublas-")
    cpp, so = f"{folder}/fakecublas.cpp", f"{folder}/libcublas.so.12"
    with open(cpp, "w") as f:
        f.write(FAKE_CUBLAS_C)
    subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-o", so, cpp], check=True, capture_output=True)
    lib = ctypes.CDLL(so)
    lib.fakecublas_set_callback(_c_gemm)
    return lib


_cublas = types.SimpleNamespace(CUBLAS_OP_N=0, CUBLAS_OP_T=1, CUBLAS_POINTER_MODE_HOST=0,
                                CUBLAS_POINTER_MODE_DEVICE=1, mode=0, CUBLAS_DEFAULT_MATH=0,
                                CUBLAS_TF32_TENSOR_OP_MATH=3, math_mode=0,
                                sgemm=_gemm(np.float32), dgemm=_gemm(np.float64))
_cublas.setPointerMode = lambda handle, mode: setattr(_cublas, "mode", mode)


def _set_stream(handle, stream_ptr):
    """cuBLAS's stream, set as CuPy's wrapper does: refused while a stream captures."""
    stream = _Stream.current
    if stream is not None and stream.recorded is not None:
        raise NotImplementedError("cuBLAS is not supported during stream capture (cupy #6290)")


def _get_cublas_handle():
    _set_stream(0, 0)                     # CuPy puts the handle on the current stream
    return 0


_cublas.setStream = _set_stream
_cublas.getPointerMode = lambda handle: _cublas.mode
_cublas.setMathMode = lambda handle, mode: setattr(_cublas, "math_mode", mode)   # the host
_cublas.getMathMode = lambda handle: _cublas.math_mode    # multiplies in float32 either way


def _scatter_add(a, slices, value):
    np.add.at(_unwrap(a, strict=True), _unwrap(slices, strict=True), _unwrap(value, strict=True))


@functools.lru_cache(maxsize=None)
def modules():
    """The fake ``cupy`` and ``cupyx`` modules (one pair per process, so that
    caches keyed by the module, like backend.elementwise_kernel's, stay valid)."""
    load_c_cublas()                       # cuBLAS's C API, for ctypes callers
    cupy = types.ModuleType("cupy", "fakecupy: NumPy in CuPy's clothes, for tests")
    cupy.__version__ = "0.0-fake"
    cupy.ndarray, cupy.ElementwiseKernel, cupy.RawModule = ndarray, ElementwiseKernel, RawModule
    cupy.asarray, cupy.array, cupy.asnumpy = asarray, array, asnumpy
    cupy.random = types.SimpleNamespace(default_rng=_Generator)
    runtime = types.SimpleNamespace(getDeviceCount=lambda: 1,
                                    getDeviceProperties=lambda k: {"name": b"fakecupy (host)"})
    cupy.cuda = types.SimpleNamespace(Device=_Device, Stream=_Stream, runtime=runtime, cublas=_cublas,
                                      get_current_stream=lambda: _Stream.current or _NULL_STREAM,
                                      device=types.SimpleNamespace(get_cublas_handle=_get_cublas_handle))
    cupy.get_array_module = lambda *arrays: cupy

    def __getattr__(name):                # everything else: NumPy's, on wrapped arrays
        value = getattr(np, name)
        if isinstance(value, type) or not callable(value):
            return value                  # dtypes (cupy.float32), constants
        def call(*args, **kwargs):
            return _call(value, args, kwargs, strict=isinstance(value, np.ufunc))
        if isinstance(value, np.ufunc):   # ufunc.at, in place on the wrapped array (cupy.add.at)
            call.at = lambda a, indices, b=None: value.at(
                *[_unwrap(x, strict=True) for x in (a, indices) + ((b,) if b is not None else ())])
        return call
    cupy.__getattr__ = __getattr__
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = _scatter_add
    return cupy, cupyx


def install(modules_dict):
    """Put the fake ``cupy`` and ``cupyx`` into ``modules_dict`` (sys.modules)."""
    cupy, cupyx = modules()
    modules_dict["cupy"], modules_dict["cupyx"] = cupy, cupyx
    return cupy


def pytest_configure(config):
    """As a plugin (``-p fakecupy``): install before any test module is imported,
    so module-level ``cupy_available()`` checks see the fake."""
    import sys
    install(sys.modules)
