"""Look inside a trained model: which cells track quotes, line length, indentation?

In the spirit of Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding
Recurrent Networks" (2015): run the model over a text, record every cell's
activation tanh(c_t) at every character, and colour the text by one cell.
A GRU or a vanilla RNN has no c: their units' h_t is shown instead.

:func:`trace` computes the data (tested); :func:`render_html` writes one
self-contained page (no network) from it.
"""
import base64
import html
import re

import numpy as np

from .nn import affine_forward, log_softmax
from .webpage import script_json

FEATURES = {
    "inside quotes": "1 between an opening and a closing double quote",
    "position in line": "characters since the last newline",
    "indentation": "1 inside the leading spaces of a line",
}


def trace(model, vocab, text):
    """Run ``model`` over ``text`` once (no dropout) and record what happens.

    Returns dict with
      chars : list of T characters
      cells : list over layers of (T, H) float32, tanh(c_t) of each cell (LSTM)
        or h_t of each unit (GRU, RNN); ``shown`` says which
      top_ids, top_probs : (T, 5) the 5 likeliest next characters after each position
      loss : (T,) -log p(next char) in nats; NaN at the last position (no next char)
    """
    P, be = model.params, model.backend
    ids = vocab.encode(text, what="text")
    h, shown, _ = model.run(ids[None, :])                       # one sequence: B = 1
    cells = [be.to_host(a[:, 0, :]).astype(np.float32) for a in shown]
    z, _ = affine_forward(h[:, 0, :], model.head_weight(), P["by"])   # (T, V)
    log_p = be.to_host(log_softmax(z)).astype(np.float64)
    k = min(5, log_p.shape[1])
    top_ids = np.argsort(-log_p, axis=1)[:, :k]
    loss = np.full(len(ids), np.nan)
    loss[:-1] = -log_p[np.arange(len(ids) - 1), ids[1:]]
    return dict(chars=list(text), cells=cells, shown=model.shown, top_ids=top_ids,
                top_probs=np.exp(np.take_along_axis(log_p, top_ids, axis=1)), loss=loss)


def text_features(text):
    """Per-character signals to correlate cells with: dict name -> (T,) float."""
    quote, line_pos, indent = [], [], []
    inside, pos, leading = False, 0, True
    for ch in text:
        if ch == '"':
            inside = not inside
        quote.append(float(inside))
        line_pos.append(float(pos))
        indent.append(float(leading and ch == " "))
        pos, leading = (0, True) if ch == "\n" else (pos + 1, leading and ch == " ")
    return {"inside quotes": np.array(quote), "position in line": np.array(line_pos),
            "indentation": np.array(indent)}


def correlated_cells(cells, features, top=8):
    """For each feature, the (layer, cell, r) with the largest |Pearson r|, best first."""
    found = {}
    for name, f in features.items():
        if f.std() == 0:
            found[name] = []
            continue
        fz = (f - f.mean()) / f.std()
        scored = []
        for l, acts in enumerate(cells):
            sd = acts.std(axis=0)
            r = ((acts - acts.mean(axis=0)) * fz[:, None]).mean(axis=0) / np.where(sd > 0, sd, np.inf)
            scored += [(l, j, float(r[j])) for j in range(acts.shape[1])]
        found[name] = sorted(scored, key=lambda s: -abs(s[2]))[:top]
    return found


def page_data(model, vocab, text):
    """Everything the page shows, JSON-ready; activations as int8 (x127), base64."""
    t = trace(model, vocab, text)
    quantised = [base64.b64encode(np.round(a * 127).astype(np.int8).tobytes()).decode("ascii")
                 for a in t["cells"]]
    return dict(
        chars=t["chars"], shown=t["shown"], layers=len(t["cells"]), hidden=int(t["cells"][0].shape[1]),
        cells=quantised, vocab=vocab.chars, top_ids=t["top_ids"].tolist(),
        top_probs=np.round(t["top_probs"], 4).tolist(),
        loss=[None if np.isnan(v) else round(float(v), 4) for v in t["loss"]],
        mean_loss=float(np.nanmean(t["loss"])) if len(text) > 1 else None,
        correlated={k: [dict(layer=l, cell=j, r=round(r, 3)) for l, j, r in v]
                    for k, v in correlated_cells(t["cells"], text_features(text)).items()},
        features=FEATURES)


