"""Peak resident memory (RSS) of a C2 training run, ours against PyTorch.

    python bench/memory.py             # table + bench/results/memory.json

Each side runs in a fresh subprocess (so neither sees the other's imports)
for a few training steps of C2 (2x512, dropout 0.2, batch 64, seq_len 50),
then reports its own peak RSS (getrusage ru_maxrss).
"""
import argparse
import os
import subprocess
import sys

from common import machine_info, write_json

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r'''
import resource, sys
sys.path.insert(0, {here!r})
from common import CONFIGS
import train_speed
cfg = CONFIGS["C2"]
if {side!r} == "ours":
    from lstm_scratch import CharLSTM
    from lstm_scratch.engine.parallel import auto_workers
    step = train_speed.ours_step(cfg, auto_workers(CharLSTM(65, cfg["H"], 1), cfg["B"]))
else:
    import torch
    torch.set_num_threads(2)
    step = train_speed.torch_step(torch, cfg)
for _ in range({steps}):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
'''


def peak_rss_mib(side, steps):
    code = CHILD.format(here=HERE, side=side, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", default="bench/results/memory.json")
    args = parser.parse_args()
    results = {"ours": peak_rss_mib("ours", args.steps)}
    try:
        import torch  # noqa: F401
        results["torch.nn.LSTM"] = peak_rss_mib("torch", args.steps)
    except ImportError:
        print("torch not installed: PyTorch column left out", file=sys.stderr)
    print(f"peak RSS of {args.steps} C2 training steps:")
    for side, mib in results.items():
        ratio = (f"  {mib / results['torch.nn.LSTM']:.2f}x torch"
                 if "torch.nn.LSTM" in results else "")
        print(f"  {side:15s} {mib:8.1f} MiB{ratio}")
    write_json(args.json, dict(machine=machine_info(), steps=args.steps, peak_rss_mib=results))


if __name__ == "__main__":
    main()
