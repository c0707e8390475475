"""How much it matters where a GEMM's operands start: NumPy's own allocations start
16 bytes past a 64-byte boundary, the engine's (backend.empty_aligned) on one.

    python bench/gemm_align.py            # the training step's products, one BLAS thread
    python bench/gemm_align.py --layouts  # the per-step products in each memory layout
    python bench/gemm_align.py --sampling # generation's one-row products, 1 and 2 threads
    python bench/gemm_align.py --panels   # per-step products: one matmul against panels

Each product runs with its B operand (the weights) at every 8-byte offset from a
64-byte boundary, then with all three operands aligned or all at NumPy's usual 16;
medians of 3 blocks of calls, one thread (as each batch-split worker runs it).
With --layouts: the per-step products h Wh and da Whᵀ (32 and 64 rows), all
operands aligned, written each way BLAS could be asked for them (row-major or
column-major weights, or the transposed product, which would keep the state
feature-major). With --sampling: generation's (1, 512) x (512, 2048) product,
one character's worth, on one thread and on two (as generate runs it). With
--panels: every per-step product of an LSTM (h Wh, da Whᵀ; GRU and RNN at
H = 512) for a range of widths and rows per worker, on one thread, through
``engine.gemm.step_gemm`` as the layers call it: one matmul, panels of the width
``panel_width`` picks, and (where it picks none) the widest the small kernel takes.
Prints the BLAS kernel threadpoolctl reports. Where OPENBLAS_CORETYPE or
OPENBLAS_L2_SIZE is set, it runs itself again without them (bench/common.py says why).
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from common import child_seen, exec_without_blas_overrides, kernel_summary

ALIGN = 64


def at_offset(shape, offset, order="C"):
    """A float32 array of ``shape`` starting ``offset`` bytes past a 64-byte boundary."""
    nbytes = int(np.prod(shape)) * 4
    raw = np.empty(nbytes + 2 * ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN + offset
    a = raw[start:start + nbytes].view(np.float32).reshape(shape, order=order)
    a[...] = np.random.default_rng(0).standard_normal(shape) * 0.01
    return a


def timed(f, calls):
    f()
    blocks = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        blocks.append((time.perf_counter() - t0) / calls)
    return float(np.median(blocks))


def layouts():
    """h Wh and da Whᵀ of one step, each way of laying them out, operands aligned."""
    H, G = 512, 2048
    for N in (32, 64):
        flops = 2 * N * H * G
        h, hT = at_offset((N, H), 0), at_offset((H, N), 0)
        Wh, Wh_F, WhT = at_offset((H, G), 0), at_offset((H, G), 0, "F"), at_offset((G, H), 0)
        a, aT, da = at_offset((N, G), 0), at_offset((G, N), 0), at_offset((N, G), 0)
        dh, dhT = at_offset((N, H), 0), at_offset((H, N), 0)
        cases = [
            (f"forward  h ({N}, {H}) Wh, Wh row-major (ours)", lambda: np.matmul(h, Wh, out=a)),
            ("forward  h Wh, Wh column-major", lambda: np.matmul(h, Wh_F, out=a)),
            (f"forward  Whᵀ ({G}, {H}) hᵀ -> aᵀ ({G}, {N}), feature-major state",
             lambda: np.matmul(WhT, hT, out=aT)),
            (f"backward da ({N}, {G}) Whᵀ, Wh row-major", lambda: np.matmul(da, Wh.T, out=dh)),
            ("backward da Whᵀ, Wh column-major copy (ours)", lambda: np.matmul(da, Wh_F.T, out=dh)),
            (f"backward Wh daᵀ -> dhᵀ ({H}, {N}), feature-major state",
             lambda: np.matmul(Wh, da.T, out=dhT)),
        ]
        print(f"\nN = {N} rows")
        for name, f in cases:
            s = timed(f, 150 if N == 32 else 100)
            print(f"  {name:66s} {s * 1e6:6.0f} us  {flops / s / 1e9:6.1f} GFLOP/s")


def sampling():
    """One character of a 2x512 model multiplies three (1, 512) rows by (512, 2048) weights."""
    h, W, a = at_offset((1, 512), 0), at_offset((512, 2048), 0), at_offset((1, 2048), 0)
    flops = 2 * 512 * 2048
    for threads in (1, 2):
        with threadpool_limits(threads):
            s = timed(lambda: np.matmul(h, W, out=a), 2000)
        print(f"  (1, 512) x (512, 2048), {threads} thread(s): {s * 1e6:6.1f} us  "
              f"{flops / s / 1e9:5.1f} GFLOP/s  {W.nbytes / s / 1e9:6.1f} GB/s of weights")


def panels():
    """step_gemm's two ways for the per-step products: one matmul, or panels."""
    from lstm_scratch.engine.gemm import panel_width, step_gemm
    from lstm_scratch.engine.blas import SMALL_KERNEL_MNK
    from lstm_scratch.engine.workspace import Workspace
    T = 8                                           # steps cycled, as a loop reads A[t]
    print(f"{'product':38s} {'rows':>4s} {'width':>5s} {'panels':>6s} {'matmul':>9s} "
          f"{'panels':>9s} {'speed-up':>8s}")
    shapes = [(f"LSTM H={H}", H, 4 * H) for H in (128, 256, 512, 1024)]
    shapes += [("GRU H=512", 512, 3 * 512), ("RNN H=512", 512, 512)]
    for label, H, G in shapes:
        for direction, K, M in (("h Wh", H, G), ("da Whᵀ", G, H)):
            for rows in (16, 25, 32, 64, 128):
                flops = 2 * rows * K * M
                calls = max(3, int(3e9 / flops))
                A = at_offset((T, rows, K), 0)
                B = at_offset((K, M), 0) if direction == "h Wh" else at_offset((M, K), 0).T
                out = at_offset((rows, M), 0)
                chosen = panel_width(rows, K, M, np.float32)
                widest = min(M - 1, SMALL_KERNEL_MNK // (rows * K))
                widths = [0, chosen] if chosen else [0] + ([widest] if widest >= 1 else [])
                times = []
                for width in widths:
                    f = step_gemm(A, B, out, ws=Workspace(), panels=width)
                    step = iter(range(10 ** 9))
                    times.append(timed(lambda: f(next(step) % T), calls))
                name = f"{label} {direction} ({K}, {M})"
                for width, s in zip(widths[1:], times[1:]):
                    tag = "" if chosen else "  (not chosen)"
                    print(f"{name:38s} {rows:4d} {width:5d} {-(-M // width):6d} "
                          f"{times[0] * 1e6:7.0f}us {s * 1e6:7.0f}us {times[0] / s:7.2f}x{tag}")
                if len(widths) == 1:
                    print(f"{name:38s} {rows:4d}     -      - {times[0] * 1e6:7.0f}us "
                          "(small already, or no panel fits)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", action="store_true",
                        help="time the per-step products in each memory layout instead")
    parser.add_argument("--sampling", action="store_true",
                        help="time generation's one-row products instead")
    parser.add_argument("--panels", action="store_true",
                        help="time the per-step products as one matmul and as panels instead")
    args = parser.parse_args()
    exec_without_blas_overrides()
    print("BLAS:", kernel_summary(child_seen()))
    if args.layouts:
        with threadpool_limits(1):
            layouts()
        return
    if args.sampling:
        sampling()
        return
    if args.panels:
        with threadpool_limits(1):
            panels()
        return
    products = [  # name, A shape, B shape, calls a block
        ("(32, 512) x Wh (512, 2048): forward, batch split", (32, 512), (512, 2048), 150),
        ("(64, 512) x Wh (512, 2048): forward, whole batch", (64, 512), (512, 2048), 100),
        ("(32, 2048) x Whᵀ (2048, 512): backward", (32, 2048), (2048, 512), 150),
        ("(1600, 512) x Wx (512, 2048): input projection", (1600, 512), (512, 2048), 5),
    ]
    with threadpool_limits(1):
        for name, a_shape, b_shape, calls in products:
            flops = 2 * a_shape[0] * a_shape[1] * b_shape[1]
            print(f"\n{name}")
            for b_off in range(0, ALIGN, 8):
                A, B = at_offset(a_shape, 0), at_offset(b_shape, b_off)
                C = at_offset((a_shape[0], b_shape[1]), 0)
                s = timed(lambda: np.matmul(A, B, out=C), calls)
                print(f"  B at +{b_off:2d} bytes: {s * 1e6:8.0f} us  {flops / s / 1e9:6.1f} GFLOP/s")
            for off, label in ((16, "all at +16 (NumPy's)"), (0, "all aligned (ours)")):
                A, B = at_offset(a_shape, off), at_offset(b_shape, off)
                C = at_offset((a_shape[0], b_shape[1]), off)
                s = timed(lambda: np.matmul(A, B, out=C), calls)
                print(f"  {label:21s} {s * 1e6:8.0f} us  {flops / s / 1e9:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
