"""A layer's time loop on CuPy as one CUDA graph: one launch for T steps.

Each step of a recurrent layer on the GPU is two launches, a cuBLAS product
(gemm.py's direct call, its pointers worked out once) and a fused cell kernel,
and each costs the host 13-24 us: at a 2x512 model's batch of 64 the device is
done first and waits (bench/README.md). The loop launches the same kernels on
the same buffers every training step, so it can be recorded once as a CUDA graph
(``Stream.begin_capture``) and replayed as one launch: the host's cost of a layer
no longer grows with T.

What makes a replay equal to the loop it recorded: a graph holds addresses and the
scalars of its launches, nothing else, so it is keyed by the address, shape, strides
and dtype of every array the loop touches, and by its steps. The same key means the
same kernels on the same memory: a replay computes what the loop would. A layer's
buffers come from its workspace, which hands out the same arrays every step, so
from the second step on the key is the same. Where it is not (the arrays move every
step: a fresh workspace, a caller's new array), the loop runs launch by launch, as it
always did: a key is captured the second time it is seen, never the first (and
where MAX_GRAPHS keys in a row were each seen once, that is said once).

Only loops of the fused kernels and of products by cuBLAS's own C functions
(cublas_c.py) are captured: CuPy's matmul and its cuBLAS wrappers refuse capture
(they set the stream on every call, cupy #6290), as does anything that allocates
(cupy #9655: memory allocated during capture may be freed under the graph). Where capture fails, the reason is said once and the loop runs
launch by launch. ``LSTM_SCRATCH_GRAPHS=0`` turns graphs off (to compare, or rule
them out); float64 loops are captured too (the graph changes no arithmetic).
"""
import os
import sys
import threading

import numpy as np

from . import cublas_c

SEEN, EAGER = "seen", "eager"       # a key met once; a key whose capture failed
MAX_GRAPHS = 8                      # per workspace (one layer): the latest keys


def enabled(xp):
    return xp is not np and os.environ.get("LSTM_SCRATCH_GRAPHS", "1") != "0"


def run_loop(ws, name, xp, steps, body, arrays, capturable=True):
    """``body(t)`` for t in ``steps``: as a replay of a CUDA graph of the whole loop
    where one applies (above), else one step after another.

    ws : the layer's Workspace (it keeps the graphs: none in a fresh one)
    name : which loop of the layer, and whatever else changes what its steps launch
        (the step it starts its products at, whether it computes dh0);  xp : numpy or cupy
    arrays : every device array ``body`` reads or writes
    capturable : False where the body makes calls a capture refuses (:func:`direct`)
    """
    steps = list(steps)

    def one_by_one():
        for t in steps:
            body(t)
    graphs = getattr(ws, "graphs", None) if ws.keep else None
    if not (capturable and enabled(xp)) or graphs is None:
        return one_by_one()
    cublas = xp.cuda.cublas                 # TF32 or not: the products a graph would hold
    math_mode = int(cublas.getMathMode(xp.cuda.device.get_cublas_handle()))
    key = (name, steps[0] if steps else 0, len(steps), math_mode,
           tuple((a.data.ptr, a.shape, a.strides, a.dtype.str) for a in arrays))
    entry = graphs.get(key)
    if entry is None:
        remember(graphs, key, SEEN)
        if all(value == SEEN for value in graphs.values()) and len(graphs) == MAX_GRAPHS:
            notice("a time loop runs launch by launch: its arrays move from step to "
                   "step, so no CUDA graph of it would be replayed")
        return one_by_one()
    if entry == SEEN:
        entry = capture(xp, steps, body)            # (graph, what it keeps alive) or None
        remember(graphs, key, EAGER if entry is None else entry)
    if entry is None or entry == EAGER:
        return one_by_one()
    try:
        entry[0].launch()                # on the current stream, after what came before
    except Exception as exc:             # a graph the driver will not run: the loop, as before
        notice(f"a time loop's CUDA graph failed to launch, so it runs launch by launch: "
               f"{first_line(exc)}")
        remember(graphs, key, EAGER)
        one_by_one()


def stable(ws, name, a):
    """``a`` as a C-contiguous array; where graphs run, a copy in the workspace ``ws``
    (the same array every call), so that a loop reading it keeps its key although
    the caller hands in a new array every step (the head's gradient, a dropout's)."""
    xp = sys.modules[type(a).__module__.split(".")[0]]
    if not (enabled(xp) and ws.keep):
        return xp.ascontiguousarray(a)
    buf = ws.empty(xp, name, a.shape, a.dtype)
    buf[...] = a
    return buf


def direct(products, kernel):
    """(capturable, arrays) of a loop whose steps run ``products`` (gemm.step_gemm's
    functions) and a fused ``kernel``: capturable where every product is one call of
    cuBLAS's C function (cublas_c.py; CuPy's wrapper refuses capture) and the kernel
    exists; arrays, the device arrays the products use."""
    ok = kernel is not None and all(getattr(f, "capturable", False) for f in products)
    arrays = tuple(a for f in products for a in getattr(f, "arrays", ())[:3])
    return ok, arrays


def remember(graphs, key, value):
    graphs.pop(key, None)
    graphs[key] = value
    while len(graphs) > MAX_GRAPHS:      # the oldest first
        graphs.pop(next(iter(graphs)))


def capture(xp, steps, body):
    """(graph, what it needs kept alive) for ``body(t)`` for t in steps, or None (the
    reason said once). The capture stream and cuBLAS's workspace for the captured
    products live as long as the graph: a replay may use both."""
    stream = xp.cuda.Stream(non_blocking=True)
    cublas, handle = xp.cuda.cublas, xp.cuda.device.get_cublas_handle()
    graph = None
    try:
        with stream:
            cublas.setStream(handle, stream.ptr)    # the products' calls: on this stream
            workspace = cublas_workspace(xp, handle)
            stream.begin_capture()
            try:
                for t in steps:
                    body(t)
            finally:
                graph = stream.end_capture()
    except Exception as exc:                          # a refusal of capture, or no capture here
        notice(f"a time loop runs launch by launch, not as a CUDA graph: {first_line(exc)}")
        graph = None
    finally:
        cublas.setStream(handle, xp.cuda.get_current_stream().ptr)     # and back (cuBLAS's
    return None if graph is None else (graph, stream, workspace)      # own workspace again)


WORKSPACE_BYTES = 32 << 20      # what cuBLAS asks for on Hopper; cuBLAS takes less elsewhere
_workspaces = {}


def cublas_workspace(xp, handle):
    """Give cuBLAS a workspace of ours for the products about to be captured (its
    own could be tied to the capture stream), through its C API; None where that
    is not found (cuBLAS then uses its own)."""
    c = cublas_c.c_api(xp.cuda.cublas)
    if c is None or c.set_workspace is None:
        return None
    owner = (xp.cuda.Device().id, threading.get_ident())   # CuPy's handles: one per thread
    if owner not in _workspaces:
        _workspaces[owner] = xp.empty(WORKSPACE_BYTES, np.uint8)
    buf = _workspaces[owner]
    cublas_c.check(c.set_workspace(handle, buf.data.ptr, buf.nbytes), "cublasSetWorkspace")
    return buf


_SAID = set()


def notice(message):
    """Print ``message`` on stderr, once per process."""
    if message not in _SAID:
        _SAID.add(message)
        print(f"lstm-scratch: {message}", file=sys.stderr)


def first_line(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
