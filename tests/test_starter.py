"""The model shipped in the package: a name where a checkpoint goes, right after install."""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch.checkpoint import load_checkpoint
from lstm_scratch.data import builtin_corpus_path
from lstm_scratch.errors import UserError
from lstm_scratch.starter import SHIPPED, checkpoint_path, shipped_path
from conftest import ROOT, run_cli as cli

STARTER = "shakespeare"


def test_the_shipped_file_is_weights_only_and_small():
    path = shipped_path(STARTER)
    assert os.path.getsize(path) <= 4.2e6                        # the wheel grows <= ~4 MB
    saved = load_checkpoint(STARTER)                              # every member checked
    assert saved["optim"] == {} and saved["ema"] is None and saved["carry"] is None
    train = saved["meta"]["train"]
    assert train["data"] is None and train["out_dir"] is None    # no paths of the machine
    assert train["val_frac"] == 0.1                              # nanoGPT's split
    assert saved["meta"]["model"]["vocab_size"] == 65


def test_load_by_name_samples_shakespeare():
    model, vocab = ls.load(STARTER, backend="numpy")
    assert model.config["hidden_size"] == 256 and model.config["num_layers"] == 2
    text = ls.generate(model, vocab, prime="ROMEO:", length=300, temperature=0.5, seed=1)
    words = text.split()
    assert text.startswith("ROMEO:") and len(words) > 30
    # A trained model writes mostly words it read, not letters at random.
    known = set(open(builtin_corpus_path(), encoding="utf-8").read().split())
    assert np.mean([w in known for w in words]) > 0.6


def test_eval_by_name_is_under_1_80_nats():
    done = cli("eval", STARTER, "--json", "--backend", "numpy")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["val_loss"] <= 1.80 and figures["chars"] > 100_000      # the whole 10%


def test_sample_by_name_from_any_folder(tmp_path):
    done = cli("sample", STARTER, "--prime", "JULIET:", "--length", 80, "--seed", 3,
               "--backend", "numpy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("JULIET:") and len(done.stdout) == len("JULIET:") + 81


def test_init_from_by_name_grows_the_vocabulary(tmp_path):
    text = tmp_path / "code.txt"
    text.write_text("def f(x):\n    return {x: [1, 2]}  # tabs\tand_underscores\n" * 40,
                    encoding="utf-8")
    out = tmp_path / "run"
    done = cli("train", text, "--init-from", STARTER, "--out", out, "--max-steps", 2,
               "--batch-size", 4, "--seq-len", 20, "--no-samples", "--backend", "numpy")
    assert done.returncode == 0, done.stderr
    model, vocab = ls.load(out / "latest.npz", backend="numpy")
    assert {"{", "[", "_", "\t", "#", "1"} <= set(vocab.chars) and len(vocab) > 65


def test_a_file_of_that_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / STARTER).write_bytes(b"not a zip")
    assert checkpoint_path(STARTER) == STARTER
    with pytest.raises(UserError, match="shakespeare: not an lstm-scratch checkpoint"):
        load_checkpoint(STARTER)


@pytest.mark.parametrize("args", [("sample", "shakespear"), ("eval", "shakespear"),
                                  ("export", "shakespear", "--html", "x.html"),
                                  ("train", "--init-from", "shakespear", "--max-steps", 1)])
def test_an_unknown_name_lists_the_shipped_ones(args, tmp_path):
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr == ("lstm-scratch: error: shakespear: no such checkpoint file, nor a "
                           f"shipped model (shipped: {', '.join(SHIPPED)})\n")


def test_resume_from_the_shipped_model_says_to_init_from_it():
    with pytest.raises(UserError, match="holds no optimizer state.*--init-from"):
        ls.train(None, None, resume=STARTER, max_steps=1)


def test_a_missing_shipped_file_says_how_to_make_it(monkeypatch, tmp_path):
    import lstm_scratch.starter as starter
    monkeypatch.setattr(starter, "shipped_path", lambda name: str(tmp_path / "gone.npz"))
    with pytest.raises(UserError, match="missing from this installation.*train_starter.py"):
        checkpoint_path(STARTER)


def can_build_without_isolation():
    """setuptools that can write a wheel by itself (>= 70.1), or with the wheel package."""
    try:
        import setuptools.command.bdist_wheel  # noqa: F401
        return True
    except ImportError:
        try:
            import setuptools  # noqa: F401
            import wheel  # noqa: F401
            return True
        except ImportError:
            return False


def test_the_wheel_ships_the_model_the_page_script_and_the_corpus(tmp_path):
    """Built from a copy of the sources (no stale build/ folder can stand in for them), with
    this environment's setuptools where it can write a wheel, else in pip's isolated build
    (which fetches setuptools: skipped only where no index can be reached)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    shutil.copytree(os.path.join(ROOT, "lstm_scratch"), src / "lstm_scratch",
                    ignore=shutil.ignore_patterns("__pycache__"))
    isolation = [] if can_build_without_isolation() else ["--use-pep517"]
    flags = ["--no-build-isolation"] if not isolation else isolation
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "--disable-pip-version-check", *flags,
                           "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and isolation and ("No matching distribution" in done.stderr
                                               or "Could not find a version" in done.stderr):
        pytest.skip("no setuptools here that writes wheels, and no package index to fetch one")
    assert done.returncode == 0, done.stderr
    wheel, = (tmp_path / "dist").glob("lstm_scratch-*.whl")
    with zipfile.ZipFile(wheel) as z:
        sizes = {info.filename: info.file_size for info in z.infolist()}
    shipped = "lstm_scratch/models/shakespeare.npz"
    assert {shipped, "lstm_scratch/webpage.js", "lstm_scratch/corpus/tinyshakespeare.txt",
            "lstm_scratch/engine/device_sampling.cu", "lstm_scratch/engine/device_optim.cu"
            } <= set(sizes)                     # the GPU's kernel sources, read at run time
    assert sizes[shipped] == os.path.getsize(shipped_path(STARTER))
