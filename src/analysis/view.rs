//! What an analysis shows controllers, pipelines and notifications: the verdict view
//! (`GET /api/v1/analyses/{id}/verdict`), built from an [`Analysis`] alone.
//!
//! A value record: the HTTP API serves it, notifications render from it and `augury
//! analyze`/`wait` read it back, so it lives below all three.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Analysis, Status};
use crate::clock::rfc3339;
use crate::judge::{Classification, Judgment, Verdict};
use crate::model::EffectMeasure;
use crate::stats::sequential::Decision;
use crate::stats::sequential::quantiles::QuantileBand;

/// How far an analysis has come.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Intervals judged so far.
    pub intervals: u32,
    /// Intervals in the whole lifetime.
    pub planned: u32,
    /// Since creation; for a decided analysis, from creation to the decision.
    pub elapsed_seconds: f64,
}

/// One metric, as the verdict shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricVerdict {
    pub name: String,
    pub classification: Classification,
    pub critical: bool,
    /// p-value of the metric's test (anytime-valid for a sequential metric); null when it
    /// was not run (no data).
    pub p_value: Option<f64>,
    /// Sequential metrics: the decision so far (`continue`, `reject`, `accept-equivalent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Sequential metrics: the confidence sequence so far. Error ratios: on the
    /// canary/baseline error-rate ratio; distributions: per watched quantile, the band on
    /// the canary-minus-baseline difference (and ratio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_sequence: Option<ConfidenceSequence>,
    /// The effect size the model gates on; null when not computed or undefined.
    pub effect: Option<f64>,
    /// Which effect size `effect` is (`median-ratio`, `ratio`, ...).
    pub measure: Option<EffectMeasure>,
    /// One sentence a person can act on.
    pub reason: String,
}

/// A sequential metric's confidence sequence, as the verdict shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceSequence {
    /// Canary/baseline error-rate ratio; `upper` null when unbounded.
    RateRatio { lower: f64, upper: Option<f64> },
    /// Per watched quantile, the difference and ratio canary vs baseline.
    Quantiles(Vec<QuantileBand>),
}

/// The small answer controllers poll: `GET /api/v1/analyses/{id}/verdict`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerdictView {
    pub id: String,
    pub key: String,
    /// `running` until the analysis is decided; then `pass`, `fail`, `inconclusive` or
    /// `cancelled`, never to change again.
    pub status: Status,
    /// Score of the latest judgment, 0 to 100; null before the first interval.
    pub score: Option<f64>,
    /// Verdict of the latest judgment (over everything gathered so far); null before the
    /// first interval. While running, it says where the analysis is heading.
    pub verdict: Option<Verdict>,
    /// When the analysis was decided (RFC 3339), null while running.
    pub decided_at: Option<String>,
    /// Why, most important first.
    pub reasons: Vec<String>,
    pub metrics: Vec<MetricVerdict>,
    /// Kept last: it is the only part that changes between two polls of an unchanged
    /// analysis, so the cache renders everything before it once.
    pub progress: Progress,
}

impl VerdictView {
    pub fn of(a: &Analysis, now_ms: i64) -> VerdictView {
        let mut reasons = Vec::new();
        if a.status == Status::Cancelled {
            reasons.push(match a.decided_ms {
                Some(t) => format!("cancelled at {}", rfc3339(t)),
                None => "cancelled".to_string(),
            });
        }
        if let Some(j) = &a.judgment {
            reasons.extend(j.reasons.iter().cloned());
        }
        VerdictView {
            id: a.id.clone(),
            key: a.key.clone(),
            status: a.status,
            score: a.judgment.as_ref().map(|j| j.score).or(a.score),
            verdict: a.judgment.as_ref().map(|j| j.verdict),
            decided_at: a.decided_ms.map(rfc3339),
            reasons,
            metrics: a.judgment.as_ref().map(metric_verdicts).unwrap_or_default(),
            progress: progress(a, now_ms),
        }
    }
}

fn metric_verdicts(j: &Judgment) -> Vec<MetricVerdict> {
    j.metrics
        .iter()
        .map(|m| MetricVerdict {
            name: m.name.clone(),
            classification: m.classification,
            critical: m.critical,
            p_value: m.p_value(),
            decision: m.sequential.as_ref().map(|s| s.decision),
            confidence_sequence: m.sequential.as_ref().and_then(|s| {
                s.errors
                    .as_ref()
                    .map(|e| ConfidenceSequence::RateRatio {
                        lower: e.ratio_lower,
                        upper: e.ratio_upper,
                    })
                    .or_else(|| {
                        s.latency
                            .as_ref()
                            .map(|l| ConfidenceSequence::Quantiles(l.bands.clone()))
                    })
            }),
            effect: m.effect_gate.as_ref().and_then(|g| g.value),
            measure: m.effect_gate.as_ref().map(|g| g.measure),
            reason: m.reason.clone(),
        })
        .collect()
}

pub fn progress(a: &Analysis, now_ms: i64) -> Progress {
    Progress {
        intervals: a.intervals,
        planned: a.planned_intervals(),
        elapsed_seconds: elapsed_seconds(a.created_ms, a.decided_ms.unwrap_or(now_ms)),
    }
}

pub fn elapsed_seconds(from_ms: i64, to_ms: i64) -> f64 {
    (to_ms - from_ms).max(0) as f64 / 1000.0
}
