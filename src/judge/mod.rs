//! The judge: per-metric classification, group scores, the verdict and its reasons.
//!
//! Invariant: pure and deterministic. No I/O, no clock, no randomness, no threads whose
//! scheduling could change a number. Constant or identical samples are decided by rule,
//! never by added noise, so the same input gives the same verdict, bit for bit.
//! `augury judge`, `POST /api/v1/judge` and the analysis runner all call [`judge`].

mod classify;
pub mod data;
mod score;
mod sequential;
mod summary;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Direction, EffectMeasure, Metric, MetricKind, Model, TestKind, Thresholds};
use crate::stats::{
    Alternative, Method, StatsError, effect::EffectSizes, hodges_lehmann::ShiftEstimate,
    mannwhitney::MannWhitney, proportions::ProportionTest,
};

pub use classify::{fmt_num, fmt_p};
pub use data::MetricData;
pub use sequential::{SequentialResult, SequentialState};
pub use summary::Summary;

/// Caller's overrides of what the model says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JudgeOptions {
    /// How p-values and intervals are computed (default `auto`).
    #[serde(default)]
    pub method: Method,
    /// Replaces the alternative each metric's direction implies.
    #[serde(default)]
    pub alternative: Option<Alternative>,
}

/// The outcome of a judgment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Marginal,
    Fail,
    /// Too little data to judge: half or more of the metrics had none (not counting
    /// critical or `must_have_data` metrics, whose missing data fails the canary instead).
    Inconclusive,
}

impl Verdict {
    /// The exit code of `augury judge`/`wait`: 0 pass, 1 fail, 3 inconclusive or marginal.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Marginal | Verdict::Inconclusive => 3,
        }
    }
}

/// How one metric came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    Pass,
    /// Canary significantly higher, by at least the allowed effect.
    High,
    /// Canary significantly lower, by at least the allowed effect.
    Low,
    /// Not enough data on one side.
    Nodata,
    /// The statistic could not be computed.
    Error,
}

/// The effect-size gate a significant result went through.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectGate {
    pub measure: EffectMeasure,
    /// The measured effect; `None` when undefined (a zero denominator).
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub value: Option<f64>,
    #[serde(with = "crate::stats::nonfinite")]
    pub allowed: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub critical: f64,
}

/// Burn rate of an error-ratio metric against its SLO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BurnSummary {
    #[serde(with = "crate::stats::nonfinite")]
    pub slo_target: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub canary: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub baseline: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub max_burn_rate: f64,
}

/// Every number behind one metric's classification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MetricResult {
    pub name: String,
    pub group: String,
    pub kind: MetricKind,
    pub test: TestKind,
    pub direction: Direction,
    pub critical: bool,
    /// Unit of the observations, for display.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    pub classification: Classification,
    /// A critical metric regressed past its critical effect: the canary fails whatever the score.
    pub critical_failure: bool,
    /// Missing data that the model counts as a failure (`must_have_data`).
    pub nodata_fails: bool,
    /// One sentence a person can act on.
    pub reason: String,
    #[serde(with = "crate::stats::nonfinite")]
    pub alpha: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mann_whitney: Option<MannWhitney>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<ShiftEstimate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<EffectSizes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proportions: Option<ProportionTest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burn: Option<BurnSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect_gate: Option<EffectGate>,
    /// `test: sequential`: the anytime-valid p-value, the decision so far and the
    /// confidence sequence. The classification comes from it; the fixed-horizon numbers
    /// above are kept for reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<SequentialResult>,
}

impl MetricResult {
    /// The p-value this metric's classification rests on: the anytime-valid p of a
    /// sequential test (valid however often it was looked at), otherwise the fixed-horizon
    /// test's (Mann-Whitney, or the proportions test of an error ratio). The one number
    /// every surface reports as the metric's p (API, `/metrics`, CLI, notifications), so
    /// a sequential metric never shows the fixed-horizon p that repeated looks inflate.
    pub fn p_value(&self) -> Option<f64> {
        match &self.sequential {
            Some(s) => Some(s.p_value),
            None => self
                .mann_whitney
                .as_ref()
                .map(|t| t.p_value)
                .or(self.proportions.as_ref().map(|t| t.p_value)),
        }
    }

    /// A critical metric without data: the canary fails whatever the score, as in
    /// Kayenta. Kept apart from [`MetricResult::critical_failure`] (a regression) because
    /// the analysis runner ends an analysis at once on a regression, and data that has
    /// not arrived yet in the first interval may still arrive: a running analysis carries
    /// this failing verdict until data comes or its lifetime ends.
    pub fn critical_nodata(&self) -> bool {
        self.critical && self.classification == Classification::Nodata
    }
}

/// One group's score (Kayenta's rule: 100 * pass / (pass + high + low + nodata that fails)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupScore {
    pub name: String,
    #[serde(with = "crate::stats::nonfinite")]
    pub score: f64,
    /// Effective weight in percent of the total score.
    #[serde(with = "crate::stats::nonfinite")]
    pub weight: f64,
    pub pass: usize,
    pub high: usize,
    pub low: usize,
    pub nodata: usize,
    pub error: usize,
}

