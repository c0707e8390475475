"""One compiled CPU loop per cell step (and per optimizer update), when Numba is
installed (``pip install 'lstm-scratch[fast]'``).

The plain cell in :mod:`.lstm` makes a dozen NumPy calls per time step, each a
full pass over an (N, H) or (N, 4H) array, and float32 ``np.tanh`` costs
about 3 ns an element here: on a 2x512 model that is a fifth of a training
step. The two cell functions below do the same arithmetic as the CUDA kernels
of :mod:`.fused` in one call each, compiled by Numba (on first use) to SIMD
code that releases the GIL, so the batch-split workers of
:mod:`lstm_scratch.engine.parallel` run them at the same time; a third does the
optimizer's update, a fourth the one-hot input layer's backward, a fifth the
column-major copy of Wh that the backward of every cell multiplies by, and two
more cut Wh into the panels of :func:`.gemm.panel_gemm` and put the products
back in place. Without Numba they are plain (slow) Python, and the NumPy code
is used instead.

The cell functions and RMSprop's update are used for float32, with :func:`tanh32`.
float64 is for gradient checks, where the plain NumPy code (exact ``np.tanh``)
is the reference; Adam's update, the one-hot backward, the copy and the panels,
which use no approximation, run in float64 too. Tests check each function against its NumPy twin.

Set ``LSTM_SCRATCH_NUMBA=0`` in the environment to run the plain NumPy cell
even where Numba is installed.
"""
import importlib.util
import os
import threading

import numpy as np

from ..nn.gates import GATE_ORDER


# tanh(x) ≈ x P(x²) / Q(x²) on |x| <= CLAMP; beyond it, tanh(x) rounds to ±1 in
# float32. A least-squares fit of the relative error, reweighted until it settles
# (Sanathanan-Koerner; docs/fit_tanh.py redoes it). The rational function is within
# 2.1e-8 (relative) of tanh; evaluated in float32, within 3.1e-7 (absolute; np.tanh's
# float32 error is 6e-8), and clipped to [-1, 1].
CLAMP = 9.0
P = (0.9999999950254542, 0.130899607361845, 0.0031106130394370477, 1.1224298314723247e-05,
     -2.0511790472122835e-08, 5.4175287436514635e-11, -8.851455980023687e-14)
Q = (1.0, 0.4642328893395991, 0.024521659077915686, 0.0002555858877000103)
p0, p1, p2, p3, p4, p5, p6 = (np.float32(v) for v in P)
q0, q1, q2, q3 = (np.float32(v) for v in Q)
LO, HI, ONE, HALF = np.float32(-CLAMP), np.float32(CLAMP), np.float32(1.0), np.float32(0.5)
I, F, G, O = (GATE_ORDER.index(name) for name in "ifgo")    # block positions in a (N, 4H) row


def tanh32(x):
    """tanh of a float32 scalar, as a rational function (see P and Q above)."""
    x = min(max(x, LO), HI)
    u = x * x
    p = ((((((p6 * u + p5) * u + p4) * u + p3) * u + p2) * u + p1) * u + p0)
    q = ((q3 * u + q2) * u + q1) * u + q0
    return min(max(x * p / q, -ONE), ONE)


