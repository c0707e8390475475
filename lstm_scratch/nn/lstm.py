"""The LSTM, one step and then one layer over time: the textbook.

Equations (PyTorch's notation), for one time step t and a batch of N rows::

    a_t = x_t Wx + h_{t-1} Wh + b      (N, 4H)  pre-activations, blocks i|f|g|o
    i_t = σ(a_i)                       (N, H)   input gate
    f_t = σ(a_f)                       (N, H)   forget gate
    g_t = tanh(a_g)                    (N, H)   cell candidate
    o_t = σ(a_o)                       (N, H)   output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t      (N, H)   cell state
    h_t = o_t ⊙ tanh(c_t)               (N, H)   hidden state, the layer's output

where a_i, a_f, a_g, a_o are the four (N, H) column blocks of a_t, in the
order of :mod:`.gates` (PyTorch's: i, f, g, o). Weights are fused:
Wx (D, 4H), Wh (H, 4H), b (4H,). PyTorch's ``weight_ih`` is Wx.T,
``weight_hh`` is Wh.T, and its two biases sum to b.

Layout, stated once: time-major. x (T, N, D), h (T, N, H), so x[t] is one
(N, D) block.

Every function here allocates what it returns and changes none of its
arguments. This is the code to read; ``lstm_scratch.engine`` computes the
same numbers faster (fused kernels, reused buffers) and is tested equal to
this, to 1e-10 in float64 (tests/test_engine_lstm.py).
"""
from typing import NamedTuple

from ..backend import array_module
from .activations import sigmoid
from .affine import onehot
from .gates import join_gates, split_gates


class LSTMStepCache(NamedTuple):
    x: object        # (N, D) x_t
    h_prev: object   # (N, H) h_{t-1}
    c_prev: object   # (N, H) c_{t-1}
    Wx: object       # (D, 4H)
    Wh: object       # (H, 4H)
    i: object        # (N, H) the gates, after their nonlinearity
    f: object
    g: object
    o: object
    tanh_c: object   # (N, H) tanh(c_t)


def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):
    """One time step of the cell equations.

    x : (N, D) x_t;  h_prev, c_prev : (N, H) h_{t-1}, c_{t-1}
    Wx : (D, 4H), Wh : (H, 4H), b : (4H,); all of one float dtype (kept)
    Returns h (N, H) h_t, c (N, H) c_t, and the cache for the backward.
    """
    xp = array_module(Wh)
    a = x @ Wx + h_prev @ Wh + b            # a_t = x_t Wx + h_{t-1} Wh + b      (N, 4H)
    a_i, a_f, a_g, a_o = split_gates(a)     # the four (N, H) blocks of a_t
    i = sigmoid(a_i)                        # i_t = σ(a_i)
    f = sigmoid(a_f)                        # f_t = σ(a_f)
    g = xp.tanh(a_g)                        # g_t = tanh(a_g)
    o = sigmoid(a_o)                        # o_t = σ(a_o)
    c = f * c_prev + i * g                  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    tanh_c = xp.tanh(c)                     #                    (kept for the backward)
    h = o * tanh_c                          # h_t = o_t ⊙ tanh(c_t)
    return h, c, LSTMStepCache(x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c)


