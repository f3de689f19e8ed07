#!/usr/bin/env python3
"""Times Augury against numpy + SciPy on this machine: the Mann-Whitney core, and the
whole `augury judge` process on two files of samples.

    python3 scripts/bench_mannwhitney_vs_scipy.py [--reps 5] [--sizes 1000,100000,1000000]
                                                  [--whole-n 1000000] [--whole-reps 7]
                                                  [--no-core] [--no-whole] [--augury PATH]

Python dependencies: numpy and SciPy. When they cannot be imported, the script makes a
virtual environment in target/bench-venv, installs them there from PyPI with pip, and
runs itself again with that environment's Python.

Mann-Whitney core. For each size N it draws two lognormal samples of N values (fixed
numpy seed), times SciPy's asymptotic test (best of --reps), then runs the release build
of examples/mw_timing.rs on lognormal samples of the same size and distribution (its own
fixed-seed generator) and takes its best-of---reps time. Both timings cover the same
work: from two unsorted arrays to a p-value (sorting and ranking included, data
generation and process start-up excluded). A last row does the same for the exact test
at 200 x 200 (SciPy keeps a per-thread cache of the exact distribution, which is cleared
before every timed call so each call pays for it, as Augury's does).

Whole process. Two files of --whole-n lognormal samples each (fixed numpy seed, one
number a line, shortest round-trip decimal; written once to target/bench-data), judged
both ways, each as a fresh process timed from the outside, as a person would run it:
- Augury: `augury judge --model M --baseline B --canary C --format json`, M a model with
  one distribution metric tested by Mann-Whitney (alpha 0.01, so a 98% interval);
- numpy + SciPy: this script with --judge-python B C, which reads both files
  (np.loadtxt), refuses NaN, sorts each side once, runs scipy.stats.mannwhitneyu
  (asymptotic, continuity-corrected, on the sorted arrays), computes the Hodges-Lehmann
  shift with its 98% interval (the same order statistics of the pairwise differences
  Augury and R's wilcox.test report, selected by counting passes with np.searchsorted,
  never forming the n*m differences), the per-side summaries (count, min, max, mean,
  std, median, p90, p99) and effect sizes, and prints them as JSON.
--augury PATH times that binary instead of building target/release/augury (to time an
older build against the same files). The runs alternate between the two; the table gives the median and the best of
--whole-reps runs each, after one untimed warm-up run of each. The Python process also
reports its own time from reading the files to printing (without interpreter start-up
and imports), shown as a second ratio. The script then checks that both printed the
same numbers (p-value, U, shift and interval, summaries) and says so.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "target" / "bench-venv"
DATA = ROOT / "target" / "bench-data"
EXAMPLE = ROOT / "target" / "release" / "examples" / "mw_timing"
AUGURY = ROOT / "target" / "release" / "augury"
REQUIREMENTS = ["numpy", "scipy"]


def ensure_python_deps():
    """Imports numpy and SciPy, or re-runs this script in a venv that has them."""
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401

        return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if os.environ.get("AUGURY_BENCH_IN_VENV") == "1":
        sys.exit(f"numpy and scipy are still missing in {VENV}; remove it and rerun")
    if not python.exists():
        print(f"making a virtual environment in {VENV} for numpy and scipy", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([str(python), "-c", "import numpy, scipy"], capture_output=True).returncode:
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
            check=True,
        )
    os.environ["AUGURY_BENCH_IN_VENV"] = "1"
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


ensure_python_deps()

import numpy as np  # noqa: E402
import scipy  # noqa: E402
from scipy.special import ndtri  # noqa: E402
from scipy.stats import mannwhitneyu  # noqa: E402

MODEL = """name: bench-mann-whitney
metrics:
  - name: value
    kind: distribution
    test: mann-whitney
    direction: increase
    alpha: 0.01
    min_samples: 3
    effect: {measure: median-ratio, allowed_increase: 1.0}
