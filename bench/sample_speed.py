"""Sampling throughput (one character at a time, state carried), ours against PyTorch.

    python bench/sample_speed.py                 # table + bench/results/sample_speed.json
    python bench/sample_speed.py --device gpu    # CuPy against PyTorch on CUDA

The model is 2x512 over V = 65 characters, batch 1; each run draws 200
characters from the softmax at temperature 1. Ours three ways: ``generate``
(its Stepper on the CPU; on the GPU, engine/device_sampling.py, every char drawn
on the device), and the public one-step API, ``model.step`` (probabilities)
and ``model.step_logits``, called in a loop as a user would. PyTorch three
ways: a stack of nn.LSTMCell under inference_mode (its fastest here),
nn.LSTM fed one step with its state, and the tutorial's way, re-feeding the
last 20 characters for every new one. Each way runs in its own process per
round (alternating), warmup run first; the table gives medians over processes.

With ``--device gpu``, also: ours with the host drawing each char (the path before
the device sampler, LSTM_SCRATCH_DEVICE_SAMPLING=0), ours on this machine's CPU,
64 samples of 500 chars in one call, and torch's LSTMCell stack captured as a
CUDA graph (torch.cuda.graph, the draw by Gumbel-max on the device), for the
record. The ``sample`` entry of bench/results/gpu_summary.json comes from this run.
"""
import argparse
import os
import sys
import time

import numpy as np
from common import (GPU_SUMMARY, V, alternate, update_gpu_summary, child_main, child_seen, engine_kwargs, is_child, kernel_summary,
                    median_of_children, start_parent, time_steps, torch_device, try_torch,
                    what_it_saw, write_json)

SCRIPT = os.path.abspath(__file__)
H, L, N_CHARS = 512, 2, 200
OURS = ("ours generate", "ours model.step", "ours model.step_logits")
TORCH = ("torch LSTMCell stack", "torch nn.LSTM step", "torch re-feed 20-char window")
# --device gpu only
OURS_GPU = ("ours generate, host draws", "ours generate on the CPU", "ours 64 samples x 500 chars")
TORCH_GPU = ("torch LSTMCell stack, CUDA graph",)
ROWS = {"ours 64 samples x 500 chars": (64, 500)}       # (rows, chars) of a run; else (1, --chars)


def ours(way, backend="numpy", engine=None, n_chars=N_CHARS):
    from lstm_scratch import CharLSTM, Vocab, generate
    from lstm_scratch.backend import to_host
    from lstm_scratch.sampling import draw, next_char_distribution
    if way == OURS_GPU[0]:
        os.environ["LSTM_SCRATCH_DEVICE_SAMPLING"] = "0"        # read per call: the host draws
    if way == OURS_GPU[1]:
        backend = "numpy"
    model = CharLSTM(V, H, L, dropout=0.0, seed=0, backend=backend, **engine_kwargs(engine))
    vocab = Vocab([chr(33 + k) for k in range(V)])
    if way in ROWS:
        rows, length = ROWS[way]
        return lambda: generate(model, vocab, prime="A", length=length, seed=0, num_samples=rows)
    if way in (OURS[0],) + OURS_GPU[:2]:
        return lambda: generate(model, vocab, prime="A", length=n_chars, temperature=1.0, seed=0)

    def loop():                 # what a user of the one-step API writes
        rng, state, k = np.random.default_rng(0), None, 0
        for _ in range(n_chars):
            if way == OURS[1]:
                p, state = model.step(np.array([k]), state)
                k = draw(to_host(p[0]), rng)
            else:
                z, state = model.step_logits(np.array([k]), state)
                k = draw(next_char_distribution(to_host(z[0]), 1.0), rng)
    return loop


def torch_way(torch, way, device="cpu", n_chars=N_CHARS):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(V, H, L, batch_first=True).to(device)
    cells = [torch.nn.LSTMCell(V if l == 0 else H, H).to(device) for l in range(L)]
    fc = torch.nn.Linear(H, V).to(device)
    one_hot = lambda ids: torch.nn.functional.one_hot(torch.tensor(ids, device=device), V).float()

    def cell_stack():
        with torch.inference_mode():
            state = [(torch.zeros(1, H, device=device), torch.zeros(1, H, device=device))
                     for _ in range(L)]
            k = 0
            for _ in range(n_chars):
                x = one_hot([k])
                for l, cell in enumerate(cells):
                    state[l] = cell(x, state[l])
                    x = state[l][0]
                k = int(torch.multinomial(torch.softmax(fc(x), -1), 1))

    def lstm_step():
        with torch.inference_mode():
            state, k = None, 0
            for _ in range(n_chars):
                out, state = lstm(one_hot([[k]]), state)
                k = int(torch.multinomial(torch.softmax(fc(out[0, -1]), -1), 1))

    def refeed_window():
        with torch.inference_mode():
            window = [0] * 20
            for _ in range(n_chars):
                out, _ = lstm(one_hot([window[-20:]]))
                window.append(int(torch.multinomial(torch.softmax(fc(out[0, -1]), -1), 1)))

    def cell_stack_graph():
        """The LSTMCell stack, a step of it captured G times over as one CUDA graph: the
        char drawn by Gumbel-max (argmax of logits - log(-log u)) and fed back through a
        row of the identity, so that nothing leaves the device until the text is done."""
        eye = torch.eye(V, device=device)
        k = torch.zeros(1, dtype=torch.long, device=device)
        state = [(torch.zeros(1, H, device=device), torch.zeros(1, H, device=device))
                 for _ in range(L)]
        out = torch.zeros(n_chars, dtype=torch.long, device=device)

        def step(t):
            x = eye.index_select(0, k)
            for l, cell in enumerate(cells):
                h, c = cell(x, state[l])
                state[l][0].copy_(h)
                state[l][1].copy_(c)
                x = h
            u = torch.rand(1, V, device=device).clamp_(min=1e-20)
            k.copy_(torch.argmax(fc(x) - torch.log(-torch.log(u)), dim=-1))
            out[t].copy_(k[0])
        with torch.inference_mode():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):           # warm up off the capture, as the docs ask
                for t in range(3):
                    step(t)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for t in range(n_chars):
                    step(t)

        def replay():
            graph.replay()
            out.cpu()                                # the text, once
        return replay

    ways = dict(zip(TORCH, (cell_stack, lstm_step, refeed_window)))
    if way == TORCH_GPU[0]:
        return cell_stack_graph()
    return ways[way]


