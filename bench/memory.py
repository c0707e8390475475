"""Peak resident memory (RSS) of a C2 training run, ours against PyTorch.

    python bench/memory.py             # table + bench/results/memory.json
    python bench/memory.py --corpus /tmp/big.txt   # prepare + train on a big text
                                                   # -> bench/results/memory_corpus.json

Each side runs in fresh processes (so neither sees the other's imports),
alternating, for a few training steps of C2 (2x512, dropout 0.2, batch 64,
seq_len 50), and reports its own peak RSS (getrusage ru_maxrss). The
children are train_speed.py's, with the same cleaned environment. With
--corpus: peak RSS and time of ``prepare`` on a big text, then of training
a 2x64 model from the prepared folder and, for comparison, from the text.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from common import (V, CONFIGS, alternate, child_env, kernel_summary, machine_info, start_parent,
                    try_torch, what_it_saw, write_json)

TRAIN_SPEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_speed.py")


# A big corpus, prepared then trained from (2x64, stream mode): peak RSS and the seconds
# from the start of the process to the end of the first training step.
CORPUS_CHILD = r'''
import resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from lstm_scratch.api import make_trainer
trainer = make_trainer({source!r}, None, out=open("/dev/null", "w"), hidden_size=64,
                       num_layers=2, max_steps={steps}, sample_temperatures=(), backend="numpy")
inputs, targets = trainer.batches.batch(0, 0)
trainer._train_step(inputs, targets)
first = time.perf_counter() - t0
trainer.run()                                  # the remaining steps and one bounded evaluation
print(first, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def corpus_rows(text_path, steps, prepared_dir):
    """Peak RSS (MiB) and seconds of ``prepare``, then of training from the folder and,
    for comparison, from the text file itself."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = {"corpus_mib": os.path.getsize(text_path) / 2**20}
    code = ("import resource, sys, time; sys.path.insert(0, %r); t0 = time.perf_counter()\n"
            "from lstm_scratch.prepared import prepare; prepare(%r, %r)\n"
            "print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
            % (root, text_path, prepared_dir))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, kib = out.stdout.split()
    rows["prepare"] = dict(peak_rss_mib=int(kib) / 1024, seconds=float(seconds))
    for name, source in (("train_prepared", prepared_dir), ("train_text", text_path)):
        code = CORPUS_CHILD.format(root=root, source=source, steps=steps)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        first, kib = out.stdout.split()[-2:]
        rows[name] = dict(peak_rss_mib=int(kib) / 1024, first_step_s=float(first))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="C2")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="processes per side")
    parser.add_argument("--engine", choices=("fast", "reference"),
                        help="CharLSTM(engine=...), where CharLSTM has one")
    parser.add_argument("--json", default="bench/results/memory.json")
    parser.add_argument("--corpus", help="a big UTF-8 text: measure prepare and training "
                        "from the prepared folder (written beside it, then removed) against "
                        "the plain file")
    args = parser.parse_args()
    if args.corpus:
        prepared = tempfile.mkdtemp(prefix="prepared-", dir=os.path.dirname(args.corpus))
        try:
            rows = corpus_rows(args.corpus, 20, prepared)
        finally:
            shutil.rmtree(prepared)
        for name, row in rows.items():
            print(f"  {name:15s} {row}")
        write_json(args.json.replace(".json", "_corpus.json"),
                   dict(machine=machine_info(child_env()[1]),
                        model="2x64 stream, batch 64, seq_len 100", steps=20, **rows))
        return
    env, info = start_parent(args.engine)
    from lstm_scratch import CharLSTM
    from lstm_scratch.engine.parallel import auto_workers
    cfg = CONFIGS[args.config]
    workers = auto_workers(CharLSTM(V, cfg["H"], 1), cfg["B"])
    base = dict(config=args.config, device="cpu", engine=args.engine, warmup=0, steps=args.steps,
                threads=2, workers=workers)
    specs = [dict(base, side=f"ours ({workers} workers)")]
    if try_torch() is not None:
        specs.append(dict(base, side="torch"))
    else:
        print("torch not installed: PyTorch column left out", file=sys.stderr)
    children = alternate(TRAIN_SPEED, specs, args.rounds, env)
    results, seen = {}, {}
    for side, runs in children.items():
        rss = [r["max_rss_mib"] for r in runs if "max_rss_mib" in r]
        results[side] = dict(median_mib=float(np.median(rss)), min_mib=min(rss), max_mib=max(rss),
                             processes=len(rss)) if rss else None
        if rss:
            seen[side] = what_it_saw(runs)
    print(f"peak RSS of {args.steps} {args.config} training steps, median of {args.rounds} processes:")
    ref = results.get("torch")
    for side, r in results.items():
        if r is None:
            print(f"  {side:18s} failed: {children[side][0].get('error')}")
            continue
        ratio = f"  {r['median_mib'] / ref['median_mib']:.2f}x torch" if ref else ""
        print(f"  {side:18s} {r['median_mib']:8.1f} MiB [{r['min_mib']:.1f}-{r['max_mib']:.1f}]{ratio}"
              f"   ({kernel_summary(seen[side])})")
    info["load_avg_after"] = list(os.getloadavg())
    write_json(args.json, dict(machine=info, config=args.config, steps=args.steps, engine=args.engine,
                               children_saw=seen, peak_rss_mib=results))


if __name__ == "__main__":
    main()
