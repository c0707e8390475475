import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import CharLSTM, CharRNN, UserError
from lstm_scratch.interop import load_torch, to_torch, torch_names
from strategies import model_dims, seeds


def test_names_and_shapes():
    model = CharLSTM(7, 5, 2)
    sd = to_torch(model)
    assert list(sd) == torch_names(2)
    assert sd["lstm.weight_ih_l0"].shape == (20, 7)
    assert sd["lstm.weight_ih_l1"].shape == (20, 5)
    assert sd["lstm.weight_hh_l1"].shape == (20, 5)
    assert sd["fc.weight"].shape == (7, 5) and sd["fc.bias"].shape == (7,)
    assert (sd["lstm.bias_hh_l0"] == 0).all()


def test_export_is_a_copy_in_c_order():
    # PyTorch's parameters are C-contiguous and torch's exports own their memory;
    # Wh is column-major inside the model, so Wh.T was a live, C-ordered *view*.
    model = CharLSTM(6, 4, 2)
    for grads in (None, {k: v.copy() for k, v in model.params.items()}):
        sd = to_torch(model, grads)
        before = {k: v.copy() for k, v in sd.items()}
        for k, v in sd.items():
            assert v.flags.c_contiguous and v.flags.owndata, k
            for p in list(model.params.values()) + list((grads or {}).values()):
                assert not np.shares_memory(v, p), k
        for p in model.params.values():
            p += 1.0                                    # training on
        for k in sd:
            np.testing.assert_array_equal(sd[k], before[k], err_msg=k)


def test_round_trip_and_bias_sum():
    a, b = CharLSTM(6, 4, 3, seed=0), CharLSTM(6, 4, 3, seed=1)
    sd = to_torch(a)
    sd["lstm.bias_hh_l2"] = sd["lstm.bias_hh_l2"] + 1.0       # torch splits b in two
    sd["lstm.bias_ih_l2"] = sd["lstm.bias_ih_l2"] - 1.0
    load_torch(b, sd)
    for name in a.params:
        np.testing.assert_allclose(a.params[name], b.params[name], atol=1e-6)


def test_gradients_export_db_to_both_biases():
    model = CharLSTM(4, 3, 1, dtype="float64")
    x = np.zeros((1, 2), int)
    _, grads, _ = model.loss_and_grads(x, x)
    sd = to_torch(model, grads)
    np.testing.assert_array_equal(sd["lstm.bias_ih_l0"], sd["lstm.bias_hh_l0"])


def test_load_errors_leave_model_untouched():
    model = CharLSTM(6, 4, 2)
    before = {k: v.copy() for k, v in model.params.items()}
    sd = to_torch(CharLSTM(6, 4, 2, seed=5))
    sd["fc.weight"] = np.zeros((6, 3))
    with pytest.raises(UserError, match="Wy"):
        load_torch(model, sd)
    del sd["fc.bias"]
    with pytest.raises(UserError, match="fc.bias"):
        load_torch(model, sd)
    for k in before:
        np.testing.assert_array_equal(before[k], model.params[k])


def torch_model(torch, cell, V, H, L, D=0):
    """The PyTorch module of the cell (float64) and its head (fed D features, or V one-hot)."""
    module = dict(lstm=torch.nn.LSTM, gru=torch.nn.GRU,
                  rnn=lambda *a, **k: torch.nn.RNN(*a, nonlinearity="tanh", **k))[cell]
    return (module(D or V, H, num_layers=L, batch_first=True).double(),
            torch.nn.Linear(H, V).double())


