"""Stateful text generation: feed the prime once, then one character per step.

The LSTM state carries from step to step, so each new character costs one
step of the network (the tutorial re-fed a whole window per character).

Temperature τ rescales the logits z before the softmax:

    p_k = exp(z_k / τ) / Σ_j exp(z_j / τ)

τ → 0 approaches argmax (``greedy``); τ = 1 is the model's own distribution;
τ > 1 flattens it. Computed as log_softmax(z / τ) on the host in float64,
so no τ > 0 overflows or takes log(0).
"""
import numpy as np

from .backend import to_host
from .errors import UserError
from .nn import log_softmax
from .engine.stepper import Stepper


def check_sampling_options(length, temperature, greedy, top_k):
    if int(length) != length or length < 0:
        raise UserError(f"length must be an integer >= 0, got {length!r}")
    if not greedy and not (temperature > 0 and np.isfinite(temperature)):
        raise UserError(f"temperature must be a finite number > 0 (or use greedy), got {temperature!r}")
    if top_k is not None and (int(top_k) != top_k or not 1 <= top_k):
        raise UserError(f"top_k must be an integer >= 1, got {top_k!r}")


def next_char_distribution(z, temperature=1.0, top_k=None):
    """Probabilities (V,) float64 from logits z (V,) at a temperature, optionally top-k only."""
    z = np.asarray(z, dtype=np.float64)
    if top_k is not None and top_k < z.size:
        cutoff = np.partition(z, -top_k)[-top_k]            # the k-th largest logit
        z = np.where(z >= cutoff, z, -np.inf)               # exp(-inf) = 0: never drawn
    z = (z - z.max()) / temperature                         # max first: z / 1e-300 would be inf - inf
    return np.exp(log_softmax(z))


def draw(p, rng):
    """One index drawn with probabilities p (V,); a zero-probability index never comes out."""
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(p) - 1))


def generate_iter(model, vocab, prime="", length=500, temperature=1.0, greedy=False,
                  top_k=None, seed=None):
    """Yield ``length`` generated characters one at a time (the prime is not yielded).

    An empty prime starts after a newline if the vocabulary has one, else
    from a character drawn uniformly at random.
    """
    check_sampling_options(length, temperature, greedy, top_k)
    rng = np.random.default_rng(seed)
    if prime:
        prime_ids = vocab.encode(prime, what="prime text")
    elif "\n" in vocab.chars:
        prime_ids = vocab.encode("\n")
    else:
        prime_ids = np.array([rng.integers(len(vocab))], dtype=np.int32)
    z, state = model.logits(prime_ids[None, :])             # the whole prime in one pass
    step = _stepper(model, state)
    for _ in range(length):
        z_host = to_host(z[0])
        if greedy:
            k = int(np.argmax(z_host))
        else:
            k = draw(next_char_distribution(z_host, temperature, top_k), rng)
        yield vocab.chars[k]
        z = step(np.array([k]))


def _stepper(model, state):
    """ids (B,) -> logits (B, V), advancing ``state``: the engine's Stepper, or for a
    model on the reference engine, one step of the textbook (``model.step_logits``)."""
    if model.engine == "fast":
        return Stepper(model, state)

    def step(ids):
        nonlocal state
        z, state = model.step_logits(ids, state)
        return z
    return step


def generate(model, vocab, prime="", length=500, temperature=1.0, greedy=False,
             top_k=None, seed=None):
    """Return ``prime`` followed by ``length`` generated characters.

    model : CharLSTM; vocab : data.Vocab
    temperature : > 0; greedy : always take the most likely character
    top_k : draw only among the k most likely characters
    seed : same seed, same text
    """
    return prime + "".join(generate_iter(model, vocab, prime, length, temperature,
                                         greedy, top_k, seed))
