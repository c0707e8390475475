"""Draw every figure in docs/ and the README with the project's own commands.

    python demo.py --out runs/demo          # a trained run to draw from
    python docs/make_figures.py runs/demo   # writes docs/figures/*.png
    python docs/make_figures.py runs/demo visualize   # only the cell-viewer screenshot

Needs matplotlib (pip install '.[plot]'); the screenshot of the cell viewer
needs Chromium (apt-get install chromium) and is skipped without it.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from lstm_scratch import load  # noqa: E402
from lstm_scratch.cli import main as cli  # noqa: E402
from lstm_scratch.plots import _pyplot  # noqa: E402
from lstm_scratch.sampling import next_char_distribution  # noqa: E402

FIG = os.path.join(HERE, "figures")


def temperature_figure(checkpoint, out, prime="ROMEO:\nI will "):
    model, vocab = load(checkpoint, backend="numpy")
    z, _ = model.logits(vocab.encode(prime)[None, :])
    z = model.backend.to_host(z[0])
    plt = _pyplot()
    top = np.argsort(-z)[:15]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=True)
    for ax, tau in zip(axes, (0.2, 0.5, 1.0, 1.2)):
        p = next_char_distribution(z, tau)
        ax.bar(range(len(top)), p[top], color="tab:blue")
        ax.set_xticks(range(len(top)))
        ax.set_xticklabels([repr(vocab.chars[k])[1:-1] for k in top], family="monospace")
        ax.set_title(f"τ = {tau}")
    axes[0].set_ylabel(f"p(next char | {prime!r})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def screenshot(html, out):
    chromium = shutil.which("chromium") or shutil.which("google-chrome")
    if chromium is None:
        print("no Chromium: skipping the cell-viewer screenshot")
        return
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--no-first-run",
                        f"--user-data-dir={profile}", "--window-size=1100,760",
                        "--virtual-time-budget=3000", f"--screenshot={out}",
                        "file://" + os.path.abspath(html) + "#feature=position%20in%20line"],
                       check=True, capture_output=True)


def main():
    run = sys.argv[1] if len(sys.argv) > 1 else "runs/demo"
    only = set(sys.argv[2:])        # figure names (batch, loss, temperature, visualize); none: all
    best = os.path.join(run, "best.npz")
    os.makedirs(FIG, exist_ok=True)
    if not only or "batch" in only:
        cli(["show-batch", "--seq-len", "20", "--batch-size", "4", "--out",
             os.path.join(FIG, "batch_window.png")])
        cli(["show-batch", "--mode", "stream", "--seq-len", "20", "--batch-size", "4", "--out",
             os.path.join(FIG, "batch_stream.png")])
    if not only or "loss" in only:
        cli(["plot", run, "--out", os.path.join(FIG, "loss.png")])
    if not only or "temperature" in only:
        temperature_figure(best, os.path.join(FIG, "temperature.png"))
    if not only or "visualize" in only:
        html = os.path.join(FIG, "cells.html")
        cli(["visualize", best, "--length", "1200", "--out", html, "--backend", "numpy"])
        screenshot(html, os.path.join(FIG, "visualize.png"))
        os.unlink(html)             # large; the screenshot is what the docs show


if __name__ == "__main__":
    main()
