"""The regularisers a CharRNN takes (their options, checked), and what a training
step draws at random for them: the dropout masks of one batch.

A CharRNN's regularisers each multiply something by an inverted-dropout mask
(0 or 1/keep, ``backend.dropout_mask``), drawn here from seeds the model's host
Generator gives (on CuPy, on the device from those seeds) and handed to the layers, so that both engines, every worker
thread and every MPI process compute with the same masks::

    layers[l]   (T, B, H)  after layer l: between layers, and before the softmax (top)
                (1, B, H)  the same for every t (--locked-dropout; the top layer of a
                           many-to-one batch, which only feeds h_T)
    input       (T, B, D)  on the embedding's output, the first layer's input
                (1, B, D)  (--input-dropout; locked as above)
    weights[l]  (H, G·H)   DropConnect on Whˡ, one mask per batch (--weight-drop)
    embedding   (V, 1)     whole rows of E, one mask per batch (--embedding-dropout)
    zoneout[l]  (T, B, H)  two 0/1 masks, d^c and d^h of layer l, fresh every step
                           (--zoneout-cell, the LSTM's; --zoneout-hidden; nn/zoneout.py)

Per-row masks (layers, input) are cut with the batch (:meth:`Masks.rows`);
per-batch ones (weights, embedding) are shared whole.

Each mask comes from a child Generator seeded by one draw from the model's, in
a fixed order, so masks can be drawn in parallel and are the same whatever
the number of workers. The draws for the regularisers come after the layers'
ones and only when they are on: a model without them draws exactly what it
always drew, so old seeds give the same runs.
"""
from typing import NamedTuple, Optional

import numbers

import numpy as np

from .backend import bernoulli_mask, dropout_mask
from .errors import UserError

# The regularisers a CharRNN takes, with their defaults: all off (see Masks below).
REGULARISERS = dict(embedding_size=0, tie_weights=False, weight_drop=0.0, locked_dropout=False,
                    input_dropout=0.0, embedding_dropout=0.0, output_dropout=None,
                    zoneout_cell=0.0, zoneout_hidden=0.0)


def resolve_regularisers(given, hidden_size, dropout, cell="lstm", spell=str):
    """The regularisers of :data:`REGULARISERS` for a stack of ``cell``, ``given`` filled
    in with the defaults and checked (a one-line UserError for a bad value or a
    combination that cannot apply); returns the full dict. ``spell`` names an option in
    an error (the CLI's --flag-spelling, say)."""
    n = spell
    unknown = sorted(set(given) - set(REGULARISERS))
    if unknown:
        raise UserError(f"unknown model option(s): {', '.join(unknown)}")
    r = dict(REGULARISERS, **given)
    if r["output_dropout"] is None:
        r["output_dropout"] = dropout
    D = r["embedding_size"]
    if not isinstance(D, (int, np.integer)) or isinstance(D, bool) or D < 0:
        raise UserError(f"{n('embedding_size')} must be an integer >= 0 (0 = one-hot input), got {D!r}")
    r["embedding_size"] = int(D)
    for name in ("weight_drop", "input_dropout", "embedding_dropout", "output_dropout",
                 "zoneout_cell", "zoneout_hidden"):
        p = r[name]
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise UserError(f"{n(name)} must be in [0, 1), got {p!r}")
        r[name] = float(p)
    for name in ("tie_weights", "locked_dropout"):
        if not isinstance(r[name], (bool, np.bool_)):
            raise UserError(f"{n(name)} must be True or False, got {r[name]!r}")
        r[name] = bool(r[name])
    if not D:
        for name in ("input_dropout", "embedding_dropout"):
            if r[name]:
                raise UserError(f"{n(name)} needs an embedding ({n('embedding_size')} > 0): "
                                "one-hot input has no features to drop")
    if r["tie_weights"] and D != hidden_size:
        raise UserError(f"{n('tie_weights')} needs {n('embedding_size')} equal to {n('hidden_size')} "
                        f"({hidden_size}): the head's weights Eᵀ are (D, V) and the top "
                        f"layer gives H features; got {n('embedding_size')} {D}")
    if r["zoneout_cell"] and cell != "lstm":
        raise UserError(f"{n('zoneout_cell')} is the LSTM's: {n('cell')} {cell} has no cell "
                        f"state ({n('zoneout_hidden')} applies to every cell)")
    return r


