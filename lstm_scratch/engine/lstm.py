"""The fast LSTM layer: the same numbers as :mod:`lstm_scratch.nn.lstm`, sooner.

Read the equations in ``nn/lstm.py`` (``lstm_step_forward``,
``lstm_step_backward``); this file computes exactly those, with the same
arguments and results as ``nn.lstm_forward`` / ``nn.lstm_backward``, and
tests/test_engine_lstm.py holds the two equal (1e-10 in float64). What differs:

- x_t Wx + b does not depend on the recurrence, so it is computed for all T
  steps in one GEMM (or one row gather, for int ids) before the loop, and
  its gradients in one GEMM after the backward loop; dWh likewise.
- σ(z) = 0.5 tanh(0.5 z) + 0.5 (:func:`sigmoid_via_tanh`): one tanh call
  covers all four gates. The scale is applied to the (N, 4H) pre-activations
  inside the cell step, not to copies of the weights, so the layer reads Wx,
  Wh and b as they are (multiplying by 0.5 is exact, so this changes no bit).
- The per-step products h_{t-1} Wh and da_t Whᵀ are :func:`.gemm.step_gemm`: on
  NumPy, Wh cut once into panels that OpenBLAS's small-matrix kernel multiplies
  without repacking (where it has one and the product runs on one thread), else
  ``matmul`` (by a row-major copy of Whᵀ in the backward: faster, as gemm.py
  says); on CuPy, one cuBLAS call a step with its pointers prepared once.
- Products known to be zero are not computed: h_0 Wh when the layer starts
  from h_0 = 0 (every window of the Keras recipe), its rows of dWh, and
  dh_0 = da_0 Whᵀ when the caller does not want it (truncated BPTT drops it).
  (The textbook computes 0 · Wh, which is NaN where Wh holds an inf or a NaN;
  here step 0 of such a layer stays finite. Otherwise only rounding differs.)
- The cell step runs in place on buffers (:func:`lstm_cell_forward`,
  :func:`lstm_cell_backward`), as one fused kernel where there is one
  (:mod:`.fused`: CUDA on CuPy, Numba for float32 on NumPy), and big arrays
  come from a :class:`.workspace.Workspace`, reused from call to call.

Layout as in the textbook: time-major, x (T, N, D) or int ids (T, N).
"""
from typing import NamedTuple

import numpy as np

from ..backend import array_module, empty_aligned
from ..nn.gates import gate_slice, split_gates
from .fused import backward_kernel, forward_kernel
from .gemm import step_gemm
from .graphs import direct, run_loop, stable
from .layers import affine_backward, affine_forward, onehot_affine_backward, onehot_affine_forward
from .workspace import FRESH


class LSTMCache(NamedTuple):
    x_cache: object   # cache of the input projection a = x Wx + b
    Wh: object        # (H, 4H)
    gates: object     # (T, N, 4H) post-activation i|f|g|o
    hs: object        # (T+1, N, H) h_0, h_1, ..., h_T: hs[t] is h_{t-1} of step t
    cs: object        # (T+1, N, H) c_0, c_1, ..., c_T
    tanh_c: object    # (T, N, H) tanh(c_t) (tanh(c̃_t), before the mix, with zoneout)
    zoneout: object = None   # (d^c, d^h): masks (T, N, H) or rates, or None (off)

    @property
    def h(self):
        """(T, N, H) the layer's outputs h_1..h_T."""
        return self.hs[1:]

    @property
    def c(self):
        """(T, N, H) the cell states c_1..c_T."""
        return self.cs[1:]


def is_ids(x):
    """True when x holds int token ids (one-hot input) rather than floats."""
    return x.dtype.kind in "iu"


def sigmoid_via_tanh(H, dtype, xp):
    """Per-column (4H,) scale and shift such that, for the fused block a,

        scale ⊙ tanh(scale ⊙ a) + shift  =  σ(a_i) | σ(a_f) | tanh(a_g) | σ(a_o)

    because σ(z) = 0.5 tanh(0.5 z) + 0.5 (scale 0.5, shift 0.5; for g: 1, 0).
    This form never overflows, and one tanh call covers all four gates.
    """
    scale = xp.full(4 * H, 0.5, dtype=dtype)
    shift = xp.full(4 * H, 0.5, dtype=dtype)
    scale[gate_slice("g", H)] = 1.0
    shift[gate_slice("g", H)] = 0.0
    return scale, shift


