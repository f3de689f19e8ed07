//! Error proportions: is the canary's error ratio different from the baseline's?
//!
//! Two tests on the 2x2 table `[[canary errors, canary ok], [baseline errors, baseline ok]]`:
//! - Fisher's exact test, with the conventions of `scipy.stats.fisher_exact`: one-sided
//!   p-values are hypergeometric tails of the canary's error count (`Greater` = the
//!   canary's error proportion is larger, i.e. odds ratio > 1); the two-sided p-value sums
//!   the tables no more probable than the observed one, with a relative tolerance of 1e-14
//!   so that tables equally probable in exact arithmetic count alike.
//! - The pooled two-proportion z-test (`statsmodels.stats.proportion.proportions_ztest`
//!   with its defaults: pooled variance under H0, no continuity correction).
//!
//! `Method::Auto` uses Fisher when the smallest expected cell count under H0 is below 5
//! (Cochran's rule: where the normal approximation of a 2x2 table stops being trusted,
//! and where a canary with a handful of errors lives), the z-test otherwise.
//!
//! Invariant: p-values lie in [0, 1]; inputs with more errors than requests, or no
//! requests, are refused.

use serde::{Deserialize, Serialize};

use super::{Alternative, Method, MethodUsed, StatsError, normal};

/// Requests and the errors among them, for one version over one window; `errors` is at
/// most `requests`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

impl Counts {
    /// Checks `errors <= requests`, naming `which` counts were wrong.
    pub fn validate(&self, which: &str) -> Result<(), StatsError> {
        if self.errors > self.requests {
            return Err(StatsError::Invalid(format!(
                "{which}: {} errors exceed {} requests",
                self.errors, self.requests
            )));
        }
        Ok(())
    }

    /// errors / requests; `None` without requests.
    pub fn ratio(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

/// Comparison of the canary's error proportion with the baseline's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProportionTest {
    #[serde(with = "crate::stats::nonfinite")]
    pub canary_ratio: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub baseline_ratio: f64,
    /// canary_ratio / baseline_ratio; `None` when the baseline saw no errors.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub ratio: Option<f64>,
    /// canary_ratio - baseline_ratio.
    #[serde(with = "crate::stats::nonfinite")]
    pub difference: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub p_value: f64,
    pub method: MethodUsed,
    pub alternative: Alternative,
    /// The z statistic when the z-test was used.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub z: Option<f64>,
}

/// Smallest expected cell count under H0 below which `Method::Auto` uses Fisher's test.
pub const AUTO_EXACT_MIN_EXPECTED: f64 = 5.0;

/// Largest request count per side: 2^53, where f64 still counts exactly.
pub const MAX_REQUESTS: u64 = 1 << 53;

/// Relative tolerance under which two table probabilities count as equal (SciPy's).
const TIE_TOLERANCE: f64 = 1e-14;

/// Tests whether the canary's error proportion differs from the baseline's.
/// Refuses zero requests (`StatsError::Empty`) and errors above requests.
pub fn compare_proportions(
    canary: Counts,
    baseline: Counts,
    alternative: Alternative,
    method: Method,
) -> Result<ProportionTest, StatsError> {
    canary.validate("canary")?;
    baseline.validate("baseline")?;
    for (which, c) in [("canary", canary), ("baseline", baseline)] {
        // Beyond 2^53 counts stop being exact in f64, and sums could overflow u64.
        if c.requests > MAX_REQUESTS {
            return Err(StatsError::Invalid(format!(
                "{which}: {} requests exceed the supported {MAX_REQUESTS}",
                c.requests
            )));
        }
    }
    let canary_ratio = canary
        .ratio()
        .ok_or(StatsError::Empty { which: "canary" })?;
    let baseline_ratio = baseline
        .ratio()
        .ok_or(StatsError::Empty { which: "baseline" })?;
    let use_exact = match method {
        Method::Exact => true,
        Method::Asymptotic => false,
        Method::Auto => min_expected_cell(canary, baseline) < AUTO_EXACT_MIN_EXPECTED,
    };
    let (p_value, z, used) = if use_exact {
        (
            fisher_exact(canary, baseline, alternative),
            None,
            MethodUsed::Exact,
        )
    } else {
        let (p, z) = pooled_z_test(canary, baseline, alternative);
        (p, Some(z), MethodUsed::Asymptotic)
    };
    Ok(ProportionTest {
        canary_ratio,
        baseline_ratio,
        ratio: (baseline_ratio > 0.0).then(|| canary_ratio / baseline_ratio),
        difference: canary_ratio - baseline_ratio,
        p_value,
        method: used,
        alternative,
        z,
    })
}

/// The smallest of the four expected cell counts under H0 (equal proportions).
pub fn min_expected_cell(canary: Counts, baseline: Counts) -> f64 {
    let n = canary.requests as f64 + baseline.requests as f64;
    let errors = canary.errors as f64 + baseline.errors as f64;
    let oks = n - errors;
    let smaller_row = canary.requests.min(baseline.requests) as f64;
    smaller_row * errors.min(oks) / n
}

/// Pooled two-proportion z-test: `z = (p_c - p_b) / sqrt(p (1 - p) (1/n_c + 1/n_b))`,
/// `p` the pooled proportion. When nobody failed or everybody failed, both proportions
/// are equal and the variance is zero: reported as z = 0, p = 1 (where statsmodels
/// would divide 0 by 0).
fn pooled_z_test(canary: Counts, baseline: Counts, alternative: Alternative) -> (f64, f64) {
    let (nc, nb) = (canary.requests as f64, baseline.requests as f64);
    let pc = canary.errors as f64 / nc;
    let pb = baseline.errors as f64 / nb;
    let pooled = (canary.errors as f64 + baseline.errors as f64) / (nc + nb);
    let variance = pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nb);
    if variance <= 0.0 {
        return (1.0, 0.0);
    }
    let z = (pc - pb) / variance.sqrt();
    let p = match alternative {
        Alternative::TwoSided => (2.0 * normal::sf(z.abs())).min(1.0),
        Alternative::Greater => normal::sf(z),
        Alternative::Less => normal::cdf(z),
    };
    (p, z)
}

