import errno
import io
import json
import os
import signal
import sys

import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch import UserError
from lstm_scratch.config import TrainConfig
from lstm_scratch.train import Trainer, TrainingDiverged, evaluate

SMALL = dict(hidden_size=12, num_layers=2, dropout=0.2, seq_len=16, batch_size=8,
             eval_every=5, sample_length=30, backend="numpy")


def params_of(path):
    return {k: v.copy() for k, v in ls.load(path, backend="numpy")[0].params.items()}


def check_resume_is_the_run(corpus_file, tmp_path, stop, end, **options):
    """Train to step ``end`` in one go, and to ``stop`` then resumed to ``end``: the
    parameters must be equal bit for bit (one machine, one code path, same order
    of operations). Returns the straight run's history."""
    _, _, history = ls.train(corpus_file, str(tmp_path / "straight"), max_steps=end, **options)
    ls.train(corpus_file, str(tmp_path / "split"), max_steps=stop, **options)
    ls.train(corpus_file, resume=str(tmp_path / "split" / "latest.npz"), max_steps=end)
    straight, split = params_of(tmp_path / "straight" / "latest.npz"), \
        params_of(tmp_path / "split" / "latest.npz")
    for name in straight:
        np.testing.assert_array_equal(split[name], straight[name], err_msg=name)
    return history


@pytest.mark.parametrize("mode", ["stream", "window"])
def test_resume_is_bit_identical(corpus_file, tmp_path, mode, capsys):
    check_resume_is_the_run(corpus_file, tmp_path, 10, 20, **dict(SMALL, mode=mode))
    capsys.readouterr()


def test_resume_carries_across_an_epoch_boundary(corpus_file, tmp_path):
    """Resume mid-epoch in stream mode, with the state carry and the dropout Generator."""
    trainer = Trainer(TrainConfig(data=str(corpus_file), out_dir=None, max_steps=1, **SMALL))
    steps = trainer.batches.batches_per_epoch + 3
    check_resume_is_the_run(corpus_file, tmp_path, steps - 5, steps,
                            **dict(SMALL, sample_temperatures=()))


def test_metrics_history_and_checkpoints(corpus_file, tmp_path, capsys):
    out = tmp_path / "run"
    model, vocab, history = ls.train(corpus_file, str(out), max_steps=12, **SMALL)
    assert [r["step"] for r in history] == [5, 10, 12]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == history
    for key in ("step", "epoch", "train_loss", "val_loss", "val_bpc", "chars_per_s", "elapsed_s"):
        assert all(r[key] is not None for r in lines), key
    assert lines[0]["val_bpc"] == pytest.approx(lines[0]["val_loss"] / np.log(2))
    assert (out / "latest.npz").exists() and (out / "best.npz").exists()
    assert isinstance(model, ls.CharLSTM) and len(vocab) == model.vocab_size
    printed = capsys.readouterr().out
    assert "training" in printed and "parameters" in printed and "step 12/12" in printed


def test_samples_at_each_epoch_end(corpus_file, tmp_path, capsys):
    trainer = Trainer(TrainConfig(data=str(corpus_file), max_steps=1, **SMALL))
    ls.train(corpus_file, None, max_steps=trainer.batches.batches_per_epoch, **SMALL)
    printed = capsys.readouterr().out
    for t in ("0.2", "0.5", "1", "1.2"):
        assert f"----- temperature {t}:" in printed


def test_a_run_stopped_mid_epoch_still_ends_with_samples(corpus_file, capsys):
    ls.train(corpus_file, None, max_steps=3, **dict(SMALL, sample_temperatures=(0.5, 1.5)))
    printed = capsys.readouterr().out
    assert "----- step 3 (epoch 0." in printed
    assert printed.count("----- temperature 0.5:") == printed.count("----- temperature 1.5:") == 1
    ls.train(corpus_file, None, max_steps=3, **dict(SMALL, sample_temperatures=()))
    assert "-----" not in capsys.readouterr().out


def test_best_tracks_lowest_val_loss(corpus_file, tmp_path):
    out = tmp_path / "run"
    _, _, history = ls.train(corpus_file, str(out), max_steps=15, lr=0.01, **SMALL)
    best = min(history, key=lambda r: r["val_loss"])
    model, vocab = ls.load(str(out / "best.npz"), backend="numpy")
    trainer = Trainer(TrainConfig(data=str(corpus_file), max_steps=1, **SMALL))
    assert vocab == trainer.vocab
    assert evaluate(model, trainer.val_batches) == pytest.approx(best["val_loss"], rel=1e-5)


