"""Everything that needs a GPU, in one script of a few minutes.

    python bench/gpu_check.py            # on a machine with a CUDA GPU and cupy-cuda12x

1. the CuPy tests (gradient checks on the GPU, fused kernels against the
   plain code, CuPy against NumPy on the same weights, cross-backend checkpoints);
2. training chars/s for C1-C3 on the GPU, beside torch.nn.LSTM on CUDA if installed;
3. sampling chars/s on the GPU.
Writes bench/results/gpu_check.json.
"""
import os
import subprocess
import sys
import time

from common import CONFIGS, V, interleaved, summarize, write_json
from train_speed import ours_step, torch_step

from lstm_scratch import CharLSTM, Vocab, generate
from lstm_scratch.backend import cupy_available

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ok, reason = cupy_available()
    if not ok:
        sys.exit(f"gpu_check: {reason}")
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    report = dict(device=props["name"].decode(), cupy=cupy.__version__)
    print(f"device: {report['device']}, CuPy {cupy.__version__}")

    t0 = time.time()
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "tests/test_cupy.py"],
                           cwd=ROOT, capture_output=True, text=True)
    print(tests.stdout[-3000:], tests.stderr[-2000:])
    report["cupy_tests"] = dict(returncode=tests.returncode, summary=tests.stdout.strip().splitlines()[-1:],
                                seconds=round(time.time() - t0, 1))

    try:
        import torch
        has_cuda_torch = torch.cuda.is_available()
    except ImportError:
        torch, has_cuda_torch = None, False
    report["train"] = {}
    for name, cfg in CONFIGS.items():
        runners = {"ours (cupy)": ours_step(cfg, 1, backend="cupy")}
        if has_cuda_torch:
            runners["torch.nn.LSTM (cuda)"] = torch_step(torch, cfg, device="cuda")
        times = interleaved(runners, warmup=3, rounds=5, per_round=3)
        rows = {k: summarize(v, cfg["B"] * cfg["T"]) for k, v in times.items()}
        report["train"][name] = rows
        for k, r in rows.items():
            print(f"{name} {k:22s} {r['chars_per_s']:>12,.0f} chars/s  ({r['median_s']*1e3:.1f} ms/step)")

    model = CharLSTM(V, 512, 2, dropout=0.0, backend="cupy")
    vocab = Vocab([chr(33 + k) for k in range(V)])
    generate(model, vocab, "A", 20, seed=0)
    t0 = time.perf_counter()
    generate(model, vocab, "A", 500, seed=0)
    report["sample_chars_per_s"] = 500 / (time.perf_counter() - t0)
    print(f"sampling 2x512 on GPU: {report['sample_chars_per_s']:,.0f} chars/s")
    write_json(os.path.join(ROOT, "bench/results/gpu_check.json"), report)
    sys.exit(tests.returncode)


if __name__ == "__main__":
    main()
