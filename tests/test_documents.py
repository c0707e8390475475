"""Several files and folders as one corpus (documents.py), through training,
checkpoints, resume and prepare."""
import builtins
import re
import errno
import io
import json
import os

import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch import UserError
from lstm_scratch.checkpoint import load_checkpoint
from lstm_scratch.cli import main
from lstm_scratch.config import TrainConfig
from lstm_scratch.data import read_text
from lstm_scratch.documents import corpus_files, encode_corpus, read_corpus
from lstm_scratch.prepared import Prepared, open_corpus, prepare
from lstm_scratch.train import saved_config
from conftest import make_text

OPTIONS = dict(hidden_size=8, num_layers=1, seq_len=16, batch_size=4, backend="numpy",
               dtype="float64", sample_temperatures=(), eval_every=3, val_frac=0.1)


def names(path, what):
    """A pattern for an error that begins with ``path``, then says ``what`` (a regex)."""
    return f"^{re.escape(str(path))}: {what}"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def docs(tmp_path):
    """a.txt, b.txt and notes/ (three .txt files in two levels, and a .md that is left out)."""
    a = write(tmp_path / "a.txt", make_text(30, seed=1))
    b = write(tmp_path / "b.txt", make_text(30, seed=2).upper())
    notes = tmp_path / "notes"
    for name, seed in (("zeta.txt", 3), ("sub/y.txt", 4), ("alpha.txt", 5)):  # made out of order
        write(notes / name, make_text(20, seed=seed))
    write(notes / "readme.md", "not a document ~~~")
    return [str(a), str(b), str(notes)]


def test_a_folder_is_its_txt_files_recursively_in_sorted_order(docs):
    notes = docs[2]
    expected = [os.path.join(notes, p) for p in ("alpha.txt", os.path.join("sub", "y.txt"),
                                                  "zeta.txt")]
    assert corpus_files(notes) == expected
    assert corpus_files(docs) == docs[:2] + expected
    assert corpus_files(docs[0]) == [docs[0]]                   # a file: itself


def test_documents_are_joined_by_the_separator(docs):
    texts = [read_text(p) for p in corpus_files(docs)]
    assert read_corpus(docs) == "\n\n".join(texts)
    assert read_corpus(docs, "<|doc|>") == "<|doc|>".join(texts)
    assert read_corpus(docs, "") == "".join(texts)
    assert read_corpus(docs[0], "<|doc|>") == read_text(docs[0])     # one file: nothing joined
    vocab, ids = encode_corpus(docs, "<|doc|>")
    assert vocab.decode(ids) == "<|doc|>".join(texts) and "|" in vocab.chars
    _, train_ids, val_ids = open_corpus(docs, 0.1, doc_sep="<|doc|>")
    np.testing.assert_array_equal(np.concatenate([train_ids, val_ids]), ids)
    assert len(val_ids) == int(len(ids) * 0.1)                  # the joined text's tail


def test_training_on_a_list_is_training_on_the_joined_text(docs):
    options = dict(OPTIONS, max_steps=4, doc_sep="\n---\n")
    log = io.StringIO()
    _, vocab, listed = ls.train(docs, out=log, **options)
    joined = read_corpus(docs, "\n---\n")
    files = [os.path.relpath(p) for p in corpus_files(docs)]
    n_train, n_val = len(joined) - int(len(joined) * 0.1), int(len(joined) * 0.1)
    assert (f"text: 5 file(s), {', '.join(files[:3])} and 2 more, joined by '\\n---\\n': "
            f"{n_train:,} chars to train on, {n_val:,} held out\n") in log.getvalue()
    _, vocab_text, given = ls.train(joined, out=io.StringIO(), **options)
    assert vocab == vocab_text and "-" in vocab.chars
    assert [r["val_loss"] for r in listed] == [r["val_loss"] for r in given]


def test_one_path_in_a_list_is_that_path(docs, tmp_path):
    ls.train([docs[0]], str(tmp_path / "one"), max_steps=2, out=io.StringIO(), **OPTIONS)
    config = saved_config(load_checkpoint(str(tmp_path / "one" / "latest.npz")))
    assert config.data == docs[0]                               # a str, as `train a.txt` saves


