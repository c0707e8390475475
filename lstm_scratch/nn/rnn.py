"""The vanilla RNN: one tanh layer fed back into itself (PyTorch's ``nn.RNN``).

Equation, for one time step t and a batch of N rows::

    h_t = tanh(x_t Wx + h_{t-1} Wh + b)        (N, H)   hidden state, the layer's output

    x_t (N, D)   h_{t-1} (N, H)   Wx (D, H)   Wh (H, H)   b (H,)

This is min-char-rnn's cell and ``torch.nn.RNN(nonlinearity="tanh")``.
PyTorch's ``weight_ih`` is Wx.T, ``weight_hh`` is Wh.T, and its two biases
``bias_ih + bias_hh`` sum to b: they are added at the same place, so one
bias says the same thing (cs231n writes it this way too).

Backward, each line undoing the forward line named on its right::

    da_t     = dh_t ⊙ (1 - h_t²)      h_t = tanh(a_t), tanh' = 1 - tanh², from the output
    dx_t     = da_t Wxᵀ               a_t = x_t Wx + ...
    dWx      = x_tᵀ da_t
    dh_{t-1} = da_t Whᵀ               a_t = ... + h_{t-1} Wh
    dWh      = h_{t-1}ᵀ da_t
    db       = Σ_n da_t               a_t = ... + b, b broadcast over the N rows

Layout, stated once: time-major. x (T, N, D), h (T, N, H), so x[t] is one
contiguous (N, D) block. Any float dtype, kept; NumPy or CuPy arrays.

Truncated BPTT: :func:`rnn_forward` starts from a given h0 and returns the
final h_T; :func:`rnn_backward` takes the gradient of that final state, so
chunks compose exactly as one long sequence would.

This is the textbook: every function allocates and returns, for reading.
The fast layer is :mod:`lstm_scratch.engine.rnn`, tested equal to this one.
"""
from typing import NamedTuple

from ..backend import array_module
from .affine import onehot


class RNNStepCache(NamedTuple):
    x: object        # (N, D) x_t
    h_prev: object   # (N, H) h_{t-1}
    Wx: object       # (D, H)
    Wh: object       # (H, H)
    h: object        # (N, H) h_t: tanh' is taken from it


class RNNCache(NamedTuple):
    steps: tuple     # T step caches, one per time step
    ids: bool        # the input was int ids (one-hot rows): no dx


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    """One step of the vanilla RNN.

    x : (N, D), h_prev : (N, H), Wx : (D, H), Wh : (H, H), b : (H,), one float dtype
    Returns h (N, H) and the cache for :func:`rnn_step_backward`.
    """
    xp = array_module(x)
    h = xp.tanh(x @ Wx + h_prev @ Wh + b)                   # h_t = tanh(x_t Wx + h_{t-1} Wh + b)
    return h, RNNStepCache(x, h_prev, Wx, Wh, h)


def rnn_step_backward(dh, cache):
    """Backward of one step: ∂L/∂ of every input of :func:`rnn_step_forward`.

    dh : (N, H) ∂L/∂h_t (every use of h_t, summed)
    Returns dx (N, D), dh_prev (N, H), dWx (D, H), dWh (H, H), db (H,).
    Nothing passed in is modified.
    """
    x, h_prev, Wx, Wh, h = cache
    da = dh * (1 - h * h)                                   # h_t = tanh(a_t): tanh' = 1 - h_t²
    dx = da @ Wx.T                                          # a_t = x_t Wx + ...
    dWx = x.T @ da
    dh_prev = da @ Wh.T                                     # a_t = ... + h_{t-1} Wh
    dWh = h_prev.T @ da
    db = da.sum(axis=0)                                     # a_t = ... + b, over N rows
    return dx, dh_prev, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """Run the layer over T steps from h0.

    x : (T, N, D), h0 : (N, H), Wx : (D, H), Wh : (H, H), b : (H,), one float dtype
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
        h_t, step = rnn_step_forward(x_t, h_t, Wx, Wh, b)    # h_t feeds step t+1
        hs.append(h_t)
        steps.append(step)
    return xp.stack(hs), h_t, RNNCache(tuple(steps), ids)


def rnn_backward(dh, cache, dhT=None):
    """Backpropagate through all T steps.

    dh : (T, N, H) ∂L/∂h_t from above (zeros where unused)
    cache : from :func:`rnn_forward`
    dhT : (N, H) or None, ∂L/∂h_T from whatever used the final state (the next
        chunk, in truncated BPTT); None means zero
    Returns a dict with dx (T, N, D) (None for int ids), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,).
    Nothing passed in is modified.
    """
    xp = array_module(dh)
    Wx, Wh = cache.steps[0].Wx, cache.steps[0].Wh
    dWx, dWh = xp.zeros_like(Wx), xp.zeros_like(Wh)         # sums over the T steps
    db = xp.zeros(Wh.shape[0], Wh.dtype)
    dh_next = xp.zeros_like(dh[0]) if dhT is None else dhT  # ∂L/∂h_t through step t+1
    dxs = [None] * len(cache.steps)
    for t in reversed(range(len(cache.steps))):
        # h_t went up (dh[t]) and on to step t+1 (dh_next): both uses add.
        dxs[t], dh_next, dWx_t, dWh_t, db_t = rnn_step_backward(dh[t] + dh_next, cache.steps[t])
        dWx += dWx_t                                        # the same Wx, Wh, b at every step
        dWh += dWh_t
        db += db_t
    dx = None if cache.ids else xp.stack(dxs)
    return dict(dx=dx, dh0=dh_next, dWx=dWx, dWh=dWh, db=db)
