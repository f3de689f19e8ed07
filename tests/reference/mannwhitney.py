#!/usr/bin/env python3
"""Reference values for the Mann-Whitney U test (tests/stats_mannwhitney.rs).

Writes tests/reference/mannwhitney.json next to this script:
    python3 tests/reference/mannwhitney.py

Every number comes from scipy.stats.mannwhitneyu (use_continuity=True). For exact
cases the script also computes the p-value in exact rational arithmetic from the
Gaussian-binomial generating function of U, checks SciPy against it, and stores it, so
the Rust side is checked against the truth as well as against SciPy.

Samples come from numpy's default_rng with fixed seeds and are stored in the JSON,
so the Rust test never regenerates them.
"""

import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy
from scipy.stats import mannwhitneyu

ALTERNATIVES = ("two-sided", "greater", "less")
SEED = 20240611


def null_counts(m, n):
    """Number of arrangements giving U = u, for u = 0..m*n (exact integers).

    The generating function of U is the Gaussian binomial
    prod_{j=1..m} (1 - q^(n+j)) / (1 - q^j); dividing by (1 - q^j) is a running sum
    with stride j, multiplying by (1 - q^(n+j)) a shifted difference.
    """
    f = [1] + [0] * (m * n)
    for j in range(1, m + 1):
        top = n * j
        for u in range(j, top + 1):
            f[u] += f[u - j]
        for u in range(top, n + j - 1, -1):
            f[u] -= f[u - n - j]
    assert sum(f) == math.comb(m + n, m)
    return f


_COUNTS = {}


def exact_rational_p(u1, n1, n2, alternative):
    """SciPy's exact p-value semantics, evaluated without rounding."""
    key = (min(n1, n2), max(n1, n2))
    if key not in _COUNTS:
        _COUNTS[key] = null_counts(*key)
    counts = _COUNTS[key]
    pairs = n1 * n2
    u2 = pairs - u1
    if alternative == "greater":
        u, factor = u1, 1
    elif alternative == "less":
        u, factor = u2, 1
    else:
        u, factor = max(u1, u2), 2
    k = int(u)  # SciPy truncates a half-integer U (tied data) here
    sf = Fraction(sum(counts[k:]), math.comb(n1 + n2, n1))
    return float(min(Fraction(1), factor * sf))


def case_list():
    rng = np.random.default_rng(SEED)
    cases = []

    def add(name, canary, baseline, methods=("exact", "asymptotic")):
        cases.append(
            {
                "name": name,
                "canary": [float(x) for x in canary],
                "baseline": [float(x) for x in baseline],
                "methods": list(methods),
            }
        )

    # Kayenta's own Mann-Whitney example.
    add("kayenta_10_20_30_40_vs_1_2_3_4", [10, 20, 30, 40], [1, 2, 3, 4])
    # Textbook example (diagnosis ages).
    add("ages_5_vs_4", [19, 22, 16, 29, 24], [20, 11, 17, 12])
    # One observation on a side.
    add("n1_vs_3", [5.0], [1.0, 2.0, 3.0])
    add("n1_vs_1", [0.5], [1.0])
    add("n1_vs_1_equal", [2.0], [2.0])
    add("n3_vs_1_tie", [1.0, 2.0, 3.0], [2.0])
    # Every observation equal: sigma = 0 in the normal approximation.
    add("all_equal_3_vs_4", [3.0] * 3, [3.0] * 4)
    add("all_equal_1_vs_1", [7.0], [7.0])
    # -0.0 and 0.0 are one value.
    add("signed_zeros", [-0.0, 1.0, -2.0], [0.0, 0.0, 3.0, -0.0])
    # Small integer data: many ties; exact is SciPy's tie-ignoring exact.
    add("ties_int_12_vs_15", rng.integers(0, 5, 12), rng.integers(1, 6, 15))
    add("ties_int_30_vs_20", rng.integers(0, 8, 30), rng.integers(0, 8, 20))
    # Unequal sizes, continuous.
    add("cont_7_vs_40", rng.normal(0.5, 1, 7), rng.normal(0, 1, 40))
    add("cont_40_vs_7", rng.normal(0, 1, 40), rng.normal(0.8, 1, 7))
    add("cont_30_vs_45", rng.lognormal(0.2, 0.5, 30), rng.lognormal(0, 0.5, 45))
    add("cont_49_vs_49", rng.normal(0.3, 1, 49), rng.normal(0, 1, 49))
    add("cont_50_vs_12", rng.normal(0, 1, 50), rng.normal(0, 1, 12))
    # Far tails of the exact distribution.
    add("separated_20_vs_25", rng.normal(10, 1, 20), rng.normal(0, 1, 25))
    add("shift_100_vs_100", rng.normal(0.9, 1, 100), rng.normal(0, 1, 100))
    add("exact_200_vs_200", rng.normal(0.15, 1, 200), rng.normal(0, 1, 200))
    add("exact_200_vs_200_far", rng.normal(1.2, 1, 200), rng.normal(0, 1, 200))
    add("exact_60_vs_230", rng.normal(-0.2, 1, 60), rng.normal(0, 1, 230))
    # Large samples: asymptotic only.
    add(
        "large_5000_vs_3000",
        rng.lognormal(3.02, 0.5, 5000),
        rng.lognormal(3.0, 0.5, 3000),
        methods=("asymptotic",),
    )
    add(
        "large_ties_5000_vs_3000",
        np.round(rng.lognormal(3.0, 0.5, 5000)),
        np.round(rng.lognormal(3.0, 0.5, 3000)),
        methods=("asymptotic",),
    )
    add(
        "large_separated_2000_vs_1500",
        rng.normal(1.0, 1, 2000),
        rng.normal(0, 1, 1500),
        methods=("asymptotic",),
    )
    return cases


def main():
    out = []
    for case in case_list():
        x = np.array(case["canary"])
        y = np.array(case["baseline"])
        results = []
        for method in case.pop("methods"):
            for alternative in ALTERNATIVES:
                res = mannwhitneyu(x, y, alternative=alternative, method=method)
                entry = {
                    "method": method,
                    "alternative": alternative,
                    "u": float(res.statistic),
                    "p": float(res.pvalue),
                }
                if method == "exact":
                    truth = exact_rational_p(float(res.statistic), len(x), len(y), alternative)
                    # SciPy's own recurrence loses a little in floating point at n ~ 200.
                    assert math.isclose(res.pvalue, truth, rel_tol=1e-12), (
                        case["name"],
                        alternative,
                        res.pvalue,
                        truth,
                    )
                    entry["p_rational"] = truth
                results.append(entry)
        case["results"] = results
        out.append(case)

    doc = {
        "generator": "tests/reference/mannwhitney.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "seed": SEED,
        "cases": out,
    }
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(out)} cases to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