def lstm_cell_forward(a, c_prev, scale, shift, c, tanh_c, h, ig, fused=True):
    """One step of the cell, in place, from the pre-activations.

    a : (N, 4H) a_t on entry; the gates i_t | f_t | g_t | o_t on return
    c_prev : (N, H) c_{t-1}
    scale, shift : (4H,) from :func:`sigmoid_via_tanh`
    c, tanh_c, h : (N, H) written: c_t, tanh(c_t), h_t;  ig : (N, H) scratch
    fused : run it all as one kernel where there is one (engine/fused.py: CUDA on
        CuPy; Numba for float32 on NumPy); all arrays C-contiguous
    """
    xp = array_module(a)
    kernel = forward_kernel(xp, a.dtype) if fused else None
    if kernel is not None:
        kernel(a, c_prev, c, tanh_c, h)
        return
    a *= scale
    xp.tanh(a, out=a)
    a *= scale
    a += shift                                              # σ(a_i) | σ(a_f) | tanh(a_g) | σ(a_o)
    i, f, g, o = split_gates(a)
    xp.multiply(f, c_prev, out=c)                           # c_t = f_t ⊙ c_{t-1}
    xp.multiply(i, g, out=ig)
    c += ig                                                 #     + i_t ⊙ g_t
    xp.tanh(c, out=tanh_c)
    xp.multiply(o, tanh_c, out=h)                           # h_t = o_t ⊙ tanh(c_t)


def zoneout_mix(new, prev, d, tmp):
    """new ← d ⊙ prev + (1 - d) ⊙ new in place (nn/zoneout.py's ``zoneout_forward``, the
    same two products and one sum), d a 0/1 mask (N, H) or the rate, a float; tmp (N, H)."""
    xp = array_module(new)
    xp.multiply(new, 1 - d, out=tmp)                        # (1 - d) ⊙ new
    xp.multiply(prev, d, out=new)                           # d ⊙ prev
    new += tmp


def zoneout_split(dy, d, kept):
    """The backward of :func:`zoneout_mix`, in place (nn/zoneout.py's ``zoneout_backward``):
    kept ← d ⊙ dy, the share that goes straight to prev; dy ← (1 - d) ⊙ dy, the share of new."""
    xp = array_module(dy)
    xp.multiply(dy, d, out=kept)                            # ∂L/∂prev
    xp.multiply(dy, 1 - d, out=dy)                          # ∂L/∂new


def zoneout_at(d, t):
    """Step t's part of a zoneout argument: the mask's d[t], or the rate d itself."""
    return d if isinstance(d, float) else d[t]


def lstm_forward(x, h0, c0, Wx, Wh, b, fused=True, ws=FRESH, zoneout=None):
    """Run the layer over T steps from (h0, c0).

    x : (T, N, D) float, or (T, N) int ids for one-hot input (Wx is then (V, 4H))
    h0, c0 : (N, H) initial state
    Wx : (D, 4H), Wh : (H, 4H), b : (4H,), all of one float dtype
    fused : one kernel per cell step where there is one (see :func:`lstm_cell_forward`)
    ws : a :class:`.workspace.Workspace` to build h and the cache in (valid until
        its next use); the default allocates fresh arrays
    zoneout : (d^c, d^h), each a 0/1 mask (T, N, H) or a rate (a float, as at
        evaluation), mixed into c_t and h_t after each step as nn/zoneout.py's
        ``lstm_zoneout_forward`` does; None: off
    Returns h (T, N, H), the final state (h_T, c_T) each (N, H), and the cache.
    """
    xp = array_module(Wh)
    T, N = x.shape[:2]
    H = Wh.shape[0]
    dtype = Wh.dtype
    assert Wh.shape == (H, 4 * H) and b.shape == (4 * H,), (Wh.shape, b.shape)
    assert h0.shape == (N, H) and c0.shape == (N, H), (h0.shape, c0.shape)

    scale, shift = sigmoid_via_tanh(H, dtype, xp)
    # x_t Wx + b for all t at once, in a buffer of ours: the gates are built in it.
    gates = ws.empty(xp, "gates", (T, N, 4 * H), dtype)
    project = onehot_affine_forward if is_ids(x) else affine_forward
    gates, x_cache = project(x, Wx, b, out=gates)
    hWh = ws.tmp.empty(xp, "hWh", (N, 4 * H), dtype)        # reused every step
    hs = ws.empty(xp, "hs", (T + 1, N, H), dtype)           # h_0 .. h_T
    cs = ws.empty(xp, "cs", (T + 1, N, H), dtype)           # c_0 .. c_T
    tanh_c = ws.empty(xp, "tanh_c", (T, N, H), dtype)
    ig = ws.tmp.empty(xp, "ig", (N, H), dtype)
    hs[0], cs[0] = h0, c0
    add_hWh = step_gemm(hs[:-1], Wh, gates, accumulate=True, scratch=hWh, ws=ws.tmp)
    t0 = starts_at_zero(hs[0])                              # from h_0 = 0, a_0 = x_0 Wx + b

    def step(t):
        if t >= t0:
            add_hWh(t)                                      # a_t = x_t Wx + b + h_{t-1} Wh
        lstm_cell_forward(gates[t], cs[t], scale, shift, cs[t + 1], tanh_c[t], hs[t + 1], ig, fused)
        if zoneout is not None:                             # c̃_t, h̃_t -> c_t, h_t
            dc, dh = (zoneout_at(d, t) for d in zoneout)
            zoneout_mix(cs[t + 1], cs[t], dc, ig)           # c_t = d^c ⊙ c_{t-1} + (1 - d^c) ⊙ c̃_t
            zoneout_mix(hs[t + 1], hs[t], dh, ig)           # h_t = d^h ⊙ h_{t-1} + (1 - d^h) ⊙ h̃_t
    capturable, products = direct([add_hWh], forward_kernel(xp, dtype) if fused else None)
    run_loop(ws, f"forward from {t0}", xp, range(T), step, (gates, hs, cs, tanh_c) + products,
             capturable and zoneout is None)
    cache = LSTMCache(x_cache, Wh, gates, hs, cs, tanh_c, zoneout)
    return hs[1:], (hs[T], cs[T]), cache


