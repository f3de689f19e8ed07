//! Anytime-valid sequential tests: judge a canary at every interval without inflating
//! false alarms, however many times one looks.
//!
//! Owns two tests and the multi-look judgment built on them:
//! - [`counts`]: equal error rates, from request/error counts (mixture e-process over the
//!   rate ratio, confidence sequence on that ratio);
//! - [`quantiles`]: latency, from histograms (time-uniform bands on each version's
//!   quantile function, reject when the band on the difference at a watched quantile
//!   excludes zero);
//! - [`SequentialJudge`] / [`judge_looks`]: feed looks in time order (what arrived since the
//!   previous look), get per look the anytime-valid p-value, the confidence sequence and
//!   the decision so far.
//!
//! Invariants, for every test here: under the null, the probability that the test EVER
//! rejects (at any look, however many) is at most `alpha`; the p-value never increases
//! from one look to the next; confidence sequences are nested (each look's interval lies
//! inside the previous one); memory does not grow with traffic. See docs/sequential.md for
//! the derivations and the simulation that checks them.

pub mod counts;
pub mod exceedance;
pub mod quantiles;

use serde::{Deserialize, Serialize};

use super::proportions::Counts;
use super::{Alternative, LogHistogram, StatsError};
use counts::{RateRatioConfig, RateRatioLook, RateRatioTest};
use quantiles::{LatencyConfig, LatencyLook, LatencyPlan, LatencyTest};

/// Settings shared by both sequential tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequentialConfig {
    /// Probability of ever rejecting under the null, over the whole analysis.
    #[serde(with = "crate::stats::nonfinite")]
    pub alpha: f64,
    /// `greater`: reject when the canary is worse (slower, more errors); `less`: better;
    /// `two-sided`: either.
    pub alternative: Alternative,
    /// Latency quantiles watched by the latency test.
    pub quantiles: Vec<f64>,
    /// Observations a version needs before its latency band is finite (`t_min`).
    pub min_samples: u64,
    /// `A` of the latency band's boundary (> 1/sqrt(2)).
    #[serde(with = "crate::stats::nonfinite")]
    pub boundary_a: f64,
    /// Standard deviation of the normal prior on ln(error-rate ratio).
    #[serde(with = "crate::stats::nonfinite")]
    pub prior_sd: f64,
    /// Accept early when the canary is shown to be within these margins of the baseline.
    pub equivalence: Option<Equivalence>,
}

impl Default for SequentialConfig {
    fn default() -> Self {
        SequentialConfig {
            alpha: 0.01,
            alternative: Alternative::Greater,
            quantiles: vec![0.5, 0.9, 0.99],
            min_samples: 500,
            boundary_a: quantiles::DEFAULT_A,
            prior_sd: 1.0,
            equivalence: None,
        }
    }
}

/// Early acceptance: after `min_looks`, every watched latency quantile's ratio band lies
/// within `[1/(1+latency_margin), 1+latency_margin]` (or, for counts, the error-rate ratio
/// confidence sequence within `[1/(1+error_margin), 1+error_margin]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Equivalence {
    #[serde(with = "crate::stats::nonfinite")]
    pub latency_margin: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub error_margin: f64,
    pub min_looks: usize,
}

/// What arrived from both versions since the previous look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Look {
    /// Latency samples (any non-negative unit, the same for both).
    Samples {
        baseline: Vec<f64>,
        canary: Vec<f64>,
    },
    /// Request and error counts.
    Counts { baseline: Counts, canary: Counts },
}

/// Which test a sequence of looks feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    Latency,
    Errors,
}

/// The decision so far. Reject is final. Accept-equivalent stays unless the test rejects
/// later (a regression found after all wins over the equivalence shown before).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Continue,
    Reject,
    AcceptEquivalent,
}

/// Where the analysis stands after one look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LookResult {
    /// 0-based look index.
    pub look: usize,
    /// Anytime-valid p-value: valid at this look whatever happened at the others.
    #[serde(with = "crate::stats::nonfinite")]
    pub p_value: f64,
    pub decision: Decision,
    /// Counts looks: e-value and the confidence sequence on the error-rate ratio.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub errors: Option<RateRatioLook>,
    /// Latency looks: per watched quantile, the bands of each version and of the difference.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latency: Option<LatencyLook>,
}

