//! Time-uniform confidence bands on each version's quantile function, and the sequential
//! latency test built on them: reject when the band on canary-minus-baseline excludes
//! zero at any watched quantile.
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
//! Test. Each version's band holds at `alpha / 2`, so both hold together with probability
//! `1 - alpha` at every look and every quantile. The band on `Q_c(q) - Q_b(q)` is
//! `[L_c(q) - U_b(q), U_c(q) - L_b(q)]`; "canary slower" is declared when its lower end is
//! above zero at any watched quantile (two-sided: either end). Under the null (the canary's
//! watched quantiles are no larger than the baseline's) that happens with probability at
//! most `alpha`, however often one looks. Bands are intersected over looks (still valid on
//! the same event), so they are nested.
//!
//! p-value. The procedure is run in parallel at a ladder of levels (a grid of `C`, each
//! with its own intersected bands); the p-value is the smallest level at which it has
//! rejected so far, rounded up to the grid. The configured alpha is on the ladder, so
//! "p <= alpha" and "rejected at alpha" agree, and p never increases.
//!
//! Memory: the two histograms plus `levels x quantiles x 4` numbers.

use serde::{Deserialize, Serialize};

use crate::stats::{Alternative, LogHistogram, StatsError};

/// Default `A` of the boundary.
pub const DEFAULT_A: f64 = 0.85;

/// The ladder of `C` values the p-value is read from: 0.2 apart (each rung's level about
/// 0.76 times the previous one), up to where the level is far below any useful alpha.
const LADDER_STEP: f64 = 0.2;
const LADDER_TOP: f64 = 30.0;

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

/// One rung of the level ladder: a boundary constant and the total error it controls
/// (both versions).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Level {
    c: f64,
    alpha: f64,
}

/// The precomputed part of a latency test (the level ladder): build it once, start any
/// number of tests from it.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyPlan {
    config: LatencyConfig,
    /// Ascending in `c`, so descending in level.
    levels: Vec<Level>,
    /// The rung that holds the configured alpha.
    decision: usize,
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
        let c_alpha = lil_constant(config.alpha / 2.0, config.a)?;
        let mut levels: Vec<Level> = Vec::new();
        let mut c = LADDER_STEP;
        while c < LADDER_TOP {
            let alpha = (2.0 * crossing_probability(config.a, c)).min(1.0);
            // Rungs at level 1 tell nothing; keep only the last of them.
            if alpha >= 1.0 {
                levels.clear();
            }
            levels.push(Level { c, alpha });
            c += LADDER_STEP;
        }
        let decision = levels.partition_point(|l| l.c < c_alpha);
        levels.insert(
            decision,
            Level {
                c: c_alpha,
                alpha: config.alpha,
            },
        );
        Ok(LatencyPlan {
            config: config.clone(),
            levels,
            decision,
        })
    }

    pub fn config(&self) -> &LatencyConfig {
        &self.config
    }

    /// The band radius of a version holding `t` observations, at the configured alpha.
    pub fn radius(&self, t: u64) -> f64 {
        self.radius_at(self.decision, t)
    }

    fn radius_at(&self, level: usize, t: u64) -> f64 {
        lil_radius(
            t as f64,
            self.config.min_samples as f64,
            self.config.a,
            self.levels[level].c,
        )
    }
}

/// Band on one watched quantile at the configured alpha, as it stands after a look
/// (intersected over looks). Infinite ends are `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantileBand {
    pub quantile: f64,
    pub canary: Interval,
    pub baseline: Interval,
    /// canary - baseline.
    pub difference: Interval,
    /// canary / baseline (positive values only).
    pub ratio: Interval,
}

/// A closed interval whose ends may be unbounded (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lower: Option<f64>,
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

/// Where the latency test stands after a look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyLook {
    pub p_value: f64,
    pub canary_count: u64,
    pub baseline_count: u64,
    /// Band radius (in probability) of each version at the configured alpha.
    pub canary_radius: Option<f64>,
    pub baseline_radius: Option<f64>,
    pub bands: Vec<QuantileBand>,
}

/// Running intersection of one version's bands, per level and watched quantile.
#[derive(Clone, Debug)]
struct ArmBands {
    /// `[level][quantile]`.
    lower: Vec<Vec<f64>>,
    upper: Vec<Vec<f64>>,
}

impl ArmBands {
    fn new(levels: usize, quantiles: usize) -> Self {
        ArmBands {
            lower: vec![vec![f64::NEG_INFINITY; quantiles]; levels],
            upper: vec![vec![f64::INFINITY; quantiles]; levels],
        }
    }
}

/// State of the sequential latency test for one canary/baseline pair.
#[derive(Clone, Debug)]
pub struct LatencyTest {
    plan: LatencyPlan,
    canary: LogHistogram,
    baseline: LogHistogram,
    canary_bands: ArmBands,
    baseline_bands: ArmBands,
}

