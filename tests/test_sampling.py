import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import CharLSTM, CharRNN, UserError, Vocab, generate
from lstm_scratch.sampling import draw, draw_rows, next_char_distribution, next_char_weights
from strategies import seeds


@pytest.fixture(scope="module")
def model_and_vocab():
    vocab = Vocab.from_text("abcdefgh \n")
    model = CharLSTM(len(vocab), 16, 2, dropout=0.0, seed=0)
    rng = np.random.default_rng(0)
    for p in model.params.values():                    # a peaky, non-trivial model
        p[...] = rng.standard_normal(p.shape) * 0.8
    return model, vocab


def test_same_seed_same_text(model_and_vocab):
    model, vocab = model_and_vocab
    a = generate(model, vocab, "abc", 80, 1.0, seed=5)
    assert a == generate(model, vocab, "abc", 80, 1.0, seed=5)
    assert a != generate(model, vocab, "abc", 80, 1.0, seed=6)
    assert a.startswith("abc") and len(a) == 83


def test_stateful_generation_equals_refeeding_the_whole_text(model_and_vocab):
    """Carrying the state must give what re-running the model over all text so far gives."""
    model, vocab = model_and_vocab
    text = generate(model, vocab, "ab", 30, greedy=True)
    for n in range(2, len(text)):
        z, _ = model.logits(vocab.encode(text[:n])[None, :])
        assert vocab.chars[int(np.argmax(z[0]))] == text[n]


def test_tiny_temperature_tends_to_greedy(model_and_vocab):
    model, vocab = model_and_vocab
    greedy = generate(model, vocab, "h", 60, greedy=True)
    assert generate(model, vocab, "h", 60, temperature=1e-6, seed=1) == greedy
    assert generate(model, vocab, "h", 60, top_k=1, seed=1) == greedy


@given(st.lists(st.floats(-30, 30), min_size=2, max_size=12), st.integers(1, 12), seeds)
def test_top_k_never_leaves_the_top_k(z, k, seed):
    z = np.array(z)
    p = next_char_distribution(z, 1.0, top_k=k)
    allowed = set(np.flatnonzero(z >= np.sort(z)[-min(k, len(z))]))
    rng = np.random.default_rng(seed)
    assert {draw(p, rng) for _ in range(50)} <= allowed
    assert set(np.flatnonzero(p > 0)) <= allowed


@pytest.mark.parametrize("temperature", [1e-300, 1e-12, 1e-3, 0.5, 1.0, 7.0, 1e12, 1e300])
def test_distribution_is_safe_and_normalised(temperature):
    z = np.array([1000.0, -1000.0, 0.0, 3.0])
    p = next_char_distribution(z, temperature)
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0)
    expected = np.exp((z - z.max()) / temperature)
    np.testing.assert_allclose(p, expected / expected.sum(), atol=1e-12)


@given(st.lists(st.floats(-30, 30), min_size=2, max_size=12), st.floats(0.01, 100.0))
def test_weights_are_the_distribution_up_to_its_sum(z, temperature):
    """Against softmax(z / τ) written another way: exp(z/τ - log Σ exp(z/τ))."""
    u = np.array(z) / temperature
    w = next_char_weights(np.array(z), temperature)
    assert w.max() == 1.0                                   # exp(0) for the largest logit
    np.testing.assert_allclose(w / w.sum(), np.exp(u - np.logaddexp.reduce(u)), atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 7.0])
def test_draw_follows_the_distribution(scale):
    """Probabilities or weights (scale 7: they sum to 7): the same frequencies."""
    p = np.array([0.1, 0.0, 0.6, 0.3])
    rng = np.random.default_rng(0)
    counts = np.bincount([draw(scale * p, rng) for _ in range(20000)], minlength=4)
    assert counts[1] == 0
    np.testing.assert_allclose(counts / 20000, p, atol=0.015)      # ~4 standard deviations


def test_bad_options_and_prime(model_and_vocab):
    model, vocab = model_and_vocab
    with pytest.raises(UserError, match="temperature must be"):
        generate(model, vocab, "a", 5, temperature=0.0)
    with pytest.raises(UserError, match="top_k must be"):
        generate(model, vocab, "a", 5, top_k=0)
    with pytest.raises(UserError, match="length must be"):
        generate(model, vocab, "a", -1)
    with pytest.raises(UserError, match=r"prime text has 1 character\(s\) not in the vocabulary, "
                                        r"first at position 1: 'Z'"):
        generate(model, vocab, "aZ", 5)
    assert generate(model, vocab, "a", 5, temperature=0.0, greedy=True).startswith("a")


