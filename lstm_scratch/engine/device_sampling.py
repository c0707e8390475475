"""Sampling on the GPU: the characters drawn on the device, many per host call.

The host path of ``sampling.generate_rows`` steps the model (engine/stepper.py),
copies the logits (N, V) to the host, draws there, and sends the ids back: one
round trip and a dozen launches per character, so on a GPU the host sets the pace.
Here the whole of a character runs on the device, in the kernels of
``device_sampling.cu`` (read that file: it holds the arithmetic):

    draw; for each layer: partial_products, <cell>_cell; partial_products, logits

2L + 3 launches that read and write only buffers allocated once, their scalars fixed
per request. So K characters can be captured once as a CUDA graph (CuPy's
``Stream.begin_capture``) and replayed as one launch; the ids come back K at a time,
one copy per chunk, which is also what streams the text to the terminal. Where
capture fails (a CuPy or driver without it), the same kernels run launch by launch,
still with no copy per character, and :func:`notice` says so once.

The draw follows the host's rules to the letter (sampling.next_char_weights,
sampling.nucleus, sampling.draw_rows): temperature, then top-k, then top-p, then the
inverse CDF; greedy is the first argmax. Its uniforms are the host's: PCG64, the
generator of ``default_rng(seed)``, written in the kernel, each row's state started
where ``rng.random(N)`` would take that row's number (:func:`row_states`). So a seed
gives the text the host gives, up to the rounding of the logits (a draw within
rounding of a boundary between two chars may fall either way).

No cuBLAS inside: CuPy's wrapper refuses graph capture (cupy #6290), and at batch 1
a GEMV of our own, its rows cut into slices (S of them, about 32 rows each) so that
each of N S GH threads sums 32 products, is what cuBLAS would do anyway. The prime
runs through the training layers first (stepping.prime_model).
"""
import functools
import os
from pathlib import Path

import numpy as np

from ..nn.gates import GATE_ORDER
from . import graphs
from .graphs import first_line, notice
from ..nn.gru import GRU_GATE_ORDER

SOURCE = Path(__file__).with_name("device_sampling.cu")
KERNELS = ("partial_products", "lstm_cell", "gru_cell", "rnn_cell", "logits", "draw",
           "pcg64_uniforms")
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
ROWS_PER_SLICE = 32         # products summed by one thread of partial_products
THREADS = 256               # per block
CHUNK = 64                  # characters per captured graph, and per copy to the host


def defines(dtype):
    """The prelude of #defines that device_sampling.cu reads: T and the gate positions."""
    names = {f"GATE_{g.upper()}": k for k, g in enumerate(GATE_ORDER)}
    names.update({f"GATE_{g.upper()}": k for k, g in enumerate(GRU_GATE_ORDER)})
    lines = [f"#define T {C_TYPES[np.dtype(dtype)]}"]
    lines += [f"#define {name} {k}" for name, k in names.items()]
    return "\n".join(lines) + "\n"


def source(dtype):
    """The CUDA source compiled for ``dtype`` (float32 or float64)."""
    return defines(dtype) + SOURCE.read_text()


@functools.lru_cache(maxsize=None)
def kernels(xp, dtype):
    """{name: kernel} of device_sampling.cu compiled for ``dtype`` on CuPy ``xp``."""
    module = xp.RawModule(code=source(dtype))
    return {name: module.get_function(name) for name in KERNELS}


def applies(model):
    """Why the device sampler cannot run ``model`` (a str), or None where it can: a CuPy
    model on the fast engine, float32 or float64 (``LSTM_SCRATCH_DEVICE_SAMPLING=0``
    turns it off)."""
    if model.backend.name != "cupy":
        return "the model is on NumPy"
    if model.engine != "fast":
        return "the reference engine steps as the textbook is written"
    if os.environ.get("LSTM_SCRATCH_DEVICE_SAMPLING", "1") == "0":
        return "LSTM_SCRATCH_DEVICE_SAMPLING=0"
    if not hasattr(model.backend.xp, "RawModule"):
        return "this CuPy has no RawModule"
    return None


MASK64, MASK128 = (1 << 64) - 1, (1 << 128) - 1