"""
ALPHA = 0.01
CONF_LEVEL = 1.0 - 2.0 * ALPHA  # a one-directional metric's interval, as Augury's models


# ---------------------------------------------------------------------------------------
# The Mann-Whitney core.


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


def augury_core(args):
    out = subprocess.run([str(EXAMPLE), *map(str, args)], check=True, capture_output=True, text=True)
    words = out.stdout.split()
    # "SECONDS u=.. p=.." for the asymptotic mode, "NxN exact SECONDS .." for exact.
    return float(words[2] if words[1] == "exact" else words[0])


def core(reps, sizes):
    print(f"Mann-Whitney core, best of {reps}")
    print(f"{'test':<30}{'SciPy s':>12}{'Augury s':>12}{'ratio':>9}")
    rows = [(f"asymptotic {n} x {n}", scipy_asymptotic(n, reps), augury_core([n, reps])) for n in sizes]
    rows.append(("exact 200 x 200", scipy_exact(200, reps), augury_core(["exact", 200, reps])))
    for name, s, a in rows:
        print(f"{name:<30}{s:>12.6f}{a:>12.6f}{s / a:>8.1f}x")


# ---------------------------------------------------------------------------------------
# The whole process, numpy + SciPy side: what `augury judge` prints, computed in Python.


def positions(x, y, t):
    """Per row i, the first j with x_i - y_j <= t (y_j >= x_i - t), for sorted y."""
    return np.searchsorted(y, x - t, side="left")


def kth_differences(x, y, ks, guess, list_at_most=1 << 18):
    """The k-th smallest differences x_i - y_j (1-based) of sorted x and y, for each k in
    ks, never forming the n*m differences. A counting pass at a threshold t is one
    np.searchsorted of the rows into y; every pass is kept (its counts and positions),
    so later searches start from the brackets earlier ones proved. A search steps by
    the secant through the two passes nearest its rank (regula falsi, then bisection,
    when that leaves the bracket) until the bracket holds at most list_at_most
    differences; those are listed from the two bracketing passes' positions and the
    rank is picked with np.partition."""
    n, m = x.size, y.size
    total = n * m
    # (threshold, differences <= threshold, positions); the two ends hold every difference.
    seen = [
        (x[0] - y[-1] - 1.0, 0, np.full(n, m, dtype=np.intp)),
        (x[-1] - y[0], total, np.zeros(n, dtype=np.intp)),
    ]
    out = []
    for k in ks:
        # The guess is for the first rank only; later ones start from the secant.
        t, guess = guess, None
        while True:
            lo, c_lo, p_lo = max((s for s in seen if s[1] < k), key=lambda s: s[1])
            hi, c_hi, p_hi = min((s for s in seen if s[1] >= k), key=lambda s: s[1])
            if c_hi - c_lo <= list_at_most:
                break
            # Aim a little inside whichever side is still far, so that both close in.
            if k - c_lo > list_at_most // 2:
                target = k - list_at_most // 4
            else:
                target = k + list_at_most // 4
            if t is None:
                near = sorted(seen, key=lambda s: abs(s[1] - target))
                (ta, ca, _), (tb, cb, _) = near[0], next((s for s in near if s[1] != near[0][1]))
                t = ta + (target - ca) * (tb - ta) / (cb - ca)
            if not lo < t < hi or any(t == s[0] for s in seen):
                t = lo + (target - c_lo) / (c_hi - c_lo) * (hi - lo)
                if not lo < t < hi or any(t == s[0] for s in seen):
                    t = lo + (hi - lo) / 2
            p = positions(x, y, t)
            seen.append((t, total - int(p.sum()), p))
            t = None
        # Differences in (lo, hi]: per row, j from p_hi (first <= hi) to p_lo (first <= lo).
        counts = p_lo - p_hi
        rows = np.repeat(np.arange(n), counts)
        cols = np.arange(rows.size) + np.repeat(p_hi - np.cumsum(counts) + counts, counts)
        inside = x[rows] - y[cols]
        rank = k - c_lo - 1
        out.append(float(np.partition(inside, rank)[rank]))
    return out


def tie_term(s):
    """Sum of t^3 - t over groups of equal values of a sorted sample."""
    _, counts = np.unique(s, return_counts=True)
    counts = counts[counts > 1].astype(np.float64)
    return float((counts**3 - counts).sum())


def crossing_rank(total, sigma, zq):
    """Rank of the difference where R's continuity-corrected statistic crosses zq."""

    def exceeds(u):
        dz = u - total / 2
        correction = 0.5 if dz > 0 else (-0.5 if dz < 0 else 0.0)
        return (dz - correction) / sigma > zq

    lo, hi = 1, total
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if exceeds(total - mid):
            lo = mid + 1
        else:
            hi = mid
    return lo


