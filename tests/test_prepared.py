import json
import os

import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch.cli import main
from lstm_scratch.data import read_text
from lstm_scratch.errors import UserError
from lstm_scratch.prepared import Prepared, ids_dtype, open_corpus, prepare
from conftest import make_text

OPTIONS = dict(hidden_size=12, seq_len=16, batch_size=8, backend="numpy", dtype="float64",
               sample_temperatures=(), eval_every=5, max_steps=10)


@pytest.mark.parametrize("chunk_bytes", [7, 1 << 20])
def test_prepared_ids_equal_the_text_split(tmp_path, chunk_bytes):
    text = "\ufeff" + make_text(50) + "Zoë, naïve 🎭 café\n" * 3   # multibyte chars cut by chunks
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    meta = prepare(str(path), str(tmp_path / "p"), val_frac=0.1, chunk_bytes=chunk_bytes)
    vocab, train_ids, val_ids = open_corpus(str(path), 0.1)
    corpus = Prepared(str(tmp_path / "p"))
    assert corpus.vocab == vocab and meta["dtype"] == "uint8"
    np.testing.assert_array_equal(corpus.train_ids, train_ids)
    np.testing.assert_array_equal(corpus.val_ids, val_ids)
    assert vocab.decode(np.concatenate([corpus.train_ids, corpus.val_ids])) == text[1:]


def test_ids_dtype_is_the_narrowest():
    assert [ids_dtype(n).name for n in (2, 256, 257, 65536, 65537)] == \
        ["uint8", "uint8", "uint16", "uint16", "uint32"]


@pytest.mark.parametrize("chunk_bytes", [5, 64, 1 << 20])
def test_a_bad_byte_names_its_offset_and_line_as_read_text_does(tmp_path, chunk_bytes):
    path = tmp_path / "bad.txt"
    path.write_bytes("héllo\nwörld\nab".encode() + b"\xe9t\xc3" + b"\nmore\n")
    with pytest.raises(UserError) as whole:
        read_text(str(path))
    with pytest.raises(UserError) as streamed:
        prepare(str(path), str(tmp_path / "p"), chunk_bytes=chunk_bytes)
    assert str(streamed.value) == str(whole.value)
    assert "at byte 16 (line 3)" in str(whole.value)
    path.write_bytes(b"abc\xc3")                               # cut inside the last char
    with pytest.raises(UserError, match="at byte 3 \\(line 1\\)"):
        prepare(str(path), str(tmp_path / "p"), chunk_bytes=2)


@pytest.mark.parametrize("mode", ["stream", "window"])
def test_training_from_a_prepared_folder_is_training_from_the_file(corpus_file, tmp_path, mode):
    prepare(str(corpus_file), str(tmp_path / "p"))
    _, _, a = ls.train(str(corpus_file), str(tmp_path / "a"), mode=mode, **OPTIONS)
    _, _, b = ls.train(str(tmp_path / "p"), str(tmp_path / "b"), mode=mode, **OPTIONS)
    assert [r["val_loss"] for r in a] == [r["val_loss"] for r in b]
    ma, _ = ls.load(str(tmp_path / "a" / "latest.npz"))
    mb, _ = ls.load(str(tmp_path / "b" / "latest.npz"))
    for name in ma.params:
        np.testing.assert_array_equal(ma.params[name], mb.params[name])


def test_prepare_train_resume_eval_on_the_cli(corpus_file, tmp_path, capsys):
    p, run = str(tmp_path / "p"), str(tmp_path / "run")
    assert main(["prepare", str(corpus_file), "--out", p, "--val-frac", "0.1"]) == 0
    assert "train with: lstm-scratch train" in capsys.readouterr().out
    common = ["--hidden-size", "8", "--batch-size", "4", "--seq-len", "8", "--no-samples",
              "--backend", "numpy"]
    assert main(["train", p, "--out", run, "--max-steps", "3", "--eval-chars", "200"] + common) == 0
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    assert rows[-1]["step"] == 3
    assert main(["train", "--resume", os.path.join(run, "latest.npz"), "--max-steps", "5"]) == 0
    capsys.readouterr()
    assert main(["eval", os.path.join(run, "latest.npz"), "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert whole["chars"] > 600                         # the whole split (744 chars)
    assert main(["eval", os.path.join(run, "latest.npz"), "--json", "--eval-chars", "101"]) == 0
    assert json.loads(capsys.readouterr().out)["chars"] == 100
    assert main(["train", p, "--out", str(tmp_path / "r2"), "--val-frac", "0.2"] + common) == 2
    assert "split is fixed by prepare" in capsys.readouterr().err


def test_damaged_folders_are_one_line_errors(corpus_file, tmp_path, capsys):
    p = tmp_path / "p"
    prepare(str(corpus_file), str(p))
    with open(p / "train.bin", "r+b") as f:
        f.truncate(10)
    assert main(["train", str(p), "--max-steps", "1"]) == 2
    assert "run lstm-scratch prepare again" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", str(tmp_path / "empty"), "--max-steps", "1"]) == 2
    assert "without vocab.json" in capsys.readouterr().err
    assert main(["prepare", str(corpus_file), "--out", str(p)]) == 2      # never overwritten
    assert "already holds a prepared corpus" in capsys.readouterr().err
    (tmp_path / "e.txt").write_bytes(b"")
    assert main(["prepare", str(tmp_path / "e.txt"), "--out", str(tmp_path / "q")]) == 2
    assert "is empty" in capsys.readouterr().err


def test_each_evaluation_is_bounded(corpus_file, tmp_path):
    _, _, capped = ls.train(str(corpus_file), **dict(OPTIONS, eval_chars=100, max_steps=5))
    _, _, whole = ls.train(str(corpus_file), **dict(OPTIONS, eval_chars=None, max_steps=5))
    assert capped[-1]["val_loss"] != whole[-1]["val_loss"]


def test_visualize_reads_the_held_out_ids_of_a_prepared_folder(corpus_file, tmp_path, capsys):
    p = str(tmp_path / "p")
    prepare(str(corpus_file), p)
    ls.train(p, str(tmp_path / "run"), **dict(OPTIONS, max_steps=2))
    out = str(tmp_path / "cells.html")
    assert main(["visualize", str(tmp_path / "run" / "latest.npz"), "--length", "50",
                 "--out", out, "--backend", "numpy"]) == 0
    assert "50 chars of" in capsys.readouterr().out and os.path.getsize(out) > 0
