"""End to end, in a subprocess, as a user types it."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--hidden-size", "12", "--seq-len", "16", "--batch-size", "8", "--backend", "numpy"]


def cli(*args, check_rc=None, env=None):
    proc = run_cli(*args, env=env)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from conftest import make_text
    folder = tmp_path_factory.mktemp("cli")
    corpus = folder / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    out = folder / "run"
    proc = cli("train", corpus, "--out", out, "--max-steps", 12, "--eval-every", 6,
               "--sample-length", 20, *SMALL, check_rc=0)
    return dict(corpus=corpus, out=out, ckpt=out / "latest.npz", stdout=proc.stdout)


def test_train_prints_config_progress_and_writes_checkpoints(trained):
    out = trained["stdout"]
    assert "training" in out and "parameters" in out and '"hidden_size": 12' in out
    assert "step 6/12" in out and "step 12/12" in out and "bpc" in out
    assert {"latest.npz", "best.npz", "metrics.jsonl"} <= set(os.listdir(trained["out"]))


def test_training_with_the_plain_numpy_cell_follows_the_same_curve(trained, tmp_path):
    # LSTM_SCRATCH_NUMBA=0 runs the plain cell even where Numba is installed (then the
    # run above used the compiled one): same losses up to float32 rounding.
    out = tmp_path / "plain"
    proc = cli("train", trained["corpus"], "--out", out, "--max-steps", 12, "--eval-every", 6,
               "--sample-length", 20, *SMALL, check_rc=0, env={"LSTM_SCRATCH_NUMBA": "0"})
    assert "plain numpy cell" in proc.stdout
    losses = lambda run: [json.loads(x)["val_loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses(out)) == 2
    np.testing.assert_allclose(losses(out), losses(trained["out"]), rtol=1e-4)


def test_train_engine_reference_shows_in_help_and_banner(trained, tmp_path):
    assert "--engine {fast,reference}" in cli("train", "--help", check_rc=0).stdout
    proc = cli("train", trained["corpus"], "--out", tmp_path / "book", "--max-steps", 2,
               "--no-samples", "--engine", "reference", *SMALL, check_rc=0)
    assert "the textbook cell (--engine reference" in proc.stdout
    assert "fused cell" in trained["stdout"] or "plain numpy cell" in trained["stdout"]


def test_sample_stdout_is_only_text(trained):
    proc = cli("sample", trained["ckpt"], "--prime", "The king", "--length", 40, "--seed", 3,
               check_rc=0)
    assert proc.stdout.startswith("The king") and len(proc.stdout) == len("The king") + 40 + 1
    assert proc.stderr == ""
    again = cli("sample", trained["ckpt"], "--prime", "The king", "--length", 40, "--seed", 3)
    assert again.stdout == proc.stdout


def test_sample_greedy_and_top_k(trained):
    greedy = cli("sample", trained["ckpt"], "--greedy", "--length", 30, check_rc=0).stdout
    top1 = cli("sample", trained["ckpt"], "--top-k", "1", "--length", 30, "--seed", 9,
               check_rc=0).stdout
    assert greedy == top1


def test_sample_prime_file_and_beam(trained, tmp_path):
    prime = tmp_path / "prime.txt"
    prime.write_text("The king\nof love", encoding="utf-8")        # two lines: no --prime can
    proc = cli("sample", trained["ckpt"], "--prime-file", prime, "--beam-width", 1,
               "--length", 30, check_rc=0)
    greedy = cli("sample", trained["ckpt"], "--prime", "The king\nof love", "--greedy",
                 "--length", 30, check_rc=0)
    assert proc.stdout == greedy.stdout and proc.stdout.startswith("The king\nof love")
    assert proc.stderr == "" and len(proc.stdout) == len("The king\nof love") + 30 + 1
    wide = cli("sample", trained["ckpt"], "--prime-file", prime, "--beam-width", 4,
               "--length", 30, check_rc=0)
    assert wide.stdout.startswith("The king\nof love") and len(wide.stdout) == len(proc.stdout)


def test_eval_json_matches_training_log(trained):
    proc = cli("eval", trained["ckpt"], "--json", "--backend", "numpy", check_rc=0)
    result = json.loads(proc.stdout)
    assert set(result) == {"val_loss", "val_bpc", "chars"}
    last = [json.loads(x) for x in (trained["out"] / "metrics.jsonl").read_text().splitlines()][-1]
    assert result["val_loss"] == pytest.approx(last["val_loss"], rel=1e-6)
    assert result["val_bpc"] == pytest.approx(result["val_loss"] / np.log(2))
    human = cli("eval", trained["ckpt"], trained["corpus"], check_rc=0).stdout
    assert "nats" in human and "bits per char" in human


def one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_bad_data_files(tmp_path):
    one_line_error(cli("train", tmp_path / "nope.txt"), "nope.txt: no such file")
    one_line_error(cli("train", tmp_path), "is a directory")
    (tmp_path / "empty.txt").write_bytes(b"")
    one_line_error(cli("train", tmp_path / "empty.txt"), "is empty")
    (tmp_path / "cp1252.txt").write_bytes(b"ok so far\n\x93quoted\x94")
    one_line_error(cli("train", tmp_path / "cp1252.txt"), "not valid UTF-8 at byte 10")
    (tmp_path / "tiny.txt").write_text("abc")
    one_line_error(cli("train", tmp_path / "tiny.txt", "--mode", "window", "--val-frac", "0"),
                   "too short for one window")


@pytest.mark.parametrize("args, fragment", [
    (["train", "--seq-len", "0"], "--seq-len must be an integer >= 1, got 0"),
    (["train", "--max-steps", "-3"], "--max-steps must be an integer >= 1, got -3"),
    (["show-batch", "--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
    (["train", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["train", "--hiden-size", "3"], "did you mean --hidden-size?"),
    (["train", "--seq-len", "ten"], "invalid int value: 'ten'"),
    (["train", "--mode", "bptt"], "invalid choice: 'bptt'"),
    (["train", "--sample-temperatures", "0.5,x"], "expected numbers separated by commas"),
    (["sample", "missing.npz"], "missing.npz: no such checkpoint"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["trian"], "invalid choice: 'trian'"),
    (["trian"], "(did you mean train?)"),
    (["train", "--mode", "strem"], "(did you mean stream?)"),
])
def test_bad_flags(args, fragment):
    one_line_error(cli(*args), fragment)


def test_threads_help_says_what_auto_workers_does():
    from lstm_scratch.cli import build_parser
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = next(a.help for a in train._actions if "--threads" in a.option_strings)
    # auto_workers: NumPy only; H >= 128 compiled, 256 plain; min(cores, batch_size // 8)
    for fragment in ("NumPy", "one per core", "batch-size/8", "H >= 128", "H >= 256"):
        assert fragment in text


def test_bad_sampling_requests(trained, tmp_path):
    ckpt = trained["ckpt"]
    one_line_error(cli("sample", ckpt, "--temperature", "0"), "temperature must be")
    one_line_error(cli("sample", ckpt, "--prime", "Zebra€"), "not in the vocabulary", "'€'")
    one_line_error(cli("sample", ckpt, "--top-k", "0"), "top_k must be")
    (tmp_path / "prime.txt").write_bytes("king\nqueen €\n".encode("utf-8"))
    one_line_error(cli("sample", ckpt, "--prime-file", tmp_path / "prime.txt"),
                   "prime.txt has 1 character(s) not in the vocabulary, "
                   "first at position 11 (line 2): '€'")
    one_line_error(cli("sample", ckpt, "--prime", "a", "--prime-file", tmp_path / "prime.txt"),
                   "argument --prime-file: not allowed with argument --prime")
    one_line_error(cli("sample", ckpt, "--beam-width", "3", "--temperature", "0.5"),
                   "--beam-width does not combine with --temperature")
    one_line_error(cli("sample", ckpt, "--beam-width", "0"), "--beam-width must be an integer >= 1")
    evil = tmp_path / "evil.npz"
    with np.load(ckpt) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(evil, **dict(arrays, vocab=np.array([object()], dtype=object)))
    one_line_error(cli("sample", evil), "refusing to load it")
    np.savez(evil, magic=np.array("lstm-scratch checkpoint"), x=np.array([object()], dtype=object))
    one_line_error(cli("sample", evil), "lacks member 'format_version'")   # x: never read
    one_line_error(cli("sample", trained["corpus"]), "not an lstm-scratch checkpoint")


def test_resume_and_refuse_overwrite(trained, tmp_path):
    one_line_error(cli("train", trained["corpus"], "--out", trained["out"], *SMALL),
                   "already holds a run")
    out = tmp_path / "again"
    cli("train", trained["corpus"], "--out", out, "--max-steps", 3, "--no-samples", *SMALL,
        check_rc=0)
    proc = cli("train", "--resume", out / "latest.npz", "--max-steps", 5, check_rc=0)
    assert "step 5/5" in proc.stdout


def test_ctrl_c_saves_and_exits_130(trained, tmp_path):
    out = tmp_path / "interrupted"
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "lstm_scratch", "train", str(trained["corpus"]),
                             "--out", str(out), "--max-steps", "100000", "--eval-every", "1",
                             "--no-samples", *SMALL], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and "step 2/" not in proc.stdout.readline():
        pass
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted at step" in stdout and "Traceback" not in stderr
    from lstm_scratch.checkpoint import load_checkpoint
    assert load_checkpoint(str(out / "latest.npz"))["meta"]["progress"]["step"] >= 2


def test_eval_of_a_run_trained_on_a_string_needs_a_file(tmp_path):
    import lstm_scratch as ls
    from conftest import make_text
    ls.train(make_text(60), str(tmp_path / "run"), max_steps=2, hidden_size=8, seq_len=16,
             batch_size=4, backend="numpy", sample_temperatures=())
    one_line_error(cli("eval", tmp_path / "run" / "latest.npz"),
                   "was trained on text passed to lstm_scratch.train()")
    corpus = tmp_path / "same.txt"
    corpus.write_text(make_text(60))
    assert "val loss" in cli("eval", tmp_path / "run" / "latest.npz", corpus, check_rc=0).stdout


def test_resume_from_another_directory(trained, tmp_path):
    out = tmp_path / "moved"
    cli("train", os.path.relpath(trained["corpus"], ROOT), "--out", out, "--max-steps", 2,
        "--no-samples", *SMALL, check_rc=0)
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "lstm_scratch", "train", "--resume",
                           str(out / "latest.npz"), "--max-steps", "3"], capture_output=True,
                          text=True, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "step 3/3" in proc.stdout


def test_unwritable_outputs_are_one_line_errors(trained, tmp_path):
    one_line_error(cli("plot", trained["out"], "--out", tmp_path / "no" / "such" / "loss.png"),
                   "loss.png: No such file or directory")
    one_line_error(cli("visualize", trained["ckpt"], "--length", 20, "--out",
                       tmp_path / "missing" / "cells.html"), "cells.html: No such file or directory")


def test_a_full_disk_is_one_line_naming_the_file(trained, tmp_path, monkeypatch, capsys):
    from lstm_scratch.cli import main

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(np, "savez", full_disk)
    out = tmp_path / "run"
    rc = main(["train", str(trained["corpus"]), "--out", str(out), "--max-steps", "2",
               "--no-samples", *map(str, SMALL)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"lstm-scratch: error: {out / 'latest.npz'}: "
                               "No space left on device"]
    assert not (out / "latest.npz").exists()


def test_visualize_title_names_the_text_as_given(trained, tmp_path):
    # the title showed the absolute path of the machine that trained the model
    page = tmp_path / "cells.html"
    cli("visualize", trained["ckpt"], "--length", 40, "--out", page, check_rc=0)
    title = page.read_text(encoding="utf-8").split("<title>")[1].split("</title>")[0]
    assert title.startswith("lstm-scratch: inside latest.npz (the held-out text of corpus.txt, chars ")
    assert str(trained["corpus"].parent) not in page.read_text(encoding="utf-8")
    typed = os.path.relpath(trained["corpus"], ROOT)            # cli() runs in ROOT
    cli("visualize", trained["ckpt"], "--length", 40, "--text", typed, "--out", page, check_rc=0)
    title = page.read_text(encoding="utf-8").split("<title>")[1].split("</title>")[0]
    assert title == f"lstm-scratch: inside latest.npz ({typed}, chars 0-40)"


def test_visualize_text_of_another_vocabulary_names_the_file(trained, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("\u00e9\u00e8\n" * 50, encoding="utf-8")
    one_line_error(cli("visualize", trained["ckpt"], "--text", other, "--out", tmp_path / "c.html"),
                   f"{other} has 100 character(s) not in the vocabulary")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_sample_into_a_full_disk_is_one_line(trained):
    env = dict(os.environ, PYTHONPATH=ROOT)
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "lstm_scratch", "sample", str(trained["ckpt"]),
                               "--length", "200"], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "lstm-scratch: error: standard output: No space left on device"


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_end_to_end(trained, tmp_path, cell):
    out = tmp_path / cell
    proc = cli("train", trained["corpus"], "--cell", cell, "--out", out, "--max-steps", 4,
               "--eval-every", 2, "--no-samples", *SMALL, check_rc=0)
    title = dict(gru="GRU", rnn="vanilla RNN")[cell]
    assert f'"cell": "{cell}"' in proc.stdout and f"2-layer {title}" in proc.stdout
    ckpt = out / "latest.npz"
    assert len(cli("sample", ckpt, "--length", 15, "--seed", 1, check_rc=0).stdout) >= 15
    assert cli("sample", ckpt, "--length", 5, "--beam-width", 3, check_rc=0).stdout
    assert "val loss" in cli("eval", ckpt, check_rc=0).stdout
    cli("visualize", ckpt, "--length", 50, "--out", tmp_path / "v.html", check_rc=0)
    assert "colour = h of the chosen cell" in (tmp_path / "v.html").read_text()
    cli("plot", out, "--out", tmp_path / "loss.png", check_rc=0)
    cli("train", "--resume", ckpt, "--max-steps", 6, "--no-samples", check_rc=0)
    proc = cli("train", "--resume", ckpt, "--cell", "lstm", "--max-steps", 8, check_rc=2)
    assert proc.stderr.count("\n") == 1
    assert f"--cell lstm conflicts with the checkpoint's {cell}" in proc.stderr


def test_unknown_cell_flag(trained):
    proc = cli("train", "--cell", "lstn", check_rc=2)
    assert proc.stderr.count("\n") == 1 and "lstm" in proc.stderr


def test_eval_windows_prints_both_lines_and_json_matches_evaluate_windows(trained):
    import lstm_scratch as ls
    from lstm_scratch.evaluation import evaluate_windows
    from lstm_scratch.prepared import open_corpus
    ckpt, corpus = trained["ckpt"], trained["corpus"]
    lines = cli("eval", ckpt, corpus, "--windows", 16, check_rc=0).stdout.splitlines()
    assert len(lines) == 2
    assert lines[0] == cli("eval", ckpt, corpus, check_rc=0).stdout.strip()   # unchanged
    assert "nats" in lines[1] and "bits per char" in lines[1]
    assert "16-char windows from a zero state" in lines[1]
    result = json.loads(cli("eval", ckpt, "--windows", 16, "--json", check_rc=0).stdout)
    assert set(result) == {"val_loss", "val_bpc", "chars", "val_loss_windows",
                           "val_bpc_windows", "windows", "window_chars"}
    model, vocab = ls.load(ckpt, backend="numpy")
    _, _, val_ids = open_corpus(str(corpus), 0.05, vocab)      # the fixture's default split
    loss, targets = evaluate_windows(model, val_ids, window=16)
    assert result["val_loss_windows"] == pytest.approx(loss, rel=1e-6)
    assert result["val_bpc_windows"] == pytest.approx(loss / np.log(2), rel=1e-6)
    assert result["windows"] == (len(val_ids) - 1) // 16 and result["window_chars"] == targets
    assert f"{targets:,} chars" in lines[1] and f"({result['windows']:,} windows)" in lines[1]
    # --eval-chars bounds both: the first 100 held-out chars hold 6 windows of 16
    limited = json.loads(cli("eval", ckpt, "--windows", 16, "--eval-chars", 100, "--json",
                             check_rc=0).stdout)
    assert limited["windows"] == 6 and limited["window_chars"] == 96
    assert limited["val_loss_windows"] == pytest.approx(
        evaluate_windows(model, val_ids[:100], window=16)[0], rel=1e-6)


@pytest.mark.parametrize("value, fragment", [
    ("1", "--windows must be an integer >= 2, got 1"),
    ("x", "argument --windows: invalid int value: 'x'"),
    ("100000", "need at least 100,001 for one 100,000-char window"),
])
def test_eval_bad_windows_is_one_line(trained, value, fragment):
    one_line_error(cli("eval", trained["ckpt"], "--windows", value), fragment)


def test_sample_num_samples_stop_top_p_equal_the_python_api(trained, tmp_path):
    import lstm_scratch as ls
    args = ["sample", trained["ckpt"], "--num-samples", 3, "--stop", r"\n", "--top-p", 0.9,
            "--length", 80, "--seed", 4, "--prime", "The"]
    proc = cli(*args, check_rc=0)
    assert proc.stderr == "" and cli(*args).stdout == proc.stdout          # same seed, same N
    model, vocab = ls.load(trained["ckpt"], backend="numpy")
    texts = ls.generate(model, vocab, "The", 80, seed=4, top_p=0.9, num_samples=3, stop="\n")
    assert proc.stdout == "\n----\n".join(texts) + "\n"
    assert all(t.startswith("The") and (t.endswith("\n") or len(t) == 83) for t in texts)
    assert any(t.endswith("\n") for t in texts)                            # --stop '\n' is a newline
    other = cli(*args, "--separator", "=== next ===", check_rc=0).stdout
    assert other == "\n=== next ===\n".join(texts) + "\n"
    one = cli("sample", trained["ckpt"], "--stop", r"\n", "--length", 80, "--seed", 4,
              "--prime", "The", check_rc=0).stdout                          # streamed: same rule
    assert one == ls.generate(model, vocab, "The", 80, seed=4, stop="\n") + "\n"


def test_sample_out_writes_the_file(trained, tmp_path):
    out = tmp_path / "samples.txt"
    args = ["sample", trained["ckpt"], "--num-samples", 2, "--length", 30, "--seed", 1]
    proc = cli(*args, "--out", out, check_rc=0)
    assert proc.stdout == f"wrote 2 samples to {out} ({len(out.read_text()):,} chars)\n"
    assert out.read_text(encoding="utf-8") == cli(*args, check_rc=0).stdout
    assert [p.name for p in tmp_path.iterdir()] == ["samples.txt"]         # no temp file left
    single = cli("sample", trained["ckpt"], "--length", 30, "--seed", 1, "--out", out,
                 check_rc=0)
    assert single.stdout.startswith(f"wrote 1 sample to {out}")
    assert out.read_text() == cli("sample", trained["ckpt"], "--length", 30, "--seed", 1).stdout
    cli("sample", trained["ckpt"], "--length", 30, "--beam-width", 2, "--out", out, check_rc=0)
    assert out.read_text() == cli("sample", trained["ckpt"], "--length", 30,
                                  "--beam-width", 2).stdout


@pytest.mark.parametrize("args, fragment", [
    (["--beam-width", "2", "--top-p", "0.9"], "sample: --beam-width does not combine with --top-p: "
     "beam search is deterministic and gives one text of --length chars"),
    (["--beam-width", "2", "--num-samples", "2"], "--beam-width does not combine with --num-samples"),
    (["--beam-width", "2", "--stop", "x"], "--beam-width does not combine with --stop"),
    (["--beam-width", "2", "--separator", "x"], "--beam-width does not combine with --separator"),
    (["--greedy", "--top-p", "0.5"], "sample: --greedy does not combine with --top-p: greedy takes "
     "the most likely char every step"),
    (["--greedy", "--top-k", "3"], "--greedy does not combine with --top-k"),
    (["--greedy", "--num-samples", "2"], "--greedy does not combine with --num-samples"),
    (["--greedy", "--temperature", "0.5"], "--greedy does not combine with --temperature"),
    (["--top-p", "0"], "top_p must be a number in (0, 1], got 0.0"),
    (["--top-p", "1.5"], "top_p must be a number in (0, 1], got 1.5"),
    (["--top-p", "nan"], "top_p must be a number in (0, 1], got nan"),
    (["--num-samples", "0"], "--num-samples must be an integer >= 1, got 0"),
    (["--stop", ""], "stop must be a non-empty text, got ''"),
    (["--stop", r"\q"], r"argument --stop: unknown escape \q (use \n, \t or \\)"),
    (["--stop", "€"], "stop text has 1 character(s) not in the vocabulary"),
    (["--separator", "=="], "--separator needs --num-samples N"),
    (["--out", "/nonexistent-folder/s.txt"], "/nonexistent-folder/s.txt: No such file or directory"),
    (["--out", "."], ".: Is a directory"),
])
def test_bad_sampling_combinations_are_one_line(trained, args, fragment):
    one_line_error(cli("sample", trained["ckpt"], "--length", 10, *args), fragment)


def test_sample_help_says_which_way_temperature_goes():
    from lstm_scratch.cli import build_parser
    sample = build_parser()._subparsers._group_actions[0].choices["sample"]
    helps = {a.option_strings[0]: a.help for a in sample._actions if a.option_strings}
    for fragment in ("lower is safer", "more repetitive", "higher more surprising", "mistakes"):
        assert fragment in helps["--temperature"]
    assert "default ----" in helps["--separator"] and "(0, 1]" in helps["--top-p"]


def test_train_on_files_and_folders_then_eval_and_visualize(tmp_path):
    """Several files and a folder, joined by --doc-sep; eval and visualize read the
    same joined text back from the checkpoint."""
    from conftest import make_text
    text = make_text()
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "b.txt").write_text(text[:3000], encoding="utf-8")
    (docs / "sub" / "c.txt").write_text(text[3000:6000], encoding="utf-8")
    first = tmp_path / "a.txt"
    first.write_text(text[6000:], encoding="utf-8")
    out = tmp_path / "run"
    cli("train", first, docs, "--doc-sep", r"\n=====\n", "--out", out, "--max-steps", 4,
        "--no-samples", *SMALL, check_rc=0)
    from lstm_scratch.checkpoint import load_checkpoint
    train = load_checkpoint(str(out / "latest.npz"))["meta"]["train"]
    assert train["data"] == [str(first), str(docs)] and train["doc_sep"] == "\n=====\n"
    ev = cli("eval", out / "latest.npz", check_rc=0)
    assert "of a.txt, docs" in ev.stdout
    cli("visualize", out / "latest.npz", "--length", 50, "--out", tmp_path / "c.html", check_rc=0)
    prep = cli("prepare", first, docs, "--doc-sep", r"\n=====\n", "--out", tmp_path / "prep",
               check_rc=0)
    assert "train with: lstm-scratch train" in prep.stdout
    bad = cli("train", first, tmp_path / "missing.txt", "--out", tmp_path / "x", *SMALL)
    one_line_error(bad, "missing.txt")


def test_init_from_fine_tunes_on_new_characters(trained, tmp_path):
    new = tmp_path / "new.txt"
    new.write_text("zebra quiz ~~ " * 400, encoding="utf-8")
    out = tmp_path / "tuned"
    proc = cli("train", new, "--init-from", trained["ckpt"], "--out", out, "--max-steps", 3,
               "--no-samples", "--backend", "numpy", check_rc=0)
    assert '"init_from": ' in proc.stdout
    from lstm_scratch.checkpoint import load_checkpoint
    saved = load_checkpoint(str(out / "latest.npz"))
    assert saved["meta"]["progress"]["step"] == 3 and chr(126) in "".join(map(chr, saved["vocab_codes"]))
    both = cli("train", new, "--init-from", trained["ckpt"], "--resume", trained["ckpt"])
    one_line_error(both, "do not combine")
    other = cli("train", new, "--init-from", trained["ckpt"], "--hidden-size", "64",
                "--out", tmp_path / "y")
    one_line_error(other, "--hidden-size")
