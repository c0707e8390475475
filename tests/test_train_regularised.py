"""Training with the regularisers, Adam/AdamW and a weight average: exact resume,
what the checkpoints hold, what load() and evaluation use, and the one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch import UserError
from lstm_scratch.checkpoint import load_checkpoint
from lstm_scratch.train import evaluate
from test_train import SMALL, check_resume_is_the_run, rewrite_checkpoint

AWD = dict(SMALL, embedding_size=12, tie_weights=True, weight_drop=0.3, locked_dropout=True,
           input_dropout=0.1, embedding_dropout=0.1, output_dropout=0.1, reset_every=3)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("optimizer", ["adamw", "adam"])
def test_resume_is_bit_identical_with_everything_on(corpus_file, tmp_path, cell, optimizer,
                                                    capsys):
    history = check_resume_is_the_run(corpus_file, tmp_path, 7, 14,
                                      **dict(AWD, cell=cell, optimizer=optimizer, ema=0.9,
                                             weight_decay=1e-3, sample_temperatures=()))
    assert history[-1]["step"] == 14
    # the average resumed too: the two runs' ema members are equal
    a, b = (load_checkpoint(str(tmp_path / run / "latest.npz"))["ema"] for run in ("straight", "split"))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    capsys.readouterr()


def test_resume_is_bit_identical_with_zoneout(corpus_file, tmp_path, capsys):
    """Zoneout's masks come from the checkpointed Generator, as dropout's do."""
    history = check_resume_is_the_run(corpus_file, tmp_path, 5, 10,
                                      **dict(AWD, optimizer="adamw", zoneout_cell=0.5,
                                             zoneout_hidden=0.1, sample_temperatures=()))
    gru = tmp_path / "gru"
    gru.mkdir()
    check_resume_is_the_run(corpus_file, gru, 3, 6, **dict(AWD, cell="gru", zoneout_hidden=0.2,
                                                          sample_temperatures=()))
    assert history[-1]["step"] == 10
    model, _ = ls.load(str(tmp_path / "split" / "latest.npz"), backend="numpy")
    assert (model.zoneout_cell, model.zoneout_hidden) == (0.5, 0.1)
    capsys.readouterr()


def test_checkpoint_holds_the_optimizer_and_average(corpus_file, tmp_path, capsys):
    out = tmp_path / "run"
    ls.train(corpus_file, str(out), max_steps=6, optimizer="adamw", ema=0.99,
             **dict(AWD, sample_temperatures=()))
    saved = load_checkpoint(str(out / "latest.npz"))
    assert saved["meta"]["train"]["optimizer"] == "adamw"
    assert saved["meta"]["train"]["weight_decay"] == 0.01             # AdamW's default
    assert {k.split(".")[0] for k in saved["optim"] if "." in k} == {"m", "v"}
    assert saved["optim"]["steps"] == 6 and saved["meta"]["progress"]["ema_updates"] == 6
    assert set(saved["ema"]) == set(saved["params"]) and "Wy" not in saved["params"]
    assert saved["meta"]["model"]["embedding_size"] == 12
    # load() gives the average, the weights the run evaluated
    model, _ = ls.load(str(out / "latest.npz"), backend="numpy")
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, saved["ema"][name].astype(p.dtype))
        assert not np.array_equal(saved["ema"][name], saved["params"][name]), name
    capsys.readouterr()


def test_evaluation_and_best_use_the_average(corpus_file, tmp_path, capsys):
    out = tmp_path / "run"
    model, vocab, history = ls.train(corpus_file, str(out), max_steps=10, ema=0.5,
                                     **dict(SMALL, sample_temperatures=()))
    averaged, _ = ls.load(str(out / "best.npz"), backend="numpy")
    from lstm_scratch.engine.parallel import ThreadedDataParallel
    from lstm_scratch.train import Trainer, validation_batches
    trainer = Trainer(ls.config.TrainConfig(data=str(corpus_file), max_steps=1, **SMALL))
    val = evaluate(ThreadedDataParallel(averaged, 1), trainer.val_batches)
    best = min(r["val_loss"] for r in history)
    assert val == pytest.approx(best, rel=1e-6)
    # the model train() returns holds the average too (as load() gives it); the live
    # weights, which training goes on from, are the checkpoint's params
    saved = load_checkpoint(str(out / "latest.npz"))
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, saved["ema"][name])
        assert not np.array_equal(p, saved["params"][name])
    assert validation_batches is not None
    capsys.readouterr()


def test_adamw_learns(corpus_file, capsys):
    _, vocab, history = ls.train(corpus_file, None, max_steps=60, optimizer="adamw", lr=1e-2,
                                 **dict(AWD, eval_every=60, sample_temperatures=()))
    assert history[-1]["val_loss"] < np.log(len(vocab)) - 0.5     # uniform is ln V: it learns
    capsys.readouterr()


def test_the_optimizer_is_fixed_on_resume(corpus_file, tmp_path, capsys):
    ls.train(corpus_file, str(tmp_path / "run"), max_steps=2, **dict(SMALL, sample_temperatures=()))
    with pytest.raises(UserError, match="--optimizer adamw conflicts with the checkpoint's rmsprop"):
        ls.train(corpus_file, resume=str(tmp_path / "run" / "latest.npz"), max_steps=4,
                 optimizer="adamw")
    with pytest.raises(UserError, match="--weight-drop 0.5 conflicts"):
        ls.train(corpus_file, resume=str(tmp_path / "run" / "latest.npz"), max_steps=4,
                 weight_drop=0.5)
    capsys.readouterr()


@pytest.mark.parametrize("options, match", [
    (dict(optimizer="sgd"), "--optimizer must be one of rmsprop, adam, adamw"),
    (dict(betas=(0.8, 0.9)), "--betas are Adam's and AdamW's"),
    (dict(optimizer="adam", rho=0.5), "rho is RMSprop's"),
    (dict(optimizer="adam", betas=(0.9, 1.0)), "--betas must be two numbers in"),
    (dict(optimizer="adam", betas=(0.9,)), "--betas must be two numbers"),
    (dict(weight_decay=-1.0), "--weight-decay must be >= 0"),
    (dict(ema=1.0), "--ema must be a decay in"),
    (dict(tie_weights=True), "--tie-weights needs --embedding-size equal to --hidden-size (12)"),
    (dict(input_dropout=0.1), "--input-dropout needs an embedding (--embedding-size > 0)"),
    (dict(weight_drop=1.5), "--weight-drop must be in"),
    (dict(reset_every=-1), "--reset-every must be an integer >= 0, got -1"),
    (dict(reset_every=2.5), "--reset-every must be an integer >= 0, got 2.5"),
    (dict(mode="window", reset_every=4), "--reset-every must be 0 in window mode"),
    (dict(zoneout_cell=1.0), "--zoneout-cell must be in"),
    (dict(zoneout_hidden="x"), "--zoneout-hidden must be in"),
    (dict(cell="gru", zoneout_cell=0.1), "--zoneout-cell is the LSTM's: --cell gru has no cell "
                                          "state"),
])
def test_bad_options(corpus_file, options, match):
    with pytest.raises(UserError, match=match.replace("(", r"\(").replace(")", r"\)")):
        ls.train(corpus_file, None, max_steps=1, **dict(SMALL, **options))


def test_a_gru_checkpoint_that_claims_zoneout_on_c_is_damaged(corpus_file, tmp_path):
    """The checkpoint's model metadata goes through the same check as the options."""
    ls.train(corpus_file, str(tmp_path / "run"), max_steps=1, cell="gru", **SMALL)
    bad = str(tmp_path / "bad.npz")
    rewrite_checkpoint(str(tmp_path / "run" / "latest.npz"), bad,
                       lambda meta: meta["model"].update(zoneout_cell=0.2))
    with pytest.raises(UserError) as info:
        ls.load(bad, backend="numpy")
    assert str(info.value) == (f"{bad}: damaged metadata (model zoneout_cell is the LSTM's: "
                               "cell gru has no cell state (zoneout_hidden applies to every cell))")


