"""The vanilla RNN layer, fast: the same function as :func:`lstm_scratch.nn.rnn_forward`.

Equations and layout are the textbook's (:mod:`lstm_scratch.nn.rnn`)::

    h_t = tanh(x_t Wx + h_{t-1} Wh + b)      x (T, N, D), h (T, N, H)

What is different here, and why:

- ``x_t Wx + b`` does not depend on the recurrence: one GEMM (or, for int ids
  standing for one-hot rows, one gather) for all T steps before the loop, and
  its gradients in one GEMM after the backward loop. Likewise
  ``dWh = Σ_t h_{t-1}ᵀ da_t`` is one GEMM over all t.
- The loop writes into preallocated buffers (a :class:`.workspace.Workspace`)
  instead of allocating per step.
- The pointwise part of a step is one compiled loop (:mod:`.cells_cpu`) for
  float32 with Numba, one CUDA kernel on CuPy (:func:`.fused.rnn_kernels`);
  otherwise plain NumPy calls, which float64 gradient checks use. On CuPy the
  forward adds h_{t-1} Wh into the projection's buffer (one cuBLAS call, which may
  not write over its input hs) and the loops run as CUDA graphs (:mod:`.graphs`).
- Products known to be zero are skipped, as in :mod:`.lstm`: h_0 Wh from
  h_0 = 0, its rows of dWh, and dh_0 when the caller does not want it.
- The per-step products by Wh and by Whᵀ are :func:`.gemm.step_gemm`, and
  dWh is :func:`.lstm.recurrent_weight_grad`, as in :mod:`.lstm`.

Tests hold this layer equal to the textbook.
"""
from typing import NamedTuple

from ..backend import array_module
from . import cells_cpu
from . import fused as fused_cuda
from .gemm import step_gemm
from .graphs import direct, run_loop, stable
from .layers import affine_backward, affine_forward, onehot_affine_backward, onehot_affine_forward
from .lstm import (is_ids, recurrent_weight_grad, starts_at_zero, zoneout_at, zoneout_mix,
                   zoneout_split)
from .workspace import FRESH


class RNNLayerCache(NamedTuple):
    x_cache: object   # cache of the input projection x Wx + b
    Wh: object        # (H, H)
    hs: object        # (T+1, N, H) h_0, h_1, ..., h_T: hs[t] is h_{t-1} of step t
    zoneout: object = None   # d^h: masks (T, N, H) or the rate, or None (off)
    h_new: object = None     # (T, N, H) h̃_t = tanh(a_t) before the mix (with zoneout)

    @property
    def h(self):
        """(T, N, H) the layer's outputs h_1..h_T."""
        return self.hs[1:]


def rnn_forward(x, h0, Wx, Wh, b, fused=True, ws=FRESH, zoneout=None):
    """Run the layer over T steps from h0.

    x : (T, N, D) float, or (T, N) int ids for one-hot input (Wx is then (V, H))
    h0 : (N, H);  Wx : (D, H), Wh : (H, H), b : (H,), one float dtype
    fused : the compiled step where there is one (float32, Numba)
    ws : a :class:`.workspace.Workspace` to build h and the cache in (valid
        until its next use); the default allocates fresh arrays
    zoneout : (d^c, d^h) as for the LSTM (engine/lstm.py); the RNN has no c and mixes
        h only, by d^h, keeping h̃_t for the backward's tanh': nn/zoneout.py's
        ``hidden_zoneout_forward``; None: off
    Returns h (T, N, H), the final state h_T (N, H), and the cache.
    """
    xp = array_module(Wh)
    T, N = x.shape[:2]
    H = Wh.shape[0]
    assert Wh.shape == (H, H) and b.shape == (H,), (Wh.shape, b.shape)
    assert h0.shape == (N, H), h0.shape
    kernels = cells_cpu.step_kernels("rnn", xp, Wh.dtype, fused)
    project = onehot_affine_forward if is_ids(x) else affine_forward
    a = ws.tmp.empty(xp, "a", (T, N, H), Wh.dtype)          # dead after the loop
    a, x_cache = project(x, Wx, b, out=a)                   # x_t Wx + b, for all t at once
    hs = ws.empty(xp, "hs", (T + 1, N, H), Wh.dtype)        # h_0 .. h_T
    hs[0] = h0
    t0 = starts_at_zero(hs[0])                              # the rule the backward uses
    cuda = fused_cuda.rnn_kernels(xp, Wh.dtype) if fused else None
    if zoneout is not None:
        return _zoneout_forward(a, x_cache, Wh, hs, t0, kernels, cuda, zoneout[1], ws)
    if cuda is not None:
        # CuPy: a_t += h_{t-1} Wh, one cuBLAS call into a (apart from hs, as that call
        # needs), then h_t = tanh(a_t), one kernel: a loop a CUDA graph can hold.
        scratch = ws.tmp.empty(xp, "hWh", (N, H), Wh.dtype)
        add_hWh = step_gemm(hs[:-1], Wh, a, accumulate=True, scratch=scratch, ws=ws.tmp)

        def step(t):
            if t >= t0:
                add_hWh(t)                                  # a_t = x_t Wx + b + h_{t-1} Wh
            cuda[0](a[t], hs[t + 1])                        # h_t = tanh(a_t)
        capturable, products = direct([add_hWh], cuda)
        run_loop(ws, f"forward from {t0}", xp, range(T), step, (a, hs) + products, capturable)
        return hs[1:], hs[T], RNNLayerCache(x_cache, Wh, hs)
    # hs[t + 1] = hs[t] @ Wh (the pre-activation's recurrent part; tanh applied below).
    hWh = step_gemm(hs[:-1], Wh, hs[1:], ws=ws.tmp)
    for t in range(T):
        if t < t0:
            hs[t + 1].fill(0)                               # h_0 Wh = 0
        else:
            hWh(t)
        if kernels is not None:
            kernels[0](a[t], hs[t + 1])
        else:
            hs[t + 1] += a[t]
            xp.tanh(hs[t + 1], out=hs[t + 1])               # h_t = tanh(x_t Wx + b + h_{t-1} Wh)
    return hs[1:], hs[T], RNNLayerCache(x_cache, Wh, hs)


