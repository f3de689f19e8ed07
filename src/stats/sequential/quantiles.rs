//! The sequential latency test, from histograms: per watched quantile, an exceedance test
//! at the baseline's quantile (rejection, p-value), and time-uniform confidence bands on
//! each version's quantile function (the confidence sequence on the differences, and
//! early equivalence).
//!
//! Band. For `t >= t_min` observations of one version, with empirical CDF `F_t`,
//! `P(exists t >= t_min: sup_x |F_t(x) - F(x)| > eps_t) <= alpha` for
//! `eps_t = A sqrt((ln(1 + ln(t / t_min)) + C) / t)`, `A > 1/sqrt(2)`, where `C` is chosen
//! so that the stitching bound of the crossing probability,
//! `min over eta of 4 exp(-g C) (1 + 1 / ((g - 1) ln eta))` with
//! `g = (2 / eta) (A - sqrt(2 (eta - 1) / C))^2 > 1`, equals `alpha`. The bound does not
//! depend on `t_min`: time only enters as `t / t_min`.
//! (S. R. Howard, A. Ramdas, "Sequential estimation of quantiles with applications to
//! A/B-testing and best-arm identification", Bernoulli 28(3), 2022, Theorem 2.)
//!
//! From histograms. Only bucket counts are kept. For a target probability `p`, the lower
//! quantile bound is the LOWER edge of the first bucket whose cumulative count reaches
//! `n (p - eps)`, the upper bound the UPPER edge of the first bucket whose cumulative count
//! reaches `n (p + eps)`. Every observation lies inside its bucket (whether buckets are
//! closed at the lower or the upper edge does not matter), so these edges bound
//! the empirical quantiles of the raw data and discretisation cannot break coverage; it
//! only widens the band by at most one bucket (about 1%).
//!
//! Test. Rejection does not come from the bands: for each watched quantile `q`, an
//! exceedance test ([`super::exceedance`]) asks whether the canary is more likely than the
//! baseline to be slower than the baseline's `q`-quantile as estimated from the EARLIER
//! looks (the upper edge of its bucket, a predictable threshold). The watched quantiles'
//! e-values are averaged (an average of e-processes is an e-process; the quantile nearest
//! the median weighs 1/2, the others share the other half), and the test rejects
//! when that average reaches `1 / alpha`; the p-value is `1 / ` its running maximum.
//! Under the null "the canary is stochastically no slower than the baseline" (at every
//! look, every threshold is exceeded by the canary with at most the baseline's
//! probability), the test ever rejects with probability at most `alpha`. The first look
//! (no earlier baseline data, as in a one-shot judgment) is tested at the quantile of both
//! versions pooled; that threshold is a function of the pooled sample, so under identical
//! distributions the canary's share above it is hypergeometric given the pooled sample and
//! the look's factor still has mean 1 (the argument of Mood's median test).
//!
//! Bands. Each version's band holds at `alpha / 2`, so both hold together with
//! probability `1 - alpha` at every look and every quantile: the band on
//! `Q_c(q) - Q_b(q)`, `[L_c(q) - U_b(q), U_c(q) - L_b(q)]`, is a confidence sequence in its
//! own right, intersected over looks (still valid on the same event), so nested. It is
//! reported and drives early equivalence; it is wider than the test needs, so a rejection
//! may come while the difference band still holds zero.
//!
//! Memory: the two histograms, the previous look's bins, and per watched quantile four
//! band ends and one grid of log-likelihood ratios.

use serde::{Deserialize, Serialize};

use super::exceedance::ExceedanceTest;
use crate::stats::{Alternative, LogHistogram, StatsError};

/// Default `A` of the boundary.
pub const DEFAULT_A: f64 = 0.85;

