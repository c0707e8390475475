"""Training throughput, ours against torch.nn.LSTM, side by side in one run.

    python bench/train_speed.py                 # C1-C3, table + bench/results/train_speed.json
    python bench/train_speed.py --configs C2 --rounds 8

Each step includes forward, backward and the RMSprop update. Ours and PyTorch
alternate step by step, so both see the same machine load; the ratio is
what to read, not the absolute numbers.
"""
import argparse

import numpy as np
from common import CONFIGS, V, interleaved, machine_info, summarize, try_torch, write_json

from lstm_scratch import CharLSTM, RMSprop
from lstm_scratch.engine.parallel import ThreadedDataParallel, auto_workers


def ours_step(cfg, workers, seed=0, backend="numpy"):
    model = CharLSTM(V, cfg["H"], cfg["L"], dropout=cfg["p"], seed=seed, backend=backend)
    runner = ThreadedDataParallel(model, workers)
    opt = RMSprop(model.params, map_fn=runner.map)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, (cfg["B"], cfg["T"]))
    y = rng.integers(0, V, (cfg["B"],) if cfg["many_to_one"] else (cfg["B"], cfg["T"]))
    state = [None]

    def step():
        loss, grads, new_state = runner.loss_and_grads(x, y, state[0])
        opt.step(grads)
        if not cfg["many_to_one"]:
            state[0] = new_state
        if backend == "cupy":
            model.backend.xp.cuda.Device().synchronize()
    return step


def torch_step(torch, cfg, seed=0, device="cpu"):
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(V, cfg["H"], cfg["L"], dropout=cfg["p"], batch_first=True).to(device)
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
        out, (h, c) = lstm(torch.nn.functional.one_hot(x, V).float(), state[0])
        if cfg["many_to_one"]:
            loss = torch.nn.functional.cross_entropy(fc(drop(out[:, -1])), y)
        else:
            loss = torch.nn.functional.cross_entropy(fc(drop(out)).reshape(-1, V), y.reshape(-1))
            state[0] = (h.detach(), c.detach())
        loss.backward()
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default="C1,C2,C3")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--json", default="bench/results/train_speed.json")
    args = parser.parse_args()
    torch = try_torch(args.threads)
    info, rows = machine_info(), {}
    print(f"machine: {info}")
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        workers = auto_workers(CharLSTM(V, cfg["H"], 1), cfg["B"])
        runners = {f"ours ({workers} workers)": ours_step(cfg, workers)}
        if workers != 1:
            runners["ours (1 worker)"] = ours_step(cfg, 1)
        if torch is not None:
            runners["torch.nn.LSTM"] = torch_step(torch, cfg)
        times = interleaved(runners, rounds=args.rounds)
        chars = cfg["B"] * cfg["T"]
        rows[name] = {k: summarize(v, chars) for k, v in times.items()}
        print(f"\n{name}: {cfg['desc']}")
        ref = rows[name].get("torch.nn.LSTM")
        for k, r in rows[name].items():
            ratio = f"{r['chars_per_s'] / ref['chars_per_s']:.2f}x torch" if ref else ""
            print(f"  {k:18s} {r['chars_per_s']:>9,.0f} chars/s  step {r['median_s']*1e3:7.1f} ms "
                  f"[{r['min_s']*1e3:.1f}-{r['max_s']*1e3:.1f}]  {ratio}")
    write_json(args.json, dict(machine=info, results=rows))


if __name__ == "__main__":
    main()