def test_empty_prime(model_and_vocab):
    model, vocab = model_and_vocab
    assert len(generate(model, vocab, "", 20, seed=0)) == 20


def test_reference_engine_samples_the_same_text(model_and_vocab):
    model, vocab = model_and_vocab
    texts = []
    for engine in ("fast", "reference"):
        m = CharLSTM(len(vocab), 16, 2, dropout=0.0, dtype="float64", engine=engine)
        m.load_params(model.params)
        texts.append(generate(m, vocab, "abc", 60, 1.0, seed=5))
    assert texts[0] == texts[1]


def test_prime_file_equals_the_same_prime(model_and_vocab, tmp_path):
    model, vocab = model_and_vocab
    text = "abc\nhead\n" * 400                              # longer than one PRIME_CHUNK pass
    path = tmp_path / "prime.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))   # a byte-order mark is not text
    out = generate(model, vocab, length=30, seed=2, prime_file=path)
    assert out == generate(model, vocab, text, 30, seed=2) and out.startswith(text)
    z, _ = model.logits(vocab.encode(text)[None, :])    # chunked priming = one pass
    assert generate(model, vocab, length=1, greedy=True, prime_file=path)[-1] == \
        vocab.chars[int(np.argmax(z[0]))]


def test_bad_prime_files(model_and_vocab, tmp_path):
    model, vocab = model_and_vocab
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"abc\nab\xe9c")
    with pytest.raises(UserError, match=r"bad.txt: not valid UTF-8 at byte 6 \(line 2\)"):
        generate(model, vocab, length=5, prime_file=bad)
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("abc\nhead\nbeZ\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"unknown.txt has 1 character\(s\) not in the "
                                        r"vocabulary, first at position 11 \(line 3\): 'Z'"):
        generate(model, vocab, length=5, prime_file=unknown)
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(UserError, match="empty.txt: is empty, expected the prime text"):
        generate(model, vocab, length=5, prime_file=tmp_path / "empty.txt")
    with pytest.raises(UserError, match="no such file"):
        generate(model, vocab, length=5, prime_file=tmp_path / "nope.txt")
    with pytest.raises(UserError, match="give a prime or a prime file, not both"):
        generate(model, vocab, "ab", 5, prime_file=unknown)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_sample_the_same_text_on_both_engines(model_and_vocab, cell):
    _, vocab = model_and_vocab
    texts = []
    for engine in ("fast", "reference"):
        m = CharRNN(len(vocab), cell, 16, 2, dropout=0.0, dtype="float64", seed=4, engine=engine)
        texts.append(generate(m, vocab, "abc", 60, 1.0, seed=5))
    assert texts[0] == texts[1] and len(texts[0]) == 63
    m = CharRNN(len(vocab), cell, 16, 2, dropout=0.0, dtype="float64", seed=4)
    z, _ = m.logits(vocab.encode(texts[0][:-1])[None, :])    # stateful = refeeding
    assert generate(m, vocab, texts[0][:-1], 1, greedy=True)[-1] == vocab.chars[int(np.argmax(z[0]))]


# -- top-p (nucleus), num_samples, stop ------------------------------------------------

def test_tiny_top_p_is_greedy(model_and_vocab):
    model, vocab = model_and_vocab
    greedy = generate(model, vocab, "h", 60, greedy=True)
    assert generate(model, vocab, "h", 60, top_p=1e-9, seed=1) == greedy
    assert generate(model, vocab, "h", 60, top_p=1e-9, temperature=3.0, top_k=4, seed=2) == greedy


@pytest.mark.parametrize("options", [dict(), dict(temperature=0.7), dict(top_k=3),
                                     dict(num_samples=3)])
def test_top_p_1_is_plain_sampling(model_and_vocab, options):
    model, vocab = model_and_vocab
    plain = generate(model, vocab, "abc", 200, seed=5, **options)
    assert generate(model, vocab, "abc", 200, seed=5, top_p=1.0, **options) == plain
    assert generate(model, vocab, "abc", 200, seed=5, top_p=0.9, **options) != plain