def torch_loss_and_grads(torch, model, inputs, targets, state):
    """The same computation in PyTorch: nn.LSTM/GRU/RNN fed one-hot rows, then nn.Linear.
    Returns the loss, the gradients by PyTorch name, and the final state as ours is
    laid out (per layer (h, c) or (h,))."""
    V, H, L, cell = model.vocab_size, model.hidden_size, model.num_layers, model.cell
    D = model.embedding_size
    rnn, fc = torch_model(torch, cell, V, H, L, D)
    sd = {k: torch.tensor(v) for k, v in to_torch(model).items()}
    prefix = cell + "."
    rnn.load_state_dict({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)})
    fc.load_state_dict({k[3:]: v for k, v in sd.items() if k.startswith("fc.")})
    if D:
        embedding = torch.nn.Embedding(V, D).double()
        embedding.load_state_dict({"weight": sd["embedding.weight"]})
        if model.tie_weights:
            fc.weight = embedding.weight                    # one parameter, used twice
        x = embedding(torch.tensor(inputs))
    else:
        x = torch.nn.functional.one_hot(torch.tensor(inputs), V).double()
    stacked = tuple(torch.tensor(np.stack(parts)) for parts in zip(*state))   # (L, B, H) each
    out, final = rnn(x, stacked if cell == "lstm" else stacked[0])           # out (B, T, H)
    final = final if cell == "lstm" else (final,)
    if targets.ndim == 1:
        loss = torch.nn.functional.cross_entropy(fc(out[:, -1]), torch.tensor(targets))
    else:
        logits = fc(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(targets).reshape(-1))
    loss.backward()
    grads = {f"{cell}.{k}": p.grad.numpy() for k, p in rnn.named_parameters()}
    grads.update({f"fc.{k}": p.grad.numpy() for k, p in fc.named_parameters()})
    if D:
        grads["embedding.weight"] = embedding.weight.grad.numpy()
    final_state = [tuple(f[l].detach().numpy() for f in final) for l in range(L)]
    return loss.item(), grads, final_state


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("embedding", ["one-hot", "embedding", "tied"])
@given(model_dims(), st.booleans(), seeds)
def test_matches_torch(cell, embedding, dims, many_to_one, seed):
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    D = {"one-hot": 0, "embedding": 3, "tied": dims["H"]}[embedding]
    model = CharRNN(dims["V"], cell, dims["H"], dims["L"], dropout=0.0, dtype="float64", seed=seed,
                    embedding_size=D, tie_weights=embedding == "tied")
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape) * 0.5
    B, T, V = dims["B"], dims["T"], dims["V"]
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = [tuple(rng.standard_normal(a.shape) for a in layer) for layer in model.init_state(B)]
    loss, grads, final = model.loss_and_grads(inputs, targets, state)
    t_loss, t_grads, t_final = torch_loss_and_grads(torch, model, inputs, targets, state)
    assert loss == pytest.approx(t_loss, rel=1e-12)
    ours = to_torch(model, grads)
    assert sorted(ours) == sorted(t_grads)
    for name, g in t_grads.items():
        np.testing.assert_allclose(ours[name], g, rtol=1e-9, atol=1e-12, err_msg=name)
    for layer, t_layer in zip(final, t_final):
        assert len(layer) == len(t_layer) == (2 if cell == "lstm" else 1)
        for a, b in zip(layer, t_layer):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell, G", [("gru", 3), ("rnn", 1)])
def test_gru_rnn_names_round_trip_and_biases(cell, G):
    a, b = CharRNN(6, cell, 4, 2, seed=0), CharRNN(6, cell, 4, 2, seed=1)
    for p in a.params.values():                 # nonzero biases, so a swap would show
        p[...] = np.random.default_rng(2).standard_normal(p.shape)
    sd = to_torch(a)
    assert list(sd) == torch_names(2, cell)
    assert sd[f"{cell}.weight_ih_l0"].shape == (G * 4, 6)
    assert sd[f"{cell}.weight_hh_l1"].shape == (G * 4, 4)
    if cell == "gru":                            # two biases of its own: one to one
        np.testing.assert_array_equal(sd["gru.bias_ih_l1"], a.params["bx1"])
        np.testing.assert_array_equal(sd["gru.bias_hh_l1"], a.params["bh1"])
    else:                                        # one b: exported whole in bias_ih
        assert (sd["rnn.bias_hh_l0"] == 0).all()
        sd["rnn.bias_hh_l0"] = sd["rnn.bias_hh_l0"] + 1.0
        sd["rnn.bias_ih_l0"] = sd["rnn.bias_ih_l0"] - 1.0
    load_torch(b, sd)
    for name in a.params:
        np.testing.assert_allclose(a.params[name], b.params[name], atol=1e-6, err_msg=name)
    with pytest.raises(UserError, match=f"expected nn.{cell.upper()}.*'{cell}.'"):
        load_torch(b, to_torch(CharLSTM(6, 4, 2)))
    _, grads, _ = a.loss_and_grads(np.zeros((1, 2), int), np.zeros((1, 2), int))
    g = to_torch(a, grads)
    if cell == "rnn":                            # ∂L/∂b_ih = ∂L/∂b_hh = ∂L/∂b
        np.testing.assert_array_equal(g["rnn.bias_ih_l0"], g["rnn.bias_hh_l0"])
    else:
        np.testing.assert_array_equal(g["gru.bias_hh_l0"], grads["bh0"])


@pytest.mark.parametrize("tied", [False, True])
def test_embedding_names_round_trip(tied):
    options = dict(embedding_size=4, tie_weights=tied)
    a, b = CharRNN(6, "lstm", 4, 2, seed=0, **options), CharRNN(6, "lstm", 4, 2, seed=1, **options)
    sd = to_torch(a)
    assert list(sd) == torch_names(2, "lstm", embedding=True)
    assert sd["embedding.weight"].shape == (6, 4) and sd["lstm.weight_ih_l0"].shape == (16, 4)
    load_torch(b, sd)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    with pytest.raises(UserError, match="expected nn.Embedding.V, 4. as 'embedding.'"):
        load_torch(b, to_torch(CharLSTM(6, 4, 2)))
    if tied:
        sd["fc.weight"] = sd["fc.weight"] + 1.0
        with pytest.raises(UserError, match="fc.weight differs from embedding.weight"):
            load_torch(b, sd)


def test_zoneout_has_no_torch_twin():
    from lstm_scratch.interop import to_torch
    model = CharLSTM(5, hidden_size=4, num_layers=1, zoneout_cell=0.3)
    with pytest.raises(UserError, match="zoneout has no PyTorch twin"):
        to_torch(model)
