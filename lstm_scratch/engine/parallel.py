"""Data parallelism on one machine: each batch split across CPU threads.

NumPy's elementwise ufuncs use one core, so while one step's tanh runs, the
other cores idle; and a small recurrent GEMM does not keep several cores
busy either. Splitting the *batch* fixes both: worker k takes a contiguous
block of batch rows (with its rows of the carried state and of the dropout
masks), runs the whole forward and backward with BLAS held to one thread,
and the gradients are combined weighted by each shard's share of targets::

    L = Σ_k (n_k / n) L_k        dθ = Σ_k (n_k / n) dθ_k

which is the whole batch's loss and gradient, up to float rounding. The
masks are drawn once for the whole batch, so the result does not depend on
the number of workers. This is the same shape as data parallelism across
GPUs or machines: only the all-reduce changes.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..regularisers import no_masks
from . import blas
from .fused import forward_kernel
from .workspace import Workspace


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def auto_workers(model, batch_size, cores=None):
    """How many threads pay off: several for a wide NumPy model, one otherwise.

    For narrow layers the per-step Python overhead, not arithmetic, dominates
    and threads contend for the interpreter. Measured on 2 cores (steady state,
    batch 50, seq_len 50): with the compiled cell (engine/fused_cpu.py), which
    releases the interpreter for the whole cell, 2 threads pay from H = 128
    (31 vs 42 ms a step; H = 64: even; H = 32: 14 vs 8 ms); with the plain
    NumPy cell, from H = 256. ``cores``: those this process may use (default all;
    several processes on one machine each take their share).
    """
    if model.backend.name != "numpy" or model.engine == "reference":
        return 1                # the reference engine: one thread, to step through in a debugger
    compiled = forward_kernel(np, model.dtype) is not None
    if model.hidden_size < (128 if compiled else 256):
        return 1
    return max(1, min(cores or available_cores(), batch_size // 8))


class ThreadedDataParallel:
    """``loss_and_grads`` and ``loss`` of a CharRNN, computed by ``workers`` threads.

    With workers = 1 it is the model's own computation, unchanged.
    """

    def __init__(self, model, workers=1):
        self.model, self.workers = model, max(1, int(workers))
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        # One workspace per shard; the first is the model's own, so that a run on one
        # worker and direct calls of model.loss_and_grads share their buffers.
        self._workspaces = [model.workspace] + [Workspace() for _ in range(self.workers - 1)]

    def loss_and_grads(self, inputs, targets, state=None, train=True, dropout_rng=None,
                       rows=None):
        """As CharRNN.loss_and_grads.

        rows : (lo, hi, B) when the batch is rows lo:hi of a batch of B rows split
            across processes (distributed.py): the dropout masks are drawn for all
            B rows and these rows taken, so the result does not depend on the split.
        """
        m = self.model
        ids, targets = m._check_batch(inputs, targets)
        rng = m.dropout_rng if dropout_rng is None else dropout_rng
        lo, hi, B = rows or (0, ids.shape[1], ids.shape[1])
        masks = m.dropout_masks(ids.shape[0], B, targets.ndim == 1, rng, train, map_fn=self.map)
        if rows is not None:
            masks = masks.rows(slice(lo, hi))
        shards = self._shards(ids, targets, state, masks)
        if len(shards) == 1:
            return m._loss_and_grads(ids, targets, state, masks)
        weights = [shard[1].size / targets.size for shard in shards]
        # Each shard's gradient comes out already scaled by its weight n_k / n.
        results = self._map_blas1(lambda k: m._loss_and_grads(*shards[k], dloss=weights[k],
                                                              ws=self._workspaces[k]),
                                  range(len(shards)))
        loss = sum(w * r[0] for w, r in zip(weights, results))
        grads = results[0][1]

        def all_reduce(name):                               # one parameter per worker at a time
            for r in results[1:]:
                grads[name] += r[1][name]
        self.map(all_reduce, grads)
        return loss, grads, self._join_states([r[2] for r in results])

    def loss(self, inputs, targets, state=None):
        """As CharRNN.loss."""
        m = self.model
        ids, targets = m._check_batch(inputs, targets)
        shards = self._shards(ids, targets, state, no_masks(m.num_layers))
        results = self._map_blas1(lambda k: m._forward(*shards[k], ws=self._workspaces[k])[::2],
                                  range(len(shards)))
        loss = sum(float(r[0]) * shard[1].size for r, shard in zip(results, shards)) / targets.size
        return loss, self._join_states([r[1] for r in results])

    def _shards(self, ids, targets, state, masks):
        """Per worker: (ids (T, b), targets (b,) or (b, T), state rows, mask rows)."""
        B = ids.shape[1]
        k = min(self.workers, B)
        if k == 1:
            return [(ids, targets, state, masks)]
        bounds = np.linspace(0, B, k + 1).astype(int)
        shards = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            rows = slice(lo, hi)
            shards.append((ids[:, rows], targets[rows],
                           None if state is None else [tuple(a[rows] for a in s) for s in state],
                           masks.rows(rows)))
        return shards

    def map(self, fn, items):
        """``list(map(fn, items))`` on the workers (for elementwise work, which
        releases the GIL: dropout masks, the optimizer update)."""
        items = list(items)
        if self._pool is None or len(items) == 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def _map_blas1(self, fn, items):
        """``map`` with BLAS held to one thread per worker: the workers are the parallelism."""
        items = list(items)
        if self._pool is None or len(items) == 1:
            return self.map(fn, items)
        with blas.controller().limit(limits=1, user_api="blas"):
            return self.map(fn, items)

    def _join_states(self, states):
        xp = self.model.backend.xp
        return [tuple(xp.concatenate(parts) for parts in zip(*(s[l] for s in states)))
                for l in range(self.model.num_layers)]    # (h, c) or (h,): each part by rows

    def close(self):
        """End the worker threads; the runner still works after, on this thread."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