def test_cli_flags(corpus_file, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lstm_scratch", "train", str(corpus_file), "--out", str(out),
           "--hidden-size", "12", "--num-layers", "1", "--seq-len", "16", "--batch-size", "8",
           "--max-steps", "3", "--no-samples", "--optimizer", "adamw", "--weight-decay",
           "0.001", "--betas", "0.8,0.99", "--weight-drop", "0.2", "--locked-dropout",
           "--embedding-size", "12", "--tie-weights", "--input-dropout", "0.1",
           "--embedding-dropout", "0.1", "--output-dropout", "0.3", "--ema", "0.9",
           "--reset-every", "4", "--zoneout-cell", "0.4", "--zoneout-hidden", "0.05",
           "--backend", "numpy"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    config = json.loads(run.stdout.split("config: ", 1)[1].splitlines()[0])
    assert (config["optimizer"], config["weight_decay"], config["betas"]) == ("adamw", 0.001,
                                                                            [0.8, 0.99])
    assert config["locked_dropout"] is True and config["tie_weights"] is True
    assert config["reset_every"] == 4
    assert (config["zoneout_cell"], config["zoneout_hidden"]) == (0.4, 0.05)
    saved = load_checkpoint(str(out / "latest.npz"))
    assert saved["optim"]["beta1"] == 0.8
    bad = subprocess.run(cmd[:4] + ["--tie-weights", "--backend", "numpy"], capture_output=True,
                         text=True)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "--tie-weights needs --embedding-size" in bad.stderr


@pytest.mark.parametrize("every", [1, 3])
def test_reset_every_starts_each_row_from_zero_in_turn(corpus_file, every):
    """Chunk b starts row r from the zero state when (r + b) % K == 0, and carries
    every other row's state on untouched; the chunk after an epoch's end starts all
    rows from zero, as without resets."""
    from lstm_scratch.api import make_trainer
    trainer = make_trainer(corpus_file, None, **dict(SMALL, reset_every=every, max_steps=12,
                                                     sample_temperatures=(), eval_every=None))
    given, real = [], trainer.runner.loss_and_grads

    def spy(inputs, targets, state=None):
        carried = None if trainer.carry is None else [[a.copy() for a in layer]
                                                      for layer in trainer.carry]
        given.append((trainer.batch_index, carried, state and [[a.copy() for a in layer]
                                                               for layer in state]))
        return real(inputs, targets, state)
    trainer.runner.loss_and_grads = spy
    trainer.run()
    assert len(given) == 12
    resets = 0
    for b, carried, state in given:
        if carried is None:
            assert state is None
            continue
        for layer_c, layer_s in zip(carried, state):
            for c, s in zip(layer_c, layer_s):
                for r in range(SMALL["batch_size"]):
                    if (r + b) % every == 0:
                        assert not s[r].any() and c[r].any()
                        resets += 1
                    else:
                        np.testing.assert_array_equal(s[r], c[r])
    assert resets > 0


def test_max_minutes_stops_evaluates_and_saves(corpus_file, tmp_path, capsys):
    out = tmp_path / "run"
    _, _, history = ls.train(corpus_file, str(out), max_steps=50, max_minutes=1e-9,
                             **dict(SMALL, sample_temperatures=()))
    assert [r["step"] for r in history] == [1]                  # the first step took longer
    assert history[-1]["val_loss"] is not None
    assert "stopped at step 1: --max-minutes 1e-09 of training used" in capsys.readouterr().out
    assert load_checkpoint(str(out / "latest.npz"))["meta"]["progress"]["step"] == 1
    with pytest.raises(UserError, match="--max-minutes must be a number > 0"):
        ls.train(corpus_file, None, max_minutes=0, **SMALL)


def test_max_minutes_goes_by_rank_0s_clock(corpus_file, capsys):
    """Under mpiexec every process takes rank 0's elapsed time (World.rank0), so all
    stop after the same step: here rank 0's clock says no time has passed."""
    from lstm_scratch.config import TrainConfig
    from lstm_scratch.train import Trainer
    trainer = Trainer(TrainConfig(data=str(corpus_file), max_steps=3, max_minutes=1e-9,
                                  **dict(SMALL, sample_temperatures=())))
    trainer.world.rank0 = lambda value: 0.0
    trainer.run()
    assert trainer.step == 3
    capsys.readouterr()