/// A verdict with everything behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Judgment {
    pub model: String,
    pub verdict: Verdict,
    /// 0 to 100.
    #[serde(with = "crate::stats::nonfinite")]
    pub score: f64,
    pub thresholds: Thresholds,
    /// Why, most important first.
    pub reasons: Vec<String>,
    pub groups: Vec<GroupScore>,
    pub metrics: Vec<MetricResult>,
}

/// Input the judge refuses. Messages name the metric, side and position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeError {
    #[error("metric `{metric}`: the model `{model}` has no such metric (it has: {known})")]
    UnknownMetric {
        metric: String,
        model: String,
        known: String,
    },
    #[error("metric `{metric}`: a {kind} metric takes {expected}, got {got}")]
    WrongShape {
        metric: String,
        kind: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("metric `{metric}`: {side} value {index} is NaN and the model says `nan: fail`")]
    NaN {
        metric: String,
        side: &'static str,
        /// 0-based position in the side's samples.
        index: usize,
    },
    #[error("metric `{metric}`: {source}")]
    Stats {
        metric: String,
        #[source]
        source: StatsError,
    },
}

impl JudgeError {
    /// `metric`'s data has a shape its kind does not take.
    pub(crate) fn wrong_shape(metric: &Metric, got: &MetricData) -> JudgeError {
        let (kind, expected) = match metric.kind {
            MetricKind::Distribution => ("distribution", "samples or histograms"),
            MetricKind::ErrorRatio => ("error-ratio", "counts ({\"requests\": n, \"errors\": k})"),
        };
        JudgeError::WrongShape {
            metric: metric.name.clone(),
            kind,
            expected,
            got: got.shape(),
        }
    }

    /// The metric the refused input was for.
    pub fn metric(&self) -> &str {
        match self {
            JudgeError::UnknownMetric { metric, .. }
            | JudgeError::WrongShape { metric, .. }
            | JudgeError::NaN { metric, .. }
            | JudgeError::Stats { metric, .. } => metric,
        }
    }
}

/// Judges canary against baseline on every metric of `model`. Metrics with no entry in
/// `data` are `nodata`. A sequential metric takes all of `data` as one look.
pub fn judge(
    model: &Model,
    data: &BTreeMap<String, MetricData>,
    options: &JudgeOptions,
) -> Result<Judgment, JudgeError> {
    judge_looks(model, data, &[data], options)
}

/// Judges an analysis that has taken several looks: `cumulative` is everything gathered
/// (what fixed-horizon tests read), `looks` what arrived at each look in time order (what
/// sequential tests read; their merge should be `cumulative`). Replays every look: an
/// analysis that judges at each look holds a [`SequentialState`] and calls [`judge_step`].
pub fn judge_looks(
    model: &Model,
    cumulative: &BTreeMap<String, MetricData>,
    looks: &[&BTreeMap<String, MetricData>],
    options: &JudgeOptions,
) -> Result<Judgment, JudgeError> {
    check_known(
        model,
        cumulative.keys().chain(looks.iter().flat_map(|l| l.keys())),
    )?;
    let mut state = SequentialState::default();
    for look in looks {
        state.advance(model, look, options)?;
    }
    judge_state(model, cumulative, &state, options)
}

/// Takes the next look of an analysis: advances `state` by `look` (what arrived since the
/// previous look) and judges. Costs one look whatever the number taken before. On error
/// `state` is left as it was.
pub fn judge_step(
    model: &Model,
    cumulative: &BTreeMap<String, MetricData>,
    state: &mut SequentialState,
    look: &BTreeMap<String, MetricData>,
    options: &JudgeOptions,
) -> Result<Judgment, JudgeError> {
    check_known(model, cumulative.keys().chain(look.keys()))?;
    let next = state.advanced(model, look, options)?;
    let judgment = judge_state(model, cumulative, &next, options)?;
    *state = next;
    Ok(judgment)
}

fn check_known<'a>(
    model: &Model,
    mut keys: impl Iterator<Item = &'a String>,
) -> Result<(), JudgeError> {
    match keys.find(|k| model.metric(k).is_none()) {
        Some(unknown) => Err(JudgeError::UnknownMetric {
            metric: unknown.clone(),
            model: model.name.clone(),
            known: model
                .metrics
                .iter()
                .map(|m| format!("`{}`", m.name))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        None => Ok(()),
    }
}

fn judge_state(
    model: &Model,
    cumulative: &BTreeMap<String, MetricData>,
    state: &SequentialState,
    options: &JudgeOptions,
) -> Result<Judgment, JudgeError> {
    let metrics = model
        .metrics
        .iter()
        .map(|metric| {
            let seq = match metric.test() {
                TestKind::Sequential => Some(state.result(metric, options)?),
                _ => None,
            };
            classify::classify(metric, cumulative.get(&metric.name), seq, options)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(score::score(model, metrics))
}
