"""Training throughput, ours against torch.nn.LSTM, each side in its own process.

    python bench/train_speed.py                  # C1-C3, table + bench/results/train_speed.json
    python bench/train_speed.py --configs C2 --rounds 8
    python bench/train_speed.py --device gpu --configs C1,C2,C4     # CuPy against cuDNN
    python bench/train_speed.py --cell gru       # the GRU (or rnn) against torch.nn.GRU (nn.RNN)

Each step includes forward, backward and the RMSprop update. For every
round and config, one fresh process per side (alternating ours and PyTorch)
runs warmup steps, then timed ones; the table gives the median over rounds
of each process's median step. Read the ratio, not the absolute numbers.
"""
import argparse
import os
import sys
import time

import numpy as np
from common import (CONFIGS, V, alternate, child_main, child_seen, engine_kwargs, is_child,
                    kernel_summary, median_of_children, start_parent, time_steps, torch_device,
                    try_torch, what_it_saw, write_json)

SCRIPT = os.path.abspath(__file__)


def ours_step(cfg, workers, seed=0, backend="numpy", engine=None, cell="lstm"):
    from lstm_scratch import CharLSTM, RMSprop
    from lstm_scratch.engine.parallel import ThreadedDataParallel
    if cell == "lstm":      # CharLSTM: also what releases before the GRU and the RNN had
        model = CharLSTM(V, cfg["H"], cfg["L"], dropout=cfg["p"], seed=seed, backend=backend,
                         **engine_kwargs(engine))
    else:
        from lstm_scratch.model import CharRNN
        model = CharRNN(V, cell, cfg["H"], cfg["L"], dropout=cfg["p"], seed=seed, backend=backend,
                        **engine_kwargs(engine))
    runner = ThreadedDataParallel(model, workers)
    opt = RMSprop(model.params, map_fn=runner.map)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, (cfg["B"], cfg["T"]))
    y = rng.integers(0, V, (cfg["B"],) if cfg["many_to_one"] else (cfg["B"], cfg["T"]))
    if backend == "cupy":       # batches already on the device, like torch's below
        x, y = model.backend.asarray(x), model.backend.asarray(y)
    state = [None]

    def step():
        loss, grads, new_state = runner.loss_and_grads(x, y, state[0])
        opt.step(grads)
        if not cfg["many_to_one"]:
            state[0] = new_state
    return step


TORCH_MODULES = dict(lstm="LSTM", gru="GRU", rnn="RNN")     # nn.RNN: tanh, as ours


def torch_step(torch, cfg, seed=0, device="cpu", cell="lstm"):
    torch.manual_seed(seed)
    module = getattr(torch.nn, TORCH_MODULES[cell])
    lstm = module(V, cfg["H"], cfg["L"], dropout=cfg["p"], batch_first=True).to(device)
    drop, fc = torch.nn.Dropout(cfg["p"]), torch.nn.Linear(cfg["H"], V).to(device)
    params = list(lstm.parameters()) + list(fc.parameters())
    opt = torch.optim.RMSprop(params, lr=1e-3, alpha=0.9, eps=1e-7)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.integers(0, V, (cfg["B"], cfg["T"])), device=device)
    y = torch.tensor(rng.integers(0, V, (cfg["B"],) if cfg["many_to_one"] else (cfg["B"], cfg["T"])),
                     device=device)
    state = [None]

    def step():
        opt.zero_grad()
        out, hidden = lstm(torch.nn.functional.one_hot(x, V).float(), state[0])
        if cfg["many_to_one"]:
            loss = torch.nn.functional.cross_entropy(fc(drop(out[:, -1])), y)
        else:
            loss = torch.nn.functional.cross_entropy(fc(drop(out)).reshape(-1, V), y.reshape(-1))
            state[0] = tuple(a.detach() for a in hidden) if cell == "lstm" else hidden.detach()
        loss.backward()
        opt.step()
    return step


def build(spec):
    """The step function a child times, its sync (GPU), and the torch module if used."""
    cfg = CONFIGS[spec["config"]]
    if spec["side"] == "torch":
        torch = try_torch(spec["threads"])
        device = torch_device(torch, spec["device"])
        sync = torch.cuda.synchronize if device == "cuda" else None
        return torch_step(torch, cfg, device=device, cell=spec.get("cell", "lstm")), sync, torch
    if spec["device"] == "gpu":
        from lstm_scratch.backend import get_backend
        cupy = get_backend("cupy").xp
        return ours_step(cfg, 1, backend="cupy", engine=spec["engine"], cell=spec.get("cell", "lstm")), \
            cupy.cuda.Device().synchronize, None
    return ours_step(cfg, spec["workers"], engine=spec["engine"], cell=spec.get("cell", "lstm")), None, None


def set_tf32(spec, torch=None):
    """TF32 for float32 products on the GPU: "on", "off", or None (each side's own
    default: cuDNN's LSTM uses TF32, ours does not). Ours: train's --tf32, the math
    mode of CuPy's cuBLAS handle (lstm_scratch.backend.set_tf32), which the direct
    cuBLAS calls and the loops' CUDA graphs keep using."""
    if spec.get("tf32") is None or spec["device"] != "gpu":
        return
    if spec["side"] == "torch":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = spec["tf32"] == "on"
    else:
        from lstm_scratch.backend import get_backend, set_tf32 as use_tf32
        use_tf32(get_backend("cupy"), spec["tf32"] == "on")