class Masks(NamedTuple):
    layers: list                   # L masks (or None each): dropout after each layer
    input: Optional[object] = None     # on the first layer's input (the embedding's output)
    weights: Optional[list] = None     # L masks on Whˡ (weight drop), or None
    embedding: Optional[object] = None  # (V, 1) on the rows of E, or None
    zoneout: Optional[list] = None     # L pairs (d^c, d^h), each (T, B, H) or None, or None

    def rows(self, rows):
        """These masks for rows ``rows`` (a slice) of the batch."""
        cut = lambda m: None if m is None else m[:, rows]   # noqa: E731  (T or 1, b, ·)
        zoneout = None if self.zoneout is None else [tuple(map(cut, pair))
                                                      for pair in self.zoneout]
        return self._replace(layers=[cut(m) for m in self.layers], input=cut(self.input),
                             zoneout=zoneout)


def no_masks(num_layers):
    """Masks for evaluation: nothing dropped."""
    return Masks([None] * num_layers)     # (zoneout None: the model mixes by its rates)


def draw_masks(model, T, B, many_to_one, rng, map_fn=map):
    """The masks of one training batch of ``model`` (a CharRNN), B rows of T steps.

    rng : the numpy Generator to draw from (the model's own, checkpointed)
    map_fn : a parallel ``map`` to draw the masks on several cores
    """
    L, H, dtype, xp = model.num_layers, model.hidden_size, model.dtype, model.backend.xp
    locked = model.locked_dropout
    jobs = []                      # (which, shape, keep) in the order their seeds are drawn
    if model.dropout or model.output_dropout:
        for l in range(L):
            top = l == L - 1
            p = model.output_dropout if top else model.dropout
            steps = 1 if locked or (many_to_one and top) else T
            jobs.append((("layer", l), (steps, B, H), 1.0 - p))
    if model.input_dropout:
        jobs.append((("input", 0), (1 if locked else T, B, model.embedding_size),
                     1.0 - model.input_dropout))
    if model.weight_drop:
        jobs += [(("weight", l), model.params[f"Wh{l}"].shape, 1.0 - model.weight_drop)
                 for l in range(L)]
    if model.embedding_dropout:
        jobs.append((("embedding", 0), (model.vocab_size, 1), 1.0 - model.embedding_dropout))
    zoneout = model.zoneout_cell or model.zoneout_hidden
    zoned = []                     # (which, shape, rate): 0/1 masks, 1 with probability rate
    for l in range(L) if zoneout else ():
        zoned += [(("zoneout_c", l), (T, B, H), model.zoneout_cell),
                  (("zoneout_h", l), (T, B, H), model.zoneout_hidden)]
    if not jobs and not zoned:
        return no_masks(L)
    seeds = rng.integers(0, 2**63 - 1, size=len(jobs) + len(zoned))

    def draw(k):
        if k >= len(jobs):                                  # zoneout's d ~ Bernoulli(rate)
            _, shape, rate = zoned[k - len(jobs)]
            return None if rate == 0.0 else bernoulli_mask(np.random.default_rng(seeds[k]),
                                                           shape, rate, dtype, xp)
        _, shape, keep = jobs[k]
        return None if keep == 1.0 else dropout_mask(np.random.default_rng(seeds[k]), shape,
                                                     keep, dtype, xp)
    jobs_and_zoned = jobs + zoned
    drawn = dict(zip((job[0] for job in jobs_and_zoned), map_fn(draw, range(len(jobs_and_zoned)))))
    return Masks(layers=[drawn.get(("layer", l)) for l in range(L)],
                 input=drawn.get(("input", 0)),
                 weights=[drawn[("weight", l)] for l in range(L)] if model.weight_drop else None,
                 embedding=drawn.get(("embedding", 0)),
                 zoneout=[(drawn[("zoneout_c", l)], drawn[("zoneout_h", l)]) for l in range(L)]
                 if zoneout else None)
