# Fits the rational R = P(s) / Q(s) of assembly/kernels/gelu.ts: Phi(-a) = R(s)^2, s = a * 2 / SAT - 1, a = |x|,
# and prints its coefficients as f32 plus the f32 kernel's error against float64 GELU.
# Usage: /usr/bin/python3 scripts/gelu-fit.py   (numpy only)
#
# Weighted linear least squares on Chebyshev nodes (Sanathanan-Koerner iterations, then Lawson reweighting
# towards the minimax error); the weight makes the error relative to Phi(-a) for a <= 3 (the lanes x >= -3
# whose Phi is small) and absolute above (where only 1 - Phi(-a) matters, for x > 3).
import math

import numpy as np

EXACT_BELOW, SAT, M, N = -3.0, 5.3, 6, 7
erfc = np.vectorize(math.erfc)


def phi(x):
    return 0.5 * erfc(-x / math.sqrt(2))


def fit(sk_iterations=40, lawson_iterations=300):
    s = np.cos(np.linspace(0, np.pi, 8000))
    a = (s + 1) * SAT / 2
    h = phi(-a)
    f = np.sqrt(h)
    # An error e in R is 2e / R relative in R^2 = Phi(-a); scaled to absolute above |EXACT_BELOW|.
    w = 2 * h / np.maximum(h, phi(EXACT_BELOW)) / f
    q_prev, lw, best = np.ones_like(s), np.ones_like(s) / len(s), None
    for it in range(sk_iterations + lawson_iterations):
        A = np.hstack([s[:, None] ** np.arange(M + 1), -f[:, None] * s[:, None] ** np.arange(1, N + 1)])
        W = (w * np.sqrt(lw) / q_prev)[:, None]
        c, *_ = np.linalg.lstsq(A * W, f * W[:, 0], rcond=None)
        p, q = c[: M + 1], np.concatenate([[1], c[M + 1 :]])
        qs = np.polyval(q[::-1], s)
        err = (np.polyval(p[::-1], s) / qs - f) * w
        if it < sk_iterations:
            q_prev = qs
            continue
        if best is None or np.abs(err).max() < best[2]:
            best = (p, q, np.abs(err).max())
        lw = lw * np.abs(err) ** 0.5
        lw /= lw.sum()
    return best


def gelu_f32(p, q, x):
    """The kernel's fast path in f32, operation for operation."""
    F = np.float32
    ax = np.abs(x)
    s = (ax * F(2 / SAT) - F(1)).astype(F)
    P = np.full_like(x, F(p[-1]))
    for c in p[-2::-1]:
        P = (P * s + F(c)).astype(F)
    Q = np.full_like(x, F(q[-1]))
    for c in q[-2::-1]:
        Q = (Q * s + F(c)).astype(F)
    r = (P / Q).astype(F)
    low = np.where(ax <= F(SAT), (r * r).astype(F), F(0))
    return (x * np.where(x < 0, low, (F(1) - low).astype(F))).astype(F)


p, q, e = fit()
print(f"fit error {e:.2e} (relative to Phi(-a) for a <= {-EXACT_BELOW}, absolute above)")
print("P", " ".join(f"{np.float32(c):.9e}" for c in p))
print("Q", " ".join(f"{np.float32(c):.9e}" for c in q))
print(f"2 / SAT {np.float32(2 / SAT):.9e}")
x = np.concatenate([np.linspace(EXACT_BELOW, 12, 2_000_001), np.random.default_rng(1).uniform(-3, 12, 1_000_000)])
x = x.astype(np.float32)
want = x.astype(np.float64) * phi(x.astype(np.float64))
rel = np.abs(gelu_f32(p, q, x) - want) / np.maximum(np.abs(want), 1e-30)
worst = x[rel.argmax()]
print(f"f32 kernel, x in [{EXACT_BELOW}, 12]: max error {rel.max():.2e} relative to float64 GELU (at x = {worst})")
