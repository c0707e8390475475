"""The one gradient checker: central differences in float64.

    numeric ∂f/∂x[k] = (8 [f(x + ε e_k) - f(x - ε e_k)] - [f(x + 2ε e_k) - f(x - 2ε e_k)]) / 12ε

with ε = 1e-3 and f a scalar function of arrays that it reads in place. This
fourth-order central difference has truncation error O(ε⁴) ~ 1e-13 and
round-off ~ 1e-16 |f| / ε ~ 1e-13: far better than the two-point
(f(x+ε) - f(x-ε)) / 2ε. The relative error of an analytic gradient a against
the numeric n is

    max_k |a_k - n_k| / max(max_k |a_k|, max_k |n_k|, 1e-6)

which is not fooled by tiny entries next to large ones. The floor 1e-6 means
a whole gradient that has vanished to below 1e-6 (saturated gates, which
random shapes do draw) is held to an absolute error of 1e-12 instead: the
difference quotient itself is only good to ~1e-13 there.
"""
import numpy as np

TOLERANCE = 1e-6


def numeric_grad(f, x, eps=1e-3):
    """Central-difference gradient of scalar f() with respect to array x (perturbed in place)."""
    assert x.dtype == np.float64, "gradient checks run in float64"
    grad = np.zeros(x.shape)
    for idx in np.ndindex(*x.shape):
        old = float(x[idx])
        f_at = {}
        for k in (-2, -1, 1, 2):
            x[idx] = old + k * eps
            f_at[k] = float(f())
        x[idx] = old
        grad[idx] = (8 * (f_at[1] - f_at[-1]) - (f_at[2] - f_at[-2])) / (12 * eps)
    return grad


def rel_error(analytic, numeric):
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    assert a.shape == n.shape, (a.shape, n.shape)
    scale = max(np.abs(a).max(initial=0.0), np.abs(n).max(initial=0.0), 1e-6)
    return float(np.abs(a - n).max(initial=0.0) / scale)


def to_numpy(a):
    return a if isinstance(a, np.ndarray) else a.get()


def check_grads(f, arrays, analytic, tol=TOLERANCE):
    """Assert every analytic gradient matches its numeric one.

    f : callable () -> scalar, reading ``arrays`` (perturbed in place)
    arrays : dict name -> float64 array
    analytic : dict name -> gradient of the same shape
    Returns dict name -> relative error (all < tol).
    """
    errors = {name: rel_error(to_numpy(analytic[name]), numeric_grad(f, x))
              for name, x in arrays.items()}
    bad = {k: v for k, v in errors.items() if not v < tol}
    assert not bad, f"relative error >= {tol}: {bad}"
    return errors


def layer_plain_and_fused(x, h0, c0, Wx, Wh, b, dh, dhT, dcT):
    """Forward and backward of one LSTM layer with the plain cell and with the
    fused one: two dicts of every output (h, hT, cT and the gradients), keyed
    alike, for tests that hold the fast path to the plain one."""
    from lstm_scratch.engine.lstm import lstm_backward, lstm_forward
    outs = []
    for fused in (False, True):
        h, (hT, cT), cache = lstm_forward(x, h0, c0, Wx, Wh, b, fused=fused)
        g = lstm_backward(dh, cache, dhT, dcT, fused=fused)
        outs.append(dict(h=h, hT=hT, cT=cT, **{k: v for k, v in g.items() if v is not None}))
    return outs
