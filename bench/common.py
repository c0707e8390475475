"""Shared by the bench scripts: the configurations, timing, and the PyTorch twins."""
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIGS = {
    "C1": dict(desc="Keras recipe: 2x512, dropout 0.2, windows of 20, batch 128, many-to-one",
               H=512, L=2, p=0.2, B=128, T=20, many_to_one=True),
    "C2": dict(desc="stream: 2x512, dropout 0.2, batch 64, seq_len 50, state carried",
               H=512, L=2, p=0.2, B=64, T=50, many_to_one=False),
    "C3": dict(desc="small: 2x128, no dropout, batch 50, seq_len 50",
               H=128, L=2, p=0.0, B=50, T=50, many_to_one=False),
}
V = 65


def machine_info():
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return dict(python=platform.python_version(), numpy=np.__version__,
                cores=len(os.sched_getaffinity(0)), load_avg_before=load,
                cpu=platform.processor() or platform.machine())


def summarize(times, chars_per_step):
    t = np.array(times)
    return dict(median_s=float(np.median(t)), min_s=float(t.min()), max_s=float(t.max()),
                chars_per_s=float(chars_per_step / np.median(t)), n=len(t))


def interleaved(runners, warmup=2, rounds=5, per_round=3):
    """Time each runner's steps in alternating blocks, so all see the same machine load.

    The first step of each block is run but not timed: thread pools (PyTorch's
    OpenMP, OpenBLAS's) spin for a while after their last call, and would
    otherwise charge that to whoever runs next.
    """
    for run in runners.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            run()
            for _ in range(per_round):
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
    return times


def try_torch(threads):
    try:
        import torch
    except ImportError:
        print("torch not installed: PyTorch columns left out "
              "(pip install torch==2.13.0 installs the CPU build here)", file=sys.stderr)
        return None
    torch.set_num_threads(threads)
    return torch


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    print(f"wrote {path}")
