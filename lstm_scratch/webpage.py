"""Share a model as one web page that writes in the browser: no Python, no network.

:func:`export_html` writes a single HTML file holding

- the model's data, one ``<script type="application/json" id="model-data">`` block:
  its config, vocabulary, title, metadata and every parameter (base64, little-endian
  float32 or float16, in ``model.params`` order and layout), and
- webpage.js, the forward pass of the stack (LSTM, GRU or RNN, the embedding, the
  tied head) in plain JavaScript, with controls for prime, temperature, top-k,
  length and seed, and a Stop button.

Weights: float32 by default. The page then computes with the model's own numbers (in
float64), and its probabilities agree with ``model.step`` to about 1e-6 (6.7e-7 over
300 greedy steps of a trained 2x512 LSTM). float16 halves the file but rounds every
weight by up to 2⁻¹¹ of itself: that moved the probabilities of the trained 2x512 models
of docs/ablation.md by 1.8e-4 and 2.2e-4, over the 1e-4 we hold the page to, and it can
flip a greedy choice between two close characters (bench/html_speed.py measures it).

Safety: every string from the model (vocabulary, title, metadata) is data, never
markup. The JSON block escapes ``<``, ``>`` and ``&`` as ``\\u003c``... (and, being
ASCII, U+2028/U+2029 as ``\\u2028``), so no text can close the script element; the
page inserts text with ``textContent`` only. The title also appears, HTML-escaped, in
``<title>`` and ``<h1>``.

The URL contract (for links and tests)::

    model.html?prime=ROMEO:&length=300&temperature=0.8&topk=5&seed=1&greedy=1&autorun=1&probe=1

``autorun=1`` writes at once into ``<pre id="output">`` (prime, then the new text) and
sets ``data-done="1"`` and ``data-rate`` (chars/s) on it when done, or ``data-error``
for a bad prime or option; ``probe=1`` also writes, into ``<pre id="probe">``, the JSON
list of the next-character probabilities at each generated step. (Under Chromium's
``--virtual-time-budget`` the page's clock is virtual: the text is right, the rate is
not; bench/html_speed.py runs it in real time.) The page sets
``window.lstmScratch`` = {step(id) -> Float64Array probs, reset(), encode(text),
decode(ids), probs(), run(options), vocab, config}.
"""
import base64
import html
import json
import math
import numbers
import re
from importlib import resources

import numpy as np

from .backend import to_host
from .checkpoint import atomic_write
from .cells import CELLS
from .errors import UserError
from .nn import GATE_ORDER, GRU_GATE_ORDER

FORMAT = "lstm-scratch web page"
FORMAT_VERSION = 1
WEIGHT_FORMATS = ("float32", "float16")
# Inside a <script>, only these could end it or start markup: "</script", "<!--".
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                 "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(obj):
    """``obj`` as JSON text that is safe inside a ``<script type="application/json">``:
    ASCII only, with <, >, & (and U+2028/U+2029) as \\u escapes. JSON.parse reads it back."""
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    for ch, escape in _JSON_ESCAPES.items():
        text = text.replace(ch, escape)
    return text


def encode_weights(params, weights="float32"):
    """Every parameter as one little-endian base64 blob.

    params : dict name -> array (host or device), any float dtype
    weights : "float32" or "float16"
    Returns dict(dtype, layout=[[name, shape, offset in elements]], base64).
    """
    if weights not in WEIGHT_FORMATS:
        raise UserError(f"weights must be one of {', '.join(WEIGHT_FORMATS)}, got {weights!r}")
    dtype = np.dtype(weights).newbyteorder("<")
    layout, blobs, offset = [], [], 0
    for name, p in params.items():
        with np.errstate(over="ignore"):                # beyond float16's range: refused below
            a = np.ascontiguousarray(to_host(p), dtype=dtype)
        if weights == "float16" and not np.isfinite(a).all():
            raise UserError(f"parameter {name} has values beyond float16's range "
                            f"(65504): export with float32 weights")
        layout.append([name, list(a.shape), offset])
        blobs.append(a.tobytes())
        offset += a.size
    blob = base64.b64encode(b"".join(blobs)).decode("ascii")
    return dict(dtype=weights, layout=layout, base64=blob)


def decode_weights(encoded):
    """The inverse of :func:`encode_weights`: dict name -> float32 array (what the page reads)."""
    raw = base64.b64decode(encoded["base64"])
    dtype = np.dtype(encoded["dtype"]).newbyteorder("<")
    out = {}
    for name, shape, offset in encoded["layout"]:
        n = int(np.prod(shape, dtype=np.int64))
        a = np.frombuffer(raw, dtype, count=n, offset=offset * dtype.itemsize)
        out[name] = a.astype(np.float32).reshape(shape)
    return out


