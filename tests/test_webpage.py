"""webpage.py: the model as one web page. Python checks always; the page's forward pass in
node (the fast check, no browser); the whole page in headless Chromium (skips without one)."""
import json
import math
import re
import shutil
import subprocess
import urllib.parse
from html.parser import HTMLParser

import numpy as np
import pytest

from lstm_scratch import CharRNN, UserError, Vocab
from lstm_scratch.sampling import generate
from conftest import run_cli as cli
from lstm_scratch.webpage import (clean_meta, decode_weights, encode_weights, export_html,
                                  page_data, page_script, render_page, script_json)

TEXT = "abc de.\nfgh ij,\n"
EVIL = "</script><!--<script>&\u2028\u2029\"'=xy\n\U0001F600"   # tries to escape; one astral char
EVIL_TITLE = "<img src=x onerror=alert(1)>"
STEPS = 300
NODE = shutil.which("node")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# (cell, embedding_size, tie_weights): one-hot input for each cell, an embedding, a tied head
MODELS = [("lstm", 0, False), ("gru", 0, False), ("rnn", 0, False), ("lstm", 8, True),
          ("gru", 5, False), ("rnn", 8, True)]


def random_model(cell="lstm", embedding_size=0, tie_weights=False, text=TEXT, H=8, L=2, seed=0,
                 **options):
    """A small float32 model with N(0, 0.6²) weights and biases: gates far from 1/2, biases
    nonzero, so a swapped gate or a missing bias changes the numbers."""
    vocab = Vocab.from_text(text)
    model = CharRNN(len(vocab), cell, H, L, dropout=0.0, seed=seed,
                    embedding_size=embedding_size, tie_weights=tie_weights, **options)
    rng = np.random.default_rng(seed + 1)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape) * 0.6
    return model, vocab


def python_greedy(model, vocab, prime, steps=STEPS):
    """Greedy text (prime + steps chars) and the next-char probabilities (steps, V) at each
    step, from model.step, each prime char one step (an empty prime: after "\\n")."""
    state = None
    for k in vocab.encode(prime or "\n"):
        p, state = model.step(np.array([k]), state)
    ids, probs = [], []
    for t in range(steps):
        probs.append(np.asarray(p[0], np.float64))
        ids.append(int(np.argmax(p[0])))
        if t + 1 < steps:
            p, state = model.step(np.array([ids[-1]]), state)
    return prime + vocab.decode(ids), np.array(probs)


def until_a_tie(probs, prime, gap=1e-5):
    """How many chars of greedy text (prime included) two correct implementations must
    agree on: up to the first step whose two likeliest chars are within ``gap``. There,
    float32 rounding (another CPU's BLAS, float64 JavaScript) may take either, and the
    texts may part from then on; the probabilities are compared at every step anyway."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    ties = np.flatnonzero(top2[:, 1] - top2[:, 0] < gap)
    return len(prime) + (int(ties[0]) + 1 if ties.size else len(probs))


def assert_same_greedy(texts, probs, prime):
    """Every text in ``texts`` is the same greedy text, up to the first near tie."""
    n = until_a_tie(probs, prime)
    assert len({t[:n] for t in texts}) == 1, [t[:n] for t in texts]
    return n


class Page(HTMLParser):
    """What a browser's parser would see: every start tag, the scripts' text, elements' text."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self.text, self._open = [], [], {}, []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        key = dict(attrs).get("id") or tag
        self._open.append((tag, key, []))

    def handle_endtag(self, tag):
        while self._open:
            open_tag, key, parts = self._open.pop()
            text = "".join(parts)
            self.text.setdefault(key, text)
            if open_tag == "script":
                self.scripts.append((self.tags_by_key(key), text))
            if self._open:
                self._open[-1][2].append(text)
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self._open:
            self._open[-1][2].append(data)

    def tags_by_key(self, key):
        return next(a for t, a in reversed(self.tags) if (a.get("id") or t) == key)


