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
``engine.gemm.step_gemm`` as the layers call it: one matmul, the panels
``panel_layout`` picks (K in S blocks, panels of w columns), and the best of every
other layout the small kernel takes.
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


def panel_candidates(rows, K, M):
    """Layouts (S, w) worth timing against the rule's: every split of K into 1-16 blocks,
    with panels of 16, 32, 48 and 64 columns and the rule's own width, where they fit."""
    from lstm_scratch.engine.blas import SMALL_KERNEL_MNK
    from lstm_scratch.engine.gemm import panel_width
    out = []
    for S in (1, 2, 4, 8, 16):
        if K % S:
            continue
        limit = SMALL_KERNEL_MNK // (rows * (K // S))
        widths = {w for w in (16, 32, 48, 64) if w <= min(limit, M)}
        if limit >= 16:
            widths.add(panel_width(limit, M))
        out += [(S, w) for w in sorted(widths)]
    return out


def panels():
    """step_gemm's two ways for the per-step products: one matmul, or panels."""
    from lstm_scratch.engine.gemm import panel_layout, step_gemm
    from lstm_scratch.engine.workspace import Workspace
    T = 8                                           # steps cycled, as a loop reads A[t]
    print("one thread; times per product, packing excluded, putting back included")
    print(f"{'product':34s} {'rows':>4s} {'matmul':>8s}  {'rule: S x w':>11s} {'speed-up':>8s}"
          f"   {'best of all':>11s} {'speed-up':>8s}")
    shapes = [(f"LSTM H={H}", H, 4 * H) for H in (128, 256, 512, 1024)]
    shapes += [("GRU H=512", 512, 3 * 512), ("RNN H=512", 512, 512)]
    for label, H, G in shapes:
        for direction, K, M in (("h Wh", H, G), ("da Whᵀ", G, H)):
            for rows in (16, 25, 32, 64, 128):
                calls = max(3, int(2e9 / (2 * rows * K * M)))
                A = at_offset((T, rows, K), 0)
                B = at_offset((K, M), 0) if direction == "h Wh" else at_offset((M, K), 0).T
                out = at_offset((rows, M), 0)

                def time_of(layout):
                    f = step_gemm(A, B, out, ws=Workspace(), panels=layout)
                    step = iter(range(10 ** 9))
                    return timed(lambda: f(next(step) % T), calls)
                chosen = panel_layout(rows, K, M, np.float32)
                base = time_of(0)
                times = {layout: time_of(layout) for layout in panel_candidates(rows, K, M)}
                if chosen and chosen not in times:
                    times[chosen] = time_of(chosen)
                rule = (f"{chosen[0]:>4d} x {chosen[1]:<4d} {base / times[chosen]:7.2f}x" if chosen
                        else f"{'matmul':>11s} {1:7.2f}x")
                best = min(times, key=times.get) if times else None
                best_text = (f"{best[0]:>4d} x {best[1]:<4d} {base / times[best]:7.2f}x" if best
                             else "")
                print(f"{label} {direction} ({K}, {M})".ljust(34)
                      + f" {rows:4d} {base * 1e6:6.0f}us  {rule}   {best_text}")


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
