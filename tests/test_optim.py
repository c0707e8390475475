import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, strategies as st

import lstm_scratch
from lstm_scratch import Adam, AdamW, RMSprop, UserError
from lstm_scratch.engine import fused_cpu
from lstm_scratch.optim import OPTIMIZERS
from strategies import lstm_dims, seeds

# The update paths a test runs: the NumPy one, and the compiled one where Numba is there.
COMPILED = [False, True] if fused_cpu.ENABLED else [False]
needs_numba = pytest.mark.skipif(not fused_cpu.ENABLED, reason="Numba not installed (or "
                                 "LSTM_SCRATCH_NUMBA=0): the NumPy update is the only one")


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


def test_public_names_and_state_names():
    assert lstm_scratch.Adam is Adam and lstm_scratch.AdamW is AdamW
    assert OPTIMIZERS == {"rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}
    assert all(cls.KIND == kind for kind, cls in OPTIMIZERS.items())
    assert RMSprop.SLOTS == ("v",) and Adam.SLOTS == AdamW.SLOTS == ("m", "v")
    assert set(RMSprop.SCALARS) == {"lr", "rho", "eps", "steps", "clip_norm", "weight_decay"}
    assert Adam.SCALARS == AdamW.SCALARS == ("lr", "beta1", "beta2", "eps", "weight_decay",
                                             "steps", "clip_norm")
    assert AdamW({"w": np.zeros(1)}).weight_decay == 1e-2
    assert Adam({"w": np.zeros(1)}).weight_decay == 0.0


def torch_twin(torch, cls, tensors, lr, weight_decay, eps):
    """The torch.optim optimizer ``cls`` stands for, single-tensor (foreach=False)."""
    common = dict(lr=lr, eps=eps, weight_decay=weight_decay, foreach=False)
    if cls is RMSprop:
        return torch.optim.RMSprop(tensors, alpha=0.8, **common)
    return getattr(torch.optim, cls.__name__)(tensors, betas=(0.8, 0.95), **common)


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("clip_norm", [0.0, 1.0])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("cls", [RMSprop, Adam, AdamW])
def test_matches_torch_step_for_step(monkeypatch, cls, weight_decay, clip_norm, compiled):
    # Within 1e-12, relative to each array's largest entry (an entry that cancels
    # to near 0 has no relative accuracy to speak of, in torch either): the two
    # differ only in rounding (torch's lerp for m, the order it sums the norm in, an
    # FMA or not), a few float64 ulps (1e-16) each step, and 20 steps add up to
    # 1e-14 or so. A wrong term (a bias correction, the decay) errs by 1e-3 or more.
    # torch's clip_grad_norm_ scales by clip / (‖g‖ + 1e-6), ours by clip / ‖g‖:
    # clipped steps have ‖g‖ > 1e7, where the two differ by < 1e-13; the rest are
    # small (‖g‖ < 1), to be left as they are, and to let the decay show.
    torch = pytest.importorskip("torch", reason="torch not installed: comparison skipped")
    monkeypatch.setattr(fused_cpu, "ENABLED", compiled)
    rng = np.random.default_rng(7)
    start = {"W": rng.standard_normal((4, 3)), "U": np.asfortranarray(rng.standard_normal((3, 5))),
             "b": rng.standard_normal(5), "s": rng.standard_normal(1)}    # U: not C-contiguous
    ours = {k: v.copy(order="K") for k, v in start.items()}
    hyper = dict(lr=0.01, eps=1e-7, weight_decay=weight_decay)
    opt = (cls(ours, rho=0.8, clip_norm=clip_norm, **hyper) if cls is RMSprop else
           cls(ours, betas=(0.8, 0.95), clip_norm=clip_norm, **hyper))
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    topt = torch_twin(torch, cls, list(tensors.values()), **hyper)
    for _ in range(20):
        big = clip_norm > 0 and rng.random() < 0.6
        grads = {k: rng.standard_normal(v.shape) * (1e7 if big else 0.1) for k, v in start.items()}
        opt.step(grads)
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k])
        if clip_norm:
            torch.nn.utils.clip_grad_norm_(list(tensors.values()), clip_norm)
        topt.step()
    for k, t in tensors.items():
        theirs = {"v": topt.state[t]["square_avg" if cls is RMSprop else "exp_avg_sq"]}
        if cls is not RMSprop:
            theirs["m"] = topt.state[t]["exp_avg"]
        for name, a in [("p", ours[k])] + [(s, getattr(opt, s)[k]) for s in cls.SLOTS]:
            expected = (t if name == "p" else theirs[name]).detach().numpy()
            np.testing.assert_allclose(a, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max(),
                                       err_msg=f"{name} of {k}")


