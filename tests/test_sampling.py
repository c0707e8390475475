import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import CharLSTM, CharRNN, UserError, Vocab, generate
from lstm_scratch.sampling import draw, next_char_distribution, next_char_weights
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