def tf32_seen(spec, torch=None):
    if spec["device"] != "gpu":
        return {}
    if spec["side"] == "torch":
        return dict(tf32=dict(cudnn=torch.backends.cudnn.allow_tf32,
                              matmul=torch.backends.cuda.matmul.allow_tf32))
    from lstm_scratch.backend import get_backend
    xp = get_backend("cupy").xp
    mode = xp.cuda.cublas.getMathMode(xp.cuda.device.get_cublas_handle())
    return dict(tf32=dict(cublas_math_mode=int(mode),
                          tf32_on=int(mode) == int(xp.cuda.cublas.CUBLAS_TF32_TENSOR_OP_MATH)))


def child(spec):
    import resource
    if spec["side"] != "torch":
        set_tf32(spec)
    step, sync, torch = build(spec)
    if torch is not None:
        set_tf32(spec, torch)
    result = time_steps(step, spec["warmup"], spec["steps"], sync)
    result.update(child_seen(torch), **tf32_seen(spec, torch), max_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return result


def sides(args, cfg):
    """The contestants for one config: ours with the workers training would use, ours on one
    worker if that differs, torch."""
    out = []
    base = dict(config=args.config_name, device=args.device, engine=args.engine, cell=args.cell,
                warmup=args.warmup, steps=args.steps, threads=args.threads, tf32=args.tf32)
    if args.device == "gpu":
        out.append(dict(base, side="ours (cupy)", workers=1))
    else:
        from lstm_scratch import CharLSTM
        from lstm_scratch.engine.parallel import auto_workers
        workers = auto_workers(CharLSTM(V, cfg["H"], 1), cfg["B"])
        out.append(dict(base, side=f"ours ({workers} workers)", workers=workers))
        if workers != 1 and not args.no_single:
            out.append(dict(base, side="ours (1 worker)", workers=1))
    if not args.no_torch:
        out.append(dict(base, side="torch"))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="C1,C2,C3")
    parser.add_argument("--rounds", type=int, default=5, help="processes per side and config")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per process")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--cell", choices=tuple(TORCH_MODULES), default="lstm",
                        help="the recurrent cell, both sides (default lstm)")
    parser.add_argument("--engine", choices=("fast", "reference"),
                        help="CharLSTM(engine=...), where CharLSTM has one")
    parser.add_argument("--tf32", choices=("on", "off"),
                        help="GPU: TF32 for float32 products on both sides (default: each side's "
                             "own: cuDNN's LSTM uses it, CuPy's matmul does not)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-single", action="store_true", help="skip the 1-worker row")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per child process")
    parser.add_argument("--budget", type=float, help="start no child process after this many seconds")
    parser.add_argument("--json", default="bench/results/train_speed.json")
    args = parser.parse_args()
    for name in args.configs.split(","):
        if name not in CONFIGS:
            parser.error(f"--configs: unknown config {name!r}, expected some of {','.join(CONFIGS)}")
    deadline = None if args.budget is None else time.monotonic() + args.budget
    env, info = start_parent(args.engine)
    if not args.no_torch and try_torch() is None:
        print("torch not installed: PyTorch column left out", file=sys.stderr)
        args.no_torch = True
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, "
          f"{' '.join(info['vector_extensions'])}; load average {info['load_avg_before']}")
    rows, seen = {}, {}
    for name in args.configs.split(","):
        cfg, args.config_name = CONFIGS[name], name
        children = alternate(SCRIPT, sides(args, cfg), args.rounds, env, timeout=args.timeout,
                             deadline=deadline)
        chars = cfg["B"] * cfg["T"]
        rows[name] = {}
        for side, runs in children.items():
            m = median_of_children(runs)
            rows[name][side] = None if m is None else dict(
                chars_per_s=chars / m["median"], median_step_s=m["median"], min_step_s=m["min"],
                max_step_s=m["max"], processes=m["n"], steps_per_process=args.steps,
                errors=[r["error"] for r in runs if "error" in r])
            host = median_of_children(runs, "median_host_s")
            if rows[name][side] and host:
                rows[name][side]["median_host_s"] = host["median"]
            if what_it_saw(runs):
                seen[side] = what_it_saw(runs)
        print(f"\n{name}: {cfg['desc']}  ({args.rounds} processes per side, "
              f"{args.warmup}+{args.steps} steps each)")
        ref = rows[name].get("torch")
        for side, r in rows[name].items():
            if r is None:
                print(f"  {side:18s} failed: {children[side][0].get('error')}")
                continue
            ratio = f"{r['chars_per_s'] / ref['chars_per_s']:.2f}x torch" if ref else ""
            print(f"  {side:18s} {r['chars_per_s']:>10,.0f} chars/s  step {r['median_step_s']*1e3:8.1f} ms "
                  f"[{r['min_step_s']*1e3:.1f}-{r['max_step_s']*1e3:.1f}]  {ratio}"
                  + (f"  (host returns after {r['median_host_s']*1e3:.1f} ms)" if "median_host_s" in r else ""))
    print("\nas seen by the children:")
    for side, s in seen.items():
        print(f"  {side:18s} {kernel_summary(s)}")
    info["load_avg_after"] = list(os.getloadavg())
    if args.device == "gpu":
        print(f"TF32: {args.tf32 or 'each side its default'}; the children saw "
              + "; ".join(f"{side} {runs[0].get('tf32')}" for side, runs in children.items() if runs))
    write_json(args.json, dict(machine=info, device=args.device, engine=args.engine, cell=args.cell,
                               tf32=args.tf32,
                               method="one process per (side, config, round), alternating; "
                                      "median over processes of each process's median step",
                               children_saw=seen, results=rows))


if __name__ == "__main__":
    child_main(child) if is_child() else main()
