"""Workspaces: buffers are reused, and reusing them changes no result."""
import numpy as np

from lstm_scratch.model import CharLSTM
from lstm_scratch.engine.lstm import lstm_backward, lstm_forward
from lstm_scratch.engine.workspace import FRESH, Workspace
from lstm_scratch.engine.parallel import ThreadedDataParallel


def test_buffers_are_kept_by_name_shape_and_dtype():
    ws = Workspace()
    a = ws.empty(np, "a", (2, 3), np.float32)
    assert ws.empty(np, "a", (2, 3), np.float32) is a
    assert ws.empty(np, "b", (2, 3), np.float32) is not a
    assert ws.empty(np, "a", (3, 3), np.float32).shape == (3, 3)           # shape changed: new
    assert ws.empty(np, "a", (3, 3), np.float64).dtype == np.float64
    assert ws.child(0) is ws.child(0) and ws.child(0) is not ws.child(1)
    assert FRESH.empty(np, "a", (2,), np.float32) is not FRESH.empty(np, "a", (2,), np.float32)
    assert ws.nbytes() == 2 * 3 * 4 + 3 * 3 * 8


def test_layer_with_workspace_equals_fresh_arrays_and_reuses_memory():
    rng = np.random.default_rng(0)
    T, N, D, H = 5, 3, 4, 6
    x = rng.standard_normal((T, N, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    dh = rng.standard_normal((T, N, H))
    h_ref, _, cache = lstm_forward(x, h0, c0, Wx, Wh, b)
    g_ref = lstm_backward(dh, cache)
    ws = Workspace()
    for _ in range(2):                                      # the second call reuses the first's buffers
        h, _, cache = lstm_forward(x, h0, c0, Wx, Wh, b, ws=ws)
        g = lstm_backward(dh, cache, ws=ws)
        np.testing.assert_array_equal(h, h_ref)
        for k in ("dx", "dh0", "dc0", "dWx", "dWh", "db"):
            np.testing.assert_array_equal(g[k], g_ref[k])
    assert np.shares_memory(h, ws.empty(np, "hs", (T + 1, N, H), h.dtype))
    for k in ("dWx", "dWh", "db"):                          # weight gradients are the caller's
        assert not any(np.shares_memory(g[k], buf) for buf in ws._buffers.values())


def test_model_results_survive_the_next_call():
    # loss_and_grads reuses its workspace; what it returned must not change.
    model = CharLSTM(11, 8, 2, dropout=0.2, dtype="float64", seed=0)
    rng = np.random.default_rng(1)
    batches = [(rng.integers(0, 11, (3, 7)), rng.integers(0, 11, (3, 7))) for _ in range(2)]
    loss, grads, state = model.loss_and_grads(*batches[0], dropout_rng=np.random.default_rng(2))
    kept = {k: v.copy() for k, v in grads.items()}, [(h.copy(), c.copy()) for h, c in state]
    model.loss_and_grads(*batches[1], dropout_rng=np.random.default_rng(3))
    for k, v in grads.items():
        np.testing.assert_array_equal(v, kept[0][k])
    for (h, c), (h1, c1) in zip(state, kept[1]):
        np.testing.assert_array_equal(h, h1), np.testing.assert_array_equal(c, c1)
    again = CharLSTM(11, 8, 2, dropout=0.2, dtype="float64", seed=0)
    loss2, grads2, _ = again.loss_and_grads(*batches[0], dropout_rng=np.random.default_rng(2))
    assert loss2 == loss
    for k in grads:
        np.testing.assert_array_equal(grads2[k], grads[k])


def test_split_batch_workspaces_give_the_same_steps_as_one_worker():
    model = CharLSTM(13, 16, 2, dropout=0.2, dtype="float64", seed=0)
    rng = np.random.default_rng(4)
    runners = ThreadedDataParallel(model, 1), ThreadedDataParallel(model, 3)
    for step in range(3):                                   # repeated: buffers reused
        B = 6 if step < 2 else 5                            # and a batch of another size
        ids, targets = rng.integers(0, 13, (B, 9)), rng.integers(0, 13, (B, 9))
        (l1, g1, s1), (l3, g3, s3) = (r.loss_and_grads(ids, targets, dropout_rng=np.random.default_rng(step))
                                      for r in runners)
        assert abs(l1 - l3) < 1e-12
        for k in g1:
            np.testing.assert_allclose(g3[k], g1[k], rtol=1e-10, atol=1e-13)
        assert abs(runners[0].loss(ids, targets)[0] - runners[1].loss(ids, targets)[0]) < 1e-12
    for r in runners:
        r.close()