/// Fisher's exact test on `[[c_err, c_ok], [b_err, b_ok]]`, scipy's conventions.
fn fisher_exact(canary: Counts, baseline: Counts, alternative: Alternative) -> f64 {
    let h = Hypergeometric::new(
        canary.requests,
        baseline.requests,
        canary.errors + baseline.errors,
    );
    let a = canary.errors;
    let p = match alternative {
        Alternative::Less => h.cdf(a),
        Alternative::Greater => h.sf_inclusive(a),
        Alternative::TwoSided => h.two_sided(a),
    };
    p.clamp(0.0, 1.0)
}

/// Distribution of the canary's error count given the margins: `k` errors in total drawn
/// among `r1` canary and `r2` baseline requests.
///
/// Probabilities are kept as weights relative to the mode (`w(mode) = 1`) and built by the
/// ratio of neighbouring terms, each ratio a quotient of integer products; normalising by
/// the sum of the weights avoids the cancellation of `ln_gamma` differences, which costs
/// ~1e-9 relative at a million requests and far more than the 1e-14 tolerance the
/// two-sided p-value needs to tell tied tables apart. Weights are decreasing away from
/// the mode (the distribution is log-concave), so a tail stops once the rest provably
/// cannot change its sum; the cost is the spread of the distribution plus the distance
/// from the mode to the observed count, not the number of requests.
struct Hypergeometric {
    r1: u64,
    r2: u64,
    k: u64,
    lo: u64,
    hi: u64,
    mode: u64,
    /// Sum of all weights.
    total: f64,
}

impl Hypergeometric {
    fn new(r1: u64, r2: u64, k: u64) -> Self {
        let n = r1 as u128 + r2 as u128;
        let mode = ((k as u128 + 1) * (r1 as u128 + 1) / (n + 2)) as u64;
        let mut h = Hypergeometric {
            r1,
            r2,
            k,
            lo: k.saturating_sub(r2),
            hi: r1.min(k),
            mode,
            total: 0.0,
        };
        // The formula's mode is within the support; the clamp guards the arithmetic only.
        h.mode = h.mode.clamp(h.lo, h.hi);
        let up = if h.mode < h.hi {
            h.tail_up(h.mode + 1, h.step_up(h.mode))
        } else {
            0.0
        };
        h.total = h.tail_down(h.mode, 1.0) + up;
        h
    }

    /// pmf(x + 1) / pmf(x), for lo <= x < hi.
    fn step_up(&self, x: u64) -> f64 {
        let num = (self.r1 - x) as f64 * (self.k - x) as f64;
        let den = (x + 1) as f64 * (self.r2 + x + 1 - self.k) as f64;
        num / den
    }

