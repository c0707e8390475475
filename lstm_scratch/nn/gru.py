"""The GRU, exactly as PyTorch's ``nn.GRU`` computes it.

Equations, for one time step t and a batch of N rows::

    ax_t = x_t Wx + bx                       (N, 3H)  input sums, blocks r | z | n
    ah_t = h_{t-1} Wh + bh                   (N, 3H)  hidden sums, blocks r | z | n
    r_t  = σ(ax_r + ah_r)                    (N, H)   reset gate
    z_t  = σ(ax_z + ah_z)                    (N, H)   update gate
    n_t  = tanh(ax_n + r_t ⊙ ah_n)            (N, H)   candidate
    h_t  = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}     (N, H)   hidden state, the layer's output

    x_t (N, D)   h_{t-1} (N, H)   Wx (D, 3H)   Wh (H, 3H)   bx (3H,)   bh (3H,)

Written out, n_t = tanh(x_t W_in + b_in + r_t ⊙ (h_{t-1} W_hn + b_hn)): the
reset gate multiplies the hidden sum *with its bias* b_hn (PyTorch's and
cuDNN's form; the 2014 paper applies r before the product, r ⊙ h_{t-1}).

**Two biases.** b_hn sits inside r_t ⊙ (...), so it cannot be merged with
b_in as the LSTM's two biases are. We keep both of PyTorch's vectors whole,
bx = ``bias_ih`` and bh = ``bias_hh``, so weights move one to one:
``weight_ih`` is Wx.T, ``weight_hh`` is Wh.T, nothing is summed or split.
For r and z only bx + bh matters (their gradients dbx and dbh are equal
there); for n they are different parameters.

**Fused gates.** The three blocks sit side by side in PyTorch's order r, z, n,
written once in :data:`GRU_GATE_ORDER`; slice with :func:`split_gru_gates`
and join with :func:`join_gru_gates`, never by hand.

Backward, each line undoing the forward line named on its right::

    dn      = dh_t ⊙ (1 - z_t)              h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    dz      = dh_t ⊙ (h_{t-1} - n_t)
    dh_{t-1} = dh_t ⊙ z_t                    (+ the path through ah_t, below)
    dan     = dn ⊙ (1 - n_t²)               n_t = tanh(an),  an = ax_n + r_t ⊙ ah_n
    dr      = dan ⊙ ah_n
    dah_n   = dan ⊙ r_t
    daz     = dz ⊙ z_t (1 - z_t)            z_t = σ(ax_z + ah_z), σ' = σ(1 - σ)
    dar     = dr ⊙ r_t (1 - r_t)            r_t = σ(ax_r + ah_r)
    dax     = dar | daz | dan               ax_r, ax_z, ax_n enter r, z, an plainly
    dah     = dar | daz | dah_n             ah_n enters through r_t ⊙ ah_n
    dx_t = dax Wxᵀ,  dWx = x_tᵀ dax,  dbx = Σ_n dax              ax_t = x_t Wx + bx
    dh_{t-1} += dah Whᵀ,  dWh = h_{t-1}ᵀ dah,  dbh = Σ_n dah      ah_t = h_{t-1} Wh + bh

Layout, stated once: time-major. x (T, N, D), h (T, N, H). Any float dtype,
kept; NumPy or CuPy arrays. Truncated BPTT as in :mod:`.rnn`: the forward
starts from h0 and returns h_T, the backward accepts ∂L/∂h_T.

This is the textbook: every function allocates and returns, for reading.
The fast layer is :mod:`lstm_scratch.engine.gru`, tested equal to this one.
"""
from typing import NamedTuple

from ..backend import array_module
from .affine import onehot
from .activations import sigmoid

GRU_GATE_ORDER = ("r", "z", "n")    # PyTorch's nn.GRU: weight_ih rows are W_ir | W_iz | W_in


def gru_gate_slice(name, H):
    """The column slice of gate ``name`` in a fused (..., 3H) block."""
    k = GRU_GATE_ORDER.index(name)
    return slice(k * H, (k + 1) * H)


def split_gru_gates(a):
    """Views ``(r, z, n)`` of a fused (..., 3H) block, each (..., H)."""
    H = a.shape[-1] // 3
    return tuple(a[..., gru_gate_slice(name, H)] for name in "rzn")


def join_gru_gates(r, z, n):
    """The fused (..., 3H) block of three (..., H) ones: the inverse of :func:`split_gru_gates`."""
    xp = array_module(r)
    blocks = dict(r=r, z=z, n=n)
    return xp.concatenate([blocks[name] for name in GRU_GATE_ORDER], axis=-1)


class GRUStepCache(NamedTuple):
    x: object        # (N, D) x_t
    h_prev: object   # (N, H) h_{t-1}
    Wx: object       # (D, 3H)
    Wh: object       # (H, 3H)
    r: object        # (N, H) r_t
    z: object        # (N, H) z_t
    n: object        # (N, H) n_t
    ah_n: object     # (N, H) h_{t-1} W_hn + b_hn, which r_t multiplies


class GRUCache(NamedTuple):
    steps: tuple     # T step caches, one per time step
    ids: bool        # the input was int ids (one-hot rows): no dx


