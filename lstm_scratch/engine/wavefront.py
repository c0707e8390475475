"""Several cores on one batch of an LSTM stack: a wavefront over layers and time.

parallel.py's batch split gives each thread a block of rows, and every
thread then multiplies every layer's Wh by its (N/k, H) block, each step.
OpenBLAS packs the whole Wh (4 MB at H = 512) for each such product, so k
threads pay for k packings of every layer's weights per step, on products
too thin to run at full speed. Here the threads split the *layers* instead
(Appleyard, Kocisky and Blunsom 2016): layer l on steps t0:t1 needs only
layer l on the steps before and layer l-1 on the same steps, so while layer
0 runs a chunk of steps, layer 1 runs the chunk before it:

    chunk →     0        1        2       ...
    layer 1             F(1,0)   F(1,1)   ...
    layer 0   F(0,0)   F(0,1)   F(0,2)    ...

every product with the whole batch. The head (logits, loss and its
gradient) follows the top layer chunk by chunk. The backward runs the same
diagonal from the top layer's last chunk down; each layer's weight
gradients are one GEMM over all steps once its last chunk is done. On 2
AVX-512 cores, the per-step products of C2 take 88 ms this way against 108
(bench/README.md).

Every task calls engine/lstm.py's :class:`LSTMForward` / :class:`LSTMBackward`
on a range of steps, and the range calls compose to the whole-sequence
ones, so the result is the model's own ``_loss_and_grads`` up to float
rounding (tests/test_wavefront.py). LSTM, NumPy, fast engine, two or more layers.
"""
import math
from concurrent.futures import FIRST_COMPLETED, Future, wait

import numpy as np

from ..nn import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from . import layers
from .lstm import LSTMBackward, LSTMForward
from .workspace import Workspace


def wavefront_applies(model):
    """Whether :class:`Wavefront` can run this model."""
    return (model.cell == "lstm" and model.engine == "fast" and model.backend.name == "numpy"
            and model.num_layers >= 2)


def chunk_steps(T):
    """Steps per task: about ten chunks per layer. Fewer leave a longer start and
    end of the diagonal with one layer busy; more pay the hand-off (~50 µs)."""
    return max(1, math.ceil(T / 10))


