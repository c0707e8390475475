import numpy as np
import pytest

from lstm_scratch import RMSprop, UserError


def test_two_steps_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    opt = RMSprop(p, lr=0.1, rho=0.9, eps=1e-7)
    g = {"w": np.array([0.5, 2.0])}
    opt.step(g)
    v1 = 0.1 * np.array([0.25, 4.0])
    w1 = np.array([1.0, -2.0]) - 0.1 * g["w"] / (np.sqrt(v1) + 1e-7)
    np.testing.assert_allclose(p["w"], w1, rtol=1e-14)
    opt.step(g)
    v2 = 0.9 * v1 + 0.1 * np.array([0.25, 4.0])
    np.testing.assert_allclose(p["w"], w1 - 0.1 * g["w"] / (np.sqrt(v2) + 1e-7), rtol=1e-14)
    np.testing.assert_array_equal(g["w"], [0.5, 2.0])          # grads untouched


def test_clipping_scales_by_global_norm():
    p = {"a": np.zeros(1), "b": np.zeros(1)}
    g = {"a": np.array([3.0]), "b": np.array([4.0])}           # global norm 5
    opt = RMSprop(p, lr=1.0, rho=0.0, eps=0.0 + 1e-300, clip_norm=1.0)
    assert opt.step(g) == pytest.approx(5.0)
    # rho = 0: v = (g/5)^2, so each step is -sign(g) whatever the scale; check v instead
    np.testing.assert_allclose(opt.v["a"], [(3 / 5) ** 2])
    np.testing.assert_allclose(opt.v["b"], [(4 / 5) ** 2])
    opt2 = RMSprop({"a": np.zeros(1)}, clip_norm=10.0, rho=0.0)
    opt2.step({"a": np.array([3.0])})                          # under the limit: unscaled
    np.testing.assert_allclose(opt2.v["a"], [9.0])


def test_state_dict_resumes_exactly():
    rng = np.random.default_rng(0)
    grads = [{"w": rng.standard_normal(4).astype(np.float32)} for _ in range(6)]
    p1 = {"w": np.ones(4, np.float32)}
    o1 = RMSprop(p1, clip_norm=1.0)
    for g in grads:
        o1.step(g)
    p2 = {"w": np.ones(4, np.float32)}
    o2 = RMSprop(p2, clip_norm=1.0)
    for g in grads[:3]:
        o2.step(g)
    saved = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in o2.state_dict().items()}
    p3 = {"w": p2["w"].copy()}
    o3 = RMSprop(p3, lr=0.5)
    o3.load_state_dict(saved)
    assert o3.clip_norm == 1.0 and o3.lr == 1e-3 and o3.steps == 3
    for g in grads[3:]:
        o3.step(g)
    np.testing.assert_array_equal(p3["w"], p1["w"])
    assert p3["w"].dtype == np.float32


def test_no_clipping_is_spelled_0_everywhere():
    g = {"w": np.array([30.0, 40.0])}
    for off in (0, 0.0, None):                                   # None: read as 0
        opt = RMSprop({"w": np.zeros(2)}, rho=0.0, clip_norm=off)
        opt.step(g)
        np.testing.assert_allclose(opt.v["w"], [900.0, 1600.0])     # unscaled
        assert opt.clip_norm == 0.0 and opt.state_dict()["clip_norm"] == 0.0
    old = dict(RMSprop({"w": np.zeros(2)}, clip_norm=2.0).state_dict(), clip_norm=-1.0)
    opt = RMSprop({"w": np.zeros(2)}, clip_norm=2.0)
    opt.load_state_dict(old)                                     # older files: -1.0 = off
    assert opt.clip_norm == 0.0


@pytest.mark.parametrize("kwargs", [dict(lr=0), dict(rho=1.0), dict(eps=-1), dict(clip_norm=-1)])
def test_bad_hyperparameters(kwargs):
    with pytest.raises(UserError):
        RMSprop({"w": np.zeros(1)}, **kwargs)


def test_matches_torch_rmsprop():
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal(5)
    ours = {"w": w0.copy()}
    opt = RMSprop(ours, lr=0.01, rho=0.9, eps=1e-7)
    tw = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.RMSprop([tw], lr=0.01, alpha=0.9, eps=1e-7)
    for _ in range(5):
        g = rng.standard_normal(5)
        opt.step({"w": g})
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(ours["w"], tw.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("order, grad_order", [("C", "C"), ("F", "F"), ("F", "C")])
def test_float32_update_compiled_or_not_is_the_same(monkeypatch, order, grad_order):
    # With Numba, float32 row-major parameters and gradients (the model's) take the
    # one-pass kernel of engine/fused_cpu.py over flat views; others, NumPy's nine
    # passes over the whole array at once. All give the same steps.
    from lstm_scratch.engine import fused_cpu
    rng = np.random.default_rng(0)
    start = {"W": np.asarray(rng.standard_normal((600, 700)), np.float32, order=order),
             "b": rng.standard_normal(700).astype(np.float32)}
    grads = [{k: np.asarray(rng.standard_normal(v.shape) * 3, np.float32, order=grad_order)
              for k, v in start.items()} for _ in range(3)]
    results = {}
    for enabled in (False, True):
        monkeypatch.setattr(fused_cpu, "ENABLED", enabled)
        params = {k: v.copy(order="K") for k, v in start.items()}
        opt = RMSprop(params, lr=1e-2, clip_norm=50.0)
        for g in grads:
            opt.step(g)
        results[enabled] = params, opt.v
    exact = {k: v.astype(np.float64) for k, v in start.items()}
    v_exact = {k: np.zeros_like(v) for k, v in exact.items()}
    for g in grads:                                         # the same three steps in float64
        norm = np.sqrt(sum((g[k].astype(np.float64) ** 2).sum() for k in g))
        for k in exact:
            gk = g[k] * min(1.0, 50.0 / norm)
            v_exact[k] = 0.9 * v_exact[k] + 0.1 * gk * gk
            exact[k] -= 1e-2 * gk / (np.sqrt(v_exact[k]) + 1e-7)
    for enabled in (False, True):
        for k in start:
            np.testing.assert_allclose(results[enabled][0][k], exact[k], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(results[enabled][1][k], v_exact[k], rtol=1e-5, atol=1e-7)