/// The judgment of a whole sequence of looks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LooksReport {
    pub metric: MetricKind,
    #[serde(with = "crate::stats::nonfinite")]
    pub alpha: f64,
    pub alternative: Alternative,
    pub looks: Vec<LookResult>,
    /// First look (0-based) at which the test rejected; `None` if it never did.
    pub first_rejection: Option<usize>,
    /// First look at which equivalence was accepted; `None` if never (or not asked for).
    pub first_equivalence: Option<usize>,
    /// The decision after the last look.
    pub decision: Decision,
}

#[derive(Clone)]
enum Test {
    Latency(Box<LatencyTest>),
    Errors(RateRatioTest),
}

/// Incremental judge of one metric: one [`Look`] at a time, bounded memory.
#[derive(Clone)]
pub struct SequentialJudge {
    config: SequentialConfig,
    test: Test,
    looks: usize,
    decision: Decision,
    first_rejection: Option<usize>,
    first_equivalence: Option<usize>,
}

impl SequentialConfig {
    /// Checks every field; messages name the field.
    pub fn validate(&self) -> Result<(), StatsError> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(StatsError::Invalid(format!(
                "alpha {} is not in (0, 1)",
                self.alpha
            )));
        }
        if let Some(eq) = &self.equivalence {
            for (name, m) in [
                ("latency_margin", eq.latency_margin),
                ("error_margin", eq.error_margin),
            ] {
                if !(m.is_finite() && m > 0.0) {
                    return Err(StatsError::Invalid(format!(
                        "equivalence {name} {m} must be a positive number"
                    )));
                }
            }
        }
        self.latency_plan().map(|_| ())
    }

    /// The latency test's ladder of levels; costly enough (a few ms) to build once and share.
    pub fn latency_plan(&self) -> Result<LatencyPlan, StatsError> {
        LatencyPlan::new(&LatencyConfig {
            alpha: self.alpha,
            alternative: self.alternative,
            quantiles: self.quantiles.clone(),
            min_samples: self.min_samples,
            a: self.boundary_a,
        })
    }

    pub fn rate_ratio_config(&self) -> RateRatioConfig {
        RateRatioConfig {
            alpha: self.alpha,
            alternative: self.alternative,
            prior_sd: self.prior_sd,
        }
    }
}

impl SequentialJudge {
    /// A latency judge from a prebuilt plan (see [`SequentialConfig::latency_plan`]).
    pub fn latency(config: &SequentialConfig, plan: &LatencyPlan) -> Self {
        Self::with(config, Test::Latency(Box::new(LatencyTest::new(plan))))
    }

    pub fn errors(config: &SequentialConfig) -> Result<Self, StatsError> {
        Ok(Self::with(
            config,
            Test::Errors(RateRatioTest::new(&config.rate_ratio_config())?),
        ))
    }

    fn with(config: &SequentialConfig, test: Test) -> Self {
        SequentialJudge {
            config: config.clone(),
            test,
            looks: 0,
            decision: Decision::Continue,
            first_rejection: None,
            first_equivalence: None,
        }
    }

    pub fn metric(&self) -> MetricKind {
        match self.test {
            Test::Latency(_) => MetricKind::Latency,
            Test::Errors(_) => MetricKind::Errors,
        }
    }

    /// Latency look from two histograms of what arrived since the previous look.
    pub fn look_histograms(
        &mut self,
        canary: &LogHistogram,
        baseline: &LogHistogram,
    ) -> Result<LookResult, StatsError> {
        let Test::Latency(test) = &mut self.test else {
            return Err(self.wrong_kind("latency histograms"));
        };
        let look = test.update(canary, baseline);
        let rejected = test.rejected();
        let equivalent =
            self.config.equivalence.as_ref().is_some_and(|e| {
                self.looks + 1 >= e.min_looks && test.equivalent(e.latency_margin)
            });
        Ok(self.finish(look.p_value, rejected, equivalent, None, Some(look)))
    }