def test_nan_stops_and_keeps_last_good_checkpoint(corpus_file, tmp_path, monkeypatch):
    out = tmp_path / "run"
    trainer = ls.api.make_trainer(corpus_file, str(out), max_steps=20, **SMALL)
    real = trainer.runner.loss_and_grads

    def poisoned(*args, **kwargs):
        loss, grads, state = real(*args, **kwargs)
        return (float("nan") if trainer.step == 7 else loss), grads, state

    monkeypatch.setattr(trainer.runner, "loss_and_grads", poisoned)
    with pytest.raises(TrainingDiverged, match=r"training stopped at step 8: loss is nan; "
                                               r"the last good checkpoint is .*latest.npz"):
        trainer.run()
    saved = ls.checkpoint.load_checkpoint(str(out / "latest.npz"))
    assert saved["meta"]["progress"]["step"] == 5
    assert all(np.isfinite(v).all() for v in saved["params"].values())


def test_nonfinite_gradient_leaves_parameters_untouched():
    params = {"w": np.ones(3)}
    before = params["w"].copy()
    with pytest.raises(FloatingPointError):
        ls.RMSprop(params).step({"w": np.array([1.0, np.inf, 0.0])})
    np.testing.assert_array_equal(params["w"], before)


def fake_validation(monkeypatch, val_at_step):
    """Make every evaluation report val_at_step[the trainer's step] (default 2.0)."""
    train_module = sys.modules["lstm_scratch.train"]
    at_step, report = {}, train_module.Trainer._report

    def reporting(self, *args, **kwargs):
        at_step["now"] = self.step
        return report(self, *args, **kwargs)
    monkeypatch.setattr(train_module.Trainer, "_report", reporting)
    monkeypatch.setattr(train_module, "evaluate",
                        lambda *args: val_at_step.get(at_step["now"], 2.0))


PLATEAU = dict(plateau_decay=0.5, patience=20, eval_every=5)


