"""Peak resident memory (RSS) of a C2 training run, ours against PyTorch.

    python bench/memory.py             # table + bench/results/memory.json
    python bench/memory.py --corpus /tmp/big.txt   # prepare + train on a big text
                                                   # -> bench/results/memory_corpus.json

Each side runs in a fresh subprocess (so neither sees the other's imports)
for a few training steps of C2 (2x512, dropout 0.2, batch 64, seq_len 50),
then reports its own peak RSS (getrusage ru_maxrss).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from common import machine_info, write_json

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r'''
import resource, sys
sys.path.insert(0, {here!r})
from common import CONFIGS
import train_speed
cfg = CONFIGS["C2"]
if {side!r} == "ours":
    from lstm_scratch import CharLSTM
    from lstm_scratch.engine.parallel import auto_workers
    step = train_speed.ours_step(cfg, auto_workers(CharLSTM(65, cfg["H"], 1), cfg["B"]))
else:
    import torch
    torch.set_num_threads(2)
    step = train_speed.torch_step(torch, cfg)
for _ in range({steps}):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
'''


def peak_rss_mib(side, steps):
    code = CHILD.format(here=HERE, side=side, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


# A big corpus, prepared then trained from (2x64, stream mode): peak RSS and the seconds
# from the start of the process to the end of the first training step.
CORPUS_CHILD = r'''
import resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from lstm_scratch.api import make_trainer
trainer = make_trainer({source!r}, None, out=open("/dev/null", "w"), hidden_size=64,
                       num_layers=2, max_steps={steps}, sample_temperatures=(), backend="numpy")
inputs, targets = trainer.batches.batch(0, 0)
trainer._train_step(inputs, targets)
first = time.perf_counter() - t0
trainer.run()                                  # the remaining steps and one bounded evaluation
print(first, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def corpus_rows(text_path, steps, prepared_dir):
    """Peak RSS (MiB) and seconds of ``prepare``, then of training from the folder and,
    for comparison, from the text file itself."""
    root = os.path.dirname(HERE)
    rows = {"corpus_mib": os.path.getsize(text_path) / 2**20}
    code = ("import resource, sys, time; sys.path.insert(0, %r); t0 = time.perf_counter()\n"
            "from lstm_scratch.prepared import prepare; prepare(%r, %r)\n"
            "print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
            % (root, text_path, prepared_dir))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds, kib = out.stdout.split()
    rows["prepare"] = dict(peak_rss_mib=int(kib) / 1024, seconds=float(seconds))
    for name, source in (("train_prepared", prepared_dir), ("train_text", text_path)):
        code = CORPUS_CHILD.format(root=root, source=source, steps=steps)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        first, kib = out.stdout.split()[-2:]
        rows[name] = dict(peak_rss_mib=int(kib) / 1024, first_step_s=float(first))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", default="bench/results/memory.json")
    parser.add_argument("--corpus", help="a big UTF-8 text: measure prepare and training "
                        "from the prepared folder (written beside it, then removed) against "
                        "the plain file")
    args = parser.parse_args()
    if args.corpus:
        prepared = tempfile.mkdtemp(prefix="prepared-", dir=os.path.dirname(args.corpus))
        try:
            rows = corpus_rows(args.corpus, 20, prepared)
        finally:
            shutil.rmtree(prepared)
        for name, row in rows.items():
            print(f"  {name:15s} {row}")
        write_json(args.json.replace(".json", "_corpus.json"),
                   dict(machine=machine_info(), model="2x64 stream, batch 64, seq_len 100",
                        steps=20, **rows))
        return
    results = {"ours": peak_rss_mib("ours", args.steps)}
    try:
        import torch  # noqa: F401
        results["torch.nn.LSTM"] = peak_rss_mib("torch", args.steps)
    except ImportError:
        print("torch not installed: PyTorch column left out", file=sys.stderr)
    print(f"peak RSS of {args.steps} C2 training steps:")
    for side, mib in results.items():
        ratio = (f"  {mib / results['torch.nn.LSTM']:.2f}x torch"
                 if "torch.nn.LSTM" in results else "")
        print(f"  {side:15s} {mib:8.1f} MiB{ratio}")
    write_json(args.json, dict(machine=machine_info(), steps=args.steps, peak_rss_mib=results))


if __name__ == "__main__":
    main()
