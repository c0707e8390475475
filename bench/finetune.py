"""Fine-tuning the shipped model against training from scratch, at equal wall time.

    python bench/finetune.py                 # 3 runs of 4 minutes each
    python bench/finetune.py --rows from-scratch --minutes 2      # one row again

The text is another style entirely: the first 100,000 characters of Python's own
reference documentation as `help()` shows it (pydoc_data.topics, in every Python,
its topics in sorted order, joined by a blank line): technical English, code, and (in
Python 3.11's, which another Python changes a little) 37 characters Shakespeare never
used. Both runs train the starter's architecture (2x256,
a 128-d embedding, dropout 0.2) with the same optimizer and schedule for the same
minutes of training steps (--max-minutes); one starts from `--init-from shakespeare`,
one from a fresh initialisation, and one from the shipped model at half the lr. Each
runs in its own process, one after the other, and is scored on the last 10% of the
text (streamed, and by 256-char windows) at its best evaluation; the best evaluation
each had reached within 30 and 60 seconds of training is read off its metrics.
Results: bench/results/finetune.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results", "finetune.json")
CHARS = 100_000
# The schedule both runs share; the scratch run adds the starter's architecture flags.
COMMON = ["--seq-len", "100", "--batch-size", "32", "--optimizer", "adamw", "--lr", "2e-3",
          "--clip-norm", "5", "--val-frac", "0.1", "--epochs", "100000", "--eval-every", "25",
          "--no-samples", "--seed", "0"]
ARCHITECTURE = ["--hidden-size", "256", "--num-layers", "2", "--embedding-size", "128",
                "--dropout", "0.2", "--input-dropout", "0.1"]
# name -> how the run starts (flags after COMMON; a later --lr wins over COMMON's)
RUNS = {"init-from-shakespeare": ["--init-from", "shakespeare"],
        "from-scratch": ARCHITECTURE,
        "init-from-shakespeare-lr1e-3": ["--init-from", "shakespeare", "--lr", "1e-3"]}
BY_SECONDS = (30, 60)           # also: the best evaluation reached within this much training


def write_text(path):
    from pydoc_data.topics import topics
    text = "\n\n".join(topics[k] for k in sorted(topics))[:CHARS]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


def lstm_scratch(*args, log=None):
    """Run the command; its output into the open file ``log``, or returned."""
    done = subprocess.run([sys.executable, "-m", "lstm_scratch", *args], cwd=ROOT, text=True,
                          stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        where = f"see {log.name}" if log else done.stdout
        sys.exit(f"lstm-scratch {' '.join(args)} failed: {where}")
    return done.stdout


def run(name, start, text, minutes, runs_dir):
    out = os.path.join(runs_dir, name)
    shutil.rmtree(out, ignore_errors=True)              # a rerun starts over
    train = ["train", text, "--out", out, "--max-minutes", str(minutes), *COMMON, *start]
    print("$ lstm-scratch " + " ".join(train), flush=True)
    t0 = time.time()
    with open(os.path.join(runs_dir, f"{name}.log"), "w") as log:
        lstm_scratch(*train, log=log)
    wall = time.time() - t0
    history = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    best = min(history, key=lambda r: r["val_loss"])
    scored = json.loads(lstm_scratch("eval", os.path.join(out, "best.npz"), "--windows", "256",
                                     "--json"))
    row = dict(run=name, command="lstm-scratch " + " ".join(train), minutes=minutes,
               steps=history[-1]["step"], best_step=best["step"], val_loss=scored["val_loss"],
               val_loss_windows=scored["val_loss_windows"], first_val_loss=history[0]["val_loss"],
               wall_s=round(wall, 1))
    for seconds in BY_SECONDS:                      # the same run, read at an earlier time
        row[f"best_val_by_{seconds}s"] = min(r["val_loss"] for r in history
                                             if r["elapsed_s"] <= seconds)
    print(json.dumps(row), flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--rows", default=",".join(RUNS), help="comma-separated, from: "
                        + ", ".join(RUNS) + " (results of the others are kept)")
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "finetune"))
    args = parser.parse_args(argv)
    names = args.rows.split(",")
    for name in names:
        if name not in RUNS:
            parser.error(f"unknown row {name!r}; rows: {', '.join(RUNS)}")
    os.makedirs(args.runs, exist_ok=True)
    text_path = os.path.join(args.runs, "pydoc.txt")
    text = write_text(text_path)
    shakespeare = set(open(os.path.join(ROOT, "lstm_scratch", "corpus", "tinyshakespeare.txt"),
                           encoding="utf-8").read())
    kept = {}
    if os.path.exists(RESULTS):
        kept = {r["run"]: r for r in json.load(open(RESULTS))["rows"] if r["run"] not in names}
    fresh = {name: run(name, RUNS[name], text_path, args.minutes, args.runs) for name in names}
    rows = [fresh.get(name) or kept[name] for name in RUNS if name in fresh or name in kept]
    result = dict(text=f"pydoc_data.topics of Python {sys.version.split()[0]}, sorted, "
                       f"first {len(text):,} chars",
                  new_chars=len(set(text) - shakespeare), rows=rows)
    with open(RESULTS, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {RESULTS}")
    for r in rows:
        early = ", ".join(f"{r[f'best_val_by_{t}s']:.4f} by {t} s" for t in BY_SECONDS)
        print(f"{r['run']:>28}: val {r['val_loss']:.4f} nats streamed, "
              f"{r['val_loss_windows']:.4f} by windows ({r['steps']} steps, best at "
              f"{r['best_step']}); {early}")


if __name__ == "__main__":
    sys.exit(main())
