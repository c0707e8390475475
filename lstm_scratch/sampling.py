"""Stateful text generation: feed the prime once, then one character per step.

The recurrent state carries from step to step, so each new character costs
one step of the network (the tutorial re-fed a whole window per character).

Temperature τ rescales the logits z before the softmax:

    p_k = exp(z_k / τ) / Σ_j exp(z_j / τ)

τ → 0 approaches argmax (``greedy``); τ = 1 is the model's own distribution;
τ > 1 flattens it. Computed on the host in float64 as exp((z - max z) / τ),
which is p up to its sum (the largest term is exp(0) = 1), so no τ > 0
overflows or divides by zero; drawing needs no normalising (``draw``).

Two filters narrow the draw, in the order HF transformers applies them: top-k
keeps the k most likely characters, then top-p (nucleus sampling) keeps the
smallest set of the most likely ones whose probability reaches p, and the draw
is in proportion to what is left (renormalised).

``num_samples=N`` runs N samples as one batch of N rows: the prime runs once and
its state is repeated N times. ``stop`` ends each row at its first stop text.
The prime (``stepping.resolve_prime``) can come from a file, of any length.
Beam search (``beam_width``) lives in beam.py.
"""
import numbers

import numpy as np

from .backend import to_host
from .beam import beam_search
from .config import require_int
from .engine import device_sampling
from .engine.device_sampling import DeviceSampler
from .errors import UserError
from .stepping import (PRIME_CHUNK, ModelStepper, check_length, make_stepper,  # noqa: F401
                       prime_model, repeat_state, resolve_prime)               # (sampling's names)


def greedy_conflicts(top_k=None, top_p=None, num_samples=None):
    """The options (Python names) that mean nothing with greedy, which draws nothing."""
    return [name for name, given in (("top_k", top_k is not None), ("top_p", top_p is not None),
                                     ("num_samples", (num_samples or 1) > 1)) if given]


def refuse(option, given, why):
    """A one-line error naming the first of ``given`` if any was given with ``option``."""
    if given:
        raise UserError(f"{option} does not combine with {given[0]}: {why}")


GREEDY_WHY = "greedy takes the most likely char every step, so it draws nothing (one text)"
BEAM_WHY = ("beam search is deterministic and gives one text of `length` chars "
            "(beam_width=1 is greedy)")
BEAM_WHY_CLI = ("beam search is deterministic and gives one text of --length chars "
                "(--beam-width 1 is --greedy)")


def check_sampling_options(length, temperature, greedy, top_k, top_p=None, num_samples=None,
                           stop=None):
    """A one-line UserError for a value out of range, or an option that greedy ignores."""
    check_length(length)
    if not greedy and not (temperature > 0 and np.isfinite(temperature)):
        raise UserError(f"temperature must be a finite number > 0 (or use greedy), got {temperature!r}")
    if top_k is not None and (int(top_k) != top_k or not 1 <= top_k):
        raise UserError(f"top_k must be an integer >= 1, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real)
                              or not 0 < top_p <= 1):
        raise UserError(f"top_p must be a number in (0, 1], got {top_p!r}")
    if num_samples is not None:
        require_int("num_samples", num_samples)
    if stop is not None and not (isinstance(stop, str) and stop):
        raise UserError(f"stop must be a non-empty text, got {stop!r}")
    if greedy:
        refuse("greedy", greedy_conflicts(top_k, top_p, num_samples), GREEDY_WHY)


def nucleus(w, top_p):
    """Weights w (..., V) >= 0 with all but the nucleus set to 0: the fewest most likely
    characters whose weight reaches top_p of the total (ties: the lower id first)."""
    order = np.argsort(-w, axis=-1, kind="stable")                   # most likely first
    w_sorted = np.take_along_axis(w, order, axis=-1)
    cum = np.cumsum(w_sorted, axis=-1)
    before = np.concatenate([np.zeros_like(cum[..., :1]), cum[..., :-1]], axis=-1)  # mass ahead
    keep_sorted = before < top_p * cum[..., -1:]                      # not yet reached: keep
    keep = np.empty_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return np.where(keep, w, 0.0)


