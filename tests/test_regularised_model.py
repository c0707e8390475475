"""A CharRNN with the regularisers on (weight drop, locked, input and embedding
dropout, an embedding, tied weights): gradients against central differences in
float64, the engine against the textbook, and what each option means."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck import check_grads
from lstm_scratch import CharRNN, UserError
from lstm_scratch.engine.parallel import ThreadedDataParallel
from lstm_scratch.model import make_model, param_shapes
from strategies import model_dims, seeds

CELLS = ["lstm", "gru", "rnn"]


@st.composite
def regularisers(draw, H, cell="lstm"):
    """A random mix of the regularisers for a model of width H (tying needs D = H;
    zoneout on c is the LSTM's, on h every cell's)."""
    tie = draw(st.booleans())
    D = H if tie else draw(st.sampled_from([0, 1, 3]))
    p = st.sampled_from([0.0, 0.3])
    zoneout = dict(zoneout_cell=draw(st.sampled_from([0.0, 0.5])) if cell == "lstm" else 0.0,
                   zoneout_hidden=draw(st.sampled_from([0.0, 0.2])))
    return dict(embedding_size=D, tie_weights=tie, weight_drop=draw(p),
                locked_dropout=draw(st.booleans()),
                input_dropout=draw(p) if D else 0.0, embedding_dropout=draw(p) if D else 0.0,
                output_dropout=draw(st.sampled_from([None, 0.0, 0.5])), **zoneout)


def random_model(dims, seed, options, dropout=0.3, engine="fast", cell="lstm", dtype="float64"):
    model = CharRNN(dims["V"], cell, dims["H"], dims["L"], dropout=dropout, dtype=dtype,
                    seed=seed, engine=engine, **options)
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape) * 0.6
    return model


def batch(dims, rng, many_to_one=False):
    B, T, V = dims["B"], dims["T"], dims["V"]
    return rng.integers(0, V, (B, T)), rng.integers(0, V, (B,) if many_to_one else (B, T))


@pytest.mark.parametrize("cell", CELLS)
@settings(max_examples=15, deadline=None)
@given(st.data(), model_dims(), st.booleans(), st.sampled_from(["fast", "reference"]), seeds)
def test_gradcheck_with_regularisers(cell, data, dims, many_to_one, engine, seed):
    options = data.draw(regularisers(dims["H"], cell))
    model = random_model(dims, seed, options, engine=engine, cell=cell)
    inputs, targets = batch(dims, np.random.default_rng(seed + 1), many_to_one)
    # A fresh Generator with one seed: every call draws the same masks.
    run = lambda: model.loss_and_grads(inputs, targets, dropout_rng=np.random.default_rng(seed))
    _, grads, _ = run()
    assert set(grads) == set(model.params)
    check_grads(lambda: run()[0], model.params, grads)


@pytest.mark.parametrize("cell", CELLS)
@settings(max_examples=15, deadline=None)
@given(st.data(), model_dims(), st.booleans(), seeds)
def test_engine_equals_textbook(cell, data, dims, many_to_one, seed):
    options = data.draw(regularisers(dims["H"], cell))
    fast, ref = (random_model(dims, seed, options, engine=e, cell=cell) for e in ("fast", "reference"))
    inputs, targets = batch(dims, np.random.default_rng(seed + 1), many_to_one)
    a, b = (m.loss_and_grads(inputs, targets, dropout_rng=np.random.default_rng(seed))
            for m in (fast, ref))
    assert a[0] == pytest.approx(b[0], rel=1e-10)
    for name in fast.params:
        np.testing.assert_allclose(a[1][name], b[1][name], rtol=1e-10, atol=1e-12, err_msg=name)
    for sa, sb in zip(a[2], b[2]):
        for x, y in zip(sa, sb):
            np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_two_workers_equal_one(cell):
    """The masks are cut with the rows (layers, input) or shared whole (weights, E)."""
    dims = dict(B=6, T=5, V=7, H=4, L=2)
    options = dict(embedding_size=4, tie_weights=True, weight_drop=0.4, locked_dropout=True,
                   input_dropout=0.2, embedding_dropout=0.3)
    options.update(zoneout_cell=0.5 if cell == "lstm" else 0.0,  # (T, B, H): cut with the rows
                   zoneout_hidden=0.2)
    model = random_model(dims, 1, options, cell=cell)
    inputs, targets = batch(dims, np.random.default_rng(2))
    one = model.loss_and_grads(inputs, targets, dropout_rng=np.random.default_rng(3))
    two = ThreadedDataParallel(model, 2).loss_and_grads(inputs, targets,
                                                        dropout_rng=np.random.default_rng(3))
    assert one[0] == pytest.approx(two[0], rel=1e-12)
    for name in model.params:
        np.testing.assert_allclose(one[1][name], two[1][name], rtol=1e-11, atol=1e-13)


def test_masks_have_their_shapes():
    dims = dict(B=3, T=5, V=7, H=4, L=2)
    options = dict(embedding_size=2, weight_drop=0.5, locked_dropout=True, input_dropout=0.5,
                   embedding_dropout=0.5)
    model = random_model(dims, 0, options)
    m = model.dropout_masks(5, 3, False, np.random.default_rng(0))
    assert [k.shape for k in m.layers] == [(1, 3, 4), (1, 3, 4)]     # locked: one per sequence
    assert m.input.shape == (1, 3, 2)
    assert [w.shape for w in m.weights] == [(4, 16), (4, 16)]
    assert m.embedding.shape == (7, 1)
    unlocked = random_model(dims, 0, dict(options, locked_dropout=False))
    m = unlocked.dropout_masks(5, 3, True, np.random.default_rng(0))
    assert [k.shape for k in m.layers] == [(5, 3, 4), (1, 3, 4)]     # top of many-to-one: h_T
    assert m.input.shape == (5, 3, 2)


def test_no_regulariser_draws_what_it_always_drew():
    """Off, the regularisers draw nothing: the layers' masks are those of the same
    seed without them (old seeds give the same runs)."""
    dims = dict(B=3, T=5, V=7, H=4, L=2)
    plain = random_model(dims, 0, {})
    m = plain.dropout_masks(5, 3, False, np.random.default_rng(0))
    assert m.input is None and m.weights is None and m.embedding is None
    seeds = np.random.default_rng(0).integers(0, 2**63 - 1, size=2)
    first = np.random.default_rng(seeds[0]).random((5, 3, 4)) < 0.7
    np.testing.assert_array_equal(m.layers[0] != 0, first)


def test_weight_drop_leaves_the_first_step_alone():
    """Weight drop's meaning (AWD-LSTM's test): from h_0 = 0, step 0 never touches Wh,
    so its loss is the same under any mask; a later step's is not."""
    dims = dict(B=2, T=3, V=5, H=4, L=1)
    model = random_model(dims, 0, dict(weight_drop=0.5), dropout=0.0)
    inputs, targets = batch(dims, np.random.default_rng(1))
    first, later = [], []
    for seed in (1, 2):
        masks = model.dropout_masks(3, 2, False, np.random.default_rng(seed))
        ids, _ = model._check_batch(inputs, targets)
        first.append(model._forward(ids[:1], targets[:, :1], None, masks)[0])
        later.append(model._forward(ids, targets, None, masks)[0])
    assert first[0] == first[1]
    assert later[0] != later[1]


