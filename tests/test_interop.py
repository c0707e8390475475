import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_scratch import CharLSTM, UserError
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


def torch_loss_and_grads(torch, model, inputs, targets, state):
    """The same computation in PyTorch: nn.LSTM fed one-hot rows, then nn.Linear."""
    V, H, L = model.vocab_size, model.hidden_size, model.num_layers
    lstm = torch.nn.LSTM(V, H, num_layers=L, batch_first=True).double()
    fc = torch.nn.Linear(H, V).double()
    sd = {k: torch.tensor(v) for k, v in to_torch(model).items()}
    lstm.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("lstm.")})
    fc.load_state_dict({k[3:]: v for k, v in sd.items() if k.startswith("fc.")})
    x = torch.nn.functional.one_hot(torch.tensor(inputs), V).double()
    h0 = torch.tensor(np.stack([h for h, _ in state]))
    c0 = torch.tensor(np.stack([c for _, c in state]))
    out, _ = lstm(x, (h0, c0))                                  # (B, T, H)
    if targets.ndim == 1:
        loss = torch.nn.functional.cross_entropy(fc(out[:, -1]), torch.tensor(targets))
    else:
        logits = fc(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(targets).reshape(-1))
    loss.backward()
    grads = {f"lstm.{k}": p.grad.numpy() for k, p in lstm.named_parameters()}
    grads.update({f"fc.{k}": p.grad.numpy() for k, p in fc.named_parameters()})
    return loss.item(), grads


@given(model_dims(), st.booleans(), seeds)
def test_matches_torch_lstm(dims, many_to_one, seed):
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    model = CharLSTM(dims["V"], dims["H"], dims["L"], dropout=0.0, dtype="float64", seed=seed)
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape) * 0.5
    B, T, V, H = dims["B"], dims["T"], dims["V"], dims["H"]
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = [(rng.standard_normal((B, H)), rng.standard_normal((B, H))) for _ in range(dims["L"])]
    loss, grads, _ = model.loss_and_grads(inputs, targets, state)
    t_loss, t_grads = torch_loss_and_grads(torch, model, inputs, targets, state)
    assert loss == pytest.approx(t_loss, rel=1e-12)
    ours = to_torch(model, grads)
    for name, g in t_grads.items():
        np.testing.assert_allclose(ours[name], g, rtol=1e-9, atol=1e-12, err_msg=name)
