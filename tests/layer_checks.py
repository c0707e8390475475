"""Checks every recurrent layer must pass, written once for all cells.

The per-cell test files (test_gru, test_rnn, test_lstm, test_engine_gru,
test_engine_rnn) call these with their cell's functions and a layer dict from
their own ``random_layer`` (x, the initial state, then the parameters). A
layer is

    forward(x, *state0, **params) -> (h, stateT, cache)
    backward(dh, cache, *dstateT) -> dict of "d" + name for every input

where ``state`` names the carried state: ("h",) for the GRU and RNN (stateT is
hT), ("h", "c") for the LSTM (stateT is the tuple (hT, cT)). Upstream
gradients are drawn from the caller's ``rng``, after the layer.
"""
import numpy as np

from gradcheck import check_grads


def _states(stateT):
    return stateT if isinstance(stateT, tuple) else (stateT,)


def _upstream(rng, layer, state):
    """dh (T, N, H) and one (N, H) upstream gradient per carried state, float64."""
    T, N = layer["x"].shape[:2]
    H = layer["h0"].shape[1]
    return rng.standard_normal((T, N, H)), [rng.standard_normal((N, H)) for _ in state]


def check_step_backward_gradcheck(step_forward, step_backward, layer, rng):
    """One step from (x_0, h0) of a cell whose step carries h only; the step
    backward returns its gradients in the order of the step's arguments."""
    params = {k: v for k, v in layer.items() if k not in ("x", "h0")}
    step = dict(x=layer["x"][0], h_prev=layer["h0"], **params)
    dh = rng.standard_normal(layer["h0"].shape)
    f = lambda: (step_forward(**step)[0] * dh).sum()
    grads = step_backward(dh, step_forward(**step)[1])
    check_grads(f, step, dict(zip(step, grads)))


def check_backward_gradcheck(forward, backward, layer, rng, state=("h",)):
    """Every input and parameter, with a random upstream for h and for each final state."""
    dh, dstateT = _upstream(rng, layer, state)

    def f():
        h, stateT, _ = forward(**layer)
        return (h * dh).sum() + sum((s * ds).sum() for s, ds in zip(_states(stateT), dstateT))

    g = backward(dh, forward(**layer)[2], *dstateT)
    check_grads(f, layer, {name: g["d" + name] for name in layer})


def check_truncated_bptt_chunks_compose(forward, backward, layer, rng, state=("h",)):
    """Two chunks, state and gradients handed across, equal one long sequence (T >= 2)."""
    x = layer.pop("x")
    state0 = [layer.pop(s + "0") for s in state]
    T, N, H = x.shape[0], x.shape[1], state0[0].shape[1]
    dh = rng.standard_normal((T, N, H))
    k = T // 2
    h_full, _, cache_full = forward(x, *state0, **layer)
    h_a, state_k, cache_a = forward(x[:k], *state0, **layer)
    h_b, _, cache_b = forward(x[k:], *_states(state_k), **layer)
    np.testing.assert_allclose(np.concatenate([h_a, h_b]), h_full, rtol=1e-12, atol=1e-14)
    g_full, g_b = backward(dh, cache_full), backward(dh[k:], cache_b)
    g_a = backward(dh[:k], cache_a, **{f"d{s}T": g_b[f"d{s}0"] for s in state})
    for name in layer:                                  # the parameters
        np.testing.assert_allclose(g_a["d" + name] + g_b["d" + name], g_full["d" + name],
                                   rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([g_a["dx"], g_b["dx"]]), g_full["dx"],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_a["dh0"], g_full["dh0"], rtol=1e-10, atol=1e-12)


def textbook_cache_arrays(cache):
    """Every array the textbook layers cache: their per-step caches."""
    return [a for step in cache.steps for a in step]


def check_backward_mutates_nothing(forward, backward, layer, rng, state=("h",),
                                   cache_arrays=textbook_cache_arrays):
    """backward changes neither its arguments, the layer, nor the cache arrays
    (``cache_arrays(cache)``), and returns no view of its upstream state gradients."""
    T, N = layer["x"].shape[:2]
    H = layer["h0"].shape[1]
    dh, *dstateT = (rng.standard_normal(s) for s in [(T, N, H)] + [(N, H)] * len(state))
    _, _, cache = forward(**layer)
    arrays = (dh, *dstateT, *layer.values(), *(a for a in cache_arrays(cache) if a is not None))
    before = [a.copy() for a in arrays]
    g = backward(dh, cache, *dstateT)
    for a, b in zip(before, arrays):
        np.testing.assert_array_equal(a, b)
    assert not any(np.shares_memory(v, ds) for v in g.values() if v is not None for ds in dstateT)


