"""Where one batch-split worker's training step goes: cProfile of ``loss_and_grads``
on its share of a config's batch, one BLAS thread (as each worker runs it).

    python bench/profile_step.py                 # C1 and C2
    python bench/profile_step.py --configs C2 --calls 10

Carried state for the stream configs (nonzero, as after the first batch), a fresh
zero state for many-to-one ones. Prints the BLAS kernel threadpoolctl reports and
the functions that take the most time of their own; where OPENBLAS_CORETYPE or
OPENBLAS_L2_SIZE is set, it runs itself again without them (bench/common.py says why).
"""
import argparse
import cProfile
import pstats

import numpy as np
from threadpoolctl import threadpool_limits

from common import CONFIGS, V, child_seen, exec_without_blas_overrides, kernel_summary


def profile(name, workers, calls, rows):
    from lstm_scratch import CharLSTM
    cfg = CONFIGS[name]
    B, T = cfg["B"] // workers, cfg["T"]
    model = CharLSTM(V, cfg["H"], cfg["L"], dropout=cfg["p"], seed=0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, V, (B, T))
    y = rng.integers(0, V, (B,) if cfg["many_to_one"] else (B, T))
    state = None
    if not cfg["many_to_one"]:
        state = [tuple(rng.uniform(-0.5, 0.5, a.shape).astype(model.dtype) for a in layer)
                 for layer in model.init_state(B)]
    for _ in range(3):                                      # compile, fill the workspace
        model.loss_and_grads(x, y, state, dropout_rng=rng)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        model.loss_and_grads(x, y, state, dropout_rng=rng)
    prof.disable()
    stats = pstats.Stats(prof)
    print(f"\n{name}: {cfg['desc']}; one worker of {workers}: {B} rows x {T} steps; "
          f"{calls} calls, {stats.total_tt / calls * 1e3:.1f} ms a call")
    stats.sort_stats("tottime").print_stats(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="C1,C2", help="comma-separated, of " + ",".join(CONFIGS))
    parser.add_argument("--workers", type=int, default=2, help="the batch is split this many ways")
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--rows", type=int, default=14, help="functions to list")
    args = parser.parse_args()
    names = args.configs.split(",")
    for name in names:
        if name not in CONFIGS:
            parser.error(f"--configs: unknown config {name!r}, expected some of {','.join(CONFIGS)}")
    exec_without_blas_overrides()
    print("BLAS:", kernel_summary(child_seen()))
    with threadpool_limits(1):
        for name in names:
            profile(name, args.workers, args.calls, args.rows)


if __name__ == "__main__":
    main()
