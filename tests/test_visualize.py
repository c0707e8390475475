import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from lstm_scratch import CharLSTM, CharRNN, Vocab
from lstm_scratch.nn import log_softmax
from lstm_scratch.visualize import (correlated_cells, page_data, render_html, text_features,
                                    trace)

TEXT = 'He said "no" and left.\n  Then "yes",\n  she said.\n'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model_vocab():
    vocab = Vocab.from_text(TEXT)
    model = CharLSTM(len(vocab), 6, 2, dropout=0.0, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape) * 0.7
    return model, vocab


def test_trace_matches_the_model(model_vocab):
    model, vocab = model_vocab
    t = trace(model, vocab, TEXT)
    T = len(TEXT)
    assert t["chars"] == list(TEXT) and len(t["cells"]) == 2
    assert all(a.shape == (T, 6) and np.abs(a).max() <= 1 for a in t["cells"])
    ids = vocab.encode(TEXT)
    for n in (1, 7, T - 1):          # position n-1's prediction = the model run over TEXT[:n]
        z, state = model.logits(ids[None, :n])
        p = np.exp(log_softmax(z[0]))
        # The trace runs all of TEXT at once, logits() a prefix: GEMMs of other sizes,
        # which BLAS may round differently. Compare probabilities, not the order of near-ties.
        np.testing.assert_allclose(t["top_probs"][n - 1], np.sort(p)[::-1][:5], rtol=1e-9)
        np.testing.assert_allclose(p[t["top_ids"][n - 1]], t["top_probs"][n - 1], rtol=1e-9)
        np.testing.assert_allclose(t["cells"][1][n - 1], np.tanh(state[1][1][0]), atol=1e-6)
        if n < T:
            assert t["loss"][n - 1] == pytest.approx(-np.log(p[ids[n]]))
    assert np.isnan(t["loss"][-1])


def test_text_features():
    f = text_features('a "b" c\n  d\n')
    assert list(f["inside quotes"]) == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert list(f["position in line"][:9]) == [0, 1, 2, 3, 4, 5, 6, 7, 0]
    assert list(f["indentation"]) == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]


def test_correlated_cells_finds_a_planted_cell():
    rng = np.random.default_rng(0)
    feature = np.repeat([0.0, 1.0, 0.0, 1.0], 25)
    cells = [rng.uniform(-1, 1, (100, 4)), rng.uniform(-1, 1, (100, 5))]
    cells[1][:, 3] = 0.8 * feature - 0.4 + rng.normal(0, 0.05, 100)
    best = correlated_cells(cells, {"f": feature}, top=3)["f"]
    assert best[0][:2] == (1, 3) and best[0][2] > 0.95


def test_page_is_self_contained(model_vocab):
    model, vocab = model_vocab
    data = page_data(model, vocab, TEXT)
    page = render_html(data)
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)     # nothing from the network
    embedded = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                    page, re.S).group(1))
    assert embedded["chars"] == list(TEXT) and embedded["layers"] == 2 and embedded["hidden"] == 6
    assert set(embedded["correlated"]) == {"inside quotes", "position in line", "indentation"}


def test_no_text_of_the_model_becomes_markup(model_vocab):
    """A title holding a placeholder and a text holding markup stay text: the data block
    escapes <, > and &, and the page is filled in one pass."""
    model, vocab = model_vocab
    data = page_data(model, vocab, TEXT)
    data["chars"] = list("</script><img src=x onerror=alert(1)>")
    page = render_html(data, title="__DATA__ <b>__SHOWN__</b>")
    assert "<img" not in page and page.count("</script>") == page.count("<script")
    assert "<title>__DATA__ &lt;b&gt;__SHOWN__&lt;/b&gt;</title>" in page
    block = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert json.loads(block.group(1))["chars"] == data["chars"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (apt-get install chromium)")
def test_page_in_a_real_browser(model_vocab, tmp_path):
    model, vocab = model_vocab
    page = tmp_path / "cells.html"
    page.write_text(render_html(page_data(model, vocab, TEXT)), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=3000"]
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri() + "#selftest"],
                         capture_output=True, text=True, timeout=120).stdout
    result = json.loads(re.search(r'<pre id="selftest"[^>]*>(.*?)</pre>', dom, re.S).group(1))
    assert result["chars"] == len(TEXT) and result["rendered"] >= len(TEXT)
    assert result["coloured"] > 0                   # the chosen cell's colours are painted
    assert result["changed"]                        # choosing another cell repaints the text
    artifacts = os.path.join(ROOT, "test-artifacts")
    os.makedirs(artifacts, exist_ok=True)
    shot = os.path.join(artifacts, "visualize.png")
    subprocess.run(flags + ["--window-size=1100,800", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_trace_is_the_same_on_the_reference_engine():
    vocab = Vocab.from_text("abcd \n")
    fast = CharLSTM(len(vocab), 5, 2, dtype="float64", seed=1)
    book = CharLSTM(len(vocab), 5, 2, dtype="float64", seed=1, engine="reference")
    a, b = trace(fast, vocab, "abc dab"), trace(book, vocab, "abc dab")
    for la, lb in zip(a["cells"], b["cells"]):
        np.testing.assert_allclose(lb, la, rtol=1e-6)
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-10)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_trace_shows_h_for_cells_without_c(cell):
    vocab = Vocab.from_text(TEXT)
    model = CharRNN(len(vocab), cell, 6, 2, dropout=0.0, dtype="float64", seed=1)
    t = trace(model, vocab, TEXT)
    ids = vocab.encode(TEXT)
    _, state = model.logits(ids[None, :9])
    assert t["shown"] == "h" and len(state[1]) == 1
    np.testing.assert_allclose(t["cells"][1][8], state[1][0][0], atol=1e-6)   # h_t of layer 1
    page = render_html(page_data(model, vocab, TEXT))
    assert "colour = h of the chosen cell" in page