/// Upper bound on `P(exists t >= t_min: sup |F_t - F| > A sqrt((ln(1 + ln(t/t_min)) + c)/t))`,
/// minimised over the stitching ratio `eta`. Infinite where the argument does not apply.
pub fn crossing_probability(a: f64, c: f64) -> f64 {
    if !(a > std::f64::consts::FRAC_1_SQRT_2 && c > 0.0) {
        return f64::INFINITY;
    }
    let bound = |eta: f64| {
        let root = a - (2.0 * (eta - 1.0) / c).sqrt();
        if root <= 0.0 {
            return f64::INFINITY;
        }
        let g = 2.0 / eta * root * root;
        if g <= 1.0 {
            return f64::INFINITY;
        }
        4.0 * (-g * c).exp() * (1.0 + 1.0 / ((g - 1.0) * eta.ln()))
    };
    // g > 1 needs sqrt(eta/2) + sqrt(2(eta-1)/c) < a: bisect for the largest such eta.
    let edge = |eta: f64| (eta / 2.0).sqrt() + (2.0 * (eta - 1.0) / c).sqrt() - a;
    let (mut lo, mut hi) = (1.0, 2.0 * a * a);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if edge(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let eta_max = lo;
    if eta_max <= 1.0 {
        return f64::INFINITY;
    }
    // Scan ln(eta - 1) on a grid, then refine around the best point by golden section:
    // the bound blows up at both ends and has one valley in between.
    let (u_lo, u_hi) = ((1e-9f64).ln(), (eta_max - 1.0).ln());
    let points = 200;
    let u_at = |i: usize| u_lo + (u_hi - u_lo) * i as f64 / points as f64;
    let f = |u: f64| bound(1.0 + u.exp());
    let best = (0..=points)
        .min_by(|&i, &j| f(u_at(i)).total_cmp(&f(u_at(j))))
        .unwrap_or(0);
    let (mut x0, mut x1) = (u_at(best.saturating_sub(1)), u_at((best + 1).min(points)));
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..80 {
        let m0 = x1 - ratio * (x1 - x0);
        let m1 = x0 + ratio * (x1 - x0);
        if f(m0) < f(m1) {
            x1 = m1;
        } else {
            x0 = m0;
        }
    }
    f(0.5 * (x0 + x1)).min(f(u_at(best)))
}

/// The `C` whose crossing probability is `alpha` (to within 1e-12 relative in `C`,
/// rounded towards the larger, safer value).
pub fn lil_constant(alpha: f64, a: f64) -> Result<f64, StatsError> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(StatsError::Invalid(format!(
            "alpha {alpha} is not in (0, 1)"
        )));
    }
    if !(a > std::f64::consts::FRAC_1_SQRT_2 && a.is_finite()) {
        return Err(StatsError::Invalid(format!(
            "boundary constant A = {a} must exceed 1/sqrt(2)"
        )));
    }
    let (mut lo, mut hi) = (1e-3, 1.0);
    while crossing_probability(a, hi) > alpha {
        hi *= 2.0;
        if hi > 1e6 {
            return Err(StatsError::Invalid(format!(
                "no boundary constant reaches alpha {alpha} with A = {a}"
            )));
        }
    }
    while hi - lo > 1e-12 * hi {
        let mid = 0.5 * (lo + hi);
        if crossing_probability(a, mid) > alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

/// `A sqrt((ln(1 + ln(t / t_min)) + c) / t)`; infinite before `t_min` observations.
pub fn lil_radius(t: f64, t_min: f64, a: f64, c: f64) -> f64 {
    if t < t_min || t <= 0.0 {
        return f64::INFINITY;
    }
    a * (((1.0 + (t / t_min).ln()).ln() + c) / t).sqrt()
}

/// One version's cumulative bucket counts with bucket edges: what the quantile bounds
/// are read from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bins {
    lower: Vec<f64>,
    upper: Vec<f64>,
    cumulative: Vec<u64>,
}

