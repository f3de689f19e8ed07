//! Sequential test of equal error rates (canary vs baseline) and a confidence sequence on
//! their ratio, from per-interval request and error counts.
//!
//! Model. Within one interval, errors of each version are Poisson with mean
//! `rate * requests`. Given the interval's total errors `K = k_c + k_b`, the canary's share
//! is `k_c ~ Binomial(K, rho(theta))` with `rho(theta) = theta n_c / (theta n_c + n_b)` and
//! `theta` the canary/baseline error-rate ratio; `rho` may change from interval to interval
//! (traffic shares drift). The same statistic stays valid when errors are Bernoulli per
//! request: then `k_c` given `K` is hypergeometric, which is dominated in convex order by
//! the binomial (sampling without replacement; Hoeffding, JASA 1963, Theorem 4), and every
//! likelihood ratio used here is convex in `k_c`, so the e-process below is a
//! supermartingale instead of a martingale (still valid, slightly conservative).
//!
//! E-process. `L_t(theta)` is the product over intervals of the binomial likelihoods; with a
//! prior `w` on a fixed grid of `ln theta`, `E_t(theta0) = sum_j w_j L_t(theta_j) / L_t(theta0)`
//! is a nonnegative martingale with mean 1 under `theta0`, so by Ville's inequality
//! `P(exists t: E_t(theta0) >= 1/alpha) <= alpha`. The test of equal rates uses
//! `theta0 = 1` with the prior restricted to the alternative's side (only `theta > 1` for
//! "canary has more errors"): because the binomial family has monotone likelihood ratio,
//! that one-sided e-process is also a supermartingale for every `theta0 < 1`. The
//! anytime-valid p-value is `min(1, 1 / max_{s <= t} E_s(1))`: nonincreasing by construction.
//!
//! Confidence sequence. `{theta0 : E_t(theta0) < 1/alpha}` with the two-sided prior. Since
//! `ln L_t` is concave in `ln theta` (a binomial log-likelihood in the logit), that set is an
//! interval of `ln theta`; only its grid points are known, so the reported interval reaches
//! out to the next grid point on each side, which contains the exact set. Intersecting
//! over looks keeps the sequence nested without losing coverage.
//!
//! Memory is the grid state (one log-likelihood per grid point), whatever the traffic.
//!
//! Source: M. Lindon, A. Malek, "Anytime-valid inference for multinomial count data",
//! NeurIPS 2022 (arXiv 2011.03567); the Poisson-to-binomial conditioning is theirs, the grid
//! mixture here is a discretised version of their conjugate mixture.

use serde::{Deserialize, Serialize};

use crate::stats::proportions::Counts;
use crate::stats::{Alternative, StatsError};

/// `ln theta` grid: steps of 2^(1/16) (about 4.4%) from 1/256 to 256.
const GRID_STEPS_PER_DOUBLING: i32 = 16;
const GRID_DOUBLINGS: i32 = 8;

/// Everything the rate-ratio test needs to be set up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateRatioConfig {
    pub alpha: f64,
    pub alternative: Alternative,
    /// Standard deviation of the normal prior on `ln theta`.
    pub prior_sd: f64,
}

/// Where the rate-ratio test stands after a look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateRatioLook {
    /// `E_t(1)`: evidence against equal error rates at this look (`"+Inf"` in JSON once
    /// it exceeds about 1e308).
    #[serde(with = "crate::stats::nonfinite::overflowed")]
    pub e_value: f64,
    /// `ln E_t(1)`: the same evidence in log space, where it is accumulated; finite at
    /// any count.
    #[serde(default = "super::unknown_ln_e", with = "crate::stats::nonfinite")]
    pub ln_e_value: f64,
    /// Anytime-valid p-value: `min(1, 1 / max e-value so far)`.
    #[serde(with = "crate::stats::nonfinite")]
    pub p_value: f64,
    /// Cumulative canary error ratio over baseline error ratio; `None` while either side
    /// has no requests or the baseline has no errors.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub ratio_estimate: Option<f64>,
    /// Confidence sequence on the error-rate ratio (canary / baseline), level `1 - alpha`,
    /// nested over looks. `lower > upper` means the running intersection is empty, an event
    /// of probability at most `alpha` under the model.
    #[serde(with = "crate::stats::nonfinite")]
    pub ratio_lower: f64,
    /// `None`: unbounded above (too few errors to bound the ratio).
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub ratio_upper: Option<f64>,
    pub canary: Counts,
    pub baseline: Counts,
}

