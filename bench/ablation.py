"""The regularisers' ablation: one network, each row a run of equal training wall time.

    python bench/ablation.py                       # every row not yet in the results, in order
    python bench/ablation.py --rows full,no-ema    # just these
    python bench/ablation.py --minutes 15 --table  # print the table of what has run

Like AWD-LSTM's Table 4: the full recipe, then the full recipe with one piece
taken out, and the plain baseline. Every row is `lstm-scratch train` on the
built-in tinyshakespeare with nanoGPT's split (the last 10% held out), for
``--minutes`` of training steps (``--max-minutes``: evaluations not counted),
then `lstm-scratch eval best.npz --windows 256 --json`: the streamed score
and nanoGPT's 256-char windows. Each row runs in a process of its own, one
after the other (they share the cores); results go to
bench/results/ablation.json as they come, so a stopped run resumes at the
next row. Equal wall time is the fair budget here: AdamW, an average and an
embedding each cost time a step.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results", "ablation.json")

# One network for every row: 2x512, TBPTT chunks of 100, batch 32.
NETWORK = ["--hidden-size", "512", "--num-layers", "2", "--seq-len", "100", "--batch-size", "32",
           "--lr", "2e-3", "--clip-norm", "5", "--val-frac", "0.1", "--epochs", "1000",
           "--eval-every", "250", "--no-samples", "--seed", "0"]
FULL = dict(optimizer="adamw", weight_drop="0.25", locked_dropout=True, dropout="0.25",
            output_dropout="0.1", embedding_size="128", input_dropout="0.1", ema="0.999")
ROWS = {
    "baseline": dict(dropout="0.2"),                    # the stream recipe's regularisation
    "full": FULL,
    "no-weight-drop": {k: v for k, v in FULL.items() if k != "weight_drop"},
    "no-locked": {k: v for k, v in FULL.items() if k != "locked_dropout"},
    "no-embedding": {k: v for k, v in FULL.items() if k not in ("embedding_size", "input_dropout")},
    "rmsprop": {k: v for k, v in FULL.items() if k != "optimizer"},
    "no-ema": {k: v for k, v in FULL.items() if k != "ema"},
    # added later: the full set, with each row's state started again every 4 (2, 8) chunks
    "full-reset-4": dict(FULL, reset_every="4"),
    "full-reset-2": dict(FULL, reset_every="2"),
    "full-reset-8": dict(FULL, reset_every="8"),
    # added later: zoneout (Krueger et al. 2016) on top of the resets, at the paper's
    # character-level rates (c 0.5, h 0.05) and at a lighter cell rate
    "full-reset-4-zoneout": dict(FULL, reset_every="4", zoneout_cell="0.5", zoneout_hidden="0.05"),
    "full-reset-4-zoneout-light": dict(FULL, reset_every="4", zoneout_cell="0.2",
                                       zoneout_hidden="0.05"),
}


def flags(options):
    out = []
    for name, value in options.items():
        out += [f"--{name.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return out


def run_row(name, minutes, runs_dir):
    out_dir = os.path.join(runs_dir, name)
    shutil.rmtree(out_dir, ignore_errors=True)          # a row stopped half-way starts over
    train = [sys.executable, "-m", "lstm_scratch", "train", "--out", out_dir,
             "--max-minutes", str(minutes)] + NETWORK + flags(ROWS[name])
    print("$ lstm-scratch " + " ".join(train[3:]), flush=True)
    t0 = time.time()
    with open(os.path.join(runs_dir, f"{name}.log"), "w") as log:
        subprocess.run(train, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.time() - t0
    metrics = [json.loads(line) for line in open(os.path.join(out_dir, "metrics.jsonl"))]
    evaluate = [sys.executable, "-m", "lstm_scratch", "eval", os.path.join(out_dir, "best.npz"),
                "--windows", "256", "--json"]
    scores = json.loads(subprocess.run(evaluate, check=True, capture_output=True, text=True,
                                       cwd=ROOT).stdout)
    best = min(metrics, key=lambda r: r["val_loss"])
    row = dict(row=name, command=" ".join(["lstm-scratch"] + train[3:]), minutes=minutes,
                steps=metrics[-1]["step"], epochs=metrics[-1]["epoch"],
                train_loss=metrics[-1]["train_loss"], best_step=best["step"],
                val_loss=scores["val_loss"], val_loss_windows=scores["val_loss_windows"],
                wall_s=round(wall, 1))
    if ROWS[name].get("ema"):
        row.update(live_scores(os.path.join(out_dir, "latest.npz")))
    return row


def live_scores(checkpoint):
    """The run's last live weights, not its average: what the run would have scored
    without --ema (the same steps: the average never feeds back into training)."""
    sys.path.insert(0, ROOT)
    from lstm_scratch.api import model_from_saved
    from lstm_scratch.checkpoint import load_checkpoint
    from lstm_scratch.engine.parallel import ThreadedDataParallel
    from lstm_scratch.evaluation import evaluate_windows_threaded
    from lstm_scratch.prepared import open_corpus
    from lstm_scratch.train import evaluate, saved_config, validation_batches
    saved = load_checkpoint(checkpoint)
    model, vocab = model_from_saved(dict(saved, ema=None), backend="numpy")
    config = saved_config(saved).resolved()
    config.eval_chars = None                                # the whole split, as eval does
    _, _, val_ids = open_corpus(config.data_path(checkpoint), config.val_frac, vocab,
                                config.doc_sep)
    runner = ThreadedDataParallel(model, 2)
    try:
        streams = evaluate(runner, validation_batches(val_ids, config))
    finally:
        runner.close()
    return dict(live_val_loss=streams,
                live_val_loss_windows=evaluate_windows_threaded(model, val_ids, 256)[0])


def table(results):
    lines = ["| row | val (streams) | val (256-char windows) | steps | epochs | last train |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['row']} | {r['val_loss']:.4f} | {r['val_loss_windows']:.4f} | "
                     f"{r['steps']} | {r['epochs']:.2f} | {r['train_loss']:.4f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated, from: " + ", ".join(ROWS))
    parser.add_argument("--minutes", type=float, default=15.0, help="training minutes per row")
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "ablation"),
                        help="folder for the runs' checkpoints and logs")
    parser.add_argument("--results", default=RESULTS, help="the JSON the rows go to")
    parser.add_argument("--table", action="store_true", help="print the results table and stop")
    args = parser.parse_args()
    results = json.load(open(args.results)) if os.path.exists(args.results) else []
    if args.table:
        print(table(results))
        return 0
    os.makedirs(args.runs, exist_ok=True)
    for name in args.rows.split(","):
        if name not in ROWS:
            parser.error(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
        if any(r["row"] == name and r["minutes"] == args.minutes for r in results):
            continue
        results.append(run_row(name, args.minutes, args.runs))
        with open(args.results, "w") as f:
            json.dump(results, f, indent=1)
        print(table(results[-1:]).splitlines()[-1], flush=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
