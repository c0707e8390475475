"""The GRU layer, fast: the same function as :func:`lstm_scratch.nn.gru_forward`.

Equations, gate order and layout are the textbook's (:mod:`lstm_scratch.nn.gru`)::

    ax_t = x_t Wx + bx,  ah_t = h_{t-1} Wh + bh          (N, 3H), blocks r | z | n
    r_t = σ(ax_r + ah_r),  z_t = σ(ax_z + ah_z),  n_t = tanh(ax_n + r_t ⊙ ah_n)
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

What is different here, and why:

- ``ax_t`` does not depend on the recurrence: one GEMM (or one gather, for int
  ids standing for one-hot rows) for all T steps before the loop, its
  gradients in one GEMM after the backward loop; likewise ``dWh`` and ``dbh``
  over all t. Only ``h_{t-1} Wh`` and its gradient are done step by step.
- The gates are built in the projection's own buffer, in place, and the loop
  writes into preallocated buffers (a :class:`.workspace.Workspace`).
- The pointwise part of a step is one compiled loop (:mod:`.cells_cpu`) for
  float32 with Numba, one CUDA kernel on CuPy (:func:`.fused.gru_kernels`, which
  adds bh itself); otherwise plain NumPy calls, which float64 gradient checks use.
  On CuPy the loops then run as CUDA graphs (:mod:`.graphs`), as the LSTM's.
- Products known to be zero are skipped, as in :mod:`.lstm`: h_0 Wh from
  h_0 = 0, its rows of dWh, and dh_0 when the caller does not want it.
- The per-step products by Wh and by Whᵀ are :func:`.gemm.step_gemm`, and
  dWh is :func:`.lstm.recurrent_weight_grad`, as in :mod:`.lstm`.

Tests hold this layer equal to the textbook.
"""
from typing import NamedTuple

from ..backend import array_module
from ..nn.gru import split_gru_gates
from . import cells_cpu
from . import fused as fused_cuda
from .gemm import step_gemm
from .graphs import direct, run_loop, stable
from .layers import affine_backward, affine_forward, onehot_affine_backward, onehot_affine_forward
from .lstm import (is_ids, recurrent_weight_grad, starts_at_zero, zoneout_at, zoneout_mix,
                   zoneout_split)
from .workspace import FRESH


class GRULayerCache(NamedTuple):
    x_cache: object   # cache of the input projection ax = x Wx + bx
    Wh: object        # (H, 3H)
    gates: object     # (T, N, 3H) r_t | z_t | n_t
    ah_n: object      # (T, N, H) h_{t-1} W_hn + b_hn, which r_t multiplies
    hs: object        # (T+1, N, H) h_0, h_1, ..., h_T: hs[t] is h_{t-1} of step t
    zoneout: object = None   # d^h: masks (T, N, H) or the rate, or None (off)

    @property
    def h(self):
        """(T, N, H) the layer's outputs h_1..h_T."""
        return self.hs[1:]


def gru_cell_forward(a, ah, h_prev, ah_n, h):
    """One step after the two GEMMs, in place, with plain array calls
    (:func:`.cells_cpu.gru_cell_forward` is the same as one compiled loop).

    a : (N, 3H) ax_t on entry; r_t | z_t | n_t on return;  ah : (N, 3H) ah_t, used as scratch
    h_prev : (N, H);  ah_n, h : (N, H) written: the n block of ah_t, and h_t
    """
    xp = array_module(a)
    r, z, n = split_gru_gates(a)
    ah_r, ah_z, ah_nn = split_gru_gates(ah)
    ah_n[...] = ah_nn
    for gate, ah_gate in ((r, ah_r), (z, ah_z)):            # σ(u) = 0.5 tanh(0.5 u) + 0.5
        gate += ah_gate
        gate *= 0.5
        xp.tanh(gate, out=gate)
        gate *= 0.5
        gate += 0.5
    xp.multiply(r, ah_nn, out=ah_nn)
    n += ah_nn
    xp.tanh(n, out=n)                                       # n_t = tanh(ax_n + r_t ⊙ ah_n)
    xp.subtract(h_prev, n, out=h)
    h *= z
    h += n                                                  # h_t = n_t + z_t ⊙ (h_{t-1} - n_t)