@pytest.mark.parametrize("cell", CELLS)
def test_evaluation_drops_nothing(cell):
    """At evaluation every mask is 1: the loss is the same with the dropping
    regularisers on or off (the embedding and tying change the model, so they stay)."""
    dims = dict(B=3, T=6, V=7, H=4, L=2)
    on = random_model(dims, 0, dict(embedding_size=4, tie_weights=True, weight_drop=0.5,
                                    locked_dropout=True, input_dropout=0.5,
                                    embedding_dropout=0.5), cell=cell)
    off = random_model(dims, 0, dict(embedding_size=4, tie_weights=True), cell=cell)
    inputs, targets = batch(dims, np.random.default_rng(1))
    assert on.loss(inputs, targets)[0] == off.loss(inputs, targets)[0]
    train = on.loss_and_grads(inputs, targets)[0]
    assert train != on.loss(inputs, targets)[0]


@pytest.mark.parametrize("cell", CELLS + ["lstm-zoneout", "gru-zoneout", "rnn-zoneout"])
@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_step_with_embedding_matches_sequence(cell, engine):
    """One step at a time (the Stepper for the fast LSTM) equals the sequence forward,
    through the embedding and a tied head; with zoneout, every step mixes by the rates."""
    dims = dict(B=2, T=5, V=6, H=3, L=2)
    options = dict(embedding_size=3, tie_weights=True)
    if cell.endswith("-zoneout"):
        cell = cell.split("-")[0]
        options = dict(options, zoneout_cell=0.5 if cell == "lstm" else 0.0, zoneout_hidden=0.2)
    model = random_model(dims, 0, options, cell=cell, engine=engine)
    inputs, targets = batch(dims, np.random.default_rng(1))
    state, total = None, 0.0
    for t in range(5):
        probs, state = model.step(inputs[:, t], state)
        total -= np.log(probs[np.arange(2), targets[:, t]]).sum()
    assert total / 10 == pytest.approx(model.loss(inputs, targets)[0], rel=1e-10)