def cell_forward(a, c_prev, c, tanh_c, h):
    """One forward step of the cell, as :func:`.lstm.lstm_cell_forward`.

    a : (N, 4H) a_t on entry; the gates i|f|g|o on return
    c_prev : (N, H) c_{t-1};  c, tanh_c, h : (N, H) written: c_t, tanh(c_t), h_t
    Row by row, in short passes over contiguous memory, which the compiler
    turns into SIMD code (one long loop over five arrays it would not).
    """
    N, H = c.shape
    for n in range(N):
        a_n, c_prev_n, c_n, tanh_c_n, h_n = a[n], c_prev[n], c[n], tanh_c[n], h[n]
        for j in range(H):                                  # σ(z) = 0.5 tanh(0.5 z) + 0.5
            a_n[I * H + j] = HALF * tanh32(HALF * a_n[I * H + j]) + HALF    # i_t
        for j in range(H):
            a_n[F * H + j] = HALF * tanh32(HALF * a_n[F * H + j]) + HALF    # f_t
        for j in range(H):
            a_n[G * H + j] = tanh32(a_n[G * H + j])                         # g_t
        for j in range(H):
            a_n[O * H + j] = HALF * tanh32(HALF * a_n[O * H + j]) + HALF    # o_t
        for j in range(H):                                  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
            c_n[j] = a_n[F * H + j] * c_prev_n[j] + a_n[I * H + j] * a_n[G * H + j]
        for j in range(H):
            tanh_c_n[j] = tanh32(c_n[j])
        for j in range(H):                                  # h_t = o_t ⊙ tanh(c_t)
            h_n[j] = a_n[O * H + j] * tanh_c_n[j]


def cell_backward(gates, c_prev, tanh_c, dh_up, dh_next, da, dc_next):
    """One backward step of the cell, as :func:`.lstm.lstm_cell_backward`.

    gates : (N, 4H) i|f|g|o;  c_prev, tanh_c, dh_up, dh_next : (N, H)
    da : (N, 4H) written: ∂L/∂a_t;  dc_next : (N, H) ∂L/∂c_t via c_{t+1} in, ∂L/∂c_{t-1} out
    """
    N, H = dc_next.shape
    for n in range(N):
        for j in range(H):
            gi, gf = gates[n, I * H + j], gates[n, F * H + j]
            gg, go = gates[n, G * H + j], gates[n, O * H + j]
            tc = tanh_c[n, j]
            dh = dh_up[n, j] + dh_next[n, j]                # both uses of h_t
            dc = dh * go * (ONE - tc * tc) + dc_next[n, j]
            da[n, I * H + j] = dc * gg * gi * (ONE - gi)           # σ' = σ(1 - σ)
            da[n, F * H + j] = dc * c_prev[n, j] * gf * (ONE - gf)
            da[n, G * H + j] = dc * gi * (ONE - gg * gg)            # tanh' = 1 - tanh²
            da[n, O * H + j] = dh * tc * go * (ONE - go)
            dc_next[n, j] = dc * gf                         # now ∂L/∂c_{t-1}


def rmsprop_update(p, v, g, scale, lr, rho, one_minus_rho, eps):
    """:class:`lstm_scratch.optim.RMSprop`'s update in one pass (NumPy needs nine).

    p, v, g : 1-D float32 arrays of one length, p and v updated in place;
    the scalars float32 (one_minus_rho is 1 - rho, rounded as NumPy would).
    """
    for k in range(p.size):
        gk = g[k] * scale                                   # clipped gradient
        v[k] = rho * v[k] + one_minus_rho * gk * gk         # v ← ρ v + (1-ρ) g²
        p[k] -= lr * gk / (np.sqrt(v[k]) + eps)             # p ← p - lr g / (√v + ε)


def adam_update(p, m, v, g, scale, decay, l2, beta1, one_minus_beta1, beta2, one_minus_beta2,
                eps, step_size, root_bc2):
    """:class:`lstm_scratch.optim.Adam`'s and ``AdamW``'s update in one pass (NumPy needs
    up to sixteen).

    p, m, v, g : 1-D arrays of one length and dtype (float32 or float64), p, m and v
    updated in place; the scalars of that dtype: decay = 1 - lr λ (AdamW; 1 for Adam),
    l2 = λ (Adam; 0 for AdamW), step_size = lr / (1 - β1^t), root_bc2 = √(1 - β2^t),
    one_minus_* rounded as NumPy would.
    """
    for k in range(p.size):
        p[k] *= decay                                       # p ← p (1 - lr λ)
        gk = g[k] * scale + l2 * p[k]                       # clipped gradient (+ λ p)
        m[k] = beta1 * m[k] + one_minus_beta1 * gk          # m ← β1 m + (1-β1) g
        v[k] = beta2 * v[k] + one_minus_beta2 * gk * gk     # v ← β2 v + (1-β2) g²
        p[k] -= step_size * m[k] / (np.sqrt(v[k]) / root_bc2 + eps)


