import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradcheck import check_grads
from lstm_scratch import CharLSTM, CharRNN, UserError
from lstm_scratch.model import make_model, param_shapes
from lstm_scratch.nn import gate_slice, log_softmax
from strategies import model_dims, seeds


CELLS = ["lstm", "gru", "rnn"]


def random_model(dims, seed, dropout=0.0, dtype="float64", engine="fast", cell="lstm"):
    """A model with every parameter, biases included, set to random nonzero values."""
    model = CharRNN(dims["V"], cell, dims["H"], dims["L"], dropout=dropout, dtype=dtype,
                    seed=seed, engine=engine)
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape) * 0.6
    return model


def random_state(model, B, rng):
    """A random state of the model's kind: per layer (h, c) or (h,), each (B, H)."""
    return [tuple(rng.standard_normal(a.shape) for a in layer) for layer in model.init_state(B)]


@pytest.mark.parametrize("cell", CELLS)
@given(model_dims(), st.booleans(), st.booleans(), st.sampled_from([0.0, 0.3]),
       st.sampled_from(["fast", "reference"]), seeds)
def test_loss_and_grads_gradcheck(cell, dims, many_to_one, with_state, dropout, engine, seed):
    model = random_model(dims, seed, dropout, engine=engine, cell=cell)
    rng = np.random.default_rng(seed + 1)
    B, T, V = dims["B"], dims["T"], dims["V"]
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = random_state(model, B, rng) if with_state else None
    # A fresh Generator with one seed gives every call the same dropout masks.
    run = lambda: model.loss_and_grads(inputs, targets, state,
                                       dropout_rng=np.random.default_rng(seed))
    _, grads, _ = run()
    check_grads(lambda: run()[0], model.params, grads)


@pytest.mark.parametrize("cell", CELLS)
@given(model_dims(), seeds)
def test_state_carries_across_chunks(cell, dims, seed):
    """Loss over two chunks with the state carried equals one pass over both."""
    model = random_model(dims, seed, cell=cell)
    rng = np.random.default_rng(seed)
    B, T, V = dims["B"], dims["T"], dims["V"]
    inputs, targets = rng.integers(0, V, (B, 2 * T)), rng.integers(0, V, (B, 2 * T))
    full, full_state = model.loss(inputs, targets)
    a, state = model.loss(inputs[:, :T], targets[:, :T])
    b, end_state = model.loss(inputs[:, T:], targets[:, T:], state)
    assert (a + b) / 2 == pytest.approx(full, rel=1e-12)
    for one, two in zip(full_state, end_state):
        assert len(one) == len(two) == (2 if cell == "lstm" else 1)
        for a, b in zip(one, two):
            np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
@given(model_dims(), seeds)
def test_step_matches_sequence_forward(cell, dims, seed):
    model = random_model(dims, seed, cell=cell)
    rng = np.random.default_rng(seed)
    B, T, V = dims["B"], dims["T"], dims["V"]
    inputs = rng.integers(0, V, (B, T))
    state = None
    total = 0.0
    targets = rng.integers(0, V, (B, T))
    for t in range(T):
        probs, state = model.step(inputs[:, t], state)
        np.testing.assert_allclose(probs.sum(1), 1.0)
        total -= np.log(probs[np.arange(B), targets[:, t]]).sum()
    assert total / (B * T) == pytest.approx(model.loss(inputs, targets)[0], rel=1e-10)


def test_returned_state_is_detached():
    model = random_model(dict(V=4, H=3, L=2), 0)
    inputs = np.zeros((2, 3), int)
    _, _, state = model.loss_and_grads(inputs, inputs)
    before = [h.copy() for h, _ in state]
    model.loss_and_grads(inputs + 1, inputs)
    for h_then, (h_now, _) in zip(before, state):
        np.testing.assert_array_equal(h_then, h_now)


def test_float32_matches_float64():
    m64 = CharLSTM(30, 64, 2, dropout=0.0, dtype="float64", seed=3)
    m32 = CharLSTM(30, 64, 2, dropout=0.0, dtype="float32", seed=3)
    rng = np.random.default_rng(0)
    inputs, targets = rng.integers(0, 30, (8, 40)), rng.integers(0, 30, (8, 40))
    l64, g64, _ = m64.loss_and_grads(inputs, targets)
    l32, g32, _ = m32.loss_and_grads(inputs, targets)
    assert l32 == pytest.approx(l64, rel=1e-6)
    for name in g64:
        assert g32[name].dtype == np.float32
        scale = np.abs(g64[name]).max()
        assert np.abs(g32[name] - g64[name]).max() <= 1e-4 * scale, name


def test_init_is_as_documented():
    model = CharLSTM(10, 16, 2, seed=0)
    H = 16
    for l in range(2):
        b = model.params[f"b{l}"]
        assert (b[gate_slice("f", H)] == 1).all()
        assert (np.delete(b, np.r_[gate_slice("f", H)]) == 0).all()
        Wh = model.params[f"Wh{l}"].astype(np.float64)
        np.testing.assert_allclose(Wh @ Wh.T, np.eye(H), atol=1e-5)    # orthonormal rows
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.num_params() == sum(p.size for p in model.params.values())
    same = CharLSTM(10, 16, 2, seed=0)
    other = CharLSTM(10, 16, 2, seed=1)
    assert all((model.params[k] == same.params[k]).all() for k in model.params)
    assert not (model.params["Wx0"] == other.params["Wx0"]).all()


