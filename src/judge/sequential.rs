//! Metrics with `test: sequential`: the anytime-valid tests of `stats::sequential` run
//! over the analysis's looks (one per interval, what arrived in it), in order.
//!
//! The judge stays pure: [`SequentialState`] is a value the caller holds and hands back
//! at the next look; advancing it costs one look whatever the analysis's length (its
//! memory is the tests' fixed grids and histograms, not the traffic). The analysis runner
//! keeps one per running analysis in memory; after a restart it rebuilds it by replaying
//! the stored per-interval data once, so a restart resumes exactly where the committed
//! intervals left the test. [`super::judge_looks`] replays a whole list of looks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Metric, MetricKind, Model, NanStrategy, TestKind};
use crate::stats::sequential::counts::RateRatioLook;
use crate::stats::sequential::quantiles::LatencyLook;
use crate::stats::sequential::{
    Decision, Equivalence, LookResult, SequentialConfig, SequentialJudge,
};
use crate::stats::{Alternative, LogHistogram, StatsError};

use super::{JudgeError, JudgeOptions, MetricData};

/// The anytime-valid numbers behind a sequential metric's classification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SequentialResult {
    /// Anytime-valid p-value after the last look: valid however many looks were taken.
    #[serde(with = "crate::stats::nonfinite")]
    pub p_value: f64,
    /// `continue`, `reject` (a difference in the tested direction) or `accept-equivalent`.
    pub decision: Decision,
    /// Looks taken: intervals that brought data for this metric.
    pub looks: usize,
    /// 0-based look at which the test rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rejection: Option<usize>,
    /// 0-based look at which the confidence sequence first lay within the margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_equivalence: Option<usize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::stats::nonfinite::option"
    )]
    pub equivalence_margin: Option<f64>,
    /// Error ratios: the e-value and the confidence sequence on the canary/baseline
    /// error-rate ratio (`ratio_lower`, `ratio_upper`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<RateRatioLook>,
    /// Distributions: the exceedance test per watched quantile and the confidence
    /// sequence (`bands`: per quantile, the difference and ratio canary vs baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyLook>,
}

/// Where every sequential metric of one analysis stands: advanced one look at a time.
#[derive(Clone, Default)]
pub struct SequentialState {
    metrics: BTreeMap<String, MetricState>,
    /// Looks offered so far (intervals), with data or without.
    offered: usize,
}

#[derive(Clone)]
struct MetricState {
    judge: SequentialJudge,
    /// The last look that brought data.
    last: Option<LookResult>,
}

impl std::fmt::Debug for SequentialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequentialState")
            .field("metrics", &self.metrics.keys().collect::<Vec<_>>())
            .field("offered", &self.offered)
            .finish()
    }
}

impl SequentialState {
    /// Looks offered so far.
    pub fn looks(&self) -> usize {
        self.offered
    }

    /// Takes one look (what arrived in one interval) for every sequential metric of
    /// `model`; a metric absent from `look` takes no look. On error nothing changes.
    pub fn advance(
        &mut self,
        model: &Model,
        look: &BTreeMap<String, MetricData>,
        options: &JudgeOptions,
    ) -> Result<(), JudgeError> {
        *self = self.advanced(model, look, options)?;
        Ok(())
    }

    /// The state after one more look; `self` is left as it was.
    pub(super) fn advanced(
        &self,
        model: &Model,
        look: &BTreeMap<String, MetricData>,
        options: &JudgeOptions,
    ) -> Result<SequentialState, JudgeError> {
        let mut next = self.clone();
        for metric in model
            .metrics
            .iter()
            .filter(|m| m.test() == TestKind::Sequential)
        {
            if !next.metrics.contains_key(&metric.name) {
                let judge = new_judge(metric, super::classify::alternative(metric, options))?;
                next.metrics
                    .insert(metric.name.clone(), MetricState { judge, last: None });
            }
            let Some(state) = next.metrics.get_mut(&metric.name) else {
                continue;
            };
            if let Some(data) = look.get(&metric.name) {
                state.last = Some(take_look(metric, &mut state.judge, data, self.offered)?);
            }
        }
        next.offered += 1;
        Ok(next)
    }

    /// The numbers behind `metric`'s classification after the looks taken so far.
    pub(super) fn result(
        &self,
        metric: &Metric,
        options: &JudgeOptions,
    ) -> Result<SequentialResult, JudgeError> {
        let fresh;
        let (judge, last) = match self.metrics.get(&metric.name) {
            Some(s) => (&s.judge, s.last.as_ref()),
            None => {
                fresh = new_judge(metric, super::classify::alternative(metric, options))?;
                (&fresh, None)
            }
        };
        let (p_value, errors, latency) = match last {
            Some(l) => (l.p_value, l.errors.clone(), l.latency.clone()),
            None => (1.0, None, None),
        };
        Ok(SequentialResult {
            p_value,
            decision: judge.decision(),
            looks: judge.looks(),
            first_rejection: judge.first_rejection(),
            first_equivalence: judge.first_equivalence(),
            equivalence_margin: metric.equivalence_margin,
            errors,
            latency,
        })
    }
}

fn new_judge(metric: &Metric, alternative: Alternative) -> Result<SequentialJudge, JudgeError> {
    let stats_err = |source| JudgeError::Stats {
        metric: metric.name.clone(),
        source,
    };
    let config = SequentialConfig {
        alpha: metric.alpha,
        alternative,
        equivalence: metric.equivalence_margin.map(|m| Equivalence {
            latency_margin: m,
            error_margin: m,
            min_looks: 1,
        }),
        ..SequentialConfig::default()
    };
    match metric.kind {
        MetricKind::ErrorRatio => SequentialJudge::errors(&config).map_err(stats_err),
        MetricKind::Distribution => Ok(SequentialJudge::latency(
            &config,
            &config.latency_plan().map_err(stats_err)?,
        )),
    }
}

