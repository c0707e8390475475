"""Text in, int batches out: reading, the vocabulary, the split, and two batching modes.

window (the Keras recipe): windows of ``seq_len`` chars taken every ``step``
    chars; the target is the one char after each window (many-to-one).
    Shuffled each epoch, by a Generator seeded from (seed, epoch).
stream (char-rnn's way): the text is cut into ``batch_size`` contiguous
    streams; chunk k of an epoch holds chars [k*seq_len, (k+1)*seq_len) of
    every stream, each predicting the next char, so the LSTM state carries
    from chunk k to chunk k+1 (truncated BPTT). No randomness.

Validation is the last ``val_frac`` of the text, cut by position before any
windows or streams are made, so no window straddles the boundary.
"""
import codecs
import math
import os
from importlib import resources

import numpy as np

from .errors import UserError

MODES = ("window", "stream")


def builtin_corpus_path():
    """Path of the built-in tinyshakespeare corpus inside the installed package."""
    return str(resources.files("lstm_scratch.corpus").joinpath("tinyshakespeare.txt"))


def read_text(path, expected="some text to learn from"):
    """Read a whole UTF-8 text file; every way it can fail is a one-line UserError.
    ``expected`` says what an empty file should have held."""
    text = "".join(read_text_chunks(path))
    if not text:
        raise UserError(f"{path}: is empty, expected {expected}")
    return text


def read_text_chunks(path, chunk_bytes=8 << 20):
    """Yield a UTF-8 file's text chunk by chunk (``chunk_bytes`` at a time), checked,
    with bounded memory: a bad byte is a one-line UserError naming its offset in the
    file and its line, wherever the chunks fall; a byte-order mark is dropped.
    """
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, expected a UTF-8 text file")
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset, lines, first = 0, 1, True       # bytes and newlines before this chunk
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}") from None
    with f:
        while True:
            try:
                raw = f.read(chunk_bytes)
            except OSError as exc:
                raise UserError(f"{path}: cannot read: {exc.strerror}") from None
            pending = len(decoder.getstate()[0])        # bytes of a char split by the last chunk
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:
                where = offset - pending + exc.start
                line = lines + exc.object.count(b"\n", 0, exc.start)
                raise UserError(f"{path}: not valid UTF-8 at byte {where} (line {line}): "
                                f"{exc.reason}; expected a UTF-8 text file "
                                f"(convert it, e.g. iconv -f latin1 -t utf-8)") from None
            if first and text:
                text, first = text.removeprefix("\ufeff"), False  # a byte-order mark is not text
            if text:
                yield text
            if not raw:
                return
            offset += len(raw)
            lines += raw.count(b"\n")


class Vocab:
    """The sorted set of characters: deterministic from run to run.

    ``chars[k]`` is the character with id k; ids follow code-point order.
    """

    def __init__(self, chars):
        self.chars = list(chars)
        if sorted(set(self.chars)) != self.chars or not self.chars:
            raise UserError("a vocabulary must be a non-empty sorted list of distinct characters")
        self._codes = np.array([ord(ch) for ch in self.chars], dtype=np.int64)

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    @classmethod
    def from_codes(cls, codes):
        return cls([chr(int(c)) for c in codes])

    def grown(self, chars):
        """This vocabulary with the characters of ``chars`` (any iterable of them, a str)
        it lacks. Still sorted, so an old character's id may change: ``new.ids_of(old)``
        maps them (fine-tuning moves the weights along)."""
        return Vocab(sorted(set(self.chars).union(chars)))

    def ids_of(self, other):
        """The ids here of ``other``'s characters (int64 (len(other),)); every one must be here."""
        ids = np.searchsorted(self._codes, other._codes)
        if not (self._codes[np.minimum(ids, len(self) - 1)] == other._codes).all():
            raise UserError("a vocabulary lacks characters of the one it should hold")
        return ids

    @property
    def codes(self):
        """Code points as an int32 array (how checkpoints store the vocabulary)."""
        return self._codes.astype(np.int32)

    def __len__(self):
        return len(self.chars)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.chars == other.chars

    def encode(self, text, what="text"):
        """str -> int32 ids (len(text),). Unknown characters are a UserError naming them."""
        cps = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        ids = np.searchsorted(self._codes, cps)
        known = self._codes[np.minimum(ids, len(self._codes) - 1)] == cps
        if not known.all():
            bad = np.flatnonzero(~known)
            unknown = sorted({text[k] for k in bad[:1000]})
            shown = ", ".join(repr(ch) for ch in unknown[:10])
            line = text.count("\n", 0, bad[0]) + 1
            where = f" (line {line})" if "\n" in text else ""     # a file's text, most likely
            raise UserError(f"{what} has {len(bad)} character(s) not in the vocabulary, "
                            f"first at position {bad[0]}{where}: {shown}")
        return ids.astype(np.int32)

    def decode(self, ids):
        return "".join(self.chars[int(k)] for k in np.asarray(ids).reshape(-1))


