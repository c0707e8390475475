"""Zoneout (Krueger et al. 2016): at each step, some units keep their previous value.

For the LSTM, on the cell and on the hidden state, with their own rates z_c, z_h::

    c̃_t, h̃_t = the LSTM step of nn/lstm.py from (h_{t-1}, c_{t-1})  (N, H)
    d^c_t ~ Bernoulli(z_c),  d^h_t ~ Bernoulli(z_h)   entrywise       (N, H)  1: zone out
    c_t = d^c_t ⊙ c_{t-1} + (1 - d^c_t) ⊙ c̃_t                         (N, H)
    h_t = d^h_t ⊙ h_{t-1} + (1 - d^h_t) ⊙ h̃_t                         (N, H)

Dropout sets a unit to zero; zoneout sets it to what it was. A zoned-out unit
copies its state across the step unchanged, so the gradient flows back through
it unchanged too, as through the identity: zoneout regularises the recurrence
without ever cutting it. A fresh mask is drawn for every step (the masks are
(T, N, H)).

At evaluation d is replaced by its expectation, the rate itself:
c_t = z_c c_{t-1} + (1 - z_c) c̃_t (the same for h). So zoneout changes the
model that is sampled, not only how it is trained: every path that steps the
LSTM must mix in the previous state.

The masks are drawn by the caller (:func:`zoneout_mask`) and passed in; these
functions draw nothing.
"""
from typing import NamedTuple

import numpy as np

from ..backend import array_module, bernoulli_mask
from .affine import onehot
from .lstm import lstm_step_backward, lstm_step_forward


class ZoneoutCache(NamedTuple):
    steps: list      # per step: (the LSTM step's cache, d^c_t, d^h_t)
    ids: bool        # the input was int ids (one-hot rows): no dx

    @property
    def tanh_c(self):
        """(T, N, H) tanh(c̃_t) of every step (what visualize draws)."""
        return array_module(self.steps[0][0].tanh_c).stack([s[0].tanh_c for s in self.steps])


def zoneout_mask(rng, shape, z, dtype, xp=np):
    """d of ``shape`` (T, N, H): 1 with probability z (the unit zones out), else 0.

    rng : numpy.random.Generator on the host;  z : float in [0, 1)
    Returns the mask, or None when z == 0 (zoneout off).
    """
    if not 0.0 <= z < 1.0:
        raise ValueError(f"zoneout rate must be in [0, 1), got {z}")
    if z == 0:
        return None
    return bernoulli_mask(rng, shape, z, dtype, xp)             # d ~ Bernoulli(z)


def zoneout_forward(prev, new, d):
    """y = d ⊙ prev + (1 - d) ⊙ new.

    prev, new : (N, H) the state before the step and the one the step computed
    d : (N, H) 0/1 mask (training) or the rate z, a float (evaluation)
    Returns y (N, H) and the cache, d.
    """
    y = d * prev + (1 - d) * new                                # y = d ⊙ prev + (1 - d) ⊙ new
    return y, d


def zoneout_backward(dy, d):
    """∂L/∂prev and ∂L/∂new of y = d ⊙ prev + (1 - d) ⊙ new.

    dy : (N, H) ∂L/∂y;  d : the cache of :func:`zoneout_forward`
    Returns dprev (N, H), dnew (N, H).
    """
    dprev = d * dy                                              # y = d ⊙ prev + ...
    dnew = (1 - d) * dy                                         # ... + (1 - d) ⊙ new
    return dprev, dnew


def lstm_zoneout_forward(x, h0, c0, Wx, Wh, b, dc, dh):
    """The LSTM layer of nn/lstm.py with zoneout on c and h, over T steps from (h0, c0).

    x : (T, N, D) float, or (T, N) int ids standing for one-hot rows (Wx is then (V, 4H))
    h0, c0 : (N, H);  Wx : (D, 4H), Wh : (H, 4H), b : (4H,)
    dc, dh : the masks d^c, d^h, each (T, N, H) 0/1 (training), or the rates z_c,
        z_h as floats (evaluation: every step mixes by the rate)
    Returns h (T, N, H) h_1..h_T, the final state (h_T, c_T), and the cache.
    """
    xp = array_module(Wh)
    ids = x.dtype.kind in "iu"
    if ids:
        x = onehot(x, Wx.shape[0], Wx.dtype)                # (T, N, V)
    h, c, hs, steps = h0, c0, [], []
    for t, x_t in enumerate(x):
        dc_t = dc if np.isscalar(dc) else dc[t]
        dh_t = dh if np.isscalar(dh) else dh[t]
        h_new, c_new, cache = lstm_step_forward(x_t, h, c, Wx, Wh, b)   # c̃_t, h̃_t
        c, _ = zoneout_forward(c, c_new, dc_t)              # c_t = d^c ⊙ c_{t-1} + (1 - d^c) ⊙ c̃_t
        h, _ = zoneout_forward(h, h_new, dh_t)              # h_t = d^h ⊙ h_{t-1} + (1 - d^h) ⊙ h̃_t
        hs.append(h)
        steps.append((cache, dc_t, dh_t))
    return xp.stack(hs), (h, c), ZoneoutCache(steps, ids)