def test_top_p_1_drops_nothing():
    """Not even a char too unlikely to move the running sum (1 + 2e-22 == 1)."""
    z = np.array([0.0, -50.0, 3.0, -60.0])
    np.testing.assert_array_equal(next_char_weights(z, top_p=1.0), next_char_weights(z))
    assert (next_char_distribution(z, 0.5, top_p=1.0) > 0).all()


def frequencies(z, n=20000, seed=0, **options):
    """How often each index comes out of ``n`` draws from the weights of logits z."""
    w = next_char_weights(np.asarray(z, dtype=np.float64), **options)
    rng = np.random.default_rng(seed)
    return np.bincount([draw(w, rng) for _ in range(n)], minlength=len(z)) / n


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [2, 0, 3, 1]])     # ids need not be sorted
def test_top_p_draws_only_from_the_nucleus_renormalised(order):
    p = np.array([0.5, 0.3, 0.15, 0.05])[order]
    nucleus = lambda *idx: np.isin(order, idx)                     # positions of those probs
    # 0.5 < 0.75 <= 0.5 + 0.3: the two most likely, 0.625 : 0.375
    np.testing.assert_allclose(frequencies(np.log(p), top_p=0.75),
                               np.where(nucleus(0, 1), p / 0.8, 0), atol=0.015)
    # top-p after temperature: at tau = 2 the probabilities are sqrt(p) / 1.866, and the
    # three most likely (0.379 + 0.294 < 0.75) make the nucleus
    q = np.sqrt(p) / np.sqrt(p).sum()
    want = np.where(nucleus(0, 1, 2), q, 0)
    np.testing.assert_allclose(frequencies(np.log(p), temperature=2.0, top_p=0.75),
                               want / want.sum(), atol=0.015)


def test_top_k_comes_before_top_p():
    """As in HF transformers: top-k 2 leaves 0.4 : 0.3 = 0.571 : 0.429, whose nucleus at 0.5
    is the top char alone (top-p first would keep two: 0.4 < 0.5 on the full distribution)."""
    z = np.log([0.3, 0.1, 0.4, 0.2])
    np.testing.assert_array_equal(next_char_distribution(z, top_k=2, top_p=0.5), [0, 0, 1, 0])
    np.testing.assert_allclose(next_char_distribution(z, top_k=2, top_p=0.6),
                               [3 / 7, 0, 4 / 7, 0])


@given(st.lists(st.floats(-30, 30), min_size=2, max_size=12), st.floats(0.01, 1.0),
       st.floats(0.1, 10.0), seeds)
def test_top_p_keeps_the_smallest_most_likely_set_reaching_p(z, top_p, temperature, seed):
    z = np.array(z)
    full = next_char_distribution(z, temperature)
    p = next_char_distribution(z, temperature, top_p=top_p)
    kept = p > 0
    assert full[kept].sum() >= top_p - 1e-9                         # reaches P
    assert full[kept].sum() - full[kept].min() < top_p + 1e-9       # and no smaller set does
    assert full[~kept].max(initial=0) <= full[kept].min()           # the most likely ones
    np.testing.assert_allclose(p[kept], full[kept] / full[kept].sum(), rtol=1e-9)
    rng = np.random.default_rng(seed)
    assert all(kept[draw(p, rng)] for _ in range(50))


def test_draw_rows_is_draw_by_row():
    rng = np.random.default_rng(0)
    w = rng.random((5, 9)) * (rng.random((5, 9)) > 0.3)
    w[:, 4] = 1.0
    ids = draw_rows(w, np.random.default_rng(1).random(5))
    one = np.random.default_rng(1)
    assert ids.tolist() == [draw(row, one) for row in w]


def test_num_samples_gives_n_texts_reproducibly(model_and_vocab):
    model, vocab = model_and_vocab
    texts = generate(model, vocab, "abc", 80, seed=5, num_samples=3)
    assert isinstance(texts, list) and len(texts) == 3 and len(set(texts)) == 3
    assert all(t.startswith("abc") and len(t) == 83 for t in texts)
    assert generate(model, vocab, "abc", 80, seed=5, num_samples=3) == texts
    assert generate(model, vocab, "abc", 80, seed=6, num_samples=3) != texts
    # N = 1 draws as the single stream does: one uniform a step
    assert generate(model, vocab, "abc", 80, seed=5, num_samples=1) == \
        [generate(model, vocab, "abc", 80, seed=5)]
    assert generate(model, vocab, "abc", 0, seed=5, num_samples=2) == ["abc", "abc"]