def parts(page_text):
    """(data dict, the JS, the parsed page) of a page."""
    page = Page(page_text)
    (data_attrs, data_text), (code_attrs, code) = page.scripts
    assert data_attrs == {"id": "model-data", "type": "application/json"} and code_attrs == {}
    return json.loads(data_text), code, page


# -- Python only --------------------------------------------------------------------------

def test_page_is_self_contained(tmp_path):
    model, vocab = random_model()
    info = export_html(model, vocab, tmp_path / "m.html", title="tiny", meta=dict(val_loss=1.5))
    text = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert info == dict(path=str(tmp_path / "m.html"), bytes=len(text.encode()), weights="float32",
                        params=model.num_params())
    for bad in ("http:", "https:", "//cdn", "@import", "url("):
        assert bad not in text.lower()
    data, _, page = parts(text)
    assert not any("src" in a or "href" in a for _, a in page.tags)        # nothing fetched
    assert {t for t, _ in page.tags} <= {"html", "head", "meta", "title", "style", "body", "h1",
                                         "p", "form", "label", "textarea", "input", "button",
                                         "pre", "script"}
    assert data["vocab"] == vocab.chars and data["config"] == model.config
    assert data["meta"] == dict(val_loss=1.5) and data["num_params"] == model.num_params()


def test_the_data_block_cannot_be_broken_out_of():
    model, vocab = random_model(text=EVIL)
    meta = dict(note="</script><script>alert(1)</script>", val_loss=float("nan"))
    text = render_page(model, vocab, title=EVIL_TITLE, meta=meta)
    data, code, page = parts(text)                 # exactly two scripts: ours
    assert not any(t == "img" for t, _ in page.tags)
    assert page.text["title"] == EVIL_TITLE and page.text["name"] == EVIL_TITLE     # shown, escaped
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert data["vocab"] == vocab.chars and data["title"] == EVIL_TITLE
    assert data["meta"] == dict(note=meta["note"], val_loss=None)
    block = re.search(r'type="application/json">(.*?)</script>', text, re.S).group(1)
    assert not set(block) & set("<>&\u2028\u2029") and block.isascii()
    assert code == "\n" + page_script() + "\n"


def test_script_json_round_trips_what_it_escapes():
    obj = {"s": EVIL + "\U0001F600", "n": [1, 2.5, None, True]}
    text = script_json(obj)
    assert json.loads(text) == obj and not set(text) & set("<>&\u2028\u2029")


def test_title_with_placeholders_is_not_expanded():
    model, vocab = random_model()
    text = render_page(model, vocab, title="__SCRIPT__ __DATA__")
    assert Page(text).text["name"] == "__SCRIPT__ __DATA__"


def test_float32_round_trip_is_exact_and_float16_within_half_an_ulp():
    model, vocab = random_model("gru", 5)
    back = decode_weights(encode_weights(model.params, "float32"))
    assert list(back) == list(model.params)
    for name, p in model.params.items():
        np.testing.assert_array_equal(back[name], p)
    rng = np.random.default_rng(0)
    w = {"a": (rng.standard_normal((7, 5)) * 3).astype(np.float32),
         "b": np.array([1e-6, -3e-5, 6e4, 0.0], np.float32)}            # subnormal, near max
    half = decode_weights(encode_weights(w, "float16"))
    for name, a in w.items():
        # float16 keeps 11 significant bits: |error| <= 2^-11 |w|, or 2^-25 among subnormals
        assert np.all(np.abs(half[name] - a) <= np.maximum(np.abs(a) * 2.0 ** -11, 2.0 ** -25))
    with pytest.raises(UserError, match="float16"):
        encode_weights({"big": np.array([7e4], np.float32)}, "float16")
    with pytest.raises(UserError, match="weights must be"):
        encode_weights(w, "int8")