/// One look of `metric` (0-based `index` among the analysis's looks, for messages).
fn take_look(
    metric: &Metric,
    judge: &mut SequentialJudge,
    data: &MetricData,
    index: usize,
) -> Result<LookResult, JudgeError> {
    let look = match (metric.kind, data) {
        (MetricKind::ErrorRatio, MetricData::Counts { baseline, canary }) => {
            judge.look_counts(*canary, *baseline)
        }
        (MetricKind::Distribution, MetricData::Histograms { baseline, canary }) => {
            judge.look_histograms(&canary.histogram, &baseline.histogram)
        }
        (MetricKind::Distribution, MetricData::Samples { baseline, canary }) => {
            let c = histogram(metric, canary, "canary", index)?;
            let b = histogram(metric, baseline, "baseline", index)?;
            judge.look_histograms(&c, &b)
        }
        (_, other) => return Err(JudgeError::wrong_shape(metric, other)),
    };
    look.map_err(|e| JudgeError::Stats {
        metric: metric.name.clone(),
        source: StatsError::Invalid(format!("interval {}: {e}", index + 1)),
    })
}

/// One look's samples as a histogram, with the model's NaN rule; latencies must be finite
/// and non-negative.
fn histogram(
    metric: &Metric,
    values: &[f64],
    side: &'static str,
    look: usize,
) -> Result<LogHistogram, JudgeError> {
    let mut h = LogHistogram::new();
    for (i, &v) in values.iter().enumerate() {
        let v = if v.is_nan() {
            match metric.nan {
                NanStrategy::Remove => continue,
                NanStrategy::Replace => 0.0,
                NanStrategy::Fail => {
                    return Err(JudgeError::NaN {
                        metric: metric.name.clone(),
                        side,
                        index: i,
                    });
                }
            }
        } else {
            v
        };
        if !(v.is_finite() && v >= 0.0) {
            return Err(JudgeError::Stats {
                metric: metric.name.clone(),
                source: StatsError::Invalid(format!(
                    "interval {}: {side} value {i} is {v}; a sequential test takes finite, non-negative values",
                    look + 1
                )),
            });
        }
        h.record(v);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::judge::{Classification, JudgeOptions, MetricData, judge, judge_looks};
    use crate::model::Model;
    use crate::stats::sequential::Decision;

    fn model() -> Model {
        Model::from_yaml(
            "name: m\nmetrics:\n  - name: latency\n    test: sequential\n    equivalence_margin: 0.2\n",
            "m",
        )
        .unwrap()
    }

    /// Lognormal-like values at evenly spaced levels, scaled.
    fn values(n: usize, scale: f64, phase: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let p = (i as f64 + phase) / n as f64;
                scale * (0.5 * crate::stats::normal::ppf(p)).exp()
            })
            .collect()
    }

    fn look(scale: f64, phase: f64) -> BTreeMap<String, MetricData> {
        BTreeMap::from([(
            "latency".to_string(),
            MetricData::Samples {
                baseline: values(1_000, 100.0, phase),
                canary: values(1_000, scale, phase),
            },
        )])
    }

    #[test]
    fn one_shot_judges_the_whole_sample_as_one_look() {
        let j = judge(&model(), &look(150.0, 0.5), &JudgeOptions::default()).unwrap();
        let m = &j.metrics[0];
        let s = m.sequential.as_ref().unwrap();
        assert_eq!(s.looks, 1);
        assert_eq!(s.decision, Decision::Reject, "{m:?}");
        assert_eq!(m.classification, Classification::High);
        assert!(m.reason.contains("anytime-valid p"), "{}", m.reason);
        // The fixed-horizon numbers are still there, for reference.
        assert!(m.mann_whitney.is_some() && s.latency.as_ref().unwrap().bands.len() == 3);
    }

    #[test]
    fn looks_are_replayed_in_order() {
        let looks: Vec<_> = (0..12)
            .map(|k| look(100.0, 0.1 + 0.07 * k as f64))
            .collect();
        let mut cumulative = looks[0].clone();
        for l in &looks[1..] {
            for (k, d) in l {
                cumulative.get_mut(k).unwrap().merge(d);
            }
        }
        let refs: Vec<_> = looks.iter().collect();
        let j = judge_looks(&model(), &cumulative, &refs, &JudgeOptions::default()).unwrap();
        let m = &j.metrics[0];
        let s = m.sequential.as_ref().unwrap();
        assert_eq!(s.looks, 12);
        // Identical versions: no evidence at all. (Equivalence needs every watched
        // quantile's band bounded; p99's stays open above until ~80,000 observations.)
        assert_eq!(s.p_value, 1.0);
        assert_eq!(s.decision, Decision::Continue, "{m:?}");
        assert_eq!(m.classification, Classification::Pass);
        let latency = s.latency.as_ref().unwrap();
        assert_eq!(latency.canary_count, 12_000);
        assert!(latency.bands[0].ratio.lower.unwrap() > 1.0 / 1.2);
        // A look without this metric is no look.
        let mut gaps = refs.clone();
        let empty = BTreeMap::new();
        gaps.insert(3, &empty);
        let j = judge_looks(&model(), &cumulative, &gaps, &JudgeOptions::default()).unwrap();
        assert_eq!(j.metrics[0].sequential.as_ref().unwrap().looks, 12);
    }
}