def test_a_bad_document_is_one_line_naming_it(docs, tmp_path, monkeypatch):
    notes = tmp_path / "notes"
    bad = notes / "sub" / "latin1.txt"
    bad.write_bytes("ok\ncafé".encode("latin-1"))
    for call in (lambda: read_corpus(docs), lambda: prepare(docs, str(tmp_path / "p"))):
        with pytest.raises(UserError, match=names(bad, "not valid UTF-8 at byte 6 \\(line 2\\)")):
            call()
    bad.unlink()
    empty = write(notes / "empty.txt", "")
    for call in (lambda: read_corpus(docs), lambda: prepare(docs, str(tmp_path / "p"))):
        with pytest.raises(UserError, match=names(empty, "is empty")):
            call()
    empty.unlink()
    (notes / "gone.txt").symlink_to(tmp_path / "nowhere.txt")      # a dangling link
    with pytest.raises(UserError, match=names(notes / 'gone.txt', "no such file")):
        read_corpus(docs)
    (notes / "gone.txt").unlink()
    real_open = builtins.open

    def refuse(path, *args, **kwargs):                  # root reads anything: refuse this one
        if os.fspath(path) == docs[1]:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", refuse)
    with pytest.raises(UserError, match=names(docs[1], "cannot read: Permission denied")):
        read_corpus(docs)
    monkeypatch.undo()
    real_scandir = os.scandir

    def refuse_folder(path="."):
        if os.fspath(path) == os.path.join(docs[2], "sub"):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", refuse_folder)
    with pytest.raises(UserError, match=names(os.path.join(docs[2], "sub"),
                                              "cannot read: Permission denied")):
        read_corpus(docs)
    monkeypatch.undo()
    (tmp_path / "nothing" / "deeper").mkdir(parents=True)
    write(tmp_path / "nothing" / "deeper" / "x.md", "no .txt here")
    with pytest.raises(UserError, match=names(tmp_path / "nothing", "is a directory without "
                                              "vocab.json and without .txt files")):
        ls.train(docs + [str(tmp_path / "nothing")], **OPTIONS)
    for bad_data in ([], [3], ("a.txt", None)):
        with pytest.raises(UserError, match="--data must be a path or a non-empty list"):
            TrainConfig(data=bad_data).resolved()
    with pytest.raises(UserError, match="--doc-sep must be a str"):
        TrainConfig(doc_sep=0).resolved()


def test_a_list_round_trips_through_a_checkpoint_and_resume(docs, tmp_path, capsys):
    options = dict(OPTIONS, doc_sep="\n#\n")
    ls.train(docs, str(tmp_path / "straight"), max_steps=8, out=io.StringIO(), **options)
    ls.train(docs, str(tmp_path / "split"), max_steps=5, out=io.StringIO(), **options)
    latest = str(tmp_path / "split" / "latest.npz")
    config = saved_config(load_checkpoint(latest))
    assert config.data == [os.path.abspath(p) for p in docs] and config.doc_sep == "\n#\n"
    assert json.loads(json.dumps(config.to_dict()))["data"] == config.data
    ls.train(resume=latest, max_steps=8, out=io.StringIO())         # the list from the file
    straight = ls.load(str(tmp_path / "straight" / "latest.npz"))[0].params
    split = ls.load(latest)[0].params
    for name in straight:
        np.testing.assert_array_equal(split[name], straight[name], err_msg=name)
    with pytest.raises(UserError, match="--doc-sep .* conflicts with the checkpoint's"):
        ls.train(resume=latest, max_steps=9, doc_sep="\n")
    assert main(["eval", latest, "--json"]) == 0                # eval re-reads the list
    assert json.loads(capsys.readouterr().out)["chars"] > 0


@pytest.mark.parametrize("chunk_bytes", [7, 1 << 20])
def test_prepare_with_several_inputs_equals_train_on_them(docs, tmp_path, chunk_bytes):
    p = str(tmp_path / "p")
    meta = prepare(docs, p, val_frac=0.1, chunk_bytes=chunk_bytes, doc_sep="\n%\n")
    assert meta["source"] == [os.path.abspath(d) for d in docs] and meta["doc_sep"] == "\n%\n"
    vocab, train_ids, val_ids = open_corpus(docs, 0.1, doc_sep="\n%\n")
    corpus = Prepared(p)
    assert corpus.vocab == vocab
    np.testing.assert_array_equal(corpus.train_ids, train_ids)
    np.testing.assert_array_equal(corpus.val_ids, val_ids)
    if chunk_bytes == 7:
        return
    options = dict(OPTIONS, max_steps=4, doc_sep="\n%\n")
    _, _, listed = ls.train(docs, str(tmp_path / "a"), out=io.StringIO(), **options)
    _, _, prepared = ls.train(p, str(tmp_path / "b"), out=io.StringIO(), **options)
    assert [r["val_loss"] for r in listed] == [r["val_loss"] for r in prepared]


def test_a_prepared_folder_is_a_corpus_not_a_folder_of_documents(docs, tmp_path):
    p = tmp_path / "p"
    prepare(docs[0], str(p), val_frac=0.1)
    write(p / "stray.txt", "a document that must not be read")
    vocab, train_ids, _ = open_corpus(str(p), 0.1)                  # the prepared ids
    np.testing.assert_array_equal(train_ids, open_corpus(docs[0], 0.1)[1])
    assert "must not" not in vocab.decode(train_ids)
    with pytest.raises(UserError, match=names(p, "is a folder written by lstm-scratch prepare")):
        open_corpus([docs[0], str(p)], 0.1)
    with pytest.raises(UserError, match=names(p, "is a folder written by lstm-scratch prepare")):
        prepare(str(p), str(tmp_path / "q"))
    folder = tmp_path / "notes"                                     # no vocab.json: documents
    assert open_corpus(str(folder), 0.1)[0] == encode_corpus(str(folder))[0]