impl Bins {
    /// From `(lower edge, upper edge, count)` in ascending order; empty buckets are skipped.
    pub fn new(buckets: impl IntoIterator<Item = (f64, f64, u64)>) -> Result<Self, StatsError> {
        let mut bins = Bins::default();
        let mut total = 0u64;
        for (lo, hi, count) in buckets {
            if count == 0 {
                continue;
            }
            let prev = bins.upper.last().copied().unwrap_or(f64::NEG_INFINITY);
            if !(lo <= hi && lo >= prev) {
                return Err(StatsError::Invalid(format!(
                    "bucket [{lo}, {hi}] is not ascending after a bucket ending at {prev}"
                )));
            }
            total += count;
            bins.lower.push(lo);
            bins.upper.push(hi);
            bins.cumulative.push(total);
        }
        Ok(bins)
    }

    /// The non-empty buckets of a histogram, with their edges. The top bucket also holds
    /// every clamped larger value, so its upper edge is unbounded.
    pub fn from_histogram(histogram: &LogHistogram) -> Self {
        let mut bins = Bins::default();
        let mut total = 0u64;
        for (index, count) in histogram.buckets() {
            if count == 0 {
                continue;
            }
            let (lo, mut hi) = LogHistogram::bucket_bounds(index);
            if index >= crate::stats::histogram::MAX_INDEX {
                hi = f64::INFINITY;
            }
            total += count;
            bins.lower.push(lo);
            bins.upper.push(hi);
            bins.cumulative.push(total);
        }
        bins
    }

    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// Index of the first bucket whose cumulative count reaches `n * p`; `None` if `p > 1`.
    fn first_reaching(&self, p: f64) -> Option<usize> {
        let need = self.count() as f64 * p;
        let i = self.cumulative.partition_point(|&c| (c as f64) < need);
        (i < self.cumulative.len()).then_some(i)
    }

    /// A value at or below `Q(q)` whenever `sup |F_t - F| <= eps`; `-inf` if none is known.
    pub fn quantile_lower(&self, q: f64, eps: f64) -> f64 {
        let p = q - eps;
        if p <= 0.0 || self.count() == 0 {
            return f64::NEG_INFINITY;
        }
        self.first_reaching(p)
            .map_or(f64::NEG_INFINITY, |i| self.lower[i])
    }

    /// A value at or above `Q(q)` whenever `sup |F_t - F| <= eps`; `+inf` if none is known.
    pub fn quantile_upper(&self, q: f64, eps: f64) -> f64 {
        let p = q + eps;
        if p > 1.0 || self.count() == 0 {
            return f64::INFINITY;
        }
        self.first_reaching(p)
            .map_or(f64::INFINITY, |i| self.upper[i])
    }

    /// The threshold the exceedance test uses for quantile `q`: the upper edge of the
    /// bucket holding the empirical `q`-quantile; `None` when empty or unbounded.
    pub fn threshold(&self, q: f64) -> Option<f64> {
        if self.count() == 0 {
            return None;
        }
        let i = self.first_reaching(q)?;
        let t = self.upper[i];
        t.is_finite().then_some(t)
    }

    /// Both versions' buckets together (the same bucket grid on both sides).
    pub fn pooled(a: &Bins, b: &Bins) -> Bins {
        let bucket = |bins: &Bins, i: usize| {
            let before = if i == 0 { 0 } else { bins.cumulative[i - 1] };
            (bins.lower[i], bins.upper[i], bins.cumulative[i] - before)
        };
        let (mut i, mut j) = (0, 0);
        let mut merged = Vec::with_capacity(a.lower.len() + b.lower.len());
        while i < a.lower.len() || j < b.lower.len() {
            let take_a = j >= b.lower.len() || (i < a.lower.len() && a.lower[i] <= b.lower[j]);
            let next = if take_a {
                i += 1;
                bucket(a, i - 1)
            } else {
                j += 1;
                bucket(b, j - 1)
            };
            match merged.last_mut() {
                Some((lo, hi, n)) if *lo == next.0 && *hi == next.1 => *n += next.2,
                _ => merged.push(next),
            }
        }
        let mut bins = Bins::default();
        let mut total = 0;
        for (lo, hi, n) in merged {
            total += n;
            bins.lower.push(lo);
            bins.upper.push(hi);
            bins.cumulative.push(total);
        }
        bins
    }

