//! The judge: per-metric classification, group scores, the verdict and its reasons.
//!
//! Invariant: pure and deterministic. No I/O, no clock, no randomness, no threads whose
//! scheduling could change a number. Constant or identical samples are decided by rule,
//! never by random noise (`rules: kayenta` puts Kayenta's noise at fixed quantiles, see
//! [`kayenta`]), so the same input gives the same verdict, bit for bit.
//! `augury judge`, `POST /api/v1/judge` and the analysis runner all call [`judge`].

mod classify;
pub mod data;
pub mod kayenta;
mod score;
mod sequential;
mod summary;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::model::{
    Direction, EffectMeasure, Metric, MetricKind, Model, Rules, TestKind, Thresholds,
};
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
    let never = AtomicBool::new(false);
    judge_unless(model, data, options, &never).map(|j| j.unwrap_or_else(|| unreachable_stop(model)))
}

/// [`judge`], giving up as soon as `stop` turns true (checked between metrics): `None`
/// then. What a caller that may stop waiting (a request that timed out) runs, so work
/// nobody will read is not finished.
pub fn judge_unless(
    model: &Model,
    data: &BTreeMap<String, MetricData>,
    options: &JudgeOptions,
    stop: &AtomicBool,
) -> Result<Option<Judgment>, JudgeError> {
    check_known(model, data.keys())?;
    let mut state = SequentialState::default();
    if stop.load(Ordering::Relaxed) {
        return Ok(None);
    }
    state.advance(model, data, options)?;
    judge_state(model, data, &state, options, stop)
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
    let never = AtomicBool::new(false);
    judge_state(model, cumulative, &state, options, &never)
        .map(|j| j.unwrap_or_else(|| unreachable_stop(model)))
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
    let never = AtomicBool::new(false);
    let judgment = judge_state(model, cumulative, &next, options, &never)?
        .unwrap_or_else(|| unreachable_stop(model));
    *state = next;
    Ok(judgment)
}

fn check_known<'a>(
    model: &Model,
    mut keys: impl Iterator<Item = &'a String>,
) -> Result<(), JudgeError> {
    let names: std::collections::HashSet<&str> =
        model.metrics.iter().map(|m| m.name.as_str()).collect();
    match keys.find(|k| !names.contains(k.as_str())) {
        Some(unknown) => Err(unknown_metric(model, unknown)),
        None => Ok(()),
    }
}

/// How many of the model's metric names an unknown-metric error lists.
const KNOWN_LISTED: usize = 20;

fn unknown_metric(model: &Model, metric: &str) -> JudgeError {
    let mut known = model
        .metrics
        .iter()
        .take(KNOWN_LISTED)
        .map(|m| format!("`{}`", m.name))
        .collect::<Vec<_>>()
        .join(", ");
    if model.metrics.len() > KNOWN_LISTED {
        known.push_str(&format!(" and {} more", model.metrics.len() - KNOWN_LISTED));
    }
    JudgeError::UnknownMetric {
        metric: metric.to_string(),
        model: model.name.clone(),
        known,
    }
}

/// Every entry of `data` the judge would refuse before computing anything: a metric the
/// model lacks, data of a shape the metric's kind does not take, or a NaN the model
/// says fails. One pass over `data`, so a caller that drops what is refused (the
/// analysis runner) pays once instead of one judgment per refusal. Errors the statistics
/// find (a count of errors above the requests) still surface from [`judge`].
pub fn screen(model: &Model, data: &BTreeMap<String, MetricData>) -> Vec<JudgeError> {
    let index = model.index();
    let mut refused = Vec::new();
    for (name, d) in data {
        let Some(metric) = index.get(name.as_str()) else {
            refused.push(unknown_metric(model, name));
            continue;
        };
        let fits = match model.rules {
            Rules::Kayenta => matches!(d, MetricData::Samples { .. }),
            Rules::Augury => matches!(
                (metric.kind, d),
                (
                    MetricKind::Distribution,
                    MetricData::Samples { .. } | MetricData::Histograms { .. }
                ) | (MetricKind::ErrorRatio, MetricData::Counts { .. })
            ),
        };
        if !fits {
            refused.push(match model.rules {
                Rules::Kayenta => kayenta::wrong_shape(metric, d),
                Rules::Augury => JudgeError::wrong_shape(metric, d),
            });
            continue;
        }
        if metric.nan == crate::model::NanStrategy::Fail
            && let MetricData::Samples { baseline, canary } = d
        {
            let first = |values: &[f64]| values.iter().position(|v| v.is_nan());
            if let Some(index) = first(canary) {
                refused.push(JudgeError::NaN {
                    metric: name.clone(),
                    side: "canary",
                    index,
                });
            } else if let Some(index) = first(baseline) {
                refused.push(JudgeError::NaN {
                    metric: name.clone(),
                    side: "baseline",
                    index,
                });
            }
        }
    }
    refused
}

/// An empty judgment, for the `stop` flag a caller holds false: never returned.
fn unreachable_stop(model: &Model) -> Judgment {
    score::score(model, Vec::new())
}

/// Classifies every metric and scores; `None` once `stop` is seen true (checked before
/// each metric).
fn judge_state(
    model: &Model,
    cumulative: &BTreeMap<String, MetricData>,
    state: &SequentialState,
    options: &JudgeOptions,
    stop: &AtomicBool,
) -> Result<Option<Judgment>, JudgeError> {
    let mut metrics = Vec::with_capacity(model.metrics.len());
    if model.rules == Rules::Kayenta {
        for metric in &model.metrics {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            metrics.push(kayenta::classify_metric(
                metric,
                cumulative.get(&metric.name),
                options,
            )?);
        }
        return Ok(Some(kayenta::score(model, metrics)));
    }
    for metric in &model.metrics {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let seq = match metric.test() {
            TestKind::Sequential => Some(state.result(metric, options)?),
            _ => None,
        };
        metrics.push(classify::classify(
            metric,
            cumulative.get(&metric.name),
            seq,
            options,
        )?);
    }
    Ok(Some(score::score(model, metrics)))
}
