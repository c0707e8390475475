"""One kernel per cell step: the gate nonlinearities and the cell update fused.

On the GPU these are CUDA kernels (below); on the CPU, loops compiled by Numba
when it is installed (:mod:`.fused_cpu`). :func:`forward_kernel` and
:func:`backward_kernel` pick the one for the arrays at hand, or None, and
then the plain NumPy/CuPy code of :mod:`.lstm` runs.

On CuPy, the plain cell functions in :mod:`.lstm` would launch a dozen small
kernels per time step, each reading and writing (N, H) or (N, 4H) arrays in
global memory. These two kernels do the same arithmetic, with the same
arguments, in one pass each; thread k handles element (n, j) of the (N, H)
state and reads the four gate columns j, H+j, 2H+j, 3H+j of row n.

The equations are those of :func:`.lstm.lstm_cell_forward` and
:func:`.lstm.lstm_cell_backward` (read them there); tests check the two agree.
The GRU's and the RNN's steps have CUDA kernels too (:func:`gru_kernels`,
:func:`rnn_kernels`: the equations of :func:`.gru.gru_cell_forward` and
:func:`.gru.gru_cell_backward`, and of the RNN's loop in :mod:`.rnn`), so that on
CuPy every cell's step is one kernel, and its time loop can be a CUDA graph
(:mod:`.graphs`): the plain ``xp`` step allocates, which a capture refuses.
"""
import functools
from importlib.util import find_spec

import numpy as np

from ..backend import array_module, elementwise_kernel
from . import fused_cpu
from ..nn.gates import GATE_ORDER
from ..nn.gru import GRU_GATE_ORDER

def _index(gates, suffix=""):
    """The lines that open a kernel over the (N, H) state of a cell with these gate
    blocks: thread i is element (n, j), its row of the (N, G H) gates starts at ``row``,
    and each block's offset is its name (upper case, + ``suffix``) times H."""
    offsets = "".join(f"const ptrdiff_t {name.upper()}{suffix} = {k} * (ptrdiff_t)H;\n"
                      for k, name in enumerate(gates))
    return ("\nconst ptrdiff_t n = i / H, j = i % H;\n"
            f"const ptrdiff_t row = n * {len(gates)} * (ptrdiff_t)H + j;\n" + offsets)


_INDEX = _index(GATE_ORDER)

_FORWARD = _INDEX + """
const T half = 0.5;
// sigma(z) = 0.5 tanh(0.5 z) + 0.5 for i, f, o; tanh for g
T gi = half * tanh(half * a[row + I]) + half;
T gf = half * tanh(half * a[row + F]) + half;
T gg = tanh(a[row + G]);
T go = half * tanh(half * a[row + O]) + half;
a[row + I] = gi; a[row + F] = gf; a[row + G] = gg; a[row + O] = go;
T ct = gf * c_prev[i] + gi * gg;           // c_t = f_t * c_{t-1} + i_t * g_t
T tc = tanh(ct);
c[i] = ct; tanh_c[i] = tc;
h[i] = go * tc;                            // h_t = o_t * tanh(c_t)
"""

_BACKWARD = _INDEX + """
const T one = 1;
T gi = gates[row + I], gf = gates[row + F], gg = gates[row + G], go = gates[row + O];
T tc = tanh_c[i];
T dh = dh_up[i] + dh_next[i];              // both uses of h_t
T dc = dh * go * (one - tc * tc) + dc_next[i];
da[row + I] = dc * gg * gi * (one - gi);
da[row + F] = dc * c_prev[i] * gf * (one - gf);
da[row + G] = dc * gi * (one - gg * gg);
da[row + O] = dh * tc * go * (one - go);
dc_next[i] = dc * gf;                      // now dL/dc_{t-1}
"""


@functools.lru_cache(maxsize=None)
def forward_kernel(xp, dtype):
    """``kernel(a, c_prev, c, tanh_c, h)`` doing :func:`.lstm.lstm_cell_forward`, or None."""
    if xp is np:
        cpu = fused_cpu.kernels(dtype)
        return None if cpu is None else cpu[0]
    return _cuda_forward


@functools.lru_cache(maxsize=None)
def backward_kernel(xp, dtype):
    """``kernel(gates, c_prev, tanh_c, dh_up, dh_next, da, dc_next)`` doing
    :func:`.lstm.lstm_cell_backward`, or None."""
    if xp is np:
        cpu = fused_cpu.kernels(dtype)
        return None if cpu is None else cpu[1]
    return _cuda_backward


def describe(xp, dtype):
    """Which cell runs for these arrays, in words, for the training banner."""
    if forward_kernel(xp, np.dtype(dtype)) is None:
        hint = ("; pip install 'lstm-scratch[fast]' compiles it"
                if xp is np and np.dtype(dtype) == np.float32 and find_spec("numba") is None else "")
        return f"plain {xp.__name__} cell{hint}"
    return "fused CUDA cell" if xp is not np else "fused cell compiled by Numba"


_GRU_INDEX = _index(GRU_GATE_ORDER, "_")       # R_, Z_, N_: n is the row already

