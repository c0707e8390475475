"""Shared by the bench scripts: configurations, machine info, and one process per measurement.

Every bench script is two programs in one file. The parent (what a user runs)
spawns one child process per (side, config, round), alternating ours and
PyTorch, collects the JSON line each child prints, and reports medians. A
child (``--child SPEC``) builds one contestant, runs warmup + timed steps,
and prints its times and what it saw of the machine (BLAS kernel, threads).

Why a process each: a framework's thread pool keeps spinning after its last
call and slows whoever runs next in the same process (C3 read 1.66x
in-process, 0.95x with each side alone: issue 15). Why a cleaned environment:
these machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for old OpenBLAS
builds, which pins NumPy to the AVX2 kernel on AVX-512 CPUs while PyTorch is
unaffected; users do not have them, so the children run without them.
"""
import inspect
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CONFIGS = {
    "C1": dict(desc="Keras recipe: 2x512, dropout 0.2, windows of 20, batch 128, many-to-one",
               H=512, L=2, p=0.2, B=128, T=20, many_to_one=True),
    "C2": dict(desc="stream: 2x512, dropout 0.2, batch 64, seq_len 50, state carried",
               H=512, L=2, p=0.2, B=64, T=50, many_to_one=False),
    "C3": dict(desc="small: 2x128, no dropout, batch 50, seq_len 50",
               H=128, L=2, p=0.0, B=50, T=50, many_to_one=False),
    "C4": dict(desc="GPU-sized: 2x1024, dropout 0.2, batch 256, seq_len 100, state carried",
               H=1024, L=2, p=0.2, B=256, T=100, many_to_one=False),
}
V = 65

# Removed from the children's environment only (tests and CI leave them alone).
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma")       # plus every avx512* flag


# -- the machine ---------------------------------------------------------------
def cpu_info():
    """CPU model name and its vector extensions, from /proc/cpuinfo (Linux)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = [x for x in value.split() if x in VECTOR_FLAGS or x.startswith("avx512")]
                    break
    except OSError:
        pass
    return dict(cpu_model=model, vector_extensions=flags)


def versions():
    out = dict(python=platform.python_version(), numpy=np.__version__)
    for name in ("numba", "torch", "threadpoolctl", "cupy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:       # not installed, or (cupy) fails to import without CUDA
            out[name] = None
    return out


def machine_info(removed_env=None):
    """What the parent knows: CPU, cores, versions, load average, the env it dropped."""
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return dict(cpu_info(), cores=len(os.sched_getaffinity(0)), load_avg_before=load,
                versions=versions(), env_removed_in_children=removed_env or {},
                env_kept_in_parent={k: os.environ[k] for k in BLAS_OVERRIDES if k in os.environ})


def blas_info():
    """The BLAS libraries this process loaded, as threadpoolctl reports them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    keys = ("user_api", "internal_api", "version", "architecture", "num_threads",
            "threading_layer", "filepath")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info()]