def onehot_backward(ids, dy, dW, db):
    """The one-hot layer's gradients, as :func:`.layers.onehot_affine_backward`:
    dW[ids[k]] += dy[k] and db += dy[k] for every k, in one pass over dy (NumPy
    needs a (K, V) 0/1 matrix and a GEMM: 4.6 against 0.8 ms for a C1 worker's
    K = 1280, M = 2048; bench/README.md).

    ids : (K,) int, each in [0, V);  dy : (K, M);  dW : (V, M), db : (M,) added to
    Compiled without bounds checks, so the shapes and every id are checked here:
    nothing is read or written outside the arrays.
    """
    K, M = dy.shape
    V = dW.shape[0]
    if ids.shape[0] != K or dW.shape[1] != M or db.shape[0] != M:
        raise ValueError("onehot_backward: ids (K,), dy (K, M), dW (V, M) and db (M,) disagree")
    for k in range(K):
        r = ids[k]
        if r < 0 or r >= V:                                 # no write outside dW
            raise IndexError("a character id is outside the vocabulary")
        dW_r, dy_k = dW[r], dy[k]
        for j in range(M):
            dW_r[j] += dy_k[j]
            db[j] += dy_k[j]


def transpose_into(src, dst):
    """dst = srcᵀ, in 8 x 8 tiles. src : (R, C);  dst : (C, R).

    A tile's 8 reads and 8 writes per row stay in 16 cache lines; NumPy's strided
    copy of a (512, 2048) float32 matrix into a column-major buffer walks whole
    columns and takes 2-4x as long (3.1-5.0 against 1.3 ms in bench/profile_step.py).
    """
    R, C = src.shape
    if dst.shape[0] != C or dst.shape[1] != R:              # compiled without bounds checks
        raise ValueError("transpose_into: dst must be (C, R) for src (R, C)")
    for i0 in range(0, R, 8):
        for j0 in range(0, C, 8):
            for j in range(j0, min(j0 + 8, C)):
                for i in range(i0, min(i0 + 8, R)):
                    dst[j, i] = src[i, j]


def pack_panels(B, Bp):
    """Bp[s, p] = B[s·Kb : (s+1)·Kb, p·w : (p+1)·w], zero past B's last column.
    B : (K, M), any layout;  Bp : (S, P, Kb, w) with S·Kb = K and (P-1)·w < M <= P·w.
    Reads along B's contiguous axis."""
    K, M = B.shape
    S, P, Kb, w = Bp.shape
    if S * Kb != K or not (P - 1) * w < M <= P * w:        # compiled without bounds checks
        raise ValueError("pack_panels: Bp must be (S, P, K/S, w) with (P-1)·w < M <= P·w")
    row_major = B.strides[1] <= B.strides[0]
    for s in range(S):
        for p in range(P):
            if row_major:
                for k in range(Kb):
                    for j in range(w):
                        col = p * w + j
                        Bp[s, p, k, j] = B[s * Kb + k, col] if col < M else 0
            else:
                for j in range(w):
                    col = p * w + j
                    for k in range(Kb):
                        Bp[s, p, k, j] = B[s * Kb + k, col] if col < M else 0