    /// Observations in buckets that lie at or above `threshold` (lower edge >= it). On a
    /// fixed grid of buckets this is a nondecreasing function of each value.
    pub fn count_above(&self, threshold: f64) -> u64 {
        let below = self.lower.partition_point(|&l| l < threshold);
        let under = if below == 0 {
            0
        } else {
            self.cumulative[below - 1]
        };
        self.count() - under
    }
}

/// What the latency test is set up with.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyConfig {
    pub alpha: f64,
    pub alternative: Alternative,
    pub quantiles: Vec<f64>,
    /// `t_min`: observations a version needs before its band is finite.
    pub min_samples: u64,
    pub a: f64,
}

/// Standard deviation of the normal prior on the log odds ratio of the exceedance test.
/// A +10% median shift of a lognormal with log-sd 0.5 moves the log odds at the median by
/// 0.3; a p99 that grows by 30% moves them at p99 by about 1.
pub const EXCEEDANCE_PRIOR_SD: f64 = 0.5;

/// The precomputed part of a latency test (the band constant): build it once, start any
/// number of tests from it.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyPlan {
    config: LatencyConfig,
    /// `C` of each version's band, at `alpha / 2`.
    c: f64,
}

impl LatencyPlan {
    pub fn new(config: &LatencyConfig) -> Result<Self, StatsError> {
        if config.quantiles.is_empty() {
            return Err(StatsError::Invalid("no quantile to watch".into()));
        }
        if let Some(q) = config.quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
            return Err(StatsError::Invalid(format!(
                "watched quantile {q} is not in (0, 1)"
            )));
        }
        if config.min_samples == 0 {
            return Err(StatsError::Invalid("min_samples must be at least 1".into()));
        }
        // Each version's band holds at alpha / 2.
        let c = lil_constant(config.alpha / 2.0, config.a)?;
        Ok(LatencyPlan {
            config: config.clone(),
            c,
        })
    }

    pub fn config(&self) -> &LatencyConfig {
        &self.config
    }

    /// The band radius of a version holding `t` observations, at the configured alpha.
    pub fn radius(&self, t: u64) -> f64 {
        lil_radius(
            t as f64,
            self.config.min_samples as f64,
            self.config.a,
            self.c,
        )
    }
}

/// Band on one watched quantile at the configured alpha, as it stands after a look
/// (intersected over looks). Infinite ends are `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuantileBand {
    #[serde(with = "crate::stats::nonfinite")]
    pub quantile: f64,
    pub canary: Interval,
    pub baseline: Interval,
    /// canary - baseline.
    pub difference: Interval,
    /// canary / baseline (positive values only).
    pub ratio: Interval,
}

/// A closed interval whose ends may be unbounded (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Interval {
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub lower: Option<f64>,
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub upper: Option<f64>,
}

impl Interval {
    fn new(lower: f64, upper: f64) -> Self {
        Interval {
            lower: lower.is_finite().then_some(lower),
            upper: upper.is_finite().then_some(upper),
        }
    }
}

/// The exceedance test at one watched quantile after a look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExceedanceLook {
    #[serde(with = "crate::stats::nonfinite")]
    pub quantile: f64,
    /// The threshold this look was tested at (the baseline's quantile from the earlier
    /// looks); `None` before there is one.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub threshold: Option<f64>,
    /// Observations tested so far, and how many were above their look's threshold.
    pub canary_total: u64,
    pub canary_above: u64,
    pub baseline_total: u64,
    pub baseline_above: u64,
    /// This quantile's mixture e-value (`"+Inf"` once it exceeds about 1e308).
    #[serde(with = "crate::stats::nonfinite::overflowed")]
    pub e_value: f64,
    /// Its natural log, finite at any count.
    #[serde(default = "super::unknown_ln_e", with = "crate::stats::nonfinite")]
    pub ln_e_value: f64,
}

