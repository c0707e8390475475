"""CharRNN: stacked recurrent layers (LSTM, GRU or vanilla RNN), dropout after
each, an affine + softmax head. CharLSTM is CharRNN with cell="lstm".

For inputs ids (B, T) and L layers (layout inside is time-major, (T, B, ·))::

    x⁰ = ids                                  (T, B)     one-hot rows, never built
      or x⁰ = dropout(Ẽ[ids], p_in)           (T, B, D)  with an embedding E (V, D)
    hˡ = cell(xˡ; Wxˡ, W̃hˡ, biasesˡ)          (T, B, H)  l = 0 .. L-1, see nn/{lstm,gru,rnn}.py
    xˡ⁺¹ = dropout(hˡ, p)                     (T, B, H)  (p_out for the top layer)
    z = xᴸ Wy + by                            (T, B, V)  logits (Wy = Eᵀ when tied)
    L = mean cross-entropy(softmax(z), targets)

The regularisers, all off by default and all for training only (regularisers.py
draws their masks; at evaluation every mask is 1): W̃hˡ = Whˡ ⊙ Mˡ is weight
drop (nn/weight_drop.py), Ẽ = E ⊙ m drops whole rows of E (embedding dropout,
nn/embedding.py), and with ``locked_dropout`` every dropout mask is one per
sequence, the same at every t (nn/locked_dropout.py). Tying (``tie_weights``)
makes the head's Wy the embedding's Eᵀ, which needs D = H; the head uses E as
it is, never the rows embedding dropout dropped (as AWD-LSTM's decoder does).

Targets (B, T) make every step a prediction (many-to-many, the stream
mode). Targets (B,) use the last step only (many-to-one, the Keras recipe):
then the top layer's dropout and the head see only h_T.

Parameters, in ``model.params`` (the live arrays: change one in place and
the model changes)::

    E   (V, D)                              the embedding, when embedding_size D > 0
    Wx0 (V, GH)  Wh0 (H, GH)  b0 (GH,)      layer 0, fed one-hot characters (Wx0 (D, GH)
                                            when fed the embedding)
    Wxl (H, GH)  Whl (H, GH)  bl (GH,)      layer l > 0
    Wy  (H, V)   by  (V,)                   head (no Wy when tied: the head uses Eᵀ)

with G gate blocks: 4 for the LSTM, 3 for the GRU (which has two biases,
bxl and bhl, as PyTorch's nn.GRU), 1 for the RNN. :func:`param_shapes` lists
them for a config; the per-cell facts are in cells.py.

State: a list of L tuples, one per layer, each array (B, H): (h, c) for the
LSTM, (h,) for the GRU and the RNN. Everything that carries state (training,
checkpoints, sampling, beam search) passes these tuples through unopened.

Initialisation (as Keras's LSTM, GRU and Dense): Wx and Wy Glorot-uniform,
Wh orthogonal, biases zero except the LSTM's forget-gate block of each b,
which is 1.0 so that early in training the cell keeps its memory (Jozefowicz
et al. 2015). Weights are drawn on the host with NumPy and then moved, so CPU
and GPU models with the same seed start identical.

Two engines compute the same layers: ``engine="reference"`` calls the
textbook, :mod:`lstm_scratch.nn`, as written (every array fresh: step
through it in a debugger); ``engine="fast"`` (the default) calls
:mod:`lstm_scratch.engine`, which writes into reused buffers and runs fused
kernels. Training, evaluation, ``run``/``logits`` and sampling all follow the
engine (the inference half, ``run``, ``logits`` and ``step``, is in inference.py).
The dropout masks are drawn by the model (regularisers.py), whichever engine consumes them,
so a seed gives the same run on either. The engine is not part of
``config``: a checkpoint does not depend on the engine that wrote it.
"""
from typing import NamedTuple

import numpy as np

from .backend import empty_aligned, get_backend
from .cells import CELLS, glorot_uniform, init_params, orthogonal, param_shapes  # noqa: F401
from .engine.workspace import FRESH, Workspace
from .errors import UserError
from .inference import Inference
from .ops import ENGINES, LOCKED
from .regularisers import REGULARISERS, Masks, draw_masks, no_masks, resolve_regularisers
from .nn import softmax_cross_entropy_backward, softmax_cross_entropy_forward

DTYPES = ("float32", "float64")