def from_panels(Cp, C, accumulate):
    """C[:, p·w + j] = Σ_s Cp[s, p, :, j] (or +=), for the columns C has: the
    products by :func:`pack_panels`'s panels summed over the blocks of K and put back
    in place. Cp : (S, P, R, w);  C : (R, M). The sum runs s = 0, 1, ... in order."""
    S, P, R, w = Cp.shape
    M = C.shape[1]
    if S < 1 or C.shape[0] != R or not (P - 1) * w < M <= P * w:    # no bounds checks compiled
        raise ValueError("from_panels: C must be (R, M) with (P-1)·w < M <= P·w for Cp (S >= 1, P, R, w)")
    v = np.empty(w, Cp.dtype)                               # one panel's row, summed
    for i in range(R):
        for p in range(P):
            base = p * w
            n = min(w, M - base)
            for j in range(n):                              # rows of w: SIMD loops
                v[j] = Cp[0, p, i, j]
            for s in range(1, S):
                for j in range(n):
                    v[j] += Cp[s, p, i, j]
            if accumulate:
                for j in range(n):
                    C[i, base + j] += v[j]
            else:
                for j in range(n):
                    C[i, base + j] = v[j]


def _jit(fn):
    """Compile ``fn`` on first call; the machine code is cached on disk (next to this
    file, or in Numba's user cache) so later runs skip the ~2 s compile."""
    from numba import njit
    options = dict(nogil=True, fastmath=True, error_model="numpy")
    try:
        return njit(cache=True, **options)(fn)
    except RuntimeError:            # nowhere writable to cache in: compile every run
        return njit(**options)(fn)


_COMPILED = None
_LOCK = threading.Lock()


def _compiled():
    """Swap the functions above for their compiled twins, once (Numba is imported
    here, on first use, not with lstm_scratch: that takes ~0.6 s and ~60 MiB)."""
    global _COMPILED, tanh32, cell_forward, cell_backward, rmsprop_update, onehot_backward
    global transpose_into, pack_panels, from_panels, adam_update
    with _LOCK:                     # worker threads may ask at the same moment
        if _COMPILED is None:
            tanh32 = _jit(tanh32)   # first: the cell functions find it when they compile
            cell_forward, cell_backward = _jit(cell_forward), _jit(cell_backward)
            rmsprop_update, onehot_backward = _jit(rmsprop_update), _jit(onehot_backward)
            transpose_into = _jit(transpose_into)
            pack_panels, from_panels = _jit(pack_panels), _jit(from_panels)
            adam_update = _jit(adam_update)
            _COMPILED = (cell_forward, cell_backward, rmsprop_update, onehot_backward,
                         transpose_into, pack_panels, from_panels, adam_update)
    return _COMPILED


# Numba installed, and not switched off by LSTM_SCRATCH_NUMBA=0. Read once.
ENABLED = (os.environ.get("LSTM_SCRATCH_NUMBA", "1") != "0"
           and importlib.util.find_spec("numba") is not None)


def rmsprop_kernel(dtype):
    """The compiled :func:`rmsprop_update` for float32 arrays where ENABLED, else None."""
    return _compiled()[2] if ENABLED and dtype == np.float32 else None


def adam_kernel(dtype):
    """The compiled :func:`adam_update` for float32 or float64 arrays where ENABLED, else
    None. float64 too: it has no approximation, only fastmath's reordering (a few ulps)."""
    return _compiled()[7] if ENABLED and dtype in (np.float32, np.float64) else None


def onehot_kernel(dtype):
    """The compiled :func:`onehot_backward` for float32 or float64 arrays where ENABLED,
    else None. float64 too: it only adds, with no approximation."""
    return _compiled()[3] if ENABLED and dtype in (np.float32, np.float64) else None


def transpose_kernel(dtype):
    """The compiled :func:`transpose_into` for float32 or float64 arrays where ENABLED, else None."""
    return _compiled()[4] if ENABLED and dtype in (np.float32, np.float64) else None


def panel_kernels(dtype):
    """The compiled (:func:`pack_panels`, :func:`from_panels`) for float32 or float64
    arrays where ENABLED, else None. They only move and add numbers."""
    return _compiled()[5:7] if ENABLED and dtype in (np.float32, np.float64) else None


def kernels(dtype):
    """The compiled (cell_forward, cell_backward) for float32 arrays where ENABLED, else None."""
    return _compiled()[:2] if ENABLED and dtype == np.float32 else None