def hodges_lehmann(xs, ys, conf_level):
    """R's wilcox.test(x, y, conf.int = TRUE) asymptotic shift and interval."""
    n, m = xs.size, ys.size
    total = n * m
    pooled = n + m
    ties = tie_term(xs) + tie_term(ys)
    sigma = ((n * m / 12.0) * ((pooled + 1.0) - ties / (pooled * (pooled - 1.0)))) ** 0.5
    alpha = 1.0 - conf_level
    lower = crossing_rank(total, sigma, -ndtri(alpha / 2.0))
    upper = crossing_rank(total, sigma, ndtri(alpha / 2.0))
    half = total // 2
    guess = xs[n // 2] - ys[m // 2]
    if total % 2:
        est, lo, hi = kth_differences(xs, ys, [half + 1, lower, upper], guess)
    else:
        a, b, lo, hi = kth_differences(xs, ys, [half, half + 1, lower, upper], guess)
        est = (a + b) / 2.0
    return {"estimate": est + 0.0, "lower": lo + 0.0, "upper": hi + 0.0, "conf_level": conf_level}


def summary(s):
    q = np.quantile(s, [0.5, 0.9, 0.99])
    return {
        "count": int(s.size),
        "min": float(s[0]),
        "max": float(s[-1]),
        "mean": float(s.mean()),
        "std": float(s.std(ddof=1)),
        "median": float(q[0]),
        "p90": float(q[1]),
        "p99": float(q[2]),
    }


def judge_python(baseline_path, canary_path):
    start = time.perf_counter()
    sides = {}
    for name, path in (("baseline", baseline_path), ("canary", canary_path)):
        values = np.loadtxt(path, dtype=np.float64, comments="#")
        if np.isnan(values).any():
            sys.exit(f"{path}: holds NaN")
        sides[name] = np.sort(values)
    c, b = sides["canary"], sides["baseline"]
    mw = mannwhitneyu(c, b, alternative="greater", method="asymptotic")
    shift = hodges_lehmann(c, b, CONF_LEVEL)
    sb, sc = summary(b), summary(c)
    result = {
        "baseline": sb,
        "canary": sc,
        "mann_whitney": {"u": float(mw.statistic), "p_value": float(mw.pvalue)},
        "shift": shift,
        "effect": {
            "median_ratio": sc["median"] / sb["median"],
            "mean_ratio": sc["mean"] / sb["mean"],
            "cles": float(mw.statistic) / (c.size * b.size),
        },
    }
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    print(f"in-process {time.perf_counter() - start:.6f}", file=sys.stderr)


# ---------------------------------------------------------------------------------------
# The whole process, side by side.


def sample_files(n):
    DATA.mkdir(parents=True, exist_ok=True)
    paths = (DATA / f"baseline-{n}.txt", DATA / f"canary-{n}.txt")
    if not all(p.exists() for p in paths):
        rng = np.random.default_rng(20240601)
        for path, mu in zip(paths, (3.0, 3.02)):
            values = rng.lognormal(mu, 0.5, n)
            path.write_text("".join(f"{v!r}\n" for v in values.tolist()))
    model = DATA / "mann-whitney.yaml"
    model.write_text(MODEL)
    return paths, model


def python_env():
    env = dict(os.environ)
    # Set on some processors here for old OpenBLAS builds; they only slow a current numpy.
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def run_timed(cmd, env=None):
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if out.returncode not in (0, 1, 3):  # pass, fail, marginal/inconclusive
        sys.exit(f"{cmd[0]} failed ({out.returncode}): {out.stderr}")
    return elapsed, out


def close(a, b, rel):
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def compare(augury_json, python_json):
    metric = augury_json["metrics"][0]
    checks = []
    mw, pmw = metric["mann_whitney"], python_json["mann_whitney"]
    checks.append(("U", mw["u"], pmw["u"], 0.0))
    checks.append(("p-value", mw["p_value"], pmw["p_value"], 1e-9))
    for key in ("estimate", "lower", "upper"):
        checks.append((f"shift {key}", metric["shift"][key], python_json["shift"][key], 1e-12))
    for side in ("baseline", "canary"):
        for key in ("count", "min", "max", "median", "p90", "p99"):
            checks.append((f"{side} {key}", metric[side][key], python_json[side][key], 1e-12))
        for key in ("mean", "std"):
            checks.append((f"{side} {key}", metric[side][key], python_json[side][key], 1e-9))
    for key in ("median_ratio", "mean_ratio", "cles"):
        checks.append((key, metric["effect"][key], python_json["effect"][key], 1e-9))
    return [(name, a, p) for name, a, p, rel in checks if not close(a, p, rel)]


def whole(n, reps, binary):
    (baseline, canary), model = sample_files(n)
    augury = [str(binary), "judge", "--model", str(model), "--baseline", str(baseline),
              "--canary", str(canary), "--format", "json"]
    python = [sys.executable, str(Path(__file__).resolve()), "--judge-python", str(baseline), str(canary)]
    env = python_env()
    # Warm-up: the files into the page cache, the binaries and modules into memory.
    _, a_out = run_timed(augury)
    _, p_out = run_timed(python, env)
    a_times, p_times, p_inner = [], [], []
    for _ in range(reps):
        t, a_out = run_timed(augury)
        a_times.append(t)
        t, p_out = run_timed(python, env)
        p_times.append(t)
        p_inner.append(float(p_out.stderr.split("in-process")[-1].split()[0]))
    load = os.getloadavg()
    print(f"\nWhole process, {n:,} samples per side ({baseline.stat().st_size:,} + "
          f"{canary.stat().st_size:,} bytes), {reps} runs each, alternating; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'':<34}{'median s':>10}{'best s':>10}")
    rows = [("numpy + SciPy, whole process", p_times), ("numpy + SciPy, read to print", p_inner),
            ("Augury, whole process", a_times)]
    for name, times in rows:
        print(f"{name:<34}{statistics.median(times):>10.4f}{min(times):>10.4f}")
    a_med = statistics.median(a_times)
    print(f"ratio, whole process (median): {statistics.median(p_times) / a_med:.1f}x; "
          f"numpy + SciPy without interpreter start-up and imports: {statistics.median(p_inner) / a_med:.1f}x")
    wrong = compare(json.loads(a_out.stdout), json.loads(p_out.stdout))
    if wrong:
        for name, a, p in wrong:
            print(f"DIFFERENT {name}: Augury {a!r}, numpy + SciPy {p!r}")
        return 1
    print("same results both ways: U, p-value, shift and interval, summaries, effect sizes")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--whole-n", type=int, default=1_000_000)
    parser.add_argument("--whole-reps", type=int, default=7)
    parser.add_argument("--no-core", action="store_true", help="skip the Mann-Whitney core table")
    parser.add_argument("--no-whole", action="store_true", help="skip the whole-process comparison")
    parser.add_argument("--augury", type=Path, help="the augury binary to time (default: build it)")
    parser.add_argument("--judge-python", nargs=2, metavar=("BASELINE", "CANARY"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.judge_python:
        judge_python(*opts.judge_python)
        return 0

    targets = [] if opts.no_core else ["--example", "mw_timing"]
    if not opts.no_whole and opts.augury is None:
        targets += ["--bin", "augury"]
    if targets:
        subprocess.run(["cargo", "build", "--release", "--quiet", *targets], cwd=ROOT, check=True)
    print(f"scipy {scipy.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    if not opts.no_core:
        core(opts.reps, [int(s) for s in opts.sizes.split(",")])
    if not opts.no_whole:
        return whole(opts.whole_n, opts.whole_reps, opts.augury or AUGURY)
    return 0


if __name__ == "__main__":
    sys.exit(main())
