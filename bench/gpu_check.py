"""Everything that needs a GPU, in one script of at most 8 minutes (issue 11).

    PYTHONPATH=. python bench/gpu_check.py              # on a machine with an NVIDIA GPU
    PYTHONPATH=. python bench/gpu_check.py --dry-run    # every stage on the CPU, to check the script

Needs nothing installed beyond what the GPU machines have (CuPy, PyTorch
with CUDA, pytest, hypothesis, Numba, mpi4py); runs from the working tree.
Each stage runs in its own process group with its own timeout, inside one
global budget (default 450 s); a stage that cannot run, or for which too
little time is left, is skipped with the reason. Results go to stdout and,
after every stage, to bench/results/gpu_check.json and .md.

Stages:
  env           GPU, driver, CuPy, PyTorch/cuDNN, CPU, versions
  tests         tests/test_cupy.py (float64 gradient checks on the GPU, fused vs
                plain, CuPy vs NumPy on the same weights, checkpoints GPU -> CPU
                -> GPU, sampling step), tests/test_cupy_branches.py on the real
                CuPy (every CuPy branch, each engine), tests/test_fused.py,
                tests/test_graphs.py (the loops as CUDA graphs equal to the loops
                and to NumPy), tests/test_device_sampling.py (the device sampler's
                kernels, draws and texts against the host's)
  demo          demo.py --backend cupy --max-steps 300, and the same with
                --backend numpy at the same time: both val losses
  train_speed   bench/train_speed.py --device gpu --tf32 off, C1, C2, C4 (2x1024,
                batch 256, seq_len 100): ours on CuPy against torch.nn.LSTM with
                cuDNN, each side in its own process, both in full float32
  tf32          the same with TF32 on on both sides (--tf32 on: cuDNN's default;
                ours, train's --tf32); then bench/results/gpu_summary.json gets
                the commit and ours/cuDNN per config in each precision
  host_profile  cProfile of ours on C2 and C4: how long the host takes to launch a
                step against how long the step takes, and where the host's time goes
  sample_speed  bench/sample_speed.py --device gpu
  mpi           bench/mpi_check.py --backend cupy (numpy in a dry run): 2 processes
                equal to 1 through NCCL or the host, all-reduce and step times

--dry-run (or --backend numpy) runs the same stages on the CPU: the CuPy
tests on the fake CuPy of tests/fakecupy.py, the "GPU" demo on it too (fewer
steps), the speed scripts with --device cpu on C3 only; results go to
bench/results/gpu_check_dry_run.*. --stages tf32,host_profile runs only those
(and env), for a second, shorter run.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
# A python that runs a script with tests/fakecupy.py installed as "cupy" (dry run only).
FAKE_SHIM = ("import sys, runpy; sys.path[:0] = ['tests']; import fakecupy; "
             "fakecupy.install(sys.modules); script = sys.argv[1]; sys.argv = sys.argv[1:]; "
             "runpy.run_path(script, run_name='__main__')")

ENV_PROBE = r'''
import json, platform, shutil, subprocess, sys
sys.path[:0] = ["bench"]
if "--fake" in sys.argv:
    sys.path[:0] = ["tests"]; import fakecupy; fakecupy.install(sys.modules)
from common import cpu_info, versions
from lstm_scratch.backend import cupy_available
info = dict(cpu_info(), versions=versions())
ok, why = cupy_available()
info["cupy_ok"], info["cupy_reason"] = ok, why
if ok:
    import cupy
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    info["gpu"] = name.decode() if isinstance(name, bytes) else name
    info["cupy"] = cupy.__version__
    try:
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    except AttributeError:
        pass
try:
    import torch
    info["torch_cuda"] = torch.cuda.is_available()
    if info["torch_cuda"]:
        info["torch_gpu"] = torch.cuda.get_device_name(0)
        info["cudnn"] = torch.backends.cudnn.version()
except ImportError as exc:
    info["torch_cuda"], info["torch_reason"] = False, str(exc)
if shutil.which("nvidia-smi"):
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    info["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
print(json.dumps(info))
'''


STAGES = ("env", "tests", "demo", "train_speed", "tf32", "host_profile", "sample_speed", "mpi")

# Where the host's time goes in one training step of ours (C2): on the GPU a step
# is launch-bound when the host needs about as long as the whole step.
HOST_PROFILE = r'''
import cProfile, pstats, sys, time
sys.path[:0] = ["bench"]
if "--fake" in sys.argv:
    sys.path[:0] = ["tests"]; import fakecupy; fakecupy.install(sys.modules)
from common import CONFIGS
from train_speed import ours_step
from lstm_scratch.backend import get_backend
sync = get_backend("cupy").xp.cuda.Device().synchronize
for name in sys.argv[1].split(","):
    step = ours_step(CONFIGS[name], 1, backend="cupy")
    for _ in range(3):
        step()
    sync()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for _ in range(3):
        step()
    prof.disable()
    host = time.perf_counter() - t0
    sync()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    calls = sum(v[1] for v in stats.stats.values())
    print(f"{name}: 3 steps under cProfile: host returned after {host * 1e3:.0f} ms, finished after "
          f"{wall * 1e3:.0f} ms; {calls / 3:,.0f} Python calls a step")
    stats.sort_stats("tottime").print_stats(18)
'''


def run_stage(cmd, timeout, env=None):
    """Run cmd in its own process group; kill the group at the timeout.
    Returns (returncode or None if timed out, output, seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)         # the benches' own children too
        out, _ = proc.communicate()
        code = None
    return code, out, time.monotonic() - t0


