"""Beam search: the continuation with the highest log-probability that K beams find.

Sampling draws one character at a time; greedy takes the most likely one,
which can walk into a continuation whose later characters are all unlikely.
A beam of width K keeps the K best partial continuations y_1..t, scored by

    log p(y_1..t | prime) = Σ_s log p(y_s | prime, y_1..s-1)

and at each step extends every beam by every character (K x V candidates),
keeping the K best. K = 1 is greedy; K = V over two characters tries all V²
continuations. The K beams run as one batch of K rows through a Stepper (the
LSTM's, or stepping.ModelStepper for the other cells and the textbook);
after each step the state rows are reordered to follow the beams that
survived (a beam with two surviving children is copied into two rows).

Ties go to the candidate of the better-ranked beam, then to the lower
character id, so the search is deterministic.
"""
import numpy as np

from .backend import to_host
from .config import require_int
from .engine.stepper import Stepper
from .nn import log_softmax
from .stepping import ModelStepper, check_length, prime_model, repeat_state


class BeamStepper(Stepper):
    """A Stepper whose batch rows can be reordered: one row per beam.

    The rows are gathered in place, in the Stepper's buffers (``xh``: [x, h] per
    layer, ``c``), rather than by building a new Stepper from ``state()`` each
    step; test_beam.py checks it against a fresh Stepper, so a change there shows.
    """

    def reorder(self, rows):
        """Row b of every layer's (h, c) becomes the old row ``rows[b]``.

        rows : (B,) int, any row may appear several times or not at all
        """
        rows = self.xp.asarray(rows)
        for l in range(self.L):
            self.xh[l][...] = self.xh[l][rows]      # the fancy index copies first: no aliasing
            self.c[l][...] = self.c[l][rows]


def beam_search(model, vocab, prime="", length=500, beam_width=5, what="prime text"):
    """The best continuation of ``prime`` that a beam of ``beam_width`` finds.

    model : CharRNN; vocab : data.Vocab; prime : str (empty: start after a
    newline, which the vocabulary must then have); length : chars to generate
    what : names the prime in errors (a prime file's path)
    Returns (continuation: str of ``length`` chars, its log-probability in
    nats given the prime: float).
    """
    check_length(length)
    require_int("beam_width", beam_width)
    K, V = int(beam_width), len(vocab)
    z, state = prime_model(model, vocab, prime, rng=None, what=what)   # batch 1, once
    stepper = BeamStepper if model.has_stepper else ModelStepper
    step = stepper(model, repeat_state(model, state, K))               # (K, H): all rows = prime
    logp = log_softmax(to_host(z).astype(np.float64))                  # (1, V)
    scores = np.zeros(1)                      # live beams' log-probabilities, best first
    chars = np.zeros((length, K), np.int64)   # chars[t, b]: beam b's char at step t
    parents = np.zeros((length, K), np.int64)  # parents[t, b]: its beam at step t - 1
    for t in range(length):
        candidates = (scores[:, None] + logp[:len(scores)]).ravel()    # (live * V,)
        best = np.argsort(-candidates, kind="stable")[:K]              # stable: the tie-break
        scores = candidates[best]
        parents[t, :len(best)], chars[t, :len(best)] = np.divmod(best, V)
        if t + 1 < length:
            step.reorder(parents[t])          # rows past the live beams copy row 0, unused
            logp = log_softmax(to_host(step(chars[t])).astype(np.float64))   # (K, V)
    out, b = [], 0
    for t in range(length - 1, -1, -1):       # follow beam 0 back to the prime
        out.append(vocab.chars[int(chars[t, b])])
        b = parents[t, b]
    return "".join(reversed(out)), float(scores[0]) if length else 0.0