@pytest.mark.parametrize("cell,embedding_size,tie_weights", MODELS)
def test_every_cell_exports(tmp_path, cell, embedding_size, tie_weights):
    model, vocab = random_model(cell, embedding_size, tie_weights)
    for weights in ("float32", "float16"):
        path = tmp_path / f"{cell}-{weights}.html"
        info = export_html(model, vocab, path, weights=weights)
        data, _, _ = parts(path.read_text(encoding="utf-8"))
        assert info["weights"] == data["weights"]["dtype"] == weights
        assert [name for name, _, _ in data["weights"]["layout"]] == list(model.params)
        assert data["gate_order"] == {"lstm": "ifgo", "gru": "rzn", "rnn": "h"}[cell]


def test_meta_is_checked():
    assert clean_meta(dict(a=np.float32(1.5), b=np.int64(3), c=math.inf, d="x", e=None,
                           f=np.bool_(True))) == dict(a=1.5, b=3, c=None, d="x", e=None, f=True)
    with pytest.raises(UserError, match="meta"):
        clean_meta(dict(a=[1, 2]))
    model, vocab = random_model()
    with pytest.raises(UserError, match="vocabulary"):
        page_data(model, Vocab.from_text("ab"))


# -- the forward pass in node --------------------------------------------------------------

DRIVER = r"""
const fs = require("fs"), vm = require("vm");
const [script, dataPath, jobPath] = process.argv.slice(2);
const {prime, length, forced} = JSON.parse(fs.readFileSync(jobPath, "utf8"));
vm.runInThisContext(fs.readFileSync(script, "utf8"));
const api = lstmScratchCore(JSON.parse(fs.readFileSync(dataPath, "utf8")));
const run = api.run({prime, length, greedy: true});
const ids = [], probs = [];
for (const k of run.picks) { ids.push(k); probs.push(Array.from(api.probs())); }
api.reset();                                           // teacher-forced: varied inputs
const forcedProbs = api.encode(forced).map(k => Array.from(api.step(k)));
process.stdout.write(JSON.stringify({text: run.prime + api.decode(ids), probs, forcedProbs,
                                     encoded: api.encode(prime)}));
"""
FORCED = TEXT * 8            # fed char by char: the state sees every input, not one fixed point