    /// pmf(x - 1) / pmf(x), for lo < x <= hi.
    fn step_down(&self, x: u64) -> f64 {
        let num = x as f64 * (self.r2 + x - self.k) as f64;
        let den = (self.r1 - x + 1) as f64 * (self.k - x + 1) as f64;
        num / den
    }

    /// w(x), walking from the mode; 0 once it underflows.
    fn weight(&self, x: u64) -> f64 {
        let mut w = 1.0;
        let mut y = self.mode;
        while y < x && w > 0.0 {
            w *= self.step_up(y);
            y += 1;
        }
        while y > x && w > 0.0 {
            w *= self.step_down(y);
            y -= 1;
        }
        w
    }

    /// Sum of w(y) for y <= x, given w(x) and x <= mode (weights fall leftwards).
    fn tail_down(&self, x: u64, wx: f64) -> f64 {
        let (mut sum, mut w, mut y) = (wx, wx, x);
        while y > self.lo && w > 0.0 {
            let f = self.step_down(y);
            w *= f;
            y -= 1;
            sum += w;
            // Later ratios are smaller still: what is left is below w f / (1 - f).
            if f < 1.0 && w * f <= (1.0 - f) * sum * 1e-17 {
                break;
            }
        }
        sum
    }

    /// Sum of w(y) for y >= x, given w(x) and x >= mode (weights fall rightwards).
    fn tail_up(&self, x: u64, wx: f64) -> f64 {
        let (mut sum, mut w, mut y) = (wx, wx, x);
        while y < self.hi && w > 0.0 {
            let f = self.step_up(y);
            w *= f;
            y += 1;
            sum += w;
            if f < 1.0 && w * f <= (1.0 - f) * sum * 1e-17 {
                break;
            }
        }
        sum
    }

    /// P(X <= a).
    fn cdf(&self, a: u64) -> f64 {
        if a >= self.hi {
            1.0
        } else if a < self.mode {
            self.tail_down(a, self.weight(a)) / self.total
        } else {
            1.0 - self.tail_up(a + 1, self.weight(a + 1)) / self.total
        }
    }

    /// P(X >= a).
    fn sf_inclusive(&self, a: u64) -> f64 {
        if a <= self.lo {
            1.0
        } else if a > self.hi {
            0.0
        } else if a > self.mode {
            self.tail_up(a, self.weight(a)) / self.total
        } else {
            1.0 - self.tail_down(a - 1, self.weight(a - 1)) / self.total
        }
    }

    /// Sum of P(X = x) over the x no more probable than the observed `a` (relative
    /// tolerance 1e-14). On the far side of the mode the boundary follows SciPy: strict
    /// `<` to the right of the mode, `<=` to its left.
    fn two_sided(&self, a: u64) -> f64 {
        let wa = self.weight(a);
        if 1.0 - wa <= TIE_TOLERANCE {
            return 1.0;
        }
        if wa == 0.0 {
            // Observed table less probable than the smallest normal f64 times the mode.
            return 0.0;
        }
        let limit = wa * (1.0 + TIE_TOLERANCE);
        let (near, far) = if a < self.mode {
            let near = self.tail_down(a, wa);
            let (mut w, mut y, mut far) = (1.0, self.mode, 0.0);
            while y < self.hi {
                w *= self.step_up(y);
                y += 1;
                if w < limit {
                    far = self.tail_up(y, w);
                    break;
                }
            }
            (near, far)
        } else {
            let near = self.tail_up(a, wa);
            let (mut w, mut y, mut far) = (1.0, self.mode, 0.0);
            while y > self.lo {
                w *= self.step_down(y);
                y -= 1;
                if w <= limit {
                    far = self.tail_down(y, w);
                    break;
                }
            }
            (near, far)
        };
        ((near + far) / self.total).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_binomial_identity() {
        // Vandermonde: sum_x C(r1, x) C(r2, k - x) = C(r1 + r2, k); with r1 = r2 = 3, k = 3:
        // weights relative to the mode (x = 1 or 2, C(3,1)C(3,2) = 9) sum to 20 / 9.
        let h = Hypergeometric::new(3, 3, 3);
        assert!((h.total - 20.0 / 9.0).abs() < 1e-15);
        assert_eq!((h.lo, h.hi), (0, 3));
    }

    #[test]
    fn tails_are_complementary() {
        let h = Hypergeometric::new(40, 55, 30);
        for a in h.lo..=h.hi {
            let both = h.cdf(a) + h.sf_inclusive(a + 1);
            assert!((both - 1.0).abs() < 1e-13, "a = {a}");
        }
    }
}
