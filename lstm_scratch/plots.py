"""Pictures of a run and of a batch: the data first, then matplotlib draws it.

Each figure has a function that returns its data (tested) and one that
draws it. matplotlib is an optional extra: ``pip install 'lstm-scratch[plot]'``.
"""
import json
import math
import os

import numpy as np

from .data import Vocab, make_batches
from .errors import UserError


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")                       # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting needs matplotlib, which is not installed; "
                        "install it with: pip install 'lstm-scratch[plot]'") from None
    return plt


# -- loss curves ---------------------------------------------------------------
def load_metrics(run_dir):
    """metrics.jsonl of a run -> dict of lists: step, epoch, train_loss, val_loss, val_bpc."""
    path = os.path.join(run_dir, "metrics.jsonl") if os.path.isdir(run_dir) else run_dir
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file (expected a run folder holding metrics.jsonl)")
    records = []
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
                raise UserError(f"{path}:{n}: not a JSON line ({why})") from None
            if not isinstance(record, dict):
                raise UserError(f"{path}:{n}: not a JSON object, expected one per evaluation")
            records.append(record)
    if not records:
        raise UserError(f"{path}: holds no evaluations yet")
    keys = ("step", "epoch", "train_loss", "val_loss", "val_bpc")
    return {k: [r.get(k) for r in records] for k in keys}


def plot_metrics(run_dir, out):
    """Train and validation loss (nats, and bits per char on the right) against step."""
    m = load_metrics(run_dir)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(m["step"], m["train_loss"], "o-", label="train (mean since last evaluation)")
    if any(v is not None for v in m["val_loss"]):
        steps = [s for s, v in zip(m["step"], m["val_loss"]) if v is not None]
        ax.plot(steps, [v for v in m["val_loss"] if v is not None], "s-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per char)")
    right = ax.secondary_yaxis("right", functions=(lambda n: n / math.log(2),
                                                   lambda b: b * math.log(2)))
    right.set_ylabel("bits per char")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{os.path.basename(os.path.abspath(run_dir))}: loss")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


# -- the input 3-tensor ----------------------------------------------------------
def batch_tensor(text, mode="window", seq_len=20, batch_size=8, step=3, seed=0):
    """The first training batch of ``text`` as the network sees it.

    Returns dict with
      onehot : (B, T, V) float32 — the input 3-tensor the Keras recipe builds
      inputs : (B, T) int ids (what we actually feed: a row gather, never the 3-tensor)
      targets : (B,) ids (window mode) or (B, T) ids (stream mode)
      chars : list of V characters (the vocabulary), input_text / target_text per row
    """
    vocab = Vocab.from_text(text)
    batches = make_batches(vocab.encode(text), mode, seq_len, batch_size, step, seed)
    inputs, targets = batches.batch(0, 0)
    onehot = np.zeros(inputs.shape + (len(vocab),), dtype=np.float32)
    np.put_along_axis(onehot, inputs[..., None], 1.0, axis=-1)
    return dict(mode=mode, onehot=onehot, inputs=inputs, targets=targets, chars=vocab.chars,
                input_text=[vocab.decode(row) for row in inputs],
                target_text=[vocab.decode(row) for row in np.atleast_1d(targets).reshape(len(inputs), -1)])


def _label(ch):
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(ch, ch)


def plot_batch(batch, out, max_panels=8):
    """One panel per sequence: time down, vocabulary across, the hot cell filled."""
    plt = _pyplot()
    onehot, chars = batch["onehot"], batch["chars"]
    B, T, V = onehot.shape
    n = min(B, max_panels)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.22 * T * rows + 1.6), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        ax.imshow(onehot[k], aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks(range(T))
        ax.set_yticklabels([_label(ch) for ch in batch["input_text"][k]], fontsize=7,
                           family="monospace")
        ax.set_xticks(range(V))
        ax.set_xticklabels([_label(ch) for ch in chars], fontsize=5, family="monospace")
        ax.tick_params(axis="x", rotation=90, length=0)
        if batch["mode"] == "window":
            ax.set_title(f"seq {k}: next char {_label(batch['target_text'][k])!r}", fontsize=9)
        else:
            twin = ax.secondary_yaxis("right")
            twin.set_yticks(range(T))
            twin.set_yticklabels([_label(ch) for ch in batch["target_text"][k]], fontsize=7,
                                 family="monospace", color="tab:red")
            ax.set_title(f"stream {k}: inputs (left), targets (right)", fontsize=9)
    fig.suptitle(f"{batch['mode']} batch: a ({B}, {T}, {V}) one-hot 3-tensor "
                 f"(batch, time, vocabulary)", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