def check_float32_stays_float32(forward, backward, layer, state=("h",)):
    """float32 in, float32 out: h, every final state and every gradient (dx is
    None only for int ids)."""
    h, stateT, cache = forward(**layer)
    assert h.dtype == np.float32 and all(s.dtype == np.float32 for s in _states(stateT))
    g = backward(np.ones_like(h), cache, *(np.ones_like(s) for s in _states(stateT)))
    ids = layer["x"].dtype.kind in "iu"
    assert all(v.dtype == np.float32 for k, v in g.items() if not (ids and k == "dx"))
    assert not ids or g["dx"] is None


def check_saturated_stays_finite(forward, backward, layer, scaled):
    """The parameters named in ``scaled`` times 1e4 saturate the gates: no inf or nan."""
    for name in scaled:
        layer[name] *= 1e4
    h, _, cache = forward(**layer)
    g = backward(np.ones_like(h), cache)
    assert np.isfinite(h).all() and all(np.isfinite(v).all() for v in g.values())


def check_int_ids_are_one_hot_rows(forward, backward, layer, rng):
    """(T, N) int ids give what their one-hot (T, N, D) rows give; dx is then None."""
    T, N, D = layer["x"].shape
    H = layer["h0"].shape[1]
    ids = rng.integers(0, D, (T, N))
    onehot = np.eye(D)[ids]                                             # (T, N, D)
    dh = rng.standard_normal((T, N, H))
    outs = [forward(**dict(layer, x=x)) for x in (ids, onehot)]
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    g_ids, g_hot = (backward(dh, out[2]) for out in outs)
    assert g_ids["dx"] is None and g_hot["dx"].shape == onehot.shape
    for name in layer:
        if name != "x":
            np.testing.assert_allclose(g_ids["d" + name], g_hot["d" + name], rtol=1e-14, atol=1e-14)


def check_matches_torch(torch, module, forward, backward, layer, biases, dh, dhT, bias_grads):
    """Our layer against a float64 one-layer ``torch.nn.GRU``/``RNN`` ``module``:
    weight_ih = Wxᵀ, weight_hh = Whᵀ, (bias_ih, bias_hh) = ``biases``; outputs,
    final state and every gradient to 1e-10. ``bias_grads`` names our gradient
    for each of torch's two biases."""
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(layer["Wx"].T))
        module.weight_hh_l0.copy_(torch.tensor(layer["Wh"].T))
        module.bias_ih_l0.copy_(torch.tensor(biases[0]))
        module.bias_hh_l0.copy_(torch.tensor(biases[1]))
    x = torch.tensor(layer["x"], requires_grad=True)
    h0 = torch.tensor(layer["h0"][None], requires_grad=True)       # (layers, N, H)
    out, hT = module(x, h0)
    ((out * torch.tensor(dh)).sum() + (hT[0] * torch.tensor(dhT)).sum()).backward()

    h, our_hT, cache = forward(**layer)
    g = backward(dh, cache, dhT)
    close = lambda ours, theirs: np.testing.assert_allclose(ours, theirs.detach().numpy(),
                                                           rtol=1e-10, atol=1e-12)
    close(h, out)
    close(our_hT, hT[0])
    close(g["dx"], x.grad)
    close(g["dh0"], h0.grad[0])
    close(g["dWx"], module.weight_ih_l0.grad.T)
    close(g["dWh"], module.weight_hh_l0.grad.T)
    close(g[bias_grads[0]], module.bias_ih_l0.grad)
    close(g[bias_grads[1]], module.bias_hh_l0.grad)


# The engine's fast layers against the textbook's: ``textbook`` and ``fast`` are
# (forward, backward) pairs; the fast pair also takes fused= and ws=.

def textbook_and_fast(textbook, fast, layer, dh, dhT, fused=True, ws=None):
    """(textbook, fast): each a dict of h, hT and the gradients."""
    outs = []
    fast_extra = dict(fused=fused, **({} if ws is None else dict(ws=ws)))
    for (forward, backward), extra in ((textbook, {}), (fast, fast_extra)):
        h, hT, cache = forward(**layer, **extra)
        g = backward(dh, cache, dhT, **extra)
        outs.append(dict(h=h.copy(), hT=np.array(_states(hT)), **g))   # (hT,) or (hT, cT), copied
    return outs