class CharRNN(Inference):
    """A character-level recurrent language model.

    Parameters
    ----------
    vocab_size : int
        V, the number of distinct characters.
    cell : "lstm", "gru" or "rnn"
        The recurrent cell of every layer (``model.cell`` says which).
    hidden_size : int
        H, the width of every recurrent layer.
    num_layers : int
        L, stacked layers.
    dropout : float
        Drop probability p in [0, 1) after each recurrent layer (training only).
    dtype : "float32" or "float64"
    backend : "numpy", "cupy", "auto", or a Backend
    seed : int
        Seeds the initial weights and the dropout masks.
    engine : "fast" or "reference"
        Who computes the layers: ``lstm_scratch.engine`` or the textbook
        ``lstm_scratch.nn`` (same numbers, up to float rounding).
    embedding_size : int
        D > 0: the first layer reads a learnt embedding E[ids] (V, D) instead of
        one-hot rows; 0 (default): one-hot.
    tie_weights : bool
        The head's weights are Eᵀ (needs embedding_size = hidden_size).
    weight_drop : float
        DropConnect probability on every Wh, one mask per batch (training only).
    locked_dropout : bool
        Every dropout mask is one per sequence, the same at every time step.
    input_dropout : float
        Dropout on the embedding's output (needs an embedding).
    embedding_dropout : float
        Drop probability of whole rows of E, one mask per batch (needs an embedding).
    output_dropout : float or None
        Dropout after the top layer, before the head; None: ``dropout``.
    zoneout_cell, zoneout_hidden : float
        Zoneout rates z_c, z_h of the LSTM's c (the LSTM's only) and of h (nn/zoneout.py):
        in training each unit keeps its previous value with that probability at each
        step; at evaluation every step mixes by the rate.
    """

    def __init__(self, vocab_size, cell="lstm", hidden_size=512, num_layers=2, dropout=0.2,
                 dtype="float32", backend="numpy", seed=0, engine="fast", **regularisers):
        if cell not in CELLS:
            raise UserError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        for name, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise UserError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {dropout!r}")
        if str(dtype) not in DTYPES:
            raise UserError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if engine not in ENGINES:
            raise UserError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.engine, self.cell = engine, cell
        self._ops, self._cell = ENGINES[engine], CELLS[cell]
        self._forward_layer = self._cell.forward[engine]
        self._backward_layer = self._cell.backward[engine]
        self.vocab_size, self.hidden_size = int(vocab_size), int(hidden_size)
        self.num_layers, self.dropout = int(num_layers), float(dropout)
        for name, value in resolve_regularisers(regularisers, self.hidden_size,
                                                self.dropout, cell).items():
            setattr(self, name, value)
        # Dropout's two operations: the textbook names them locked when every mask is
        # one per sequence; the engine's multiply broadcasts either way.
        self._drop = LOCKED if self.locked_dropout and engine == "reference" else self._ops
        self.dtype = np.dtype(str(dtype))
        self.backend = get_backend(backend)
        init_seed, dropout_seed = np.random.SeedSequence(seed).spawn(2)
        self.dropout_rng = np.random.default_rng(dropout_seed)
        init = init_params(self._cell, self.vocab_size, self.hidden_size, self.num_layers,
                           np.random.default_rng(init_seed), self.embedding_size, self.tie_weights)
        # Each parameter on a 64-byte boundary: OpenBLAS multiplies by them faster there.
        self.params = {name: _aligned_copy(self.backend, value, self.dtype) for name, value in init.items()}
        # Intermediate arrays of loss_and_grads and loss, reused from call to call
        # (engine/workspace.py): one call at a time per model, or one workspace per thread.
        self.workspace = Workspace()

    @property
    def config(self):
        """The constructor arguments that define the architecture."""
        return dict(vocab_size=self.vocab_size, cell=self.cell, hidden_size=self.hidden_size,
                    num_layers=self.num_layers, dropout=self.dropout, dtype=self.dtype.name,
                    **{name: getattr(self, name) for name in REGULARISERS})

    def layer_params(self, l):
        """Layer l's parameters, in the cell's order (Wx, Wh, then its biases)."""
        return tuple(self.params[f"{name}{l}"] for name in self._cell.names)

    def head_weight(self):
        """The head's weights (H, V): Wy, or Eᵀ (a view) when tied."""
        return self.params["E"].T if self.tie_weights else self.params["Wy"]

    def embed(self, ids):
        """The first layer's input for ids (T, B): the ids themselves (one-hot), or E[ids]."""
        if not self.embedding_size:
            return ids
        return self._ops.embed_forward(ids, self.params["E"], None, FRESH)[0]

    def num_params(self):
        return int(sum(p.size for p in self.params.values()))

    def load_params(self, arrays, source="parameters"):
        """Copy host or device arrays into ``params`` in place (cast to the model's dtype).

        Every name and shape is checked before anything is copied, so a bad
        input leaves the model as it was.
        """
        for name, p in self.params.items():
            value = arrays.get(name)
            if value is None:
                raise UserError(f"{source}: parameter {name} is missing "
                                f"(the {self._cell.title} model needs it)")
            if tuple(value.shape) != p.shape:
                raise UserError(f"{source}: parameter {name} has shape {tuple(value.shape)}, "
                                f"the {self._cell.title} model needs {p.shape}")
        for name, p in self.params.items():
            p[...] = self.backend.asarray(arrays[name], self.dtype)

    def init_state(self, batch_size):
        """Zero state: a list of L tuples, (h, c) for the LSTM or (h,), each (B, H)."""
        xp, H = self.backend.xp, self.hidden_size
        return [tuple(xp.zeros((batch_size, H), self.dtype) for _ in self._cell.state)
                for _ in range(self.num_layers)]

    # -- training ---------------------------------------------------------------
    def loss_and_grads(self, inputs, targets, state=None, train=True, dropout_rng=None):
        """Forward and backward over one batch.

        inputs : (B, T) int character ids
        targets : (B, T) int (every step predicts the next char) or (B,) int
            (only the last step does)
        state : list of L state tuples ((h, c) or (h,)), each (B, H), to start from; None = zeros
        train : apply dropout (and the other regularisers)
        dropout_rng : numpy Generator for the masks; default the model's own
        Returns (loss: float, mean nats per target; grads: dict with the keys
        of ``params``; state: the final state tuple per layer, detached).
        """
        ids, targets = self._check_batch(inputs, targets)
        masks = self.dropout_masks(ids.shape[0], ids.shape[1], targets.ndim == 1,
                                   self.dropout_rng if dropout_rng is None else dropout_rng,
                                   train)
        return self._loss_and_grads(ids, targets, state, masks)

    def loss(self, inputs, targets, state=None):
        """Evaluation loss (no dropout, no gradients): (loss: float, final state)."""
        ids, targets = self._check_batch(inputs, targets)
        loss, _, state = self._forward(ids, targets, state, no_masks(self.num_layers))
        return float(loss), state

    def dropout_masks(self, T, B, many_to_one, rng, train=True, map_fn=map):
        """The masks of one batch (a :class:`.regularisers.Masks`; nothing dropped unless
        ``train``): see regularisers.py for their shapes and the order they are drawn in."""
        if not train:
            return no_masks(self.num_layers)
        return draw_masks(self, T, B, many_to_one, rng, map_fn)

    def _loss_and_grads(self, ids, targets, state, masks, dloss=1.0, ws=None):
        """loss_and_grads on a checked, time-major batch ids (T, B) with given masks.
        The gradients are those of ``dloss * loss`` (a shard's weight in a split batch).
        ``ws``: the Workspace for the intermediate arrays (default: the model's own)."""
        ws = self.workspace if ws is None else ws
        loss, caches, state = self._forward(ids, targets, state, masks, ws)
        return float(loss), self._backward(caches, dloss, ws), state

    def _forward(self, ids, targets, state, masks, ws=None):
        ws = self.workspace if ws is None else ws
        xp, P, ops, drop = self.backend.xp, self.params, self._ops, self._drop
        T, B = ids.shape
        many_to_one = targets.ndim == 1
        if state is None:
            state = self.init_state(B)
        x, embed_cache = ids, None
        if self.embedding_size:                             # x⁰ = dropout(Ẽ[ids], p_in)
            embedded, embed_cache = ops.embed_forward(ids, P["E"], masks.embedding, ws.child("E"))
            x, _ = drop.dropout_forward(embedded, masks.input, ws.child("E"))
        layer_caches, final_state = [], []
        for l in range(self.num_layers):
            layer_ws = ws.child(l)
            weights = self.layer_params(l)
            if masks.weights is not None:                   # W̃h = Wh ⊙ M
                Wx, Wh, *biases = weights
                weights = (Wx, ops.weight_drop_forward(Wh, masks.weights[l], layer_ws), *biases)
            h, final, cell_cache = self._forward_layer(x, state[l], weights, layer_ws,
                                                       zoneout=self._zoneout(masks, l))
            top = h[-1:] if (many_to_one and l == self.num_layers - 1) else h   # (T', B, H)
            x, mask = drop.dropout_forward(top, masks.layers[l], layer_ws)
            layer_caches.append((mask, h.shape, top.shape[0], cell_cache))
            final_state.append(tuple(a.copy() for a in final))   # copies: the caches can be freed
        z, head_cache = ops.affine_forward(x, self.head_weight(), P["by"])   # (T', B, V)
        targets_tm = targets[None, :] if many_to_one else targets.T         # (T', B)
        loss, ce_cache = softmax_cross_entropy_forward(
            z.reshape(-1, self.vocab_size), xp.ascontiguousarray(targets_tm).reshape(-1))
        caches = ForwardCache(layer_caches, head_cache, ce_cache, T, embed_cache, masks)
        return loss, caches, final_state

    def _backward(self, caches, dloss, ws):
        layer_caches, head_cache, ce_cache, T, embed_cache, masks = caches
        xp, ops, drop = self.backend.xp, self._ops, self._drop
        grads = {}
        dz = softmax_cross_entropy_backward(dloss, ce_cache)
        dx, dWy, grads["by"] = ops.affine_backward(
            dz.reshape(head_cache.x.shape[:-1] + (self.vocab_size,)), head_cache)
        for l in reversed(range(self.num_layers)):
            mask, h_shape, T_used, cell_cache = layer_caches[l]
            dtop = drop.dropout_backward(dx, mask)
            if T_used == T:
                dh = dtop
            else:                                           # many-to-one: only h_T was used
                dh = xp.zeros(h_shape, self.dtype)
                dh[-1] = dtop[0]
            dx, layer_grads = self._backward_layer(dh, cell_cache, ws.child(l))
            grads.update({f"{name}{l}": g for name, g in zip(self._cell.names, layer_grads)})
            if masks.weights is not None:                   # dWh = dW̃h ⊙ M
                grads[f"Wh{l}"] = ops.weight_drop_backward(grads[f"Wh{l}"], masks.weights[l])
        if self.embedding_size:
            dembedded = drop.dropout_backward(dx, masks.input)
            grads["E"] = ops.embed_backward(dembedded, embed_cache)   # x = Ẽ[ids]
            if self.tie_weights:
                grads["E"] += dWy.T                         # z = x Eᵀ + by: Eᵀ's gradient, transposed
        if not self.tie_weights:
            grads["Wy"] = dWy
        return {name: grads[name] for name in self.params}

    def _check_batch(self, inputs, targets):
        """Validate on the host where possible; return time-major device arrays."""
        be = self.backend
        inputs, targets = be.asarray(inputs), be.asarray(targets)
        if inputs.ndim != 2 or inputs.dtype.kind not in "iu":
            raise UserError(f"inputs must be an int array (B, T), got {inputs.dtype} {inputs.shape}")
        B, T = inputs.shape
        if targets.dtype.kind not in "iu" or targets.shape not in ((B,), (B, T)):
            raise UserError(f"targets must be an int array ({B},) or ({B}, {T}), "
                            f"got {targets.dtype} {targets.shape}")
        if be.name == "numpy":      # a range check on the GPU would sync; data.py checks there
            for what, a in (("inputs", inputs), ("targets", targets)):
                if a.size and (a.min() < 0 or a.max() >= self.vocab_size):
                    raise UserError(f"{what} must be character ids in [0, {self.vocab_size}), "
                                    f"got values in [{a.min()}, {a.max()}]")
        return be.xp.ascontiguousarray(inputs.T), targets


