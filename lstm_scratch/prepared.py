"""A corpus prepared once, then memory-mapped: text bigger than RAM trains in bounded memory.

    lstm-scratch prepare big.txt --out big/      # vocab.json, train.bin, val.bin
    lstm-scratch train big/
    lstm-scratch prepare a.txt b.txt notes/ --out ab/    # several: joined as train joins them

``prepare`` streams the UTF-8 file in chunks, twice: the first read checks
every byte and finds the vocabulary (ids must be known before any is
written), the second writes each char's id, in the narrowest unsigned dtype
that holds the vocabulary, into ``train.bin`` and ``val.bin`` (raw arrays,
nanoGPT's prepare.py layout). Memory is a few chunks, whatever the file size.

Training opens the two files with ``np.memmap``: stream batches are views of
their rows' slices and window batches gather their windows, so only the
pages a batch touches are read. The split is the one ``split_train_val``
makes of the same text, so a prepared corpus trains exactly like the file
(or, from several files, exactly like training on them: documents.py).
"""
import json
import os

import numpy as np

from .data import Vocab, split_train_val
from .documents import DOC_SEP, corpus_chunks, corpus_name, encode_corpus, is_list
from .errors import UserError

FORMAT = "lstm-scratch prepared corpus"
VERSION = 1
CHUNK_BYTES = 8 << 20           # bounds memory: a chunk's str, code points and ids


