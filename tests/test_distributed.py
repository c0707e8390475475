"""Training under mpiexec: the same run as one process, resumable on any number of them.

These start ``mpiexec -n 2`` (tiny float64 models, a few seconds each); they
skip, saying why, where mpi4py or mpiexec is missing.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch.checkpoint import load_checkpoint
from lstm_scratch.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
OPTIONS = dict(hidden_size=16, batch_size=8, seq_len=16, dtype="float64", eval_every=10,
               sample_temperatures=(), backend="numpy")


def needs_mpi():
    pytest.importorskip("mpi4py", reason="mpi4py is not installed: pip install '.[mpi]'")
    if MPIEXEC is None:
        pytest.skip("no mpiexec on the PATH: pip install '.[mpi]' (mpich) provides one")


def flags(options):
    out = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if name == "sample_temperatures":
            out += ["--no-samples"]
        else:
            out += [flag] if value is True else [flag, str(value)]
    return out


def mpiexec(n, args, timeout=120, **popen):
    env = dict(os.environ, PYTHONPATH=ROOT)
    command = [MPIEXEC, "-n", str(n), sys.executable, "-m", "lstm_scratch"] + args
    if popen:
        return subprocess.Popen(command, env=env, text=True, **popen)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def metrics(run):
    return [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]


def params(checkpoint):
    return ls.load(checkpoint, backend="numpy")[0].params


# Every regulariser, AdamW and an average: each process draws the same weight-drop
# and embedding masks (per batch) and its rows of the per-row ones, and resets the
# same rows of the carried state (--reset-every); zoneout's masks are per row too.
AWD = dict(embedding_size=16, tie_weights=True, weight_drop=0.3, locked_dropout=True,
           input_dropout=0.1, embedding_dropout=0.1, optimizer="adamw", ema=0.9,
           reset_every=3, zoneout_cell=0.3, zoneout_hidden=0.1)


@pytest.mark.parametrize("mode, extra", [("stream", {}), ("window", {}), ("stream", AWD)],
                         ids=["stream", "window", "regularised"])
def test_two_processes_train_as_one(corpus_file, tmp_path, mode, extra):
    needs_mpi()
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    options = dict(OPTIONS, **extra)
    ls.train(str(corpus_file), one, mode=mode, max_steps=20, out=open(os.devnull, "w"), **options)
    done = mpiexec(2, ["train", str(corpus_file), "--out", two, "--mode", mode,
                       "--max-steps", "20"] + flags(options))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("training ") == 1 and "on 2 processes" in done.stdout   # rank 0 alone
    rows_one, rows_two = metrics(one), metrics(two)
    assert [r["world_size"] for r in rows_two] == [2, 2] and rows_one[-1]["world_size"] == 1
    for a, b in zip(rows_one, rows_two):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-6)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)
    s1, s2 = (load_checkpoint(os.path.join(run, "latest.npz")) for run in (one, two))
    for group in ("params", "ema") if extra.get("ema") else ("params",):   # live and averaged
        for name in s1[group]:
            np.testing.assert_allclose(s2[group][name], s1[group][name], rtol=1e-8, atol=1e-12,
                                       err_msg=f"{group} {name}")


@pytest.mark.parametrize("cell", ["lstm", "gru"])     # carried state (h, c), and (h,)
def test_a_run_started_on_n_processes_resumes_on_m(corpus_file, tmp_path, cell):
    needs_mpi()
    quiet = open(os.devnull, "w")
    options = dict(OPTIONS, cell=cell)
    straight = str(tmp_path / "straight")
    ls.train(str(corpus_file), straight, max_steps=20, out=quiet, **options)
    two_then_one, one_then_two = str(tmp_path / "a"), str(tmp_path / "b")
    done = mpiexec(2, ["train", str(corpus_file), "--out", two_then_one, "--max-steps", "10"]
                   + flags(options))
    assert done.returncode == 0, done.stderr
    ls.train(str(corpus_file), resume=os.path.join(two_then_one, "latest.npz"), max_steps=20,
             out=quiet)
    ls.train(str(corpus_file), one_then_two, max_steps=10, out=quiet, **options)
    done = mpiexec(2, ["train", "--resume", os.path.join(one_then_two, "latest.npz"),
                       "--max-steps", "20"])
    assert done.returncode == 0, done.stderr
    want = params(os.path.join(straight, "latest.npz"))
    for run in (two_then_one, one_then_two):
        got = params(os.path.join(run, "latest.npz"))
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-8, atol=1e-12)
        assert metrics(run)[-1]["val_loss"] == pytest.approx(metrics(straight)[-1]["val_loss"],
                                                             rel=1e-6)


def test_bad_launches_are_one_line_on_every_process(corpus_file, tmp_path):
    needs_mpi()
    cases = [(["train", str(tmp_path / "missing.txt")], "no such file"),
             (["train", str(corpus_file), "--batch-size", "1"], "less than the 2 processes"),
             (["sample", str(tmp_path / "x.npz")], "only train runs on several processes")]
    run = tmp_path / "taken"
    run.mkdir()
    (run / "latest.npz").write_bytes(b"")              # seen by rank 0 alone, agreed by all
    cases.append((["train", str(corpus_file), "--out", str(run)], "already holds a run"))
    for args, expected in cases:
        done = mpiexec(2, args)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], done.stderr
        assert "Traceback" not in done.stderr


def test_an_error_one_process_meets_mid_run_stops_all(corpus_file, tmp_path):
    needs_mpi()
    run = tmp_path / "run"
    (run / "metrics.jsonl").mkdir(parents=True)        # rank 0 alone fails, at its first report
    done = mpiexec(2, ["train", str(corpus_file), "--out", str(run), "--max-steps", "100000"]
                   + flags(OPTIONS))
    assert done.returncode == 2, done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("lstm-scratch")]
    assert ours == [f"lstm-scratch: process 0: error: {run / 'metrics.jsonl'}: Is a directory"]
    assert "Traceback" not in done.stderr


def test_processes_on_one_machine_share_its_cores(monkeypatch):
    from lstm_scratch import distributed
    monkeypatch.setattr(distributed, "available_cores", lambda: 16)
    world = distributed.World()
    world.local_size = 4
    assert world.cores() == 4
    world.local_size = 32
    assert world.cores() == 1


def test_ctrl_c_stops_every_process_after_the_same_step_and_saves_once(corpus_file, tmp_path):
    needs_mpi()
    run = str(tmp_path / "run")
    proc = mpiexec(2, ["train", str(corpus_file), "--out", run, "--max-steps", "100000",
                       "--eval-every", "20"] + flags(dict(OPTIONS, eval_every=20, dtype="float32")),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(run, "metrics.jsonl")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert out.count("interrupted at step") == 1, (out, err)
    step = int(out.split("interrupted at step ")[1].split(";")[0])
    saved = np.load(os.path.join(run, "latest.npz"))
    assert json.loads(str(saved["meta"]))["progress"]["step"] == step
    assert proc.returncode == 130


def test_a_plain_run_never_imports_mpi4py(corpus_file, tmp_path):
    code = ("import sys, lstm_scratch as ls\n"
            f"ls.train({str(corpus_file)!r}, max_steps=2, hidden_size=8, batch_size=4, "
            "seq_len=8, sample_temperatures=(), backend='numpy')\n"
            "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "OMPI_", "MV2_", "SLURM_"))}
    done = subprocess.run([sys.executable, "-c", code], env=dict(env, PYTHONPATH=ROOT),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_launched_without_mpi4py_is_a_one_line_error(monkeypatch):
    from lstm_scratch import distributed
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)          # import mpi4py now fails
    assert distributed.launched() == (2, 0)
    with pytest.raises(UserError, match="mpi4py is missing.*lstm-scratch\\[mpi\\]"):
        distributed.current_world.__wrapped__()


def test_rows_split_like_the_threads():
    from lstm_scratch.distributed import World
    world = World()
    assert world.rows(7) == (0, 7) and world.cores() >= 1


def test_rows_of_a_batch_with_their_masks_add_up_to_the_batch():
    """What each process computes (no MPI needed): its rows, with its rows of the
    masks drawn for the whole batch; weighted by their share, they sum to the whole."""
    from lstm_scratch import CharLSTM
    from lstm_scratch.engine.parallel import ThreadedDataParallel
    model = CharLSTM(7, 5, 2, dropout=0.3, dtype="float64", seed=3)
    rng = np.random.default_rng(0)
    B, T = 5, 4
    inputs, targets = rng.integers(0, 7, (B, T)), rng.integers(0, 7, (B, T))
    state = [(rng.standard_normal((B, 5)), rng.standard_normal((B, 5))) for _ in range(2)]
    runner = ThreadedDataParallel(model, 1)
    loss, grads, _ = runner.loss_and_grads(inputs, targets, state,
                                           dropout_rng=np.random.default_rng(9))
    grads = {k: v.copy() for k, v in grads.items()}
    total_loss, total = 0.0, {k: np.zeros_like(v) for k, v in grads.items()}
    for lo, hi in ((0, 2), (2, 5)):
        part = runner.loss_and_grads(inputs[lo:hi], targets[lo:hi],
                                     [(h[lo:hi], c[lo:hi]) for h, c in state],
                                     dropout_rng=np.random.default_rng(9), rows=(lo, hi, B))
        share = (hi - lo) / B
        total_loss += share * part[0]
        for k in total:
            total[k] += share * part[1][k]
    assert total_loss == pytest.approx(loss, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(total[k], grads[k], rtol=1e-10, atol=1e-13)


def test_max_minutes_stops_every_process_after_the_same_step(corpus_file, tmp_path):
    """Each process has its own clock: rank 0's decides, or one would wait in a
    collective the others never join."""
    needs_mpi()
    run = str(tmp_path / "run")
    done = mpiexec(2, ["train", str(corpus_file), "--out", run, "--max-steps", "50",
                       "--max-minutes", "1e-9"] + flags(OPTIONS), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "stopped at step 1: --max-minutes 1e-09 of training used" in done.stdout
    assert [r["step"] for r in metrics(run)] == [1]
