"""Fine-tuning (init_from, finetune.py): a checkpoint's weights, a fresh run, a grown
vocabulary."""
import io
import os

import numpy as np
import pytest

import lstm_scratch as ls
from lstm_scratch import UserError
from lstm_scratch.api import make_trainer
from lstm_scratch.checkpoint import load_checkpoint, save_checkpoint
from lstm_scratch.data import Vocab, make_batches
from lstm_scratch.finetune import logsumexp_floor, vocab_axes
from lstm_scratch.model import make_model
from lstm_scratch.prepared import prepare
from lstm_scratch.train import evaluate, saved_config

OLD = "abc cab bca acb\nbac cba abc\n" * 60              # the checkpoint's text
NEW = "abc XYZ cab zyx\nbca xyz ZYX\n" * 60              # new chars on both sides of a, b, c
MODELS = {"one-hot": {}, "embedding": dict(embedding_size=8),
          "tied": dict(embedding_size=16, tie_weights=True)}
BASE = dict(hidden_size=16, num_layers=1, seq_len=16, batch_size=8, backend="numpy",
            sample_temperatures=(), eval_every=5, val_frac=0.1)


def quiet(**options):
    return dict(BASE, out=io.StringIO(), **options)


@pytest.fixture(params=list(MODELS))
def model_options(request):
    return MODELS[request.param]


def checkpoint(tmp_path, dtype="float64", **options):
    """A tiny model trained 10 steps on OLD; returns its latest.npz."""
    ls.train(OLD, str(tmp_path / "old"), max_steps=10, **quiet(dtype=dtype, **options))
    return str(tmp_path / "old" / "latest.npz")


def old_text_loss(model, vocab):
    """The streamed loss on OLD (no dropout), each model reading it in its own ids."""
    return evaluate(model, make_batches(vocab.encode(OLD), "stream", 16, 8))


def test_step_zero_predicts_what_the_checkpoint_predicted(tmp_path, model_options):
    ckpt = checkpoint(tmp_path, **model_options)
    old_model, old_vocab = ls.load(ckpt, backend="numpy")
    trainer = make_trainer(NEW, None, init_from=ckpt, **quiet(dtype="float64", max_steps=1))
    assert set(trainer.vocab.chars) - set(old_vocab.chars) == set("XYZxyz")
    assert old_text_loss(trainer.model, trainer.vocab) == pytest.approx(
        old_text_loss(old_model, old_vocab), rel=0, abs=1e-9)
    # and position by position: every old char's probability, from the same text
    ids = OLD[:200]
    p_old = probabilities(old_model, old_vocab.encode(ids))
    p_new = probabilities(trainer.model, trainer.vocab.encode(ids))
    np.testing.assert_allclose(p_new[:, trainer.vocab.ids_of(old_vocab)], p_old, rtol=1e-12,
                               atol=0)
    assert p_new.sum(1) == pytest.approx(1.0, abs=1e-15)