def gru_forward(x, h0, Wx, Wh, bx, bh, fused=True, ws=FRESH, zoneout=None):
    """Run the layer over T steps from h0.

    x : (T, N, D) float, or (T, N) int ids for one-hot input (Wx is then (V, 3H))
    h0 : (N, H);  Wx : (D, 3H), Wh : (H, 3H), bx, bh : (3H,), one float dtype
    fused : the compiled step where there is one (float32, Numba)
    ws : a :class:`.workspace.Workspace` to build h and the cache in (valid
        until its next use); the default allocates fresh arrays
    zoneout : (d^c, d^h) as for the LSTM (engine/lstm.py); the GRU has no c and mixes
        h only, by d^h: nn/zoneout.py's ``hidden_zoneout_forward``; None: off
    Returns h (T, N, H), the final state h_T (N, H), and the cache.
    """
    xp = array_module(Wh)
    T, N = x.shape[:2]
    H = Wh.shape[0]
    dtype = Wh.dtype
    d_h = None if zoneout is None else zoneout[1]
    mix = ws.tmp.empty(xp, "zoneout", (N, H), dtype) if d_h is not None else None
    assert Wh.shape == (H, 3 * H) and bx.shape == bh.shape == (3 * H,), (Wh.shape, bx.shape)
    assert h0.shape == (N, H), h0.shape
    kernel = cells_cpu.step_kernels("gru", xp, dtype, fused)
    project = onehot_affine_forward if is_ids(x) else affine_forward
    gates = ws.empty(xp, "gates", (T, N, 3 * H), dtype)
    gates, x_cache = project(x, Wx, bx, out=gates)          # ax_t for all t; becomes the gates
    ah = ws.tmp.empty(xp, "ah", (N, 3 * H), dtype)          # reused every step
    ah_n = ws.empty(xp, "ah_n", (T, N, H), dtype)
    hs = ws.empty(xp, "hs", (T + 1, N, H), dtype)           # h_0 .. h_T
    hs[0] = h0
    t0 = starts_at_zero(hs[0])                              # the rule the backward uses
    hWh = step_gemm(hs[:-1], Wh, ah, ws=ws.tmp)             # ah = h_{t-1} Wh
    cuda = fused_cuda.gru_kernels(xp, dtype) if fused else None     # CuPy: one kernel a step

    def step(t):
        if t < t0:
            ah.fill(0)                                      # h_0 Wh = 0
        else:
            hWh(t)
        if cuda is not None:                                # + bh, then the cell, in one kernel
            cuda[0](gates[t], ah, bh, hs[t], ah_n[t], hs[t + 1])
        else:
            xp.add(ah, bh, out=ah)                          # ah_t = h_{t-1} Wh + bh
            cell = kernel[0] if kernel is not None else gru_cell_forward
            cell(gates[t], ah, hs[t], ah_n[t], hs[t + 1])
        if d_h is not None:                                 # h_t = d^h ⊙ h_{t-1} + (1 - d^h) ⊙ h̃_t
            zoneout_mix(hs[t + 1], hs[t], zoneout_at(d_h, t), mix)
    capturable, products = direct([hWh], cuda)
    run_loop(ws, f"forward from {t0}", xp, range(T), step, (gates, ah, bh, ah_n, hs) + products,
             capturable and d_h is None)
    return hs[1:], hs[T], GRULayerCache(x_cache, Wh, gates, ah_n, hs, d_h)


def gru_cell_backward(gates, h_prev, ah_n, dh_up, dh_next, dax, dah):
    """One step back, up to the two GEMMs, with plain array calls
    (:func:`.cells_cpu.gru_cell_backward` is the same as one compiled loop).

    gates : (N, 3H) r|z|n;  h_prev, ah_n, dh_up : (N, H)
    dh_next : (N, H) ∂L/∂h_t via step t+1 on entry; dh_t ⊙ z_t on return
    dax, dah : (N, 3H) written: ∂L/∂ax_t and ∂L/∂ah_t
    """
    r, z, n = split_gru_gates(gates)
    dar, daz, dan = split_gru_gates(dax)
    dah_r, dah_z, dah_n = split_gru_gates(dah)
    dh = dh_up + dh_next                                    # both uses of h_t
    dan[...] = dh * (1 - z) * (1 - n * n)                   # dn ⊙ tanh'(an)
    dar[...] = dan * ah_n * r * (1 - r)                     # dr ⊙ σ'
    daz[...] = dh * (h_prev - n) * z * (1 - z)              # dz ⊙ σ'
    dah_r[...], dah_z[...] = dar, daz                       # ax_r, ah_r (and z) are added
    dah_n[...] = dan * r                                    # an = ax_n + r_t ⊙ ah_n
    dh_next[...] = dh * z                                   # h_t = ... + z_t ⊙ h_{t-1}