def child(spec):
    torch, sync = None, None
    if spec["side"] in TORCH:
        torch = try_torch(spec["threads"])
        device = torch_device(torch, spec["device"])
        run = torch_way(torch, spec["side"], device, spec["chars"])
    else:
        backend = "cupy" if spec["device"] == "gpu" else "numpy"
        run = ours(spec["side"], backend, spec["engine"], spec["chars"])
    result = time_steps(run, spec["warmup"], spec["steps"], sync)   # int(...) of a draw syncs
    result.update(child_seen(torch))
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3, help="processes per way")
    parser.add_argument("--steps", type=int, default=3, help="timed runs per process")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--chars", type=int, default=N_CHARS, help="characters per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--engine", choices=("fast", "reference"),
                        help="CharLSTM(engine=...), where CharLSTM has one")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per child process")
    parser.add_argument("--budget", type=float, help="start no child process after this many seconds")
    parser.add_argument("--json", default="bench/results/sample_speed.json")
    parser.add_argument("--summary", default=GPU_SUMMARY, help="with --device gpu: its sample entry")
    args = parser.parse_args()
    deadline = None if args.budget is None else time.monotonic() + args.budget
    env, info = start_parent(args.engine)
    if not args.no_torch and try_torch() is None:
        print("torch not installed: PyTorch rows left out", file=sys.stderr)
        args.no_torch = True
    print(f"machine: {info['cpu_model']}, {info['cores']} cores; load average {info['load_avg_before']}")
    base = dict(device=args.device, engine=args.engine, warmup=args.warmup, steps=args.steps,
                threads=args.threads, chars=args.chars)
    gpu = args.device == "gpu"
    ways = OURS + (OURS_GPU if gpu else ()) + (() if args.no_torch else TORCH + (TORCH_GPU if gpu else ()))
    children = alternate(SCRIPT, [dict(base, side=w) for w in ways], args.rounds, env,
                         timeout=args.timeout, deadline=deadline)
    rows, seen = {}, {}
    for way, runs in children.items():
        m = median_of_children(runs)
        n_rows, n_chars = ROWS.get(way, (1, args.chars))
        rows[way] = None if m is None else dict(chars_per_s=n_rows * n_chars / m["median"],
                                                run_s=m["median"], min_run_s=m["min"],
                                                max_run_s=m["max"], processes=m["n"])
        if what_it_saw(runs):
            seen[way] = what_it_saw(runs)
    fastest_torch = max((r["chars_per_s"] for w, r in rows.items() if w in TORCH and r), default=None)
    eager = " (eager)" if gpu else ""
    print(f"\n2x{H} LSTM, V={V}, batch 1, {args.chars} chars per run, {args.device}; "
          f"median over {args.rounds} processes of {args.steps} runs each")
    for way, r in rows.items():
        if r is None:
            print(f"  {way:30s} failed: {children[way][0].get('error')}")
            continue
        ratio = f"{r['chars_per_s'] / fastest_torch:.2f}x fastest torch{eager}" if fastest_torch else ""
        run = f"  ({r['run_s']:.3f} s a run)" if way in ROWS else ""
        print(f"  {way:34s} {r['chars_per_s']:>9,.0f} chars/s  {ratio}{run}")
    print("\nas seen by the children:")
    for way, s in seen.items():
        print(f"  {way:30s} {kernel_summary(s)}")
    info["load_avg_after"] = list(os.getloadavg())
    write_json(args.json, dict(machine=info, device=args.device, engine=args.engine,
                               chars_per_run=args.chars, children_saw=seen, results=rows))
    if gpu:
        update_gpu_summary("sample", sample_summary(rows), args.summary)


def sample_summary(rows):
    """The ``sample`` entry of gpu_summary.json (issue 25), from this run's rows."""
    rate = lambda way: (rows.get(way) or {}).get("chars_per_s")
    eager = [rate(w) for w in TORCH if rate(w)]
    many = rows.get("ours 64 samples x 500 chars") or {}
    return dict(ours_chars_per_s=rate(OURS[0]), torch_best_chars_per_s=max(eager, default=None),
                torch_graph_chars_per_s=rate(TORCH_GPU[0]), ours_cpu_chars_per_s=rate(OURS_GPU[1]),
                ours_host_draws_chars_per_s=rate(OURS_GPU[0]),
                ours_64x500_s=many.get("run_s"))


if __name__ == "__main__":
    child_main(child) if is_child() else main()
