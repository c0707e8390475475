import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import CharLSTM, CharRNN, UserError, Vocab, generate
from lstm_scratch.beam import BeamStepper, beam_search
from lstm_scratch.engine.stepper import Stepper
from lstm_scratch.nn import log_softmax
from strategies import seeds


def peaky_model(chars="abcdefgh \n", H=16, L=2, seed=0, dtype="float32"):
    vocab = Vocab.from_text(chars)
    model = CharLSTM(len(vocab), H, L, dropout=0.0, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed)
    for p in model.params.values():                    # a peaky, non-trivial model
        p[...] = rng.standard_normal(p.shape) * 0.8
    return model, vocab


def log_prob(model, vocab, prime, continuation):
    """log p(continuation | prime) in nats, by re-running the model over the text so far."""
    total = 0.0
    for n in range(len(continuation)):
        z, _ = model.logits(vocab.encode(prime + continuation[:n])[None, :])
        total += log_softmax(np.asarray(z, np.float64))[0, vocab.chars.index(continuation[n])]
    return total


@given(seeds, st.sampled_from(["", "a", "h\nbe"]), st.integers(0, 25))
def test_width_1_is_greedy(seed, prime, length):
    model, vocab = peaky_model(seed=seed % 50)
    assert (generate(model, vocab, prime, length, beam_width=1)
            == generate(model, vocab, prime, length, greedy=True))


@pytest.mark.parametrize("seed", range(4))
def test_width_V_over_two_chars_is_brute_force(seed):
    model, vocab = peaky_model(seed=seed, dtype="float64")
    V = len(vocab)
    every = {a + b: log_prob(model, vocab, "ab", a + b)
             for a, b in itertools.product(vocab.chars, repeat=2)}          # all V² of them
    best = max(every, key=every.get)
    text, score = beam_search(model, vocab, "ab", 2, beam_width=V)
    assert text == best and score == pytest.approx(every[best], abs=1e-9)


def test_the_brute_force_test_has_teeth():
    """On this model greedy's first char leads nowhere good: the beam must look ahead."""
    model, vocab = peaky_model(seed=3, dtype="float64")
    assert generate(model, vocab, "ab", 2, greedy=True) == "abcc"
    assert generate(model, vocab, "ab", 2, beam_width=len(vocab)) == "abfa"


@pytest.mark.parametrize("width", [1, 2, 3, 7, 10, 40])
def test_score_is_the_log_probability_of_the_text(width):
    model, vocab = peaky_model(seed=3, dtype="float64")
    text, score = beam_search(model, vocab, "gad", 12, beam_width=width)
    assert len(text) == 12
    assert score == pytest.approx(log_prob(model, vocab, "gad", text), abs=1e-9)


def test_deterministic_and_no_worse_than_greedy():
    model, vocab = peaky_model(seed=1)
    runs = [beam_search(model, vocab, "bad", 40, beam_width=4) for _ in range(2)]
    assert runs[0] == runs[1]
    greedy = generate(model, vocab, "bad", 40, greedy=True)[3:]
    # a beam keeps the greedy path until something better displaces it
    assert runs[0][1] >= log_prob(model, vocab, "bad", greedy) - 1e-4


def test_reorder_follows_the_rows():
    """Reordered in place = a fresh Stepper built from the reordered state."""
    model, _ = peaky_model(dtype="float64")
    rng = np.random.default_rng(0)
    state = [(rng.standard_normal((4, 16)), rng.standard_normal((4, 16))) for _ in range(2)]
    rows = np.array([2, 2, 0, 3])
    step = BeamStepper(model, state)
    step.reorder(rows)
    fresh = Stepper(model, [(h[rows], c[rows]) for h, c in state])
    for (h1, c1), (h2, c2) in zip(step.state(), fresh.state()):
        np.testing.assert_array_equal(h1, h2)
        np.testing.assert_array_equal(c1, c2)
    ids = np.array([1, 5, 0, 9])
    np.testing.assert_allclose(step(ids), fresh(ids), rtol=1e-12)


def test_long_prime_and_edges():
    model, vocab = peaky_model()
    assert beam_search(model, vocab, "ab", 0, beam_width=3) == ("", 0.0)
    assert generate(model, vocab, "ab", 0, beam_width=3) == "ab"
    long_prime = "abc defg\n" * 300                     # runs in chunks: same as one pass
    z, _ = model.logits(vocab.encode(long_prime)[None, :])
    first, _ = beam_search(model, vocab, long_prime, 1, beam_width=1)
    assert first == vocab.chars[int(np.argmax(z[0]))]


def test_bad_requests():
    model, vocab = peaky_model()
    with pytest.raises(UserError, match="--beam-width must be an integer >= 1, got 0"):
        beam_search(model, vocab, "a", 5, beam_width=0)
    with pytest.raises(UserError, match="length must be"):
        beam_search(model, vocab, "a", -1, beam_width=2)
    for options in (dict(temperature=0.5), dict(greedy=True), dict(top_k=3), dict(seed=1)):
        name = next(iter(options))
        with pytest.raises(UserError, match=f"beam_width does not combine with {name}"):
            generate(model, vocab, "a", 5, beam_width=2, **options)
    with pytest.raises(UserError, match="prime text has 1 character"):
        beam_search(model, vocab, "aZ", 5, beam_width=2)
    model, vocab = peaky_model("abc")                   # no newline to start after
    with pytest.raises(UserError, match="no newline to start from: give a prime"):
        beam_search(model, vocab, "", 5, beam_width=2)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_width_V_over_two_chars_is_brute_force(cell):
    vocab = Vocab.from_text("abcd\n")
    model = CharRNN(len(vocab), cell, 8, 2, dropout=0.0, dtype="float64", seed=1)
    rng = np.random.default_rng(1)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape) * 0.8
    best = max(("".join(p) for p in itertools.product(vocab.chars, repeat=2)),
               key=lambda c: log_prob(model, vocab, "ab", c))
    text, score = beam_search(model, vocab, "ab", 2, len(vocab))
    assert text == best and score == pytest.approx(log_prob(model, vocab, "ab", best))


def test_beam_refuses_top_p_num_samples_and_stop():
    model, vocab = peaky_model()
    for options in (dict(top_p=0.9), dict(num_samples=2), dict(num_samples=1), dict(stop="a")):
        name = next(iter(options))
        with pytest.raises(UserError, match=f"beam_width does not combine with {name}: beam "
                                            "search is deterministic and gives one text"):
            generate(model, vocab, "a", 5, beam_width=2, **options)


def imported_modules(path):
    """(module-level, function-level) relative imports of lstm_scratch's file ``path``."""
    import ast
    import os
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "lstm_scratch")
    tree = ast.parse(open(os.path.join(root, path), encoding="utf-8").read())
    top = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    inner = {node.module for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
             for node in ast.walk(fn) if isinstance(node, ast.ImportFrom)}
    return top, inner


def test_beam_and_sampling_do_not_import_each_other():
    """sampling imports beam; beam and what both share (stepping.py) never import sampling,
    and nothing is imported late, inside a function, to dodge a cycle."""
    for path in ("beam.py", "stepping.py"):
        top, inner = imported_modules(path)
        assert "sampling" not in top | inner and not inner, path
    top, inner = imported_modules("sampling.py")
    assert "beam" in top and not inner
