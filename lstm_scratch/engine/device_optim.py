"""The optimizer's update on CuPy as one launch for every parameter (device_optim.cu).

Updated one parameter at a time in ``xp`` calls, RMSprop costs about nine
launches per parameter and Adam a dozen: ~100 launches a step for a 2-layer model,
each 10-20 us of host time, while the device needs a few microseconds for all of
it. Here the update is one kernel over all parameters at once, reached through
tables of their addresses (rebuilt only when an address changes: the parameters
and their state never move; the gradients are fresh each step, so their table is
one small copy to the device per step). optim.py calls :func:`update` where every
array is C-contiguous and of one dtype; elsewhere its per-parameter path runs.
"""
import functools
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("device_optim.cu")
KERNELS = ("rmsprop_update", "adam_update")
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
THREADS = 256


def source(dtype):
    """The CUDA source compiled for ``dtype``."""
    return f"#define T {C_TYPES[np.dtype(dtype)]}\n" + SOURCE.read_text()


@functools.lru_cache(maxsize=None)
def kernels(xp, dtype):
    module = xp.RawModule(code=source(dtype))
    return {name: module.get_function(name) for name in KERNELS}


def applies(xp, arrays):
    """True where one launch can update these arrays: CuPy, float32 or float64 alike,
    every array C-contiguous."""
    dtypes = {a.dtype for a in arrays}
    return (xp is not np and hasattr(xp, "RawModule") and len(dtypes) == 1
            and next(iter(dtypes)) in C_TYPES and all(a.flags.c_contiguous for a in arrays))


class AddressTables:
    """Device tables (K,) uint64 of the addresses of K arrays, by name, and of where
    each array starts in their flat numbering, rebuilt only when an address moves."""

    def __init__(self, xp):
        self.xp, self._made = xp, {}

    def __call__(self, name, arrays):
        key = tuple(a.data.ptr for a in arrays)
        made = self._made.get(name)
        if made is None or made[0] != key:
            made = self._made[name] = (key, self.xp.asarray(np.array(key, np.uint64)))
        return made[1]

    def starts(self, arrays):
        """(K + 1,) int64: element k starts at start[k]; start[K] is the total."""
        sizes = tuple(a.size for a in arrays)
        made = self._made.get("starts")
        if made is None or made[0] != sizes:
            start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
            made = self._made["starts"] = (sizes, self.xp.asarray(start))
        return made[1]


def update(xp, tables, name, params, slots, grads, scalars):
    """One launch of kernel ``name`` over all params: tables of params, then of each
    slot's arrays (in the kernel's order), then of grads; the scalars after."""
    dtype = params[0].dtype.type
    start = tables.starts(params)
    total = sum(p.size for p in params)
    args = [tables("p", params)] + [tables(f"slot{k}", s) for k, s in enumerate(slots)]
    args += [tables("g", grads), start, np.int32(len(params))] + [dtype(x) for x in scalars]
    blocks = max(1, min((total + THREADS - 1) // THREADS, 65535))
    kernels(xp, np.dtype(dtype))[name]((blocks,), (THREADS,), tuple(args))
