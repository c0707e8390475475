"""Stateful text generation: feed the prime once, then one character per step.

The recurrent state carries from step to step, so each new character costs
one step of the network (the tutorial re-fed a whole window per character).

Temperature τ rescales the logits z before the softmax:

    p_k = exp(z_k / τ) / Σ_j exp(z_j / τ)

τ → 0 approaches argmax (``greedy``); τ = 1 is the model's own distribution;
τ > 1 flattens it. Computed on the host in float64 as exp((z - max z) / τ),
which is p up to its sum (the largest term is exp(0) = 1), so no τ > 0
overflows or divides by zero; drawing needs no normalising (``draw``).

A prime can be any length (``prime_file`` reads one from a UTF-8 file): it
runs through the model in chunks of PRIME_CHUNK chars, carrying the state.
Beam search (``beam_width``) lives in beam.py.
"""
import numpy as np

from .backend import to_host
from .data import read_text
from .errors import UserError
from .engine.stepper import Stepper


def check_sampling_options(length, temperature, greedy, top_k):
    if int(length) != length or length < 0:
        raise UserError(f"length must be an integer >= 0, got {length!r}")
    if not greedy and not (temperature > 0 and np.isfinite(temperature)):
        raise UserError(f"temperature must be a finite number > 0 (or use greedy), got {temperature!r}")
    if top_k is not None and (int(top_k) != top_k or not 1 <= top_k):
        raise UserError(f"top_k must be an integer >= 1, got {top_k!r}")


PRIME_CHUNK = 1024        # chars per pass over a prime: bounds the forward caches of a long one


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


def next_char_weights(z, temperature=1.0, top_k=None):
    """exp((z - max z) / temperature) (V,) float64 from logits z (V,): the probabilities
    up to their sum (the largest weight is 1, so the sum is >= 1), optionally top-k only.
    :func:`draw` takes them as they are; generation skips normalising them."""
    z = np.asarray(z, dtype=np.float64)
    if top_k is not None and top_k < z.size:
        cutoff = np.partition(z, -top_k)[-top_k]            # the k-th largest logit
        z = np.where(z >= cutoff, z, -np.inf)               # exp(-inf) = 0: never drawn
    return np.exp((z - z.max()) / temperature)              # max first: z / 1e-300 would be inf - inf


def next_char_distribution(z, temperature=1.0, top_k=None):
    """Probabilities (V,) float64 from logits z (V,) at a temperature, optionally top-k only."""
    w = next_char_weights(z, temperature, top_k)
    return w / w.sum()


def draw(p, rng):
    """One index drawn with probabilities p (V,), or any nonnegative weights (drawn in
    proportion: p need not sum to 1); a zero-weight index never comes out."""
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(p) - 1))


def generate_iter(model, vocab, prime="", length=500, temperature=1.0, greedy=False,
                  top_k=None, seed=None, what="prime text"):
    """Yield ``length`` generated characters one at a time (the prime is not yielded).

    ``what`` names the prime in errors (a prime file's path).
    """
    check_sampling_options(length, temperature, greedy, top_k)
    rng = np.random.default_rng(seed)
    z, state = prime_model(model, vocab, prime, rng, what)
    step = _stepper(model, state)
    for _ in range(length):
        z_host = to_host(z[0])
        if greedy:
            k = int(np.argmax(z_host))
        else:
            k = draw(next_char_weights(z_host, temperature, top_k), rng)
        yield vocab.chars[k]
        z = step(np.array([k]))


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


def _stepper(model, state):
    """ids (B,) -> logits (B, V), advancing ``state``: the engine's LSTM Stepper, or
    else (the reference engine, the GRU, the RNN) one ``model.step_logits`` a step."""
    if model.has_stepper:
        return Stepper(model, state)
    return ModelStepper(model, state)


def generate(model, vocab, prime="", length=500, temperature=1.0, greedy=False,
             top_k=None, seed=None, *, prime_file=None, beam_width=None):
    """Return the prime followed by ``length`` generated characters.

    model : CharRNN (any cell); vocab : data.Vocab
    prime_file : read the prime from this UTF-8 file instead (any length)
    temperature : > 0; greedy : always take the most likely character
    top_k : draw only among the k most likely characters
    seed : same seed, same text
    beam_width : K >= 1: instead of sampling, the continuation with the highest
        log-probability that a beam of K finds (deterministic; K = 1 is greedy);
        combines with none of temperature, greedy, top_k, seed
    """
    prime, what = resolve_prime(prime, prime_file)
    if beam_width is not None:
        from .beam import beam_search                       # beam.py imports this module
        given = [name for name, off in (("temperature", temperature == 1.0),
                                        ("greedy", not greedy), ("top_k", top_k is None),
                                        ("seed", seed is None)) if not off]
        if given:
            raise UserError(f"beam_width does not combine with {given[0]}: beam search is "
                            "deterministic (beam_width=1 is greedy)")
        return prime + beam_search(model, vocab, prime, length, beam_width, what)[0]
    return prime + "".join(generate_iter(model, vocab, prime, length, temperature,
                                         greedy, top_k, seed, what))