def render_html(data, title="lstm-scratch: inside the cells"):
    """One self-contained HTML page (inline CSS, JS and data) for ``page_data``.

    The data goes in as JSON with <, > and & escaped (webpage.script_json), so no text of
    the model's can close the script element; the page fills in all three parts in one
    pass, so a title that holds "__DATA__" is not replaced again."""
    parts = dict(TITLE=html.escape(title), SHOWN=html.escape(data.get("shown", "tanh(c)")),
                 DATA=script_json(data))
    return re.sub(r"__(TITLE|SHOWN|DATA)__", lambda m: parts[m.group(1)], _PAGE)


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
 .controls { display: flex; gap: 1.2em; flex-wrap: wrap; align-items: center; margin-bottom: .8em; }
 .text { font-family: ui-monospace, monospace; font-size: 14px; line-height: 1.55; white-space: pre-wrap;
         border: 1px solid #ddd; padding: .8em; max-height: 45vh; overflow-y: auto; }
 .text span { border-radius: 2px; }
 #tip { position: fixed; display: none; background: #fff; border: 1px solid #888; padding: .4em .6em;
        font: 12px ui-monospace, monospace; box-shadow: 0 2px 6px rgba(0,0,0,.2); pointer-events: none; }
 .legend { font-size: 12px; color: #555; }
 h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
</style></head><body>
<h1 style="font-size:1.3em">__TITLE__</h1>
<div class="controls">
 <label>layer <select id="layer"></select></label>
 <label>cell <select id="cell"></select></label>
 <label>cells that track <select id="feature"><option value="">(choose a feature)</option></select></label>
 <select id="found"></select>
</div>
<div class="legend">colour = __SHOWN__ of the chosen cell at each character:
 <span style="background:rgb(70,110,255);color:#fff">&nbsp;-1&nbsp;</span>
 <span style="background:#fff;border:1px solid #ccc">&nbsp;0&nbsp;</span>
 <span style="background:rgb(255,80,60);color:#fff">&nbsp;+1&nbsp;</span>
 · hover a character for the model's top-5 guesses of the next one</div>
<div id="text" class="text"></div>
<h2>Per-character loss <span id="meanloss" class="legend"></span></h2>
<div class="legend">darker = more surprised: -log p(next char), in nats</div>
<div id="loss" class="text"></div>
<div id="tip"></div>
<pre id="selftest" style="display:none"></pre>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const T = D.chars.length, H = D.hidden;
const cells = D.cells.map(b64 => {                       // int8, (T, H) row-major, x127
  const bin = atob(b64), a = new Int8Array(bin.length);
  for (let k = 0; k < bin.length; k++) a[k] = bin.charCodeAt(k) << 24 >> 24;
  return a;
});
const $ = id => document.getElementById(id);
const show = ch => ch === "\n" ? "\u23CE\n" : ch;
function colour(v) {                                     // v in [-1, 1]: blue, white, red
  const s = Math.min(1, Math.abs(v));
  return v >= 0 ? `rgb(255,${Math.round(255 - 175 * s)},${Math.round(255 - 195 * s)})`
                : `rgb(${Math.round(255 - 185 * s)},${Math.round(255 - 145 * s)},255)`;
}
function spans(box) {
  const out = [];
  for (let t = 0; t < T; t++) {
    const s = document.createElement("span");
    s.textContent = show(D.chars[t]);
    s.dataset.t = t;
    box.appendChild(s);
    out.push(s);
  }
  return out;
}
const textSpans = spans($("text")), lossSpans = spans($("loss"));
function paint() {
  const l = +$("layer").value, j = +$("cell").value, a = cells[l];
  for (let t = 0; t < T; t++) textSpans[t].style.background = colour(a[t * H + j] / 127);
}
function paintLoss() {
  const finite = D.loss.filter(v => v !== null), top = Math.max(1e-9, ...finite);
  for (let t = 0; t < T; t++) {
    const v = D.loss[t];
    lossSpans[t].style.background = v === null ? "#eee" : `rgba(200,40,40,${(v / top).toFixed(3)})`;
  }
  if (D.mean_loss !== null)
    $("meanloss").textContent = `(mean ${D.mean_loss.toFixed(3)} nats = ${(D.mean_loss / Math.LN2).toFixed(3)} bits per char)`;
}
function options(select, items) {
  select.innerHTML = "";
  for (const [value, label] of items) {
    const o = document.createElement("option");
    o.value = value; o.textContent = label; select.appendChild(o);
  }
}
options($("layer"), [...Array(D.layers).keys()].map(l => [l, `${l}`]));
options($("cell"), [...Array(H).keys()].map(j => [j, `${j}`]));
for (const [name, help] of Object.entries(D.features)) {
  const o = document.createElement("option"); o.value = name; o.textContent = name; o.title = help;
  $("feature").appendChild(o);
}
$("feature").addEventListener("change", () => {
  const found = D.correlated[$("feature").value] || [];
  options($("found"), found.map(c => [`${c.layer}/${c.cell}`, `layer ${c.layer} cell ${c.cell} (r = ${c.r})`]));
  if (found.length) $("found").dispatchEvent(new Event("change"));
});
$("found").addEventListener("change", () => {
  const [l, j] = $("found").value.split("/");
  $("layer").value = l; $("cell").value = j; paint();
});
$("layer").addEventListener("change", paint);
$("cell").addEventListener("change", paint);
function tip(e) {
  const t = e.target.dataset.t, box = $("tip");
  if (t === undefined) { box.style.display = "none"; return; }
  const rows = D.top_ids[t].map((k, r) =>
    `${JSON.stringify(D.vocab[k]).padEnd(6)} ${(100 * D.top_probs[t][r]).toFixed(1).padStart(5)}%`);
  const loss = D.loss[t] === null ? "" : `\nloss on the next char: ${D.loss[t].toFixed(3)} nats`;
  box.textContent = `after ${JSON.stringify(D.chars[t])}, next:\n` + rows.join("\n") + loss;
  box.style.whiteSpace = "pre"; box.style.display = "block";
  box.style.left = (e.clientX + 14) + "px"; box.style.top = (e.clientY + 14) + "px";
}
for (const box of [$("text"), $("loss")]) {
  box.addEventListener("mousemove", tip);
  box.addEventListener("mouseleave", () => { $("tip").style.display = "none"; });
}
paint(); paintLoss();
if (location.hash.startsWith("#feature=")) {             // a link straight to a feature's best cells
  $("feature").value = decodeURIComponent(location.hash.slice(9));
  $("feature").dispatchEvent(new Event("change"));
}
if (location.hash === "#selftest") {                     // for the browser test: use the UI as a person would
  const before = textSpans.map(s => s.style.background);
  const sel = $("cell");
  sel.value = String((+sel.value + 1) % H);
  sel.dispatchEvent(new Event("change"));
  const after = textSpans.map(s => s.style.background);
  $("selftest").textContent = JSON.stringify({
    chars: T, rendered: $("text").textContent.length, before: before.slice(0, 50), after: after.slice(0, 50),
    coloured: before.filter(c => c && c !== "rgb(255, 255, 255)").length,
    changed: before.some((c, t) => c !== after[t]) });
}
</script></body></html>
"""
