// lstm-scratch in the browser: the forward pass of a CharRNN (LSTM, GRU or vanilla RNN),
// one character at a time, in plain JavaScript. webpage.py embeds this file and the model's
// data (a JSON block) in one HTML page; the tests run the same code in node.
//
// Per layer l, with x the layer's input (E[id], the one-hot row of Wx0, or h of layer l-1):
//   LSTM  a = x Wx + h Wh + b                 blocks i|f|g|o (data.gate_order)
//         c = σ(a_f) ⊙ c + σ(a_i) ⊙ tanh(a_g);  h = σ(a_o) ⊙ tanh(c)
//   GRU   ax = x Wx + bx,  ah = h Wh + bh     blocks r|z|n
//         r = σ(ax_r + ah_r), z = σ(ax_z + ah_z), n = tanh(ax_n + r ⊙ ah_n)
//         h = (1 - z) ⊙ n + z ⊙ h
//   RNN   h = tanh(x Wx + h Wh + b)
// Head: z = h Wy + by (z = h Eᵀ + by when tied); p = softmax(z).
//
// Layout: the page stores every parameter as the model holds it (row-major, Wx (D, GH)).
// For speed each Wx and Wh is transposed once at load into (GH, D): every output is then a
// dot product over one contiguous row. The state and the sums are float64; the weights stay
// Float32Array (half the memory traffic of float64).
"use strict";

const SIGMOID = a => 0.5 * Math.tanh(0.5 * a) + 0.5;     // = 1 / (1 + e^-a), never overflows

function decodeWeights(w) {
  // {dtype, layout: [[name, shape, offset]], base64} -> {name: Float32Array}
  const bin = atob(w.base64), bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  const view = new DataView(bytes.buffer), size = w.dtype === "float16" ? 2 : 4, out = {};
  for (const [name, shape, offset] of w.layout) {
    const n = shape.reduce((a, b) => a * b, 1), a = new Float32Array(n);
    for (let k = 0, at = offset * size; k < n; k++, at += size)
      a[k] = size === 4 ? view.getFloat32(at, true) : halfToFloat(view.getUint16(at, true));
    out[name] = a;
  }
  return out;
}

function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1, e = (bits >> 10) & 31, m = bits & 1023;
  if (e === 0) return sign * m * 2 ** -24;                  // subnormal (or zero)
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