    /// Counts look: what arrived since the previous look.
    pub fn look_counts(
        &mut self,
        canary: Counts,
        baseline: Counts,
    ) -> Result<LookResult, StatsError> {
        let Test::Errors(test) = &mut self.test else {
            return Err(self.wrong_kind("request/error counts"));
        };
        let look = test.update(canary, baseline)?;
        let rejected = look.p_value <= self.config.alpha;
        let equivalent = self.config.equivalence.as_ref().is_some_and(|e| {
            let upper = look.ratio_upper.unwrap_or(f64::INFINITY);
            self.looks + 1 >= e.min_looks
                && look.ratio_lower >= 1.0 / (1.0 + e.error_margin)
                && upper <= 1.0 + e.error_margin
        });
        Ok(self.finish(look.p_value, rejected, equivalent, Some(look), None))
    }

    /// One look of either kind; samples are checked (no NaN, no negative, finite).
    pub fn look(&mut self, look: &Look) -> Result<LookResult, StatsError> {
        match look {
            Look::Counts { baseline, canary } => self.look_counts(*canary, *baseline),
            Look::Samples { baseline, canary } => {
                if self.metric() != MetricKind::Latency {
                    return Err(self.wrong_kind("latency samples"));
                }
                let index = self.looks;
                let c = histogram_of(canary, index, "canary")?;
                let b = histogram_of(baseline, index, "baseline")?;
                self.look_histograms(&c, &b)
            }
        }
    }

    fn wrong_kind(&self, got: &str) -> StatsError {
        let want = match self.metric() {
            MetricKind::Latency => "latency samples",
            MetricKind::Errors => "request/error counts",
        };
        StatsError::Invalid(format!(
            "look {} holds {got}, but earlier looks held {want}",
            self.looks
        ))
    }

    fn finish(
        &mut self,
        p_value: f64,
        rejected: bool,
        equivalent: bool,
        errors: Option<RateRatioLook>,
        latency: Option<LatencyLook>,
    ) -> LookResult {
        let index = self.looks;
        self.looks += 1;
        if rejected && self.decision != Decision::Reject {
            self.decision = Decision::Reject;
            self.first_rejection = Some(index);
        } else if self.decision == Decision::Continue && equivalent {
            self.decision = Decision::AcceptEquivalent;
            self.first_equivalence = Some(index);
        }
        LookResult {
            look: index,
            p_value,
            decision: self.decision,
            errors,
            latency,
        }
    }

    pub fn first_rejection(&self) -> Option<usize> {
        self.first_rejection
    }

    pub fn decision(&self) -> Decision {
        self.decision
    }

    pub fn first_equivalence(&self) -> Option<usize> {
        self.first_equivalence
    }

    /// Looks taken so far.
    pub fn looks(&self) -> usize {
        self.looks
    }
}

/// What a stored look written before `ln_e_value` existed reads as: unknown (NaN); its
/// `e_value` is still there.
fn unknown_ln_e() -> f64 {
    f64::NAN
}

fn histogram_of(samples: &[f64], look: usize, which: &str) -> Result<LogHistogram, StatsError> {
    let mut h = LogHistogram::new();
    for (i, &v) in samples.iter().enumerate() {
        if !(v.is_finite() && v >= 0.0) {
            return Err(StatsError::Invalid(format!(
                "look {look}: {which} sample {i} is {v}; latencies must be finite and non-negative"
            )));
        }
        h.record(v);
    }
    Ok(h)
}

/// Judges a sequence of looks (each: what arrived since the previous one) with the
/// sequential test of their kind. All looks must be of one kind.
pub fn judge_looks(looks: &[Look], config: &SequentialConfig) -> Result<LooksReport, StatsError> {
    config.validate()?;
    let mut judge = match looks.first() {
        Some(Look::Counts { .. }) => SequentialJudge::errors(config)?,
        Some(Look::Samples { .. }) => SequentialJudge::latency(config, &config.latency_plan()?),
        None => return Err(StatsError::Invalid("no look to judge".into())),
    };
    let results = looks
        .iter()
        .map(|l| judge.look(l))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LooksReport {
        metric: judge.metric(),
        alpha: config.alpha,
        alternative: config.alternative,
        looks: results,
        first_rejection: judge.first_rejection,
        first_equivalence: judge.first_equivalence,
        decision: judge.decision,
    })
}