/// Where the latency test stands after a look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LatencyLook {
    /// Anytime-valid p-value of the exceedance test (`1 / max` of the averaged e-value).
    #[serde(with = "crate::stats::nonfinite")]
    pub p_value: f64,
    /// The weighted average of the watched quantiles' e-values at this look (`"+Inf"`
    /// once it exceeds about 1e308).
    #[serde(with = "crate::stats::nonfinite::overflowed")]
    pub e_value: f64,
    /// Its natural log, finite at any count.
    #[serde(default = "super::unknown_ln_e", with = "crate::stats::nonfinite")]
    pub ln_e_value: f64,
    pub canary_count: u64,
    pub baseline_count: u64,
    /// Band radius (in probability) of each version at the configured alpha.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub canary_radius: Option<f64>,
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub baseline_radius: Option<f64>,
    /// Confidence sequence: per watched quantile, the bands of each version and of the
    /// difference and ratio.
    pub bands: Vec<QuantileBand>,
    pub exceedance: Vec<ExceedanceLook>,
}

/// State of the sequential latency test for one canary/baseline pair.
#[derive(Clone, Debug)]
pub struct LatencyTest {
    plan: LatencyPlan,
    canary: LogHistogram,
    baseline: LogHistogram,
    /// Cumulative bins as of the previous look: the thresholds come from these.
    previous_canary: Bins,
    previous_baseline: Bins,
    /// Running intersection of each version's band, per watched quantile: `(lower, upper)`.
    canary_bands: Vec<(f64, f64)>,
    baseline_bands: Vec<(f64, f64)>,
    tests: Vec<ExceedanceTest>,
    thresholds: Vec<Option<f64>>,
    /// Weight of each watched quantile's e-value in the average (they sum to 1).
    weights: Vec<f64>,
    /// Largest `ln` of the averaged e-value so far: kept in log space so that no amount
    /// of evidence overflows it.
    max_ln_e: f64,
}

/// The watched quantile nearest the median gets half the weight (a shift moves every
/// quantile, and the median is measured best); the others share the other half.
fn quantile_weights(quantiles: &[f64]) -> Vec<f64> {
    if quantiles.len() == 1 {
        return vec![1.0];
    }
    let centre = (0..quantiles.len())
        .min_by(|&i, &j| {
            (quantiles[i] - 0.5)
                .abs()
                .total_cmp(&(quantiles[j] - 0.5).abs())
        })
        .unwrap_or(0);
    let rest = 0.5 / (quantiles.len() - 1) as f64;
    (0..quantiles.len())
        .map(|i| if i == centre { 0.5 } else { rest })
        .collect()
}

impl LatencyTest {
    pub fn new(plan: &LatencyPlan) -> Self {
        let qs = plan.config.quantiles.len();
        LatencyTest {
            plan: plan.clone(),
            canary: LogHistogram::default(),
            baseline: LogHistogram::default(),
            previous_canary: Bins::default(),
            previous_baseline: Bins::default(),
            canary_bands: vec![(f64::NEG_INFINITY, f64::INFINITY); qs],
            baseline_bands: vec![(f64::NEG_INFINITY, f64::INFINITY); qs],
            tests: vec![ExceedanceTest::new(plan.config.alternative, EXCEEDANCE_PRIOR_SD); qs],
            thresholds: vec![None; qs],
            weights: quantile_weights(&plan.config.quantiles),
            max_ln_e: 0.0,
        }
    }

    /// Adds what arrived since the previous look and returns where the test stands.
    pub fn update(&mut self, canary: &LogHistogram, baseline: &LogHistogram) -> LatencyLook {
        self.canary.merge(canary);
        self.baseline.merge(baseline);
        let c = Bins::from_histogram(&self.canary);
        let b = Bins::from_histogram(&self.baseline);
        self.update_bins(&c, &b)
    }