function transpose(a, rows, cols) {
  // a (rows, cols) row-major -> (cols, rows) row-major
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

function stackColumns(A, ca, B, cb, rows) {
  // [A | B]: A (rows, ca) and B (rows, cb) side by side, (rows, ca + cb) row-major
  const out = new Float32Array(rows * (ca + cb));
  for (let r = 0; r < rows; r++) {
    out.set(A.subarray(r * ca, (r + 1) * ca), r * (ca + cb));
    out.set(B.subarray(r * cb, (r + 1) * cb), r * (ca + cb) + ca);
  }
  return out;
}

function affine(WT, cols, x, bias, out, rows) {
  // out[j] = bias[j] + WT[j, :] · x, j < rows; WT (rows, cols). bias may be out itself (+=).
  // Four rows at a time, two columns a turn: each x[k] is loaded once for four rows, and
  // eight partial sums make eight independent add chains instead of one long one.
  let j = 0;
  for (; j + 3 < rows; j += 4) {
    const b0 = j * cols, b1 = b0 + cols, b2 = b1 + cols, b3 = b2 + cols;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0, k = 0;
    for (; k + 1 < cols; k += 2) {
      const xk = x[k], xl = x[k + 1];
      s0 += WT[b0 + k] * xk; s1 += WT[b1 + k] * xk; s2 += WT[b2 + k] * xk; s3 += WT[b3 + k] * xk;
      t0 += WT[b0 + k + 1] * xl; t1 += WT[b1 + k + 1] * xl;
      t2 += WT[b2 + k + 1] * xl; t3 += WT[b3 + k + 1] * xl;
    }
    if (k < cols) {
      const xk = x[k];
      s0 += WT[b0 + k] * xk; s1 += WT[b1 + k] * xk; s2 += WT[b2 + k] * xk; s3 += WT[b3 + k] * xk;
    }
    out[j] = bias[j] + (s0 + t0); out[j + 1] = bias[j + 1] + (s1 + t1);
    out[j + 2] = bias[j + 2] + (s2 + t2); out[j + 3] = bias[j + 3] + (s3 + t3);
  }
  for (; j < rows; j++) {
    const b = j * cols;
    let s = 0;
    for (let k = 0; k < cols; k++) s += WT[b + k] * x[k];
    out[j] = bias[j] + s;
  }
}

function mulberry32(seed) {
  // A seeded PRNG, u in [0, 1). It need not match NumPy's: only greedy text is compared.
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function lstmScratchCore(data) {
  const cfg = data.config, cell = cfg.cell || "lstm", order = data.gate_order;
  const V = cfg.vocab_size, H = cfg.hidden_size, L = cfg.num_layers, E = cfg.embedding_size || 0;
  const G = {lstm: 4, gru: 3, rnn: 1}[cell], GH = G * H, vocab = data.vocab;
  const zc = cfg.zoneout_cell || 0, zh = cfg.zoneout_hidden || 0;   // zoneout's rates (c: the LSTM's)
  if (!G) throw new Error(`unknown cell ${cell}`);
  const P = decodeWeights(data.weights);
  const block = name => order.indexOf(name) * H;            // a gate's first column
  const [I, F, Gc, O] = cell === "lstm" ? ["i", "f", "g", "o"].map(block) : [];
  const [R, Z, N] = cell === "gru" ? ["r", "z", "n"].map(block) : [];
  // Per layer: the one-hot layer 0 reads rows of Wx0 as stored. The LSTM and the RNN add
  // x Wx and h Wh, so a layer fed a vector joins them: a = [x, h] [Wx; Wh] + b, one dot
  // product per output over the joined input u = [x, h] (WT (GH, D + H)). The GRU keeps
  // them apart: r multiplies h Wh_n + bh_n alone.
  const layers = [], h = [], c = [];
  for (let l = 0; l < L; l++) {
    const D = l === 0 ? (E || V) : H, oneHot = l === 0 && !E, joined = !oneHot && cell !== "gru";
    const WxT = oneHot ? null : transpose(P[`Wx${l}`], D, GH), WhT = transpose(P[`Wh${l}`], H, GH);
    const u = new Float64Array(joined ? D + H : H);     // [x, h], or h alone
    layers.push({
      D, oneHot, joined, u,
      Wx: oneHot ? P["Wx0"] : joined ? stackColumns(WxT, D, WhT, H, GH) : WxT,
      WhT: joined ? null : WhT,
      b: cell === "gru" ? P[`bx${l}`] : P[`b${l}`],
      bh: cell === "gru" ? P[`bh${l}`] : null,
    });
    h.push(u.subarray(u.length - H));                   // the state h lives in u
    c.push(new Float64Array(H));
  }
  const WyT = cfg.tie_weights ? P["E"] : transpose(P["Wy"], H, V), by = P["by"];   // (V, H)
  const ax = new Float64Array(GH), ah = new Float64Array(GH), emb = new Float64Array(E);
  const z = new Float64Array(V);
  const index = new Map(vocab.map((ch, k) => [ch, k]));

  function reset() {
    for (let l = 0; l < L; l++) { h[l].fill(0); c[l].fill(0); }
    z.fill(0);
  }

  function layerStep(l, id, x) {
    // one step of layer l on input x (a vector), or on the one-hot row ``id``
    const {D, oneHot, joined, u, Wx, WhT, b, bh} = layers[l], hl = h[l];
    if (oneHot) {
      for (let j = 0; j < GH; j++) ax[j] = Wx[id * GH + j] + b[j];      // x Wx = Wx[id]
      if (cell !== "gru") affine(WhT, H, hl, ax, ax, GH);               // a = x Wx + h Wh + b
    } else if (joined) {
      u.set(x);                                                         // u = [x, h]
      affine(Wx, D + H, u, b, ax, GH);                                  // a = [x, h] [Wx; Wh] + b
    } else {
      affine(Wx, D, x, b, ax, GH);                                      // ax = x Wx + bx
    }
    if (cell === "lstm") {
      const cl = c[l];
      for (let j = 0; j < H; j++) {
        const i = SIGMOID(ax[I + j]), f = SIGMOID(ax[F + j]);
        const g = Math.tanh(ax[Gc + j]), o = SIGMOID(ax[O + j]);
        const cNew = f * cl[j] + i * g;                       // c̃ = f ⊙ c + i ⊙ g
        const hNew = o * Math.tanh(cNew);                     // h̃ = o ⊙ tanh(c̃)
        cl[j] = zc * cl[j] + (1 - zc) * cNew;                 // zoneout by its rates:
        hl[j] = zh * hl[j] + (1 - zh) * hNew;                 // c = c̃, h = h̃ when they are 0
      }
    } else if (cell === "gru") {
      affine(WhT, H, hl, bh, ah, GH);                         // ah = h Wh + bh
      for (let j = 0; j < H; j++) {
        const r = SIGMOID(ax[R + j] + ah[R + j]), u = SIGMOID(ax[Z + j] + ah[Z + j]);
        const n = Math.tanh(ax[N + j] + r * ah[N + j]);       // bh_n inside r ⊙ (...)
        const hNew = (1 - u) * n + u * hl[j];                 // h̃ = (1 - z) ⊙ n + z ⊙ h
        hl[j] = zh * hl[j] + (1 - zh) * hNew;                 // zoneout by its rate
      }
    } else {
      for (let j = 0; j < H; j++) {                           // h̃ = tanh(x Wx + h Wh + b)
        hl[j] = zh * hl[j] + (1 - zh) * Math.tanh(ax[j]);     // zoneout by its rate
      }
    }
    return hl;
  }

  function stepLogits(id) {
    // feed char ``id``: z (V,) holds the logits of the next char (a shared buffer)
    if (!(id >= 0 && id < V)) throw new Error(`char id ${id} is not in [0, ${V})`);
    let x = null;
    if (E) { for (let k = 0; k < E; k++) emb[k] = P["E"][id * E + k]; x = emb; }   // E[id]
    for (let l = 0; l < L; l++) x = layerStep(l, id, x);
    affine(WyT, H, x, by, z, V);                              // z = h Wy + by  (Wy = Eᵀ tied)
    return z;
  }

  function probs() {
    // softmax(z) of the current logits, float64: the next char's probabilities
    let m = -Infinity, s = 0;
    for (let k = 0; k < V; k++) m = Math.max(m, z[k]);
    const p = new Float64Array(V);
    for (let k = 0; k < V; k++) s += (p[k] = Math.exp(z[k] - m));
    for (let k = 0; k < V; k++) p[k] /= s;
    return p;
  }

  function encode(text) {
    const ids = [];
    for (const ch of text) {                                  // by code point, as Python
      const k = index.get(ch);
      if (k === undefined)
        throw new Error(`the prime has ${JSON.stringify(ch)} (position ${ids.length}), ` +
                        `which is not in the model's vocabulary`);
      ids.push(k);
    }
    return ids;
  }

  function pick(temperature, topk, u) {
    // sampling.py's next_char_weights then draw: top-k on z, w = exp((z - max z) / τ),
    // the first k whose cumulative weight exceeds u times the total
    let cutoff = -Infinity;
    if (topk && topk < V) cutoff = Array.from(z).sort((a, b) => b - a)[topk - 1];
    let m = -Infinity;
    for (let k = 0; k < V; k++) if (z[k] >= cutoff) m = Math.max(m, z[k]);
    const w = new Float64Array(V);
    let total = 0;
    for (let k = 0; k < V; k++)
      total += (w[k] = z[k] >= cutoff ? Math.exp((z[k] - m) / temperature) : 0);
    let k = 0, cum = w[0];
    while (k < V - 1 && cum <= u * total) cum += w[++k];
    return k;
  }

  function argmax() {
    let best = 0;
    for (let k = 1; k < V; k++) if (z[k] > z[best]) best = k;   // the first of ties, as NumPy
    return best;
  }

  function run(opts) {
    // Prime the model now (a bad prime throws here); returns {prime, seed, picks}: picks is a
    // generator of ``length`` char ids. While it is paused on an id, probs() is the
    // distribution that id came from. As stepping.prime_model: an empty prime starts after
    // "\n" (if the vocabulary has one, else after a random char); each prime char is a step.
    const length = opts.length, greedy = !!opts.greedy, temperature = opts.temperature ?? 1;
    const topk = opts.topk || null;
    const refuse = what => { throw new Error(what); };
    if (!(Number.isInteger(length) && length >= 0)) refuse(`length must be an integer >= 0, got ${length}`);
    if (!greedy && !(temperature > 0 && Number.isFinite(temperature)))
      refuse(`temperature must be a number > 0, got ${temperature}`);
    if (topk !== null && !(Number.isInteger(topk) && topk >= 1)) refuse(`top-k must be an integer >= 1, got ${topk}`);
    if (opts.seed != null && !Number.isInteger(opts.seed)) refuse(`seed must be an integer, got ${opts.seed}`);
    const seed = opts.seed != null ? opts.seed >>> 0 : Math.floor(Math.random() * 2 ** 32);
    const rng = mulberry32(seed), prime = opts.prime || "", newline = index.get("\n");
    const ids = prime ? encode(prime) : newline !== undefined ? [newline] : [Math.floor(rng() * V)];
    reset();
    for (const id of ids) stepLogits(id);
    function* picks() {
      for (let t = 0; t < length; t++) {
        const k = greedy ? argmax() : pick(temperature, topk, rng());
        yield k;
        if (t + 1 < length) stepLogits(k);
      }
    }
    return {prime, seed, picks: picks()};
  }

  function step(id) { stepLogits(id); return probs(); }     // as model.step: feed id, get p

  const numParams = Object.values(P).reduce((n, a) => n + a.length, 0);
  return {step, reset, encode, decode: ids => ids.map(k => vocab[k]).join(""), probs, run,
          vocab, config: cfg, numParams};
}

if (typeof document !== "undefined") {
  const $ = id => document.getElementById(id);
  const data = JSON.parse($("model-data").textContent);
  const model = lstmScratchCore(data), out = $("output"), status = $("status");
  window.lstmScratch = model;

  // What the page says about the model: every string is set as textContent, never as markup.
  const cfg = data.config;
  const facts = [`${data.cell_title}, ${cfg.num_layers} × ${cfg.hidden_size}`,
                 `${model.numParams.toLocaleString("en")} parameters`,
                 `${cfg.vocab_size} characters`];
  if (cfg.embedding_size)
    facts.push(`embedding ${cfg.embedding_size}${cfg.tie_weights ? ", tied" : ""}`);
  for (const [key, value] of Object.entries(data.meta || {})) {
    if (value === null || value === undefined) continue;
    const float = typeof value === "number" && !Number.isInteger(value);
    let shown = float ? value.toFixed(4) : String(value);
    if (/loss|best_val/.test(key) && typeof value === "number")
      shown += ` nats (${(value / Math.LN2).toFixed(3)} bits per char)`;
    facts.push(`${key.replace(/_/g, " ")} ${shown}`);
  }
  $("about").textContent = facts.join(" · ") + ` · weights ${data.weights.dtype}`;

  const params = new URLSearchParams(location.search);
  let urlError = null;                // a number the URL gives that is not one: said once
  for (const name of ["prime", "length", "temperature", "seed", "topk"]) {
    if (!params.has(name)) continue;
    $(name).value = params.get(name);   // a number box refuses what is not a number: ""
    if (name !== "prime" && $(name).value !== params.get(name).trim())
      urlError ??= `?${name}=${params.get(name)}: expected a number`;
  }
  if (params.has("greedy")) $("greedy").checked = params.get("greedy") === "1";
  const probe = params.get("probe") === "1", autorun = params.get("autorun") === "1";

  // Yield to the event loop between chunks: a message, not setTimeout (clamped to 4 ms).
  const channel = new MessageChannel();
  let wake = null;
  channel.port1.onmessage = () => wake();
  const nextTurn = () => new Promise(resolve => { wake = resolve; channel.port2.postMessage(0); });

  let current = 0;                                          // the run that may write
  const number = (id, parse) => $(id).value.trim() === "" ? null : parse($(id).value);

  async function write() {
    const me = ++current;
    out.textContent = "";
    for (const key of ["done", "error", "rate"]) delete out.dataset[key];
    $("probe").textContent = "";
    let run;
    const opts = {prime: $("prime").value, length: number("length", Number) ?? 500,
                  temperature: number("temperature", Number) ?? 1, topk: number("topk", Number),
                  seed: number("seed", Number), greedy: $("greedy").checked};
    try {
      if (urlError) { const e = urlError; urlError = null; throw new Error(e); }
      run = model.run(opts);
    } catch (e) {
      status.textContent = e.message; out.dataset.error = e.message;
      $("stop").disabled = true;        // an earlier run, if any, stops at its next turn
      return;
    }
    const span = document.createElement("span");
    span.className = "prime"; span.textContent = run.prime;
    out.appendChild(span);
    $("stop").disabled = false;
    const seen = [], t0 = performance.now();
    let n = 0, stopped = false;
    for (;;) {
      let chunk = "", done = false;
      const until = performance.now() + 30;
      while (chunk.length < 256 && performance.now() < until) {
        const r = run.picks.next();
        if (r.done) { done = true; break; }
        if (probe) seen.push(Array.from(model.probs()));
        chunk += model.vocab[r.value]; n++;
      }
      out.appendChild(document.createTextNode(chunk));    // as text, never as markup
      const rate = n / Math.max(1e-9, (performance.now() - t0) / 1000);
      status.textContent = `${done ? "done" : "writing"}: ${n} chars, ` +
                           `${Math.round(rate)} chars/s, seed ${run.seed}`;
      if (done) { out.dataset.rate = String(Math.round(rate)); break; }
      await nextTurn();
      if (current !== me) { stopped = true; break; }
    }
    if (current === me) $("stop").disabled = true;
    if (stopped) return;
    if (probe) $("probe").textContent = JSON.stringify(seen);
    out.dataset.done = "1";
    // For bench/html_speed.py, which reads Chromium's log: under --virtual-time-budget the
    // page's clock is virtual, so a real rate needs a real-time run and a way out.
    if (autorun) console.log(`lstm-scratch: done, ${n} chars, ${out.dataset.rate} chars/s`);
  }

  $("controls").addEventListener("submit", e => { e.preventDefault(); write(); });
  $("stop").addEventListener("click", () => {
    current++; $("stop").disabled = true;
    status.textContent += " (stopped)";
  });
  $("greedy").addEventListener("change", () => {
    $("temperature").disabled = $("topk").disabled = $("greedy").checked;
  });
  $("greedy").dispatchEvent(new Event("change"));
  if (autorun) write();
}