class Wavefront:
    """``loss_and_grads`` and ``loss`` of an LSTM CharRNN over ``pool``'s threads
    (at most ``workers`` tasks at once), layer by layer along the diagonal;
    with no pool (None), one task after another on the calling thread.

    Call it with BLAS held to one thread (the threads are the parallelism),
    one call at a time: each layer builds its arrays in a workspace of its own,
    reused from call to call.
    """

    def __init__(self, model, pool, workers):
        assert wavefront_applies(model), "the wavefront runs LSTM stacks on NumPy"
        self.model, self.pool, self.workers = model, pool, workers
        # Each layer its own temporaries too: two layers' backward run at once.
        self._ws = [Workspace() for _ in range(model.num_layers)]

    def loss_and_grads(self, ids, targets, state, masks, dloss=1.0):
        """As CharRNN._loss_and_grads (checked time-major ids (T, B), masks given)."""
        return self._run(ids, targets, state, masks, dloss, with_grads=True)

    def loss(self, ids, targets, state):
        """As CharRNN._forward's (loss, final state), without dropout."""
        loss, _, final = self._run(ids, targets, state, [None] * self.model.num_layers,
                                   1.0, with_grads=False)
        return loss, final

    def _run(self, ids, targets, state, masks, dloss, with_grads):
        m, xp = self.model, np
        L, V, H, dtype = m.num_layers, m.vocab_size, m.hidden_size, m.dtype
        T, B = ids.shape
        many_to_one = targets.ndim == 1
        state = m.init_state(B) if state is None else state
        c = chunk_steps(T)
        ranges = [(t0, min(T, t0 + c)) for t0 in range(0, T, c)]
        K = len(ranges)
        targets_tm = targets[None, :] if many_to_one else xp.ascontiguousarray(targets.T)
        Wy, by = m.params["Wy"], m.params["by"]
        fwd, bwd, out, dh = [None] * L, [None] * L, [None] * L, [None] * L
        grads, losses = {}, []
        # What the head and the layer above read of layer l: dropout(h) (T, B, H), in a
        # buffer where a mask applies (the top layer of a many-to-one batch: h_T only).
        dropped = [masks[l] is not None and not (many_to_one and l == L - 1) for l in range(L)]

        def head(x, tgt, dh_top):
            """Logits and loss for the steps in x; with_grads: ∂L/∂x into dh_top."""
            z, cache = layers.affine_forward(x, Wy, by)                  # (n, B, V)
            loss, ce = softmax_cross_entropy_forward(z.reshape(-1, V), tgt.reshape(-1))
            share = tgt.size / targets_tm.size          # the mean over all targets, in parts
            losses.append(float(loss) * share)
            if with_grads:
                dz = softmax_cross_entropy_backward(dloss * share, ce).reshape(z.shape)
                _, dWy, dby = layers.affine_backward(dz, cache, dx_out=dh_top)
                grads["Wy"] = dWy if "Wy" not in grads else grads["Wy"] + dWy
                grads["by"] = dby if "by" not in grads else grads["by"] + dby

        def forward(l, k):
            t0, t1 = ranges[k]
            ws, mask = self._ws[l], masks[l]
            if k == 0:
                fwd[l] = LSTMForward(T, *state[l], *m.layer_params(l), ws=ws)
                out[l] = (ws.empty(xp, "dropped", (T, B, H), dtype) if dropped[l]
                          else fwd[l].hs[1:])
                if with_grads:
                    dh[l] = ws.empty(xp, "dh", (T, B, H), dtype)
            fwd[l].steps(ids[t0:t1] if l == 0 else out[l - 1][t0:t1], t0)
            if dropped[l]:
                xp.multiply(fwd[l].hs[t0 + 1:t1 + 1], mask[t0:t1], out=out[l][t0:t1])
            if l < L - 1 or (many_to_one and k < K - 1):
                return
            if many_to_one:                                 # the head sees h_T alone
                x, tgt, mask = fwd[l].hs[T:], targets_tm, mask
                if mask is not None:
                    x = x * mask
                if with_grads:
                    dh[l][:-1] = 0
            else:
                x, tgt = out[l][t0:t1], targets_tm[t0:t1]
                mask = None if mask is None else mask[t0:t1]
            dh_top = None if not with_grads else dh[l][T - 1:] if many_to_one else dh[l][t0:t1]
            head(x, tgt, dh_top)
            if with_grads and mask is not None:
                dh_top *= mask                              # back through the dropout

        def backward(l, k):
            t0, t1 = ranges[k]
            if k == K - 1:
                bwd[l] = LSTMBackward(fwd[l].cache(ids if l == 0 else out[l - 1]),
                                      ws=self._ws[l])
            bwd[l].steps(dh[l][t0:t1], t0)
            if l > 0:                                       # ∂L/∂h of the layer below
                below = bwd[l].dx(t0, t1, out=dh[l - 1][t0:t1])
                if masks[l - 1] is not None:
                    below *= masks[l - 1][t0:t1]
            if k == 0:
                g = bwd[l].finish()
                grads.update({f"{name}{l}": g["d" + name] for name in m._cell.names})

        self._diagonal(L, K, forward, top_down=False)
        final = [tuple(a.copy() for a in f.final_state()) for f in fwd]
        if not with_grads:
            return sum(losses), None, final
        self._diagonal(L, K, backward, top_down=True)
        return sum(losses), {name: grads[name] for name in m.params}, final

    def _diagonal(self, L, K, task, top_down):
        """task(l, k) for every layer and chunk, each after the same layer's
        previous chunk and the neighbouring layer's same chunk: from layer 0 and
        chunk 0 up, or (top_down) from layer L-1 and chunk K-1 down. At most
        ``workers`` at once, the nearest to the diagonal's start first."""
        started, finished = [0] * L, [0] * L        # per lane p (its chunks in order)
        running = {}

        def lane_task(p, j):
            return (L - 1 - p, K - 1 - j) if top_down else (p, j)
        try:
            while sum(finished) < L * K:
                for p in sorted(range(L), key=lambda p: (started[p] + p, p)):
                    j = started[p]
                    if (len(running) < self.workers and j < K and j == finished[p]
                            and (p == 0 or finished[p - 1] > j)):
                        running[self._submit(task, *lane_task(p, j))] = p
                        started[p] += 1
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    finished[running.pop(future)] += 1
                    future.result()                 # a task's error, raised here
        finally:
            wait(running)                           # none left writing a buffer

    def _submit(self, task, *args):
        if self.pool is not None:
            return self.pool.submit(task, *args)
        future = Future()                           # run here and now
        try:
            future.set_result(task(*args))
        except BaseException as exc:                # noqa: B902 - handed on by result()
            future.set_exception(exc)
        return future