_GRU_FORWARD = _GRU_INDEX + """
const T half = 0.5;
T ah_r = ah[row + R_] + bh[j + R_], ah_z = ah[row + Z_] + bh[j + Z_];
T ah_nn = ah[row + N_] + bh[j + N_];        // ah_t = h_{t-1} Wh + bh
ah_n[i] = ah_nn;
T r = half * tanh(half * (a[row + R_] + ah_r)) + half;   // r_t = σ(ax_r + ah_r)
T z = half * tanh(half * (a[row + Z_] + ah_z)) + half;   // z_t = σ(ax_z + ah_z)
T nt = tanh(a[row + N_] + r * ah_nn);                    // n_t = tanh(ax_n + r_t ⊙ ah_n)
a[row + R_] = r; a[row + Z_] = z; a[row + N_] = nt;
h[i] = nt + z * (h_prev[i] - nt);          // h_t = (1 - z_t) n_t + z_t h_{t-1}
"""

_GRU_BACKWARD = _GRU_INDEX + """
const T one = 1;
T r = gates[row + R_], z = gates[row + Z_], nt = gates[row + N_];
T dh = dh_up[i] + dh_next[i];              // both uses of h_t
T dan = dh * (one - z) * (one - nt * nt);
T dar = dan * ah_n[i] * r * (one - r);
T daz = dh * (h_prev[i] - nt) * z * (one - z);
dax[row + R_] = dar; dax[row + Z_] = daz; dax[row + N_] = dan;
dah[row + R_] = dar; dah[row + Z_] = daz; dah[row + N_] = dan * r;
dh_next[i] = dh * z;                       // now the part of dL/dh_{t-1} through z_t
"""

_RNN_FORWARD = "h[i] = tanh(a[i]);                         // h_t = tanh(a_t)\n"
_RNN_BACKWARD = """
const T one = 1;
da[i] = (dh_up[i] + dh_next[i]) * (one - h[i] * h[i]);   // (both uses of h_t) tanh'
"""


@functools.lru_cache(maxsize=None)
def gru_kernels(xp, dtype):
    """On CuPy, (forward, backward) CUDA kernels of the GRU's step, else None:
    ``forward(a, ah, bh, h_prev, ah_n, h)`` with ah = h_{t-1} Wh (bh added here) and
    ``backward(gates, h_prev, ah_n, dh_up, dh_next, dax, dah)``, as engine/gru.py's."""
    if xp is np:
        return None

    def forward(a, ah, bh, h_prev, ah_n, h):
        elementwise_kernel(xp, "raw T ah, raw T bh, raw T h_prev, int64 H",
                           "raw T a, raw T ah_n, raw T h", _GRU_FORWARD, "gru_cell_forward")(
            ah, bh, h_prev, h.shape[1], a, ah_n, h, size=h.size)

    def backward(gates, h_prev, ah_n, dh_up, dh_next, dax, dah):
        elementwise_kernel(xp, "raw T gates, raw T h_prev, raw T ah_n, raw T dh_up, int64 H",
                           "raw T dh_next, raw T dax, raw T dah", _GRU_BACKWARD,
                           "gru_cell_backward")(
            gates, h_prev, ah_n, dh_up, h_prev.shape[1], dh_next, dax, dah, size=dh_next.size)
    return forward, backward


@functools.lru_cache(maxsize=None)
def rnn_kernels(xp, dtype):
    """On CuPy, (forward, backward) CUDA kernels of the RNN's step, else None:
    ``forward(a, h)``: h = tanh(a); ``backward(h, dh_up, dh_next, da)``: da = (dh_up +
    dh_next) ⊙ (1 - h²)."""
    if xp is np:
        return None

    def forward(a, h):
        elementwise_kernel(xp, "raw T a", "raw T h", _RNN_FORWARD, "rnn_cell_forward")(
            a, h, size=h.size)

    def backward(h, dh_up, dh_next, da):
        elementwise_kernel(xp, "raw T h, raw T dh_up, raw T dh_next", "raw T da", _RNN_BACKWARD,
                           "rnn_cell_backward")(h, dh_up, dh_next, da, size=da.size)
    return forward, backward


def _cuda_forward(a, c_prev, c, tanh_c, h):
    kernel = elementwise_kernel(array_module(a), "raw T c_prev, int64 H",
                                "raw T a, raw T c, raw T tanh_c, raw T h", _FORWARD, "lstm_cell_forward")
    kernel(c_prev, a.shape[1] // 4, a, c, tanh_c, h, size=c.size)


def _cuda_backward(gates, c_prev, tanh_c, dh_up, dh_next, da, dc_next):
    kernel = elementwise_kernel(array_module(da), "raw T gates, raw T c_prev, raw T tanh_c, "
                                "raw T dh_up, raw T dh_next, int64 H", "raw T da, raw T dc_next",
                                _BACKWARD, "lstm_cell_backward")
    kernel(gates, c_prev, tanh_c, dh_up, dh_next, da.shape[1] // 4, da, dc_next, size=dc_next.size)
