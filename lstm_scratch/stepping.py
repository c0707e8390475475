"""What sampling and beam search share: the prime run through the model once, and
a stepper that advances B rows of state one character at a time.

sampling.py and beam.py both import this module and neither imports the other
back (sampling imports beam, to dispatch ``generate(beam_width=K)``).

A prime can be any length (``resolve_prime`` reads one from a UTF-8 file): it
runs through the model in chunks of PRIME_CHUNK chars, carrying the state.
"""
import numpy as np

from .data import read_text
from .engine.stepper import Stepper
from .errors import UserError

PRIME_CHUNK = 1024        # chars per pass over a prime: bounds the forward caches of a long one


def check_length(length):
    if int(length) != length or length < 0:
        raise UserError(f"length must be an integer >= 0, got {length!r}")


def resolve_prime(prime="", prime_file=None):
    """The prime text: ``prime``, or the contents of the UTF-8 file ``prime_file``
    (every way reading it can fail is a one-line UserError). Returns (text, what),
    ``what`` naming it in errors."""
    if prime_file is None:
        return prime, "prime text"
    if prime:
        raise UserError("give a prime or a prime file, not both")
    return read_text(prime_file, expected="the prime text"), str(prime_file)


def prime_model(model, vocab, prime, rng, what="prime text"):
    """Run the prime through the model: (logits z (1, V) for the next char, state).

    An empty prime starts after a newline if the vocabulary has one, else
    from a character drawn uniformly at random with ``rng`` (None: refuse).
    """
    if prime:
        prime_ids = vocab.encode(prime, what=what)
    elif "\n" in vocab.chars:
        prime_ids = vocab.encode("\n")
    elif rng is None:
        raise UserError("the vocabulary has no newline to start from: give a prime")
    else:
        prime_ids = np.array([rng.integers(len(vocab))], dtype=np.int32)
    state = None
    for start in range(0, len(prime_ids), PRIME_CHUNK):
        z, state = model.logits(prime_ids[None, start:start + PRIME_CHUNK], state)
    return z, state


def repeat_state(model, state, rows):
    """The batch-1 ``state`` repeated into ``rows`` identical rows: each (1, H) -> (rows, H)."""
    xp = model.backend.xp
    return [tuple(xp.repeat(a, rows, axis=0) for a in layer) for layer in state]


class ModelStepper:
    """The Stepper's interface by way of ``model.step_logits``, for any cell and
    engine: the textbook steps as written, and the GRU and RNN, whose one step is
    cheap enough through their sequence layers (T = 1).

    ``stepper(ids)`` with ids (B,) int returns logits (B, V) and advances the state.
    """

    def __init__(self, model, state=None, batch_size=1):
        self.model = model
        self._state = state if state is not None else model.init_state(batch_size)

    def __call__(self, ids):
        z, self._state = self.model.step_logits(ids, self._state)
        return z

    def state(self):
        """The current state: a list of per-layer tuples, copies."""
        return [tuple(a.copy() for a in layer) for layer in self._state]

    def reorder(self, rows):
        """Row b of every state array becomes the old row ``rows[b]`` (beam search)."""
        rows = self.model.backend.xp.asarray(rows)
        self._state = [tuple(a[rows] for a in layer) for layer in self._state]


def make_stepper(model, state):
    """ids (B,) -> logits (B, V), advancing ``state`` (B rows): the engine's LSTM Stepper,
    or else (the reference engine, the GRU, the RNN) one ``model.step_logits`` a step."""
    if model.has_stepper:
        return Stepper(model, state)
    return ModelStepper(model, state)