def child_seen(torch=None):
    """Recorded by every child: its BLAS kernel and threads, and PyTorch's CPU kernel."""
    seen = dict(blas=blas_info(), env={k: os.environ.get(k) for k in BLAS_OVERRIDES},
                load_avg=list(os.getloadavg()))
    if torch is not None:
        seen["torch_threads"] = torch.get_num_threads()
        try:
            seen["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        except AttributeError:
            pass
    return seen


def kernel_summary(seen):
    """One line about the BLAS a child used, e.g. 'openblas 0.3.31 SkylakeX x2'."""
    if not isinstance(seen.get("blas"), list):
        return str(seen.get("blas"))
    parts = [f"{b['internal_api']} {b['version']} {b.get('architecture') or ''} x{b['num_threads']}"
             .replace("  ", " ") for b in seen["blas"] if b["user_api"] == "blas"]
    if "torch_cpu_capability" in seen:
        parts.append(f"torch CPU kernels {seen['torch_cpu_capability']} x{seen['torch_threads']}")
    return "; ".join(parts) or "no BLAS loaded"


# -- the parent: one child process per measurement ---------------------------
def child_env():
    """The environment for the children (without the BLAS overrides), and what was removed."""
    env = dict(os.environ)
    removed = {k: env.pop(k) for k in BLAS_OVERRIDES if k in env}
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env, removed


def exec_without_blas_overrides():
    """A script timed in its own process (no children) calls this first: where a BLAS
    override is set, it runs itself again in ``child_env()``'s environment instead."""
    if any(k in os.environ for k in BLAS_OVERRIDES):
        os.execve(sys.executable, [sys.executable] + sys.argv, child_env()[0])


def start_parent(engine):
    """What every parent does first: check ``--engine`` (fail early where CharLSTM lacks
    it), make the children's environment, say what it removed and whether the machine
    is too busy to time. Returns (env, machine info)."""
    engine_kwargs(engine)
    env, removed = child_env()
    announce(removed)
    return env, machine_info(removed)


def what_it_saw(runs):
    """What the first child that ran saw of the machine (BLAS, threads, load), or None."""
    good = [r for r in runs if "error" not in r]
    return {k: v for k, v in good[0].items() if k not in ("times_s", "median_s")} if good else None


def announce(removed):
    """Say what the children run without, and whether the machine is too busy to time."""
    load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
    if load > cores / 2:
        print(f"warning: load average {load:.1f} on {cores} cores: other work shares the cores, "
              "and thread pools (PyTorch's OpenMP above all) slow down out of proportion; "
              "read speed ratios as noise (memory is unaffected)", file=sys.stderr)
    if removed:
        print("children run without " + ", ".join(f"{k}={v}" for k, v in removed.items())
              + " (the parent keeps them)")
    else:
        print(f"none of {', '.join(BLAS_OVERRIDES)} is set: children inherit the environment as is")


def run_child(script, spec, env, timeout=600):
    """Run ``python script --child '<spec json>'``; return the dict of its last stdout line."""
    cmd = [sys.executable, script, "--child", json.dumps(spec)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {timeout} s")
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return dict(error=f"exit {out.returncode}: " + (out.stderr.strip().splitlines() or ["?"])[-1])
    return json.loads(lines[-1])


def alternate(script, specs, rounds, env, label=lambda s: s["side"], timeout=600, deadline=None):
    """Run each spec once per round, one process each, order reversed every other round
    (so no side always follows the same one). Returns {label: [child results]}.
    ``deadline`` (time.monotonic()): start no child after it (gpu_check's budget)."""
    results = {label(s): [] for s in specs}
    for r in range(rounds):
        for spec in (specs if r % 2 == 0 else specs[::-1]):
            if deadline is not None and time.monotonic() > deadline:
                results[label(spec)].append(dict(error="not run: --budget spent"))
                continue
            left = None if deadline is None else max(1, deadline - time.monotonic())
            res = run_child(script, spec, env, timeout if left is None else min(timeout, left + 30))
            results[label(spec)].append(res)
            if "error" in res:
                print(f"  {label(spec)}: {res['error']}", file=sys.stderr)
    return results


def median_of_children(children, key="median_s"):
    """Median, min and max over the children's own medians (errors left out)."""
    vals = [c[key] for c in children if key in c]
    if not vals:
        return None
    return dict(median=float(np.median(vals)), min=float(min(vals)), max=float(max(vals)), n=len(vals))


# -- the child ----------------------------------------------------------------
def time_steps(step, warmup, steps, sync=None):
    """Seconds per call of ``step`` after ``warmup`` untimed calls (``sync`` before reading
    the clock, for GPUs). Returns the list of times and their median; with ``sync``, also
    the median time until ``step`` returned (launched, not finished): when that is most
    of the step, the host's launching is what the GPU waits on."""
    for _ in range(warmup):
        step()
    if sync:
        sync()
    times, host = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        host.append(time.perf_counter() - t0)
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    out = dict(times_s=times, median_s=float(np.median(times)))
    if sync:
        out["median_host_s"] = float(np.median(host))
    return out


def child_main(run):
    """Entry of a child: ``run(spec)`` returns a dict; print it as one JSON line."""
    spec = json.loads(sys.argv[sys.argv.index("--child") + 1])
    print(json.dumps(run(spec)))


def is_child():
    return "--child" in sys.argv


def engine_kwargs(engine):
    """``{"engine": engine}`` if CharLSTM takes one (after the textbook/engine split), else {}.
    Raises SystemExit when an engine is asked for and this CharLSTM has none."""
    if engine is None:
        return {}
    from lstm_scratch import CharLSTM
    if "engine" not in inspect.signature(CharLSTM).parameters:
        sys.exit(f"--engine {engine}: this CharLSTM has no engine parameter (before the split)")
    return {"engine": engine}


def try_torch(threads=None):
    try:
        import torch
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    return torch


def torch_device(torch, device):
    """"cpu" or "cuda"; SystemExit if the GPU is asked for and PyTorch has none."""
    if device == "gpu":
        if not torch.cuda.is_available():
            sys.exit("PyTorch sees no CUDA device")
        torch.backends.cudnn.benchmark = True
        return "cuda"
    return "cpu"


GPU_SUMMARY = "bench/results/gpu_summary.json"


def tree_commit():
    """The commit of the tree that runs: ``git rev-parse HEAD`` (+ "-dirty" with uncommitted
    changes), or $LSTM_SCRATCH_COMMIT where there is no .git (the GPU machine's copy)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True, timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("LSTM_SCRATCH_COMMIT", "unknown")


def update_gpu_summary(section, value, path=GPU_SUMMARY):
    """Set ``section`` of gpu_summary.json (issues 24 and 25) to ``value``, keeping the
    others, with the commit of this tree."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    data.update({"commit": tree_commit(), section: value})
    write_json(path, data)


def write_json(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    print(f"wrote {path}")
