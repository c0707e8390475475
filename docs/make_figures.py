"""Draw every figure in docs/ and the README with the project's own commands.

    python demo.py --out runs/demo          # a trained run to draw from
    python docs/make_figures.py runs/demo   # writes docs/figures/*.png
    python docs/make_figures.py runs/demo visualize   # only the cell-viewer screenshot

    python docs/make_figures.py cells runs/cells [MAX_STEPS]   # docs/figures/cells.png

The ``cells`` figure trains three runs of some 4 minutes each on 2 cores (unless runs/cells/<cell> already
holds one) on tinyshakespeare at equal parameter count: the LSTM at H = 128,
and the GRU and RNN at the H whose parameter count comes closest (printed),
each with CELLS_RUN's flags (MAX_STEPS replaces its --max-steps); then draws
their validation curves against characters seen (not wall time, which a busy
machine perturbs).

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
from lstm_scratch.cells import param_shapes  # noqa: E402
from lstm_scratch.cli import main as cli  # noqa: E402
from lstm_scratch.data import Vocab, builtin_corpus_path, read_text  # noqa: E402
from lstm_scratch.plots import _pyplot, load_metrics  # noqa: E402
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


# The cells figure: every run takes these flags, plus its --cell and --hidden-size.
CELLS_RUN = ["--num-layers", "2", "--batch-size", "32", "--seq-len", "50", "--max-steps", "6000",
             "--eval-every", "200", "--seed", "0", "--no-samples"]
CELLS_LSTM_H = 128


def num_params(cell, hidden_size, vocab_size, num_layers=2):
    shapes = param_shapes(dict(cell=cell, vocab_size=vocab_size, hidden_size=hidden_size,
                               num_layers=num_layers))
    return sum(int(np.prod(s)) for s in shapes.values())


def equal_param_sizes(vocab_size, lstm_h=CELLS_LSTM_H):
    """{cell: H}: the LSTM's H, and for the GRU and RNN the H nearest its parameter count."""
    target = num_params("lstm", lstm_h, vocab_size)
    sizes = {"lstm": lstm_h}
    for cell in ("gru", "rnn"):
        sizes[cell] = min(range(1, 4 * lstm_h),
                          key=lambda h: abs(num_params(cell, h, vocab_size) - target))
    return sizes


def cells_commands(runs, max_steps=None):
    """The three training commands of the cells figure, as argument lists."""
    V = len(Vocab.from_text(read_text(builtin_corpus_path())))
    sizes = equal_param_sizes(V)
    flags = list(CELLS_RUN)
    if max_steps is not None:
        flags[flags.index("--max-steps") + 1] = str(int(max_steps))
    return {cell: ["train", "--cell", cell, "--hidden-size", str(sizes[cell]), *flags,
                   "--out", os.path.join(runs, cell)] for cell in ("lstm", "gru", "rnn")}, sizes, V


def cells_figure(runs, out, max_steps=None):
    """Train (where not done yet) and draw the three cells' validation curves."""
    commands, sizes, V = cells_commands(runs, max_steps)
    for cell, argv in commands.items():
        print(f"{cell}: H = {sizes[cell]}, {num_params(cell, sizes[cell], V):,} parameters; "
              f"nice -n 19 python -m lstm_scratch {' '.join(argv)}")
        if not os.path.exists(os.path.join(runs, cell, "latest.npz")) and cli(argv) != 0:
            raise SystemExit(f"the {cell} run failed")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    flag = lambda name: int(CELLS_RUN[CELLS_RUN.index(name) + 1])
    chars_per_step = flag("--batch-size") * flag("--seq-len")        # stream mode: every char
    for cell in commands:
        m = load_metrics(os.path.join(runs, cell))
        steps = [s for s, v in zip(m["step"], m["val_loss"]) if v is not None]
        vals = [v for v in m["val_loss"] if v is not None]
        ax.plot([s * chars_per_step / 1e6 for s in steps], vals, "o-",
                label=f"{cell.upper()} H={sizes[cell]} ({num_params(cell, sizes[cell], V):,} "
                      f"params): {vals[-1]:.3f}")
        print(f"{cell}: final validation loss {vals[-1]:.4f} nats at step {steps[-1]}")
    ax.set_xlabel("training characters seen (millions)")
    ax.set_ylabel("validation loss (nats per char)")
    ax.set_title("tinyshakespeare, 2 layers, equal parameter count")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


def main():
    if sys.argv[1:2] == ["cells"]:
        os.makedirs(FIG, exist_ok=True)
        cells_figure(sys.argv[2] if len(sys.argv) > 2 else "runs/cells",
                     os.path.join(FIG, "cells.png"), sys.argv[3] if len(sys.argv) > 3 else None)
        return
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