def run_in_node(page_text, tmp_path, prime, steps=STEPS, forced=FORCED):
    """The page's script in node: greedy text and probabilities from ``prime``, and the
    probabilities after each char of ``forced``, fed from a zero state."""
    data, code, _ = parts(page_text)
    files = dict(page=code, data=json.dumps(data), driver=DRIVER,
                 job=json.dumps(dict(prime=prime, length=steps, forced=forced)))
    for name, text in files.items():
        (tmp_path / f"{name}.js").write_text(text, encoding="utf-8")
    paths = [str(tmp_path / f"{name}.js") for name in ("driver", "page", "data", "job")]
    done = subprocess.run([NODE] + paths, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


needs_node = pytest.mark.skipif(NODE is None, reason="no node on PATH (apt-get install nodejs)")


@needs_node
@pytest.mark.parametrize("cell,embedding_size,tie_weights", MODELS)
def test_node_forward_pass_equals_model_step(tmp_path, cell, embedding_size, tie_weights):
    model, vocab = random_model(cell, embedding_size, tie_weights)
    prime = "ab c"
    got = run_in_node(render_page(model, vocab), tmp_path, prime)
    text, probs = python_greedy(model, vocab, prime)
    n = assert_same_greedy([text, got["text"], generate(model, vocab, prime, STEPS, greedy=True)],
                           probs, prime)
    got_probs = np.array(got["probs"])[:n - len(prime)]
    assert np.abs(got_probs - probs[:n - len(prime)]).max() < 1e-4
    assert got["encoded"] == vocab.encode(prime).tolist()
    assert np.abs(np.array(got["forcedProbs"]) - forced_probs(model, vocab)).max() < 1e-4


@needs_node
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_node_steps_zoneout_by_its_rates(tmp_path, cell):
    """A zoneout model's page mixes the previous state in at every step, as model.step does."""
    model, vocab = random_model(cell, 8, False, zoneout_cell=0.5 if cell == "lstm" else 0.0,
                                zoneout_hidden=0.2)
    got = run_in_node(render_page(model, vocab), tmp_path, "ab c")
    text, probs = python_greedy(model, vocab, "ab c")
    plain, _ = random_model(cell, 8, False)
    assert python_greedy(plain, vocab, "ab c")[1][:5].tolist() != probs[:5].tolist()
    n = assert_same_greedy([text, got["text"]], probs, "ab c")
    assert np.abs(np.array(got["probs"])[:n - 4] - probs[:n - 4]).max() < 1e-4
    assert np.abs(np.array(got["forcedProbs"]) - forced_probs(model, vocab)).max() < 1e-4


def forced_probs(model, vocab, text=FORCED):
    """model.step's next-char probabilities (len(text), V) after each char of ``text``."""
    state, out = None, []
    for k in vocab.encode(text):
        p, state = model.step(np.array([k]), state)
        out.append(p[0])
    return np.array(out, np.float64)


@needs_node
def test_node_reads_an_odd_vocabulary_by_code_point(tmp_path):
    model, vocab = random_model("lstm", text=EVIL)
    prime = "<\U0001F600\u2028</script>"
    got = run_in_node(render_page(model, vocab, title=EVIL_TITLE), tmp_path, prime, steps=100,
                      forced=EVIL * 4)
    text, probs = python_greedy(model, vocab, prime, steps=100)
    assert got["text"] == text and np.abs(np.array(got["probs"]) - probs).max() < 1e-4
    forced = np.array(got["forcedProbs"])
    assert np.abs(forced - forced_probs(model, vocab, EVIL * 4)).max() < 1e-4
    assert got["encoded"] == vocab.encode(prime).tolist()


@needs_node
def test_node_empty_prime_starts_after_a_newline(tmp_path):
    model, vocab = random_model("gru")
    got = run_in_node(render_page(model, vocab), tmp_path, "", steps=50)
    assert got["text"] == generate(model, vocab, "", 50, greedy=True)


@needs_node
def test_node_float16_page_equals_the_rounded_model(tmp_path):
    model, vocab = random_model("lstm", 8, True)
    rounded = {k: p.astype(np.float16) for k, p in model.params.items()}
    model.load_params(rounded)                   # the model the float16 page holds
    got = run_in_node(render_page(model, vocab, weights="float16"), tmp_path, "fa")
    text, probs = python_greedy(model, vocab, "fa")
    assert got["text"] == text and np.abs(np.array(got["probs"]) - probs).max() < 1e-4
    assert np.abs(np.array(got["forcedProbs"]) - forced_probs(model, vocab)).max() < 1e-4


@needs_node
def test_node_decodes_every_float16_exactly(tmp_path):
    model, vocab = random_model()
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    halves = halves[np.isfinite(halves)]                  # subnormals, zeros, the largest
    (tmp_path / "page.js").write_text(parts(render_page(model, vocab))[1], encoding="utf-8")
    (tmp_path / "w.json").write_text(json.dumps(encode_weights({"w": halves}, "float16")))
    done = subprocess.run([NODE, "-e", 'const fs = require("fs");'
                           'require("vm").runInThisContext(fs.readFileSync(process.argv[1], "utf8"));'
                           'const w = decodeWeights(JSON.parse(fs.readFileSync(process.argv[2])));'
                           'process.stdout.write(JSON.stringify(Array.from(w.w)));',
                           str(tmp_path / "page.js"), str(tmp_path / "w.json")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.array(json.loads(done.stdout), np.float32),
                                  halves.astype(np.float32))


# -- the page in headless Chromium ---------------------------------------------------------

needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="no Chromium found (apt-get install chromium)")


def dump_dom(path, tmp_path, **query):
    """The page's DOM after it ran, with ``query`` as its URL's parameters."""
    url = path.as_uri() + "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=20000", "--dump-dom", url]
    done = subprocess.run(flags, capture_output=True, text=True, timeout=180)
    return Page(done.stdout), done.stdout


