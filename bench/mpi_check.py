"""Training on several processes (mpiexec): is it the same run, and what does it cost?

    python bench/mpi_check.py                    # NumPy: table + bench/results/mpi.json
    python bench/mpi_check.py --backend cupy     # the same through NCCL, one GPU a process

Three measurements, each in fresh ``mpiexec -n N`` processes:

equality   20 float64 steps of a tiny model (dropout on) on N processes against
           one: the val loss must agree to 1e-6 relative.
allreduce  one all-reduce of the flat gradient buffer of a model size
           (2x512: 3.4 M parameters), float32: milliseconds per step.
steps      a training step of a model at one global batch, on 1 process and on
           N, each process with one thread: milliseconds per step, wall and CPU
           (the CPU time is the work a process does, even on a busy machine).

``check(backend, n)`` runs the equality check alone and returns its dict (True
in "ok" when it holds), and ``nccl_smoke()`` runs NCCL's calls on one GPU:
bench/gpu_check.py can call both. With fewer GPUs than processes (one GPU, two
processes) the sum goes through the host, since NCCL refuses two ranks on one
GPU; "path" in the all-reduce rows says which ran.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

# 2x512 and 2x128 of bench/common.py, vocabulary 65: parameters in the flat buffer
MODEL_PARAMS = {"2x512": 4 * 512 * (65 + 512 + 1) + 4 * 512 * (512 + 512 + 1) + 512 * 65 + 65,
                "2x128": 4 * 128 * (65 + 128 + 1) + 4 * 128 * (128 + 128 + 1) + 128 * 65 + 65}

ALLREDUCE_CHILD = r'''
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from lstm_scratch.backend import get_backend, to_host, use_gpu
from lstm_scratch.distributed import current_world
world = current_world()
if {backend!r} == "cupy":
    use_gpu(world.local_rank)
xp = get_backend({backend!r}).xp
buf = xp.ones({size}, np.float32)
for _ in range(3):
    world.all_reduce(buf)
to_host(buf[:1])
times = []
for _ in range({reps}):
    t0 = time.perf_counter()
    world.all_reduce(buf)
    to_host(buf[:1])                    # the device's sum is done
    times.append(time.perf_counter() - t0)
if world.rank == 0:
    print(json.dumps(dict(ms=1e3 * float(np.median(times)), mb=4 * {size} / 1e6,
                          path=world.device_path or "mpi")))
'''

STEPS_CHILD = r'''
import json, os, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from threadpoolctl import threadpool_limits
threadpool_limits(1, user_api="blas")          # one thread a process, BLAS included
from lstm_scratch.api import make_trainer
trainer = make_trainer(None, None, out=open(os.devnull, "w"), hidden_size={H}, num_layers=2,
                       batch_size={B}, seq_len={T}, threads=1, backend={backend!r},
                       sample_temperatures=(), max_steps=10**6)
times, cpu = [], []
for k in range({steps}):
    inputs, targets = trainer.batches.batch(0, k)
    t0, c0 = time.perf_counter(), time.process_time()
    trainer._train_step(inputs, targets)
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
# CPU seconds: the work a process does, whatever else competes for the cores
if trainer.world.rank == 0:
    print(json.dumps(dict(ms=1e3 * float(np.median(times[3:])),
                          cpu_ms=1e3 * float(np.median(cpu[3:])))))
'''


def launch(n, code, timeout=600):
    """Run ``code`` on n processes (plainly when n = 1); the finished subprocess.

    Open MPI's mpiexec refuses to start as root unless told twice; containers
    (the GPU machines among them) run as root, so the bench tells it."""
    command, env = [sys.executable, "-c", code], None
    if n > 1:
        launcher = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
        command = [launcher, "-n", str(n)] + command
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def mpiexec(n, code, timeout=600):
    """Run ``code`` on n processes (plainly when n = 1); rank 0's last line, as JSON."""
    out = launch(n, code, timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(out.args[:4])} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def check(backend="numpy", n=2, steps=20):
    """The N-process run equals the one-process run (float64, dropout on): a dict
    with both val losses, their relative difference and ok."""
    with tempfile.TemporaryDirectory() as tmp:
        losses = {}
        for procs in (1, n):
            out = os.path.join(tmp, f"run{procs}")
            code = (f"import sys; sys.path.insert(0, {ROOT!r}); from lstm_scratch.cli import main;"
                    f"sys.exit(main(['train', '--out', {out!r}, '--hidden-size', '32', "
                    f"'--batch-size', '8', '--seq-len', '32', '--dtype', 'float64', "
                    f"'--max-steps', '{steps}', '--eval-chars', '20000', '--no-samples', "
                    f"'--backend', {backend!r}]))")
            done = launch(procs, code)
            if done.returncode != 0:
                raise RuntimeError(f"{procs} process(es) failed:\n{done.stderr[-2000:]}")
            with open(os.path.join(out, "metrics.jsonl")) as f:
                losses[procs] = [json.loads(line) for line in f][-1]["val_loss"]
    rel = abs(losses[n] - losses[1]) / abs(losses[1])
    return dict(backend=backend, processes=n, steps=steps, val_loss_1=losses[1],
                val_loss_n=losses[n], rel_diff=rel, ok=rel < 1e-6)