def test_dropout_only_in_training():
    model = CharLSTM(5, 4, 2, dropout=0.5, dtype="float64", seed=0)
    x = np.zeros((2, 3), int)
    assert model.loss(x, x)[0] == model.loss(x, x)[0]
    a = model.loss_and_grads(x, x, train=True)[0]
    b = model.loss_and_grads(x, x, train=True)[0]
    assert a != b                                # the model's own Generator moves on


@pytest.mark.parametrize("kwargs, match", [
    (dict(vocab_size=0), "vocab_size"),
    (dict(vocab_size=5, hidden_size=2.5), "hidden_size"),
    (dict(vocab_size=5, dropout=1.0), "dropout"),
    (dict(vocab_size=5, dtype="float16"), "dtype"),
    (dict(vocab_size=5, backend="tpu"), "backend"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(UserError, match=match):
        CharLSTM(**kwargs)


@pytest.mark.parametrize("inputs, targets, match", [
    (np.zeros((2, 3)), np.zeros((2, 3), int), "inputs must be an int"),
    (np.zeros(3, int), np.zeros(3, int), "inputs must be an int"),
    (np.zeros((2, 3), int), np.zeros((3,), int), "targets must be"),
    (np.full((2, 3), 9), np.zeros((2, 3), int), r"inputs must be character ids in \[0, 5\)"),
    (np.zeros((2, 3), int), np.full((2,), -1), "targets must be character ids"),
])
def test_bad_batches(inputs, targets, match):
    with pytest.raises(UserError, match=match):
        CharLSTM(5, 3, 1).loss_and_grads(inputs, targets)


def test_step_logits_are_log_probs_up_to_a_constant():
    model = random_model(dict(V=6, H=3, L=2), 0)
    z, _ = model.step_logits(np.array([1, 2]))
    p, _ = model.step(np.array([1, 2]))
    np.testing.assert_allclose(np.exp(log_softmax(z)), p)



@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_params_and_grads_are_row_major(engine):
    # p.reshape(-1) must be a view: writing through it changes the model.
    model = CharLSTM(6, 4, 2, dtype="float64", seed=0, engine=engine)
    for name, p in model.params.items():
        assert p.flags["C_CONTIGUOUS"], name
        flat = p.reshape(-1)
        flat[0] = 7.0
        assert p.flat[0] == 7.0, name
    inputs = np.zeros((2, 3), int)
    _, grads, _ = model.loss_and_grads(inputs, inputs)
    assert all(g.flags["C_CONTIGUOUS"] for g in grads.values())


@pytest.mark.parametrize("cell", CELLS)
@given(model_dims(), st.booleans(), st.booleans(), st.sampled_from([0.0, 0.3]), seeds)
def test_engines_agree(cell, dims, many_to_one, with_state, dropout, seed):
    """The fast engine and the textbook: the same loss, gradients and final state."""
    fast, ref = (random_model(dims, seed, dropout, engine=e, cell=cell)
                 for e in ("fast", "reference"))
    rng = np.random.default_rng(seed + 1)
    B, T, V = dims["B"], dims["T"], dims["V"]
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = random_state(fast, B, rng) if with_state else None
    (l1, g1, s1), (l2, g2, s2) = (m.loss_and_grads(inputs, targets, state,
                                                   dropout_rng=np.random.default_rng(seed))
                                  for m in (fast, ref))
    assert l1 == pytest.approx(l2, rel=1e-12)
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], rtol=1e-9, atol=1e-12, err_msg=name)
    for a, b in zip(sum(map(tuple, s1), ()), sum(map(tuple, s2), ())):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell, G, biases", [("lstm", 4, ["b"]), ("gru", 3, ["bx", "bh"]),
                                             ("rnn", 1, ["b"])])
def test_cells_params_state_and_init(cell, G, biases):
    V, H = 7, 5
    model = CharRNN(V, cell, H, 2, seed=0)
    assert model.cell == cell and model.config["cell"] == cell
    shapes = param_shapes(model.config)
    assert {k: p.shape for k, p in model.params.items()} == shapes
    assert shapes["Wx0"] == (V, G * H) and shapes["Wx1"] == (H, G * H)
    assert shapes["Wh1"] == (H, G * H) and shapes["Wy"] == (H, V)
    assert sorted(k[:-1] for k in shapes if k.endswith("1")) == sorted(["Wx", "Wh"] + biases)
    for l in range(2):
        Wh = model.params[f"Wh{l}"].astype(np.float64)
        np.testing.assert_allclose(Wh @ Wh.T, np.eye(H), atol=1e-5)    # orthonormal rows
        if cell != "lstm":
            assert all((model.params[f"{b}{l}"] == 0).all() for b in biases)
    state = model.init_state(3)
    assert [len(layer) for layer in state] == [2 if cell == "lstm" else 1] * 2
    assert all(a.shape == (3, H) for layer in state for a in layer)
    again = make_model(model.config, seed=0)
    assert type(again) is (CharLSTM if cell == "lstm" else CharRNN) and again.cell == cell
    assert all((again.params[k] == model.params[k]).all() for k in model.params)


def test_charlstm_is_the_lstm_charrnn():
    a, b = CharLSTM(6, 4, 2, seed=3), CharRNN(6, "lstm", 4, 2, seed=3)
    assert isinstance(a, CharRNN) and a.cell == "lstm"
    assert all((a.params[k] == b.params[k]).all() for k in a.params)
    assert make_model({k: v for k, v in a.config.items() if k != "cell"}).cell == "lstm"


def test_unknown_cell_is_a_user_error():
    with pytest.raises(UserError, match="cell must be one of lstm, gru, rnn, got 'lsmt'"):
        CharRNN(5, "lsmt")