def output_of(page):
    return next(a for t, a in page.tags if a.get("id") == "output"), page.text.get("output", "")


@needs_chromium
@pytest.mark.parametrize("cell,embedding_size,tie_weights", [("lstm", 0, False), ("gru", 8, True)])
def test_browser_greedy_text_and_probabilities(tmp_path, cell, embedding_size, tie_weights):
    model, vocab = random_model(cell, embedding_size, tie_weights)
    path = tmp_path / "m.html"
    export_html(model, vocab, path)
    prime = "ab c"
    page, dom = dump_dom(path, tmp_path, prime=prime, length=STEPS, greedy=1, autorun=1, probe=1)
    attrs, text = output_of(page)
    expected, probs = python_greedy(model, vocab, prime)
    assert attrs.get("data-done") == "1", dom[-2000:]
    n = assert_same_greedy([text, expected, generate(model, vocab, prime, STEPS, greedy=True)],
                           probs, prime)
    assert float(attrs["data-rate"]) > 0
    probe = np.array(json.loads(page.text["probe"]))[:n - len(prime)]
    assert np.abs(probe - probs[:n - len(prime)]).max() < 1e-4


@needs_chromium
def test_browser_samples_with_a_seed_and_reports_errors(tmp_path):
    model, vocab = random_model("rnn")
    path = tmp_path / "m.html"
    export_html(model, vocab, path)
    first = output_of(dump_dom(path, tmp_path, prime="a", length=80, seed=7, temperature=0.9,
                               topk=3, autorun=1)[0])[1]
    again = output_of(dump_dom(path, tmp_path, prime="a", length=80, seed=7, temperature=0.9,
                               topk=3, autorun=1)[0])[1]
    assert first == again and len(first) == 81 and set(first) <= set(vocab.chars)
    page, _ = dump_dom(path, tmp_path, prime="aQ", length=10, autorun=1)
    attrs, text = output_of(page)
    assert "not in the model's vocabulary" in attrs.get("data-error", "") and text == ""
    page, _ = dump_dom(path, tmp_path, prime="a", length="abc", autorun=1)
    attrs, text = output_of(page)
    assert attrs.get("data-error") == "?length=abc: expected a number" and text == ""


@needs_chromium
def test_browser_injection(tmp_path):
    model, vocab = random_model("lstm", text=EVIL)
    path = tmp_path / "evil.html"
    # A payload that marks the page rather than alert(), which would hold a headless page
    # (and the test) until the timeout if it ever ran.
    title = '<img src=x onerror="document.body.dataset.pwned=1">'
    note = '</script><img src=y onerror="document.body.dataset.pwned=2">'
    export_html(model, vocab, path, title=title, meta=dict(note=note, val_loss=1.25))
    prime = "</script>"
    page, dom = dump_dom(path, tmp_path, prime=prime, length=100, greedy=1, autorun=1)
    attrs, text = output_of(page)
    assert not any(t == "img" for t, _ in page.tags), dom[-2000:]
    assert "pwned" not in dict(next(a for t, a in page.tags if t == "body"))
    parts(dom)                                     # still exactly our two scripts
    assert page.text["name"] == title and note in page.text["about"]
    assert attrs.get("data-done") == "1"
    assert_same_greedy([text, generate(model, vocab, prime, 100, greedy=True)],
                       python_greedy(model, vocab, prime, 100)[1], prime)
    assert "val loss 1.2500 nats (1.803 bits per char)" in page.text["about"]


# -- lstm-scratch export, as a user types it ------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of a (random) GRU with an embedding, written as training writes one."""
    from lstm_scratch.checkpoint import save_checkpoint
    model, vocab = random_model("gru", 6, False)
    path = tmp_path_factory.mktemp("export") / "tiny.npz"
    save_checkpoint(path, params=model.params, vocab=vocab,
                    meta=dict(model=model.config, train={}, progress=dict(
                        step=120, epoch=3, val_loss=2.5, best_val=2.5)))
    return dict(path=path, model=model, vocab=vocab)