    /// The look itself, on the CUMULATIVE bins of both versions (every look on the same
    /// bucket boundaries, as histograms are).
    pub fn update_bins(&mut self, canary: &Bins, baseline: &Bins) -> LatencyLook {
        let quantiles = self.plan.config.quantiles.clone();
        // The exceedance tests: each look's new observations against thresholds fixed
        // by the earlier looks.
        // Before any baseline data, the first look is tested at the quantile of both
        // versions pooled: a function of the pooled sample only, which is exchangeable
        // between the versions when they do not differ.
        let first = self.previous_baseline.count() == 0;
        let pooled = first.then(|| Bins::pooled(canary, baseline));
        for (k, &q) in quantiles.iter().enumerate() {
            let threshold = match &pooled {
                Some(p) => p.threshold(q),
                None => self.previous_baseline.threshold(q),
            };
            self.thresholds[k] = threshold;
            let Some(t) = threshold else { continue };
            let delta = |now: &Bins, before: &Bins| {
                let n = now.count().saturating_sub(before.count());
                let a = now.count_above(t).saturating_sub(before.count_above(t));
                (n, a.min(n))
            };
            let (n_c, a_c) = if first {
                (canary.count(), canary.count_above(t).min(canary.count()))
            } else {
                delta(canary, &self.previous_canary)
            };
            let (n_b, a_b) = delta(baseline, &self.previous_baseline);
            self.tests[k].update(n_c, a_c, n_b, a_b);
        }
        let ln_e_values: Vec<f64> = self.tests.iter().map(ExceedanceTest::ln_e_value).collect();
        // A weighted average of e-processes is an e-process: no quantile needs its own
        // alpha. Averaged in log space (ln sum w_k e_k), so it stays finite at any count.
        let weighted: Vec<f64> = ln_e_values
            .iter()
            .zip(&self.weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(l, w)| l + w.ln())
            .collect();
        let ln_e = ln_sum_exp(&weighted);
        self.max_ln_e = self.max_ln_e.max(ln_e);

        // The bands (confidence sequence), intersected over looks.
        let ec = self.plan.radius(canary.count());
        let eb = self.plan.radius(baseline.count());
        for (k, &q) in quantiles.iter().enumerate() {
            tighten(&mut self.canary_bands[k], canary, q, ec);
            tighten(&mut self.baseline_bands[k], baseline, q, eb);
        }
        let bands = quantiles
            .iter()
            .enumerate()
            .map(|(k, &q)| {
                let (cl, cu) = self.canary_bands[k];
                let (bl, bu) = self.baseline_bands[k];
                let ratio_lower = if cl > 0.0 && bu.is_finite() {
                    cl / bu
                } else {
                    0.0
                };
                let ratio_upper = if bl > 0.0 { cu / bl } else { f64::INFINITY };
                QuantileBand {
                    quantile: q,
                    canary: Interval::new(cl, cu),
                    baseline: Interval::new(bl, bu),
                    difference: Interval::new(cl - bu, cu - bl),
                    ratio: Interval::new(ratio_lower, ratio_upper),
                }
            })
            .collect();
        let exceedance = quantiles
            .iter()
            .enumerate()
            .map(|(k, &q)| {
                let t = &self.tests[k];
                ExceedanceLook {
                    quantile: q,
                    threshold: self.thresholds[k],
                    canary_total: t.canary_total,
                    canary_above: t.canary_above,
                    baseline_total: t.baseline_total,
                    baseline_above: t.baseline_above,
                    e_value: ln_e_values[k].exp(),
                    ln_e_value: ln_e_values[k],
                }
            })
            .collect();
        self.previous_canary = canary.clone();
        self.previous_baseline = baseline.clone();
        let finite = |e: f64| e.is_finite().then_some(e);
        LatencyLook {
            p_value: self.p_value(),
            e_value: ln_e.exp(),
            ln_e_value: ln_e,
            canary_count: canary.count(),
            baseline_count: baseline.count(),
            canary_radius: finite(ec),
            baseline_radius: finite(eb),
            bands,
            exceedance,
        }
    }

