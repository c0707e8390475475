"""Several text files as one corpus: folders expanded, documents joined by a separator.

    lstm-scratch train a.txt b.txt notes/        # ls.train(["a.txt", "b.txt", "notes/"])

A corpus is a path or a list of paths. A file is a document; a folder means
its ``*.txt`` files, recursively, sorted by their path relative to the folder
(written with "/", so the order is the same on every filesystem). The
documents, in that order, are joined with ``doc_sep`` (a blank line by
default) into the one text that training cuts into its train and held-out
parts, as it cuts a single file's. A single file is read as it always was:
nothing is joined to it.

A folder holding vocab.json is a corpus written by ``lstm-scratch prepare``,
not a folder of documents: it trains alone (prepared.py), never in a list.
"""
import os

import numpy as np

from .data import Vocab, read_text, read_text_chunks
from .errors import UserError

DOC_SEP = "\n\n"


def is_list(corpus):
    """Is ``corpus`` a list of paths (rather than one path)?"""
    return isinstance(corpus, (list, tuple))


def corpus_files(corpus):
    """The documents of ``corpus`` (a path or a list of paths), in order: each file as
    given, each folder's ``*.txt`` files in sorted order. A missing file is left for
    the reader to report; a folder without .txt files, or a prepared corpus, is a
    one-line UserError naming it."""
    files = []
    for path in (corpus if is_list(corpus) else [corpus]):
        path = os.fspath(path)
        files += _folder_files(path) if os.path.isdir(path) else [path]
    if not files:
        raise UserError("no training files given (an empty list)")
    return files


def _folder_files(folder):
    """``folder``'s .txt files, recursively, sorted by their path relative to it."""
    if os.path.exists(os.path.join(folder, "vocab.json")):
        raise UserError(f"{folder}: is a folder written by lstm-scratch prepare, not a folder "
                        f"of .txt files; train on it alone")
    found = []
    for root, dirs, names in os.walk(folder, onerror=_unreadable):
        for name in names:
            if name.endswith(".txt"):
                relative = os.path.relpath(os.path.join(root, name), folder)
                found.append((relative.replace(os.sep, "/"), os.path.join(root, name)))
    if not found:
        raise UserError(f"{folder}: is a directory without vocab.json and without .txt files; "
                        f"expected UTF-8 text files, a folder of them, or a folder written by "
                        f"lstm-scratch prepare")
    return [path for _, path in sorted(found)]


def _unreadable(exc):
    """os.walk skips a folder it cannot list; a corpus must not silently lose it."""
    raise UserError(f"{exc.filename}: cannot read: {exc.strerror}")


def shown_path(path):
    """``path`` relative to the current folder, to print; as given where it has no
    relative form (another drive, on Windows)."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return os.fspath(path)


def corpus_name(corpus):
    """A short name for ``corpus`` in messages: a.txt, or a.txt, b.txt and 3 more."""
    if not is_list(corpus):
        return os.fspath(corpus)
    names = [os.path.basename(os.path.normpath(os.fspath(p))) for p in corpus]
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:2])} and {len(names) - 2} more"


def read_documents(corpus):
    """[(file, text)] of every document of ``corpus``; each read is checked (read_text:
    a bad byte names its offset, an empty file is an error), naming the file."""
    return [(path, read_text(path)) for path in corpus_files(corpus)]


def read_corpus(corpus, doc_sep=DOC_SEP):
    """The text of ``corpus``: its documents joined by ``doc_sep`` (one file: its text)."""
    return doc_sep.join(text for _, text in read_documents(corpus))


def corpus_chunks(corpus, doc_sep=DOC_SEP, chunk_bytes=8 << 20):
    """The text of ``corpus`` (as :func:`read_corpus`) chunk by chunk, in bounded
    memory: each document's chunks, with ``doc_sep`` between documents."""
    for k, path in enumerate(corpus_files(corpus)):
        if k and doc_sep:
            yield doc_sep
        empty = True
        for text in read_text_chunks(path, chunk_bytes):
            empty = False
            yield text
        if empty:
            raise UserError(f"{path}: is empty, expected some text to learn from")


def encode_corpus(corpus, doc_sep=DOC_SEP, vocab=None, grow=False):
    """(vocab, ids) of ``corpus``'s text: ids (n,) int32 of the documents joined by ``doc_sep``.

    vocab : None, the text's own; else the vocabulary to encode with (a character it
        lacks is an error naming the file and line), or with ``grow``, a vocabulary
        to extend by the text's new characters (data.Vocab.grown).
    """
    documents = read_documents(corpus)
    if len(documents) == 1:                     # one file: as it always was read
        (path, text), = documents
        vocab = vocab.grown(text) if grow else vocab or Vocab.from_text(text)
        return vocab, vocab.encode(text, what=path)
    chars = set(doc_sep).union(*(set(text) for _, text in documents))
    vocab = vocab.grown(chars) if grow else vocab or Vocab(sorted(chars))
    sep = vocab.encode(doc_sep, what="the document separator (doc_sep)")
    pieces = []
    for k, (path, text) in enumerate(documents):     # each encoded alone: errors name the file
        pieces += [sep] * bool(k) + [vocab.encode(text, what=path)]
    return vocab, np.concatenate(pieces)