/// State of the sequential rate-ratio test: bounded by the grid size.
#[derive(Clone, Debug)]
pub struct RateRatioTest {
    alpha: f64,
    log_theta: Vec<f64>,
    /// Two-sided prior, normalised: drives the confidence sequence.
    log_prior: Vec<f64>,
    /// Prior restricted to the alternative's side, normalised: drives the test.
    log_prior_test: Vec<f64>,
    /// `ln L_t(theta_j)` up to a constant shared by every j.
    log_lik: Vec<f64>,
    null_index: usize,
    max_log_e: f64,
    /// Running intersection of the reported interval, as grid indices; `lo` may be -1
    /// (lower bound 0) and `hi` may be `len` (unbounded above).
    cs_lo: i64,
    cs_hi: i64,
    canary: Counts,
    baseline: Counts,
}

impl RateRatioTest {
    pub fn new(config: &RateRatioConfig) -> Result<Self, StatsError> {
        if !(config.alpha > 0.0 && config.alpha < 1.0) {
            return Err(StatsError::Invalid(format!(
                "alpha {} is not in (0, 1)",
                config.alpha
            )));
        }
        if !(config.prior_sd.is_finite() && config.prior_sd > 0.0) {
            return Err(StatsError::Invalid(format!(
                "prior_sd {} must be a positive number",
                config.prior_sd
            )));
        }
        let half = GRID_STEPS_PER_DOUBLING * GRID_DOUBLINGS;
        let step = std::f64::consts::LN_2 / f64::from(GRID_STEPS_PER_DOUBLING);
        let log_theta: Vec<f64> = (-half..=half).map(|i| f64::from(i) * step).collect();
        let sd = config.prior_sd;
        let raw: Vec<f64> = log_theta.iter().map(|s| -0.5 * (s / sd).powi(2)).collect();
        let log_prior = normalise(&raw, |_| true);
        let log_prior_test = match config.alternative {
            Alternative::TwoSided => log_prior.clone(),
            Alternative::Greater => normalise(&raw, |s| s > 0.0),
            Alternative::Less => normalise(&raw, |s| s < 0.0),
        };
        let len = log_theta.len();
        Ok(RateRatioTest {
            alpha: config.alpha,
            null_index: half as usize,
            log_lik: vec![0.0; len],
            log_theta,
            log_prior,
            log_prior_test,
            max_log_e: 0.0,
            cs_lo: -1,
            cs_hi: len as i64,
            canary: Counts::default(),
            baseline: Counts::default(),
        })
    }

