"""Peak resident memory (RSS) of a C2 training run, ours against PyTorch.

    python bench/memory.py             # table + bench/results/memory.json

Each side runs in fresh processes (so neither sees the other's imports),
alternating, for a few training steps of C2 (2x512, dropout 0.2, batch 64,
seq_len 50), and reports its own peak RSS (getrusage ru_maxrss). The
children are train_speed.py's, with the same cleaned environment.
"""
import argparse
import os
import sys

import numpy as np
from common import (V, CONFIGS, alternate, announce, child_env, engine_kwargs, kernel_summary,
                    machine_info, try_torch, write_json)

TRAIN_SPEED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_speed.py")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="C2")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="processes per side")
    parser.add_argument("--engine", choices=("fast", "reference"),
                        help="CharLSTM(engine=...), where CharLSTM has one")
    parser.add_argument("--json", default="bench/results/memory.json")
    args = parser.parse_args()
    engine_kwargs(args.engine)
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
    env, removed = child_env()
    info = machine_info(removed)
    announce(removed)
    children = alternate(TRAIN_SPEED, specs, args.rounds, env)
    results, seen = {}, {}
    for side, runs in children.items():
        rss = [r["max_rss_mib"] for r in runs if "max_rss_mib" in r]
        results[side] = dict(median_mib=float(np.median(rss)), min_mib=min(rss), max_mib=max(rss),
                             processes=len(rss)) if rss else None
        if rss:
            seen[side] = {k: v for k, v in runs[0].items() if k not in ("times_s", "median_s")}
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
