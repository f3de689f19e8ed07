#!/usr/bin/env python3
"""Reference values for tests/stats_rates.rs: error-proportion tests and burn rates.

Run from the repository root:  python3 tests/reference/proportions.py
Writes tests/reference/proportions.json next to this script.

- Fisher's exact test: scipy.stats.fisher_exact on [[canary errors, canary ok],
  [baseline errors, baseline ok]] for all three alternatives.
- Pooled two-proportion z-test (no continuity correction), with scipy.stats.norm.
- Rate ratio intervals: scipy.stats.contingency.relative_risk(canary errors, canary
  requests, baseline errors, baseline requests).confidence_interval(1 - alpha), the Katz
  log method on (e_c / n_c) / (e_b / n_b), the same ratio of error proportions as
  src/stats/ratio.rs. The script also evaluates Katz's formula itself and checks that
  SciPy agrees, so the reference is the formula and not just one implementation of it.
  Non-finite bounds (a side without errors) are written as "NaN" / "+Inf".
- Burn rates: the SRE workbook factors, the policy scaled to a canary's lifetime and an
  evaluation of a per-interval series, computed here from the rules stated in
  src/stats/burn.rs, independently of the Rust code.
"""

import json
import math
import pathlib

import numpy as np
import scipy
from scipy import stats

ALTERNATIVES = ["two-sided", "greater", "less"]

# (canary requests, canary errors, baseline requests, baseline errors)
TABLES = [
    (10, 0, 10, 0),        # no errors anywhere
    (10, 10, 10, 10),      # all errors
    (10, 0, 10, 3),
    (10, 3, 10, 0),
    (5, 5, 5, 0),
    (8, 2, 8, 6),
    (4, 3, 4, 1),          # symmetric margins: tied tables on both sides
    (10, 7, 10, 3),
    (10, 3, 10, 7),
    (20, 10, 20, 10),      # at the mode
    (1, 1, 1, 0),
    (1, 0, 30, 29),
    (12, 1, 30, 2),
    (50, 9, 40, 2),
    (100, 0, 100, 5),
    (100, 1, 100, 12),
    (1000, 14, 1200, 5),
    (1000, 3, 5000, 12),
    (3000, 60, 3000, 45),
    (20000, 41, 20000, 20),
    (100000, 120, 100000, 80),
    (1000000, 5200, 1000000, 4800),
    (2000000, 0, 2000000, 9),
    (500, 250, 500, 200),
    (60, 59, 60, 1),       # far tail on both sides: tiny p-values
    (200, 150, 200, 20),
]


def fisher(nc, ec, nb, eb, alternative):
    table = [[ec, nc - ec], [eb, nb - eb]]
    return float(stats.fisher_exact(table, alternative=alternative).pvalue)


def ztest(nc, ec, nb, eb, alternative):
    pc, pb = ec / nc, eb / nb
    pooled = (ec + eb) / (nc + nb)
    var = pooled * (1 - pooled) * (1 / nc + 1 / nb)
    if var == 0:
        return None, None
    z = (pc - pb) / math.sqrt(var)
    if alternative == "two-sided":
        p = min(1.0, 2 * stats.norm.sf(abs(z)))
    elif alternative == "greater":
        p = stats.norm.sf(z)
    else:
        p = stats.norm.cdf(z)
    return float(z), float(p)


def min_expected(nc, ec, nb, eb):
    n = nc + nb
    k = ec + eb
    cells = [nc * k / n, nc * (n - k) / n, nb * k / n, nb * (n - k) / n]
    return min(cells)


proportions = []
for nc, ec, nb, eb in TABLES:
    case = {
        "canary": {"requests": nc, "errors": ec},
        "baseline": {"requests": nb, "errors": eb},
        "min_expected": min_expected(nc, ec, nb, eb),
        "fisher": {},
        "z": {},
    }
    for alt in ALTERNATIVES:
        case["fisher"][alt] = fisher(nc, ec, nb, eb, alt)
        z, p = ztest(nc, ec, nb, eb, alt)
        case["z"][alt] = None if z is None else {"z": z, "p": p}
    proportions.append(case)

# --- rate ratio intervals (Katz log method) ---------------------------------------------
RATIO_ALPHAS = [0.2, 0.1, 0.05, 0.01, 0.001]
RATIO_TABLES = TABLES + [
    (122, 27, 487, 44),    # SciPy's documentation example
    (75, 10, 225, 12),
    (7, 7, 9, 9),          # all errors on both sides: zero variance, a point
    (3, 1, 2000000, 1),    # a very wide interval
    (10000, 80, 10000, 10),
]


def jsonable(x):
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return x


def katz(nc, ec, nb, eb, alpha):
    """Katz et al. (1978), written out: exp(log ratio -/+ z se)."""
    log_ratio = math.log((ec / nc) / (eb / nb))
    se = math.sqrt(1 / ec - 1 / nc + 1 / eb - 1 / nb)
    z = stats.norm.isf(alpha / 2)
    return math.exp(log_ratio - z * se), math.exp(log_ratio + z * se)