def gru_step_forward(x, h_prev, Wx, Wh, bx, bh):
    """One step of the GRU.

    x : (N, D), h_prev : (N, H), Wx : (D, 3H), Wh : (H, 3H), bx, bh : (3H,), one float dtype
    Returns h (N, H) and the cache for :func:`gru_step_backward`.
    """
    xp = array_module(x)
    ax_r, ax_z, ax_n = split_gru_gates(x @ Wx + bx)         # ax_t = x_t Wx + bx
    ah_r, ah_z, ah_n = split_gru_gates(h_prev @ Wh + bh)    # ah_t = h_{t-1} Wh + bh
    r = sigmoid(ax_r + ah_r)                                # r_t = σ(ax_r + ah_r)
    z = sigmoid(ax_z + ah_z)                                # z_t = σ(ax_z + ah_z)
    n = xp.tanh(ax_n + r * ah_n)                            # n_t = tanh(ax_n + r_t ⊙ ah_n)
    h = (1 - z) * n + z * h_prev                            # h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    return h, GRUStepCache(x, h_prev, Wx, Wh, r, z, n, ah_n)


def gru_step_backward(dh, cache):
    """Backward of one step: ∂L/∂ of every input of :func:`gru_step_forward`.

    dh : (N, H) ∂L/∂h_t (every use of h_t, summed)
    Returns dx (N, D), dh_prev (N, H), dWx (D, 3H), dWh (H, 3H), dbx (3H,), dbh (3H,).
    Nothing passed in is modified.
    """
    x, h_prev, Wx, Wh, r, z, n, ah_n = cache
    # h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    dh_prev = dh * z                                        # the direct path; ah_t adds below
    # n_t = tanh(an), an = ax_n + r_t ⊙ ah_n: tanh' = 1 - n_t²
    dan = dn * (1 - n * n)
    dr = dan * ah_n
    dah_n = dan * r
    # z_t = σ(ax_z + ah_z), r_t = σ(ax_r + ah_r): σ' = σ(1 - σ)
    daz = dz * z * (1 - z)
    dar = dr * r * (1 - r)
    dax = join_gru_gates(dar, daz, dan)                     # (N, 3H) ∂L/∂ax_t
    dah = join_gru_gates(dar, daz, dah_n)                   # (N, 3H) ∂L/∂ah_t
    # ax_t = x_t Wx + bx
    dx = dax @ Wx.T
    dWx = x.T @ dax
    dbx = dax.sum(axis=0)
    # ah_t = h_{t-1} Wh + bh
    dh_prev = dh_prev + dah @ Wh.T
    dWh = h_prev.T @ dah
    dbh = dah.sum(axis=0)
    return dx, dh_prev, dWx, dWh, dbx, dbh


def gru_forward(x, h0, Wx, Wh, bx, bh):
    """Run the layer over T steps from h0.

    x : (T, N, D), h0 : (N, H), Wx : (D, 3H), Wh : (H, 3H), bx, bh : (3H,), one float dtype
    x may also be (T, N) int ids standing for one-hot rows (then Wx is (V, ·)):
    the one-hot (T, N, V) floats are built here, the plainest form.
    Returns h (T, N, H) the outputs h_1..h_T, the final state h_T (N, H), and the cache.
    """
    xp = array_module(Wh)
    ids = x.dtype.kind in "iu"
    if ids:
        x = onehot(x, Wx.shape[0], Wx.dtype)                # (T, N, V)
    h_t, hs, steps = h0, [], []
    for x_t in x:
        h_t, step = gru_step_forward(x_t, h_t, Wx, Wh, bx, bh)   # h_t feeds step t+1
        hs.append(h_t)
        steps.append(step)
    return xp.stack(hs), h_t, GRUCache(tuple(steps), ids)


def gru_backward(dh, cache, dhT=None):
    """Backpropagate through all T steps.

    dh : (T, N, H) ∂L/∂h_t from above (zeros where unused)
    cache : from :func:`gru_forward`
    dhT : (N, H) or None, ∂L/∂h_T from whatever used the final state (the next
        chunk, in truncated BPTT); None means zero
    Returns a dict with dx (T, N, D) (None for int ids), dh0 (N, H), dWx (D, 3H), dWh (H, 3H),
    dbx (3H,), dbh (3H,). Nothing passed in is modified.
    """
    xp = array_module(dh)
    Wx, Wh = cache.steps[0].Wx, cache.steps[0].Wh
    dWx, dWh = xp.zeros_like(Wx), xp.zeros_like(Wh)         # sums over the T steps
    dbx, dbh = xp.zeros(Wh.shape[1], Wh.dtype), xp.zeros(Wh.shape[1], Wh.dtype)
    dh_next = xp.zeros_like(dh[0]) if dhT is None else dhT  # ∂L/∂h_t through step t+1
    dxs = [None] * len(cache.steps)
    for t in reversed(range(len(cache.steps))):
        # h_t went up (dh[t]) and on to step t+1 (dh_next): both uses add.
        dxs[t], dh_next, dWx_t, dWh_t, dbx_t, dbh_t = gru_step_backward(dh[t] + dh_next,
                                                                        cache.steps[t])
        dWx += dWx_t                                        # the same weights at every step
        dWh += dWh_t
        dbx += dbx_t
        dbh += dbh_t
    dx = None if cache.ids else xp.stack(dxs)
    return dict(dx=dx, dh0=dh_next, dWx=dWx, dWh=dWh, dbx=dbx, dbh=dbh)