class Check:
    def __init__(self, args):
        self.args, self.dry = args, args.dry_run
        self.start = time.monotonic()
        self.out_dir = args.out_dir or os.path.join(ROOT, "bench", "results")
        self.name = "gpu_check_dry_run" if self.dry else "gpu_check"
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [ROOT] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
        self.report = dict(mode="dry run on the CPU" if self.dry else "GPU",
                           started=time.strftime("%Y-%m-%d %H:%M:%S"), budget_s=args.budget,
                           stages={})
        self.info = {}

    def left(self):
        return self.args.budget - (time.monotonic() - self.start)

    def stage(self, name, wanted_s, min_s, cmd, needs=(), parse=None, env=None, select=None):
        """Run one stage if it was selected (``--stages``: by ``select``, default its name),
        its needs are met and time allows; record what happened."""
        missing = [why for ok, why in needs if not ok]
        left = self.left() - 5                       # for writing the report
        if name != "env" and (select or name) not in self.args.stages.split(","):
            return dict(status="not selected")
        if missing:
            rec = dict(status="skipped", reason="; ".join(missing))
        elif left < min_s:
            rec = dict(status="skipped", reason=f"time: {left:.0f} s left of the budget, "
                                                f"the stage needs at least {min_s} s")
        else:
            timeout = min(wanted_s, left)
            print(f"\n=== {name} (timeout {timeout:.0f} s): {' '.join(cmd)[:200]}", flush=True)
            code, out, secs = run_stage(cmd, timeout, env or self.env)
            status = "timeout" if code is None else ("ok" if code == 0 else "failed")
            os.makedirs(self.out_dir, exist_ok=True)
            with open(os.path.join(self.out_dir, f"{self.name}_{name}.log"), "w") as f:
                f.write(out)                               # the whole output, not just its tail
            rec = dict(status=status, seconds=round(secs, 1), returncode=code,
                       command=" ".join(cmd), output_tail=out[-4000:])
            if code is None:
                rec["reason"] = f"killed after {timeout:.0f} s"
            if parse and code is not None:
                try:
                    rec.update(parse(out))
                except Exception as exc:                   # a report, not a crash
                    rec["parse_error"] = repr(exc)
            print("\n".join(out.strip().splitlines()[-25:]))
        print(f"--- {name}: {rec['status']}" + (f" ({rec['reason']})" if rec.get("reason") else "")
              + (f", {rec['seconds']} s" if "seconds" in rec else ""), flush=True)
        self.report["stages"][name] = rec
        self.write()
        return rec

    def write(self):
        self.report["elapsed_s"] = round(time.monotonic() - self.start, 1)
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, self.name + ".json"), "w") as f:
            json.dump(self.report, f, indent=2)
        with open(os.path.join(self.out_dir, self.name + ".md"), "w") as f:
            f.write(markdown(self.report))

    def result_path(self, what):
        return os.path.join(self.out_dir, f"{self.name}_{what}.json")


