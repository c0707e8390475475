"""Sampling throughput (one character at a time, state carried), ours against PyTorch.

    python bench/sample_speed.py            # table + bench/results/sample_speed.json

The model is 2x512 over V = 65 characters, batch 1. PyTorch is timed three
ways: a stack of nn.LSTMCell under inference_mode (its fastest here),
nn.LSTM fed one step with its state, and the tutorial's way, re-feeding the
last 20 characters for every new one. Each run draws 200 characters from
the softmax at temperature 1; runs alternate so all see the same load.
"""
import argparse
import time

import numpy as np
from common import V, machine_info, try_torch, write_json

from lstm_scratch import CharLSTM, Vocab, generate

H, L, N_CHARS = 512, 2, 200


def ours():
    model = CharLSTM(V, H, L, dropout=0.0, seed=0)
    vocab = Vocab([chr(33 + k) for k in range(V)])
    return lambda: generate(model, vocab, prime="A", length=N_CHARS, temperature=1.0, seed=0)


def torch_ways(torch):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(V, H, L, batch_first=True)
    cells = [torch.nn.LSTMCell(V if l == 0 else H, H) for l in range(L)]
    fc = torch.nn.Linear(H, V)

    def cell_stack():
        with torch.inference_mode():
            state = [(torch.zeros(1, H), torch.zeros(1, H)) for _ in range(L)]
            k = 0
            for _ in range(N_CHARS):
                x = torch.nn.functional.one_hot(torch.tensor([k]), V).float()
                for l, cell in enumerate(cells):
                    state[l] = cell(x, state[l])
                    x = state[l][0]
                k = int(torch.multinomial(torch.softmax(fc(x), -1), 1))

    def lstm_step():
        with torch.inference_mode():
            state, k = None, 0
            for _ in range(N_CHARS):
                x = torch.nn.functional.one_hot(torch.tensor([[k]]), V).float()
                out, state = lstm(x, state)
                k = int(torch.multinomial(torch.softmax(fc(out[0, -1]), -1), 1))

    def refeed_window():
        with torch.inference_mode():
            window = [0] * 20
            for _ in range(N_CHARS):
                x = torch.nn.functional.one_hot(torch.tensor([window[-20:]]), V).float()
                out, _ = lstm(x)
                window.append(int(torch.multinomial(torch.softmax(fc(out[0, -1]), -1), 1)))

    return {"torch LSTMCell stack": cell_stack, "torch nn.LSTM step": lstm_step,
            "torch re-feed 20-char window": refeed_window}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="bench/results/sample_speed.json")
    args = parser.parse_args()
    torch = try_torch(args.threads)
    runners = {"ours (Stepper)": ours()}
    if torch is not None:
        runners.update(torch_ways(torch))
    for run in runners.values():
        run()
    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    info = machine_info()
    print(f"machine: {info}\n2x{H} LSTM, V={V}, batch 1, {N_CHARS} chars per run, median of {args.rounds}")
    rows = {name: dict(chars_per_s=N_CHARS / float(np.median(t)), min_s=float(min(t)),
                       max_s=float(max(t))) for name, t in times.items()}
    fastest_torch = max((r["chars_per_s"] for n, r in rows.items() if n.startswith("torch")),
                        default=None)
    for name, r in rows.items():
        ratio = f"{r['chars_per_s'] / fastest_torch:.2f}x fastest torch" if fastest_torch else ""
        print(f"  {name:30s} {r['chars_per_s']:>8,.0f} chars/s  {ratio}")
    write_json(args.json, dict(machine=info, chars_per_run=N_CHARS, results=rows))


if __name__ == "__main__":
    main()