def lstm_zoneout_backward(dh, cache, dhT=None, dcT=None):
    """Backpropagation through time of :func:`lstm_zoneout_forward`, last step first.

    dh : (T, N, H) ∂L/∂h_t from the layer above;  cache : its cache
    dhT, dcT : (N, H) ∂L/∂h_T, ∂L/∂c_T from the next chunk; None means zeros
    Returns a dict: dx (T, N, D) (None for int ids), dh0, dc0 (N, H), dWx, dWh, db.
    """
    steps = cache.steps
    first = steps[0][0]
    xp = array_module(first.Wh)
    dh_next = xp.zeros_like(first.h_prev) if dhT is None else dhT
    dc_next = xp.zeros_like(first.c_prev) if dcT is None else dcT
    dWx, dWh = xp.zeros_like(first.Wx), xp.zeros_like(first.Wh)
    db = xp.zeros(first.Wh.shape[1], first.Wh.dtype)
    dx = [None] * len(steps)
    for t in reversed(range(len(steps))):
        step, dc_t, dh_t = steps[t]
        dh_prev_kept, dh_new = zoneout_backward(dh[t] + dh_next, dh_t)   # h_t = d^h ⊙ h_{t-1} + ...
        dc_prev_kept, dc_new = zoneout_backward(dc_next, dc_t)           # c_t = d^c ⊙ c_{t-1} + ...
        dx[t], dh_prev_step, dc_prev_step, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh_new, dc_new, step)                                        # through c̃_t, h̃_t
        dh_next = dh_prev_kept + dh_prev_step               # h_{t-1} reached both ways
        dc_next = dc_prev_kept + dc_prev_step               # c_{t-1} reached both ways
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dx = None if cache.ids else xp.stack(dx)
    return dict(dx=dx, dh0=dh_next, dc0=dc_next, dWx=dWx, dWh=dWh, db=db)


class HiddenZoneoutCache(NamedTuple):
    steps: list      # per step: (the cell step's cache, d^h_t)
    ids: bool        # the input was int ids (one-hot rows): no dx


def hidden_zoneout_forward(step_forward, x, h0, weights, dh):
    """A GRU or vanilla-RNN layer (nn/gru.py, nn/rnn.py) with zoneout on h, the only state
    they have, over T steps from h0::

        h̃_t = step_forward(x_t, h_{t-1}, *weights)           (N, H)  the cell's step
        h_t = d^h_t ⊙ h_{t-1} + (1 - d^h_t) ⊙ h̃_t            (N, H)

    step_forward : ``gru_step_forward`` or ``rnn_step_forward``
    x : (T, N, D) float, or (T, N) int ids standing for one-hot rows;  h0 : (N, H)
    weights : the cell's (Wx, Wh, biases...);  dh : masks (T, N, H) 0/1, or the rate z_h
    Returns h (T, N, H), the final state h_T (N, H), and the cache.
    """
    Wx, Wh = weights[:2]
    xp = array_module(Wh)
    ids = x.dtype.kind in "iu"
    if ids:
        x = onehot(x, Wx.shape[0], Wx.dtype)                # (T, N, V)
    h, hs, steps = h0, [], []
    for t, x_t in enumerate(x):
        d_t = dh if np.isscalar(dh) else dh[t]
        h_new, step = step_forward(x_t, h, *weights)        # h̃_t
        h, _ = zoneout_forward(h, h_new, d_t)               # h_t = d^h ⊙ h_{t-1} + (1 - d^h) ⊙ h̃_t
        hs.append(h)
        steps.append((step, d_t))
    return xp.stack(hs), h, HiddenZoneoutCache(steps, ids)


def hidden_zoneout_backward(step_backward, grad_names, dh, cache, dhT=None):
    """Backpropagation through time of :func:`hidden_zoneout_forward`.

    step_backward : ``gru_step_backward`` or ``rnn_step_backward`` (dh, cache) ->
        (dx, dh_prev, *the weights' gradients), named ``grad_names``
    dh : (T, N, H) ∂L/∂h_t from above;  dhT : (N, H) ∂L/∂h_T from the next chunk, or None
    Returns a dict: dx (None for int ids), dh0, and the weights' gradients.
    """
    steps = cache.steps
    xp = array_module(dh)
    dh_next = xp.zeros_like(dh[0]) if dhT is None else dhT
    sums, dx = None, [None] * len(steps)
    for t in reversed(range(len(steps))):
        step, d_t = steps[t]
        dh_prev_kept, dh_new = zoneout_backward(dh[t] + dh_next, d_t)    # h_t = d ⊙ h_{t-1} + ...
        dx[t], dh_prev_step, *grads = step_backward(dh_new, step)        # through h̃_t
        dh_next = dh_prev_kept + dh_prev_step                            # both ways to h_{t-1}
        sums = grads if sums is None else [s + g for s, g in zip(sums, grads)]
    dx = None if cache.ids else xp.stack(dx)
    return dict(dx=dx, dh0=dh_next, **dict(zip(grad_names, sums)))