def clean_meta(meta):
    """Metadata to show: a dict of str -> number, text, bool or None (non-finite -> None)."""
    out = {}
    for key, value in (meta or {}).items():
        if not isinstance(key, str):
            raise UserError(f"meta keys must be text, got {key!r}")
        if isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, numbers.Real):
            value = float(value) if not isinstance(value, numbers.Integral) else int(value)
            value = value if math.isfinite(value) else None
        elif not (value is None or isinstance(value, str)):
            raise UserError(f"meta[{key!r}] must be a number, text or None, "
                            f"got {type(value).__name__}")
        out[key] = value
    return out


def page_data(model, vocab, title="lstm-scratch model", meta=None, weights="float32"):
    """The JSON the page embeds (see the module docstring)."""
    if len(vocab) != model.vocab_size:
        raise UserError(f"the vocabulary has {len(vocab)} chars, the model {model.vocab_size}")
    order = {"lstm": GATE_ORDER, "gru": GRU_GATE_ORDER, "rnn": ("h",)}[model.cell]
    return dict(format=FORMAT, version=FORMAT_VERSION, title=str(title), meta=clean_meta(meta),
                config=model.config, cell_title=CELLS[model.cell].title,
                gate_order="".join(order), num_params=model.num_params(), vocab=list(vocab.chars),
                weights=encode_weights(model.params, weights))


def page_script():
    """webpage.js, the page's code (shipped beside this module)."""
    script = resources.files("lstm_scratch").joinpath("webpage.js").read_text(encoding="utf-8")
    lowered = script.lower()
    if "</script" in lowered or "<!--" in lowered or "<script" in lowered:
        raise RuntimeError("webpage.js must not contain </script, <script or <!--")  # a bug here
    return script


def render_page(model, vocab, *, title=None, meta=None, weights="float32"):
    """The page for ``model`` and ``vocab``, as a str (see :func:`export_html`)."""
    title = "lstm-scratch model" if title is None else str(title)
    data = page_data(model, vocab, title, meta, weights)
    parts = dict(TITLE=html.escape(title), DATA=script_json(data), SCRIPT=page_script())
    # One pass: a title or vocabulary holding "__SCRIPT__" is not replaced again.
    return re.sub(r"__(TITLE|DATA|SCRIPT)__", lambda m: parts[m.group(1)], _PAGE)


def export_html(model, vocab, path, *, title=None, meta=None, weights="float32"):
    """Write one self-contained HTML page that runs ``model`` in the browser.

    model : CharRNN (any cell, embedding, tied head; any backend)
    vocab : data.Vocab
    path : the .html file, written atomically (temp file, then rename)
    title : the model's name on the page (default "lstm-scratch model")
    meta : dict of str -> number, text or None shown on the page, e.g.
        dict(val_loss=1.49, step=1750) (a key with "loss" in it is shown in nats and bits)
    weights : "float32" (default: the page's probabilities are the model's) or "float16"
        (half the size; see the module docstring)
    Returns dict(path, bytes, weights, params).
    """
    page = render_page(model, vocab, title=title, meta=meta, weights=weights).encode("utf-8")
    atomic_write(path, lambda f: f.write(page))
    return dict(path=str(path), bytes=len(page), weights=weights, params=model.num_params())


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; padding: 0 1em;
        color: #222; }
 h1 { font-size: 1.35em; margin-bottom: .2em; overflow-wrap: anywhere; }
 #about { color: #555; font-size: .9em; margin-top: 0; }
 form { display: flex; flex-wrap: wrap; gap: .6em 1.2em; align-items: end; margin: 1em 0 .5em; }
 label { display: flex; flex-direction: column; font-size: .85em; color: #444; gap: .2em; }
 label.inline { flex-direction: row; align-items: center; }
 textarea { font: 14px ui-monospace, monospace; width: 24em; }
 input[type=number] { width: 6em; }
 button { font-size: 1em; padding: .3em 1.1em; }
 #status { color: #555; font-size: .85em; min-height: 1.2em; }
 pre { font: 14px/1.5 ui-monospace, monospace; white-space: pre-wrap; overflow-wrap: anywhere;
       border: 1px solid #ddd; padding: .8em; min-height: 6em; }
 .prime { font-weight: bold; color: #1a4f9c; }
</style></head><body>
<h1 id="name">__TITLE__</h1>
<p id="about"></p>
<form id="controls">
 <label>prime <textarea id="prime" rows="2"></textarea></label>
 <label>temperature <input id="temperature" type="number" min="0.01" step="0.05" value="1"></label>
 <label>top-k <input id="topk" type="number" min="1" step="1" placeholder="all"></label>
 <label>length <input id="length" type="number" min="0" step="100" value="500"></label>
 <label>seed <input id="seed" type="number" step="1" placeholder="random"></label>
 <label class="inline"><input id="greedy" type="checkbox"> greedy</label>
 <button id="write" type="submit">Write</button>
 <button id="stop" type="button" disabled>Stop</button>
</form>
<p id="status"></p>
<pre id="output"></pre>
<pre id="probe" hidden></pre>
<script id="model-data" type="application/json">__DATA__</script>
<script>
__SCRIPT__
</script>
</body></html>
"""