def _zoneout_forward(a, x_cache, Wh, hs, t0, kernels, cuda, d_h, ws):
    """rnn_forward's loop with zoneout on h: h̃_t = tanh(a_t + h_{t-1} Wh) into h_new[t],
    then h_t = d^h ⊙ h_{t-1} + (1 - d^h) ⊙ h̃_t into hs[t + 1]."""
    xp = array_module(Wh)
    T, N, H = a.shape
    h_new = ws.empty(xp, "h_new", (T, N, H), Wh.dtype)
    mix = ws.tmp.empty(xp, "zoneout", (N, H), Wh.dtype)
    hWh = step_gemm(hs[:-1], Wh, h_new, ws=ws.tmp)          # h_new[t] = hs[t] @ Wh
    for t in range(T):
        if t < t0:
            h_new[t].fill(0)                                # h_0 Wh = 0
        else:
            hWh(t)
        if cuda is not None:                                # h̃_t = tanh(a_t + h_{t-1} Wh)
            a[t] += h_new[t]
            cuda[0](a[t], h_new[t])
        elif kernels is not None:
            kernels[0](a[t], h_new[t])
        else:
            h_new[t] += a[t]
            xp.tanh(h_new[t], out=h_new[t])
        hs[t + 1] = h_new[t]
        zoneout_mix(hs[t + 1], hs[t], zoneout_at(d_h, t), mix)
    return hs[1:], hs[T], RNNLayerCache(x_cache, Wh, hs, d_h, h_new)


def rnn_backward(dh, cache, dhT=None, fused=True, ws=FRESH, want_dh0=True):
    """Backpropagate through all T steps.

    dh : (T, N, H) ∂L/∂h_t from above;  cache : from :func:`rnn_forward`
    dhT : (N, H) or None, ∂L/∂h_T from the next chunk; None means zero
    want_dh0 : False skips the last step's product dh0 = da_0 Whᵀ (dh0 is then None)
    Returns a dict with dx (T, N, D) (None for int ids), dh0 (N, H; None when not
    wanted), dWx, dWh, db.
    The weight gradients are fresh arrays; nothing passed in is modified.
    """
    x_cache, Wh, hs, d_h, h_new = cache
    xp = array_module(Wh)
    T, N, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    kernels = cells_cpu.step_kernels("rnn", xp, Wh.dtype, fused)
    cuda = fused_cuda.rnn_kernels(xp, Wh.dtype) if fused else None
    kernels = cuda if cuda is not None else kernels
    dh = stable(ws, "dh_in", dh)                            # contiguous (a graph: one array)
    da = ws.tmp.empty(xp, "da", (T, N, H), Wh.dtype)       # ∂L/∂a_t, a_t = x_t Wx + h_{t-1} Wh + b
    dh_next = ws.empty(xp, "dh_next", (N, H), Wh.dtype)     # the layer's: the same every call
    dh_next[...] = 0 if dhT is None else dhT
    dh_prev = step_gemm(da, Wh.T, dh_next, ws=ws.tmp)       # dh_next = da[t] Whᵀ

    h_out = hs[1:] if d_h is None else h_new                # tanh(a_t): h_t, or h̃_t (zoneout)
    if d_h is not None:
        dh_t, kept, no_dh = (ws.tmp.empty(xp, f"zoneout{k}", (N, H), Wh.dtype) for k in range(3))
        no_dh[...] = 0

    def step(t):
        dh_up, dh_via_next = dh[t], dh_next
        if d_h is not None:     # h_t = d ⊙ h_{t-1} + (1 - d) ⊙ h̃_t: the kept share skips the cell
            xp.add(dh[t], dh_next, out=dh_t)                # both uses of h_t
            zoneout_split(dh_t, zoneout_at(d_h, t), kept)   # ∂L/∂h_{t-1} kept, ∂L/∂h̃_t
            dh_up, dh_via_next = dh_t, no_dh
        if kernels is not None:
            kernels[1](h_out[t], dh_up, dh_via_next, da[t])
        else:
            xp.add(dh_up, dh_via_next, out=da[t])           # both uses of h_t
            da[t] *= 1 - h_out[t] * h_out[t]                # tanh' = 1 - h_t²
        if t or want_dh0:
            dh_prev(t)                                      # a_t = ... + h_{t-1} Wh
            if d_h is not None:
                xp.add(dh_next, kept, out=dh_next)          # both ways to h_{t-1}
    capturable, products = direct([dh_prev], cuda)
    run_loop(ws, f"backward, dh0 {want_dh0}", xp, reversed(range(T)), step,
             (hs, dh, da, dh_next) + products, capturable and d_h is None)
    dWh = recurrent_weight_grad(hs, da, Wh)                 # a_t = ... + h_{t-1} Wh for all t
    if is_ids(x_cache.x):
        dx = None
        dWx, db = onehot_affine_backward(da, x_cache)
    else:
        dx_out = ws.empty(xp, "dx", x_cache.x.shape, Wh.dtype)
        dx, dWx, db = affine_backward(da, x_cache, dx_out=dx_out)
    return dict(dx=dx, dh0=dh_next if want_dh0 else None, dWx=dWx, dWh=dWh, db=db)