    /// Takes in what arrived since the previous look and returns where the test stands.
    pub fn update(
        &mut self,
        canary: Counts,
        baseline: Counts,
    ) -> Result<RateRatioLook, StatsError> {
        check_counts(canary, "canary")?;
        check_counts(baseline, "baseline")?;
        self.canary.requests = self.canary.requests.saturating_add(canary.requests);
        self.canary.errors = self.canary.errors.saturating_add(canary.errors);
        self.baseline.requests = self.baseline.requests.saturating_add(baseline.requests);
        self.baseline.errors = self.baseline.errors.saturating_add(baseline.errors);

        let total = canary.errors.saturating_add(baseline.errors);
        // With no errors, or with one side silent, every theta explains the interval
        // equally well: the likelihood ratio is 1 and the state does not move.
        if total > 0 && canary.requests > 0 && baseline.requests > 0 {
            let kc = canary.errors as f64;
            let k = total as f64;
            let log_share = (canary.requests as f64).ln() - (baseline.requests as f64).ln();
            for (ll, s) in self.log_lik.iter_mut().zip(&self.log_theta) {
                // k_c ln rho + k_b ln(1 - rho), dropping terms that do not depend on theta.
                *ll += kc * s - k * ln_1p_exp(s + log_share);
            }
        }

        let null = self.log_lik[self.null_index];
        let log_e = log_sum_exp(&self.log_prior_test, &self.log_lik) - null;
        self.max_log_e = self.max_log_e.max(log_e);

        let threshold = (1.0 / self.alpha).ln();
        let log_mix = log_sum_exp(&self.log_prior, &self.log_lik);
        let inside = |j: usize| log_mix - self.log_lik[j] < threshold;
        let len = self.log_lik.len();
        // The set is an interval (concavity), so the first and last grid points inside
        // bound it; reach one point further out on each side to contain the exact set.
        let (lo, hi) = match (0..len).find(|&j| inside(j)) {
            Some(first) => {
                let last = (0..len).rev().find(|&j| inside(j)).unwrap_or(first);
                (first as i64 - 1, last as i64 + 1)
            }
            // Empty on the grid: the exact set lies between two neighbouring grid points
            // at most, around the likelihood's maximum.
            None => {
                let best = argmax(&self.log_lik) as i64;
                (best - 1, best + 1)
            }
        };
        self.cs_lo = self.cs_lo.max(lo);
        self.cs_hi = self.cs_hi.min(hi);

        Ok(RateRatioLook {
            e_value: log_e.exp(),
            ln_e_value: log_e,
            p_value: (-self.max_log_e).exp().min(1.0),
            ratio_estimate: ratio_estimate(self.canary, self.baseline),
            ratio_lower: self.theta_at(self.cs_lo).unwrap_or(0.0),
            ratio_upper: self.theta_at(self.cs_hi),
            canary: self.canary,
            baseline: self.baseline,
        })
    }

    /// The grid value at `index`; `None` past the top of the grid (unbounded), and also
    /// below the bottom, where callers use 0.
    fn theta_at(&self, index: i64) -> Option<f64> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.log_theta.get(i))
            .map(|s| s.exp())
    }

    /// Significance level the test was set up with.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }
}

fn check_counts(counts: Counts, which: &str) -> Result<(), StatsError> {
    if counts.errors > counts.requests {
        return Err(StatsError::Invalid(format!(
            "{which} counts: {} errors out of {} requests",
            counts.errors, counts.requests
        )));
    }
    Ok(())
}

fn ratio_estimate(canary: Counts, baseline: Counts) -> Option<f64> {
    if canary.requests == 0 || baseline.requests == 0 || baseline.errors == 0 {
        return None;
    }
    let c = canary.errors as f64 / canary.requests as f64;
    let b = baseline.errors as f64 / baseline.requests as f64;
    Some(c / b)
}

/// Log-weights proportional to `exp(raw)` on the points `keep` accepts, normalised to sum
/// to one; points left out get `-inf`.
fn normalise(raw: &[f64], keep: impl Fn(f64) -> bool) -> Vec<f64> {
    let step = std::f64::consts::LN_2 / f64::from(GRID_STEPS_PER_DOUBLING);
    let half = GRID_STEPS_PER_DOUBLING * GRID_DOUBLINGS;
    let kept: Vec<f64> = raw
        .iter()
        .enumerate()
        .map(|(j, r)| {
            let s = f64::from(j as i32 - half) * step;
            if keep(s) { *r } else { f64::NEG_INFINITY }
        })
        .collect();
    let zeros = vec![0.0; kept.len()];
    let total = log_sum_exp(&kept, &zeros);
    kept.iter().map(|k| k - total).collect()
}

/// `ln sum_j exp(a_j + b_j)`, stable for large magnitudes.
fn log_sum_exp(a: &[f64], b: &[f64]) -> f64 {
    let max = a
        .iter()
        .zip(b)
        .map(|(x, y)| x + y)
        .fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    let sum: f64 = a.iter().zip(b).map(|(x, y)| (x + y - max).exp()).sum();
    max + sum.ln()
}

