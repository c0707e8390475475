"""The vanilla RNN's and the GRU's cell steps as compiled CPU loops (Numba).

The same idea as :mod:`.fused_cpu` for the LSTM, whose ``tanh32`` (a float32
rational tanh, see there) and ``_jit`` these reuse: one pass per step over
the (N, H) state instead of one NumPy call per equation, compiled on first
use, GIL released. Used for float32 on NumPy when Numba is installed and not
switched off (``LSTM_SCRATCH_NUMBA=0``); otherwise the plain array code of
:mod:`.rnn` and :mod:`.gru` runs. The equations are those of
:mod:`lstm_scratch.nn.rnn` and :mod:`lstm_scratch.nn.gru` (read them there);
tests check these loops against the plain code.

The backward loops use only cached outputs, no tanh, so run on float64 they
must agree with the plain code to rounding; the tests do that too.
"""
import threading

import numpy as np

from ..nn.gru import GRU_GATE_ORDER
from . import fused_cpu

R, Z, NN = (GRU_GATE_ORDER.index(name) for name in "rzn")   # block positions in a (N, 3H) row
HALF, ONE = np.float32(0.5), np.float32(1.0)


def rnn_cell_forward(a, h):
    """h ← tanh(h + a): h holds h_{t-1} Wh on entry, h_t on return.

    a : (N, H) x_t Wx + b;  h : (N, H)
    """
    N, H = h.shape
    for n in range(N):
        for j in range(H):
            h[n, j] = fused_cpu.tanh32(h[n, j] + a[n, j])   # h_t = tanh(x_t Wx + b + h_{t-1} Wh)


def rnn_cell_backward(h, dh_up, dh_next, da):
    """da ← (dh_up + dh_next) ⊙ (1 - h²), all (N, H)."""
    N, H = h.shape
    for n in range(N):
        for j in range(H):
            ht = h[n, j]
            da[n, j] = (dh_up[n, j] + dh_next[n, j]) * (ONE - ht * ht)   # tanh' = 1 - h_t²


def gru_cell_forward(a, ah, h_prev, ah_n, h):
    """One GRU step after the two GEMMs.

    a : (N, 3H) ax_t = x_t Wx + bx on entry; the gates r_t | z_t | n_t on return
    ah : (N, 3H) ah_t = h_{t-1} Wh + bh (read only)
    h_prev : (N, H) h_{t-1};  ah_n, h : (N, H) written: the n block of ah_t, and h_t

    Row by row, in short passes over contiguous memory, which the compiler turns
    into SIMD code: 4.5x faster than the plain NumPy step at N=32, H=256, where
    one loop doing it all was 1.4x slower than NumPy.
    """
    N, H3 = a.shape
    H = H3 // 3
    for n in range(N):
        a_n, ah_row, h_prev_n, ah_n_n, h_n = a[n], ah[n], h_prev[n], ah_n[n], h[n]
        for j in range(H):                                  # σ(u) = 0.5 tanh(0.5 u) + 0.5
            a_n[R * H + j] = HALF * (a_n[R * H + j] + ah_row[R * H + j])
            a_n[Z * H + j] = HALF * (a_n[Z * H + j] + ah_row[Z * H + j])
        for j in range(H):
            a_n[R * H + j] = HALF * fused_cpu.tanh32(a_n[R * H + j]) + HALF    # r_t
        for j in range(H):
            a_n[Z * H + j] = HALF * fused_cpu.tanh32(a_n[Z * H + j]) + HALF    # z_t
        for j in range(H):
            ah_n_n[j] = ah_row[NN * H + j]
            a_n[NN * H + j] += a_n[R * H + j] * ah_n_n[j]
        for j in range(H):                                  # n_t = tanh(ax_n + r_t ⊙ ah_n)
            a_n[NN * H + j] = fused_cpu.tanh32(a_n[NN * H + j])
        for j in range(H):                                  # h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
            h_n[j] = (ONE - a_n[Z * H + j]) * a_n[NN * H + j] + a_n[Z * H + j] * h_prev_n[j]


def gru_cell_backward(gates, h_prev, ah_n, dh_up, dh_next, dax, dah):
    """One GRU step back, up to the two GEMMs.

    gates : (N, 3H) r|z|n;  h_prev, ah_n, dh_up : (N, H)
    dh_next : (N, H) ∂L/∂h_t via step t+1 on entry; the direct part of
        ∂L/∂h_{t-1}, dh_t ⊙ z_t, on return (the caller adds dah Whᵀ)
    dax, dah : (N, 3H) written: ∂L/∂ax_t and ∂L/∂ah_t
    """
    N, H = h_prev.shape
    for n in range(N):
        for j in range(H):
            r, z, g = gates[n, R * H + j], gates[n, Z * H + j], gates[n, NN * H + j]
            dh = dh_up[n, j] + dh_next[n, j]                # both uses of h_t
            dan = dh * (ONE - z) * (ONE - g * g)            # dn ⊙ tanh'
            dar = dan * ah_n[n, j] * r * (ONE - r)          # dr ⊙ σ'
            daz = dh * (h_prev[n, j] - g) * z * (ONE - z)   # dz ⊙ σ'
            dax[n, R * H + j], dax[n, Z * H + j], dax[n, NN * H + j] = dar, daz, dan
            dah[n, R * H + j], dah[n, Z * H + j], dah[n, NN * H + j] = dar, daz, dan * r
            dh_next[n, j] = dh * z                          # h_t = ... + z_t ⊙ h_{t-1}


_COMPILED = None
_LOCK = threading.Lock()


def _compiled():
    """Compile the four loops, once (after :mod:`.fused_cpu`'s tanh32, which they call)."""
    global _COMPILED, rnn_cell_forward, rnn_cell_backward, gru_cell_forward, gru_cell_backward
    fused_cpu._compiled()
    with _LOCK:                     # worker threads may ask at the same moment
        if _COMPILED is None:
            rnn_cell_forward, rnn_cell_backward = (fused_cpu._jit(rnn_cell_forward),
                                                   fused_cpu._jit(rnn_cell_backward))
            gru_cell_forward, gru_cell_backward = (fused_cpu._jit(gru_cell_forward),
                                                   fused_cpu._jit(gru_cell_backward))
            _COMPILED = dict(rnn=(rnn_cell_forward, rnn_cell_backward),
                             gru=(gru_cell_forward, gru_cell_backward))
    return _COMPILED


def kernels(cell, dtype):
    """The compiled (forward, backward) of ``cell`` ("rnn" or "gru") for float32
    arrays where Numba is enabled (:data:`.fused_cpu.ENABLED`), else None."""
    return _compiled()[cell] if fused_cpu.ENABLED and dtype == np.float32 else None


def step_kernels(cell, xp, dtype, fused):
    """:func:`kernels` for a layer's loop: only where the caller asked (``fused``)
    and the arrays are NumPy's (CuPy arrays take the plain ``xp`` step); else None."""
    return kernels(cell, dtype) if fused and xp is np else None