def test_export_command_writes_the_page(checkpoint, tmp_path):
    out = tmp_path / "tiny.html"
    done = cli("export", checkpoint["path"], "--html", out)
    assert done.returncode == 0, done.stderr
    size = out.stat().st_size
    params = checkpoint["model"].num_params()
    assert done.stdout.strip() == (f"wrote {out} ({size:,} bytes, float32 weights, "
                                   f"{params:,} params): open it in a browser")
    data = parts(out.read_text(encoding="utf-8"))[0]
    blob = len(data["weights"]["base64"])
    assert data["title"] == "lstm-scratch: tiny.npz" and data["weights"]["dtype"] == "float32"
    assert data["meta"] == dict(val_loss=2.5, step=120, epoch=3)
    half = tmp_path / "half.html"
    done = cli("export", checkpoint["path"], "--html", half, "--weights", "float16",
               "--title", "<b>mine</b>")
    assert done.returncode == 0 and "float16 weights" in done.stdout
    data = parts(half.read_text(encoding="utf-8"))[0]
    assert data["title"] == "<b>mine</b>" and data["weights"]["dtype"] == "float16"
    assert abs(len(data["weights"]["base64"]) - blob / 2) <= 4     # base64's padding


@pytest.mark.parametrize("args,message", [
    (["--html", "{tmp}/dir.html"], "{tmp}/dir.html: Is a directory"),
    (["--html", "{tmp}/no/such/page.html"], "page.html: No such file or directory"),
    (["--html", "{tmp}/p.html", "--weights", "int8"], "invalid choice: 'int8'"),
    ([], "the following arguments are required: --html"),
    (["--html", "{tmp}/p.html", "--titel", "x"], "did you mean --title?"),
    (["--html", "{tmp}/keep.npz"], "keep.npz: expected a file name ending in .html"),
])
def test_export_command_refuses_in_one_line(checkpoint, tmp_path, args, message):
    (tmp_path / "dir.html").mkdir()
    (tmp_path / "keep.npz").write_bytes(b"a checkpoint, say")
    done = cli("export", checkpoint["path"], *[a.format(tmp=tmp_path) for a in args])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and message.format(tmp=tmp_path) in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.html", "keep.npz"]  # nothing written
    assert (tmp_path / "keep.npz").read_bytes() == b"a checkpoint, say"


def test_export_command_names_a_missing_checkpoint(tmp_path):
    done = cli("export", tmp_path / "gone.npz", "--html", tmp_path / "p.html")
    assert done.returncode == 2 and "gone.npz: no such checkpoint file" in done.stderr


@needs_chromium
def test_browser_greedy_text_of_a_trained_model_equals_sample_greedy(tmp_path):
    """The shipped, trained model: the page's 300 greedy chars are `sample --greedy`'s,
    and its probabilities agree with model.step at every step."""
    from lstm_scratch import load
    out = tmp_path / "shakespeare.html"
    assert cli("export", "shakespeare", "--html", out).returncode == 0
    prime = "ROMEO:"
    sampled = cli("sample", "shakespeare", "--prime", prime, "--greedy", "--length", STEPS,
                  "--backend", "numpy")
    assert sampled.returncode == 0, sampled.stderr
    page, dom = dump_dom(out, tmp_path, prime=prime, length=STEPS, greedy=1, autorun=1, probe=1)
    attrs, text = output_of(page)
    assert attrs.get("data-done") == "1", dom[-2000:]
    model, vocab = load("shakespeare", backend="numpy")
    expected, probs = python_greedy(model, vocab, prime)
    n = assert_same_greedy([text, sampled.stdout.rstrip("\n"), expected], probs, prime)
    assert n > len(prime) + 100                     # this model, this prime: no early tie
    probe = np.array(json.loads(page.text["probe"]))[:n - len(prime)]
    assert np.abs(probe - probs[:n - len(prime)]).max() < 1e-4