def row_states(rng, N):
    """PCG64 states (N, 2) uint64 (hi, lo) and the LCG (A, C) of N steps, so that row k
    at step t draws what ``rng.random(N)`` gives it there: the (tN + k + 1)-th output.
    rng : numpy Generator on PCG64 (``default_rng``), not advanced here."""
    bits = rng.bit_generator
    if type(bits).__name__ != "PCG64":
        raise TypeError(f"device sampling follows PCG64, not {type(bits).__name__}")
    state = bits.state["state"]
    s, inc = state["state"], state["inc"]
    M = 0x2360ED051FC65DA44385DF649FCCF645                 # PCG64's multiplier
    states = np.empty((N, 2), np.uint64)
    A, C = 1, 0                                            # the LCG of k steps: s A + C
    for k in range(N):
        A, C = A * M & MASK128, (C * M + inc) & MASK128
        s_k = (s * A + C) & MASK128
        states[k] = s_k >> 64, s_k & MASK64
    return states, (A, C)                                  # after N steps: the LCG of N


def split128(x):
    """(hi, lo) uint64 NumPy scalars of a 128-bit int."""
    return np.uint64(x >> 64), np.uint64(x & MASK64)


def launch(kernel, n, args):
    """``kernel`` over n threads' worth of grid-stride work, scalars typed as the source."""
    blocks = max(1, min((n + THREADS - 1) // THREADS, 65535))
    kernel((blocks,), (THREADS,), args)


class DeviceSampler:
    """N rows of generation of one CharRNN on CuPy, drawn on the device.

    model : CharRNN on CuPy;  state : its state, N rows (copied);  z : (N, V) logits
    for the first char (the prime's);  length : chars each row will take;  then the
    draw's options as in ``sampling.generate_rows`` (checked there) and ``rng``, the
    host's Generator (its draws are the device's: :func:`row_states`).
    ``chunks()`` yields host int arrays (N, k), k <= CHUNK: the next k chars of every row.
    """

    def __init__(self, model, state, z, length, temperature=1.0, greedy=False, top_k=None,
                 top_p=None, rng=None, chunk=CHUNK):
        xp, P, dtype = model.backend.xp, model.params, model.dtype
        self.xp, self.cell, self.length = xp, model.cell, int(length)
        self.k = kernels(xp, dtype)
        N, V, H, L = z.shape[0], model.vocab_size, model.hidden_size, model.num_layers
        self.N, self.V, self.H, self.L = N, V, H, L
        self.chunk = max(1, min(int(chunk), self.length))
        G = {"lstm": 4, "gru": 3, "rnn": 1}[model.cell]
        self.GH = G * H
        # layer 0's input sums per char: one-hot picks a row of Wx0, an embedding E Wx0
        bias0 = P["b0"] if model.cell != "gru" else P["bx0"]
        table = P["Wx0"] if not model.embedding_size else P["E"] @ P["Wx0"]
        self.table = xp.ascontiguousarray(table + bias0, dtype=dtype)          # (V, GH)
        self.Wy = xp.ascontiguousarray(model.head_weight(), dtype=dtype)       # (H, V)
        self.by = xp.ascontiguousarray(P["by"], dtype=dtype)                   # (V,)
        self.layers = [dict(Wx=xp.ascontiguousarray(P[f"Wx{l}"]),
                            Wh=xp.ascontiguousarray(P[f"Wh{l}"]),
                            b=P[f"b{l}"] if model.cell != "gru" else P[f"bx{l}"],
                            bh=P.get(f"bh{l}")) for l in range(L)]
        self.S_h = -(-H // ROWS_PER_SLICE)                  # slices of a product over h
        self.h = [xp.array(layer[0], dtype=dtype) for layer in state]          # (N, H) each
        self.c = [xp.array(layer[1], dtype=dtype) for layer in state] if model.cell == "lstm" else None
        self.zoneout = tuple(dtype.type(getattr(model, f"zoneout_{s}")) for s in ("cell", "hidden"))
        self.part = xp.empty(N * 2 * self.S_h * max(self.GH, V), dtype)        # the largest use
        self.z = xp.array(z, dtype=dtype)                                      # (N, V)
        self.w = xp.empty((N, V), np.float64)               # the draw's weights
        self.ids = xp.zeros(N, np.int32)
        self.step = xp.zeros(N, np.int64)                   # chars drawn, per row
        self.out_len = -(-self.length // self.chunk) * self.chunk
        self.out = xp.zeros((N, self.out_len), np.int32)
        states, (A, C) = row_states(np.random.default_rng() if rng is None else rng, N)
        self.rng = xp.asarray(states)                       # (N, 2): each row's PCG64
        no_k = top_k is None or top_k >= V
        self.draw_args = (self.z, np.int32(V), np.int32(N), np.int32(bool(greedy)),
                          np.float64(temperature), np.int32(V if no_k else top_k),
                          np.float64(1.0 if top_p is None else top_p), self.rng,
                          *split128(A), *split128(C), self.step,
                          self.ids, self.out, np.int64(self.out_len), self.w)
        self.graph = None

    # -- one character, as 2L + 3 launches
    def _products(self, x, Wx, D, h, Wh, cols):
        """part (N, sx + S_h, cols): the slices of [x | h] [Wx ; Wh] (x None: h Wh only)."""
        sx = 0 if x is None else -(-D // ROWS_PER_SLICE)
        S = sx + self.S_h
        x = h if x is None else x
        Wx = Wh if Wx is None else Wx
        launch(self.k["partial_products"], self.N * S * cols,
               (x, Wx, np.int32(D), np.int32(sx), h, Wh, np.int32(self.H), np.int32(S),
                np.int32(cols), np.int32(self.N), self.part))
        return sx, S

    def advance(self):
        """The stack's step with the chars in ``ids``: h, c and z updated in place."""
        N, H = self.N, self.H
        for l, p in enumerate(self.layers):
            below = None if l == 0 else self.h[l - 1]
            sx, S = self._products(below, None if l == 0 else p["Wx"], H, self.h[l], p["Wh"],
                                   self.GH)
            base, lookup = (self.table, 1) if l == 0 else (p["b"], 0)
            if self.cell == "lstm":
                args = (self.part, np.int32(S), base, self.ids, np.int32(lookup), np.int32(H),
                        np.int32(N), *self.zoneout, self.h[l], self.c[l])
            elif self.cell == "gru":
                args = (self.part, np.int32(S), np.int32(sx), base, self.ids, np.int32(lookup),
                        p["bh"], np.int32(H), np.int32(N), self.zoneout[1], self.h[l])
            else:
                args = (self.part, np.int32(S), base, self.ids, np.int32(lookup), np.int32(H),
                        np.int32(N), self.zoneout[1], self.h[l])
            launch(self.k[f"{self.cell}_cell"], N * H, args)
        _, S = self._products(None, None, H, self.h[-1], self.Wy, self.V)
        launch(self.k["logits"], N * self.V, (self.part, np.int32(S), self.by, np.int32(self.V),
                                              np.int32(N), self.z))

    def char(self):
        """One character: draw from z, then advance the stack on it."""
        launch(self.k["draw"], self.N, self.draw_args)
        self.advance()

    # -- many characters
    def _warm_up(self, stream):
        """Launch every kernel once with N = 0 (no work), so that none is loaded for the
        first time inside the capture (lazy loading, CUDA_MODULE_LOADING=LAZY)."""
        N, self.N = self.N, 0
        draw_args, self.draw_args = self.draw_args, (self.draw_args[:2] + (np.int32(0),)
                                                     + self.draw_args[3:])
        try:
            with stream:
                self.char()
        finally:
            self.N, self.draw_args = N, draw_args

    def _capture(self, stream):
        """A CUDA graph of ``chunk`` characters, or None where capture fails (said once)."""
        graph = None
        try:
            self._warm_up(stream)
            with stream:
                stream.begin_capture()
                try:
                    for _ in range(self.chunk):
                        self.char()
                finally:
                    graph = stream.end_capture()
        except Exception as exc:       # no capture on this CuPy or driver, or a refusal
            notice(f"sampling launches kernel by kernel: no CUDA graph ({first_line(exc)})")
            return None
        return graph

    def chunks(self):
        """Yield host arrays (N, k): the next k chars of every row, ``length`` in all.
        The work runs on a stream of the sampler's own, entered only around each chunk's
        launches and copy (never across a yield: the caller's own work stays on its stream)."""
        xp = self.xp
        xp.cuda.Device().synchronize()           # the prime's work, on the default stream
        stream = xp.cuda.Stream(non_blocking=True)
        self.graph = self._capture(stream) if graphs.enabled(xp) else None
        for start in range(0, self.length, self.chunk):
            with stream:
                if self.graph is not None:
                    try:
                        self.graph.launch(stream)
                    except Exception as exc:      # the driver will not run it: launches
                        notice(f"sampling launches kernel by kernel: the CUDA graph failed "
                               f"to launch ({first_line(exc)})")
                        self.graph = None
                if self.graph is None:
                    for _ in range(self.chunk):
                        self.char()
                stop = min(start + self.chunk, self.length)
                ids = self.out[:, start:stop].get(stream=stream)   # waits for the chunk
            yield ids
