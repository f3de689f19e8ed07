"""Reference values for the sequential tests (src/stats/sequential).

Run: python3 tests/reference/sequential.py > tests/reference/sequential.json

Independent implementations (numpy/scipy) of the quantities the Rust code computes:
- the boundary constant C of the time-uniform CDF band for several (alpha, A), found with
  scipy's bounded scalar minimiser and Brent root finder;
- the mixture e-value, p-value and the ratio confidence sequence of the rate-ratio test on
  a fixed sequence of counts (grid 2^(i/16), |i| <= 128, normal prior on ln theta).
"""
import json

import numpy as np
from scipy import optimize
from scipy.special import logsumexp


def crossing(a, c):
    def bound(eta):
        root = a - np.sqrt(2 * (eta - 1) / c)
        if root <= 0:
            return np.inf
        g = 2 / eta * root**2
        if g <= 1:
            return np.inf
        return 4 * np.exp(-g * c) * (1 + 1 / ((g - 1) * np.log(eta)))

    eta_max = optimize.brentq(
        lambda e: np.sqrt(e / 2) + np.sqrt(2 * (e - 1) / c) - a, 1.0, 2 * a * a, xtol=1e-15
    )
    # minimise over u = ln(eta - 1); the bound has a single valley
    us = np.linspace(np.log(1e-9), np.log(eta_max - 1), 2001)
    vals = [bound(1 + np.exp(u)) for u in us]
    i = int(np.argmin(vals))
    lo, hi = us[max(i - 1, 0)], us[min(i + 1, len(us) - 1)]
    r = optimize.minimize_scalar(
        lambda u: bound(1 + np.exp(u)), bounds=(lo, hi), method="bounded",
        options={"xatol": 1e-12},
    )
    return min(r.fun, vals[i])


def lil_constant(alpha, a):
    return optimize.brentq(lambda c: crossing(a, c) - alpha, 0.5, 200.0, xtol=1e-13)


def rate_ratio(intervals, alpha, side, sd=1.0):
    step = np.log(2) / 16
    s = np.arange(-128, 129) * step
    raw = -0.5 * (s / sd) ** 2
    prior = raw - logsumexp(raw)
    if side == "greater":
        t = np.where(s > 0, raw, -np.inf)
    elif side == "less":
        t = np.where(s < 0, raw, -np.inf)
    else:
        t = raw.copy()
    prior_test = t - logsumexp(t)
    ll = np.zeros_like(s)
    max_log_e = 0.0
    lo_idx, hi_idx = -1, len(s)
    out = []
    for (nc, kc, nb, kb) in intervals:
        if kc + kb > 0 and nc > 0 and nb > 0:
            rho = np.exp(s) * nc / (np.exp(s) * nc + nb)
            ll += kc * np.log(rho) + kb * np.log1p(-rho)
        null = ll[128]
        log_e = logsumexp(prior_test + ll) - null
        max_log_e = max(max_log_e, log_e)
        inside = np.nonzero(logsumexp(prior + ll) - ll < np.log(1 / alpha))[0]
        if len(inside):
            lo, hi = inside[0] - 1, inside[-1] + 1
        else:
            best = int(np.argmax(ll))
            lo, hi = best - 1, best + 1
        lo_idx, hi_idx = max(lo_idx, lo), min(hi_idx, hi)
        out.append({
            "e_value": float(np.exp(log_e)),
            "p_value": float(min(1.0, np.exp(-max_log_e))),
            "ratio_lower": float(np.exp(s[lo_idx])) if lo_idx >= 0 else 0.0,
            "ratio_upper": float(np.exp(s[hi_idx])) if hi_idx < len(s) else None,
        })
    return out


INTERVALS = [
    (1500, 3, 1480, 2), (1530, 0, 1500, 1), (1490, 9, 1510, 4), (3000, 12, 1500, 3),
    (1500, 0, 1500, 0), (1000, 7, 2000, 6), (1500, 11, 1500, 2), (1500, 8, 1520, 3),
]

print(json.dumps({
    "lil_constant": [
        {"alpha": al, "a": a, "c": lil_constant(al, a)}
        for a in (0.85, 1.0) for al in (0.05, 0.01, 0.005, 0.001, 1e-4)
    ],
    "crossing": [
        {"a": a, "c": c, "p": crossing(a, c)}
        for a in (0.85, 1.0) for c in (3.0, 6.0, 10.0, 20.0)
    ],
    "rate_ratio": {
        "intervals": [list(i) for i in INTERVALS],
        "alpha": 0.05,
        "greater": rate_ratio(INTERVALS, 0.05, "greater"),
        "two_sided": rate_ratio(INTERVALS, 0.05, "two-sided"),
    },
}, indent=1))
