"""The three recurrent cells a CharRNN can stack, one small spec each.

Everything that differs between the LSTM, the GRU and the vanilla RNN lives
here, so the model, the checkpoints and the interop read one table instead of
branching on the cell's name::

    cell  gate blocks  layer parameters            state per layer   PyTorch module
    lstm  4 (i f g o)  Wx (D, 4H) Wh (H, 4H) b     (h, c)            nn.LSTM
    gru   3 (r z n)    Wx (D, 3H) Wh (H, 3H) bx bh (h,)              nn.GRU
    rnn   1            Wx (D, H)  Wh (H, H)  b     (h,)              nn.RNN(tanh)

The GRU keeps PyTorch's two biases: bh's n block sits inside r_t ⊙ (h Wh_n + bh_n),
so it is not the same as a bias added to bx (nn/gru.py). The LSTM and RNN add
both biases at the same place, so one b says it all.

A layer's state is always a tuple: (h, c) for the LSTM, (h,) for the others.
``forward``/``backward`` give both engines one signature per cell::

    forward(x, state, weights, ws) -> h (T, N, H), final state tuple, cache
    backward(dh, cache, ws) -> dx (None for int ids), grads tuple in ``weights`` order

where ``weights`` are the layer's parameters in ``names`` order.
"""
from typing import Callable, NamedTuple

import numpy as np

from . import nn
from .engine import gru as fast_gru
from .engine import lstm as fast_lstm
from .engine import rnn as fast_rnn
from .nn import gate_slice
from .nn.zoneout import (HiddenZoneoutCache, ZoneoutCache, hidden_zoneout_backward,
                         hidden_zoneout_forward, lstm_zoneout_backward, lstm_zoneout_forward)


def glorot_uniform(rng, fan_in, fan_out):
    """U(-r, r), r = sqrt(6 / (fan_in + fan_out)): shape (fan_in, fan_out), float64."""
    r = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-r, r, size=(fan_in, fan_out))


def orthogonal(rng, rows, cols):
    """A (rows, cols) matrix with orthonormal rows (or columns, if rows > cols)."""
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))              # makes the result uniformly distributed
    return q if rows >= cols else q.T


class Cell(NamedTuple):
    name: str
    title: str            # for banners: "LSTM"
    gates: int            # G: Wx is (D, G·H)
    biases: tuple         # the bias names, each (G·H,)
    state: tuple          # what a layer's state holds: ("h", "c") or ("h",)
    shown: str            # what visualize draws per unit: "tanh(c)" or "h"
    forward: dict         # engine name -> forward(x, state, weights, ws)
    backward: dict        # engine name -> backward(dh, cache, ws)
    init_bias: Callable   # H -> the bias arrays, float64

    @property
    def names(self):
        """A layer's parameter names, without the layer number."""
        return ("Wx", "Wh") + self.biases


def _fast(forward, backward):
    """An engine layer pair: it builds its arrays in the workspace ``ws``, and
    skips dh0 = da_0 Whᵀ, which the model drops (truncated BPTT)."""
    return (lambda *args, ws, **zoneout: forward(*args, ws=ws, **zoneout),
            lambda dh, cache, ws: backward(dh, cache, ws=ws, want_dh0=False))


def _textbook(forward, backward):
    """A textbook layer pair: every array fresh, no workspace."""
    return (lambda *args, ws, **zoneout: forward(*args, **zoneout),
            lambda dh, cache, ws: backward(dh, cache))


def _textbook_lstm_forward(x, h0, c0, Wx, Wh, b, zoneout=None):
    """nn/lstm.py's layer, or nn/zoneout.py's when zoneout (d^c, d^h) is given."""
    if zoneout is None:
        return nn.lstm_forward(x, h0, c0, Wx, Wh, b)
    return lstm_zoneout_forward(x, h0, c0, Wx, Wh, b, dc=zoneout[0], dh=zoneout[1])


def _textbook_lstm_backward(dh, cache):
    if isinstance(cache, ZoneoutCache):
        return lstm_zoneout_backward(dh, cache)
    return nn.lstm_backward(dh, cache)


def _textbook_hidden(forward, backward, step_forward, step_backward, grad_names):
    """The GRU's or RNN's textbook pair, or nn/zoneout.py's around their step when zoneout
    (d^c, d^h) is given (d^c unused: they have no cell state)."""
    def fwd(x, h0, *weights, zoneout=None):
        if zoneout is None:
            return forward(x, h0, *weights)
        return hidden_zoneout_forward(step_forward, x, h0, weights, zoneout[1])

    def bwd(dh, cache):
        if isinstance(cache, HiddenZoneoutCache):
            return hidden_zoneout_backward(step_backward, grad_names, dh, cache)
        return backward(dh, cache)
    return fwd, bwd


