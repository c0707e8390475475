"""Buffers that live from one training step to the next.

A training step of a 2x512 model on a (64, 50) batch needs about 150 MB of
intermediate arrays (gates, cell states, their gradients). Allocated afresh
every step, that memory goes back to the operating system in between, and
the next step pays for mapping and zeroing it again: ~9,000 page faults and
~0.1 s of system time per step on the development machines. A layer given a
:class:`Workspace` takes its big arrays from it instead, by name, so every
step after the first reuses the first step's memory.

The rule: what a call builds in a workspace (its outputs and its cache) is
valid until the next call that uses the same workspace. The model gives each
layer (and each worker thread) its own. Gradients of the weights are never
workspace buffers: the caller keeps them. Temporaries, dead when the call
returns (∂L/∂a in the backward, scratch), come from ``ws.tmp``, which the
children of one workspace share: the layers of a model use one ∂L/∂a buffer.

    >>> ws = Workspace()
    >>> a = ws.empty(np, "c", (2, 3), np.float32)
    >>> a is ws.empty(np, "c", (2, 3), np.float32)
    True
    >>> FRESH.empty(np, "c", (2, 3), np.float32) is a
    False
"""
import numpy as np

from ..backend import empty_aligned


class Workspace:
    """Named arrays, made on first request and handed out again after; each starts
    on a 64-byte boundary (``backend.empty_aligned``)."""

    def __init__(self, keep=True, tmp=None):
        self.keep = keep
        self._buffers = {}
        self._children = {}
        self.tmp = self if tmp is None else tmp     # for arrays dead when a call returns
        self.graphs = {}                            # CUDA graphs of this layer's loops (graphs.py)

    def empty(self, xp, name, shape, dtype, order="C"):
        """An uninitialised array ``shape``/``dtype``/``order`` on ``xp``: the same one
        as last time for this name, unless one of those changed."""
        if not self.keep:
            return empty_aligned(xp, shape, dtype, order)
        shape, dtype = tuple(shape), np.dtype(dtype)
        buf = self._buffers.get(name)
        if (buf is None or buf.shape != shape or buf.dtype != dtype
                or not isinstance(buf, xp.ndarray) or not buf.flags[order + "_CONTIGUOUS"]):
            buf = self._buffers[name] = empty_aligned(xp, shape, dtype, order)
        return buf

    def child(self, key):
        """A workspace of its own for a part (a layer), kept here; its ``tmp`` is
        shared with the other children."""
        if not self.keep:
            return self
        if key not in self._children:
            if "tmp" not in self._children:
                self._children["tmp"] = Workspace()
            self._children[key] = Workspace(tmp=self._children["tmp"])
        return self._children[key]

    def nbytes(self):
        """Bytes held here and in the children."""
        return (sum(b.nbytes for b in self._buffers.values())
                + sum(c.nbytes() for c in self._children.values()))


FRESH = Workspace(keep=False)   # allocates every time: for results the caller keeps