class ForwardCache(NamedTuple):
    layers: list          # per layer: (dropout mask, h's shape, steps used, the cell's cache)
    head: object          # the head's AffineCache
    loss: object          # the cross-entropy's cache
    T: int
    embedding: object     # the embedding lookup's cache, or None (one-hot input)
    masks: Masks


class CharLSTM(CharRNN):
    """CharRNN with cell="lstm": the character-level LSTM, as it always was."""

    def __init__(self, vocab_size, hidden_size=512, num_layers=2, dropout=0.2,
                 dtype="float32", backend="numpy", seed=0, engine="fast", **regularisers):
        super().__init__(vocab_size, "lstm", hidden_size, num_layers, dropout, dtype, backend,
                         seed, engine, **regularisers)


def make_model(config, **options):
    """The model a ``config`` dict (CharRNN.config, e.g. from a checkpoint) describes:
    a CharLSTM for the LSTM (no ``cell`` key means one), else a CharRNN.
    ``options``: backend, seed, engine."""
    config = dict(config)
    cell = config.pop("cell", "lstm")
    if cell == "lstm":
        return CharLSTM(**config, **options)
    return CharRNN(cell=cell, **config, **options)


def _aligned_copy(backend, value, dtype):
    """``value`` as a C-contiguous ``dtype`` array of ``backend`` starting on a 64-byte boundary."""
    out = empty_aligned(backend.xp, value.shape, dtype)
    out[...] = backend.asarray(value, dtype)
    return out
