"""One character in, next-character logits out: the inference loop of sampling.

``CharLSTM.logits`` runs whole sequences through the training layers; for
generation, one step at a time, their per-call setup (workspaces sized for a
batch of sequences, the cache a backward pass would need) would cost more than
the arithmetic. A Stepper keeps only small buffers, allocated once, and reads the
model's parameters as they are:

- no weight is copied (the cell step applies σ's inner 0.5 to the (B, 4H)
  pre-activations itself), so a Stepper costs nothing to build and always sees
  the current parameters, however training or the user changed them;
- the state lives in the Stepper's buffers and is updated in place.

``CharRNN.step_logits`` builds one per call; ``generate`` one per text.
"""
from .lstm import lstm_cell_forward, sigmoid_via_tanh, zoneout_mix


class Stepper:
    """Generation state for B sequences of one CharLSTM (the LSTM cell only: the GRU
    and the RNN step through ``stepping.ModelStepper``).

    model : CharLSTM;  state : list of L (h, c) pairs, each (B, H), or None
    (copied: the caller's arrays are left alone)
    ``stepper(ids)`` with ids (B,) int returns logits (B, V), a fresh array (the
    next call does not overwrite it), and advances the state.
    """

    def __init__(self, model, state=None, batch_size=1):
        xp, dtype, H = model.backend.xp, model.dtype, model.hidden_size
        self.xp, self.H, self.L, self.P = xp, H, model.num_layers, model.params
        self.embedded, self.tied = bool(model.embedding_size), model.tie_weights
        self.scale, self.shift = sigmoid_via_tanh(H, dtype, xp)
        state = state if state is not None else model.init_state(batch_size)
        B = state[0][0].shape[0]
        # xh[l] = [x, h] for layer l (layer 0 only uses its h half); c[l] its cell.
        self.xh = [xp.zeros((B, 2 * H), dtype) for _ in range(self.L)]
        self.c = [xp.array(c, dtype=dtype) for _, c in state]
        for l, (h, _) in enumerate(state):
            self.xh[l][:, H:] = h
        self.a = xp.empty((B, 4 * H), dtype)
        self.xWx = xp.empty((B, 4 * H), dtype)
        self.tanh_c = xp.empty((B, H), dtype)
        self.ig = xp.empty((B, H), dtype)
        # zoneout (nn/zoneout.py): each step mixes the previous c and h in by the rates
        self.zoneout = ((model.zoneout_cell, model.zoneout_hidden)
                        if model.zoneout_cell or model.zoneout_hidden else None)
        if self.zoneout:
            self.c_prev, self.h_prev = xp.empty((B, H), dtype), xp.empty((B, H), dtype)

    def state(self):
        """The current state as a list of (h, c) copies."""
        return [(xh[:, self.H:].copy(), c.copy()) for xh, c in zip(self.xh, self.c)]

    def __call__(self, ids):
        xp, H, P, a = self.xp, self.H, self.P, self.a
        ids = xp.asarray(ids)
        for l in range(self.L):
            x, h = self.xh[l][:, :H], self.xh[l][:, H:]         # (B, H) views: x_t, h_{t-1}
            xp.matmul(h, P[f"Wh{l}"], out=a)                    # h_{t-1} Wh
            if l == 0 and not self.embedded:
                a += P["Wx0"][ids]                              # + x_t Wx: a row gather
            elif l == 0:
                a += xp.matmul(P["E"][ids], P["Wx0"], out=self.xWx)   # + E[ids] Wx
            else:
                a += xp.matmul(x, P[f"Wx{l}"], out=self.xWx)    # + x_t Wx
            a += P[f"b{l}"]
            if self.zoneout:
                self.c_prev[...], self.h_prev[...] = self.c[l], h
            lstm_cell_forward(a, self.c[l], self.scale, self.shift,  # c, h updated in place
                              self.c[l], self.tanh_c, h, self.ig)
            if self.zoneout:                                    # c = z_c c_{t-1} + (1 - z_c) c̃
                zoneout_mix(self.c[l], self.c_prev, self.zoneout[0], self.ig)
                zoneout_mix(h, self.h_prev, self.zoneout[1], self.ig)
            if l + 1 < self.L:
                self.xh[l + 1][:, :H] = h                       # x_t of the layer above
        Wy = P["E"].T if self.tied else P["Wy"]                 # tied: the head is Eᵀ
        z = self.xh[-1][:, H:] @ Wy                             # (B, V): ours to keep
        z += P["by"]
        return z