# -- parsing what the stages print ----------------------------------------------------
def parse_pytest(out):
    lines = out.strip().splitlines()
    summary = next((l for l in reversed(lines) if re.search(r"\d+ (passed|failed|error|skipped)", l)), "")
    return dict(summary=summary.strip("= "),
                skipped=[l for l in lines if l.startswith("SKIPPED")][:20],
                failed=[l for l in lines if l.startswith(("FAILED", "ERROR"))][:20])


def parse_demo(out):
    res = {}
    for side in ("device", "cpu"):
        m = re.search(rf"\[{side}\].*final val loss ([0-9.]+) nats", out)
        res[f"val_loss_{side}"] = float(m.group(1)) if m else None
    missing = [side for side in ("device", "cpu") if res[f"val_loss_{side}"] is None]
    if missing:     # the two runs share one shell, whose exit code says nothing
        res.update(status="failed", reason=f"no final val loss from the {' and '.join(missing)} run")
    return res


def parse_bench(path):
    def parse(out):
        with open(path) as f:
            data = json.load(f)
        return dict(results=data.get("results"), children_saw=data.get("children_saw"), json=path)
    return parse


# -- the report as Markdown -------------------------------------------------------------
def markdown(rep):
    lines = [f"# gpu_check: {rep['mode']}", "",
             f"Started {rep['started']}, {rep.get('elapsed_s')} s of a {rep['budget_s']} s budget.", ""]
    env = rep["stages"].get("env", {})
    if env.get("info"):
        i = env["info"]
        lines += [f"GPU: {i.get('gpu') or i.get('cupy_reason')}; nvidia-smi: {i.get('nvidia_smi')}; "
                  f"CuPy {i.get('cupy')}; PyTorch CUDA: {i.get('torch_cuda')} {i.get('torch_gpu') or ''} "
                  f"cuDNN {i.get('cudnn')}; CPU {i.get('cpu_model')}; versions {i.get('versions')}", ""]
    lines += ["| stage | status | seconds | summary |", "|---|---|---|---|"]
    for name, s in rep["stages"].items():
        summary = s.get("reason") or s.get("summary") or ""
        if name == "demo" and "val_loss_cpu" in s:
            summary = f"val loss: device {s['val_loss_device']}, CPU {s['val_loss_cpu']}"
        lines.append(f"| {name} | {s['status']} | {s.get('seconds', '')} | {summary} |")
    for stage, title in (("train_speed", "TF32 off on both sides"),
                         ("tf32", "TF32 on on both sides")):
        train = rep["stages"].get(stage, {}).get("results")
        if not train:
            continue
        lines += ["", f"Training, chars/s (median over processes), {title}:", "",
                  "| config | side | chars/s | step ms | host ms | vs torch |", "|---|---|---|---|---|---|"]
        for cfg, rows in train.items():
            ref = (rows.get("torch") or {}).get("chars_per_s")
            for side, r in rows.items():
                if r:
                    ratio = f"{r['chars_per_s'] / ref:.2f}x" if ref else ""
                    host = f"{r['median_host_s'] * 1e3:.1f}" if "median_host_s" in r else ""
                    lines.append(f"| {cfg} | {side} | {r['chars_per_s']:,.0f} | "
                                 f"{r['median_step_s'] * 1e3:.1f} | {host} | {ratio} |")
    sample = rep["stages"].get("sample_speed", {}).get("results")
    if sample:
        fastest = max((r["chars_per_s"] for w, r in sample.items() if w.startswith("torch") and r),
                      default=None)
        lines += ["", "Sampling 2x512, batch 1, chars/s:", "", "| way | chars/s | vs fastest torch |",
                  "|---|---|---|"]
        for way, r in sample.items():
            if r:
                ratio = f"{r['chars_per_s'] / fastest:.2f}x" if fastest else ""
                lines.append(f"| {way} | {r['chars_per_s']:,.0f} | {ratio} |")
    for name, s in rep["stages"].items():
        if s.get("failed") or s.get("skipped"):
            lines += ["", f"{name}:"] + [f"    {l}" for l in s.get("failed", []) + s.get("skipped", [])]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="every stage on the CPU")
    parser.add_argument("--backend", choices=("cupy", "numpy"), default="cupy",
                        help="numpy = --dry-run")
    parser.add_argument("--budget", type=float, default=450, help="seconds for all stages (default 450)")
    parser.add_argument("--demo-steps", type=int, help="default 300 (dry run: 10)")
    parser.add_argument("--out-dir", help="default bench/results")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, from {','.join(STAGES)} (env always runs; default all)")
    args = parser.parse_args()
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        parser.error(f"--stages: unknown {', '.join(sorted(unknown))}; expected some of {','.join(STAGES)}")
    args.dry_run = args.dry_run or args.backend == "numpy"
    check = Check(args)
    dry = args.dry_run

    # env: what this machine has; decides which stages can run
    probe = [PY, "-c", ENV_PROBE] + (["--fake"] if dry else [])
    env_rec = check.stage("env", 60, 5, probe, parse=lambda out: dict(info=json.loads(out.strip().splitlines()[-1])))
    info = env_rec.get("info", {})
    cupy_ok = (bool(info.get("cupy_ok")), f"CuPy cannot run: {info.get('cupy_reason', 'env stage failed')}")
    torch_gpu = dry or info.get("torch_cuda")

    # tests: the CuPy suite (on the fake in a dry run), every CuPy branch, the CUDA kernel bodies
    tests = ["tests/test_cupy.py", "tests/test_cupy_branches.py", "tests/test_fused.py",
             "tests/test_graphs.py", "tests/test_device_sampling.py"]
    cmd = [PY, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *tests]
    test_env = dict(check.env)
    if dry:
        cmd[3:3] = ["-p", "fakecupy"]
        test_env["PYTHONPATH"] += os.pathsep + os.path.join(ROOT, "tests")
    else:
        test_env["LSTM_SCRATCH_CUPY_BRANCHES"] = "gpu"
    check.stage("tests", 180, 30, cmd, needs=[cupy_ok], parse=parse_pytest, env=test_env)

    # demo: the device run and the CPU run side by side (separate cores), val losses compared
    steps = args.demo_steps or (10 if dry else 300)
    demo_dir = tempfile.mkdtemp(prefix="gpu_check_demo_")     # checkpoints: not results
    device_run = ([PY, "-c", FAKE_SHIM, "demo.py"] if dry else [PY, "demo.py"]) + \
        ["--backend", "cupy", "--max-steps", str(steps), "--out", os.path.join(demo_dir, "device")]
    cpu_run = [PY, "demo.py", "--backend", "numpy", "--max-steps", str(steps),
               "--out", os.path.join(demo_dir, "cpu")]
    both = ("(" + " ".join(map(_quote, device_run)) + " 2>&1 | sed 's/^/[device] /') & "
            + "(" + " ".join(map(_quote, cpu_run)) + " 2>&1 | sed 's/^/[cpu] /'); wait")
    check.stage("demo", 150, 40, ["bash", "-c", both], needs=[cupy_ok], parse=parse_demo,
                env=dict(check.env, PYTHONPATH=check.env["PYTHONPATH"] + os.pathsep + os.path.join(ROOT, "tests")))

    # speed: each side in its own process (bench/common.py), within the stage's time;
    # TF32 off on both sides, then on on both (cuDNN's LSTM defaults to TF32, ours not)
    device = "cpu" if dry else "gpu"
    for mode in ("off", "on"):
        train_json = check.result_path("train_speed" if mode == "off" else "train_speed_tf32_on")
        budget = min(150 if mode == "off" else 110, max(0, check.left() - (200 if mode == "off" else 90)))
        check.stage("train_speed" if mode == "off" else "tf32", budget + 40, 40,
                    [PY, "bench/train_speed.py", "--device", device, "--configs", "C3" if dry else "C1,C2,C4",
                     "--rounds", "1" if dry else "2", "--steps", "2" if dry else "5",
                     "--warmup", "1" if dry else "3", "--no-single", "--tf32", mode,
                     "--budget", str(budget), "--timeout", "120", "--json", train_json]
                    + ([] if torch_gpu else ["--no-torch"]),
                    needs=[cupy_ok], parse=parse_bench(train_json))
    summary = os.path.join(check.out_dir, "gpu_summary_dry_run.json" if dry else "gpu_summary.json")
    write_train_summary(check.report["stages"], summary)
    sample_json = check.result_path("sample_speed")
    budget = min(120, max(0, check.left() - 60))     # ten ways, a process each
    check.stage("sample_speed", budget + 30, 30,
                [PY, "bench/sample_speed.py", "--device", device, "--rounds", "1", "--steps", "2",
                 "--chars", "50" if dry else "200", "--budget", str(budget), "--timeout", "60",
                 "--json", sample_json, "--summary", summary] + ([] if torch_gpu else ["--no-torch"]),
                needs=[cupy_ok], parse=parse_bench(sample_json))

    check.stage("host_profile", 60, 20, [PY, "-c", HOST_PROFILE, "C3" if dry else "C2,C4"]
                + (["--fake"] if dry else []),
                needs=[cupy_ok])

    # mpi: 2 processes train as one (NCCL, or the host where they share a GPU)
    mpi = os.path.join(ROOT, "bench", "mpi_check.py")
    check.stage("mpi", 90, 10, [PY, mpi, "--backend", "numpy" if dry else "cupy",
                                "--json", check.result_path("mpi")],
                needs=[(os.path.exists(mpi), "bench/mpi_check.py is not in this tree")])

    check.write()
    print(f"\nwrote {os.path.join(check.out_dir, check.name)}.json and .md "
          f"({check.report['elapsed_s']} s)")
    print(markdown(check.report))
    bad = [n for n, s in check.report["stages"].items() if s["status"] in ("failed", "timeout")]
    return 1 if bad else 0


def write_train_summary(stages, path):
    """gpu_summary.json's ``train`` entry (issue 24): per config, ours/cuDNN in chars/s with
    TF32 off on both sides and on on both, and host against device ms per step, ours."""
    train = {}
    for stage, mode in (("train_speed", "tf32_off"), ("tf32", "tf32_on")):
        for cfg, rows in (stages.get(stage, {}).get("results") or {}).items():
            ours = next((r for side, r in rows.items() if side.startswith("ours") and r), None)
            torch = rows.get("torch")
            entry = train.setdefault(cfg, {})
            entry[mode] = (round(ours["chars_per_s"] / torch["chars_per_s"], 3)
                           if ours and torch else None)
            if ours and "median_host_s" in ours:
                entry[f"{mode}_host_ms"] = round(ours["median_host_s"] * 1e3, 2)
                entry[f"{mode}_step_ms"] = round(ours["median_step_s"] * 1e3, 2)
    if train:
        sys.path[:0] = [os.path.join(ROOT, "bench")]
        from common import update_gpu_summary
        update_gpu_summary("train", train, path)


def _quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(main())