@pytest.mark.parametrize("schedule", [{}, PLATEAU])
def test_ctrl_c_saves_and_resumes(corpus_file, tmp_path, monkeypatch, schedule):
    # With a plateau schedule: the run never stopped evaluates at 5, 10 (a new
    # best) and 12 (--max-steps), the stopped one at 5 and at Ctrl-C (8, no new
    # best), the resumed one at 10 and 12. The evaluation at Ctrl-C once halved
    # the lr, so the resumed run was not the run never stopped.
    if schedule:
        fake_validation(monkeypatch, {5: 1.0, 8: 1.5, 10: 0.9, 12: 0.95})
    options = dict(SMALL, **schedule)
    out = tmp_path / "run"
    trainer = ls.api.make_trainer(corpus_file, str(out), max_steps=30, **options)
    real = trainer.runner.loss_and_grads

    def interrupt_at_step_8(*args, **kwargs):
        if trainer.step == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer.runner, "loss_and_grads", interrupt_at_step_8)
    trainer.run()
    assert trainer.interrupted and trainer.step == 8
    saved = ls.checkpoint.load_checkpoint(str(out / "latest.npz"))
    assert saved["meta"]["progress"]["step"] == 8
    ls.train(corpus_file, str(tmp_path / "straight"), max_steps=12, **options)
    ls.train(corpus_file, resume=str(out / "latest.npz"), max_steps=12)
    a, b = params_of(out / "latest.npz"), params_of(tmp_path / "straight" / "latest.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_resumed_plateau_schedule_remembers_its_best(corpus_file, tmp_path, monkeypatch):
    # The checkpoint of step 10 is written after its evaluation, a new best (0.9):
    # resumed from it, step 15's 0.95 is no new best and halves the lr, as in the
    # run never stopped. It once restored the best before that evaluation (1.0).
    fake_validation(monkeypatch, {5: 1.0, 10: 0.9, 15: 0.95})
    check_resume_is_the_run(corpus_file, tmp_path, 10, 17, **dict(SMALL, **PLATEAU))


def test_refuses_to_overwrite_a_run(corpus_file, tmp_path):
    ls.train(corpus_file, str(tmp_path / "run"), max_steps=2, **SMALL)
    with pytest.raises(UserError, match="already holds a run"):
        ls.train(corpus_file, str(tmp_path / "run"), max_steps=2, **SMALL)


def test_resume_may_not_change_the_model(corpus_file, tmp_path):
    ls.train(corpus_file, str(tmp_path / "run"), max_steps=2, **SMALL)
    with pytest.raises(UserError, match="--hidden-size 64 conflicts with the checkpoint's 12"):
        ls.train(corpus_file, resume=str(tmp_path / "run" / "latest.npz"), hidden_size=64)


def saved_arrays(path):
    """A checkpoint's raw members and its meta as a dict, to damage on purpose."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return arrays, json.loads(str(arrays["meta"]))


def rewrite(path, arrays, meta, **members):
    """Write ``arrays`` back with ``meta`` (and ``members``) in place of theirs."""
    np.savez(path, **dict(arrays, meta=np.array(json.dumps(meta)), **members))


def test_resume_from_damaged_progress_is_a_one_line_error(corpus_file, tmp_path):
    ls.train(corpus_file, str(tmp_path / "run"), max_steps=2, **SMALL)
    path = str(tmp_path / "run" / "latest.npz")
    arrays, meta = saved_arrays(path)
    del meta["progress"]["batch_index"]
    rewrite(path, arrays, meta)
    with pytest.raises(UserError, match="damaged metadata, cannot resume .*batch_index"):
        ls.train(corpus_file, resume=path, max_steps=4)
    meta["progress"].update(batch_index=0, step="two")
    rewrite(path, arrays, meta)
    with pytest.raises(UserError, match="damaged metadata, cannot resume .*step is 'two'"):
        ls.train(corpus_file, resume=path, max_steps=4)
    np.savez(path, **{k: v for k, v in arrays.items() if not k.startswith("optim/")})
    with pytest.raises(UserError, match="holds no optimizer state"):
        ls.train(corpus_file, resume=path, max_steps=4)


def test_no_clipping_survives_a_resume(corpus_file, tmp_path):
    # "off" was saved as null in the config and -1.0 in the optimizer state; a resumed
    # stream run read null as "the mode's default" and clipped at 5 again
    ls.train(corpus_file, str(tmp_path / "run"), max_steps=2, clip_norm=0, **SMALL)
    path = str(tmp_path / "run" / "latest.npz")
    saved = ls.checkpoint.load_checkpoint(path)
    assert saved["meta"]["train"]["clip_norm"] == 0 and float(saved["optim"]["clip_norm"]) == 0
    trainer = ls.api.make_trainer(corpus_file, resume=path, max_steps=4)
    assert trainer.config.clip_norm == 0 and trainer.optimizer.clip_norm == 0
    arrays, meta = saved_arrays(path)                           # as older versions wrote it
    meta["train"]["clip_norm"] = None
    rewrite(path, arrays, meta, **{"optim/clip_norm": np.array(-1.0)})
    trainer = ls.api.make_trainer(corpus_file, resume=path, max_steps=4)
    assert trainer.config.clip_norm == 0 and trainer.optimizer.clip_norm == 0
    assert Trainer(TrainConfig(data=str(corpus_file), **SMALL)).optimizer.clip_norm == 5.0


def test_lr_decays_each_epoch(corpus_file):
    trainer = Trainer(TrainConfig(data=str(corpus_file), max_steps=1, **SMALL))
    steps = 2 * trainer.batches.batches_per_epoch
    trainer = ls.api.make_trainer(corpus_file, None, max_steps=steps, lr_decay=0.5,
                                  lr_decay_every=1, sample_temperatures=(), **SMALL)
    history = trainer.run()
    assert history[-1]["lr"] == pytest.approx(0.5e-3)      # the lr used in the second epoch
    assert trainer.optimizer.lr == pytest.approx(0.25e-3)


def test_plateau_decay_and_patience(corpus_file, tmp_path, monkeypatch, capsys):
    """Evaluations 1.0, 0.9, 0.95, 0.92, 0.99: new bests, then three that are not."""
    vals = iter([1.0, 0.9, 0.95, 0.92, 0.99, 0.5])
    module = sys.modules[Trainer.__module__]              # ls.train is the function
    monkeypatch.setattr(module, "evaluate", lambda model, batches: next(vals))
    out = tmp_path / "run"
    history = ls.train(corpus_file, str(out), max_steps=100, plateau_decay=0.5, patience=3,
                       **dict(SMALL, sample_temperatures=(0.7,)))[2]
    assert [r["step"] for r in history] == [5, 10, 15, 20, 25]  # stopped at the third stale
    assert [r["lr"] for r in history] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4, 2.5e-4])
    printed = capsys.readouterr().out
    assert "stopped early at step 25: no new best validation loss in 3 evaluations " \
           "(best 0.9000 nats)" in printed
    assert "----- temperature 0.7:" in printed                   # and it ends with samples
    assert ls.load(str(out / "best.npz"))[0] is not None
    saved = ls.checkpoint.load_checkpoint(str(out / "latest.npz"))["meta"]["progress"]
    assert saved["stale_evals"] == 3 and saved["best_val"] == 0.9


@pytest.mark.parametrize("options, match", [
    (dict(plateau_decay=0.0), r"--plateau-decay must be in \(0, 1\]"),
    (dict(patience=0), "--patience must be an integer >= 1"),
    (dict(patience=2, val_frac=0.0), "--val-frac must be > 0 for --plateau-decay and --patience"),
    (dict(seq_len=0), "--seq-len must be an integer >= 1"),
    (dict(dropout=1.0), r"--dropout must be in \[0, 1\)"),
    (dict(lr=-1.0), "--lr must be > 0"),
    (dict(val_frac=1.0), r"--val-frac must be in \[0, 1\)"),
    (dict(mode="bptt"), "--mode must be one of window, stream"),
    (dict(sample_temperatures=(0.5, 0.0)), "--sample-temperatures must be numbers > 0"),
    (dict(val_frac=0.001, mode="window"), r"the validation part .* has \d+ chars, need at least 17"),
    (dict(batch_size=100000), "text too short for 100000 streams"),
    (dict(hidden_size=8, colour="red"), "unknown training option"),
])
def test_bad_options(corpus_file, options, match):
    with pytest.raises(UserError, match=match):
        ls.train(corpus_file, None, max_steps=1, **dict(SMALL, **options))


def test_train_on_a_string_and_float64(capsys):
    from conftest import make_text
    model, vocab, history = ls.train(make_text(50), None, max_steps=3, dtype="float64",
                                      **dict(SMALL, eval_every=3))
    assert model.params["Wx0"].dtype == np.float64 and len(history) == 1
    capsys.readouterr()


def test_reference_engine_trains_the_same_run(corpus_file, tmp_path, capsys):
    # Same seed, either engine: the same dropout masks and batches, so the same
    # parameters up to float64 rounding; and each checkpoint loads whatever engine wrote it.
    options = dict(SMALL, max_steps=6, dtype="float64", sample_temperatures=())
    ls.train(corpus_file, str(tmp_path / "fast"), **options)
    model, _, _ = ls.train(corpus_file, str(tmp_path / "book"), engine="reference", **options)
    assert model.engine == "reference"
    assert "the textbook cell" in capsys.readouterr().out
    fast, book = params_of(tmp_path / "fast" / "latest.npz"), params_of(tmp_path / "book" / "latest.npz")
    for name in fast:
        scale = np.abs(fast[name]).max()
        assert np.abs(book[name] - fast[name]).max() <= 1e-10 * scale, name
    resumed, _, _ = ls.train(corpus_file, resume=str(tmp_path / "book" / "latest.npz"),
                             max_steps=7, engine="fast")
    assert resumed.engine == "fast"
    capsys.readouterr()


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_names_the_file_and_leaves_nothing_half_written(corpus_file, tmp_path,
                                                                     monkeypatch):
    out = tmp_path / "run"
    ls.train(corpus_file, str(out), max_steps=5, **SMALL)
    before = open(out / "latest.npz", "rb").read()
    monkeypatch.setattr(np, "savez", lambda f, **arrays: (f.write(b"PK\3\4 half"), full_disk()))
    with pytest.raises(OSError, match="No space left on device") as info:
        ls.train(corpus_file, resume=str(out / "latest.npz"), max_steps=10)
    assert info.value.filename == str(out / "latest.npz")
    assert open(out / "latest.npz", "rb").read() == before
    assert not [name for name in os.listdir(out) if name.startswith(".tmp")]


def test_a_full_disk_while_logging_names_the_file(corpus_file, tmp_path, monkeypatch):
    import builtins
    import sys
    train_module = sys.modules["lstm_scratch.train"]        # (ls.train is the function)

    class FullFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            full_disk()

    def open_metrics_on_a_full_disk(path, *args, **kwargs):
        f = builtins.open(path, *args, **kwargs)
        return FullFile(f) if str(path).endswith("metrics.jsonl") else f

    monkeypatch.setattr(train_module, "open", open_metrics_on_a_full_disk, raising=False)
    with pytest.raises(OSError) as info:
        ls.train(corpus_file, str(tmp_path / "run"), max_steps=5, **SMALL)
    assert info.value.filename == str(tmp_path / "run" / "metrics.jsonl")
    monkeypatch.undo()

    class FullStream(io.StringIO):
        name = "train.log"

        def write(self, text):
            full_disk()

    with pytest.raises(OSError) as info:                    # progress and samples
        ls.train(corpus_file, max_steps=5, out=FullStream(), **SMALL)
    assert info.value.filename == "train.log" and info.value.errno == errno.ENOSPC


def test_a_model_too_big_to_make_is_a_one_line_error(corpus_file):
    with pytest.raises(UserError, match="cannot make a model of 1 layer"):
        ls.train(corpus_file, max_steps=1, hidden_size=2**40, num_layers=1, backend="numpy")


def test_a_saved_config_that_disagrees_with_the_model_is_damaged(corpus_file, tmp_path):
    ls.train(corpus_file, str(tmp_path / "run"), max_steps=2, **SMALL)
    path = str(tmp_path / "run" / "latest.npz")
    arrays, meta = saved_arrays(path)
    meta["train"]["hidden_size"] = 2**40
    rewrite(path, arrays, meta)
    with pytest.raises(UserError, match="damaged metadata: the training config's hidden_size"):
        ls.train(corpus_file, resume=path, max_steps=4)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_train_resume_exactly_and_load(corpus_file, tmp_path, cell, capsys):
    opts = dict(SMALL, cell=cell, sample_temperatures=(1.0,))
    history = check_resume_is_the_run(corpus_file, tmp_path, 6, 12, **opts)
    assert history[-1]["val_loss"] < history[0]["val_loss"] + 0.5
    model, vocab = ls.load(str(tmp_path / "split" / "latest.npz"), backend="numpy")
    assert model.cell == cell and not isinstance(model, ls.CharLSTM)
    assert f"2-layer {dict(gru='GRU', rnn='vanilla RNN')[cell]}" in capsys.readouterr().out
    with pytest.raises(UserError, match=f"--cell lstm conflicts with the checkpoint's {cell}"):
        ls.train(corpus_file, resume=str(tmp_path / "split" / "latest.npz"), cell="lstm")


def test_unknown_cell_is_a_one_line_error(corpus_file):
    with pytest.raises(UserError, match="--cell must be one of lstm, gru, rnn, got 'lsmt'"):
        ls.train(corpus_file, max_steps=1, cell="lsmt", **SMALL)


def rewrite_checkpoint(source, target, edit):
    """``source``'s checkpoint written again to ``target``, its metadata changed by
    ``edit(meta)`` in place: an older or a damaged checkpoint, made from a real one."""
    from lstm_scratch.checkpoint import load_checkpoint, save_checkpoint
    from lstm_scratch.data import Vocab
    saved = load_checkpoint(source)
    edit(saved["meta"])
    save_checkpoint(target, params=saved["params"], vocab=Vocab.from_codes(saved["vocab_codes"]),
                    meta=saved["meta"], optim_state=saved["optim"], carry=saved["carry"])


def test_old_checkpoints_without_a_cell_load_as_lstm(corpus_file, tmp_path):
    """Checkpoints written before the cell was recorded hold an LSTM."""
    def forget_the_cell(meta):
        del meta["model"]["cell"], meta["train"]["cell"]
    ls.train(corpus_file, str(tmp_path / "run"), max_steps=2, **SMALL)
    old = str(tmp_path / "old.npz")
    rewrite_checkpoint(str(tmp_path / "run" / "latest.npz"), old, forget_the_cell)
    model, _ = ls.load(old, backend="numpy")
    assert isinstance(model, ls.CharLSTM) and model.cell == "lstm"
    ls.train(corpus_file, resume=old, max_steps=3, sample_temperatures=())