def _cell(name, title, gates, biases, state, shown, layers, init_bias):
    """A Cell whose forward/backward adapt each engine's layer pair to one signature."""
    grads = ("dWx", "dWh") + tuple("d" + b for b in biases)

    def adapt(forward, backward):
        def fwd(x, layer_state, weights, ws, zoneout=None):
            # zoneout (d^c, d^h): the GRU and RNN use d^h (they have no c)
            kw = {} if zoneout is None else dict(zoneout=zoneout)
            h, final, cache = forward(x, *layer_state, *weights, ws=ws, **kw)
            return h, (final if len(state) == 2 else (final,)), cache    # always a tuple

        def bwd(dh, cache, ws):
            g = backward(dh, cache, ws)
            return g["dx"], tuple(g[k] for k in grads)
        return fwd, bwd
    pairs = {engine: adapt(*pair) for engine, pair in layers.items()}
    return Cell(name, title, gates, biases, state, shown, {e: p[0] for e, p in pairs.items()},
                {e: p[1] for e, p in pairs.items()}, init_bias)


def _lstm_bias(H):
    b = np.zeros(4 * H)
    b[gate_slice("f", H)] = 1.0          # remember by default (Jozefowicz et al. 2015)
    return (b,)


CELLS = {
    "lstm": _cell("lstm", "LSTM", 4, ("b",), ("h", "c"), "tanh(c)",
                  {"fast": _fast(fast_lstm.lstm_forward, fast_lstm.lstm_backward),
                   "reference": _textbook(_textbook_lstm_forward, _textbook_lstm_backward)},
                  _lstm_bias),
    "gru": _cell("gru", "GRU", 3, ("bx", "bh"), ("h",), "h",
                 {"fast": _fast(fast_gru.gru_forward, fast_gru.gru_backward),
                  "reference": _textbook(*_textbook_hidden(
                      nn.gru_forward, nn.gru_backward, nn.gru_step_forward, nn.gru_step_backward,
                      ("dWx", "dWh", "dbx", "dbh")))},
                 lambda H: (np.zeros(3 * H), np.zeros(3 * H))),
    "rnn": _cell("rnn", "vanilla RNN", 1, ("b",), ("h",), "h",
                 {"fast": _fast(fast_rnn.rnn_forward, fast_rnn.rnn_backward),
                  "reference": _textbook(*_textbook_hidden(
                      nn.rnn_forward, nn.rnn_backward, nn.rnn_step_forward, nn.rnn_step_backward,
                      ("dWx", "dWh", "db")))},
                 lambda H: (np.zeros(H),)),
}


def param_shapes(config):
    """{name: shape} of every parameter of the model ``config`` describes (a
    CharRNN.config dict; no ``cell`` key means an LSTM, as in old checkpoints, and
    no embedding_size or tie_weights key means one-hot input and an untied head)."""
    cell = CELLS[config.get("cell", "lstm")]
    V, H, L, G = config["vocab_size"], config["hidden_size"], config["num_layers"], cell.gates
    E = config.get("embedding_size") or 0
    shapes = {"E": (V, E)} if E else {}
    for l in range(L):
        D = (E or V) if l == 0 else H
        shapes.update({f"Wx{l}": (D, G * H), f"Wh{l}": (H, G * H)})
        shapes.update({f"{b}{l}": (G * H,) for b in cell.biases})
    if not config.get("tie_weights"):
        shapes["Wy"] = (H, V)
    shapes["by"] = (V,)
    return shapes


def init_params(cell, V, H, L, rng, embedding_size=0, tie_weights=False):
    """Host float64 initial parameters: Glorot-uniform Wx and Wy, orthogonal Wh
    (as Keras and PyTorch-style recipes), biases from the cell (zero, except the
    LSTM's forget block, 1).

    With an embedding (``embedding_size`` D > 0), E (V, D) is U(-0.1, 0.1), as
    AWD-LSTM's, and layer 0's Wx is (D, G·H). E is drawn after everything else,
    so a model without an embedding draws what it always drew. Tied
    (``tie_weights``), there is no Wy (it is drawn, then dropped, for the same
    reason): the head uses Eᵀ.
    """
    G, params = cell.gates, {}
    for l in range(L):
        D = (embedding_size or V) if l == 0 else H
        params[f"Wx{l}"] = glorot_uniform(rng, D, G * H)
        # Row-major, like every parameter: p.reshape(-1) is then a view, not a copy.
        params[f"Wh{l}"] = np.ascontiguousarray(orthogonal(rng, H, G * H))
        params.update({f"{b}{l}": value for b, value in zip(cell.biases, cell.init_bias(H))})
    params["Wy"] = glorot_uniform(rng, H, V)
    params["by"] = np.zeros(V)
    if tie_weights:
        del params["Wy"]
    if embedding_size:
        params = {"E": rng.uniform(-0.1, 0.1, size=(V, embedding_size)), **params}
    return params