def probabilities(model, ids):
    """softmax(z) (T, V) at every position of ids (T,)."""
    h, _, _ = model.run(ids[None])                              # (T, 1, H)
    z = h[:, 0] @ model.head_weight() + model.params["by"]      # (T, V)
    p = np.exp(z - z.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


def test_old_characters_keep_their_weights_new_ones_start_fresh(tmp_path, model_options):
    ckpt = checkpoint(tmp_path, **model_options)
    saved = load_checkpoint(ckpt)
    old_vocab = Vocab.from_codes(saved["vocab_codes"])
    trainer = make_trainer(NEW, str(tmp_path / "new"), init_from=ckpt,
                           **quiet(dtype="float64", max_steps=2, seed=7))
    vocab, params = trainer.vocab, trainer.model.params
    old_ids = vocab.ids_of(old_vocab)
    assert list(old_ids) != list(range(len(old_vocab)))         # 'X' < 'a': old ids moved
    new_ids = np.setdiff1d(np.arange(len(vocab)), old_ids)
    fresh = make_model(dict(trainer.model.config), backend="numpy", seed=7).params
    axes = vocab_axes(trainer.model.config)
    for name, value in params.items():
        old = saved["params"][name]
        if name not in axes:
            np.testing.assert_array_equal(value, old, err_msg=name)
            continue
        np.testing.assert_array_equal(np.take(value, old_ids, axes[name]), old, err_msg=name)
        if name != "by":
            np.testing.assert_array_equal(np.take(value, new_ids, axes[name]),
                                          np.take(fresh[name], new_ids, axes[name]), err_msg=name)
    head = params["E"].T if model_options.get("tie_weights") else params["Wy"]
    floor = logsumexp_floor(head[:, old_ids], params["by"][old_ids])
    assert (params["by"][new_ids] + np.abs(head[:, new_ids]).sum(0)
            <= floor - np.log(len(new_ids) / np.finfo(np.float64).eps) + 1e-9).all()
    trainer.run()
    written = load_checkpoint(str(tmp_path / "new" / "latest.npz"))
    assert Vocab.from_codes(written["vocab_codes"]) == vocab == old_vocab.grown(NEW)
    assert written["meta"]["model"]["vocab_size"] == len(vocab)


def test_the_new_bias_follows_the_old_logits_wherever_they_sit(tmp_path):
    """softmax(z + s) = softmax(z): a checkpoint whose biases all moved by s predicts
    the same, and fine-tuning it must too (a fixed bias for the new chars would not)."""
    ckpt = checkpoint(tmp_path)
    saved = load_checkpoint(ckpt)
    old_vocab = Vocab.from_codes(saved["vocab_codes"])
    for shift in (-200.0, 200.0):
        moved = str(tmp_path / f"moved{shift:+.0f}.npz")
        save_checkpoint(moved, params=dict(saved["params"], by=saved["params"]["by"] + shift),
                        vocab=old_vocab, meta=saved["meta"])
        old_model, _ = ls.load(moved, backend="numpy")
        trainer = make_trainer(NEW, None, init_from=moved, **quiet(dtype="float64", max_steps=1))
        assert old_text_loss(trainer.model, trainer.vocab) == pytest.approx(
            old_text_loss(old_model, old_vocab), rel=0, abs=1e-9)


def test_fine_tuning_reads_files_lists_and_prepared_folders(tmp_path):
    ckpt = checkpoint(tmp_path)
    old_vocab = Vocab.from_codes(load_checkpoint(ckpt)["vocab_codes"])
    first, second = tmp_path / "new1.txt", tmp_path / "new2.txt"
    first.write_text(NEW)
    second.write_text("ABC!\n" * 50)
    from_text = make_trainer(NEW, None, init_from=ckpt, **quiet(max_steps=1))
    from_file = make_trainer(str(first), None, init_from=ckpt, **quiet(max_steps=1))
    assert from_file.vocab == from_text.vocab == old_vocab.grown(NEW)
    np.testing.assert_array_equal(from_file.train_ids, from_text.train_ids)
    listed = make_trainer([str(first), str(second)], None, init_from=ckpt,
                          **quiet(max_steps=1, doc_sep="\n~\n"))
    assert listed.vocab == old_vocab.grown(NEW + "ABC!~")
    (tmp_path / "old.txt").write_text(OLD)
    prepare([str(first), str(tmp_path / "old.txt")], str(tmp_path / "p"), val_frac=0.1)
    prepared = make_trainer(str(tmp_path / "p"), None, init_from=ckpt, **quiet(max_steps=1))
    assert prepared.vocab == old_vocab.grown(NEW)               # holds every old char: usable


def test_logsumexp_floor_is_below_every_hidden_state():
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(5, 7)), rng.normal(size=7) * 3
    h = rng.uniform(-1, 1, size=(20000, 5))
    h[:32] = np.sign(rng.normal(size=(32, 5)))                  # corners of the cube too
    z = h @ W + b
    lse = z.max(1) + np.log(np.exp(z - z.max(1, keepdims=True)).sum(1))
    assert lse.min() >= logsumexp_floor(W, b)
    assert lse.min() - logsumexp_floor(W, b) < 3                # and not far below


def test_fine_tuning_learns_the_new_characters(tmp_path, model_options):
    ckpt = checkpoint(tmp_path, dtype="float32", **model_options)
    model, vocab, history = ls.train(NEW, None, init_from=ckpt,
                                     **quiet(dtype="float32", optimizer="adam", lr=0.05,
                                             max_steps=40))
    losses = [r["val_loss"] for r in history]
    assert losses[-1] < 0.5 * losses[0]
    text = ls.generate(model, vocab, prime="abc ", length=200, temperature=1.0, seed=0)
    assert set(text) & set("XYZxyz")