rate_ratio = []
for nc, ec, nb, eb in RATIO_TABLES:
    rr = stats.contingency.relative_risk(ec, nc, eb, nb)
    for alpha in RATIO_ALPHAS:
        ci = rr.confidence_interval(confidence_level=1 - alpha)
        low, high = float(ci.low), float(ci.high)
        if ec > 0 and eb > 0:
            own = katz(nc, ec, nb, eb, alpha)
            assert math.isclose(low, own[0], rel_tol=1e-12), (nc, ec, nb, eb, alpha)
            assert math.isclose(high, own[1], rel_tol=1e-12), (nc, ec, nb, eb, alpha)
        rate_ratio.append({
            "canary": {"requests": nc, "errors": ec},
            "baseline": {"requests": nb, "errors": eb},
            "alpha": alpha,
            "ratio": jsonable(rr.relative_risk),
            "lower": jsonable(low),
            "upper": jsonable(high),
        })

# --- burn rates -----------------------------------------------------------------------
HOUR = 3600.0
PERIOD = 30 * 24 * HOUR
WORKBOOK = [  # severity, budget fraction, long, short
    ("page", 0.02, 1 * HOUR, 5 * 60.0),
    ("page", 0.05, 6 * HOUR, 30 * 60.0),
    ("ticket", 0.10, 72 * HOUR, 6 * HOUR),
]
factors = [b * PERIOD / long for _, b, long, _ in WORKBOOK]

burn_rates = [
    {"errors": e, "requests": n, "slo": slo, "burn": e / n / (1 - slo)}
    for e, n, slo in [(1, 1000, 0.999), (144, 10000, 0.999), (0, 50, 0.99),
                      (7, 7, 0.5), (3, 100000, 0.9999)]
]


def scale_policy(lifetime, interval):
    longest = max(long for _, _, long, _ in WORKBOOK)
    s = min(1.0, lifetime / longest)
    return [
        {"severity": sev, "factor": f, "long": max(long * s, interval),
         "short": max(short * s, interval)}
        for (sev, _, long, short), f in zip(WORKBOOK, factors)
    ]


def evaluate(rules, series, interval, slo, share):
    def window(n):
        part = series[max(0, len(series) - n):]
        return sum(r for r, _ in part), sum(e for _, e in part)

    def burn(req, err):
        return None if req == 0 else err / req / (1 - slo)

    out = []
    for rule in rules:
        nl = min(max(1, round(rule["long"] / interval)), len(series))
        ns = min(max(1, round(rule["short"] / interval)), len(series))
        bl, bs = burn(*window(nl)), burn(*window(ns))
        fires = bl is not None and bs is not None and bl > rule["factor"] and bs > rule["factor"]
        out.append({"severity": rule["severity"], "long_intervals": nl,
                    "short_intervals": ns, "long_burn": bl, "short_burn": bs,
                    "fires": fires})
    req, err = window(len(series))
    b = burn(req, err)
    elapsed = len(series) * interval
    consumed = 0.0 if b is None else err / ((1 - slo) * (req / share) * PERIOD / elapsed)
    firing = next((w["severity"] for w in out if w["fires"]), None)
    return {"windows": out, "burn_rate": b, "budget_consumed": consumed,
            "elapsed_secs": elapsed, "firing": firing}


# 10-minute canary, 30 s intervals: healthy at first, then a burst of errors.
healthy = [(2000, 1)] * 16
burst = [(1000, 30)] * 3 + [(1000, 40)]
evaluations = []
for name, series, share, slo in [
    ("healthy", healthy + [(2000, 1)] * 4, 0.05, 0.999),
    ("burst-at-end", healthy + burst, 0.05, 0.999),
    ("young-and-failing", [(200, 5), (200, 4)], 0.1, 0.99),
    ("quiet-intervals", [(0, 0)] * 3 + [(10, 1)], 0.2, 0.99),
]:
    rules = scale_policy(600.0, 30.0)
    evaluations.append({
        "name": name, "lifetime_secs": 600.0, "interval_secs": 30.0,
        "slo": slo, "share": share,
        "series": [{"requests": r, "errors": e} for r, e in series],
        "expected": evaluate(rules, series, 30.0, slo, share),
    })

out = {
    "generator": "tests/reference/proportions.py",
    "versions": {"scipy": scipy.__version__, "numpy": np.__version__},
    "proportions": proportions,
    "rate_ratio": rate_ratio,
    "burn": {
        "period_secs": PERIOD,
        "workbook_factors": factors,
        "burn_rates": burn_rates,
        "scaled_600s_30s": scale_policy(600.0, 30.0),
        "scaled_2h_60s": scale_policy(2 * HOUR, 60.0),
        "evaluations": evaluations,
    },
}

path = pathlib.Path(__file__).with_name("proportions.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