def split_train_val(ids, val_frac):
    """The first (1 - val_frac) of ids for training, the rest for validation."""
    n_val = int(len(ids) * val_frac)
    return ids[:len(ids) - n_val], ids[len(ids) - n_val:]


class WindowBatches:
    """Keras-recipe batches: inputs (B, seq_len), targets (B,) the next char."""

    mode = "window"

    def __init__(self, ids, seq_len=20, step=3, batch_size=128, seed=0, shuffle=True):
        if len(ids) <= seq_len:
            raise UserError(f"text too short for one window: {len(ids)} chars, "
                            f"need more than --seq-len {seq_len}")
        self.ids, self.seq_len, self.batch_size = ids, seq_len, batch_size
        self.seed, self.shuffle, self.step = seed, shuffle, step
        self.n_windows = len(range(0, len(ids) - seq_len, step))   # as range(0, len - maxlen, step)
        self.batches_per_epoch = math.ceil(self.n_windows / batch_size)
        self._order_epoch, self._order = None, None

    def order(self, epoch):
        """Window numbers in this epoch's order: a permutation seeded by (seed, epoch).
        Window j starts at j * step. (Numbers, not starts, and int32 when they fit:
        on a memory-mapped corpus of 10^9 chars this array is what takes memory.)"""
        if self._order_epoch != epoch:
            dtype = np.int32 if self.n_windows < 2**31 else np.int64
            self._order = None                  # the last epoch's order is garbage now
            numbers = np.arange(self.n_windows, dtype=dtype)
            # In place (permutation would copy), and the shuffle's draws do not depend on
            # the dtype: the same order as permuting the starts.
            if self.shuffle:
                np.random.default_rng([self.seed, epoch]).shuffle(numbers)
            self._order = numbers
            self._order_epoch = epoch
        return self._order

    def batch(self, epoch, k):
        numbers = self.order(epoch)[k * self.batch_size:(k + 1) * self.batch_size]
        starts = numbers.astype(np.int64) * self.step
        inputs = self.ids[starts[:, None] + np.arange(self.seq_len)]        # (B, T)
        return inputs, self.ids[starts + self.seq_len]                      # (B,)

    def targets_per_epoch(self):
        return self.n_windows


class StreamBatches:
    """char-rnn batches: inputs and targets (B, seq_len), state carried across chunks."""

    mode = "stream"

    def __init__(self, ids, seq_len=100, batch_size=64):
        stream_len = (len(ids) - 1) // batch_size
        if stream_len < 1:
            raise UserError(f"text too short for {batch_size} streams: {len(ids)} chars; "
                            f"use a smaller --batch-size")
        self.seq_len, self.batch_size = seq_len, batch_size
        n = batch_size * stream_len
        self.x = ids[:n].reshape(batch_size, stream_len)          # (B, L) stream b is row b
        self.y = ids[1:n + 1].reshape(batch_size, stream_len)     # the next char of each
        self.batches_per_epoch = math.ceil(stream_len / seq_len)

    def batch(self, epoch, k):
        cols = slice(k * self.seq_len, (k + 1) * self.seq_len)  # the last chunk may be shorter
        return self.x[:, cols], self.y[:, cols]

    def targets_per_epoch(self):
        return self.x.size


def make_batches(ids, mode, seq_len, batch_size, step=3, seed=0, shuffle=True):
    """The batcher for ``mode``; both have ``batch(epoch, k)`` and ``batches_per_epoch``."""
    if mode == "window":
        return WindowBatches(ids, seq_len, step, batch_size, seed, shuffle)
    if mode == "stream":
        return StreamBatches(ids, seq_len, batch_size)
    raise UserError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