def test_a_fresh_run_this_calls_schedule(tmp_path):
    ckpt = checkpoint(tmp_path, ema=0.9)                        # a checkpoint with an average
    saved = load_checkpoint(ckpt)
    assert saved["meta"]["progress"]["step"] == 10
    trainer = make_trainer(NEW, str(tmp_path / "new"), init_from=ckpt,
                           **quiet(dtype="float64", optimizer="adam", lr=0.003, max_steps=6,
                                   eval_every=3))
    assert trainer.step == trainer.epoch == trainer.batch_index == 0 and trainer.carry is None
    state = trainer.optimizer.state_dict()
    assert state["steps"] == 0 and trainer.optimizer.lr == 0.003
    assert all(not np.any(v) for k, v in state.items() if "." in k)  # every running mean 0
    ids = trainer.vocab.ids_of(Vocab.from_codes(saved["vocab_codes"]))
    np.testing.assert_array_equal(trainer.model.params["Wh0"], saved["ema"]["Wh0"])  # the average
    np.testing.assert_array_equal(trainer.model.params["Wx0"][ids], saved["ema"]["Wx0"])
    assert trainer.ema is None                                  # this call keeps none
    history = trainer.run()
    assert [r["step"] for r in history] == [3, 6]
    written = load_checkpoint(str(tmp_path / "new" / "latest.npz"))
    assert written["meta"]["progress"]["step"] == 6 and written["ema"] is None
    config = saved_config(written)
    assert config.init_from == os.path.abspath(ckpt) and config.optimizer == "adam"


def test_a_fine_tuned_run_resumes_exactly_without_its_start(tmp_path):
    ckpt = checkpoint(tmp_path)
    options = quiet(dtype="float64", max_steps=8)
    ls.train(NEW, str(tmp_path / "straight"), init_from=ckpt, **options)
    ls.train(NEW, str(tmp_path / "split"), init_from=ckpt, **dict(options, max_steps=4))
    os.unlink(ckpt)                                             # resuming never reads it
    latest = str(tmp_path / "split" / "latest.npz")
    ls.train(NEW, resume=latest, max_steps=8, out=io.StringIO())
    straight = ls.load(str(tmp_path / "straight" / "latest.npz"))[0].params
    split = ls.load(latest)[0].params
    for name in straight:
        np.testing.assert_array_equal(split[name], straight[name], err_msg=name)


def test_dropout_rates_default_to_the_checkpoints(tmp_path):
    ckpt = checkpoint(tmp_path, dropout=0.3, weight_drop=0.2)
    kept = make_trainer(NEW, None, init_from=ckpt, **quiet(max_steps=1)).config
    assert (kept.hidden_size, kept.num_layers, kept.dtype) == (16, 1, "float64")
    assert (kept.dropout, kept.weight_drop, kept.output_dropout) == (0.3, 0.2, 0.3)
    given = make_trainer(NEW, None, init_from=ckpt, **quiet(max_steps=1, dropout=0.1)).config
    assert (given.dropout, given.weight_drop, given.output_dropout) == (0.1, 0.2, 0.1)


def one_line(call, *fragments):
    with pytest.raises(UserError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_errors_are_one_line(tmp_path):
    ckpt = checkpoint(tmp_path, embedding_size=8)
    same = make_trainer(NEW, None, init_from=ckpt,                  # equal options are fine
                        **quiet(max_steps=1, hidden_size=16, embedding_size=8, cell="lstm",
                                dtype="float64"))
    assert same.model.embedding_size == 8
    one_line(lambda: make_trainer(NEW, None, init_from=ckpt, resume=ckpt, **quiet()),
             "do not combine")
    for option, value, shown in (("hidden_size", 32, "--hidden-size 32 conflicts with"),
                                 ("num_layers", 2, "--num-layers 2 conflicts"),
                                 ("cell", "gru", "--cell gru conflicts"),
                                 ("dtype", "float32", "--dtype float32 conflicts"),
                                 ("embedding_size", 0, "--embedding-size 0 conflicts")):
        one_line(lambda: make_trainer(NEW, None, init_from=ckpt, **quiet(**{option: value})),
                 shown, "fine-tuning keeps the checkpoint's model")
    one_line(lambda: make_trainer(NEW, None, init_from=str(tmp_path / "nope.npz"), **quiet()),
             "nope.npz: no such checkpoint")
    folder = str(tmp_path / "p")                        # a prepared corpus's ids are fixed
    (tmp_path / "new.txt").write_text("xyz zyx\n" * 200)
    prepare(str(tmp_path / "new.txt"), folder, val_frac=0.1)
    one_line(lambda: make_trainer(folder, None, init_from=ckpt, **quiet()),
             "lacks 3 of the checkpoint's 5 chars")
