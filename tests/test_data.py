import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import UserError
from lstm_scratch.data import (StreamBatches, Vocab, WindowBatches, builtin_corpus_path,
                               make_batches, read_text, split_train_val)
from strategies import seeds


def test_read_text_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_text(str(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match="is a directory"):
        read_text(str(tmp_path))
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(UserError, match="is empty"):
        read_text(str(tmp_path / "empty.txt"))
    (tmp_path / "latin1.txt").write_bytes("line one\ncaf\u00e9 au lait".encode("latin-1"))
    with pytest.raises(UserError, match=r"not valid UTF-8 at byte 12 \(line 2\)"):
        read_text(str(tmp_path / "latin1.txt"))


def test_read_text_drops_bom_and_keeps_the_rest(tmp_path):
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfhi\r\nthere\n")
    assert read_text(str(tmp_path / "bom.txt")) == "hi\r\nthere\n"


def test_builtin_corpus_is_shipped():
    text = read_text(builtin_corpus_path())
    assert len(text) == 1115394 and text.startswith("First Citizen:")


@given(st.text(min_size=1, max_size=200))
def test_vocab_is_sorted_and_round_trips(text):
    vocab = Vocab.from_text(text)
    assert vocab.chars == sorted(set(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.int32 and vocab.decode(ids) == text
    assert Vocab.from_codes(vocab.codes) == vocab


def test_vocab_names_unknown_characters():
    vocab = Vocab.from_text("abc")
    with pytest.raises(UserError, match=r"prime text has 2 character\(s\) not in the vocabulary, "
                                        r"first at position 1: 'x', 'é'"):
        vocab.encode("axbé", what="prime text")
    with pytest.raises(UserError, match=r"f.txt has 1 character\(s\) not in the vocabulary, "
                                        r"first at position 4 \(line 3\): 'x'"):
        Vocab.from_text("ab\n").encode("a\nb\nx", what="f.txt")          # a text with lines: the line too


def test_split_by_position():
    train, val = split_train_val(np.arange(100), 0.05)
    assert list(val) == [95, 96, 97, 98, 99] and len(train) == 95
    train, val = split_train_val(np.arange(10), 0.0)
    assert len(train) == 10 and len(val) == 0


@given(st.integers(2, 300), st.integers(1, 12), st.integers(1, 5), st.integers(1, 16), seeds)
def test_windows_cover_every_start_once(n, seq_len, step, batch_size, seed):
    ids = np.arange(n, dtype=np.int32)            # id = position: easy to check
    if n <= seq_len:
        with pytest.raises(UserError, match="too short for one window"):
            WindowBatches(ids, seq_len, step, batch_size, seed)
        return
    b = WindowBatches(ids, seq_len, step, batch_size, seed)
    starts = []
    for k in range(b.batches_per_epoch):
        inputs, targets = b.batch(0, k)
        assert inputs.shape[1] == seq_len and targets.shape == (inputs.shape[0],)
        np.testing.assert_array_equal(inputs, inputs[:, :1] + np.arange(seq_len))
        np.testing.assert_array_equal(targets, inputs[:, -1] + 1)      # the next char
        starts += list(inputs[:, 0])
    assert sorted(starts) == list(range(0, n - seq_len, step))        # Keras's range
    assert max(starts) + seq_len < n                                 # no target past the end


def test_window_order_is_seeded_per_epoch():
    ids = np.arange(1000, dtype=np.int32)
    a, b = WindowBatches(ids, 5, 1, 1000, seed=0), WindowBatches(ids, 5, 1, 1000, seed=0)
    np.testing.assert_array_equal(a.batch(3, 0)[0], b.batch(3, 0)[0])
    assert not np.array_equal(a.batch(0, 0)[0], a.batch(1, 0)[0])
    unshuffled = WindowBatches(ids, 5, 1, 10, shuffle=False)
    assert list(unshuffled.batch(0, 0)[0][:, 0]) == list(range(10))


@given(st.integers(2, 400), st.integers(1, 30), st.integers(1, 8))
def test_streams_are_contiguous_and_shifted(n, seq_len, batch_size):
    ids = np.arange(n, dtype=np.int32)
    if (n - 1) // batch_size < 1:
        with pytest.raises(UserError, match="too short"):
            StreamBatches(ids, seq_len, batch_size)
        return
    b = StreamBatches(ids, seq_len, batch_size)
    xs, ys = zip(*(b.batch(0, k) for k in range(b.batches_per_epoch)))
    assert all(x.shape[1] <= seq_len and x.shape[0] == batch_size for x in xs)
    x, y = np.concatenate(xs, axis=1), np.concatenate(ys, axis=1)
    L = (n - 1) // batch_size
    np.testing.assert_array_equal(x, np.arange(batch_size * L).reshape(batch_size, L))
    np.testing.assert_array_equal(y, x + 1)                       # every char a target
    assert b.targets_per_epoch() == batch_size * L


def test_make_batches_rejects_unknown_mode():
    with pytest.raises(UserError, match="unknown mode 'bptt'"):
        make_batches(np.arange(10), "bptt", 3, 2)