def starts_at_zero(h0):
    """1 if h0 is all zeros (so step 0's h_0 Wh can be skipped), else 0.

    Asked on NumPy only: there it reads N·H numbers once (microseconds); on
    CuPy the answer would make the host wait for the device, so it says 0.
    """
    return int(array_module(h0) is np and not h0.any())


def recurrent_weight_grad(hs, da, Wh):
    """dWh = Σ_t h_{t-1}ᵀ da_t for a_t = ... + h_{t-1} Wh: one GEMM over all t, from
    t = 1 when h_0 = 0 (its rows add nothing). The LSTM, GRU and RNN layers share it.

    hs : (T+1, N, H) h_0 .. h_T;  da : (T, N, G) ∂L/∂a_t;  Wh : (H, G)
    Returns dWh (H, G), a fresh array on a 64-byte boundary.
    """
    xp = array_module(Wh)
    H, G = Wh.shape
    t0 = starts_at_zero(hs[0])
    return xp.matmul(hs[t0:-1].reshape(-1, H).T, da[t0:].reshape(-1, G),
                     out=empty_aligned(xp, Wh.shape, Wh.dtype))


def lstm_cell_backward(dh_up, gates, c_prev, tanh_c, da, dh_next, dc_next, scratch, fused=True):
    """One step back through the cell, in place.

    dh_up : (N, H) ∂L/∂h_t from the layer above
    gates : (N, 4H) i_t | f_t | g_t | o_t;  c_prev : (N, H) c_{t-1};  tanh_c : (N, H) tanh(c_t)
    da : (N, 4H) written: ∂L/∂a_t
    dh_next : (N, H) ∂L/∂h_t through step t+1 (read only)
    dc_next : (N, H) ∂L/∂c_t through c_{t+1} on entry; ∂L/∂c_{t-1} on return
    scratch : three (N, H) buffers;  fused : one kernel where there is one (engine/fused.py)
    """
    xp = array_module(da)
    kernel = backward_kernel(xp, da.dtype) if fused else None
    if kernel is not None:
        kernel(gates, c_prev, tanh_c, dh_up, dh_next, da, dc_next)
        return
    dh_t, dc, tmp = scratch
    i, f, g, o = split_gates(gates)
    da_i, da_f, da_g, da_o = split_gates(da)
    xp.add(dh_up, dh_next, out=dh_t)                        # both uses of h_t
    # h_t = o_t ⊙ tanh(c_t)
    xp.multiply(dh_t, tanh_c, out=da_o)                     # do = dh_t ⊙ tanh(c_t)
    xp.multiply(tanh_c, tanh_c, out=tmp)
    xp.subtract(1, tmp, out=tmp)                            # tanh' = 1 - tanh²
    tmp *= o
    tmp *= dh_t
    xp.add(tmp, dc_next, out=dc)                            # dc = dh_t ⊙ o_t ⊙ tanh'(c_t) + dc_next
    # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    xp.multiply(dc, g, out=da_i)                            # di = dc ⊙ g_t
    xp.multiply(dc, c_prev, out=da_f)                       # df = dc ⊙ c_{t-1}
    xp.multiply(dc, i, out=da_g)                            # dg = dc ⊙ i_t
    xp.multiply(dc, f, out=dc_next)                         # ∂L/∂c_{t-1} = dc ⊙ f_t
    # i, f, o = σ(a), g = tanh(a): derivatives from the outputs, σ' = σ(1-σ)
    for d, s in ((da_i, i), (da_f, f), (da_o, o)):
        xp.subtract(1, s, out=tmp)
        tmp *= s
        d *= tmp
    xp.multiply(g, g, out=tmp)
    xp.subtract(1, tmp, out=tmp)                            # tanh' = 1 - g²
    da_g *= tmp


