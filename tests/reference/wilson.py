"""95% Wilson score intervals (the simulator's binomial CIs), from SciPy.

Run: python3 tests/reference/wilson.py > tests/reference/wilson.json
"""
import json

from scipy.stats import binomtest

cases = [(8, 20), (0, 2000), (20, 2000), (499, 500), (250, 500)]
out = []
for k, n in cases:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    out.append({"successes": k, "trials": n, "lower": ci.low, "upper": ci.high})
print(json.dumps(out, indent=1))