def adam_state(dims, seed, dtype):
    """Parameters in an LSTM layer's shapes, their gradients and an Adam state in
    which nothing cancels: per entry, p, g and m share a sign, v >= m², and
    |p| >= 1 is far above the step (at most 4.2 lr: below). Each result is then a
    short sum of same-signed terms, and its rounding error a few ulps of itself."""
    D, H, N = dims["D"], dims["H"], dims["N"]
    rng = np.random.default_rng(seed)
    shapes = {"Wx": (D, 4 * H), "Wh": (H, 4 * H), "b": (4 * H,), "h0": (N, H)}
    scale = 10.0 ** rng.uniform(-3, 3)              # of g and m (v: its square)
    params, grads, state = {}, {}, {}
    for k, shape in shapes.items():
        sign = rng.choice([-1.0, 1.0], shape)
        params[k] = (sign * rng.uniform(1, 2, shape)).astype(dtype)
        grads[k] = (sign * scale * rng.uniform(0, 3, shape)).astype(dtype)
        m = sign * scale * rng.uniform(0, 1, shape)
        state[f"m.{k}"] = m.astype(dtype)
        state[f"v.{k}"] = (m * m * rng.uniform(1, 4, shape)).astype(dtype)
    norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads.values()))
    # |m_new| / √v_new <= β1/√β2 + (1-β1)/√(1-β2) < 4.2 (v >= m²), and
    # lr √(1-β2^t) / (1-β1^t) <= lr for every t: the step is at most 4.2 lr.
    state.update(lr=1e-2 * rng.uniform(0.1, 1), beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=rng.choice([0.0, rng.uniform(0, 0.1)]),
                 steps=int(rng.integers(0, 2000)),
                 clip_norm=rng.choice([0.0, norm * rng.uniform(0.2, 2)]))
    return params, grads, state


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls", [Adam, AdamW])
@given(dims=lstm_dims(), seed=seeds)
def test_compiled_adam_update_equals_numpy(cls, dtype, dims, seed):
    # float32: within 6, 8 and 14 ulps for p, m and v. Either path rounds each
    # operation once (relative error <= u = 2^-24, and an ulp of x is >= u |x|),
    # fastmath's fused multiply-adds at other places than NumPy's: g = s g + λ p
    # carries <= 2u, m = β1 m + (1-β1) g <= 4u, v = β2 v + (1-β2) g² <= 7u (g²
    # doubles g's error), p - step <= 3u; two paths differ by twice that. Measured
    # over 20000 draws: 1, 3 and 4 ulps. float64: 1e-12 relative, as elsewhere.
    params, grads, state = adam_state(dims, seed, dtype)
    results = []
    for enabled in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fused_cpu, "ENABLED", enabled)
            assert (fused_cpu.adam_kernel(np.dtype(dtype)) is not None) == enabled
            p = {k: v.copy() for k, v in params.items()}
            opt = cls(p)
            opt.load_state_dict(state)
            opt.step(grads)
            results.append(dict(p=p, m=opt.m, v=opt.v))
    numpy_path, compiled = results
    for name, ulps in (("p", 6), ("m", 8), ("v", 14)):
        for k in params:
            a, b = compiled[name][k], numpy_path[name][k]
            assert a.dtype == b.dtype == dtype
            if dtype == np.float64:
                np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=f"{name} of {k}")
            else:
                err = np.abs(a.astype(np.float64) - b) / np.spacing(np.maximum(abs(a), abs(b)))
                assert err.max() <= ulps, f"{name} of {k}: {err.max()} ulps"


def some_params(rng, dtype=np.float64):
    """A parameter big enough for three chunks of the update, and a small one."""
    return {"W": rng.standard_normal((700, 1000)).astype(dtype),
            "b": rng.standard_normal(7).astype(dtype)}