def check_fast_equals_textbook(textbook, fast, layer, rng, rtol, atol, ws=None):
    """Every output and gradient within rtol/atol, in the layer's dtype; the
    upstream gradients are drawn in that dtype."""
    dtype = layer["Wh"].dtype
    dh, (dhT,) = _upstream(rng, layer, ("h",))
    ref, ours = textbook_and_fast(textbook, fast, layer, dh.astype(dtype), dhT.astype(dtype), ws=ws)
    for k in ref:
        assert ours[k].dtype == dtype, k
        np.testing.assert_allclose(ours[k], ref[k], rtol=rtol, atol=atol, err_msg=k)


def check_fast_ids_equal_dense_onehot(textbook, fast, layer, rng, fused):
    """The fast layer on (T, N) int ids equals the textbook on their one-hot rows; dx is None."""
    T, N, V = layer["x"].shape
    H = layer["h0"].shape[1]
    ids = rng.integers(0, V, (T, N))
    layer["x"] = np.eye(V)[ids]
    dh = rng.standard_normal((T, N, H))
    ref, _ = textbook_and_fast(textbook, fast, layer, dh, None)
    layer["x"] = ids
    forward, backward = fast
    h, hT, cache = forward(**layer, fused=fused)
    g = backward(dh, cache, fused=fused)
    assert g["dx"] is None
    np.testing.assert_allclose(h, ref["h"], rtol=1e-10, atol=1e-13)
    for name in layer:
        if name != "x":
            k = "d" + name
            np.testing.assert_allclose(g[k], ref[k], rtol=1e-10, atol=1e-13, err_msg=k)


def check_workspace_reused_with_carried_state(textbook_forward, fast_forward, layer, ws):
    """Chunk 2 starts from chunk 1's h_T, a view into the very buffer it reuses."""
    x, h0 = layer.pop("x"), layer.pop("h0")
    T = x.shape[0]
    _, hT, _ = fast_forward(x[:T // 2], h0, **layer, ws=ws)
    h, _, _ = fast_forward(x[T // 2:], hT, **layer, ws=ws)
    h_ref, _, _ = textbook_forward(x, h0, **layer)
    np.testing.assert_allclose(h, h_ref[T // 2:], rtol=1e-10, atol=1e-13)


def check_fast_skips_zero_products(textbook, fast, layer, rng, zero_state, fused):
    """The products the fast layer skips change nothing: from h_0 = 0 it leaves out
    h_0 Wh and the rows of h_0 in dWh; with want_dh0=False, the last step's dh_0
    product (dh0 is then None). Every other output and gradient still equals the
    textbook's, with or without the skips, in float64.

    zero_state : "none", "h" (h_0 = 0, c_0 as drawn: an LSTM's c_0 still counts)
        or "both"
    """
    for k in {"none": (), "h": ("h0",), "both": ("h0", "c0")}[zero_state]:
        if k in layer:
            layer[k] = np.zeros_like(layer[k])
    T, N = layer["x"].shape[:2]
    dh = rng.standard_normal((T, N, layer["h0"].shape[1]))
    ref, ours = textbook_and_fast(textbook, fast, layer, dh, None, fused=fused)
    forward, backward = fast
    _, _, cache = forward(**layer, fused=fused)
    without_dh0 = backward(dh, cache, fused=fused, want_dh0=False)
    assert without_dh0["dh0"] is None
    for k in ref:
        if ref[k] is None:                                  # dx, for int ids
            assert ours[k] is None and without_dh0[k] is None, k
            continue
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-10, atol=1e-13, err_msg=k)
        if k in without_dh0 and k != "dh0":
            np.testing.assert_allclose(without_dh0[k], ref[k], rtol=1e-10, atol=1e-13, err_msg=k)


def check_fast_skip_is_taken(fast, layer):
    """From h_0 = 0 the fast layer does not multiply by Wh at step 0, and with
    want_dh0=False not by Whᵀ at the last backward step: with Wh all NaN and T = 1,
    everything it returns is finite (the textbook's 0 · NaN would be NaN)."""
    layer = dict(layer, x=layer["x"][:1], h0=np.zeros_like(layer["h0"]),
                 Wh=np.full_like(layer["Wh"], np.nan))
    forward, backward = fast
    h, final, cache = forward(**layer)
    assert np.isfinite(h).all() and all(np.isfinite(a).all() for a in _states(final))
    g = backward(np.ones_like(h), cache, want_dh0=False)
    assert g["dh0"] is None
    for k, v in g.items():
        if v is not None:
            assert np.isfinite(v).all(), k
    assert not g["dWh"].any()                               # only h_0's rows, all skipped