def lstm_backward(dh, cache, dhT=None, dcT=None, fused=True, ws=FRESH, want_dh0=True):
    """Backpropagate through all T steps.

    dh : (T, N, H) upstream ∂L/∂h_t from the layer above (zeros where unused)
    cache : from :func:`lstm_forward`
    dhT, dcT : (N, H) or None, ∂L/∂h_T and ∂L/∂c_T from whatever consumed the
        final state (the next chunk); None means zero
    fused : one kernel per cell step where there is one (see :func:`lstm_cell_backward`)
    ws : a :class:`.workspace.Workspace` to build dx in (valid until its next
        use; ∂L/∂a in ``ws.tmp``); the weight gradients are always fresh arrays
    want_dh0 : False skips the last step's product dh0 = da_0 Whᵀ (dh0 is then None)
    Returns a dict with dx (T, N, D) (None for int ids), dh0 (N, H; None when not
    wanted), dc0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,). Nothing passed in is modified.
    """
    x_cache, Wh, gates, hs, cs, tanh_c, zoneout = cache
    xp = array_module(Wh)
    T, N, H = tanh_c.shape
    dtype = Wh.dtype
    dh = stable(ws, "dh_in", dh)                            # contiguous (a graph: one array)
    da = ws.tmp.empty(xp, "da", gates.shape, dtype)         # (T, N, 4H) ∂L/∂a_t
    # Our own buffers, updated in place every step: ∂L/∂h_t via step t+1 and
    # ∂L/∂c_t via c_{t+1} (both zero after the last step, unless a next chunk says otherwise).
    # (In the layer's workspace: the same arrays every call, which a CUDA graph needs.)
    dh_next, dc_next = (ws.empty(xp, name, (N, H), dtype) for name in ("dh_next", "dc_next"))
    dh_next[...] = 0 if dhT is None else dhT
    dc_next[...] = 0 if dcT is None else dcT
    scratch = tuple(ws.tmp.empty(xp, f"scratch{k}", (N, H), dtype) for k in range(3))
    dh_prev = step_gemm(da, Wh.T, dh_next, ws=ws.tmp)       # dh_next = da[t] Whᵀ
    if zoneout is not None:
        dh_t, kept_h, kept_c, no_dh = (ws.tmp.empty(xp, f"zoneout{k}", (N, H), dtype)
                                       for k in range(4))
        no_dh[...] = 0

    def step(t):
        if zoneout is None:
            lstm_cell_backward(dh[t], gates[t], cs[t], tanh_c[t], da[t], dh_next, dc_next,
                               scratch, fused)
            if t or want_dh0:
                dh_prev(t)                                  # a_t = ... + h_{t-1} Wh
            return
        # h_t = d^h ⊙ h_{t-1} + (1 - d^h) ⊙ h̃_t, and c_t likewise: the kept share of each
        # gradient goes straight to step t-1, the rest through the cell (nn/zoneout.py)
        dc, dh_mask = (zoneout_at(d, t) for d in zoneout)
        xp.add(dh[t], dh_next, out=dh_t)                    # both uses of h_t
        zoneout_split(dh_t, dh_mask, kept_h)                # ∂L/∂h_{t-1} kept, ∂L/∂h̃_t
        zoneout_split(dc_next, dc, kept_c)                  # ∂L/∂c_{t-1} kept, ∂L/∂c̃_t
        lstm_cell_backward(dh_t, gates[t], cs[t], tanh_c[t], da[t], no_dh, dc_next,
                           scratch, fused)
        xp.add(dc_next, kept_c, out=dc_next)                # c_{t-1} reached both ways
        if t or want_dh0:
            dh_prev(t)                                      # a_t = ... + h_{t-1} Wh
            xp.add(dh_next, kept_h, out=dh_next)            # h_{t-1} reached both ways
    capturable, products = direct([dh_prev], backward_kernel(xp, dtype) if fused else None)
    run_loop(ws, f"backward, dh0 {want_dh0}", xp, reversed(range(T)), step,
             (dh, gates, cs, tanh_c, da, dh_next, dc_next) + products,
             capturable and zoneout is None)
    dWh = recurrent_weight_grad(hs, da, Wh)                 # a_t = ... + h_{t-1} Wh for all t
    # a_t = x_t Wx + b for all t
    if is_ids(x_cache.x):
        dx = None
        dWx, db = onehot_affine_backward(da, x_cache)
    else:
        dx_out = ws.empty(xp, "dx", x_cache.x.shape, dtype)
        dx, dWx, db = affine_backward(da, x_cache, dx_out=dx_out)
    return dict(dx=dx, dh0=dh_next if want_dh0 else None, dc0=dc_next, dWx=dWx, dWh=dWh, db=db)
