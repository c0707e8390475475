"""The non-recurrent layers of a CharRNN, as each engine runs them: dropout, the
affine head, weight drop and the embedding, with one signature per operation
(the textbook ignores the workspace ``ws``). The recurrent layers are in
cells.CELLS, per engine; model.py calls both through these tables.
"""
from types import SimpleNamespace

from . import nn
from .backend import array_module
from .engine import layers as fast_layers
from .engine import regularisers as fast_reg


def _textbook_embed_forward(ids, E, row_mask):
    """x = Ẽ[ids] with Ẽ = E ⊙ m (embedding dropout; m None: Ẽ = E), as written."""
    E_dropped = E if row_mask is None else nn.embedding_dropout_forward(E, row_mask)[0]
    x, cache = nn.embedding_forward(ids, E_dropped)
    return x, (cache, row_mask)


def _textbook_embed_backward(dx, cache):
    lookup, row_mask = cache
    dE_dropped = nn.embedding_backward(dx, lookup)                  # x = Ẽ[ids]
    return dE_dropped if row_mask is None else nn.embedding_dropout_backward(dE_dropped, row_mask)


# The non-recurrent layers each engine runs, with one signature: the textbook
# ignores the workspace. The recurrent layers are in cells.CELLS, per engine.
ENGINES = {
    "fast": SimpleNamespace(
        dropout_forward=lambda x, mask, ws: fast_layers.dropout_forward(
            x, mask, None if mask is None else ws.empty(array_module(x), "dropped", x.shape, x.dtype)),
        dropout_backward=lambda dy, mask: fast_layers.dropout_backward(dy, mask, out=dy),  # dy is ours
        affine_forward=fast_layers.affine_forward,
        affine_backward=fast_layers.affine_backward,
        weight_drop_forward=lambda Wh, mask, ws: fast_reg.weight_drop_forward(
            Wh, mask, ws.empty(array_module(Wh), "Wh_dropped", Wh.shape, Wh.dtype))[0],
        weight_drop_backward=lambda dWh, mask: fast_reg.weight_drop_backward(dWh, mask, out=dWh),
        embed_forward=lambda ids, E, row_mask, ws: fast_reg.embedding_forward(
            ids, E, row_mask, out=ws.empty(array_module(E), "embedded", ids.shape + E.shape[1:],
                                           E.dtype)),
        embed_backward=fast_reg.embedding_backward),
    "reference": SimpleNamespace(
        dropout_forward=lambda x, mask, ws: nn.dropout_forward(x, mask),
        dropout_backward=nn.dropout_backward,
        affine_forward=nn.affine_forward,
        affine_backward=nn.affine_backward,
        weight_drop_forward=lambda Wh, mask, ws: nn.weight_drop_forward(Wh, mask)[0],
        weight_drop_backward=nn.weight_drop_backward,
        embed_forward=lambda ids, E, row_mask, ws: _textbook_embed_forward(ids, E, row_mask),
        embed_backward=_textbook_embed_backward),
}

# The textbook's names for dropout when every mask is one per sequence (the same
# multiply, broadcast over time: nn/locked_dropout.py).
LOCKED = SimpleNamespace(dropout_forward=lambda x, mask, ws: nn.locked_dropout_forward(x, mask),
                         dropout_backward=nn.locked_dropout_backward)
