//! One interval's judgment turned into numbers: the analysis's score and, per metric, the
//! p-value, the gated effect, the effect's confidence interval, and each side's quantiles
//! and error ratio.

use super::families::{
    AnalysisLabels, CiLabels, EffectLabels, Families, MetricLabels, QuantileLabels, SideLabels,
};
use super::series::Series;
use crate::judge::{Judgment, MetricResult, Summary};
use crate::stats::proportions::Counts;
use crate::stats::ratio::katz_interval;

impl Families {
    /// Sets analysis `id`'s series from `judgment` and returns which ones it set.
    pub(super) fn record_judgment(&self, id: &str, key: &str, judgment: &Judgment) -> Series {
        let mut series = Series {
            key: key.to_string(),
            ..Series::default()
        };
        self.score
            .get_or_create(&AnalysisLabels {
                analysis: id.to_string(),
                key: key.to_string(),
            })
            .set(judgment.score);
        for m in &judgment.metrics {
            if let Some(p) = m.p_value() {
                self.p_value
                    .get_or_create(&MetricLabels {
                        analysis: id.to_string(),
                        metric: m.name.clone(),
                    })
                    .set(p);
                series.metrics.push(m.name.clone());
            }
            if let Some(gate) = &m.effect_gate
                && let Some(value) = gate.value
            {
                let measure = gate.measure.name();
                self.effect
                    .get_or_create(&EffectLabels {
                        analysis: id.to_string(),
                        metric: m.name.clone(),
                        measure,
                    })
                    .set(value);
                series.effects.push((m.name.clone(), measure));
            }
            self.sides(id, m, &mut series);
            if let Some(ci) = effect_ci(m) {
                for (bound, value) in [("lower", ci.1), ("upper", ci.2)] {
                    let labels = CiLabels {
                        analysis: id.to_string(),
                        metric: m.name.clone(),
                        measure: ci.0,
                        bound,
                    };
                    self.effect_ci.get_or_create(&labels).set(value);
                    series.cis.push(labels);
                }
            }
        }
        series
    }

    /// Each side's quantiles and error ratio of metric `m`.
    fn sides(&self, id: &str, m: &MetricResult, series: &mut Series) {
        for (side, summary) in [("baseline", &m.baseline), ("canary", &m.canary)] {
            let Some(summary) = summary else { continue };
            for (quantile, value) in [
                ("0.5", summary.median),
                ("0.9", summary.p90),
                ("0.99", summary.p99),
            ] {
                if let Some(v) = value.filter(|v| v.is_finite()) {
                    let labels = QuantileLabels {
                        analysis: id.to_string(),
                        metric: m.name.clone(),
                        side,
                        quantile,
                    };
                    self.quantile.get_or_create(&labels).set(v);
                    series.quantiles.push(labels);
                }
            }
            if let Some(v) = summary.error_ratio.filter(|v| v.is_finite()) {
                let labels = SideLabels {
                    analysis: id.to_string(),
                    metric: m.name.clone(),
                    side,
                };
                self.error_ratio.get_or_create(&labels).set(v);
                series.error_ratios.push(labels);
            }
        }
    }
}

/// The confidence interval of a metric's effect, for the dashboards: the relative
/// Hodges-Lehmann shift's interval when the judge computed one (samples), else for error
/// ratios the rate ratio's interval by the log method ([`katz_interval`]) at the metric's
/// alpha (kept within [1e-12, 0.5]). None when undefined (no errors on a side).
fn effect_ci(m: &MetricResult) -> Option<(&'static str, f64, f64)> {
    if let Some(r) = m.effect.as_ref().and_then(|e| e.relative_shift.as_ref()) {
        return Some(("relative-shift", r.lower, r.upper));
    }
    let counts = |s: &Option<Summary>| {
        let s = s.as_ref()?;
        Some(Counts {
            requests: s.count,
            errors: s.errors?,
        })
    };
    let (canary, baseline) = (counts(&m.canary)?, counts(&m.baseline)?);
    let ci = katz_interval(canary, baseline, m.alpha.clamp(1e-12, 0.5)).ok()??;
    Some(("ratio", ci.lower, ci.upper))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::judge::Judgment;
    use crate::stats::proportions::Counts;
    use crate::stats::ratio::katz_interval;
    use crate::telemetry::Metrics;
    use crate::telemetry::test_support::{errors_judgment, errors_judgment_with, sample, value};

    /// The exposition after one interval of analysis `a1` (key `k1`) judged as `j`.
    fn exposition(j: &Judgment) -> String {
        let m = Metrics::new();
        m.interval_judged("a1", "k1", j, Duration::from_millis(20));
        m.encode()
    }

    #[test]
    fn a_sequential_metric_reports_its_anytime_valid_p() {
        let j = errors_judgment_with("    test: sequential\n", 10, 30);
        let m = &j.metrics[0];
        let anytime = m.sequential.as_ref().unwrap().p_value;
        let fixed = m.proportions.as_ref().unwrap().p_value;
        assert!(anytime > fixed, "anytime {anytime} vs fixed {fixed}");
        let shown: f64 = value(
            &exposition(&j),
            "augury_metric_p_value",
            "{analysis=\"a1\",metric=\"errors\"}",
        );
        assert_eq!(shown, anytime);
    }

    #[test]
    fn an_interval_sets_score_p_values_and_effects() {
        let j = errors_judgment();
        let text = exposition(&j);
        let score: f64 = value(
            &text,
            "augury_analysis_score",
            "{analysis=\"a1\",key=\"k1\"}",
        );
        assert_eq!(score, j.score);
        let p = j.metrics[0].proportions.as_ref().unwrap().p_value;
        let shown: f64 = value(
            &text,
            "augury_metric_p_value",
            "{analysis=\"a1\",metric=\"errors\"}",
        );
        assert_eq!(shown, p);
        let ratio = j.metrics[0].effect_gate.as_ref().unwrap().value.unwrap();
        let shown: f64 = value(
            &text,
            "augury_metric_effect",
            "{analysis=\"a1\",metric=\"errors\",measure=\"ratio\"}",
        );
        assert_eq!(shown, ratio);
        assert_eq!(
            sample(&text, "augury_interval_duration_seconds_count", ""),
            Some("1")
        );
    }

    #[test]
    fn an_error_metric_shows_the_rate_ratio_interval() {
        let j = errors_judgment();
        let text = exposition(&j);
        let alpha = j.metrics[0].alpha;
        let counts = |errors| Counts {
            requests: 10_000,
            errors,
        };
        let ci = katz_interval(counts(80), counts(10), alpha)
            .unwrap()
            .unwrap();
        for (bound, want) in [("lower", ci.lower), ("upper", ci.upper)] {
            let labels = format!(
                "{{analysis=\"a1\",metric=\"errors\",measure=\"ratio\",bound=\"{bound}\"}}"
            );
            let shown: f64 = value(&text, "augury_metric_effect_ci", &labels);
            assert_eq!(shown, want, "{bound}");
        }
    }

    #[test]
    fn no_interval_without_errors_on_a_side() {
        let text = exposition(&errors_judgment_with("", 0, 30));
        assert!(!text.contains("augury_metric_effect_ci{"), "{text}");
        assert!(text.contains("augury_metric_error_ratio{"), "{text}");
    }
}