def copied(state):
    """A state dict whose arrays are copies (a NumPy optimizer's are its live arrays)."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}


def run(cls, params, grads, **kwargs):
    opt = cls(params, **kwargs)
    for g in grads:
        opt.step(g)
    return opt


def random_grads(rng, params, steps):
    """``steps`` float32 gradients for ``params``, one dict a step."""
    return [{k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
            for _ in range(steps)]


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("cls", [RMSprop, Adam, AdamW])
def test_state_dict_round_trip_continues_bit_exactly(monkeypatch, cls, compiled):
    monkeypatch.setattr(fused_cpu, "ENABLED", compiled)
    rng = np.random.default_rng(3)
    start = some_params(rng, np.float32)
    grads = random_grads(rng, start, 6)
    kwargs = dict(lr=2e-3, clip_norm=500.0, weight_decay=0.05)
    whole = {k: v.copy() for k, v in start.items()}
    original = run(cls, whole, grads, **kwargs)
    half = {k: v.copy() for k, v in start.items()}
    state = run(cls, half, grads[:3], **kwargs).state_dict()
    assert set(state) == {f"{s}.{k}" for s in cls.SLOTS for k in start} | set(cls.SCALARS)
    assert all(isinstance(v, np.ndarray) if "." in key else type(v) in (int, float)
               for key, v in state.items())                        # numbers only: an .npz
    state = copied(state)
    resumed = {k: v.copy() for k, v in half.items()}
    fresh = cls(resumed, lr=0.5)                                 # everything comes from the state
    fresh.load_state_dict(state)
    assert fresh.state_dict().keys() == state.keys() and fresh.steps == 3
    for g in grads[3:]:
        fresh.step(g)
    for k in start:
        np.testing.assert_array_equal(resumed[k], whole[k])
        for slot in cls.SLOTS:
            np.testing.assert_array_equal(getattr(fresh, slot)[k], getattr(original, slot)[k])
    assert fresh.state_dict().keys() == original.state_dict().keys()
    assert all(fresh.state_dict()[k] == v for k, v in original.state_dict().items() if "." not in k)


def test_rmsprop_keeps_its_keys_and_reads_states_without_weight_decay():
    opt = RMSprop({"w": np.zeros(2)}, weight_decay=0.1)
    state = opt.state_dict()
    assert set(state) == {"v.w", "lr", "rho", "eps", "steps", "clip_norm", "weight_decay"}
    del state["weight_decay"]                                    # as older checkpoints hold it
    opt.load_state_dict(state)
    assert opt.weight_decay == 0.0                               # what it was then: no decay


@pytest.mark.parametrize("cls", [RMSprop, Adam, AdamW])
def test_load_state_dict_checks_before_writing(cls):
    params = {"w": np.ones(3)}
    opt = run(cls, params, [{"w": np.array([1.0, -2.0, 3.0])}], lr=0.1)
    before = copied(opt.state_dict())
    bad = dict(before, lr=9.0, **{f"{slot}.w": np.full(3, 9.0) for slot in cls.SLOTS})
    bad[f"{cls.SLOTS[-1]}.w"] = np.zeros(4)                      # the last array checked
    with pytest.raises(UserError, match=r"has shape \(4,\), expected \(3,\)"):
        opt.load_state_dict(bad)
    other = (Adam if cls is RMSprop else RMSprop)({"w": np.ones(3)}).state_dict()
    with pytest.raises(UserError, match=f"optimizer state has no .*expected {cls.KIND}'s"):
        opt.load_state_dict(other)                               # another optimizer's state
    for k, v in opt.state_dict().items():                        # nothing written
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("cls", [RMSprop, Adam, AdamW])
def test_non_finite_gradient_is_refused_with_nothing_touched(cls, bad):
    params = {"w": np.ones(3), "b": np.ones(2)}
    opt = run(cls, params, [{"w": np.array([1.0, 2.0, 3.0]), "b": np.ones(2)}], weight_decay=0.1)
    before = copied(opt.state_dict())
    w, b = params["w"].copy(), params["b"].copy()
    with pytest.raises(FloatingPointError):
        opt.step({"w": np.array([1.0, 2.0, 3.0]), "b": np.array([1.0, bad])})
    np.testing.assert_array_equal(params["w"], w)
    np.testing.assert_array_equal(params["b"], b)
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("cls, kwargs", [
    (cls, kwargs) for cls in (Adam, AdamW) for kwargs in (
        dict(lr=0), dict(lr=-1e-3), dict(lr=np.nan), dict(betas=(1.0, 0.999)),
        dict(betas=(0.9, 1.0)), dict(betas=(-0.1, 0.999)), dict(betas=(0.9, np.nan)),
        dict(eps=0), dict(weight_decay=-1e-2), dict(clip_norm=-1))
] + [(RMSprop, dict(weight_decay=-1e-2)), (RMSprop, dict(lr=np.nan))])
def test_bad_arguments_are_one_line_user_errors(cls, kwargs):
    with pytest.raises(UserError) as exc:
        cls({"w": np.zeros(1)}, **kwargs)
    assert "\n" not in str(exc.value) and next(iter(kwargs)) in str(exc.value)


@pytest.mark.parametrize("compiled", COMPILED)
def test_adam_without_decay_is_adamw_without_decay(monkeypatch, compiled):
    monkeypatch.setattr(fused_cpu, "ENABLED", compiled)
    rng = np.random.default_rng(4)
    start = some_params(rng)
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(4)]
    results = []
    for cls in (Adam, AdamW):
        params = {k: v.copy() for k, v in start.items()}
        opt = run(cls, params, grads, lr=0.01, weight_decay=0.0, clip_norm=800.0)
        results.append((params, opt.m, opt.v))
    for k in start:
        for ours, theirs in zip(*results):
            np.testing.assert_array_equal(ours[k], theirs[k])


@pytest.mark.parametrize("compiled", COMPILED)
@pytest.mark.parametrize("cls", [RMSprop, Adam, AdamW])
def test_parallel_map_gives_the_same_steps(monkeypatch, cls, compiled):
    monkeypatch.setattr(fused_cpu, "ENABLED", compiled)
    rng = np.random.default_rng(5)
    # Four chunks a step on four threads, six steps: a race between chunks (a
    # scratch buffer they share, say) shows in nearly every run.
    start = some_params(rng, np.float32)
    start["U"] = rng.standard_normal((1000, 1000)).astype(np.float32)
    grads = random_grads(rng, start, 6)
    results = []
    with ThreadPoolExecutor(4) as pool:
        for map_fn in (None, pool.map):
            params = {k: v.copy() for k, v in start.items()}
            opt = run(cls, params, grads, clip_norm=500.0, weight_decay=0.05, map_fn=map_fn)
            results.append([params] + [getattr(opt, s) for s in cls.SLOTS])
    for serial, parallel in zip(*results):
        for k in start:
            np.testing.assert_array_equal(parallel[k], serial[k])


@pytest.mark.parametrize("cls", [RMSprop, Adam, AdamW])
def test_device_arrays_take_the_numpy_style_path(monkeypatch, cls):
    # On the fake CuPy of tests/fakecupy.py (arrays that are not NumPy's, as CuPy's),
    # Numba or not, the steps are the host's NumPy-path ones.
    fakecupy = pytest.importorskip("fakecupy")
    cupy, _ = fakecupy.modules()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    rng = np.random.default_rng(6)
    start = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4),
             "U": np.asfortranarray(rng.standard_normal((2, 3)))}   # U: the whole-array path
    grads = [{k: rng.standard_normal(v.shape) for k, v in start.items()} for _ in range(3)]
    device = {k: cupy.asarray(v) for k, v in start.items()}
    opt = run(cls, device, [{k: cupy.asarray(v) for k, v in g.items()} for g in grads],
              clip_norm=1.0, weight_decay=0.1)
    monkeypatch.setattr(fused_cpu, "ENABLED", False)
    host = {k: v.copy() for k, v in start.items()}
    run(cls, host, grads, clip_norm=1.0, weight_decay=0.1)
    for k in start:
        assert not isinstance(device[k], np.ndarray)
        np.testing.assert_array_equal(cupy.asnumpy(device[k]), host[k])
    assert all(isinstance(v, np.ndarray) for k, v in opt.state_dict().items() if "." in k)


@pytest.mark.parametrize("key, value", [("steps", -1), ("steps", 1.5), ("beta1", 1.0),
                                        ("lr", float("nan")), ("eps", 0.0),
                                        ("weight_decay", -1.0)])
def test_saved_scalars_are_checked(key, value):
    """A damaged checkpoint's optimizer state: a one-line error, nothing written (a
    step count of -1 or a beta of 1 would divide by zero in the bias correction)."""
    from lstm_scratch import AdamW
    params = {"w": np.ones(3)}
    good = AdamW(params).state_dict()
    opt = AdamW({"w": np.ones(3)})
    before = {k: v.copy() for k, v in opt.m.items()}
    with pytest.raises(UserError, match=f"optimizer state {key} is "):
        opt.load_state_dict(dict(good, **{key: value}))
    assert opt.steps == 0 and all(np.array_equal(opt.m[k], before[k]) for k in before)