def gru_backward(dh, cache, dhT=None, fused=True, ws=FRESH, want_dh0=True):
    """Backpropagate through all T steps.

    dh : (T, N, H) ∂L/∂h_t from above;  cache : from :func:`gru_forward`
    dhT : (N, H) or None, ∂L/∂h_T from the next chunk; None means zero
    want_dh0 : False skips the last step's product dh_0 += dah_0 Whᵀ (dh0 is then None)
    Returns a dict with dx (T, N, D) (None for int ids), dh0 (N, H; None when not
    wanted), dWx, dWh, dbx, dbh.
    The weight gradients are fresh arrays; nothing passed in is modified.
    """
    x_cache, Wh, gates, ah_n, hs, d_h = cache
    xp = array_module(Wh)
    T, N, H = ah_n.shape
    dtype = Wh.dtype
    kernel = cells_cpu.step_kernels("gru", xp, dtype, fused)
    cuda = fused_cuda.gru_kernels(xp, dtype) if fused else None
    cell = cuda[1] if cuda is not None else kernel[1] if kernel is not None else gru_cell_backward
    dh = stable(ws, "dh_in", dh)                            # contiguous (a graph: one array)
    dax = ws.tmp.empty(xp, "dax", gates.shape, dtype)       # (T, N, 3H) ∂L/∂ax_t
    dah = ws.tmp.empty(xp, "dah", gates.shape, dtype)       # (T, N, 3H) ∂L/∂ah_t
    dh_next = ws.empty(xp, "dh_next", (N, H), dtype)        # the layer's: the same every call
    dh_next[...] = 0 if dhT is None else dhT
    dh_Wh = ws.tmp.empty(xp, "dh_Wh", (N, H), dtype)
    add_dh_Wh = step_gemm(dah, Wh.T, dh_next, accumulate=True, scratch=dh_Wh, ws=ws.tmp)

    if d_h is not None:
        dh_t, kept = (ws.tmp.empty(xp, f"zoneout{k}", (N, H), dtype) for k in range(2))

    def step(t):
        if d_h is None:
            cell(gates[t], hs[t], ah_n[t], dh[t], dh_next, dax[t], dah[t])
        else:       # h_t = d ⊙ h_{t-1} + (1 - d) ⊙ h̃_t: the kept share skips the cell
            xp.add(dh[t], dh_next, out=dh_t)                # both uses of h_t
            zoneout_split(dh_t, zoneout_at(d_h, t), kept)   # ∂L/∂h_{t-1} kept, ∂L/∂h̃_t
            dh_next[...] = 0
            cell(gates[t], hs[t], ah_n[t], dh_t, dh_next, dax[t], dah[t])
            xp.add(dh_next, kept, out=dh_next)
        if t or want_dh0:
            add_dh_Wh(t)                                    # ah_t = h_{t-1} Wh + bh
    capturable, products = direct([add_dh_Wh], cuda)
    run_loop(ws, f"backward, dh0 {want_dh0}", xp, reversed(range(T)), step,
             (gates, hs, ah_n, dh, dax, dah, dh_next) + products, capturable and d_h is None)
    # ah_t = h_{t-1} Wh + bh for all t: one GEMM, one sum
    dWh = recurrent_weight_grad(hs, dah, Wh)
    dbh = dah.reshape(-1, 3 * H).sum(axis=0)
    # ax_t = x_t Wx + bx for all t
    if is_ids(x_cache.x):
        dx = None
        dWx, dbx = onehot_affine_backward(dax, x_cache)
    else:
        dx_out = ws.empty(xp, "dx", x_cache.x.shape, dtype)
        dx, dWx, dbx = affine_backward(dax, x_cache, dx_out=dx_out)
    return dict(dx=dx, dh0=dh_next if want_dh0 else None, dWx=dWx, dWh=dWh, dbx=dbx, dbh=dbh)