@pytest.mark.parametrize("cell, engine", [("lstm", "fast"), ("lstm", "reference"), ("gru", "fast")])
def test_row_k_draws_uniform_t_times_n_plus_k(model_and_vocab, cell, engine):
    """The docstring's promise, against a loop of model.step_logits, one row at a time:
    row k at step t takes the (t·N + k)-th uniform of default_rng(seed)."""
    model, vocab = model_and_vocab
    m = CharRNN(len(vocab), cell, 16, 2, dropout=0.0, dtype="float64", seed=3, engine=engine)
    if cell == "lstm":
        m.load_params(model.params)
    N, length, prime = 4, 40, "bad"
    texts = generate(m, vocab, prime, length, 0.8, top_k=6, top_p=0.95, seed=11, num_samples=N)
    u = np.random.default_rng(11).random((length, N))        # rng.random(N) once a step
    for k in range(N):
        z, state = m.logits(vocab.encode(prime)[None, :])
        row = ""
        for t in range(length):
            w = next_char_weights(z, 0.8, top_k=6, top_p=0.95)
            c = int(draw_rows(w, u[t, k:k + 1])[0])
            row += vocab.chars[c]
            z, state = m.step_logits(np.array([c]), state)
        assert texts[k] == prime + row


def test_greedy_like_rows_all_equal_single_greedy(model_and_vocab):
    model, vocab = model_and_vocab
    greedy = generate(model, vocab, "ab", 60, greedy=True)
    assert generate(model, vocab, "ab", 60, top_k=1, seed=3, num_samples=5) == [greedy] * 5
    assert generate(model, vocab, "ab", 60, greedy=True, num_samples=1) == [greedy]


def cut_after(text, start, stop):
    """text up to and including the first ``stop`` that begins at or after ``start``."""
    at = text.find(stop, start)
    return text if at < 0 else text[:at + len(stop)]


@pytest.mark.parametrize("stop", ["g", "ca", "\n"])
def test_stop_ends_each_sample_at_its_first_stop_and_keeps_it(model_and_vocab, stop):
    model, vocab = model_and_vocab
    prime = "he g cab\n"                                       # holds every stop: not a stop
    free = generate(model, vocab, prime, 300, seed=4, num_samples=3)
    stopped = generate(model, vocab, prime, 300, seed=4, num_samples=3, stop=stop)
    assert stopped == [cut_after(t, len(prime), stop) for t in free]
    assert all(t.endswith(stop) and len(t) < len(prime) + 300 for t in stopped)
    single = generate(model, vocab, prime, 300, seed=4, stop=stop)
    assert single == cut_after(generate(model, vocab, prime, 300, seed=4), len(prime), stop)


def test_stop_counts_only_generated_text(model_and_vocab):
    """A stop that the prime's last char would complete is not one: only a stop lying
    wholly after the prime ends a sample."""
    model, vocab = model_and_vocab
    text = generate(model, vocab, "a", 40, greedy=True)
    stop = text[:2]                            # the prime's 'a' and the first generated char
    out = generate(model, vocab, "a", 40, greedy=True, stop=stop)
    assert out == cut_after(text, 1, stop) and len(out) > 2    # "a" + 1 char if it counted


def test_bad_top_p_num_samples_and_stop(model_and_vocab):
    model, vocab = model_and_vocab
    for top_p in (0, 0.0, -0.5, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(UserError, match=r"top_p must be a number in \(0, 1\]"):
            generate(model, vocab, "a", 5, top_p=top_p)
    for n in (0, -1, 2.5):
        with pytest.raises(UserError, match="--num-samples must be an integer >= 1"):
            generate(model, vocab, "a", 5, num_samples=n)
    with pytest.raises(UserError, match="stop must be a non-empty text, got ''"):
        generate(model, vocab, "a", 5, stop="")
    with pytest.raises(UserError, match=r"stop text has 1 character\(s\) not in the vocabulary"):
        generate(model, vocab, "a", 5, stop="aZ")
    for options in (dict(top_p=0.5), dict(top_k=3), dict(num_samples=2)):
        name = next(iter(options))
        with pytest.raises(UserError, match=f"greedy does not combine with {name}: greedy takes"):
            generate(model, vocab, "a", 5, greedy=True, **options)
