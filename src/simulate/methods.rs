//! The judging procedures the simulator compares, each fed the same simulated traffic.
//!
//! - Augury sequential: the anytime-valid rate-ratio test on errors and the quantile-band
//!   test on latency, at every look; the canary fails at the first look either rejects.
//! - Augury fixed-horizon: one Mann-Whitney test on the two latency histograms and one
//!   two-proportion test on errors, at the end of the lifetime only.
//! - Kayenta: its Mann-Whitney classifier (98% confidence, "High" when the lower end of
//!   the shift's interval exceeds 0.25 |estimate| and the mean ratio is at least 1, a mean
//!   ratio that cannot be computed being ignored), re-run on the growing window at every
//!   look, stopping at the first look it fails: a High on either metric (with the two
//!   metrics in two equally weighted groups the score is then 50, below any usual
//!   marginal threshold), or a metric without data (one of two is the "50% or more
//!   nodata" rule of Kayenta's scorer, score 0). What it sees, and why:
//!   * latency: every request's latency (as 1% histogram buckets). Kayenta really judges
//!     metric time series (a mean or a percentile per step); per-request samples give its
//!     rank test far more data than any real configuration, so this is the generous model
//!     for shifts;
//!   * errors: the per-step error ratio series (errors / requests of each step), which is
//!     what an error-rate metric query returns. Sparse errors make most points 0, which is
//!     how users see it pass real regressions.

use serde::{Deserialize, Serialize};

use std::convert::Infallible;

use crate::judge::kayenta::{self, Classifier, Config, Label, Measure, Sides};
use crate::model::{Direction, NanStrategy};
use crate::stats::histogram::mann_whitney_histograms;
use crate::stats::proportions::{Counts, compare_proportions};
use crate::stats::{Alternative, LogHistogram, Method as TestMethod, normal};

/// The procedures compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    AugurySequential,
    AuguryFixedHorizon,
    Kayenta,
}

impl Method {
    pub const ALL: [Method; 3] = [
        Method::AugurySequential,
        Method::AuguryFixedHorizon,
        Method::Kayenta,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Method::AugurySequential => "augury sequential",
            Method::AuguryFixedHorizon => "augury fixed-horizon",
            Method::Kayenta => "kayenta (every look)",
        }
    }
}

/// When (and on which metric) one procedure failed one simulated canary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// 0-based look of the first failure; `None` if the canary passed.
    pub look: Option<usize>,
    pub by_latency: bool,
    pub by_errors: bool,
}

impl Outcome {
    pub fn record(&mut self, look: usize, latency: bool, errors: bool) {
        if self.look.is_none() && (latency || errors) {
            *self = Outcome {
                look: Some(look),
                by_latency: latency,
                by_errors: errors,
            };
        }
    }
}

/// The fixed-horizon verdict at the end: Mann-Whitney (one-sided, canary slower) on the
/// latency histograms and a two-proportion z-test (one-sided, canary more errors).
pub fn fixed_horizon(
    canary: &LogHistogram,
    baseline: &LogHistogram,
    canary_counts: Counts,
    baseline_counts: Counts,
    alpha: f64,
) -> (bool, bool) {
    let latency = mann_whitney_histograms(
        canary,
        baseline,
        Alternative::Greater,
        TestMethod::Asymptotic,
    )
    .is_ok_and(|mw| mw.p_value <= alpha);
    let errors = compare_proportions(
        canary_counts,
        baseline_counts,
        Alternative::Greater,
        TestMethod::Asymptotic,
    )
    .is_ok_and(|t| t.p_value <= alpha);
    (latency, errors)
}