def next_char_weights(z, temperature=1.0, top_k=None, top_p=None):
    """exp((z - max z) / temperature) (..., V) float64 from logits z (..., V), each row
    the probabilities up to their sum (the largest weight is 1, so the sum is >= 1),
    optionally top-k only, then top-p only. :func:`draw` takes them as they are;
    generation skips normalising them."""
    z = np.asarray(z, dtype=np.float64)
    V = z.shape[-1]
    if top_k is not None and top_k < V:
        cutoff = np.partition(z, V - top_k, axis=-1)[..., V - top_k, None]   # k-th largest
        z = np.where(z >= cutoff, z, -np.inf)               # exp(-inf) = 0: never drawn
    # max first: z / 1e-300 would be inf - inf
    w = np.exp((z - z.max(axis=-1, keepdims=True)) / temperature)
    if top_p is not None and top_p < 1:                     # 1 keeps all (as in HF): no rounding
        w = nucleus(w, top_p)
    return w


def next_char_distribution(z, temperature=1.0, top_k=None, top_p=None):
    """Probabilities (..., V) float64 from logits z (..., V) at a temperature, optionally
    top-k only, then top-p only."""
    w = next_char_weights(z, temperature, top_k, top_p)
    return w / w.sum(axis=-1, keepdims=True)


def draw_rows(w, u):
    """Index (B,) drawn per row of weights w (B, V) >= 0, given a uniform u (B,) in [0, 1)
    per row: the first k whose cumulative weight exceeds u times the row's total."""
    cdf = np.cumsum(w, axis=-1)
    k = (cdf <= (u * cdf[:, -1])[:, None]).sum(axis=-1)   # searchsorted(side="right") by row
    return np.minimum(k, w.shape[-1] - 1)


def draw(p, rng):
    """One index drawn with probabilities p (V,), or any nonnegative weights (drawn in
    proportion: p need not sum to 1); a zero-weight index never comes out."""
    return int(draw_rows(np.asarray(p)[None], rng.random(1))[0])


def generate_rows(model, vocab, prime="", length=500, temperature=1.0, greedy=False, top_k=None,
                  top_p=None, seed=None, what="prime text", num_samples=1, stop=None):
    """Yield, per step, the next character of each of ``num_samples`` rows: a list of N
    str, "" for a row that has stopped; at most ``length`` steps, fewer once every row
    has stopped. The rows run as one batch; the prime runs once (batch 1).

    The N rows share one Generator, ``default_rng(seed)``: each sampling step draws
    ``rng.random(N)``, one uniform per row (row b takes u[b]), stopped rows included,
    so a row's text does not depend on when the others stop, and N = 1 is exactly
    the single stream. Row k's text depends on N (at step t it takes the uniform
    number t·N + k). An empty prime with no newline in the vocabulary first draws
    one start character for all rows. ``greedy`` draws nothing.
    On CuPy (the fast engine) the draws run on the GPU (engine/device_sampling.py),
    from the same Generator's numbers, each row taking its own as here.
    ``stop`` : a row ends after the first ``stop`` lying wholly in its generated text
    (kept; the prime never counts, even where it ends with part of ``stop``).
    """
    check_sampling_options(length, temperature, greedy, top_k, top_p, num_samples, stop)
    if stop is not None:
        vocab.encode(stop, what="stop text")                # a char it never makes: never stops
    rng = np.random.default_rng(seed)
    z, state = prime_model(model, vocab, prime, rng, what)              # z (1, V)
    N = int(num_samples)
    state = repeat_state(model, state, N)                               # (N, H): all rows = prime
    if device_sampling.applies(model) is None:                          # drawn on the GPU
        rows = device_rows(model, state, z, length, temperature, greedy, top_k, top_p, rng)
    else:
        rows = host_rows(model, state, z, length, temperature, greedy, top_k, top_p, rng)
    live, tails = np.ones(N, bool), [""] * N                # tails: each row's last chars
    for ids in rows:
        chars = [vocab.chars[k] if alive else "" for k, alive in zip(ids, live)]
        yield chars
        if stop is not None:
            for b, ch in enumerate(chars):
                tails[b] = (tails[b] + ch)[-len(stop):]
                live[b] &= tails[b] != stop
            if not live.any():
                return