def ids_dtype(vocab_size):
    """The narrowest unsigned dtype holding ids 0 .. vocab_size - 1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)


def _code_points(text):
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def _scan(path, chunk_bytes, doc_sep):
    """The first read: every byte checked, (the vocabulary, the number of chars)."""
    seen = np.zeros(1 << 16, dtype=bool)           # the Basic Multilingual Plane, as a bitmap
    astral, n_chars = set(), 0
    for text in corpus_chunks(path, doc_sep, chunk_bytes):
        codes = _code_points(text)
        seen[codes[codes < (1 << 16)]] = True
        astral.update(np.unique(codes[codes >= (1 << 16)]).tolist())
        n_chars += len(codes)
    if n_chars == 0:
        raise UserError(f"{corpus_name(path)}: is empty, expected some text to learn from")
    return Vocab.from_codes(np.flatnonzero(seen).tolist() + sorted(astral)), n_chars


def prepare(path, out_dir, val_frac=0.05, chunk_bytes=CHUNK_BYTES, doc_sep=DOC_SEP):
    """Write ``out_dir``/vocab.json, train.bin, val.bin from the UTF-8 file ``path``, or
    from a list of files and folders (documents.py), joined by ``doc_sep``.

    Returns the metadata written to vocab.json (a dict).
    """
    if not 0.0 <= val_frac < 1.0:
        raise UserError(f"--val-frac must be in [0, 1), got {val_frac!r}")
    if is_list(path) and len(path) == 1:
        path = path[0]                          # one path: as given alone
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"{out_dir}: exists and is not a directory; choose another --out")
    names = [os.path.join(out_dir, name) for name in ("vocab.json", "train.bin", "val.bin")]
    if any(os.path.exists(name) for name in names):     # a run may be training from it
        raise UserError(f"{out_dir}: already holds a prepared corpus; choose another --out "
                        f"(or delete it first)")
    vocab, n_chars = _scan(path, chunk_bytes, doc_sep)
    what = corpus_name(path)
    dtype = ids_dtype(len(vocab))
    lookup = np.full(int(vocab._codes[-1]) + 1, -1, dtype=np.int32)   # code point -> id
    lookup[vocab._codes] = np.arange(len(vocab), dtype=np.int32)
    n_val = int(n_chars * val_frac)                              # as split_train_val
    n_train = n_chars - n_val
    os.makedirs(out_dir, exist_ok=True)
    written, partial = 0, [name + ".partial" for name in names]
    try:
        with open(partial[1], "wb") as train, open(partial[2], "wb") as val:
            for text in corpus_chunks(path, doc_sep, chunk_bytes):
                codes = _code_points(text)
                ids = lookup[np.minimum(codes, len(lookup) - 1)]
                if ids.min() < 0 or codes.max() >= len(lookup):
                    raise UserError(f"{what}: changed while being prepared (new characters); "
                                    f"prepare it again")
                ids = ids.astype(dtype)
                cut = max(0, min(len(ids), n_train - written))
                train.write(ids[:cut].tobytes())
                val.write(ids[cut:].tobytes())
                written += len(ids)
        if written != n_chars:
            raise UserError(f"{what}: changed while being prepared ({n_chars} chars, then "
                            f"{written}); prepare it again")
        source = [os.path.abspath(p) for p in path] if is_list(path) else os.path.abspath(path)
        meta = dict(format=FORMAT, version=VERSION, source=source,
                    vocab=vocab.codes.tolist(), dtype=dtype.name, train_chars=n_train,
                    val_chars=n_val, val_frac=val_frac)
        if is_list(path) or os.path.isdir(path):
            meta["doc_sep"] = doc_sep           # how its documents were joined
        with open(partial[0], "w") as f:
            json.dump(meta, f)
    except BaseException:               # an interrupted prepare leaves no half corpus
        for name in partial:
            if os.path.exists(name):
                os.unlink(name)
        raise
    for name in (1, 2, 0):              # vocab.json last: it marks the folder complete
        os.replace(partial[name], names[name])
    return meta


def is_prepared(path):
    """Is ``path`` (one path, not a list) a folder written by :func:`prepare`?"""
    return not is_list(path) and os.path.isdir(path) and \
        os.path.exists(os.path.join(path, "vocab.json"))


class Prepared:
    """A prepared folder opened for reading: vocab, and train/val ids as memory maps."""

    def __init__(self, folder):
        meta_path = os.path.join(folder, "vocab.json")
        if not os.path.isdir(folder):
            raise UserError(f"{folder}: no such folder")
        if not os.path.exists(meta_path):
            raise UserError(f"{folder}: is a directory without vocab.json; expected a UTF-8 "
                            f"text file or a folder written by lstm-scratch prepare")
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as exc:
            raise UserError(f"{meta_path}: not readable JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise UserError(f"{meta_path}: not written by lstm-scratch prepare")
        if meta.get("version") != VERSION:
            raise UserError(f"{meta_path}: prepared-corpus version {meta.get('version')}, "
                            f"this lstm-scratch reads version {VERSION}; run prepare again")
        self.folder, self.meta = folder, meta
        self.vocab = Vocab.from_codes(meta["vocab"])
        self.val_frac = float(meta["val_frac"])
        dtype = np.dtype(meta["dtype"])
        self.train_ids = self._map("train.bin", dtype, meta["train_chars"])
        self.val_ids = self._map("val.bin", dtype, meta["val_chars"])

    def _map(self, name, dtype, n):
        path = os.path.join(self.folder, name)
        size = os.path.getsize(path) if os.path.exists(path) else None
        if size != n * dtype.itemsize:
            raise UserError(f"{path}: holds {size} bytes, vocab.json says {n} {dtype.name} ids "
                            f"({n * dtype.itemsize} bytes); run lstm-scratch prepare again")
        if n == 0:
            return np.zeros(0, dtype)            # np.memmap refuses an empty file
        return np.memmap(path, dtype=dtype, mode="r", shape=(n,))


def open_corpus(path, val_frac, vocab=None, doc_sep=DOC_SEP, grow=False):
    """(vocab, train_ids, val_ids) of a text file, a folder of them or a list of files
    and folders (documents.py: joined by ``doc_sep``), or a prepared folder.

    vocab : the checkpoint's vocabulary when resuming or evaluating (None: the
        corpus's own). Text is read whole; a prepared folder is mapped, its
        split fixed when it was prepared.
    grow : ``vocab`` is to be extended by the corpus's new characters (fine-tuning);
        a prepared folder's ids are fixed, so it must hold all of ``vocab`` already.
    """
    if not is_prepared(path):
        vocab, ids = encode_corpus(path, doc_sep, vocab, grow)
        train_ids, val_ids = split_train_val(ids, val_frac)
        return vocab, train_ids, val_ids
    corpus = Prepared(path)
    if grow and vocab is not None:
        missing = len(set(vocab.chars) - set(corpus.vocab.chars))
        if missing:
            raise UserError(f"{path}: prepared with a vocabulary that lacks {missing} of the "
                            f"checkpoint's {len(vocab)} chars, and a prepared corpus's ids are "
                            f"fixed; fine-tune on the text files instead")
        vocab = corpus.vocab
    if vocab is not None and vocab != corpus.vocab:
        raise UserError(f"{path}: prepared with a vocabulary of {len(corpus.vocab)} chars that "
                        f"differs from the checkpoint's {len(vocab)}; prepare the text again "
                        f"or train a new model")
    if val_frac != corpus.val_frac:
        raise UserError(f"{path}: was prepared with --val-frac {corpus.val_frac:g}, not "
                        f"{val_frac:g}; the split is fixed by prepare (run it again to change it)")
    return corpus.vocab, corpus.train_ids, corpus.val_ids


def prepared_val_frac(path):
    """The val_frac a prepared folder was split with, or None for anything else (a list too)."""
    return Prepared(path).val_frac if is_prepared(path) else None