/// A sample as distinct ascending values with their multiplicities.
#[derive(Clone, Debug, Default)]
pub struct Weighted {
    pub values: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Weighted {
    /// Bucket representatives of a histogram.
    pub fn from_histogram(h: &LogHistogram) -> Self {
        let (values, counts) = h
            .buckets()
            .map(|(i, c)| (LogHistogram::bucket_value(i), c))
            .unzip();
        Weighted { values, counts }
    }

    /// From raw values (NaN already removed).
    pub fn from_values(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        let mut w = Weighted::default();
        for v in sorted {
            if w.values.last() == Some(&v) {
                *w.counts.last_mut().unwrap_or(&mut 0) += 1;
            } else {
                w.values.push(v);
                w.counts.push(1);
            }
        }
        w
    }

    fn n(&self) -> f64 {
        self.counts.iter().sum::<u64>() as f64
    }

    fn mean(&self) -> f64 {
        self.values
            .iter()
            .zip(&self.counts)
            .map(|(v, &c)| v * c as f64)
            .sum::<f64>()
            / self.n()
    }

    fn ties(&self) -> f64 {
        self.counts
            .iter()
            .map(|&c| (c as f64).powi(3) - c as f64)
            .sum()
    }
}

/// Kayenta's standardised statistic of `canary - d` against `baseline`, with R's
/// continuity correction and tie correction (the asymptotic branch it ports).
fn kayenta_z(canary: &Weighted, baseline: &Weighted, d: f64, base_ties: f64) -> f64 {
    let (n, m) = (canary.n(), baseline.n());
    let mut u = 0.0;
    let mut ties = base_ties;
    let mut below = 0u64;
    let mut j = 0;
    for (&x, &c) in canary.values.iter().zip(&canary.counts) {
        let x = x - d;
        while j < baseline.values.len() && baseline.values[j] < x {
            below += baseline.counts[j];
            j += 1;
        }
        let equal = if j < baseline.values.len() && baseline.values[j] == x {
            baseline.counts[j]
        } else {
            0
        };
        u += c as f64 * (below as f64 + 0.5 * equal as f64);
        let (cf, ef) = (c as f64, equal as f64);
        ties += cf.powi(3) - cf;
        if equal > 0 {
            ties += (cf + ef).powi(3) - (cf + ef) - (cf.powi(3) - cf) - (ef.powi(3) - ef);
        }
    }
    let dz = u - n * m / 2.0;
    let correction = kayenta::continuity_correction(dz);
    let total = n + m;
    let sigma = (n * m / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)))).sqrt();
    if sigma == 0.0 {
        return 0.0;
    }
    (dz - correction) / sigma
}

/// Kayenta's `findRoot`: the shift `d` (canary - baseline) where `z(d)` falls through
/// `level`, clamped to the range of the pairwise differences, else found by Kayenta's
/// root finder ([`kayenta::brent`], absolute tolerance 1e-4), as the judge's
/// [`kayenta::interval`] finds it on samples.
fn root(canary: &Weighted, baseline: &Weighted, z: &dyn Fn(f64) -> f64, level: f64) -> f64 {
    let (lo, hi) = range(canary, baseline);
    let f = |d: f64| z(d) - level;
    let (f_lo, f_hi) = (f(lo), f(hi));
    if f_lo <= 0.0 {
        lo
    } else if f_hi >= 0.0 {
        hi
    } else {
        kayenta::brent(lo, hi, f_lo, f_hi, |d| Ok::<_, Infallible>(f(d))).unwrap_or(lo)
    }
}

/// The range of the pairwise differences canary - baseline.
fn range(canary: &Weighted, baseline: &Weighted) -> (f64, f64) {
    (
        canary.values[0] - baseline.values[baseline.values.len() - 1],
        canary.values[canary.values.len() - 1] - baseline.values[0],
    )
}

/// Kayenta's interval and estimate of the shift (canary - baseline) at 98%: `(lower,
/// estimate, upper)`; `None` when a sample is empty. The estimate is the root at 0,
/// found without clamping, as Kayenta's is.
pub fn kayenta_interval(canary: &Weighted, baseline: &Weighted) -> Option<(f64, f64, f64)> {
    if canary.values.is_empty() || baseline.values.is_empty() {
        return None;
    }
    let base_ties = baseline.ties();
    let z = |d: f64| kayenta_z(canary, baseline, d, base_ties);
    let critical = normal::isf((1.0 - kayenta::CONFIDENCE) / 2.0);
    let (lo, hi) = range(canary, baseline);
    let estimate =
        kayenta::brent(lo, hi, z(lo), z(hi), |d| Ok::<_, Infallible>(z(d))).unwrap_or(lo);
    Some((
        root(canary, baseline, &z, critical),
        estimate,
        root(canary, baseline, &z, -critical),
    ))
}

/// How Kayenta's classifier labels one metric, as far as the simulation needs: the
/// direction is `increase`, so `Low` never happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KayentaClass {
    Pass,
    /// Canary significantly larger.
    High,
    /// A side without data.
    Nodata,
}

/// The classifier `NetflixACAJudge` builds for a metric with direction `increase` and
/// the default effect (mean ratio, allowed increase 1): the judge's own.
fn classifier() -> (Classifier, Config) {
    (
        Classifier::new(kayenta::TOLERANCE, kayenta::CONFIDENCE, Measure::MeanRatio),
        Config {
            direction: Direction::Increase,
            nan: NanStrategy::Remove,
            critical: false,
            must_have_data: false,
        },
    )
}

fn class(label: Label) -> KayentaClass {
    match label {
        Label::High => KayentaClass::High,
        Label::Nodata | Label::NodataFailMetric => KayentaClass::Nodata,
        _ => KayentaClass::Pass,
    }
}

