"""Chars/s of the exported web page (lstm_scratch/webpage.py) in headless Chromium.

    python bench/html_speed.py                  # 2x256 LSTM -> bench/results/html_speed.json
    python bench/html_speed.py --cell gru --hidden-size 512 --rounds 5
    python bench/html_speed.py --checkpoint runs/x/best.npz    # a trained model instead

The model is a CharRNN over the built-in corpus's 65 characters with its initial (random)
weights: the speed of the forward pass does not depend on what the weights are. Each round
is one fresh Chromium process (``--headless=new``, in real time) opening the page with
``?prime=...&length=2000&seed=R&autorun=1``; the page times its own generation (from
after the prime to the last char, its chunks' yields to the event loop included), writes
chars/s in ``data-rate`` on ``<pre id="output">`` and logs it to the console, which
Chromium's log (stderr) carries here. The report gives the median
over rounds, and the same forward pass in node (the page's script, no DOM) for reference.
Also saved: the page's size with float32 and float16 weights against the raw float32
weights (4 bytes a parameter), and the largest difference float16 weights make to the
next-char probabilities over 300 greedy steps (the page ships float32 by default).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import numpy as np
from common import ROOT, cpu_info, write_json

sys.path.insert(0, os.path.join(ROOT, "tests"))

NODE_DRIVER = r"""
const fs = require("fs"), vm = require("vm");
const [script, data, length] = process.argv.slice(2), rates = [];
vm.runInThisContext(fs.readFileSync(script, "utf8"));
const api = lstmScratchCore(JSON.parse(fs.readFileSync(data, "utf8")));
for (let r = 0; r < 3; r++) {
  const run = api.run({prime: "ROMEO:", length: +length, seed: r, temperature: 1});
  const t0 = performance.now();
  for (const k of run.picks) ;
  rates.push(length / ((performance.now() - t0) / 1000));
}
process.stdout.write(JSON.stringify(rates));
"""


def find_chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def chromium_rate(chromium, page, length, seed, profile, timeout=600):
    """chars/s the page reports after writing ``length`` chars with ``autorun=1``.

    In real time: under --virtual-time-budget (what the tests use with --dump-dom) the
    page's clock is virtual and its rate means nothing. So Chromium opens the page with its
    log on stderr, and the page's console line "lstm-scratch: done, N chars, R chars/s"
    ends the round (then this process is stopped)."""
    query = urllib.parse.urlencode(dict(prime="ROMEO:", length=length, seed=seed, temperature=1,
                                        autorun=1), quote_via=urllib.parse.quote)
    flags = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "file://" + urllib.parse.quote(os.path.abspath(page)) + "?" + query]
    t0 = time.perf_counter()
    browser = subprocess.Popen(flags, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in browser.stderr:
            done = re.search(r"lstm-scratch: done, (\d+) chars, (\d+) chars/s", line)
            if done:
                return float(done.group(2)), time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                break
        raise SystemExit(f"the page did not report a rate within {timeout} s")
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()


def node_rates(page_text, length, tmp):
    from test_webpage import parts
    node = shutil.which("node")
    if node is None:
        return None
    data, code, _ = parts(page_text)
    paths = [os.path.join(tmp, n) for n in ("page.js", "data.json", "driver.js")]
    for path, text in zip(paths, (code, json.dumps(data), NODE_DRIVER)):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    out = subprocess.run([node, paths[2], paths[0], paths[1], str(length)], capture_output=True,
                         text=True, timeout=600, check=True).stdout
    return json.loads(out)


def float16_error(model, vocab, steps=300):
    """max |p(float16 weights) - p(model)| over ``steps`` greedy steps after "ROMEO:", and the
    step where the greedy texts first differ (None: they never do)."""
    from test_webpage import python_greedy
    prime = "ROMEO:"
    text, p = python_greedy(model, vocab, prime, steps)
    orig = {k: v.copy() for k, v in model.params.items()}
    model.load_params({k: v.astype(np.float16) for k, v in orig.items()})
    text16, p16 = python_greedy(model, vocab, prime, steps)
    model.load_params(orig)
    first = next((t for t in range(steps) if text[len(prime) + t] != text16[len(prime) + t]), None)
    n = steps if first is None else first + 1          # compare up to the first difference
    return float(np.abs(p16[:n] - p[:n]).max()), first


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--num-layers", type=int, default=2)
    ap.add_argument("--checkpoint", help="export this trained model instead")
    ap.add_argument("--length", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--weights", default="float32", choices=("float32", "float16"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "html_speed.json"))
    args = ap.parse_args()
    from lstm_scratch import CharRNN, Vocab, load
    from lstm_scratch.data import builtin_corpus_path, read_text
    from lstm_scratch.webpage import export_html, render_page
    if args.checkpoint:
        model, vocab = load(args.checkpoint, backend="numpy")
        what = args.checkpoint
    else:
        vocab = Vocab.from_text(read_text(builtin_corpus_path()))
        model = CharRNN(len(vocab), args.cell, args.hidden_size, args.num_layers, dropout=0.0, seed=0)
        what = f"{args.cell} {args.num_layers}x{args.hidden_size}, initial weights"
    tmp = tempfile.mkdtemp(prefix="html-speed-")
    page = os.path.join(tmp, "model.html")
    info = export_html(model, vocab, page, title=what, weights=args.weights)
    sizes = {w: len(render_page(model, vocab, weights=w).encode()) for w in ("float32", "float16")}
    error16, differ16 = float16_error(model, vocab)
    result = dict(model=what, config=model.config, params=model.num_params(), length=args.length,
                  weights=args.weights, page_bytes=info["bytes"], page_bytes_float32=sizes["float32"],
                  page_bytes_float16=sizes["float16"], raw_float32_weight_bytes=4 * model.num_params(),
                  float16_max_prob_error=error16, float16_greedy_differs_at=differ16,
                  machine=dict(cpu_info(), cores=len(os.sched_getaffinity(0)),
                               load_avg_before=list(os.getloadavg())))
    print(f"{what}: {model.num_params():,} params; page {sizes['float32'] / 2**20:.2f} MiB with "
          f"float32 weights ({4 * model.num_params() / 2**20:.2f} MiB raw), "
          f"{sizes['float16'] / 2**20:.2f} MiB with float16 (max prob error {error16:.2e}"
          f"{'' if differ16 is None else f', greedy text differs at step {differ16}'})")
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found (apt-get install chromium): node only")
    else:
        version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
        rates, walls = [], []
        for r in range(args.rounds):
            rate, wall = chromium_rate(chromium, page, args.length, r,
                                       os.path.join(tmp, f"profile{r}"))
            rates.append(rate)
            walls.append(wall)
            print(f"  chromium round {r}: {rate:,.0f} chars/s (process {wall:.1f} s)")
        result.update(chromium=version, chromium_rates=rates, chromium_process_s=walls,
                      chromium_median=statistics.median(rates))
        print(f"{version}: median {statistics.median(rates):,.0f} chars/s over {args.rounds} rounds")
    rates = node_rates(render_page(model, vocab, weights=args.weights), args.length, tmp)
    if rates:
        result.update(node_rates=rates, node_median=statistics.median(rates))
        print(f"node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}: "
              f"median {statistics.median(rates):,.0f} chars/s")
    result["machine"]["load_avg_after"] = list(os.getloadavg())
    write_json(args.json, result)


if __name__ == "__main__":
    main()
