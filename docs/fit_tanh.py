"""Fit the rational tanh of lstm_scratch/engine/fused_cpu.py, and measure it.

    tanh(x) ≈ x P(x²) / Q(x²),  P of degree 6, Q of degree 3 with Q(0) = 1,  |x| <= 9

Least squares on the linearised error x P(u) - tanh(x) Q(u), weighted by
1 / (tanh(x) Q_prev(u)) so that each round minimises the *relative* error of the
previous round's denominator (Sanathanan-Koerner iteration). In u = (x/9)² for
conditioning, then scaled back. Usage: python docs/fit_tanh.py
"""
import numpy as np

CLAMP, P_DEG, Q_DEG = 9.0, 6, 3


def fit(rounds=40):
    x = np.concatenate([np.linspace(0, CLAMP, 400_001)[1:], np.geomspace(1e-8, 1e-2, 2_000)])
    s, y = (x / CLAMP) ** 2, np.tanh(x)
    q_prev = np.ones_like(x)
    for _ in range(rounds):
        A = np.hstack([np.stack([x * s**k for k in range(P_DEG + 1)], 1),
                       -np.stack([y * s**k for k in range(1, Q_DEG + 1)], 1)])
        w = 1 / (y * q_prev)
        sol = np.linalg.lstsq(A * w[:, None], y * w, rcond=None)[0]
        p, q = sol[:P_DEG + 1], np.concatenate([[1.0], sol[P_DEG + 1:]])
        q_prev = np.polyval(q[::-1], s)
    rel = np.abs(x * np.polyval(p[::-1], s) / q_prev - y) / y
    # back from s = u / CLAMP² to u = x²
    return p / CLAMP ** (2 * np.arange(P_DEG + 1)), q / CLAMP ** (2 * np.arange(Q_DEG + 1)), rel.max()


def main():
    p, q, rel = fit()
    print("P =", tuple(float(v) for v in p))
    print("Q =", tuple(float(v) for v in q))
    print(f"max relative error of the rational function on (0, {CLAMP}]: {rel:.2g}")
    x = np.linspace(-12, 12, 2_000_001).astype(np.float32)
    xc = np.clip(x, -CLAMP, CLAMP)
    u = xc * xc
    num, den = np.float32(p[-1]), np.float32(q[-1])
    for k in range(P_DEG - 1, -1, -1):
        num = num * u + np.float32(p[k])
    for k in range(Q_DEG - 1, -1, -1):
        den = den * u + np.float32(q[k])
    t = np.clip(xc * num / den, -1, 1)
    exact = np.tanh(x.astype(np.float64))
    print(f"evaluated in float32 on [-12, 12]: max absolute error {np.abs(t - exact).max():.2g} "
          f"(np.tanh in float32: {np.abs(np.tanh(x) - exact).max():.2g})")


if __name__ == "__main__":
    main()