impl LatencyTest {
    pub fn new(plan: &LatencyPlan) -> Self {
        let (levels, qs) = (plan.levels.len(), plan.config.quantiles.len());
        LatencyTest {
            plan: plan.clone(),
            canary: LogHistogram::default(),
            baseline: LogHistogram::default(),
            canary_bands: ArmBands::new(levels, qs),
            baseline_bands: ArmBands::new(levels, qs),
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

    /// The look itself, on the cumulative bins of both versions.
    pub fn update_bins(&mut self, canary: &Bins, baseline: &Bins) -> LatencyLook {
        // Every rung is tightened: its bands are what its own rejection is read from.
        // Bands only shrink, so a rung that has rejected stays rejected, and a rung with a
        // smaller c (larger level) has narrower bands, so it rejects whenever a larger-c
        // rung does: the p-value is the level of the largest rejecting c.
        for level in 0..self.plan.levels.len() {
            let ec = self.plan.radius_at(level, canary.count());
            let eb = self.plan.radius_at(level, baseline.count());
            for (k, &q) in self.plan.config.quantiles.iter().enumerate() {
                tighten(&mut self.canary_bands, level, k, canary, q, ec);
                tighten(&mut self.baseline_bands, level, k, baseline, q, eb);
            }
        }
        let p_value = self.smallest_rejecting_level();
        let d = self.plan.decision;
        let bands = self
            .plan
            .config
            .quantiles
            .iter()
            .enumerate()
            .map(|(k, &q)| {
                let (cl, cu) = (self.canary_bands.lower[d][k], self.canary_bands.upper[d][k]);
                let (bl, bu) = (
                    self.baseline_bands.lower[d][k],
                    self.baseline_bands.upper[d][k],
                );
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
        let finite = |e: f64| e.is_finite().then_some(e);
        LatencyLook {
            p_value,
            canary_count: canary.count(),
            baseline_count: baseline.count(),
            canary_radius: finite(self.plan.radius(canary.count())),
            baseline_radius: finite(self.plan.radius(baseline.count())),
            bands,
        }
    }

    /// The smallest level that has rejected so far (1 if none).
    fn smallest_rejecting_level(&self) -> f64 {
        let nq = self.plan.config.quantiles.len();
        (0..self.plan.levels.len())
            .filter(|&l| (0..nq).any(|k| self.rejects(l, k)))
            .map(|l| self.plan.levels[l].alpha)
            .fold(1.0, f64::min)
    }

    fn rejects(&self, level: usize, k: usize) -> bool {
        let worse = self.canary_bands.lower[level][k] > self.baseline_bands.upper[level][k];
        let better = self.canary_bands.upper[level][k] < self.baseline_bands.lower[level][k];
        match self.plan.config.alternative {
            Alternative::Greater => worse,
            Alternative::Less => better,
            Alternative::TwoSided => worse || better,
        }
    }

    /// True once the band at the configured alpha excludes zero in the tested direction.
    pub fn rejected(&self) -> bool {
        let nq = self.plan.config.quantiles.len();
        (0..nq).any(|k| self.rejects(self.plan.decision, k))
    }

    /// True when every watched quantile's ratio band (configured alpha) lies within
    /// `[1 / (1 + margin), 1 + margin]`.
    pub fn equivalent(&self, margin: f64) -> bool {
        let d = self.plan.decision;
        (0..self.plan.config.quantiles.len()).all(|k| {
            let (cl, cu) = (self.canary_bands.lower[d][k], self.canary_bands.upper[d][k]);
            let (bl, bu) = (
                self.baseline_bands.lower[d][k],
                self.baseline_bands.upper[d][k],
            );
            cl > 0.0 && bl > 0.0 && cl / bu >= 1.0 / (1.0 + margin) && cu / bl <= 1.0 + margin
        })
    }
}

fn tighten(bands: &mut ArmBands, level: usize, k: usize, bins: &Bins, q: f64, eps: f64) {
    let lo = &mut bands.lower[level][k];
    *lo = lo.max(bins.quantile_lower(q, eps));
    let hi = &mut bands.upper[level][k];
    *hi = hi.min(bins.quantile_upper(q, eps));
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
    fn ladder_holds_the_configured_alpha_and_descends() {
        let plan = LatencyPlan::new(&config(Alternative::Greater)).unwrap();
        assert_eq!(plan.levels[plan.decision].alpha, 0.01);
        assert!(
            plan.levels
                .windows(2)
                .all(|w| w[0].c < w[1].c && w[0].alpha >= w[1].alpha)
        );
        assert!(plan.levels.last().unwrap().alpha < 1e-9);
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
        let out = less.update_bins(&shape(9_000, 2), &shape(9_000, 0));
        assert_eq!(out.p_value, 1.0);
    }

    #[test]
    fn p_value_agrees_with_the_decision() {
        let plan = LatencyPlan::new(&config(Alternative::Greater)).unwrap();
        for n in [500u64, 1_000, 2_000, 4_000, 8_000] {
            let mut test = LatencyTest::new(&plan);
            let out = test.update_bins(&shape(n, 1), &shape(n, 0));
            assert_eq!(
                test.rejected(),
                out.p_value <= 0.01,
                "n = {n}: p = {}",
                out.p_value
            );
        }
    }
}