def test_shapes_and_tied_head():
    model = CharRNN(9, "gru", 6, 2, embedding_size=6, tie_weights=True)
    shapes = param_shapes(model.config)
    assert "Wy" not in shapes and shapes["E"] == (9, 6) and shapes["Wx0"] == (6, 18)
    assert {k: v.shape for k, v in model.params.items()} == shapes
    assert model.head_weight().base is model.params["E"] or \
        np.shares_memory(model.head_weight(), model.params["E"])
    untied = CharRNN(9, "lstm", 6, 2, embedding_size=4)
    assert param_shapes(untied.config)["Wy"] == (6, 9)
    # the config rebuilds the same model (what checkpoints rely on)
    assert make_model(untied.config).config == untied.config


@pytest.mark.parametrize("options, words", [
    (dict(tie_weights=True), "tie_weights needs embedding_size equal to hidden_size (6)"),
    (dict(embedding_size=4, tie_weights=True), "got embedding_size 4"),
    (dict(input_dropout=0.2), "input_dropout needs an embedding"),
    (dict(embedding_dropout=0.2), "embedding_dropout needs an embedding"),
    (dict(weight_drop=1.0), "weight_drop must be in [0, 1)"),
    (dict(embedding_size=-1), "embedding_size must be an integer >= 0"),
    (dict(locked_dropout="yes"), "locked_dropout must be True or False"),
    (dict(zoneout=0.1), "unknown model option(s): zoneout"),
    (dict(zoneout_cell=1.0), "zoneout_cell must be in [0, 1)"),
    (dict(zoneout_hidden=-0.1), "zoneout_hidden must be in [0, 1)"),
])
def test_bad_options_are_one_line(options, words):
    with pytest.raises(UserError) as info:
        CharRNN(9, "lstm", 6, 2, **options)
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_zoneout_on_c_is_the_lstms(cell):
    with pytest.raises(UserError, match=f"zoneout_cell is the LSTM's: cell {cell} has no cell state"):
        CharRNN(9, cell, 6, 2, zoneout_cell=0.3)
    CharRNN(9, cell, 6, 2, zoneout_hidden=0.3)                  # h: every cell has one


@pytest.mark.parametrize("cell", CELLS)
def test_zoneout_evaluates_by_its_rates(cell):
    """At evaluation zoneout is not off: every step mixes by the rates, so the loss
    differs from the same weights without zoneout; at rate 0 it is the plain model."""
    dims = dict(B=3, T=6, V=7, H=4, L=2)
    inputs, targets = batch(dims, np.random.default_rng(1))
    plain = random_model(dims, 0, {}, cell=cell)
    z_c = 0.5 if cell == "lstm" else 0.0
    zoned = random_model(dims, 0, dict(zoneout_cell=z_c, zoneout_hidden=0.1), cell=cell)
    assert zoned.loss(inputs, targets)[0] != plain.loss(inputs, targets)[0]
    zero = random_model(dims, 0, dict(zoneout_cell=0.0, zoneout_hidden=0.0), cell=cell)
    assert zero.loss(inputs, targets)[0] == plain.loss(inputs, targets)[0]
    masks = zoned.dropout_masks(6, 3, False, np.random.default_rng(0))
    want = [(6, 3, 4) if z_c else None, (6, 3, 4)]
    assert [[None if d is None else d.shape for d in pair] for pair in masks.zoneout] == [want] * 2
