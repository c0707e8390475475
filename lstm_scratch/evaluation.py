"""Scoring held-out text: as streams (training's evaluations), and by nanoGPT's protocol,
fixed windows each from an empty context.

``lstm-scratch eval`` reports two numbers. The first, :func:`evaluate` over stream
batches, reads the held-out text as B long streams with the state carried from chunk
to chunk: most positions see hundreds of characters of context. nanoGPT's
``estimate_loss`` instead scores windows of ``block_size`` (256 for its baby GPT)
characters, each from an empty context. The same model scores worse that way (the
first chars of every window are guessed with no context), so comparing the baby GPT's
val loss with the streamed number is not like for like. :func:`evaluate_windows` is
the like-for-like number.
"""
import numpy as np

from .config import require_int
from .data import make_batches
from .engine.parallel import ThreadedDataParallel, auto_workers
from .errors import UserError


def evaluate(model, batches):
    """Mean loss in nats per target over every batch of ``batches`` (no dropout).

    model : a CharRNN, or anything with its ``loss`` (a ThreadedDataParallel)

    Stream batches carry the state from chunk to chunk, as in training.
    """
    total, count, state = 0.0, 0, None
    for k in range(batches.batches_per_epoch):
        inputs, targets = batches.batch(0, k)
        loss, state = model.loss(inputs, targets, state if batches.mode == "stream" else None)
        total += loss * targets.size
        count += targets.size
    return total / count


def validation_batches(val_ids, config):
    """Batches over the held-out text (its first ``config.eval_chars`` chars), or None
    when there is none (val_frac = 0)."""
    if config.val_frac == 0:
        return None
    if config.eval_chars:               # each evaluation bounded, however big the split
        val_ids = val_ids[:config.eval_chars]
    need = config.seq_len + 1 if config.mode == "window" else 2
    if len(val_ids) < need:
        raise UserError(f"the validation part (last {config.val_frac:g} of the text) has "
                        f"{len(val_ids)} chars, need at least {need}: "
                        f"raise --val-frac, or --val-frac 0 for none")
    batch_size = min(config.batch_size, len(val_ids) - 1)
    return make_batches(val_ids, config.mode, config.seq_len, batch_size, config.step,
                        config.seed, shuffle=False)


def evaluate_windows(model, val_ids, window=256, batch_size=64):
    """Mean loss in nats per target over the non-overlapping windows of ``val_ids``.

    model : a CharRNN, or anything with its ``loss`` (a ThreadedDataParallel)
    val_ids : (n,) int char ids, any array-like that slices (a np.memmap: only one
        batch of windows, batch_size * window + 1 ids, is read at a time, never the split)
    window : W >= 2 chars per window (nanoGPT's block_size)
    batch_size : windows per call of ``model.loss``; does not change the result
    Returns (loss: float, mean nats per target; targets: int, the number scored).

    Window k has inputs val_ids[k*W : k*W + W] and targets val_ids[k*W + 1 : k*W + W + 1],
    for k = 0 .. K-1 with K = (n - 1) // W: the text is tiled from its first char, and
    a tail too short for a full window (fewer than W + 1 ids left) is left out. Each
    window starts from a zero state (state=None) and every one of its W positions is
    scored, so position t predicts char t + 1 from the t + 1 chars before it in its
    window only. That is what nanoGPT's estimate_loss scores, except that it samples
    eval_iters * batch_size windows at random offsets (a noisy estimate that changes
    with the seed); these are the deterministic tiling, so the number is reproducible.
    """
    require_int("windows", window, 2)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise UserError(f"batch_size must be an integer >= 1 (windows per call), got {batch_size!r}")
    n_windows = (len(val_ids) - 1) // window
    if n_windows < 1:
        raise UserError(f"the held-out text has {len(val_ids):,} chars, need at least "
                        f"{window + 1:,} for one {window:,}-char window (its inputs and the "
                        f"char after): lower --windows, or raise --val-frac or --eval-chars")
    total = 0.0
    for lo in range(0, n_windows, batch_size):
        B = min(batch_size, n_windows - lo)
        # One slice of B*W + 1 ids: windows lo .. lo+B-1 and the char after the last.
        chunk = np.asarray(val_ids[lo * window:(lo + B) * window + 1])
        inputs = chunk[:-1].reshape(B, window)                  # (B, W)
        targets = chunk[1:].reshape(B, window)                  # (B, W) the next char of each
        loss, _ = model.loss(inputs, targets, None)             # None: every window from zeros
        total += loss * targets.size
    return total / (n_windows * window), n_windows * window


def evaluate_windows_threaded(model, val_ids, window=256, batch_size=64):
    """:func:`evaluate_windows` with the batch split across this machine's cores
    (engine/parallel.py: as many threads as pay off for this model)."""
    runner = ThreadedDataParallel(model, auto_workers(model, batch_size))
    try:
        return evaluate_windows(runner, val_ids, window, batch_size)
    finally:
        runner.close()
