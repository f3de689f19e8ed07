#!/usr/bin/env python3
"""Times scipy.stats.mannwhitneyu against Augury's Mann-Whitney on this machine.

    python3 scripts/bench_mannwhitney_vs_scipy.py [--reps 5] [--sizes 1000,100000,1000000]

For each size N it draws two lognormal samples of N values (fixed numpy seed), times
SciPy's asymptotic test (best of --reps), then runs the release build of
examples/mw_timing.rs on lognormal samples of the same size and distribution (its own
fixed-seed generator) and takes its best-of---reps time. Both timings cover the same
work: from two unsorted arrays to a p-value (sorting and ranking included, data
generation and process start-up excluded). A last row does the same for the exact
test at 200 x 200 (SciPy keeps a per-thread cache of the exact distribution, which is
cleared before every timed call so each call pays for it, as Augury's does).

Prints a table: size, SciPy seconds, Augury seconds, SciPy / Augury.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy
from scipy.stats import mannwhitneyu

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "target" / "release" / "examples" / "mw_timing"


def best_of(reps, fn):
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def scipy_asymptotic(n, reps):
    rng = np.random.default_rng(n)
    x = rng.lognormal(3.02, 0.5, n)
    y = rng.lognormal(3.0, 0.5, n)
    return best_of(reps, lambda: mannwhitneyu(x, y, alternative="two-sided", method="asymptotic"))


def scipy_exact(n, reps):
    from scipy.stats import _mannwhitneyu as impl  # only to clear its cache

    rng = np.random.default_rng(n)
    x = rng.lognormal(3.0, 0.5, n)
    y = rng.lognormal(3.0, 0.5, n)

    def call():
        if hasattr(impl._mwu_state, "s"):
            del impl._mwu_state.s
        mannwhitneyu(x, y, alternative="two-sided", method="exact")

    return best_of(reps, call)


def augury(args):
    out = subprocess.run([str(EXAMPLE), *map(str, args)], check=True, capture_output=True, text=True)
    words = out.stdout.split()
    # "SECONDS u=.. p=.." for the asymptotic mode, "NxN exact SECONDS .." for exact.
    return float(words[2] if words[1] == "exact" else words[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    opts = parser.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]

    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--example", "mw_timing"],
        cwd=ROOT,
        check=True,
    )
    print(f"scipy {scipy.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, best of {opts.reps}")
    print(f"{'test':<30}{'SciPy s':>12}{'Augury s':>12}{'ratio':>9}")
    rows = [(f"asymptotic {n} x {n}", scipy_asymptotic(n, opts.reps), augury([n, opts.reps])) for n in sizes]
    rows.append(("exact 200 x 200", scipy_exact(200, opts.reps), augury(["exact", 200, opts.reps])))
    for name, s, a in rows:
        print(f"{name:<30}{s:>12.6f}{a:>12.6f}{s / a:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
