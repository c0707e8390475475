"""Running a trained model: a sequence through the stack, logits, one step at a time.

:class:`Inference` is the half of :class:`lstm_scratch.model.CharRNN` that never
drops anything and computes no gradient: what sampling, beam search and
``visualize`` call (evaluation runs ``model.loss``, the training pass without its
backward). It reads the model's ``params``, ``layer_params``, ``embed``,
``head_weight`` and its cell's forward layer, so the engine it runs is the model's
(``engine="fast"`` or ``"reference"``).
"""
from . import nn
from .engine.stepper import Stepper
from .engine.workspace import FRESH
from .errors import UserError
from .nn import log_softmax


class Inference:
    """Inference over a :class:`~lstm_scratch.model.CharRNN` (its base class)."""

    def run(self, inputs, state=None):
        """Inference over a sequence (no dropout), keeping what each layer computed.

        inputs : (B, T) int character ids
        state : list of L state tuples ((h, c) or (h,)), each (B, H); None = zeros
        Returns h (T, B, H) of the top layer, per layer what ``model.shown``
        names (T, B, H) (tanh(c_t) for the LSTM, h_t otherwise: what visualize
        draws), and the state after the last step.
        """
        xp = self.backend.xp
        ids = xp.ascontiguousarray(xp.asarray(inputs).T)    # (T, B)
        if state is None:
            state = self.init_state(ids.shape[1])
        x = self.embed(ids)                                 # ids, or E[ids] (T, B, D)
        shown, new_state = [], []
        for l in range(self.num_layers):
            x, final, cache = self._forward_layer(x, state[l], self.layer_params(l), FRESH,
                                                  zoneout=self._zoneout(None, l))
            shown.append(cache.tanh_c if self._cell.shown == "tanh(c)" else x)
            new_state.append(final)
        return x, shown, new_state

    def _zoneout(self, masks, l):
        """What layer l's zoneout mixes by: the masks (d^c, d^h) of a training batch, or
        at evaluation (``masks`` None or without zoneout) the rates (z_c, z_h); None when
        the model has no zoneout."""
        if not (self.zoneout_cell or self.zoneout_hidden):
            return None
        rates = (self.zoneout_cell, self.zoneout_hidden)
        if masks is None or masks.zoneout is None:
            return rates
        return tuple(rate if d is None else d for rate, d in zip(rates, masks.zoneout[l]))

    @property
    def shown(self):
        """What :meth:`run` returns per unit: "tanh(c)" (LSTM) or "h" (GRU, RNN)."""
        return self._cell.shown

    def logits(self, inputs, state=None):
        """Inference over a sequence: logits for the char after its last step.

        inputs : (B, T) int character ids (T = 1 for one step of generation)
        state : list of L state tuples ((h, c) or (h,)), each (B, H); None = zeros
        Returns logits z (B, V) and the state after the last step.
        """
        h, _, new_state = self.run(inputs, state)
        z, _ = nn.affine_forward(h[-1], self.head_weight(), self.params["by"])   # (B, V)
        return z, new_state

    @property
    def has_stepper(self):
        """True where the engine's one-step Stepper (engine/stepper.py) serves this
        model: the fast engine's LSTM. Sampling and beam search then use it too."""
        return self.engine == "fast" and self.cell == "lstm"

    def step_logits(self, char_ids, state=None):
        """One step of inference: logits z (B, V) after chars (B,), and the new state.

        The fast LSTM takes the engine's Stepper (engine/stepper.py), which skips the
        training layers' per-call setup (it copies no weight): as fast a step as
        ``generate``'s. The other cells and the textbook run :meth:`logits` with T = 1.
        """
        xp = self.backend.xp
        ids = xp.asarray(char_ids).reshape(-1)
        if not self.has_stepper:
            return self.logits(ids.reshape(-1, 1), state)
        if ids.dtype.kind not in "iu" or (self.backend.name == "numpy" and ids.size and
                                          (ids.min() < 0 or ids.max() >= self.vocab_size)):
            raise UserError(f"char_ids must be character ids in [0, {self.vocab_size}), "
                            f"got {ids.dtype} {ids.tolist()[:8]}")
        stepper = Stepper(self, state, batch_size=ids.size)
        return stepper(ids), stepper.state()

    def step(self, char_ids, state=None):
        """One step of inference: probs (B, V) of the next character, and the new state."""
        xp = self.backend.xp
        z, state = self.step_logits(char_ids, state)
        return xp.exp(log_softmax(z)), state
