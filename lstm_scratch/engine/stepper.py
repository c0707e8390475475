"""One character in, next-character logits out: the inference loop of sampling.

``CharLSTM.logits`` runs whole sequences through the training layers; for
generation, one step at a time, their per-call setup would cost more than
the arithmetic. A Stepper does that setup once:

- the σ-via-tanh scale is folded into the weights and biases once;
- for layers l > 0 the two products x Wxˡ + h Whˡ become one, [x, h] [Wxˡ; Whˡ],
  with the fused (2H, 4H) weight built once;
- every buffer is allocated once.

The weights are copies: build a Stepper after training has changed the
parameters for the last time (``generate`` builds one per call).
"""
from .lstm import lstm_cell_forward, sigmoid_via_tanh


class Stepper:
    """Generation state for B sequences of one CharLSTM (the LSTM cell only: the GRU
    and the RNN step through ``sampling.ModelStepper``).

    model : CharLSTM;  state : list of L (h, c) pairs, each (B, H), or None
    ``stepper(ids)`` with ids (B,) int returns logits (B, V), a fresh array (the
    next call does not overwrite it), and advances the state.
    """

    def __init__(self, model, state=None, batch_size=1):
        P, xp, dtype, H = model.params, model.backend.xp, model.dtype, model.hidden_size
        self.xp, self.H, self.L = xp, H, model.num_layers
        self.scale, self.shift = sigmoid_via_tanh(H, dtype, xp)
        self.Wx0 = P["Wx0"] * self.scale                            # (V, 4H)
        self.W = [P["Wh0"] * self.scale]                            # (H, 4H), then (2H, 4H)
        self.W += [xp.concatenate([P[f"Wx{l}"], P[f"Wh{l}"]]) * self.scale
                   for l in range(1, self.L)]
        self.b = [P[f"b{l}"] * self.scale for l in range(self.L)]
        self.Wy, self.by = P["Wy"], P["by"]
        state = state if state is not None else model.init_state(batch_size)
        B = state[0][0].shape[0]
        # xh[l] = [x, h] for layer l > 0 (layer 0 only uses its h half); c[l] its cell.
        self.xh = [xp.zeros((B, 2 * H), dtype) for _ in range(self.L)]
        self.c = [xp.array(c, dtype=dtype) for _, c in state]
        for l, (h, _) in enumerate(state):
            self.xh[l][:, H:] = h
        self.a = xp.empty((B, 4 * H), dtype)
        self.tanh_c = xp.empty((B, H), dtype)
        self.ig = xp.empty((B, H), dtype)

    def state(self):
        """The current state as a list of (h, c) copies."""
        return [(xh[:, self.H:].copy(), c.copy()) for xh, c in zip(self.xh, self.c)]

    def __call__(self, ids):
        xp, H, a = self.xp, self.H, self.a
        ids = xp.asarray(ids)
        for l in range(self.L):
            h = self.xh[l][:, H:]                               # (B, H) view: h_{t-1}
            if l == 0:
                xp.matmul(h, self.W[0], out=a)                  # h_{t-1} Wh
                a += self.Wx0[ids]                              # + x_t Wx: a row gather
            else:
                xp.matmul(self.xh[l], self.W[l], out=a)         # [x_t, h_{t-1}] [Wx; Wh]
            a += self.b[l]
            lstm_cell_forward(a, self.c[l], self.scale, self.shift,  # c, h updated in place
                              self.c[l], self.tanh_c, h, self.ig)
            if l + 1 < self.L:
                self.xh[l + 1][:, :H] = h                       # x_t of the layer above
        z = self.xh[-1][:, H:] @ self.Wy                        # (B, V): ours to keep
        z += self.by
        return z