def lstm_step_backward(dh, dc, cache):
    """One time step back, in the reverse order of the forward's lines.

    dh : (N, H) ∂L/∂h_t, everything that reached h_t (the layer above, and step t+1)
    dc : (N, H) ∂L/∂c_t through c_{t+1} only (zeros for the last step)
    cache : from :func:`lstm_step_forward`
    Returns dx (N, D), dh_prev (N, H), dc_prev (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,).

    σ' and tanh' come from the outputs the forward kept: σ'(a) = σ(1 - σ),
    tanh'(a) = 1 - tanh².
    """
    x, h_prev, c_prev, Wx, Wh, i, f, g, o, tanh_c = cache
    xp = array_module(Wh)
    do = dh * tanh_c                        # h_t = o_t ⊙ tanh(c_t)
    dc_t = dc + dh * o * (1 - tanh_c ** 2)  # h_t = o_t ⊙ tanh(c_t); + dc: all of ∂L/∂c_t
    df = dc_t * c_prev                      # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    dc_prev = dc_t * f                      # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    di = dc_t * g                           # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    dg = dc_t * i                           # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    da_o = do * o * (1 - o)                 # o_t = σ(a_o)
    da_g = dg * (1 - g ** 2)                # g_t = tanh(a_g)
    da_f = df * f * (1 - f)                 # f_t = σ(a_f)
    da_i = di * i * (1 - i)                 # i_t = σ(a_i)
    da = join_gates(da_i, da_f, da_g, da_o)  # (N, 4H): a_i | a_f | a_g | a_o are blocks of a_t
    dx = da @ Wx.T                          # a_t = x_t Wx + h_{t-1} Wh + b
    dh_prev = da @ Wh.T                     # a_t = x_t Wx + h_{t-1} Wh + b  (this use only)
    dWx = x.T @ da                          # a_t = x_t Wx + h_{t-1} Wh + b
    dWh = h_prev.T @ da                     # a_t = x_t Wx + h_{t-1} Wh + b
    db = xp.sum(da, axis=0)                 # a_t = x_t Wx + h_{t-1} Wh + b  (b added to each row)
    return dx, dh_prev, dc_prev, dWx, dWh, db


class LSTMCache(NamedTuple):
    steps: list      # T caches of lstm_step_forward, one per time step
    ids: bool        # the input was int ids (one-hot rows): no dx

    @property
    def tanh_c(self):
        """(T, N, H) tanh(c_t) of every step (what visualize draws)."""
        return array_module(self.steps[0].tanh_c).stack([s.tanh_c for s in self.steps])


def lstm_forward(x, h0, c0, Wx, Wh, b):
    """Run the cell over T steps from (h0, c0).

    x : (T, N, D) float; or (T, N) int ids standing for one-hot rows (then
        Wx is (V, 4H)): the one-hot (T, N, V) floats are built here, the
        plainest form (the engine gathers rows of Wx instead, nn/affine.py)
    h0, c0 : (N, H) the initial state (the previous chunk's final state, or zeros)
    Wx : (D, 4H), Wh : (H, 4H), b : (4H,)
    Returns h (T, N, H) h_1..h_T, the final state (h_T, c_T) each (N, H), and the cache.
    """
    xp = array_module(Wh)
    ids = x.dtype.kind in "iu"
    if ids:
        x = onehot(x, Wx.shape[0], Wx.dtype)                # (T, N, V)
    h, c, hs, steps = h0, c0, [], []
    for x_t in x:
        h, c, cache = lstm_step_forward(x_t, h, c, Wx, Wh, b)
        hs.append(h)
        steps.append(cache)
    return xp.stack(hs), (h, c), LSTMCache(steps, ids)


def lstm_backward(dh, cache, dhT=None, dcT=None):
    """Backpropagation through time: the steps of :func:`lstm_forward`, last first.

    dh : (T, N, H) ∂L/∂h_t from the layer above (zeros where h_t was not used)
    cache : from :func:`lstm_forward`
    dhT, dcT : (N, H) ∂L/∂h_T and ∂L/∂c_T from whatever used the final state
        (the next chunk, in truncated BPTT); None means zeros
    Returns a dict: dx (T, N, D) (None for int ids), dh0, dc0 (N, H),
    dWx (D, 4H), dWh (H, 4H), db (4H,).
    """
    first = cache.steps[0]
    xp = array_module(first.Wh)
    dh_next = xp.zeros_like(first.h_prev) if dhT is None else dhT    # ∂L/∂h_t through step t+1
    dc_next = xp.zeros_like(first.c_prev) if dcT is None else dcT    # ∂L/∂c_t through c_{t+1}
    dWx, dWh = xp.zeros_like(first.Wx), xp.zeros_like(first.Wh)
    db = xp.zeros(first.Wh.shape[1], first.Wh.dtype)
    dx = [None] * len(cache.steps)
    for t in reversed(range(len(cache.steps))):
        # h_t feeds the layer above and step t+1: its gradients add up
        dx[t], dh_next, dc_next, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[t] + dh_next, dc_next, cache.steps[t])
        dWx += dWx_t                                        # the same Wx, Wh, b at every step
        dWh += dWh_t
        db += db_t
    dx = None if cache.ids else xp.stack(dx)
    return dict(dx=dx, dh0=dh_next, dc0=dc_next, dWx=dWx, dWh=dWh, db=db)
