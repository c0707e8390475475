"""Train the starter model shipped in the package, lstm_scratch/models/shakespeare.npz.

    python scripts/train_starter.py --force          # about 20 minutes on a 2-core CPU
    python scripts/train_starter.py --epochs 1 --out runs/quick --target quick.npz   # a look

It trains STARTER on the built-in corpus with the last 10% held out (nanoGPT's split,
so that `lstm-scratch eval shakespeare` scores text the model never saw), then writes
the best evaluation's weights (their average: --ema) as a weights-only checkpoint: no
optimizer state, no carried state, no paths of this machine. A size of 2x256 keeps
the wheel's growth near 3.5 MB of float32 (a float32 member does not deflate much);
a 128-d embedding and AdamW are what paid most in docs/ablation.md. Last, it scores
the file it wrote, streamed and by 256-char windows, and prints the figures the
README gives. It replaces the shipped file only when told to (--force).
"""
import argparse
import contextlib
import io
import json
import os
import sys
import time

import lstm_scratch as ls
from lstm_scratch.checkpoint import load_checkpoint, save_checkpoint
from lstm_scratch.cli import main as cli_main
from lstm_scratch.data import Vocab
from lstm_scratch.starter import SHIPPED

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, os.pardir, "lstm_scratch", "models", SHIPPED["shakespeare"][0])

STARTER = dict(mode="stream", hidden_size=256, num_layers=2, seq_len=100, batch_size=32,
               epochs=16, lr=2e-3, clip_norm=5.0, optimizer="adamw", embedding_size=128,
               dropout=0.2, input_dropout=0.1, ema=0.999, lr_decay=0.95, lr_decay_every=1,
               eval_every=314, val_frac=0.1, sample_temperatures=(), seed=0)


def ship(best, target):
    """Write ``best``'s weights (its average, if kept) as a weights-only checkpoint."""
    saved = load_checkpoint(best)
    meta = saved["meta"]
    train = dict(meta["train"], out_dir=None, data=None)        # the built-in corpus, anywhere
    progress = {k: meta["progress"].get(k) for k in ("step", "epoch", "val_loss", "best_val",
                                                     "elapsed_s")}
    params = saved["params"] if saved["ema"] is None else saved["ema"]
    save_checkpoint(target, params=params, vocab=Vocab.from_codes(saved["vocab_codes"]),
                    meta=dict(model=meta["model"], train=train, progress=progress))


def score(path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["eval", path, "--windows", "256", "--json"])
    if code:
        sys.exit(code)
    return json.loads(out.getvalue())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("runs", "starter"), help="run folder")
    parser.add_argument("--epochs", type=int, default=STARTER["epochs"])
    parser.add_argument("--target", default=TARGET, help="the file to write (default: the "
                        "package's lstm_scratch/models/shakespeare.npz)")
    parser.add_argument("--force", action="store_true", help="replace --target if it exists")
    args = parser.parse_args(argv)
    if os.path.exists(args.target) and not args.force:
        parser.error(f"{args.target} exists; pass --force to replace it, or --target FILE")
    try:
        return train_and_ship(args)
    except ls.UserError as exc:
        print(f"train_starter.py: error: {exc}", file=sys.stderr)
        return 2


def train_and_ship(args):
    start = time.time()
    ls.train(None, args.out, **dict(STARTER, epochs=args.epochs))
    minutes = (time.time() - start) / 60
    os.makedirs(os.path.dirname(os.path.abspath(args.target)), exist_ok=True)
    ship(os.path.join(args.out, "best.npz"), args.target)
    figures = dict(score(args.target), minutes=round(minutes, 1),
                   bytes=os.path.getsize(args.target))
    print(json.dumps(figures))
    print(f"wrote {os.path.normpath(args.target)} ({figures['bytes']:,} bytes) after "
          f"{minutes:.1f} min: val {figures['val_loss']:.4f} nats streamed, "
          f"{figures['val_loss_windows']:.4f} by 256-char windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