/// `ln(1 + e^x)` without overflow.
fn ln_1p_exp(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (j, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = j;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(requests: u64, errors: u64) -> Counts {
        Counts { requests, errors }
    }

    fn test(alternative: Alternative) -> RateRatioTest {
        RateRatioTest::new(&RateRatioConfig {
            alpha: 0.01,
            alternative,
            prior_sd: 1.0,
        })
        .unwrap()
    }

    #[test]
    fn no_errors_means_no_evidence() {
        let mut t = test(Alternative::Greater);
        let look = t.update(counts(1000, 0), counts(1000, 0)).unwrap();
        assert_eq!(look.p_value, 1.0);
        assert!((look.e_value - 1.0).abs() < 1e-12);
        assert_eq!(look.ratio_lower, 0.0);
        assert_eq!(look.ratio_upper, None);
    }

    #[test]
    fn one_sided_e_value_matches_direct_sum() {
        // A single interval: E = sum_j w_j (rho_j/rho)^kc ((1-rho_j)/(1-rho))^kb over theta_j > 1.
        let mut t = test(Alternative::Greater);
        let look = t.update(counts(3000, 25), counts(1000, 4)).unwrap();
        let rho = 0.75f64;
        let step = std::f64::consts::LN_2 / 16.0;
        let mut num = 0.0;
        let mut den = 0.0;
        for i in 1..=128 {
            let s = f64::from(i) * step;
            let w = (-0.5 * s * s).exp();
            let th = s.exp();
            let r = th * 3000.0 / (th * 3000.0 + 1000.0);
            num += w * (r / rho).powi(25) * ((1.0 - r) / (1.0 - rho)).powi(4);
            den += w;
        }
        let expected = num / den;
        assert!(
            (look.e_value / expected - 1.0).abs() < 1e-9,
            "{} vs {expected}",
            look.e_value
        );
    }

    #[test]
    fn clear_increase_is_rejected_and_interval_excludes_one() {
        let mut t = test(Alternative::Greater);
        let mut last = None;
        for _ in 0..10 {
            last = Some(t.update(counts(1500, 15), counts(1500, 5)).unwrap());
        }
        let look = last.unwrap();
        assert!(look.p_value < 0.01, "{look:?}");
        assert!(look.ratio_lower > 1.0, "{look:?}");
        assert!(look.ratio_upper.unwrap() > 3.0 * 0.9, "{look:?}");
        assert!((look.ratio_estimate.unwrap() - 3.0).abs() < 1e-12);
    }

    #[test]
    fn decrease_is_no_evidence_for_greater_but_is_for_less() {
        let mut greater = test(Alternative::Greater);
        let mut less = test(Alternative::Less);
        let (mut pg, mut pl) = (1.0, 1.0);
        for _ in 0..10 {
            pg = greater
                .update(counts(1500, 2), counts(1500, 12))
                .unwrap()
                .p_value;
            pl = less
                .update(counts(1500, 2), counts(1500, 12))
                .unwrap()
                .p_value;
        }
        assert!(pg > 0.5, "{pg}");
        assert!(pl < 0.01, "{pl}");
    }

    #[test]
    fn p_value_nonincreasing_and_interval_nested() {
        let mut t = test(Alternative::TwoSided);
        let mut prev_p = 1.0;
        let (mut prev_lo, mut prev_hi) = (0.0, f64::INFINITY);
        let pattern = [(3, 1), (0, 4), (7, 2), (1, 1), (0, 0), (9, 3), (2, 6)];
        for (i, (kc, kb)) in pattern.iter().cycle().take(40).enumerate() {
            let look = t
                .update(counts(1000 + i as u64, *kc), counts(900, *kb))
                .unwrap();
            assert!(look.p_value <= prev_p);
            let hi = look.ratio_upper.unwrap_or(f64::INFINITY);
            assert!(look.ratio_lower >= prev_lo && hi <= prev_hi);
            prev_p = look.p_value;
            prev_lo = look.ratio_lower;
            prev_hi = hi;
        }
    }

    #[test]
    fn refuses_more_errors_than_requests() {
        let mut t = test(Alternative::Greater);
        let err = t.update(counts(10, 11), counts(10, 0)).unwrap_err();
        assert!(
            err.to_string()
                .contains("canary counts: 11 errors out of 10 requests")
        );
    }
}