def nccl_smoke():
    """NCCL's calls (unique id, communicator, all-reduce) on this machine's GPU, in a
    communicator of one, whose sum is the identity: needs no second GPU. (Two
    processes on one GPU sum through the host instead: NCCL refuses them.)"""
    import numpy as np
    from lstm_scratch.backend import get_backend, nccl_all_reducer, to_host
    xp = get_backend("cupy").xp
    out = {}
    for dtype in (np.float32, np.float64):
        buf = xp.arange(10, dtype=dtype)
        nccl_all_reducer(1, 0, lambda obj, root: obj)(buf)
        out[np.dtype(dtype).name] = bool((to_host(buf) == np.arange(10)).all())
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="numpy", choices=("numpy", "cupy"))
    parser.add_argument("-n", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--json", default=None, help="default bench/results/mpi[_cupy].json")
    args = parser.parse_args()
    from common import machine_info, write_json
    results = dict(machine=machine_info(), backend=args.backend, processes=args.n)
    if args.backend == "cupy":
        results["nccl_smoke"] = nccl_smoke()
        print(f"NCCL on one GPU: {results['nccl_smoke']}")
    results["equality"] = check(args.backend, args.n)
    print(f"equality: {results['equality']}")
    results["allreduce"] = {}
    for name, size in MODEL_PARAMS.items():
        code = ALLREDUCE_CHILD.format(root=ROOT, backend=args.backend, size=size, reps=30)
        results["allreduce"][name] = row = mpiexec(args.n, code)
        print(f"all-reduce of {name}'s gradients ({row['mb']:.1f} MB float32, {row['path']}): "
              f"{row['ms']:.2f} ms")
    results["steps"] = {}
    for name, (H, B, T) in {"2x128 batch 64 seq 50": (128, 64, 50),
                            "2x512 batch 64 seq 50": (512, 64, 50)}.items():
        code = STEPS_CHILD.format(root=ROOT, H=H, B=B, T=T, backend=args.backend, steps=13)
        one, many = mpiexec(1, code), mpiexec(args.n, code)
        results["steps"][name] = dict(ms_1=one["ms"], ms_n=many["ms"],
                                      speedup=one["ms"] / many["ms"], cpu_ms_1=one["cpu_ms"],
                                      cpu_ms_n_rank0=many["cpu_ms"])
        print(f"{name}: {one['ms']:.1f} ms a step on 1 process, {many['ms']:.1f} ms on "
              f"{args.n} (1 thread each): {one['ms'] / many['ms']:.2f}x; CPU time a step "
              f"{one['cpu_ms']:.1f} ms on 1, {many['cpu_ms']:.1f} ms in rank 0 of {args.n}")
    suffix = "" if args.backend == "numpy" else "_" + args.backend
    write_json(args.json or os.path.join(HERE, "results", f"mpi{suffix}.json"), results)
    if not results["equality"]["ok"]:
        sys.exit(f"mpi_check: {args.n} processes differ from one: {results['equality']}")


if __name__ == "__main__":
    main()