    /// `min(1, 1 / largest averaged e-value so far)`: never rises.
    pub fn p_value(&self) -> f64 {
        (-self.max_ln_e).exp().min(1.0)
    }

    /// True once the test has rejected at the configured alpha.
    pub fn rejected(&self) -> bool {
        self.p_value() <= self.plan.config.alpha
    }

    /// True when every watched quantile's ratio band (configured alpha) lies within
    /// `[1 / (1 + margin), 1 + margin]`.
    pub fn equivalent(&self, margin: f64) -> bool {
        self.canary_bands
            .iter()
            .zip(&self.baseline_bands)
            .all(|(&(cl, cu), &(bl, bu))| {
                cl > 0.0 && bl > 0.0 && cl / bu >= 1.0 / (1.0 + margin) && cu / bl <= 1.0 + margin
            })
    }
}

fn tighten(band: &mut (f64, f64), bins: &Bins, q: f64, eps: f64) {
    band.0 = band.0.max(bins.quantile_lower(q, eps));
    band.1 = band.1.min(bins.quantile_upper(q, eps));
}

/// `ln sum exp(v)`, stable; `-inf` for an empty slice.
fn ln_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buckets `[k, k+1)` with the given counts.
    fn unit_bins(counts: &[u64]) -> Bins {
        Bins::new(
            counts
                .iter()
                .enumerate()
                .map(|(k, &c)| (k as f64, k as f64 + 1.0, c)),
        )
        .unwrap()
    }

    fn config(alternative: Alternative) -> LatencyConfig {
        LatencyConfig {
            alpha: 0.01,
            alternative,
            quantiles: vec![0.5, 0.9],
            min_samples: 100,
            a: DEFAULT_A,
        }
    }

    #[test]
    fn quantile_bounds_use_bucket_edges() {
        let bins = unit_bins(&[10; 10]);
        assert_eq!(bins.count(), 100);
        // n (q - eps) = 40 is first reached by bucket 3 (cumulative 40): its lower edge.
        assert_eq!(bins.quantile_lower(0.5, 0.1), 3.0);
        // n (q + eps) = 60 is first reached by bucket 5: its upper edge.
        assert_eq!(bins.quantile_upper(0.5, 0.1), 6.0);
        assert_eq!(bins.quantile_lower(0.05, 0.1), f64::NEG_INFINITY);
        assert_eq!(bins.quantile_upper(0.95, 0.1), f64::INFINITY);
        // eps = 0 brackets the empirical quantile by its bucket.
        assert_eq!(bins.quantile_lower(0.55, 0.0), 5.0);
        assert_eq!(bins.quantile_upper(0.55, 0.0), 6.0);
    }

    #[test]
    fn empty_buckets_are_skipped_and_order_is_checked() {
        let bins = unit_bins(&[0, 5, 0, 5]);
        assert_eq!(bins.quantile_lower(0.5, 0.0), 1.0);
        assert_eq!(bins.quantile_upper(0.6, 0.0), 4.0);
        let err = Bins::new([(2.0, 3.0, 1), (1.0, 2.0, 1)]).unwrap_err();
        assert!(err.to_string().contains("not ascending"), "{err}");
    }

    #[test]
    fn radius_is_infinite_before_t_min_and_shrinks_after() {
        assert_eq!(lil_radius(99.0, 100.0, DEFAULT_A, 9.0), f64::INFINITY);
        let r1 = lil_radius(1_000.0, 100.0, DEFAULT_A, 9.0);
        let r2 = lil_radius(10_000.0, 100.0, DEFAULT_A, 9.0);
        assert!(r2 < r1 && r1 < 1.0);
        let expected = DEFAULT_A * (((1.0 + 10f64.ln()).ln() + 9.0) / 1000.0).sqrt();
        assert!((r1 - expected).abs() < 1e-15);
    }

    #[test]
    fn thresholds_and_counts_above_use_bucket_edges() {
        let bins = unit_bins(&[10, 20, 30, 40]);
        // The median (50th of 100) is in bucket 2: the threshold is its upper edge.
        assert_eq!(bins.threshold(0.5), Some(3.0));
        assert_eq!(bins.count_above(3.0), 40);
        assert_eq!(bins.count_above(0.0), 100);
        assert_eq!(bins.count_above(4.5), 0);
        assert_eq!(Bins::default().threshold(0.5), None);
    }

    /// A discretised normal-ish shape of `n` observations, shifted by `shift` buckets.
    fn shape(n: u64, shift: usize) -> Bins {
        let weights = [1u64, 3, 8, 15, 22, 22, 15, 8, 3, 1, 1, 1];
        let total: u64 = weights.iter().sum();
        let mut counts = vec![0u64; shift];
        counts.extend(weights.iter().map(|w| w * n / total));
        unit_bins(&counts)
    }

    #[test]
    fn identical_versions_never_reject() {
        let plan = LatencyPlan::new(&config(Alternative::TwoSided)).unwrap();
        let mut test = LatencyTest::new(&plan);
        for look in 1..=20 {
            let bins = shape(2_000 * look, 0);
            let out = test.update_bins(&bins, &bins);
            assert_eq!(out.p_value, 1.0);
        }
        assert!(!test.rejected());
    }

    #[test]
    fn a_shift_is_rejected_with_nested_bands_and_falling_p() {
        let plan = LatencyPlan::new(&config(Alternative::Greater)).unwrap();
        let mut test = LatencyTest::new(&plan);
        let mut prev_p = 1.0;
        let mut prev: Option<LatencyLook> = None;
        for look in 1..=30 {
            let out = test.update_bins(&shape(300 * look, 2), &shape(300 * look, 0));
            assert!(out.p_value <= prev_p);
            if let Some(prev) = &prev {
                for (a, b) in prev.bands.iter().zip(&out.bands) {
                    let lo = |i: Interval| i.lower.unwrap_or(f64::NEG_INFINITY);
                    let hi = |i: Interval| i.upper.unwrap_or(f64::INFINITY);
                    assert!(lo(b.difference) >= lo(a.difference));
                    assert!(hi(b.difference) <= hi(a.difference));
                }
            }
            prev_p = out.p_value;
            prev = Some(out);
        }
        let last = prev.unwrap();
        assert!(test.rejected());
        assert!(last.p_value <= 0.01);
        // A two-bucket shift: every difference band holds 2 and stays within [0, 4], and
        // at least one excludes zero.
        for band in &last.bands {
            let (lo, hi) = (
                band.difference.lower.unwrap(),
                band.difference.upper.unwrap(),
            );
            assert!(
                (0.0..=2.0).contains(&lo) && (2.0..=4.0).contains(&hi),
                "{band:?}"
            );
        }
        assert!(last.bands.iter().any(|b| b.difference.lower.unwrap() > 0.0));
        // The less-is-worse direction sees nothing.
        let plan = LatencyPlan::new(&config(Alternative::Less)).unwrap();
        let mut less = LatencyTest::new(&plan);
        less.update_bins(&shape(9_000, 2), &shape(9_000, 0));
        let out = less.update_bins(&shape(18_000, 2), &shape(18_000, 0));
        assert_eq!(out.p_value, 1.0);
    }

    #[test]
    fn p_value_agrees_with_the_decision() {
        let plan = LatencyPlan::new(&config(Alternative::Greater)).unwrap();
        for n in [500u64, 1_000, 2_000, 4_000, 8_000] {
            let mut test = LatencyTest::new(&plan);
            // The first look only sets the thresholds; the second is tested against them.
            test.update_bins(&shape(n, 1), &shape(n, 0));
            let out = test.update_bins(&shape(2 * n, 1), &shape(2 * n, 0));
            assert_eq!(
                test.rejected(),
                out.p_value <= 0.01,
                "n = {n}: p = {}",
                out.p_value
            );
        }
    }
}