/// Kayenta's classification of a metric given as samples (the error-ratio series): the
/// judge's classifier for `rules: kayenta`, as it is.
pub fn kayenta_classify_samples(canary: &[f64], baseline: &[f64]) -> KayentaClass {
    let (k, config) = classifier();
    class(k.classify(Sides { canary, baseline }, config).label)
}

/// Kayenta's classification of a metric given as weighted values (the latency
/// histograms): the judge's rules (`kayenta::Classifier::compare`) on the interval
/// computed here over the histograms' buckets. This fast path stays because the
/// simulation judges every request's latency: expanding the buckets into one sample per
/// request at every look of every simulated canary would cost time and memory in
/// proportion to the requests, where the buckets cost a few hundred values.
pub fn kayenta_classify(canary: &Weighted, baseline: &Weighted) -> KayentaClass {
    if canary.values.is_empty() || baseline.values.is_empty() {
        return KayentaClass::Nodata;
    }
    if canary.values == baseline.values && canary.counts == baseline.counts {
        return KayentaClass::Pass;
    }
    if canary.values.len() == 1
        && baseline.values.len() == 1
        && canary.values[0] == baseline.values[0]
    {
        return KayentaClass::Pass;
    }
    let Some((lower, estimate, upper)) = kayenta_interval(canary, baseline) else {
        return KayentaClass::Nodata;
    };
    // Kayenta's mean ratio is NaN when either mean is 0, and its classifier skips the
    // effect-size check when the effect size is NaN.
    let (canary_mean, base_mean) = (canary.mean(), baseline.mean());
    let mean_ratio = if canary_mean == 0.0 || base_mean == 0.0 {
        f64::NAN
    } else {
        canary_mean / base_mean
    };
    let (k, config) = classifier();
    class(k.compare(lower, estimate, upper, mean_ratio, config.direction))
}

/// Kayenta's classification of one metric: `true` for High (canary significantly larger).
pub fn kayenta_high(canary: &Weighted, baseline: &Weighted) -> bool {
    kayenta_classify(canary, baseline) == KayentaClass::High
}

/// Whether one look of the simulated Kayenta configuration fails, per metric: latency and
/// errors in two groups of equal weight. A High scores 50, below any usual marginal
/// threshold; a metric without data is half the metrics without data, which Kayenta's
/// `WeightedSumScorer` scores 0.
pub fn kayenta_look_fails(latency: KayentaClass, errors: KayentaClass) -> (bool, bool) {
    let fails = |c: KayentaClass| c != KayentaClass::Pass;
    (fails(latency), fails(errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_effect_size_kayenta_cannot_compute_does_not_veto_a_high() {
        // Errors only in the canary: the baseline's mean is 0, so Kayenta's mean ratio is
        // NaN, which its classifier ignores; the rank test alone decides.
        let canary: Vec<f64> = (1..=30).map(|i| 0.001 * f64::from(i)).collect();
        let c = Weighted::from_values(&canary);
        let b = Weighted::from_values(&[0.0; 30]);
        assert_eq!(kayenta_classify(&c, &b), KayentaClass::High);
        // Errors only in the baseline: the rank test says lower, so no High either way.
        assert_eq!(kayenta_classify(&b, &c), KayentaClass::Pass);
        // A mean ratio that can be computed and is below 1 still vetoes: the same shift,
        // once the baseline has a few huge values that raise its mean.
        let canary: Vec<f64> = (0..100).map(|i| 2.0 + 0.01 * f64::from(i)).collect();
        let base: Vec<f64> = (0..100).map(|i| 1.0 + 0.01 * f64::from(i)).collect();
        let c = Weighted::from_values(&canary);
        assert_eq!(
            kayenta_classify(&c, &Weighted::from_values(&base)),
            KayentaClass::High
        );
        let b = Weighted::from_values(&[base.as_slice(), &[1e6; 5]].concat());
        assert!(c.mean() / b.mean() < 1.0);
        assert_eq!(kayenta_classify(&c, &b), KayentaClass::Pass);
    }

    #[test]
    fn a_side_without_data_fails_the_look() {
        let some = Weighted::from_values(&[1.0, 2.0, 3.0]);
        let none = Weighted::default();
        assert_eq!(kayenta_classify(&none, &some), KayentaClass::Nodata);
        assert_eq!(kayenta_classify(&some, &none), KayentaClass::Nodata);
        assert_eq!(
            kayenta_look_fails(KayentaClass::Pass, KayentaClass::Nodata),
            (false, true)
        );
        assert_eq!(
            kayenta_look_fails(KayentaClass::High, KayentaClass::Pass),
            (true, false)
        );
        assert_eq!(
            kayenta_look_fails(KayentaClass::Pass, KayentaClass::Pass),
            (false, false)
        );
    }
}