def host_rows(model, state, z, length, temperature, greedy, top_k, top_p, rng):
    """Yield ``length`` id arrays (N,), drawn on the host from the stepper's logits."""
    N = state[0][0].shape[0]
    step = make_stepper(model, state)
    z_host = np.repeat(to_host(z), N, axis=0)                           # (N, V)
    for t in range(length):
        if greedy:
            ids = np.argmax(z_host, axis=-1)
        else:
            ids = draw_rows(next_char_weights(z_host, temperature, top_k, top_p), rng.random(N))
        yield ids
        if t + 1 < length:
            z_host = to_host(step(ids))                                 # (N, V)


def device_rows(model, state, z, length, temperature, greedy, top_k, top_p, rng):
    """Yield ``length`` id arrays (N,), drawn on the GPU, a chunk of chars per copy
    (engine/device_sampling.py)."""
    if length == 0:
        return
    N = state[0][0].shape[0]
    z = model.backend.xp.repeat(z, N, axis=0)                           # (N, V)
    sampler = DeviceSampler(model, state, z, length, temperature, greedy, top_k, top_p, rng)
    for chunk in sampler.chunks():                                      # (N, k) on the host
        yield from chunk.T


def generate_iter(model, vocab, prime="", length=500, temperature=1.0, greedy=False,
                  top_k=None, seed=None, what="prime text", *, top_p=None, stop=None):
    """Yield ``length`` generated characters one at a time (the prime is not yielded),
    or fewer: the last one ends the first ``stop``.

    ``what`` names the prime in errors (a prime file's path).
    """
    for chars in generate_rows(model, vocab, prime, length, temperature, greedy, top_k,
                               top_p, seed, what, 1, stop):
        yield chars[0]


def generate(model, vocab, prime="", length=500, temperature=1.0, greedy=False,
             top_k=None, seed=None, *, prime_file=None, beam_width=None, top_p=None,
             num_samples=None, stop=None):
    """Return the prime followed by ``length`` generated characters (or by fewer, up
    to and including the first ``stop``); with ``num_samples``, a list of N such str.

    model : CharRNN (any cell); vocab : data.Vocab
    prime_file : read the prime from this UTF-8 file instead (any length)
    temperature : > 0, ignored with greedy; greedy : always take the most likely character
    top_k : draw only among the k most likely characters
    top_p : in (0, 1]: draw only among the fewest most likely characters whose
        probability (after temperature and top_k) reaches top_p (1: all of them)
    num_samples : N >= 1: N samples as one batch; returns a list of N str (None: one str)
    stop : non-empty str: each sample ends at its first ``stop`` after the prime (kept)
    seed : same seed (and same N), same texts; how the rows draw: :func:`generate_rows`
    beam_width : K >= 1: instead of sampling, the continuation with the highest
        log-probability that a beam of K finds (deterministic; K = 1 is greedy);
        combines with none of temperature, greedy, top_k, top_p, seed, num_samples, stop
    """
    prime, what = resolve_prime(prime, prime_file)
    if beam_width is not None:
        given = [name for name, off in (("temperature", temperature == 1.0),
                                        ("greedy", not greedy), ("top_k", top_k is None),
                                        ("top_p", top_p is None), ("seed", seed is None),
                                        ("num_samples", num_samples is None),
                                        ("stop", stop is None)) if not off]
        refuse("beam_width", given, BEAM_WHY)
        return prime + beam_search(model, vocab, prime, length, beam_width, what)[0]
    N = 1 if num_samples is None else num_samples
    steps = list(generate_rows(model, vocab, prime, length, temperature, greedy, top_k, top_p,
                               seed, what, N, stop))                  # steps[t][b]: row b's char
    texts = [prime + "".join(chars[b] for chars in steps) for b in range(N)]
    return texts[0] if num_samples is None else texts
